"""What the MuJoCo backends share: the prepared model, robot constants, argument checks, state getters over the
simulator's arrays, domain-randomization bookkeeping, reset-state assembly and rendering.

A subclass provides the simulator: ``_arrays()`` (float32 torch tensors of qpos, qvel, sensordata, site_xpos and
actuator_force, world first), ``set_dof_targets``, ``step``, ``_write_reset``, ``_apply_randomization``,
``sim_failures``, ``state_dict`` / ``load_state_dict`` and ``_world_qpos`` for rendering.
"""

from __future__ import annotations

import copy
import logging
from abc import abstractmethod
from collections.abc import Callable
from typing import NamedTuple

import mujoco
import numpy as np
import torch

from leggedex.envs.backends.base import RANDOMIZED_PARAMETERS, SimBackend, quat_rotate, quat_rotate_inverse
from leggedex.envs.backends.mjcf import MujocoIndex, build_model
from leggedex.envs.terrain import Terrain
from leggedex.robots import GO2, RobotDescription

__all__ = ["MujocoBackend", "MujocoRenderer", "StateArrays"]

DISPLAY_CLIP_M = (0.05, 60.0)  # near and far clipping planes of drawn scenes


class StateArrays(NamedTuple):
    """The simulator arrays the getters read, float32 on ``backend.device``, world first."""

    qpos: torch.Tensor
    qvel: torch.Tensor
    sensordata: torch.Tensor
    site_xpos: torch.Tensor  # (N, nsite, 3)
    actuator_force: torch.Tensor


_PER_JOINT = ("kp_scale", "kd_scale", "joint_damping", "joint_friction", "armature_scale", "motor_strength")
_POSITIVE = ("friction", "kp_scale", "kd_scale", "armature_scale", "motor_strength", "foot_solimp_width", "impratio")
_NON_NEGATIVE = ("joint_damping", "joint_friction", "foot_torsional_friction")
GAIN_FIELDS = ("kp_scale", "kd_scale", "motor_strength")  # what the PD gains of a world depend on

_log = logging.getLogger("leggedex.simulator")


def route_mujoco_warnings() -> None:
    """Send MuJoCo's warnings (an unstable world, a full contact buffer) to the ``leggedex.simulator`` logger
    instead of a MUJOCO_LOG.TXT in the working directory; the backends count them as ``sim_failures`` anyway. A
    handler the user installed is kept."""
    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(lambda message: _log.warning("MuJoCo: %s", message))


class MujocoBackend(SimBackend):
    """Base of the backends that simulate a model prepared by ``mjcf.build_model``."""

    def __init__(self, num_envs: int, robot: RobotDescription | None, terrain: Terrain | None, substeps: int,
                 device: torch.device, actuation: str = "position") -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs <= 0:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if isinstance(substeps, bool) or not isinstance(substeps, (int, np.integer)) or substeps <= 0:
            raise ValueError(f"substeps must be a positive integer, got {substeps!r}")
        route_mujoco_warnings()
        self.robot = robot or GO2
        self._num_envs = int(num_envs)
        self._substeps = int(substeps)
        self._device = torch.device(device)
        self.model: mujoco.MjModel = build_model(self.robot, terrain, actuation)
        self.index = MujocoIndex.of(self.model, self.robot)
        m, idx, dev = self.model, self.index, self._device

        def tensor(x: np.ndarray | list[float] | tuple[float, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.as_tensor(np.asarray(x), dtype=dtype, device=dev)

        self._t_default = tensor(self.robot.default_joint_pos)
        self._t_torque = tensor(self.robot.torque_limits)
        self._t_range = tensor(idx.dof_range)
        self._t_kp = torch.full((self.num_dofs,), float(self.robot.kp), device=dev)
        self._t_kd = torch.full((self.num_dofs,), float(self.robot.kd), device=dev)
        self._home_qpos = tensor(m.key_qpos[idx.home_key], torch.float64)  # resets are assembled in float64
        self._base_mass = float(m.body_mass[idx.base_body])
        self._base_ipos = m.body_ipos[idx.base_body].copy()  # float64, the CoM that com_offset shifts
        self._i_qpos = tensor(idx.qpos_adr, torch.long)
        self._i_dof = tensor(idx.dof_adr, torch.long)
        self._i_foot_force = tensor(idx.foot_force.reshape(-1), torch.long)
        self._i_foot_found = tensor(idx.foot_found, torch.long)
        self._i_body_found = tensor(idx.body_found, torch.long)
        self._i_foot_site = tensor(idx.foot_site, torch.long)
        # (sensors, bodies) 0/1: a body touches when any of its sensors found a contact
        owner = torch.zeros(len(idx.body_found), len(self.robot.contact_bodies), device=dev)
        owner[torch.arange(len(idx.body_found)), tensor(idx.body_of_sensor, torch.long)] = 1.0
        self._sensor_owner = owner
        n, nd = self._num_envs, self.num_dofs
        dofs = idx.dof_adr
        self._nominal_damping = m.dof_damping[dofs].copy()
        self._nominal_friction_loss = m.dof_frictionloss[dofs].copy()
        self._nominal_armature = m.dof_armature[dofs].copy()
        self._foot_geoms = np.array([m.geom(foot).id for foot in self.robot.feet], dtype=np.intp)
        foot_solimp = m.geom_solimp[self._foot_geoms[0]]
        self._dr = {
            "friction": torch.full((n,), idx.nominal_friction, device=dev),
            "added_base_mass": torch.zeros(n, device=dev),
            "com_offset": torch.zeros(n, 3, device=dev),
            "kp_scale": torch.ones(n, nd, device=dev),
            "kd_scale": torch.ones(n, nd, device=dev),
            "joint_damping": tensor(self._nominal_damping).expand(n, -1).clone(),
            "joint_friction": tensor(self._nominal_friction_loss).expand(n, -1).clone(),
            "armature_scale": torch.ones(n, nd, device=dev),
            "motor_strength": torch.ones(n, nd, device=dev),
            "action_delay": torch.zeros(n, device=dev),
            "foot_solimp_dmin": torch.full((n,), float(foot_solimp[0]), device=dev),
            "foot_solimp_width": torch.full((n,), float(foot_solimp[2]), device=dev),
            "impratio": torch.full((n,), float(m.opt.impratio), device=dev),
            "elliptic_cone": torch.full((n,), float(m.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC), device=dev),
            "foot_torsional_friction": torch.full((n,), float(m.geom_friction[self._foot_geoms[0], 1])
                                                  if m.geom_condim[self._foot_geoms[0]] >= 4 else 0.0, device=dev),
        }
        self._late = torch.zeros(self._substeps, n, dtype=torch.bool, device=dev)  # (substep, world): old target
        self._delayed = False  # some world applies its targets late
        self._cache: dict[str, torch.Tensor] = {}

    # ------------------------------------------------------------------ simulator hooks
    @abstractmethod
    def _arrays(self) -> StateArrays:
        """The current simulator arrays (views or copies, valid until the next step, reset or randomize)."""

    @abstractmethod
    def _write_reset(self, ids: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor) -> None:
        """Reset worlds ``ids`` to full ``qpos`` (n, nq) / ``qvel`` (n, nv) (free-joint angular velocity in the
        body frame), clear their solver and actuator state and failure flags, targets to the default pose, and
        recompute their derived quantities (positions, sensors)."""

    @abstractmethod
    def _apply_randomization(self, ids: torch.Tensor, values: dict[str, torch.Tensor]) -> None:
        """Write validated per-world parameters ``values`` of ``ids`` (as ``randomize`` takes them, broadcast to
        full shapes) into the simulator; ``self._dr`` already holds them."""

    @abstractmethod
    def _world_qpos(self, world: int) -> np.ndarray:
        """float64 qpos of one world, for rendering."""

    # ------------------------------------------------------------------ checks
    def _check_ids(self, env_ids: torch.Tensor) -> torch.Tensor:
        if not isinstance(env_ids, torch.Tensor):
            env_ids = torch.as_tensor(np.asarray(env_ids))
        if env_ids.ndim != 1 or env_ids.dtype.is_floating_point or env_ids.dtype == torch.bool:
            raise ValueError(f"env_ids must be a 1-D integer tensor, got {env_ids.dtype} {tuple(env_ids.shape)}")
        ids = env_ids.to(self._device, torch.long)
        if ids.numel():  # one host read for the three checks
            ordered = ids.sort().values
            repeated = (ordered[1:] == ordered[:-1]).any()
            low, high, duplicates = torch.stack([ordered[0], ordered[-1], repeated.long()]).tolist()
            if low < 0 or high >= self._num_envs:
                raise ValueError(f"env_ids must be in [0, {self._num_envs}), got [{low}, {high}]")
            if duplicates:
                raise ValueError("env_ids must be distinct")
        return ids

    def _values(self, x: torch.Tensor | np.ndarray | float, name: str, n: int, tail: tuple[int, ...],
                broadcast: bool = False, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """(n, *tail) values; ``broadcast`` accepts a scalar and, for a per-joint tail, one per world."""
        t = torch.as_tensor(x).to(self._device, dtype)
        if broadcast and t.ndim == 0:
            t = t.expand(n, *tail)
        if broadcast and tail and tuple(t.shape) == (n,):
            t = t[:, None].expand(n, *tail)
        if tuple(t.shape) != (n, *tail):
            raise ValueError(f"{name} must have shape {(n, *tail)}, got {tuple(t.shape)}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} must be finite")
        return t.contiguous()

    # ------------------------------------------------------------------ sizes and constants
    @property
    def num_envs(self) -> int:
        return self._num_envs

    @property
    def num_dofs(self) -> int:
        return len(self.robot.joints)

    @property
    def dof_names(self) -> list[str]:
        return self.robot.dof_names

    @property
    def foot_names(self) -> list[str]:
        return list(self.robot.feet)

    @property
    def contact_body_names(self) -> list[str]:
        return list(self.robot.contact_bodies)

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def sim_dt(self) -> float:
        return float(self.model.opt.timestep)

    @property
    def substeps(self) -> int:
        return self._substeps

    @property
    def default_dof_pos(self) -> torch.Tensor:
        return self._t_default.clone()

    @property
    def torque_limits(self) -> torch.Tensor:
        return self._t_torque.clone()

    @property
    def dof_pos_limits(self) -> torch.Tensor:
        return self._t_range.clone()

    @property
    def home_base_height(self) -> float:
        return float(self.robot.home_base_height)

    @property
    def kp(self) -> torch.Tensor:
        return self._t_kp.clone()

    @property
    def kd(self) -> torch.Tensor:
        return self._t_kd.clone()

    def _check_targets(self, targets: torch.Tensor) -> None:
        if tuple(targets.shape) != (self._num_envs, self.num_dofs):
            raise ValueError(
                f"targets must have shape {(self._num_envs, self.num_dofs)}, got {tuple(targets.shape)}")

    # ------------------------------------------------------------------ state
    def _cached(self, key: str, make: Callable[[], torch.Tensor]) -> torch.Tensor:
        """A derived reading, computed once until the state changes (``_invalidate``)."""
        value = self._cache.get(key)
        if value is None:
            value = self._cache[key] = make()
        return value

    @property
    def root_pos(self) -> torch.Tensor:
        return self._arrays().qpos[:, 0:3]

    @property
    def root_quat(self) -> torch.Tensor:
        return self._arrays().qpos[:, 3:7]

    @property
    def root_lin_vel_world(self) -> torch.Tensor:
        return self._arrays().qvel[:, 0:3]

    @property
    def root_ang_vel_body(self) -> torch.Tensor:  # MuJoCo's free joint keeps the angular velocity in the body frame
        return self._arrays().qvel[:, 3:6]

    @property
    def root_ang_vel_world(self) -> torch.Tensor:
        return self._cached("ang_vel_world", lambda: quat_rotate(self.root_quat, self.root_ang_vel_body))

    @property
    def root_lin_vel_body(self) -> torch.Tensor:
        return self._cached("lin_vel_body", lambda: quat_rotate_inverse(self.root_quat, self.root_lin_vel_world))

    @property
    def projected_gravity(self) -> torch.Tensor:
        # the contract's own computation (mypy reads the base property as a plain method: no fget)
        return self._cached("gravity", lambda: SimBackend.projected_gravity.fget(self))  # type: ignore[attr-defined]

    @property
    def dof_pos(self) -> torch.Tensor:
        return self._cached("dof_pos", lambda: self._arrays().qpos.index_select(1, self._i_qpos))

    @property
    def dof_vel(self) -> torch.Tensor:
        return self._cached("dof_vel", lambda: self._arrays().qvel.index_select(1, self._i_dof))

    @property
    def applied_torques(self) -> torch.Tensor:
        return self._arrays().actuator_force

    @property
    def foot_contact_forces(self) -> torch.Tensor:
        # the netforce sensor reports the foot's force on the ground: negate
        return self._cached("foot_forces", lambda: -self._arrays().sensordata.index_select(
            1, self._i_foot_force).view(self._num_envs, -1, 3))

    @property
    def foot_contact(self) -> torch.Tensor:
        return self._cached("foot_contact",
                            lambda: self._arrays().sensordata.index_select(1, self._i_foot_found) > 0)

    @property
    def foot_pos_world(self) -> torch.Tensor:
        return self._cached("foot_pos", lambda: self._arrays().site_xpos.index_select(1, self._i_foot_site))

    @property
    def body_contact(self) -> torch.Tensor:
        return self._cached("body_contact", lambda: (
            (self._arrays().sensordata.index_select(1, self._i_body_found) > 0).float() @ self._sensor_owner) > 0)

    @property
    def friction(self) -> torch.Tensor:
        return self._dr["friction"].clone()

    @property
    def added_base_mass(self) -> torch.Tensor:
        return self._dr["added_base_mass"].clone()

    @property
    def com_offset(self) -> torch.Tensor:
        return self._dr["com_offset"].clone()

    @property
    def kp_scale(self) -> torch.Tensor:
        return self._dr["kp_scale"].clone()

    @property
    def kd_scale(self) -> torch.Tensor:
        return self._dr["kd_scale"].clone()

    @property
    def joint_damping(self) -> torch.Tensor:
        return self._dr["joint_damping"].clone()

    @property
    def joint_friction(self) -> torch.Tensor:
        return self._dr["joint_friction"].clone()

    @property
    def armature_scale(self) -> torch.Tensor:
        return self._dr["armature_scale"].clone()

    @property
    def motor_strength(self) -> torch.Tensor:
        return self._dr["motor_strength"].clone()

    @property
    def action_delay(self) -> torch.Tensor:
        return self._dr["action_delay"].clone()

    @property
    def foot_solimp_dmin(self) -> torch.Tensor:
        return self._dr["foot_solimp_dmin"].clone()

    @property
    def foot_solimp_width(self) -> torch.Tensor:
        return self._dr["foot_solimp_width"].clone()

    @property
    def impratio(self) -> torch.Tensor:
        return self._dr["impratio"].clone()

    @property
    def elliptic_cone(self) -> torch.Tensor:
        return self._dr["elliptic_cone"].clone()

    @property
    def foot_torsional_friction(self) -> torch.Tensor:
        return self._dr["foot_torsional_friction"].clone()

    def world_gains(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, num_dofs) PD stiffness and damping of worlds ``ids``: nominal x scale x motor strength."""
        strength = self._dr["motor_strength"][ids]
        return (self._t_kp * self._dr["kp_scale"][ids] * strength, self._t_kd * self._dr["kd_scale"][ids] * strength)

    # ------------------------------------------------------------------ resets and DR
    def reset(self, env_ids: torch.Tensor, root_pos: torch.Tensor, root_quat: torch.Tensor,
              root_lin_vel: torch.Tensor, root_ang_vel: torch.Tensor, dof_pos: torch.Tensor,
              dof_vel: torch.Tensor) -> None:
        ids = self._check_ids(env_ids)
        n = ids.numel()
        nd = self.num_dofs
        f64 = torch.float64  # assembled in double precision, as MuJoCo keeps its state; a float32 simulator casts
        pos = self._values(root_pos, "root_pos", n, (3,), dtype=f64)
        quat = self._values(root_quat, "root_quat", n, (4,), dtype=f64)
        lin = self._values(root_lin_vel, "root_lin_vel", n, (3,), dtype=f64)
        ang = self._values(root_ang_vel, "root_ang_vel", n, (3,), dtype=f64)
        jpos = self._values(dof_pos, "dof_pos", n, (nd,), dtype=f64)
        jvel = self._values(dof_vel, "dof_vel", n, (nd,), dtype=f64)
        if n == 0:
            return
        norm = quat.norm(dim=1, keepdim=True)
        if bool((norm < 1e-6).any()):
            raise ValueError("root_quat must be non-zero quaternions")
        quat = quat / norm
        qpos = self._home_qpos.expand(n, -1).clone()
        qpos[:, 0:3] = pos
        qpos[:, 3:7] = quat
        qpos[:, self._i_qpos] = jpos
        qvel = torch.zeros(n, self.model.nv, device=self._device, dtype=f64)
        qvel[:, 0:3] = lin
        qvel[:, 3:6] = quat_rotate_inverse(quat, ang)
        qvel[:, self._i_dof] = jvel
        self._write_reset(ids, qpos, qvel)
        self._invalidate()

    def randomize(self, env_ids: torch.Tensor, friction: torch.Tensor | None = None,
                  added_base_mass: torch.Tensor | None = None, com_offset: torch.Tensor | None = None,
                  kp_scale: torch.Tensor | None = None, kd_scale: torch.Tensor | None = None,
                  joint_damping: torch.Tensor | None = None, joint_friction: torch.Tensor | None = None,
                  armature_scale: torch.Tensor | None = None, motor_strength: torch.Tensor | None = None,
                  action_delay: torch.Tensor | None = None, foot_solimp_dmin: torch.Tensor | None = None,
                  foot_solimp_width: torch.Tensor | None = None, impratio: torch.Tensor | None = None,
                  elliptic_cone: torch.Tensor | None = None,
                  foot_torsional_friction: torch.Tensor | None = None) -> None:
        ids = self._check_ids(env_ids)
        n, nd = ids.numel(), self.num_dofs
        given = {"friction": friction, "added_base_mass": added_base_mass, "com_offset": com_offset,
                 "kp_scale": kp_scale, "kd_scale": kd_scale, "joint_damping": joint_damping,
                 "joint_friction": joint_friction, "armature_scale": armature_scale,
                 "motor_strength": motor_strength, "action_delay": action_delay,
                 "foot_solimp_dmin": foot_solimp_dmin, "foot_solimp_width": foot_solimp_width, "impratio": impratio,
                 "elliptic_cone": elliptic_cone, "foot_torsional_friction": foot_torsional_friction}
        fixed = [name for name, value in given.items() if value is not None and name not in self.per_world_parameters]
        if fixed:
            raise ValueError(f"{type(self).__name__} cannot give each world its own {fixed} (it varies "
                             f"{sorted(self.per_world_parameters)})")
        values = {}
        for name in RANDOMIZED_PARAMETERS:  # validate everything before changing anything
            raw = given[name]
            if raw is None:
                continue
            tail = (nd,) if name in _PER_JOINT else (3,) if name == "com_offset" else ()
            value = self._values(raw, name, n, tail, broadcast=name != "com_offset")
            if name in _POSITIVE and bool((value <= 0).any()):
                raise ValueError(f"{name} must be > 0")
            if name in _NON_NEGATIVE and bool((value < 0).any()):
                raise ValueError(f"{name} must be >= 0")
            if name == "foot_solimp_dmin" and bool(((value <= 0) | (value >= 1)).any()):
                raise ValueError("foot_solimp_dmin must be in (0, 1)")
            if name == "elliptic_cone" and bool(((value != 0) & (value != 1)).any()):
                raise ValueError("elliptic_cone must be 0 (pyramidal) or 1 (elliptic) per world")
            if name == "added_base_mass" and bool((self._base_mass + value <= 0.05 * self._base_mass).any()):
                raise ValueError(f"added_base_mass must keep the base mass above 5 % of its {self._base_mass} kg")
            if name == "action_delay" and bool(((value != value.round()) | (value < 0) | (value > self._substeps))
                                               .any()):
                raise ValueError(f"action_delay must be a whole number of physics steps in [0, {self._substeps}] "
                                 f"(at most one control period of {self._substeps} x {self.sim_dt} s: the backend "
                                 "keeps the previous period's targets only)")
            values[name] = value
        if n == 0 or not values:
            return
        for name, value in values.items():
            self._dr[name][ids] = value
        if "action_delay" in values:
            steps = torch.arange(self._substeps, device=self._device)[:, None]
            self._late = steps < self._dr["action_delay"][None, :]
            self._delayed = bool(self._late.any())
        self._apply_randomization(ids, values)
        self._invalidate()

    def _invalidate(self) -> None:
        """Forget readings derived from the previous state (after a step, reset, randomize or load)."""
        self._cache.clear()

    def _randomization_state(self) -> dict[str, torch.Tensor]:
        return {name: value.cpu().clone() for name, value in self._dr.items()}

    def _restore_randomization(self, state: dict[str, torch.Tensor]) -> None:
        """``randomize`` every world to a ``_randomization_state``; parameters still at this backend's values are
        not written (a nominal float64 model value would come back float32-rounded, and the resume not be exact)."""
        changed = {name: value for name, value in state.items()
                   if not torch.equal(value.to(self._device), self._dr[name])}
        self.randomize(torch.arange(self._num_envs), **changed)

    # ------------------------------------------------------------------ rendering
    def pose(self, data: mujoco.MjData, world: int = 0) -> None:
        """Put world ``world``'s current pose into ``data`` (positions and the kinematics drawing needs)."""
        data.qpos[:] = self._world_qpos(world)
        mujoco.mj_kinematics(self.model, data)
        mujoco.mj_comPos(self.model, data)  # subtree_com: where the tracking camera looks

    def display_model(self) -> mujoco.MjModel:
        """A copy of the model to draw with, its clipping planes in metres: MuJoCo scales them by the model's extent,
        and on a terrain of tens of metres the near plane would lie beyond a camera close to the robot."""
        model = copy.deepcopy(self.model)
        model.vis.map.znear = DISPLAY_CLIP_M[0] / model.stat.extent
        model.vis.map.zfar = DISPLAY_CLIP_M[1] / model.stat.extent
        return model

    def renderer(self, width: int = 480, height: int = 320) -> MujocoRenderer:
        return MujocoRenderer(self, width, height)


class MujocoRenderer:
    """MuJoCo's offscreen renderer on one world at a time, with a camera that follows the base."""

    def __init__(self, backend: MujocoBackend, width: int, height: int) -> None:
        self.backend = backend
        model = backend.display_model()
        self._data = mujoco.MjData(model)
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        self._camera.trackbodyid = backend.index.base_body
        self._camera.distance, self._camera.elevation, self._camera.azimuth = 1.6, -20.0, 135.0
        self._renderer = mujoco.Renderer(model, height, width)

    def render(self, world: int = 0) -> np.ndarray:
        """(height, width, 3) uint8 image of world ``world`` in its current state."""
        self.backend.pose(self._data, world)
        self._renderer.update_scene(self._data, camera=self._camera)
        return self._renderer.render().copy()

    def close(self) -> None:
        self._renderer.close()
