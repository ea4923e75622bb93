"""CPU backend over ``mujoco.batch.Batch`` (MuJoCo 4): N worlds on a thread pool.

Scene
-----
The robot MJCF (default: ``leggedex/assets/go2/go2.xml``) holds no ground. The
backend loads it into an ``mujoco.MjSpec``, lets a ``terrain`` callable add the
ground to the world body (default ``add_flat_ground``: one plane), and compiles.
A heightfield terrain is a different callable; ground geoms must keep geom group
0 (robot geoms are group 1), so ray casts for height scans can select group 0.

Model requirements (met by the Go2 file): a free joint on a body named ``base``;
one actuator per hinge joint, in ``dof_names`` order, built as position servos
(``<position kp kv forcerange forcelimited>``); per foot ``<leg>_foot`` a geom, a
site and a contact sensor ``<leg>_foot_force`` with ``data="found force"`` and
``reduce="netforce"``; contact sensors ``<body>_contact`` with ``data="found"``
for the bodies whose ground contact is reported; a keyframe ``home``.

Actuation
---------
``actuation="position"`` (default): the model's position actuators run the PD
inside every physics step, ``ctrl`` holds the targets and ``step`` is a single
``Batch.step(nstep=substeps)`` call. ``actuation="motor"``: the actuators become
torque motors and the PD is evaluated in numpy before each single physics step
(same control law; measured 3-7 % slower on 2 cores, see docs/backend_notes.md).
Per-world gain scales (``randomize``) go into ``actuator_gainprm``/``biasprm``
(position) or the numpy gain arrays (motor).

Frames and timing
-----------------
MuJoCo's free joint stores the base linear velocity in the world frame and the
angular velocity in the base body frame; this backend reads ``qvel`` and offers
both frames for both (``root_*_vel_world`` / ``root_*_vel_body``).
``root_*``, ``dof_*`` come from ``qpos``/``qvel`` and are exact after ``step``.
``Batch.step`` leaves derived quantities (``site_xpos``, sensors,
``actuator_force``) as computed at the start of the last physics step, as
``mj_step`` does: ``foot_pos_world`` lags the state by one physics step (5 ms),
and contact forces / torques are those applied during the last physics step.

Failures
--------
MuJoCo resets a world whose state turns NaN/Inf or huge (auto-reset) and counts
an instability warning; ``Batch`` raises ``SimulationError`` for worlds that hit
an error (those keep their previous state). ``sim_failures`` reports both, plus
non-finite state written from outside, until the world is reset.

Every read converts a float64 batch view to float32 once and caches it until the
next ``step``, ``reset`` or ``randomize``; no per-world Python loop anywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import mujoco
import mujoco.batch
import numpy as np
import torch

from .base import SimBackend, quat_rotate, quat_rotate_inverse

__all__ = ["GO2_MODEL_PATH", "MujocoBatchBackend", "add_flat_ground", "build_model"]

GO2_MODEL_PATH = Path(__file__).resolve().parents[2] / "assets" / "go2" / "go2.xml"

# warnings that mean a world's simulation went wrong (mjWARN_INERTIA excluded)
_BAD_WARNINGS = [
    int(mujoco.mjtWarning.mjWARN_CONTACTFULL),
    int(mujoco.mjtWarning.mjWARN_CNSTRFULL),
    int(mujoco.mjtWarning.mjWARN_BADQPOS),
    int(mujoco.mjtWarning.mjWARN_BADQVEL),
    int(mujoco.mjtWarning.mjWARN_BADQACC),
    int(mujoco.mjtWarning.mjWARN_BADCTRL),
]


def add_flat_ground(spec: mujoco.MjSpec) -> None:
    """Add an infinite ground plane (geom ``floor``, group 0) to the world body."""
    spec.worldbody.add_geom(
        name="floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[0.0, 0.0, 0.05],
        group=0,
        rgba=[0.35, 0.4, 0.45, 1.0],
    )


def build_model(
    model_path: str | Path | None = None,
    actuation: str = "position",
    terrain: Callable[[mujoco.MjSpec], None] | None = None,
) -> mujoco.MjModel:
    """Compile robot + ground; ``actuation`` "position" keeps the servos, "motor"
    turns every actuator into a torque motor limited to its force range."""
    if actuation not in ("position", "motor"):
        raise ValueError(f"actuation must be 'position' or 'motor', got {actuation!r}")
    spec = mujoco.MjSpec.from_file(str(model_path or GO2_MODEL_PATH))
    (terrain or add_flat_ground)(spec)
    if actuation == "motor":
        for act in spec.actuators:
            limit = float(act.forcerange[1])
            act.set_to_motor()
            act.ctrlrange = [-limit, limit]
            act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        for key in spec.keys:
            key.ctrl = np.zeros(len(spec.actuators))
    return spec.compile()


def _name(model: mujoco.MjModel, obj: mujoco.mjtObj, i: int) -> str:
    return mujoco.mj_id2name(model, obj, i) or ""


class MujocoBatchBackend(SimBackend):
    """``num_envs`` Go2 worlds in one ``mujoco.batch.Batch``.

    Args:
        num_envs: number of worlds, > 0.
        model_path: robot MJCF; None for the leggedex Go2.
        num_threads: Batch worker threads; 0 uses all cores.
        device: torch device of the returned tensors.
        substeps: physics steps per ``step()`` (decimation).
        actuation: "position" (PD inside MuJoCo) or "motor" (PD in numpy).
        terrain: callable adding ground geoms to the MjSpec world body;
            None for a flat plane.
        kp, kd: nominal PD gains overriding the model's (None: keep the model's,
            20 / 0.5 for the Go2 file).
    """

    def __init__(
        self,
        num_envs: int,
        model_path: str | Path | None = None,
        num_threads: int = 0,
        device: str | torch.device = "cpu",
        substeps: int = 4,
        actuation: str = "position",
        terrain: Callable[[mujoco.MjSpec], None] | None = None,
        kp: float | None = None,
        kd: float | None = None,
    ) -> None:
        if not isinstance(num_envs, (int, np.integer)) or num_envs <= 0:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if not isinstance(substeps, (int, np.integer)) or substeps <= 0:
            raise ValueError(f"substeps must be a positive integer, got {substeps!r}")
        if num_threads < 0:
            raise ValueError(f"num_threads must be >= 0 (0: all cores), got {num_threads}")
        if actuation not in ("position", "motor"):
            raise ValueError(f"actuation must be 'position' or 'motor', got {actuation!r}")
        self._num_envs = int(num_envs)
        self._substeps = int(substeps)
        self._device = torch.device(device)
        self._actuation = actuation

        # position-servo model first: it defines the nominal gains
        pos_model = build_model(model_path, "position", terrain)
        self._check_model(pos_model)
        kp_nom = pos_model.actuator_gainprm[:, 0].copy()
        kd_nom = -pos_model.actuator_biasprm[:, 2].copy()
        if kp is not None:
            kp_nom[:] = kp
        if kd is not None:
            kd_nom[:] = kd
        if not (np.all(kp_nom > 0) and np.all(kd_nom >= 0)):
            raise ValueError(f"PD gains must be kp > 0, kd >= 0, got kp={kp_nom}, kd={kd_nom}")
        self._kp_nom = kp_nom
        self._kd_nom = kd_nom
        if actuation == "position":
            model = pos_model
            model.actuator_gainprm[:, 0] = kp_nom
            model.actuator_biasprm[:, 1] = -kp_nom
            model.actuator_biasprm[:, 2] = -kd_nom
        else:
            model = build_model(model_path, actuation, terrain)
        self.model: mujoco.MjModel = model
        self._index_model(model)
        self._torque_lim = pos_model.actuator_forcerange[:, 1].copy()

        self.batch = mujoco.batch.Batch(model, nsim=self._num_envs, nthread=int(num_threads))
        self.batch.reset(keyframe=self._home_key)
        self._qpos = self.batch.bind("qpos")
        self._qvel = self.batch.bind("qvel")
        self._ctrl = self.batch.bind("ctrl")
        self._sensordata = self.batch.bind("sensordata")
        self._site_xpos = self.batch.bind("site_xpos")
        self._actuator_force = self.batch.bind("actuator_force")

        n = self._num_envs
        if actuation == "position":
            self._targets = self._ctrl  # the servos read their targets from ctrl
        else:
            self._targets = np.tile(self._default_dof_pos, (n, 1))
        self._kp_w = np.tile(kp_nom, (n, 1))  # per-world gains (motor PD)
        self._kd_w = np.tile(kd_nom, (n, 1))
        self._error = np.zeros(n, dtype=bool)
        # domain-randomization state, reported back for privileged observations
        self._dr_friction = np.full(n, self._nominal_friction)
        self._dr_added_mass = np.zeros(n)
        self._dr_com = np.zeros((n, 3))
        self._dr_kp = np.ones((n, self.num_dofs))
        self._dr_kd = np.ones((n, self.num_dofs))
        self._cache: dict[str, torch.Tensor] = {}

        dev = self._device
        self._t_default = torch.as_tensor(self._default_dof_pos, dtype=torch.float32, device=dev)
        self._t_torque = torch.as_tensor(self._torque_lim, dtype=torch.float32, device=dev)
        self._t_range = torch.as_tensor(self._dof_range, dtype=torch.float32, device=dev)
        self._t_kp = torch.as_tensor(kp_nom, dtype=torch.float32, device=dev)
        self._t_kd = torch.as_tensor(kd_nom, dtype=torch.float32, device=dev)
        # sensordata columns, as torch indices (indexing a tensor with numpy arrays is slow)
        self._t_foot_force_idx = torch.as_tensor(self._foot_force_idx.reshape(-1), device=dev)
        self._t_foot_found_idx = torch.as_tensor(self._foot_found_idx, device=dev)
        self._t_body_found_idx = torch.as_tensor(self._body_found_idx, device=dev)
        self._t_qsl = self._qsl if isinstance(self._qsl, slice) else torch.as_tensor(self._qsl, device=dev)
        self._t_dsl = self._dsl if isinstance(self._dsl, slice) else torch.as_tensor(self._dsl, device=dev)

    # ------------------------------------------------------------- model setup
    @staticmethod
    def _check_model(model: mujoco.MjModel) -> None:
        base = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "base")
        if base < 0 or model.body_jntnum[base] != 1:
            raise ValueError("the model needs a body 'base' with one free joint")
        if model.jnt_type[model.body_jntadr[base]] != mujoco.mjtJoint.mjJNT_FREE:
            raise ValueError("the joint of body 'base' must be a free joint")
        if model.jnt_qposadr[model.body_jntadr[base]] != 0:
            raise ValueError("the base free joint must be the model's first joint")
        if model.nu == 0 or not np.all(model.actuator_biastype == mujoco.mjtBias.mjBIAS_AFFINE):
            raise ValueError("the model's actuators must be position servos (<position>)")
        if not np.all(model.actuator_forcelimited):
            raise ValueError("the actuators must be force limited (forcerange: motor torque limits)")
        if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "home") < 0:
            raise ValueError("the model needs a keyframe named 'home'")

    def _index_model(self, m: mujoco.MjModel) -> None:
        obj = mujoco.mjtObj
        joints = m.actuator_trnid[:, 0]
        if not np.all(m.jnt_type[joints] == mujoco.mjtJoint.mjJNT_HINGE):
            raise ValueError("every actuator must drive a hinge joint")
        self._dof_names = [_name(m, obj.mjOBJ_JOINT, j).removesuffix("_joint") for j in joints]
        self._qadr = m.jnt_qposadr[joints].astype(np.intp)
        self._dadr = m.jnt_dofadr[joints].astype(np.intp)
        # contiguous joints read as slices (views), not gathers
        self._qsl = self._as_slice(self._qadr)
        self._dsl = self._as_slice(self._dadr)
        self._home_key = mujoco.mj_name2id(m, obj.mjOBJ_KEY, "home")
        self._default_dof_pos = m.key_qpos[self._home_key, self._qadr].copy()
        self._home_height = float(m.key_qpos[self._home_key, 2])
        self._dof_range = m.jnt_range[joints].copy()
        self._base_body = mujoco.mj_name2id(m, obj.mjOBJ_BODY, "base")
        self._base_mass = float(m.body_mass[self._base_body])
        self._base_ipos = m.body_ipos[self._base_body].copy()

        # feet: geom, site and contact sensor share the name prefix
        sensor_names = [_name(m, obj.mjOBJ_SENSOR, i) for i in range(m.nsensor)]
        feet = [s.removesuffix("_force") for s in sensor_names if s.endswith("_foot_force")]
        if not feet:
            raise ValueError("the model has no '<leg>_foot_force' contact sensors")
        self._foot_names = feet
        found, force = [], []
        for f in feet:
            s = m.sensor(f + "_force")
            if m.sensor_type[s.id] != mujoco.mjtSensor.mjSENS_CONTACT or m.sensor_dim[s.id] != 4:
                raise ValueError(f"sensor {f}_force must be a contact sensor with data='found force'")
            found.append(m.sensor_adr[s.id])
            force.append(m.sensor_adr[s.id] + np.arange(1, 4))
        self._foot_found_idx = np.array(found, dtype=np.intp)
        self._foot_force_idx = np.array(force, dtype=np.intp)
        self._foot_site = np.array([m.site(f).id for f in feet], dtype=np.intp)
        self._contact_names = [s.removesuffix("_contact") for s in sensor_names if s.endswith("_contact")]
        self._body_found_idx = np.array(
            [m.sensor_adr[m.sensor(b + "_contact").id] for b in self._contact_names], dtype=np.intp
        )
        # robot geoms: everything not on the world body
        self._robot_geoms = np.flatnonzero(m.geom_bodyid != 0).astype(np.intp)
        foot_geom = m.geom(feet[0]).id
        self._nominal_friction = float(m.geom_friction[foot_geom, 0])

    @staticmethod
    def _as_slice(idx: np.ndarray) -> slice | np.ndarray:
        if idx.size and np.all(np.diff(idx) == 1):
            return slice(int(idx[0]), int(idx[-1]) + 1)
        return idx

    # ---------------------------------------------------------------- helpers
    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        """float32 torch copy of a (possibly strided, read-only) numpy array."""
        out = torch.from_numpy(np.asarray(array, dtype=np.float32))
        return out if self._device.type == "cpu" else out.to(self._device)

    def _cached(self, key: str, make: Callable[[], torch.Tensor]) -> torch.Tensor:
        value = self._cache.get(key)
        if value is None:
            value = make()
            self._cache[key] = value
        return value

    def _numpy(self, x: torch.Tensor | np.ndarray | float, name: str) -> np.ndarray:
        if isinstance(x, torch.Tensor):
            x = x.detach().to("cpu", torch.float64).numpy()
        arr = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite")
        return arr

    def _ids(self, env_ids: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sorted int32 world ids and the permutation that sorts the given order."""
        if isinstance(env_ids, torch.Tensor):
            env_ids = env_ids.detach().cpu().numpy()
        ids = np.asarray(env_ids)
        if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
            raise ValueError("env_ids must be a 1-D integer tensor")
        order = np.argsort(ids, kind="stable")
        ids = ids[order]
        if ids.size and (ids[0] < 0 or ids[-1] >= self._num_envs):
            raise ValueError(f"env_ids must be in [0, {self._num_envs})")
        if ids.size > 1 and np.any(ids[1:] == ids[:-1]):
            raise ValueError("env_ids must be distinct")
        return ids.astype(np.int32), order

    def _per_world(
        self,
        x: torch.Tensor | np.ndarray | float,
        name: str,
        n: int,
        tail: tuple[int, ...],
        order: np.ndarray,
        broadcast: bool = False,
    ) -> np.ndarray:
        """(n, *tail) float64 values in sorted-id order; ``broadcast`` accepts a
        scalar for all worlds and, for a per-joint tail, one value per world."""
        arr = self._numpy(x, name)
        if broadcast and arr.ndim == 0:
            arr = np.full((n, *tail), float(arr))
        if broadcast and tail and arr.shape == (n,):
            arr = np.repeat(arr[:, None], tail[0], axis=1)
        if arr.shape != (n, *tail):
            raise ValueError(f"{name} must have shape {(n, *tail)}, got {arr.shape}")
        return arr[order]

    def _run(self, call: Callable[[], None]) -> None:
        """Run a batch call, remembering the worlds MuJoCo raised an error for."""
        try:
            call()
        except mujoco.batch.SimulationError as err:
            self._error[err.ids] = True

    # ------------------------------------------------------------ properties
    @property
    def num_envs(self) -> int:
        return self._num_envs

    @property
    def num_dofs(self) -> int:
        return len(self._dof_names)

    @property
    def dof_names(self) -> list[str]:
        return list(self._dof_names)

    @property
    def foot_names(self) -> list[str]:
        return list(self._foot_names)

    @property
    def contact_body_names(self) -> list[str]:
        return list(self._contact_names)

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
    def actuation(self) -> str:
        return self._actuation

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
        return self._home_height

    @property
    def kp(self) -> torch.Tensor:
        return self._t_kp.clone()

    @property
    def kd(self) -> torch.Tensor:
        return self._t_kd.clone()

    # ---------------------------------------------------------------- control
    def set_dof_targets(self, targets: torch.Tensor) -> None:
        if tuple(targets.shape) != (self._num_envs, self.num_dofs):
            raise ValueError(
                f"targets must have shape {(self._num_envs, self.num_dofs)}, got {tuple(targets.shape)}"
            )
        self._targets[...] = targets.detach().cpu().numpy()

    def step(self) -> None:
        if self._actuation == "position":
            self._run(lambda: self.batch.step(nstep=self._substeps))
        else:
            lim = self._torque_lim
            for _ in range(self._substeps):
                q = self._qpos[:, self._qsl]
                qd = self._qvel[:, self._dsl]
                tau = self._kp_w * (self._targets - q) - self._kd_w * qd
                np.clip(tau, -lim, lim, out=tau)
                self._ctrl[...] = tau
                self._run(lambda: self.batch.step(nstep=1))
        self._cache.clear()

    # ------------------------------------------------------------------ state
    def _q(self) -> torch.Tensor:
        return self._cached("qpos", lambda: self._tensor(self._qpos))

    def _v(self) -> torch.Tensor:
        return self._cached("qvel", lambda: self._tensor(self._qvel))

    def _s(self) -> torch.Tensor:
        return self._cached("sensordata", lambda: self._tensor(self._sensordata))

    @property
    def root_pos(self) -> torch.Tensor:
        return self._q()[:, 0:3]

    @property
    def root_quat(self) -> torch.Tensor:
        return self._q()[:, 3:7]

    @property
    def root_lin_vel_world(self) -> torch.Tensor:
        return self._v()[:, 0:3]

    @property
    def root_ang_vel_body(self) -> torch.Tensor:
        return self._v()[:, 3:6]

    @property
    def root_ang_vel_world(self) -> torch.Tensor:
        return self._cached("ang_vel_world", lambda: quat_rotate(self.root_quat, self.root_ang_vel_body))

    @property
    def root_lin_vel_body(self) -> torch.Tensor:
        return self._cached(
            "lin_vel_body", lambda: quat_rotate_inverse(self.root_quat, self.root_lin_vel_world)
        )

    @property
    def projected_gravity(self) -> torch.Tensor:
        return self._cached("gravity", lambda: SimBackend.projected_gravity.fget(self))

    @property
    def dof_pos(self) -> torch.Tensor:
        return self._cached("dof_pos", lambda: self._q()[:, self._t_qsl])

    @property
    def dof_vel(self) -> torch.Tensor:
        return self._cached("dof_vel", lambda: self._v()[:, self._t_dsl])

    @property
    def applied_torques(self) -> torch.Tensor:
        return self._cached("torques", lambda: self._tensor(self._actuator_force))

    @property
    def foot_contact_forces(self) -> torch.Tensor:
        # the netforce sensor reports the foot's force on the ground: negate
        return self._cached(
            "foot_forces",
            lambda: -self._s().index_select(1, self._t_foot_force_idx).view(self._num_envs, -1, 3),
        )

    @property
    def foot_contact(self) -> torch.Tensor:
        return self._cached("foot_contact", lambda: self._s().index_select(1, self._t_foot_found_idx) > 0)

    @property
    def foot_pos_world(self) -> torch.Tensor:
        return self._cached("foot_pos", lambda: self._tensor(self._site_xpos[:, self._foot_site]))

    @property
    def body_contact(self) -> torch.Tensor:
        return self._cached("body_contact", lambda: self._s().index_select(1, self._t_body_found_idx) > 0)

    @property
    def friction(self) -> torch.Tensor:
        return self._tensor(self._dr_friction)

    @property
    def added_base_mass(self) -> torch.Tensor:
        return self._tensor(self._dr_added_mass)

    @property
    def com_offset(self) -> torch.Tensor:
        return self._tensor(self._dr_com)

    @property
    def kp_scale(self) -> torch.Tensor:
        return self._tensor(self._dr_kp)

    @property
    def kd_scale(self) -> torch.Tensor:
        return self._tensor(self._dr_kd)

    # ---------------------------------------------------------- resets and DR
    def reset(
        self,
        env_ids: torch.Tensor,
        root_pos: torch.Tensor,
        root_quat: torch.Tensor,
        root_lin_vel: torch.Tensor,
        root_ang_vel: torch.Tensor,
        dof_pos: torch.Tensor,
        dof_vel: torch.Tensor,
    ) -> None:
        ids, order = self._ids(env_ids)
        n = ids.size
        if n == 0:
            return
        nd = self.num_dofs
        pos = self._per_world(root_pos, "root_pos", n, (3,), order)
        quat = self._per_world(root_quat, "root_quat", n, (4,), order)
        lin = self._per_world(root_lin_vel, "root_lin_vel", n, (3,), order)
        ang = self._per_world(root_ang_vel, "root_ang_vel", n, (3,), order)
        jpos = self._per_world(dof_pos, "dof_pos", n, (nd,), order)
        jvel = self._per_world(dof_vel, "dof_vel", n, (nd,), order)
        norm = np.linalg.norm(quat, axis=1, keepdims=True)
        if np.any(norm < 1e-6):
            raise ValueError("root_quat must be non-zero quaternions")
        quat = quat / norm
        # free-joint angular velocity lives in the body frame
        ang_body = quat_rotate_inverse(torch.from_numpy(quat), torch.from_numpy(ang)).numpy()

        # keyframe reset clears warm starts, warnings, time and actuator state
        self.batch.reset(ids=ids, keyframe=self._home_key, stage=mujoco.mjtStage.mjSTAGE_NONE)
        qpos, qvel = self._qpos, self._qvel
        qpos[ids, 0:3] = pos
        qpos[ids, 3:7] = quat
        qvel[ids, 0:3] = lin
        qvel[ids, 3:6] = ang_body
        if isinstance(self._qsl, slice):
            qpos[ids, self._qsl] = jpos
            qvel[ids, self._dsl] = jvel
        else:
            qpos[np.ix_(ids, self._qadr)] = jpos
            qvel[np.ix_(ids, self._dadr)] = jvel
        self._targets[ids] = self._default_dof_pos  # ctrl itself for position servos
        self._error[ids] = False
        self._run(lambda: self.batch.forward(ids=ids))
        self._cache.clear()

    def randomize(
        self,
        env_ids: torch.Tensor,
        friction: torch.Tensor | None = None,
        added_base_mass: torch.Tensor | None = None,
        com_offset: torch.Tensor | None = None,
        kp_scale: torch.Tensor | None = None,
        kd_scale: torch.Tensor | None = None,
    ) -> None:
        ids, order = self._ids(env_ids)
        n = ids.size
        nd = self.num_dofs
        # validate everything before changing anything
        fr = mass = com = kps = kds = None
        if friction is not None:
            fr = self._per_world(friction, "friction", n, (), order, broadcast=True)
            if np.any(fr <= 0):
                raise ValueError("friction must be > 0")
        if added_base_mass is not None:
            mass = self._per_world(added_base_mass, "added_base_mass", n, (), order, broadcast=True)
            if np.any(self._base_mass + mass <= 0.05 * self._base_mass):
                raise ValueError(
                    f"added_base_mass must keep the base mass above 5 % of its {self._base_mass} kg"
                )
        if com_offset is not None:
            com = self._per_world(com_offset, "com_offset", n, (3,), order)
        if kp_scale is not None:
            kps = self._per_world(kp_scale, "kp_scale", n, (nd,), order, broadcast=True)
            if np.any(kps <= 0):
                raise ValueError("kp_scale must be > 0")
        if kd_scale is not None:
            kds = self._per_world(kd_scale, "kd_scale", n, (nd,), order, broadcast=True)
            if np.any(kds <= 0):
                raise ValueError("kd_scale must be > 0")
        if n == 0:
            return

        if fr is not None:
            geom_friction = self.batch.expand("geom_friction")
            geom_friction[ids[:, None], self._robot_geoms[None, :], 0] = fr[:, None]
            self._dr_friction[ids] = fr
        need_const = False
        if mass is not None:
            self.batch.expand("body_mass")[ids, self._base_body] = self._base_mass + mass
            self._dr_added_mass[ids] = mass
            need_const = True
        if com is not None:
            self.batch.expand("body_ipos")[ids, self._base_body] = self._base_ipos + com
            self._dr_com[ids] = com
            need_const = True
        if kps is not None:
            self._dr_kp[ids] = kps
            self._kp_w[ids] = self._kp_nom * kps
            if self._actuation == "position":
                self.batch.expand("actuator_gainprm")[ids, :, 0] = self._kp_w[ids]
                self.batch.expand("actuator_biasprm")[ids, :, 1] = -self._kp_w[ids]
        if kds is not None:
            self._dr_kd[ids] = kds
            self._kd_w[ids] = self._kd_nom * kds
            if self._actuation == "position":
                self.batch.expand("actuator_biasprm")[ids, :, 2] = -self._kd_w[ids]
        if need_const:
            self._run(lambda: self.batch.set_const(ids=ids))
        self._cache.clear()

    def copy_world(self, world: int, data: mujoco.MjData) -> None:
        """Write world ``world``'s state into ``data`` (an MjData of ``self.model``) and run mj_forward, e.g. to
        render it; the batch is not touched."""
        data.qpos[:] = self._qpos[world]
        data.qvel[:] = self._qvel[world]
        mujoco.mj_forward(self.model, data)

    _STATE_FIELDS = ("qpos", "qvel", "act", "ctrl", "qacc_warmstart", "time")

    def state_dict(self) -> dict:
        state = {name: torch.from_numpy(self.batch.bind(name).copy()) for name in self._STATE_FIELDS}
        state["targets"] = torch.from_numpy(np.array(self._targets, copy=True))
        state["error"] = torch.from_numpy(self._error.copy())
        state["randomization"] = {
            "friction": self.friction.cpu(), "added_base_mass": self.added_base_mass.cpu(),
            "com_offset": self.com_offset.cpu(), "kp_scale": self.kp_scale.cpu(), "kd_scale": self.kd_scale.cpu(),
        }
        return state

    def load_state_dict(self, state: dict) -> None:
        if tuple(state["qpos"].shape) != tuple(self._qpos.shape):
            raise ValueError(
                f"backend state has qpos {tuple(state['qpos'].shape)}, this backend {tuple(self._qpos.shape)}: "
                "a different model or num_envs"
            )
        self.randomize(torch.arange(self._num_envs), **state["randomization"])
        for name in self._STATE_FIELDS:
            self.batch.bind(name)[...] = state[name].numpy()
        self._targets[...] = state["targets"].numpy()
        self._error[...] = state["error"].numpy()
        self._run(lambda: self.batch.forward())
        self._cache.clear()

    def sim_failures(self) -> torch.Tensor:
        warned = (self.batch.warning[:, _BAD_WARNINGS, 1] > 0).any(axis=1)
        finite = np.isfinite(self._qpos).all(axis=1) & np.isfinite(self._qvel).all(axis=1)
        failed = self._error | warned | ~finite
        out = torch.from_numpy(failed)
        return out if self._device.type == "cpu" else out.to(self._device)
