"""Event terms: what happens to the simulated worlds besides stepping (domain randomization, pushes, reset sampling).

Each term is ``fn(env, ids, reset, **params)`` for the envs ``ids``, run at its ``mode``s:

- ``startup``: once, for every env, when the env is built;
- ``reset``: whenever episodes start, in table order; ``reset`` is the ``ResetState`` being assembled (which the env
  then applies once), so a reset term either draws part of the new state or acts on the simulator beside it;
- ``interval``: every ``interval_s`` seconds of each env's episode (training only, never during evaluation).

Selected in ``events.terms`` with their parameters beside an optional ``mode`` (default: the term's own) and, for
interval terms, ``interval_s``; null switches a term off. Terms draw from the env's generator, so their order in
the table is part of what a seed reproduces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from leggedex.envs.backends.base import RANDOMIZED_PARAMETERS, quat_rotate
from leggedex.envs.locomotion.config import check_range
from leggedex.envs.locomotion.rewards import soft_dof_pos_limits
from leggedex.envs.term_table import BoundTerm, TermTable

if TYPE_CHECKING:
    from leggedex.envs.locomotion.env import LeggedLocomotion

EVENTS = TermTable("event", "events.terms")
MODES = ("startup", "reset", "interval")
Range = Sequence[float] | None


@dataclass
class ResetState:
    """The state a reset puts into the simulator for ``len(ids)`` envs (world frame, joints in action order)."""

    root_pos: torch.Tensor  # (n, 3) the ground point each env spawns on; the base goes ``height`` above it
    height: float
    quat: torch.Tensor  # (n, 4) w, x, y, z
    lin_vel: torch.Tensor
    ang_vel: torch.Tensor
    dof_pos: torch.Tensor
    dof_vel: torch.Tensor

    @classmethod
    def home(cls, env: LeggedLocomotion, ids: torch.Tensor) -> ResetState:
        """Standing still in the home pose, facing +x, at each env's spawn point."""
        n, dev = ids.numel(), env.device
        quat = torch.zeros(n, 4, device=dev)
        quat[:, 0] = 1.0
        zeros = torch.zeros(n, 3, device=dev)
        return cls(env.ground.spawn_origins(ids).clone(), env.sim.home_base_height, quat, zeros, zeros.clone(),
                   env.default_dof_pos.expand(n, -1).clone(), torch.zeros(n, env.num_actions, device=dev))


def uniform(env: LeggedLocomotion, bounds: Sequence[float], *shape: int) -> torch.Tensor:
    low, high = bounds
    return low + (high - low) * torch.rand(*shape, device=env.device, generator=env.generator)


def symmetric(env: LeggedLocomotion, half_width: float, *shape: int) -> torch.Tensor:
    """U(-half_width, half_width)."""
    return (torch.rand(*shape, device=env.device, generator=env.generator) * 2 - 1) * half_width


def prepare_reset_joints(env: LeggedLocomotion, *, position_scale: Sequence[float],
                         soft_limit: float) -> dict[str, Any]:
    check_range("events.terms.reset_joints.position_scale", position_scale)
    return {"position_scale": position_scale, "limits": soft_dof_pos_limits(env, soft_limit)}


@EVENTS.term(mode="reset", prepare=prepare_reset_joints)
def reset_joints(env: LeggedLocomotion, ids: torch.Tensor, reset: ResetState, *, position_scale: Sequence[float],
                 limits: torch.Tensor) -> None:
    """Joint positions: the home pose times U(``position_scale``), inside the soft range (``soft_limit`` of the
    full one, ``limits`` (dofs, 2))."""
    dof_pos = env.default_dof_pos * uniform(env, position_scale, ids.numel(), env.num_actions)
    reset.dof_pos = torch.maximum(torch.minimum(dof_pos, limits[:, 1]), limits[:, 0])


@EVENTS.term(mode="reset")
def reset_base(env: LeggedLocomotion, ids: torch.Tensor, reset: ResetState, *, max_yaw: float, max_velocity: float,
               height_offset: float) -> None:
    """Heading U(+-max_yaw) rad, position anywhere on the spawn area, ``height_offset`` m above the home height,
    linear and angular velocity U(+-max_velocity) per axis (m/s, rad/s)."""
    n = ids.numel()
    yaw = symmetric(env, max_yaw, n)
    reset.quat = torch.zeros(n, 4, device=env.device)
    reset.quat[:, 0] = torch.cos(yaw / 2)
    reset.quat[:, 3] = torch.sin(yaw / 2)
    if env.ground.spawn_radius > 0:
        reset.root_pos[:, :2] += symmetric(env, env.ground.spawn_radius, n, 2)
    reset.height = reset.height + height_offset
    reset.lin_vel = symmetric(env, max_velocity, n, 3)
    reset.ang_vel = symmetric(env, max_velocity, n, 3)


# physics parameters beyond the base set, and the privileged observation term each one adds when randomized
RANDOMIZED_PHYSICS_TERMS = {"joint_damping": "joint_damping", "joint_friction": "joint_friction",
                            "armature_scale": "armature_scale", "motor_strength": "motor_strength",
                            "action_latency_ms": "action_latency", "foot_solimp_dmin": "foot_solimp_dmin",
                            "foot_solimp_width": "foot_solimp_width", "impratio": "impratio",
                            "elliptic_cone_share": "elliptic_cone",
                            "foot_torsional_friction": "foot_torsional_friction"}


def randomized_physics_terms(terms: Mapping[str, Mapping[str, Any] | None]) -> tuple[str, ...]:
    """The observation terms of the physics parameters ``events.terms.physics`` randomizes beyond the base set
    (actuators and contact model), in table order."""
    physics = terms.get("physics") or {}
    return tuple(term for name, term in RANDOMIZED_PHYSICS_TERMS.items() if physics.get(name) is not None)


def prepare_physics(env: LeggedLocomotion, *, friction: Range, added_base_mass: Range, com_offset: Range,
                    kp_scale: Range, kd_scale: Range, joint_damping: Range = None, joint_friction: Range = None,
                    armature_scale: Range = None, motor_strength: Range = None,
                    action_latency_ms: Range = None, foot_solimp_dmin: Range = None, foot_solimp_width: Range = None,
                    impratio: Range = None, elliptic_cone_share: float | None = None,
                    foot_torsional_friction: Range = None) -> dict[str, Any]:
    ranges = {"friction": friction, "added_base_mass": added_base_mass, "com_offset": com_offset,
              "kp_scale": kp_scale, "kd_scale": kd_scale, "joint_damping": joint_damping,
              "joint_friction": joint_friction, "armature_scale": armature_scale, "motor_strength": motor_strength,
              "action_latency_ms": action_latency_ms, "foot_solimp_dmin": foot_solimp_dmin,
              "foot_solimp_width": foot_solimp_width, "impratio": impratio,
              "foot_torsional_friction": foot_torsional_friction}
    lowest = {"friction": 1e-6, "kp_scale": 1e-6, "kd_scale": 1e-6, "joint_damping": 0.0, "joint_friction": 0.0,
              "armature_scale": 1e-6, "motor_strength": 1e-6, "action_latency_ms": 0.0, "foot_solimp_dmin": 1e-4,
              "foot_solimp_width": 1e-6, "impratio": 1e-6, "foot_torsional_friction": 0.0}
    for name, bounds in ranges.items():
        if bounds is not None:
            check_range(f"events.terms.physics.{name}", bounds, lowest.get(name))
    if foot_solimp_dmin is not None and foot_solimp_dmin[1] >= 1:
        raise ValueError(f"events.terms.physics.foot_solimp_dmin {list(foot_solimp_dmin)} must stay below 1 "
                         "(MuJoCo's solimp[0], an impedance in (0, 1))")
    if elliptic_cone_share is not None and not 0 <= elliptic_cone_share <= 1:
        raise ValueError(f"events.terms.physics.elliptic_cone_share must be in [0, 1] (the share of worlds with an "
                         f"elliptic friction cone), got {elliptic_cone_share}")
    backend_names = {"action_latency_ms": "action_delay", "elliptic_cone_share": "elliptic_cone"}
    asked = [name for name, value in {**ranges, "elliptic_cone_share": elliptic_cone_share}.items()
             if value is not None]
    varied = getattr(env.sim, "per_world_parameters", RANDOMIZED_PARAMETERS)  # a backend of any kind
    fixed = [name for name in asked if backend_names.get(name, name) not in varied]
    if fixed:
        raise ValueError(f"events.terms.physics {fixed}: the {type(env.sim).__name__} backend cannot vary them per "
                         "world; set them to null or use a backend that can (MujocoBatchBackend varies all)")
    if action_latency_ms is not None:
        period_ms = 1000 * env.sim.sim_dt * env.sim.substeps
        if action_latency_ms[1] > period_ms + 1e-9:
            raise ValueError(f"events.terms.physics.action_latency_ms {list(action_latency_ms)} goes beyond one "
                             f"control period ({period_ms:g} ms: {env.sim.substeps} physics steps of "
                             f"{1000 * env.sim.sim_dt:g} ms), the longest delay the backend applies")
    return {"ranges": ranges, "elliptic_cone_share": elliptic_cone_share}


@EVENTS.term(mode="startup", prepare=prepare_physics)
def physics(env: LeggedLocomotion, ids: torch.Tensor, reset: ResetState | None, *,
            ranges: dict[str, Range], elliptic_cone_share: float | None) -> None:
    """Per-world friction, added base mass (kg), base CoM offset (m, per axis), and per joint: kp and kd scales,
    passive damping (Nm s/rad), Coulomb friction (Nm), rotor inertia scale and motor strength (scale of the PD
    torque); an actuation latency (ms, rounded to whole physics steps, at most one control period); the contact
    model: the feet's softness (MuJoCo's solimp: ``foot_solimp_dmin``, the impedance at zero penetration, and
    ``foot_solimp_width``, m), their resistance to spinning (``foot_torsional_friction``, m), ``impratio``, and
    the share of worlds with an elliptic friction cone. Each is U([min, max]) (the cone: a Bernoulli draw) or left
    nominal when null."""
    per_joint = (env.num_actions,)
    sizes = {"friction": (), "added_base_mass": (), "com_offset": (3,), "action_latency_ms": (),
             "foot_solimp_dmin": (), "foot_solimp_width": (), "impratio": (), "foot_torsional_friction": ()}
    draws = {name: None if bounds is None else uniform(env, bounds, ids.numel(), *sizes.get(name, per_joint))
             for name, bounds in ranges.items()}
    latency_ms = draws.pop("action_latency_ms")
    delay = None if latency_ms is None else (latency_ms / (1000 * env.sim.sim_dt)).round()
    elliptic = None if elliptic_cone_share is None else \
        (torch.rand(ids.numel(), device=env.device, generator=env.generator) < elliptic_cone_share).float()
    env.sim.randomize(ids, action_delay=delay, elliptic_cone=elliptic, **draws)


def prepare_imu_bias(env: LeggedLocomotion, *, ang_vel: float, gravity: float) -> dict[str, Any]:
    if ang_vel < 0 or gravity < 0:
        raise ValueError(f"events.terms.imu_bias.ang_vel and gravity must be >= 0, got {ang_vel} and {gravity}")
    return {"ang_vel": ang_vel, "gravity": gravity}


@EVENTS.term(mode="reset", prepare=prepare_imu_bias)
def imu_bias(env: LeggedLocomotion, ids: torch.Tensor, reset: ResetState | None, *, ang_vel: float,
             gravity: float) -> None:
    """A constant offset of the IMU per episode, added to the policy's base_ang_vel (U(+-ang_vel) rad/s per axis)
    and projected_gravity (U(+-gravity) per axis) readings, like their noise (off in evaluation)."""
    bias = torch.cat([symmetric(env, gravity, ids.numel(), 3), symmetric(env, ang_vel, ids.numel(), 3)], dim=1)
    env.imu_bias[ids] = bias


def prepare_observation_latency(env: LeggedLocomotion, *, latency_ms: Sequence[float]) -> dict[str, Any]:
    check_range("events.terms.observation_latency.latency_ms", latency_ms, 0.0)
    period_ms = 1000 * env.step_dt
    if latency_ms[1] > period_ms + 1e-9:
        raise ValueError(f"events.terms.observation_latency.latency_ms {list(latency_ms)} goes beyond one control "
                         f"period ({period_ms:g} ms): the env keeps the previous frame only")
    return {"latency_ms": latency_ms}


@EVENTS.term(mode="reset", prepare=prepare_observation_latency)
def observation_latency(env: LeggedLocomotion, ids: torch.Tensor, reset: ResetState | None, *,
                        latency_ms: Sequence[float]) -> None:
    """A sensing delay per episode, U(``latency_ms``): the policy reads its frame as it was that long ago,
    interpolated between the previous and the current step's frames (off in evaluation)."""
    env.observation_latency[ids] = uniform(env, latency_ms, ids.numel()) / 1000


def prepare_push(env: LeggedLocomotion, *, max_vel: float) -> dict[str, Any]:
    if max_vel < 0:
        raise ValueError(f"events.terms.push.max_vel must be >= 0, got {max_vel}")
    return {"max_vel": max_vel}


@EVENTS.term(mode="interval", prepare=prepare_push)
def push(env: LeggedLocomotion, ids: torch.Tensor, reset: ResetState | None, *, max_vel: float) -> None:
    """Set the base's world-frame horizontal velocity to U(+-max_vel) m/s per axis (legged_gym's push)."""
    if max_vel == 0:
        return
    lin_vel = quat_rotate(env.base_quat[ids], env.base_lin_vel[ids])
    lin_vel[:, :2] = symmetric(env, max_vel, ids.numel(), 2)
    env.push_vel[ids] = lin_vel[:, :2]
    ang_vel = quat_rotate(env.base_quat[ids], env.base_ang_vel[ids])
    env.sim.reset(ids, env.base_pos[ids], env.base_quat[ids], lin_vel, ang_vel, env.dof_pos[ids], env.dof_vel[ids])
    env.sim.set_dof_targets(env.joint_targets())  # the reset cleared them


@dataclass(frozen=True)
class EventEntry:
    name: str
    params: dict[str, Any]
    modes: tuple[str, ...]
    interval_s: float | None


@dataclass(frozen=True)
class BoundEvent:
    term: BoundTerm
    modes: tuple[str, ...]
    interval_steps: int = 0  # interval events: policy steps between two runs


def event_entries(terms: Mapping[str, Mapping[str, Any] | None]) -> list[EventEntry]:
    """``events.terms`` checked -> the events switched on, in config order, with their modes and intervals."""
    entries = []
    for name, entry in terms.items():
        registered = EVENTS[name]
        if entry is None:
            continue
        params = dict(entry)
        mode = params.pop("mode", registered.info["mode"])
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
        bad = [m for m in modes if m not in MODES]
        if bad or not modes:
            raise ValueError(f"events.terms.{name}.mode must be one or more of {list(MODES)}, got {mode!r}")
        interval_s = params.pop("interval_s", None)
        if "interval" in modes and (interval_s is None or interval_s <= 0):
            raise ValueError(f"events.terms.{name} runs at an interval and needs a positive interval_s, "
                             f"got {interval_s}")
        if "interval" not in modes and interval_s is not None:
            raise ValueError(f"events.terms.{name}.interval_s is given but its mode {list(modes)} has no interval")
        EVENTS.check(name, params)
        entries.append(EventEntry(name, params, modes, interval_s))
    return entries


def bind_events(terms: Mapping[str, Mapping[str, Any] | None], env: LeggedLocomotion) -> list[BoundEvent]:
    """``events.terms`` -> the events switched on, in config order, bound to ``env``."""
    return [BoundEvent(EVENTS.bind(e.name, e.params, env), e.modes,
                       int(round(e.interval_s / env.step_dt)) if e.interval_s is not None else 0)
            for e in event_entries(terms)]
