"""The layouts of the locomotion task's observation groups, each defined here once; the env reports its sizes from
them.

Three kinds of observation-group objects, by what they hold: sizes (``ObsSpec.groups`` and ``env.obs_groups``:
group name -> width, the VecEnv contract), layouts (``ObsLayout``: the ordered terms of one group with their scales
and noise; ``LocomotionObsLayouts``: every group of this task), slices (``env.obs_terms``: group -> term -> start,
size, scale, for methods that pick terms by name).

With the teacher-student options on (``configs/go2_ts.yaml``) the Go2 groups are LeggedGym-Ex's go2_ts:

- ``policy`` (45): command, projected gravity, base angular velocity, joint positions, joint velocities,
  last action (noisy).
- ``history`` (20 x 45 = 900): the last 20 ``policy`` frames, oldest first, zeros after a reset.
- ``privileged`` (94): physics parameters 31 (friction, added mass, CoM offset 3, last push velocity 2,
  kp scale - 1 (12), kd scale - 1 (12); then one term per actuator or IMU quantity ``events.terms`` also
  randomizes: joint damping, joint friction, armature scale - 1, motor strength - 1 (12 each), action latency (1),
  IMU bias (6), observation latency (1)), 3 x 3 ground heights around each foot relative to the sole (36),
  ground normals at the feet (12), base linear velocity (3), thigh / calf / foot contacts (12).
- ``critic`` (172 x 5 = 860): the noise-free policy frame, base linear velocity, physics parameters, contacts
  and a 9 x 9 height scan around the base, stacked over the last 5 steps (oldest first).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch

from leggedex.envs.locomotion.config import ObservationConfig
from leggedex.envs.locomotion.observations import OBSERVATIONS, unit


@dataclass(frozen=True)
class ObsTerm:
    """One slice of an observation group: ``scale * value + noise * scale * U(-1, 1)``, where ``value`` is the
    observation term ``name`` (``observations.py``) computed with ``params``."""

    name: str
    size: int
    scale: float | tuple[float, ...] = 1.0
    noise: float = 0.0
    params: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        OBSERVATIONS.check(self.name, self.params)


@dataclass(frozen=True)
class ObsLayout:
    """The ordered terms of one observation group."""

    terms: tuple[ObsTerm, ...]

    @property
    def size(self) -> int:
        return sum(term.size for term in self.terms)

    def describe(self) -> list[dict]:
        """Name, slice, scale and unit of every term, in order (for docs and the deploy contract)."""
        out, start = [], 0
        for term in self.terms:
            out.append({"name": term.name, "start": start, "size": term.size, "scale": term.scale,
                        "unit": unit(term.name)})
            start += term.size
        return out

    def scale_vector(self, device: torch.device) -> torch.Tensor:
        parts = []
        for term in self.terms:
            scale = torch.as_tensor(term.scale, dtype=torch.float32, device=device)
            parts.append(scale.expand(term.size) if scale.dim() == 0 else scale)
        return torch.cat(parts)

    def noise_vector(self, device: torch.device, level: float) -> torch.Tensor:
        noise = torch.cat([torch.full((t.size,), t.noise * level, device=device) for t in self.terms])
        return noise * self.scale_vector(device)

    def assemble(self, values: dict[str, torch.Tensor], scales: torch.Tensor) -> torch.Tensor:
        """Concatenate the terms' raw values in layout order and scale them."""
        parts = []
        for term in self.terms:
            value = values[term.name]
            if value.shape[-1] != term.size:
                raise ValueError(f"observation term {term.name!r} has size {value.shape[-1]}, layout says {term.size}")
            parts.append(value)
        return torch.cat(parts, dim=-1) * scales


# sizes of the terms added for what events.terms randomizes beyond the base set (None: one per joint)
RANDOMIZED_TERM_SIZES = {"joint_damping": None, "joint_friction": None, "armature_scale": None,
                         "motor_strength": None, "action_latency": 1, "foot_solimp_dmin": 1, "foot_solimp_width": 1,
                         "impratio": 1, "elliptic_cone": 1, "foot_torsional_friction": 1, "imu_bias": 6,
                         "observation_latency": 1}


def physics_terms(num_dofs: int, randomized: tuple[str, ...] = ()) -> tuple[ObsTerm, ...]:
    """The physics parameters: always friction, mass, CoM, push, gains; then each of ``randomized``."""
    unknown = [name for name in randomized if name not in RANDOMIZED_TERM_SIZES]
    if unknown:
        raise ValueError(f"no privileged observation term for randomized {unknown}")
    extra = tuple(ObsTerm(name, RANDOMIZED_TERM_SIZES[name] or num_dofs) for name in randomized)
    return (
        ObsTerm("friction", 1),
        ObsTerm("added_base_mass", 1),
        ObsTerm("com_offset", 3),
        ObsTerm("push_vel", 2),
        ObsTerm("kp_scale", num_dofs),
        ObsTerm("kd_scale", num_dofs),
    ) + extra


def contact_terms(num_feet: int) -> tuple[ObsTerm, ...]:
    return (ObsTerm("thigh_contact", num_feet), ObsTerm("calf_contact", num_feet), ObsTerm("foot_contact", num_feet))


@dataclass(frozen=True)
class LocomotionObsLayouts:
    """Layouts of every group; ``history`` repeats the ``policy`` frame, ``critic`` stacks ``critic_frame``."""

    policy: ObsLayout
    critic_frame: ObsLayout
    privileged: ObsLayout | None
    history_length: int
    critic_frames: int
    noise_free_policy: bool = False

    @property
    def sizes(self) -> dict[str, int]:
        sizes = {"policy": self.policy.size, "critic": self.critic_frame.size * self.critic_frames}
        if self.history_length > 0:
            sizes["history"] = self.policy.size * self.history_length
        if self.privileged is not None:
            sizes["privileged"] = self.privileged.size
        if self.noise_free_policy:
            sizes["noise_free_policy"] = self.policy.size
        return sizes

    @property
    def layouts(self) -> tuple[ObsLayout, ...]:
        return (self.critic_frame,) + ((self.privileged,) if self.privileged is not None else ())

    @cached_property  # read every step; a frozen dataclass keeps it valid
    def term_names(self) -> set[str]:
        """Every raw quantity some group reads (the env computes only these)."""
        return set(self.terms)

    @cached_property
    def terms(self) -> dict[str, ObsTerm]:
        """Every term some group reads, by name (a term read by two groups is computed once)."""
        return {term.name: term for layout in self.layouts for term in layout.terms}

    def units(self) -> dict[str, str]:
        """Term -> what its raw value is, for every term of every group."""
        return {name: unit(name) for name in self.terms}

    def term_slices(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Group -> term -> start, size and scale, for the groups that are a single frame of named terms."""
        def plain(scale: float | tuple[float, ...]) -> float | list[float]:
            return list(scale) if isinstance(scale, tuple) else scale

        return {group: {term["name"]: {"start": term["start"], "size": term["size"], "scale": plain(term["scale"])}
                        for term in entry["terms"]}
                for group, entry in self.describe().items() if "terms" in entry}

    def describe(self) -> dict[str, dict[str, Any]]:
        """Group -> size and terms in assembly order (stacked groups say how their frames are ordered)."""
        out: dict[str, dict[str, Any]] = {"policy": {"size": self.policy.size, "terms": self.policy.describe()}}
        if self.history_length > 0:
            out["history"] = {"size": self.sizes["history"], "frames": self.history_length,
                              "frame_terms": self.policy.describe(),
                              "order": "oldest first; the newest frame is the current policy observation; "
                                       "zeros after a reset"}
        if self.privileged is not None:
            out["privileged"] = {"size": self.privileged.size, "terms": self.privileged.describe()}
        if self.noise_free_policy:
            out["noise_free_policy"] = {"size": self.policy.size, "terms": self.policy.describe()}
        critic: dict[str, Any] = {"size": self.sizes["critic"], "terms": self.critic_frame.describe()}
        if self.critic_frames > 1:
            critic = {"size": self.sizes["critic"], "frames": self.critic_frames,
                      "frame_terms": self.critic_frame.describe(), "order": "oldest first; zeros after a reset"}
        out["critic"] = critic
        return out


def locomotion_obs_layouts(cfg: ObservationConfig, num_dofs: int, num_feet: int,
                           randomized: tuple[str, ...] = ()) -> LocomotionObsLayouts:
    """``randomized``: the actuator and sensor quantities the events randomize beyond the base physics set
    (``RANDOMIZED_TERM_SIZES``); each adds its term to the physics parameters of ``privileged`` (and of the
    critic with ``critic_privileged``)."""
    cfg.validate()
    policy = ObsLayout((
        ObsTerm("command", 3, (cfg.lin_vel_scale, cfg.lin_vel_scale, cfg.ang_vel_scale)),
        ObsTerm("projected_gravity", 3, 1.0, cfg.noise_gravity),
        ObsTerm("base_ang_vel", 3, cfg.ang_vel_scale, cfg.noise_ang_vel),
        ObsTerm("dof_pos", num_dofs, cfg.dof_pos_scale, cfg.noise_dof_pos),
        ObsTerm("dof_vel", num_dofs, cfg.dof_vel_scale, cfg.noise_dof_vel),
        ObsTerm("last_action", num_dofs, 1.0),
    ))
    base_lin_vel = ObsTerm("base_lin_vel", 3, cfg.lin_vel_scale)
    critic = policy.terms + (base_lin_vel,)  # the policy frame must stay the prefix: the env slices it off
    if cfg.critic_privileged:
        critic += physics_terms(num_dofs, randomized) + contact_terms(num_feet)
    if cfg.height_scan:
        nx, ny = cfg.height_scan_points
        critic += (ObsTerm("height_scan", nx * ny, cfg.height_scan_scale, params={
            "points": (nx, ny), "spacing": cfg.height_scan_spacing, "offset": cfg.height_scan_offset}),)
    privileged = None
    if cfg.privileged:
        privileged = ObsLayout(physics_terms(num_dofs, randomized) + (
            ObsTerm("foot_heights", 9 * num_feet, params={"spacing": cfg.foot_scan_spacing}),
            ObsTerm("foot_normals", 3 * num_feet),
            base_lin_vel,
        ) + contact_terms(num_feet))
    return LocomotionObsLayouts(policy, ObsLayout(critic), privileged, cfg.history_length, cfg.critic_frames,
                                cfg.noise_free_policy)
