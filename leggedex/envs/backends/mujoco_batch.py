"""CPU backend over ``mujoco.batch.Batch`` (MuJoCo 4): N worlds on a thread pool, the default simulator.

The model is prepared from the robot description by ``mjcf.build_model`` (shared with the Warp backend).

Actuation
---------
``actuation="position"`` (default): the model's position servos run the PD inside every physics step, ``ctrl``
holds the targets and ``step`` is a single ``Batch.step(nstep=substeps)`` call. ``actuation="motor"``: torque
motors with the PD evaluated in numpy before each single physics step (same control law; measured 3-7 % slower on
2 cores, see docs/backend_notes.md). Per-world gains (scale x motor strength) go into
``actuator_gainprm``/``biasprm`` (position) or the numpy gain arrays (motor). While any world has an
``action_delay``, ``step`` runs its physics steps one at a time, each with the targets that world's delay lets
through (measured cost: see the README's sim2real section).

Timing
------
``Batch.step`` leaves derived quantities (``site_xpos``, sensors, ``actuator_force``) as computed at the start of
the last physics step, as ``mj_step`` does: ``foot_pos_world`` lags the state by one physics step, and contact
forces / torques are those applied during the last physics step. ``qpos``/``qvel`` are exact.

Failures
--------
MuJoCo resets a world whose state turns NaN/Inf or huge (auto-reset to ``qpos0``) and counts an instability
warning; ``Batch`` raises ``SimulationError`` for worlds that hit an error (those keep their previous state).
``sim_failures`` reports both, plus non-finite state written from outside, until the world is reset.

Every read converts a float64 batch view to float32 once and caches it until the next ``step``, ``reset`` or
``randomize``; no per-world Python loop anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mujoco
import mujoco.batch
import numpy as np
import torch

from leggedex.envs.backends.mujoco_base import GAIN_FIELDS, MujocoBackend, StateArrays
from leggedex.envs.terrain import Terrain
from leggedex.robots import GO2, RobotDescription
from leggedex.robots.motor import torque_speed_clip

__all__ = ["MujocoBatchBackend"]

# warnings that mean a world's simulation went wrong (mjWARN_INERTIA excluded)
_BAD_WARNINGS = [
    int(mujoco.mjtWarning.mjWARN_CONTACTFULL),
    int(mujoco.mjtWarning.mjWARN_CNSTRFULL),
    int(mujoco.mjtWarning.mjWARN_BADQPOS),
    int(mujoco.mjtWarning.mjWARN_BADQVEL),
    int(mujoco.mjtWarning.mjWARN_BADQACC),
    int(mujoco.mjtWarning.mjWARN_BADCTRL),
]


class MujocoBatchBackend(MujocoBackend):
    """``num_envs`` worlds of one robot in one ``mujoco.batch.Batch`` on the CPU.

    Args:
        num_envs, robot, terrain, substeps: given by the task (see ``SimBackend``); robot None is the Go2.
        num_threads: Batch worker threads; 0 uses all cores.
        device: torch device of the returned tensors (the physics stays on the CPU).
        actuation: "position" (PD inside MuJoCo) or "motor" (PD in numpy).
        torque_speed_curve: with motor actuation, limit each torque by the motor's torque-speed line
            (``leggedex.robots.motor``) from the robot description's ``velocity_limits``.
    """

    def __init__(
        self,
        num_envs: int,
        robot: RobotDescription | None = None,
        terrain: Terrain | None = None,
        substeps: int = 4,
        *,
        num_threads: int = 0,
        device: str = "cpu",
        actuation: str = "position",
        torque_speed_curve: bool = False,
    ) -> None:
        if num_threads < 0:
            raise ValueError(f"num_threads must be >= 0 (0: all cores), got {num_threads}")
        if torque_speed_curve and actuation != "motor":
            raise ValueError("MujocoBatchBackend torque_speed_curve needs actuation: motor (the position servos "
                             "inside MuJoCo have fixed torque limits)")
        described = (robot or GO2).velocity_limits
        if torque_speed_curve and described is None:
            raise ValueError(f"MujocoBatchBackend torque_speed_curve: robot {(robot or GO2).name!r} gives no "
                             "velocity_limits (the motors' no-load speeds) in its description")
        super().__init__(num_envs, robot, terrain, substeps, torch.device(device), actuation)
        self._actuation = actuation
        n, m = self._num_envs, self.model
        self.batch = mujoco.batch.Batch(m, nsim=n, nthread=int(num_threads))
        self.batch.reset(keyframe=self.index.home_key)
        self._qpos = self.batch.bind("qpos")
        self._qvel = self.batch.bind("qvel")
        self._ctrl = self.batch.bind("ctrl")
        self._sensordata = self.batch.bind("sensordata")
        self._site_xpos = self.batch.bind("site_xpos")
        self._actuator_force = self.batch.bind("actuator_force")
        self._qsl = self._as_slice(self.index.qpos_adr)
        self._dsl = self._as_slice(self.index.dof_adr)
        default = np.asarray(self.robot.default_joint_pos)
        # the targets of the last call and of the call before (what a delayed world still applies); the servos read
        # theirs from ctrl
        self._targets = np.tile(default, (n, 1))
        self._prev_targets = self._targets.copy()
        self._late_np = np.zeros((self._substeps, n, 1), dtype=bool)
        self._default_np = default
        self._kp_w = np.full((n, self.num_dofs), float(self.robot.kp))  # per-world gains
        self._kd_w = np.full((n, self.num_dofs), float(self.robot.kd))
        self._torque_np = np.asarray(self.robot.torque_limits)
        self._speed_np = np.asarray(described, dtype=np.float64) if torque_speed_curve else None
        self._error = np.zeros(n, dtype=bool)
        self._snapshot: StateArrays | None = None  # float32 copies of the batch arrays, until the state changes

    @staticmethod
    def _as_slice(idx: np.ndarray) -> slice | np.ndarray:
        """Contiguous joints read as slices (views), not gathers."""
        if idx.size and np.all(np.diff(idx) == 1):
            return slice(int(idx[0]), int(idx[-1]) + 1)
        return idx

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        """float32 torch copy of a (possibly strided) numpy array on the backend's device."""
        out = torch.from_numpy(np.asarray(array, dtype=np.float32))
        return out if self._device.type == "cpu" else out.to(self._device)

    def _run(self, call: Callable[[], None]) -> None:
        """Run a batch call, remembering the worlds MuJoCo raised an error for."""
        try:
            call()
        except mujoco.batch.SimulationError as err:
            self._error[err.ids] = True

    @property
    def actuation(self) -> str:
        return self._actuation

    @property
    def velocity_limits(self) -> torch.Tensor | None:
        return None if self._speed_np is None else self._tensor(self._speed_np)

    def _arrays(self) -> StateArrays:
        if self._snapshot is None:
            self._snapshot = StateArrays(self._tensor(self._qpos), self._tensor(self._qvel),
                                         self._tensor(self._sensordata), self._tensor(self._site_xpos),
                                         self._tensor(self._actuator_force))
        return self._snapshot

    def _invalidate(self) -> None:
        super()._invalidate()
        self._snapshot = None

    # ---------------------------------------------------------------- control
    def set_dof_targets(self, targets: torch.Tensor) -> None:
        self._check_targets(targets)
        self._prev_targets[...] = self._targets
        self._targets[...] = targets.detach().cpu().numpy()
        if self._actuation == "position":
            self._ctrl[...] = self._targets

    def step(self) -> None:
        if self._actuation == "position" and not self._delayed:
            self._run(lambda: self.batch.step(nstep=self._substeps))
        else:  # one physics step at a time: the PD in numpy, or targets that switch within the period
            lim = self._torque_np
            for i in range(self._substeps):
                target = np.where(self._late_np[i], self._prev_targets, self._targets) if self._delayed \
                    else self._targets
                if self._actuation == "position":
                    self._ctrl[...] = target
                else:
                    dof_vel = self._qvel[:, self._dsl]
                    tau = self._kp_w * (target - self._qpos[:, self._qsl]) - self._kd_w * dof_vel
                    self._ctrl[...] = np.clip(tau, -lim, lim) if self._speed_np is None \
                        else torque_speed_clip(tau, dof_vel, lim, self._speed_np)
                self._run(lambda: self.batch.step(nstep=1))
        self._invalidate()

    # ---------------------------------------------------------- resets and DR
    def _sorted(self, ids: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Sorted int32 world ids (Batch wants them sorted) and the order that sorts the given ids."""
        ids_np = ids.cpu().numpy()
        order = np.argsort(ids_np, kind="stable")
        return ids_np[order].astype(np.int32), order

    def _write_reset(self, ids: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor) -> None:
        sorted_ids, order = self._sorted(ids)
        # keyframe reset clears warm starts, warnings, time and actuator state
        self.batch.reset(ids=sorted_ids, keyframe=self.index.home_key, stage=mujoco.mjtStage.mjSTAGE_NONE)
        self._qpos[sorted_ids] = qpos.cpu().double().numpy()[order]
        self._qvel[sorted_ids] = qvel.cpu().double().numpy()[order]
        self._targets[sorted_ids] = self._default_np
        self._prev_targets[sorted_ids] = self._default_np
        self._error[sorted_ids] = False
        self._run(lambda: self.batch.forward(ids=sorted_ids))

    def _apply_randomization(self, ids: torch.Tensor, values: dict[str, torch.Tensor]) -> None:
        sorted_ids, order = self._sorted(ids)
        v = {name: value.cpu().double().numpy()[order] for name, value in values.items()}
        idx = self.index
        if "friction" in v:
            friction = self.batch.expand("geom_friction")
            friction[sorted_ids[:, None], idx.robot_geoms[None, :], 0] = v["friction"][:, None]
        if "added_base_mass" in v:
            self.batch.expand("body_mass")[sorted_ids, idx.base_body] = self._base_mass + v["added_base_mass"]
        if "com_offset" in v:
            self.batch.expand("body_ipos")[sorted_ids, idx.base_body] = self._base_ipos + v["com_offset"]
        if any(name in v for name in GAIN_FIELDS):
            kp, kd = (gain.cpu().double().numpy() for gain in self.world_gains(torch.from_numpy(sorted_ids).long()))
            self._kp_w[sorted_ids], self._kd_w[sorted_ids] = kp, kd
            if self._actuation == "position":
                self.batch.expand("actuator_gainprm")[sorted_ids, :, 0] = kp
                self.batch.expand("actuator_biasprm")[sorted_ids, :, 1] = -kp
                self.batch.expand("actuator_biasprm")[sorted_ids, :, 2] = -kd
        dofs = idx.dof_adr[None, :]
        if "joint_damping" in v:
            self.batch.expand("dof_damping")[sorted_ids[:, None], dofs] = v["joint_damping"]
        if "joint_friction" in v:
            self.batch.expand("dof_frictionloss")[sorted_ids[:, None], dofs] = v["joint_friction"]
        if "armature_scale" in v:
            self.batch.expand("dof_armature")[sorted_ids[:, None], dofs] = self._nominal_armature * v["armature_scale"]
        feet = self._foot_geoms[None, :]
        if "foot_solimp_dmin" in v:
            self.batch.expand("geom_solimp")[sorted_ids[:, None], feet, 0] = v["foot_solimp_dmin"][:, None]
        if "foot_solimp_width" in v:
            self.batch.expand("geom_solimp")[sorted_ids[:, None], feet, 2] = v["foot_solimp_width"][:, None]
        if "foot_torsional_friction" in v:
            self.batch.expand("geom_condim")[sorted_ids[:, None], feet] = 4
            self.batch.expand("geom_friction")[sorted_ids[:, None], feet, 1] = v["foot_torsional_friction"][:, None]
        if "impratio" in v:
            self.batch.expand("opt.impratio")[sorted_ids] = v["impratio"]
        if "elliptic_cone" in v:
            self.batch.expand("opt.cone")[sorted_ids] = np.where(v["elliptic_cone"] > 0, mujoco.mjtCone.mjCONE_ELLIPTIC,
                                                                 mujoco.mjtCone.mjCONE_PYRAMIDAL)
        if "action_delay" in v:
            self._late_np = self._late.cpu().numpy()[:, :, None]
        if "added_base_mass" in v or "com_offset" in v or "armature_scale" in v:
            self._run(lambda: self.batch.set_const(ids=sorted_ids))

    def _world_qpos(self, world: int) -> np.ndarray:
        return np.array(self._qpos[world], dtype=np.float64)

    # ---------------------------------------------------------------- resume and failures
    _STATE_FIELDS = ("qpos", "qvel", "act", "ctrl", "qacc_warmstart", "time")

    def state_dict(self) -> dict:
        state: dict[str, Any] = {name: torch.from_numpy(self.batch.bind(name).copy()) for name in self._STATE_FIELDS}
        state["targets"] = torch.from_numpy(np.array(self._targets, copy=True))
        state["prev_targets"] = torch.from_numpy(self._prev_targets.copy())
        state["error"] = torch.from_numpy(self._error.copy())
        state["randomization"] = self._randomization_state()
        return state

    def load_state_dict(self, state: dict) -> None:
        if tuple(state["qpos"].shape) != tuple(self._qpos.shape):
            raise ValueError(
                f"backend state has qpos {tuple(state['qpos'].shape)}, this backend {tuple(self._qpos.shape)}: "
                "a different model or num_envs")
        self._restore_randomization(state["randomization"])
        for name in self._STATE_FIELDS:
            self.batch.bind(name)[...] = state[name].numpy()
        self._targets[...] = state["targets"].numpy()
        self._prev_targets[...] = state.get("prev_targets", state["targets"]).numpy()
        self._error[...] = state["error"].numpy()
        self._run(lambda: self.batch.forward())
        self._invalidate()

    def sim_failures(self) -> torch.Tensor:
        warned = (self.batch.warning[:, _BAD_WARNINGS, 1] > 0).any(axis=1)
        finite = np.isfinite(self._qpos).all(axis=1) & np.isfinite(self._qvel).all(axis=1)
        out = torch.from_numpy(self._error | warned | ~finite)
        return out if self._device.type == "cpu" else out.to(self._device)
