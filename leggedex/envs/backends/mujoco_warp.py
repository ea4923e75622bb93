"""GPU backend over MuJoCo Warp (``mujoco-warp``): N worlds on a Warp device, ``cuda`` or Warp's ``cpu``.

``pip install -e ".[warp]"`` (Python >= 3.11). The model is the one ``mjcf.build_model`` prepares for the CPU
backend, so both simulate the same robot file; on flat ground their trajectories agree to float32 precision
(tests/envs/backends/test_backend_conformance.py measures it).

Data stays on the device: the simulator's arrays are exposed to the task as torch views (``wp.to_torch``, no copy),
targets are written into ``ctrl`` in place, and ``substeps`` physics steps run as one captured graph (a CUDA graph
on a GPU; Warp also captures on its CPU device). Partial resets and failure handling are torch writes into the
same arrays followed by one captured ``forward``; only the worlds being reset take the new derived quantities.

While any world has an ``action_delay``, ``step`` launches one captured physics step at a time, writing each
world's target for that step (the previous or the latest) into ``ctrl`` in between.

Per-world domain randomization writes into batched model fields (friction, base mass and CoM, servo gains, joint
damping, friction loss and armature, each
with a leading world dimension allocated once, so captured graphs stay valid); after a mass or CoM change
``set_const`` recomputes the constants that depend on them for every world (``body_subtreemass``,
``body_invweight0``, ``dof_invweight0``, ``actuator_acc0`` are batched too, or every world's constants would land
in world 0's row).

Failures: MuJoCo Warp has no auto-reset. After every step a world with a non-finite ``qpos``/``qvel`` or an
overflow bit (contacts or constraints beyond ``nconmax``/``njmax``) is put back to the home pose, as MuJoCo's CPU
auto-reset does, and reported by ``sim_failures`` until the task resets it.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from typing import Any

import numpy as np
import torch

from leggedex.envs.backends.mujoco_base import GAIN_FIELDS, MujocoBackend, StateArrays
from leggedex.envs.terrain import Terrain
from leggedex.robots import RobotDescription

try:
    import mujoco_warp as mjw
    import warp as wp
except ImportError as err:  # the optional extra
    raise ImportError(
        f"MujocoWarpBackend needs MuJoCo Warp ({err.name} is not installed): pip install -e \".[warp]\" "
        "(mujoco-warp and warp-lang; Python >= 3.11)") from err

__all__ = ["MujocoWarpBackend", "warp_device"]

wp.config.quiet = True  # type: ignore[attr-defined]  # no line per kernel module loaded (not in Warp's stubs)

# model fields given a world dimension: what randomize writes, and the constants set_const derives from it
_WRITTEN_FIELDS = ("geom_friction", "geom_solimp", "body_mass", "body_ipos", "actuator_gainprm", "actuator_biasprm",
                   "dof_damping", "dof_frictionloss", "dof_armature")
_BATCHED_FIELDS = _WRITTEN_FIELDS + ("body_subtreemass", "body_invweight0", "dof_invweight0", "actuator_acc0")
_STATE_FIELDS = ("qpos", "qvel", "act", "ctrl", "qacc_warmstart", "time")
_DERIVED_FIELDS = ("sensordata", "site_xpos", "actuator_force")


def warp_device(device: str) -> str:
    """The Warp device for ``device``: ``cpu``, ``cuda:N``, or ``cuda`` = this process's GPU under DDP
    (``LOCAL_RANK``); raises with the fix when it is not there."""
    if device == "cpu":
        return "cpu"
    if device == "cuda":
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    if not device.startswith("cuda:") or not device[5:].isdigit():
        raise ValueError(f"MujocoWarpBackend device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    count = wp.get_cuda_device_count()
    if int(device[5:]) >= count:
        raise ValueError(
            f"MujocoWarpBackend device {device!r} is not there: Warp sees {count} CUDA device(s) "
            f"({wp.get_cuda_devices() or 'none'}); set data.env.init_args.backend.init_args.device: cpu to run on "
            "Warp's CPU device, or use a machine with a GPU (driver R580+ for PyPI's CUDA 13 warp-lang wheels)")
    if not torch.cuda.is_available():
        raise ValueError(f"MujocoWarpBackend device {device!r}: Warp sees a GPU but this torch build has no CUDA; "
                         "install a CUDA build of torch")
    return device


class MujocoWarpBackend(MujocoBackend):
    """``num_envs`` worlds of one robot in MuJoCo Warp.

    Args:
        num_envs, robot, terrain, substeps: given by the task (see ``SimBackend``); robot None is the Go2.
        device: "cuda" (this rank's GPU), "cuda:N" or "cpu" (Warp's CPU device, for tests and CI).
        nconmax: contacts allocated per world (pooled over worlds); None: 24 on flat ground, 64 on terrain.
        njmax: constraint rows per world; None: 4 per contact (pyramidal cone, condim 3) + 3 per joint (limits
            and friction loss).
        graph: run step and forward as captured graphs (CUDA graph on a GPU); False launches kernels eagerly.
    """

    # MuJoCo Warp keeps the friction cone and impratio in its Option and the contact dimensions in the model, one
    # for every world
    per_world_parameters = MujocoBackend.per_world_parameters - {"impratio", "elliptic_cone", "foot_torsional_friction"}

    def __init__(
        self,
        num_envs: int,
        robot: RobotDescription | None = None,
        terrain: Terrain | None = None,
        substeps: int = 4,
        *,
        device: str = "cuda",
        nconmax: int | None = None,
        njmax: int | None = None,
        graph: bool = True,
    ) -> None:
        wp_device = warp_device(device)
        super().__init__(num_envs, robot, terrain, substeps, torch.device(wp_device))
        for name, value in (("nconmax", nconmax), ("njmax", njmax)):
            if value is not None and value <= 0:
                raise ValueError(f"MujocoWarpBackend {name} must be positive or null, got {value}")
        self.nconmax = nconmax or (64 if terrain is not None else 24)
        self.njmax = njmax or 4 * self.nconmax + 3 * self.num_dofs
        self.wp_device = wp.get_device(wp_device)
        n, mjm = self._num_envs, self.model
        with wp.ScopedDevice(self.wp_device):
            self.m = mjw.put_model(mjm, batch_sizes={name: n for name in _BATCHED_FIELDS})
            self.d = mjw.make_data(mjm, nworld=n, nconmax=self.nconmax, njmax=self.njmax)
            mjw.reset_data_keyframe(self.m, self.d, self.index.home_key)
        self._stream = (wp.stream_from_torch(torch.cuda.current_stream(self._device))
                        if self.wp_device.is_cuda else None)
        view = wp.to_torch
        self._view = {name: view(getattr(self.d, name)) for name in _STATE_FIELDS + _DERIVED_FIELDS}
        self._overflow = view(self.d.overflow)
        self._model_view = {name: view(getattr(self.m, name)) for name in _WRITTEN_FIELDS}
        self._dof_ids = torch.as_tensor(self.index.dof_adr, dtype=torch.long, device=self._device)
        self._foot_ids = torch.as_tensor(self._foot_geoms, dtype=torch.long, device=self._device)
        self._armature_t = torch.as_tensor(self._nominal_armature, dtype=torch.float32, device=self._device)
        self._targets = self._t_default.expand(n, -1).clone()  # the last call's targets and the call's before
        self._prev_targets = self._targets.clone()
        self._base_ipos_t = torch.as_tensor(self._base_ipos, dtype=torch.float32, device=self._device)
        self._error = torch.zeros(n, dtype=torch.bool, device=self._device)
        self._default_ctrl = self._t_default.expand(n, -1)
        self._graphs: dict[str, Any] = {}  # name -> wp.Graph
        self._use_graph = graph
        self._launch("forward")  # derived quantities of the home pose; compiles the kernels on first use

    # ------------------------------------------------------------------ launching
    def _scope(self) -> ExitStack:
        """Warp's device, and on a GPU torch's current stream, so that Warp and torch work stay in order."""
        stack = ExitStack()
        stack.enter_context(wp.ScopedDevice(self.wp_device))
        if self._stream is not None:
            stack.enter_context(wp.ScopedStream(self._stream))
        return stack

    def _run(self, name: str) -> None:
        if name == "step":
            for _ in range(self._substeps):
                mjw.step(self.m, self.d)
        elif name == "physics_step":
            mjw.step(self.m, self.d)
        else:
            mjw.forward(self.m, self.d)

    def _launch(self, name: str) -> None:
        """Run ``step`` (substeps physics steps), ``physics_step`` (one) or ``forward``, through its captured graph
        when enabled."""
        with self._scope():
            if not self._use_graph:
                self._run(name)
                return
            graph = self._graphs.get(name)
            if graph is None:
                # capture from a copy of the state: capturing may execute the kernels on some devices
                saved = {k: v.clone() for k, v in self._view.items()}
                self._run(name)  # loads every module the graph needs before capture
                for k, v in self._view.items():
                    v.copy_(saved[k])
                with wp.ScopedCapture() as capture:
                    self._run(name)
                for k, v in self._view.items():
                    v.copy_(saved[k])
                self._overflow.zero_()
                graph = self._graphs[name] = capture.graph
            wp.capture_launch(graph)

    # ------------------------------------------------------------------ state
    def _arrays(self) -> StateArrays:
        v = self._view
        return StateArrays(v["qpos"], v["qvel"], v["sensordata"], v["site_xpos"], v["actuator_force"])

    def _world_qpos(self, world: int) -> np.ndarray:
        return self._view["qpos"][world].detach().cpu().double().numpy()

    # ------------------------------------------------------------------ control
    def set_dof_targets(self, targets: torch.Tensor) -> None:
        self._check_targets(targets)
        self._prev_targets.copy_(self._targets)
        self._targets.copy_(targets.detach())
        self._view["ctrl"].copy_(self._targets)

    def step(self) -> None:
        if self._delayed:  # targets switch within the period: one physics step at a time
            for i in range(self._substeps):
                self._view["ctrl"].copy_(torch.where(self._late[i, :, None], self._prev_targets, self._targets))
                self._launch("physics_step")
        else:
            self._launch("step")
        self._invalidate()
        v = self._view
        failed = ~(torch.isfinite(v["qpos"]).all(dim=1) & torch.isfinite(v["qvel"]).all(dim=1)) | (self._overflow != 0)
        if bool(failed.any()):  # one host sync per step; the task synchronizes on dones anyway
            self._error |= failed
            ids = failed.nonzero().squeeze(1)
            home = self._home_qpos.expand(ids.numel(), -1)
            self._write_reset(ids, home, torch.zeros(ids.numel(), self.model.nv, device=self._device),
                              clear_error=False)

    # ------------------------------------------------------------------ resets and DR
    def _write_reset(self, ids: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor,
                     clear_error: bool = True) -> None:
        v = self._view
        v["qpos"][ids] = qpos.to(v["qpos"].dtype)
        v["qvel"][ids] = qvel.to(v["qvel"].dtype)
        for name in ("qacc_warmstart", "act", "time"):
            if v[name].numel():
                v[name][ids] = 0.0
        v["ctrl"][ids] = self._default_ctrl[: ids.numel()]
        self._targets[ids] = self._default_ctrl[: ids.numel()]
        self._prev_targets[ids] = self._default_ctrl[: ids.numel()]
        self._overflow[ids] = 0
        if clear_error:
            self._error[ids] = False
        keep = torch.ones(self._num_envs, dtype=torch.bool, device=self._device)
        keep[ids] = False
        saved = {name: v[name].clone() for name in _DERIVED_FIELDS}
        self._launch("forward")
        for name in _DERIVED_FIELDS:  # the other worlds keep the derived quantities of their last step
            v[name][keep] = saved[name][keep]
        self._invalidate()

    def _apply_randomization(self, ids: torch.Tensor, values: dict[str, torch.Tensor]) -> None:
        mv, idx, dev = self._model_view, self.index, self._device
        if "friction" in values:
            geoms = torch.as_tensor(idx.robot_geoms, device=dev)
            mv["geom_friction"][ids[:, None], geoms[None, :], 0] = values["friction"][:, None]
        if "added_base_mass" in values:
            mv["body_mass"][ids, idx.base_body] = self._base_mass + values["added_base_mass"]
        if "com_offset" in values:
            mv["body_ipos"][ids, idx.base_body] = self._base_ipos_t + values["com_offset"]
        if any(name in values for name in GAIN_FIELDS):
            kp, kd = self.world_gains(ids)
            mv["actuator_gainprm"][ids, :, 0] = kp
            mv["actuator_biasprm"][ids, :, 1] = -kp
            mv["actuator_biasprm"][ids, :, 2] = -kd
        rows, dofs = ids[:, None], self._dof_ids[None, :]
        feet = self._foot_ids[None, :]
        if "foot_solimp_dmin" in values:
            mv["geom_solimp"][rows, feet, 0] = values["foot_solimp_dmin"][:, None]
        if "foot_solimp_width" in values:
            mv["geom_solimp"][rows, feet, 2] = values["foot_solimp_width"][:, None]
        if "joint_damping" in values:
            mv["dof_damping"][rows, dofs] = values["joint_damping"]
        if "joint_friction" in values:
            mv["dof_frictionloss"][rows, dofs] = values["joint_friction"]
        if "armature_scale" in values:
            mv["dof_armature"][rows, dofs] = self._armature_t * values["armature_scale"]
        if "added_base_mass" in values or "com_offset" in values or "armature_scale" in values:
            saved = {name: self._view[name].clone() for name in _DERIVED_FIELDS}
            with self._scope():
                mjw.set_const(self.m, self.d)
            for name in _DERIVED_FIELDS:  # set_const recomputes kinematics; the step-time values stay
                self._view[name].copy_(saved[name])

    # ------------------------------------------------------------------ resume and failures
    def state_dict(self) -> dict:
        state = {name: self._view[name].detach().cpu().clone() for name in _STATE_FIELDS + _DERIVED_FIELDS}
        state["error"] = self._error.cpu().clone()
        state["targets"] = self._targets.cpu().clone()
        state["prev_targets"] = self._prev_targets.cpu().clone()
        state["randomization"] = self._randomization_state()
        return state

    def load_state_dict(self, state: dict) -> None:
        if tuple(state["qpos"].shape) != tuple(self._view["qpos"].shape):
            raise ValueError(
                f"backend state has qpos {tuple(state['qpos'].shape)}, this backend "
                f"{tuple(self._view['qpos'].shape)}: a different model or num_envs")
        self._restore_randomization(state["randomization"])
        for name in _STATE_FIELDS:
            self._view[name].copy_(state[name])
        if all(name in state for name in _DERIVED_FIELDS):
            for name in _DERIVED_FIELDS:
                self._view[name].copy_(state[name])
        else:  # a state written by another backend: derive them from the restored state
            self._launch("forward")
        self._error.copy_(state["error"])
        targets = state.get("targets", state["ctrl"])  # a batch-backend state in motor actuation has torques in ctrl
        self._targets.copy_(targets)
        self._prev_targets.copy_(state.get("prev_targets", targets))
        self._overflow.zero_()
        self._invalidate()

    def sim_failures(self) -> torch.Tensor:
        v = self._view
        finite = torch.isfinite(v["qpos"]).all(dim=1) & torch.isfinite(v["qvel"]).all(dim=1)
        return self._error | ~finite
