"""The simulator contract of leggedex legged-robot tasks (member by member in docs/backends.md).

A backend simulates ``num_envs`` independent copies ("worlds") of one robot and exposes their state as batched
torch tensors on its device. Task code (observations, rewards, terminations, curricula) talks only to this
interface; the robot comes as a ``leggedex.robots.RobotDescription`` and the ground as the neutral height grid of
``leggedex.envs.terrain`` (None: flat), so a new simulator is one new file.

Construction: every backend takes ``(num_envs, robot, terrain, substeps)`` positionally, then its own keyword
options; a config names it by ``class_path`` with those options as ``init_args``
(``data.env.init_args.backend``) and the task supplies the four.

Conventions shared by every backend
-----------------------------------
* Every tensor is ``float32`` (bool for masks) on ``backend.device`` and has the world index as its first
  dimension ``N``.
* Joint ("dof") order is the robot description's ``joints``; feet are ordered as its ``feet``.
* World frame: z up, gravity along -z.
* Quaternions are scalar-first ``(w, x, y, z)`` and rotate body-frame vectors into the world frame.
* Root ("base") velocities come in both frames: ``*_world`` are expressed in the world frame, ``*_body`` in the
  base body frame. The linear velocity is that of the base frame origin (not the centre of mass).
* Getters return tensors valid until the next ``step``/``reset``/``randomize``/``load_state_dict``: never write
  into them; a backend may return live views of its state that change with the next step.
* Ids passed to ``reset`` and ``randomize`` are 1-D integer tensors of distinct world indices, in any order;
  per-world arguments are given in the same order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

if TYPE_CHECKING:
    from leggedex.envs.terrain import Terrain
    from leggedex.robots import RobotDescription

__all__ = ["BackendFactory", "SimBackend", "WorldRenderer", "make_backend", "quat_rotate", "quat_rotate_inverse"]


def quat_rotate(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors ``v`` (..., 3) by unit quaternions ``q`` (..., 4), wxyz."""
    w = q[..., :1]
    u = q[..., 1:]
    t = 2.0 * torch.cross(u, v, dim=-1)
    return v + w * t + torch.cross(u, t, dim=-1)


def quat_rotate_inverse(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors ``v`` (..., 3) by the inverse of unit quaternions ``q`` (wxyz)."""
    w = q[..., :1]
    u = q[..., 1:]
    t = 2.0 * torch.cross(u, v, dim=-1)
    return v - w * t + torch.cross(u, t, dim=-1)


class WorldRenderer(Protocol):
    """Offscreen images of one world at a time (video and play)."""

    def render(self, world: int = 0) -> np.ndarray:
        """(height, width, 3) uint8 image of world ``world`` in its current state."""

    def close(self) -> None:
        """Free the rendering context."""


# the per-world parameters ``SimBackend.randomize`` takes
RANDOMIZED_PARAMETERS = ("friction", "added_base_mass", "com_offset", "kp_scale", "kd_scale", "joint_damping",
                         "joint_friction", "armature_scale", "motor_strength", "action_delay", "foot_solimp_dmin",
                         "foot_solimp_width", "impratio", "elliptic_cone", "foot_torsional_friction")


class SimBackend(ABC):
    """Batched legged-robot simulator: N worlds, PD-controlled joints.

    Control: ``set_dof_targets`` stores joint position targets; ``step`` then
    advances ``substeps`` physics steps of ``sim_dt`` each under a joint PD law
    ``tau = clip(s * (kp * kp_scale * (target - q) - kd * kd_scale * qdot), +-torque_limits)`` with ``s`` the
    world's ``motor_strength``. A world with ``action_delay`` d > 0 keeps the previous call's targets for the
    first d physics steps of a ``step`` (an actuation latency of d * sim_dt, at most one control period).
    The joints also carry passive damping ``joint_damping`` and Coulomb friction ``joint_friction`` (MuJoCo's
    frictionloss), and rotor inertia (armature) ``armature_scale`` times the model's.
    """

    # the ``randomize`` parameters this simulator can give each world its own value of
    per_world_parameters: frozenset[str] = frozenset(RANDOMIZED_PARAMETERS)

    # ------------------------------------------------------------------ sizes
    @property
    @abstractmethod
    def num_envs(self) -> int:
        """Number of simulated worlds N."""

    @property
    @abstractmethod
    def num_dofs(self) -> int:
        """Number of actuated joints (12 for a quadruped)."""

    @property
    @abstractmethod
    def dof_names(self) -> list[str]:
        """Joint names in the order of every per-joint tensor."""

    @property
    @abstractmethod
    def foot_names(self) -> list[str]:
        """Foot names in the order of every per-foot tensor."""

    @property
    @abstractmethod
    def contact_body_names(self) -> list[str]:
        """Bodies whose (undesired) ground contact ``body_contact`` reports."""

    @property
    @abstractmethod
    def device(self) -> torch.device:
        """Device of every returned tensor."""

    @property
    @abstractmethod
    def sim_dt(self) -> float:
        """Physics time step in seconds."""

    @property
    @abstractmethod
    def substeps(self) -> int:
        """Physics steps per ``step()`` call (the decimation)."""

    @property
    def policy_dt(self) -> float:
        """Simulated seconds per ``step()`` call."""
        return self.sim_dt * self.substeps

    # --------------------------------------------------------- robot constants
    @property
    @abstractmethod
    def default_dof_pos(self) -> torch.Tensor:
        """(num_dofs,) joint positions of the home pose."""

    @property
    @abstractmethod
    def torque_limits(self) -> torch.Tensor:
        """(num_dofs,) motor torque limits in Nm (symmetric)."""

    @property
    @abstractmethod
    def dof_pos_limits(self) -> torch.Tensor:
        """(num_dofs, 2) joint range [lower, upper] in rad."""

    @property
    @abstractmethod
    def home_base_height(self) -> float:
        """Base height (m) of the home pose with the feet resting on flat ground."""

    @property
    def velocity_limits(self) -> torch.Tensor | None:
        """(num_dofs,) no-load joint speeds (rad/s) of the torque-speed curve this backend applies
        (``leggedex.robots.motor``); None when its torque limits do not depend on speed."""
        return None

    @property
    @abstractmethod
    def kp(self) -> torch.Tensor:
        """(num_dofs,) nominal PD stiffness (Nm/rad)."""

    @property
    @abstractmethod
    def kd(self) -> torch.Tensor:
        """(num_dofs,) nominal PD damping (Nm s/rad)."""

    # ---------------------------------------------------------------- control
    @abstractmethod
    def set_dof_targets(self, targets: torch.Tensor) -> None:
        """Set (N, num_dofs) joint position targets used by the following steps."""

    @abstractmethod
    def step(self) -> None:
        """Advance every world by ``substeps`` physics steps."""

    # ------------------------------------------------------------------ state
    @property
    @abstractmethod
    def root_pos(self) -> torch.Tensor:
        """(N, 3) base position, world frame."""

    @property
    @abstractmethod
    def root_quat(self) -> torch.Tensor:
        """(N, 4) base orientation, wxyz, body -> world."""

    @property
    @abstractmethod
    def root_lin_vel_world(self) -> torch.Tensor:
        """(N, 3) base linear velocity, world frame."""

    @property
    @abstractmethod
    def root_ang_vel_world(self) -> torch.Tensor:
        """(N, 3) base angular velocity, world frame."""

    @property
    def root_lin_vel_body(self) -> torch.Tensor:
        """(N, 3) base linear velocity, base body frame."""
        return quat_rotate_inverse(self.root_quat, self.root_lin_vel_world)

    @property
    def root_ang_vel_body(self) -> torch.Tensor:
        """(N, 3) base angular velocity, base body frame."""
        return quat_rotate_inverse(self.root_quat, self.root_ang_vel_world)

    @property
    def projected_gravity(self) -> torch.Tensor:
        """(N, 3) unit gravity direction (0, 0, -1) in the base body frame."""
        q = self.root_quat
        g = torch.zeros(q.shape[0], 3, dtype=q.dtype, device=q.device)
        g[:, 2] = -1.0
        return quat_rotate_inverse(q, g)

    @property
    @abstractmethod
    def dof_pos(self) -> torch.Tensor:
        """(N, num_dofs) joint positions (rad)."""

    @property
    @abstractmethod
    def dof_vel(self) -> torch.Tensor:
        """(N, num_dofs) joint velocities (rad/s)."""

    @property
    @abstractmethod
    def applied_torques(self) -> torch.Tensor:
        """(N, num_dofs) motor torques applied during the last physics step (Nm)."""

    @property
    @abstractmethod
    def foot_contact_forces(self) -> torch.Tensor:
        """(N, num_feet, 3) net ground reaction force on each foot, world frame (N).

        Positive z pushes the foot up; zero when the foot is in the air.
        """

    @property
    @abstractmethod
    def foot_contact(self) -> torch.Tensor:
        """(N, num_feet) bool: the foot touches the ground."""

    @property
    @abstractmethod
    def foot_pos_world(self) -> torch.Tensor:
        """(N, num_feet, 3) foot (sphere centre) positions, world frame."""

    @property
    @abstractmethod
    def body_contact(self) -> torch.Tensor:
        """(N, len(contact_body_names)) bool: that body touches the ground."""

    # ---------------------------------------------------------- resets and DR
    @abstractmethod
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
        """Reset the worlds ``env_ids`` (n,) to the given state; others are untouched.

        Shapes: root_pos (n, 3) world, root_quat (n, 4) wxyz, root_lin_vel (n, 3)
        world frame, root_ang_vel (n, 3) world frame, dof_pos / dof_vel
        (n, num_dofs). Targets of the reset worlds return to ``default_dof_pos``.
        """

    @abstractmethod
    def randomize(
        self,
        env_ids: torch.Tensor,
        friction: torch.Tensor | None = None,
        added_base_mass: torch.Tensor | None = None,
        com_offset: torch.Tensor | None = None,
        kp_scale: torch.Tensor | None = None,
        kd_scale: torch.Tensor | None = None,
        joint_damping: torch.Tensor | None = None,
        joint_friction: torch.Tensor | None = None,
        armature_scale: torch.Tensor | None = None,
        motor_strength: torch.Tensor | None = None,
        action_delay: torch.Tensor | None = None,
        foot_solimp_dmin: torch.Tensor | None = None,
        foot_solimp_width: torch.Tensor | None = None,
        impratio: torch.Tensor | None = None,
        elliptic_cone: torch.Tensor | None = None,
        foot_torsional_friction: torch.Tensor | None = None,
    ) -> None:
        """Set per-world physical parameters of the worlds ``env_ids`` (n,).

        friction (n,): robot geom sliding friction, > 0; added_base_mass (n,) kg
        added to the base; com_offset (n, 3) base centre-of-mass shift in the base
        frame (m); kp_scale / kd_scale (n, num_dofs) or (n,), > 0, multiplying the
        nominal PD gains; joint_damping (Nm s/rad) and joint_friction (Nm), >= 0, and
        armature_scale / motor_strength, > 0, per joint like the gain scales;
        action_delay (n,) whole physics steps in [0, substeps]. The contact model:
        foot_solimp_dmin (n,) in (0, 1), the foot contacts' impedance at zero
        penetration (MuJoCo's solimp[0]: low is soft), foot_solimp_width (n,) > 0, the
        penetration (m) over which it reaches solimp[1]; impratio (n,) > 0, friction-
        to-normal impedance ratio; elliptic_cone (n,) 1 for an elliptic friction cone,
        0 for a pyramidal one; foot_torsional_friction (n,) >= 0, the feet's
        resistance to spinning on the ground (m: torque per unit normal force; the
        foot contacts get MuJoCo's condim 4). ``None`` leaves a parameter unchanged. Invalid values,
        or a parameter this backend cannot vary per world, raise ``ValueError`` naming
        it, before anything is changed.
        """

    @property
    @abstractmethod
    def friction(self) -> torch.Tensor:
        """(N,) current robot friction coefficient of each world."""

    @property
    @abstractmethod
    def added_base_mass(self) -> torch.Tensor:
        """(N,) current mass (kg) added to the base of each world."""

    @property
    @abstractmethod
    def com_offset(self) -> torch.Tensor:
        """(N, 3) current base centre-of-mass offset, base frame (m)."""

    @property
    @abstractmethod
    def kp_scale(self) -> torch.Tensor:
        """(N, num_dofs) current PD stiffness scale of each world."""

    @property
    @abstractmethod
    def kd_scale(self) -> torch.Tensor:
        """(N, num_dofs) current PD damping scale of each world."""

    @property
    @abstractmethod
    def joint_damping(self) -> torch.Tensor:
        """(N, num_dofs) current passive joint damping (Nm s/rad)."""

    @property
    @abstractmethod
    def joint_friction(self) -> torch.Tensor:
        """(N, num_dofs) current joint Coulomb friction (Nm)."""

    @property
    @abstractmethod
    def armature_scale(self) -> torch.Tensor:
        """(N, num_dofs) current rotor inertia (armature) over the model's."""

    @property
    @abstractmethod
    def motor_strength(self) -> torch.Tensor:
        """(N, num_dofs) current scale of each world's PD torque."""

    @property
    @abstractmethod
    def action_delay(self) -> torch.Tensor:
        """(N,) current actuation latency of each world, in physics steps (float32, whole numbers)."""

    @property
    @abstractmethod
    def foot_solimp_dmin(self) -> torch.Tensor:
        """(N,) current impedance of the foot contacts at zero penetration (solimp[0])."""

    @property
    @abstractmethod
    def foot_solimp_width(self) -> torch.Tensor:
        """(N,) current penetration (m) over which the foot contacts stiffen (solimp[2])."""

    @property
    @abstractmethod
    def impratio(self) -> torch.Tensor:
        """(N,) current friction-to-normal contact impedance ratio."""

    @property
    @abstractmethod
    def elliptic_cone(self) -> torch.Tensor:
        """(N,) 1.0 where a world's friction cone is elliptic, 0.0 where pyramidal."""

    @property
    @abstractmethod
    def foot_torsional_friction(self) -> torch.Tensor:
        """(N,) current torsional friction of the foot contacts (m; 0 where they have none)."""

    @abstractmethod
    def state_dict(self) -> dict:
        """Everything that decides the next step of every world (physics state, targets, solver warm start,
        per-world parameters), so that ``load_state_dict`` continues bit-exactly (exact training resume)."""

    @abstractmethod
    def load_state_dict(self, state: dict) -> None:
        """Restore a ``state_dict`` taken from a backend with the same model and ``num_envs``."""

    @abstractmethod
    def sim_failures(self) -> torch.Tensor:
        """(N,) bool: worlds whose simulation failed since their last reset.

        Failed means a non-finite state, or an error or instability warning from
        the simulator. Resetting a world clears its flag.
        """

    # ---------------------------------------------------------------- rendering
    def renderer(self, width: int = 480, height: int = 320) -> WorldRenderer:
        """An offscreen renderer of this backend's worlds (a camera following the base)."""
        raise NotImplementedError(f"{type(self).__name__} cannot render; video and play --video need a backend "
                                  "that implements renderer()")


# what a config's ``backend: {class_path, init_args}`` becomes: the task calls it with
# (num_envs, robot, terrain, substeps)
BackendFactory = Callable[[int, "RobotDescription", "Terrain | None", int], SimBackend]


def make_backend(factory: BackendFactory | None, num_envs: int, robot: RobotDescription, terrain: Terrain | None,
                 substeps: int) -> SimBackend:
    """Build the configured backend (None: ``MujocoBatchBackend``) and check that it keeps the contract."""
    if factory is None:
        from leggedex.envs.backends.mujoco_batch import MujocoBatchBackend

        factory = MujocoBatchBackend
    if not callable(factory):
        raise ValueError(f"unknown backend {factory!r}: data.env.init_args.backend takes a SimBackend class by "
                        "class_path, e.g. leggedex.envs.backends.MujocoBatchBackend or MujocoWarpBackend")
    try:
        sim = factory(num_envs, robot, terrain, substeps)
    except TypeError as err:
        if "abstract" in str(err):
            raise TypeError(f"data.env.init_args.backend does not implement the SimBackend contract "
                            f"(docs/backends.md): {err}") from err
        raise
    if not isinstance(sim, SimBackend):
        raise TypeError(f"data.env.init_args.backend must build a leggedex SimBackend (docs/backends.md), "
                        f"got {type(sim).__name__}")
    if list(sim.dof_names) != robot.dof_names or list(sim.foot_names) != list(robot.feet):
        raise ValueError(f"{type(sim).__name__} reports joints {sim.dof_names} and feet {sim.foot_names}, but the "
                         f"robot description {robot.name!r} has {robot.dof_names} and {list(robot.feet)}")
    return sim
