"""Configuration groups of the locomotion task, as dataclasses (each field is a config key).

In a config: ``data.env.init_args.commands.lin_vel_x: [-1.0, 1.0]``; on the command line:
``--data.env.init_args.rewards.terms.tracking_lin_vel.sigma 0.3`` (a dotted option changes only the entry or
parameter it names: ``leggedex/cli/table_overrides.py``). The term tables
(``rewards``, ``events``, ``terminations``) name small functions with their parameters beside their weight or switch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


def check_range(name: str, bounds: Sequence[float], low: float | None = None) -> None:
    if len(bounds) != 2 or bounds[0] > bounds[1]:
        raise ValueError(f"{name} must be [min, max] with min <= max, got {list(bounds)}")
    if low is not None and bounds[0] < low:
        raise ValueError(f"{name} must be >= {low}, got {list(bounds)}")


@dataclass
class CommandsConfig:
    """Velocity commands, resampled every ``resampling_time_s``; heading mode turns a heading into a yaw rate.

    ``heading_share`` (with ``heading_command``) is the share of resampled commands in heading mode; the others
    keep their sampled yaw rate for the whole command. Heading commands alone rarely ask for a steady turn in
    place: the proportional yaw rate decays as the robot comes round (time constant 1 / ``heading_stiffness``).
    """

    lin_vel_x: tuple[float, float] = (-1.0, 1.0)
    lin_vel_y: tuple[float, float] = (-1.0, 1.0)
    ang_vel_yaw: tuple[float, float] = (-1.0, 1.0)
    heading: tuple[float, float] = (-3.14159, 3.14159)
    heading_command: bool = False
    heading_stiffness: float = 0.5
    heading_share: float = 1.0
    resampling_time_s: float = 10.0
    zero_below: float = 0.2  # |v_xy| below this becomes 0 (stand-still commands)
    standing_fraction: float = 0.1  # share of resampled commands that are exactly zero
    curriculum: bool = False  # widen lin_vel_x by curriculum_step while tracking is good
    curriculum_step: float = 0.5
    max_lin_vel_x: float = 1.0

    def validate(self) -> None:
        for name in ("lin_vel_x", "lin_vel_y", "ang_vel_yaw", "heading"):
            check_range(f"commands.{name}", getattr(self, name))
        if self.resampling_time_s <= 0:
            raise ValueError(f"commands.resampling_time_s must be positive, got {self.resampling_time_s}")
        if not 0.0 <= self.heading_share <= 1.0:
            raise ValueError(f"commands.heading_share must be in [0, 1], got {self.heading_share}")
        if not 0.0 <= self.standing_fraction <= 1.0:
            raise ValueError(f"commands.standing_fraction must be in [0, 1], got {self.standing_fraction}")


@dataclass
class ObservationConfig:
    """Which observation groups the task builds, and their scales and noise (noise in unscaled units).

    Always: ``policy`` (45 for the Go2) and ``critic`` (the noise-free policy frame + base linear velocity).
    ``history_length`` > 0 adds ``history`` (the last N policy frames); ``privileged`` adds ``privileged``
    (physics parameters, foot-local heights and normals, base velocity, contacts); ``critic_privileged`` and
    ``height_scan`` extend the critic frame; ``critic_frames`` stacks the last N critic frames;
    ``noise_free_policy`` adds ``noise_free_policy``, the policy frame without noise, bias or delay (what a model of
    the next observation reconstructs, ``DreamWaQPPO``).
    """

    lin_vel_scale: float = 2.0
    ang_vel_scale: float = 0.25
    dof_pos_scale: float = 1.0
    dof_vel_scale: float = 0.05
    clip: float = 100.0
    add_noise: bool = True
    noise_level: float = 1.0
    noise_gravity: float = 0.05
    noise_ang_vel: float = 0.2
    noise_dof_pos: float = 0.01
    noise_dof_vel: float = 1.5
    history_length: int = 0
    privileged: bool = False
    critic_privileged: bool = False
    height_scan: bool = False
    critic_frames: int = 1
    noise_free_policy: bool = False
    height_scan_points: tuple[int, int] = (9, 9)  # along x (forward), along y
    height_scan_spacing: float = 0.1
    height_scan_offset: float = 0.3  # the scan reads clip(base_z - offset - ground, -1, 1) * height_scan_scale
    height_scan_scale: float = 5.0
    foot_scan_spacing: float = 0.05  # 3 x 3 ground points around each foot

    def validate(self) -> None:
        if self.history_length < 0:
            raise ValueError(f"observations.history_length must be >= 0, got {self.history_length}")
        if self.critic_frames < 1:
            raise ValueError(f"observations.critic_frames must be >= 1, got {self.critic_frames}")
        if len(self.height_scan_points) != 2 or min(self.height_scan_points) < 1:
            raise ValueError(f"observations.height_scan_points must be two positive counts, got "
                             f"{list(self.height_scan_points)}")


@dataclass
class RewardConfig:
    """Reward terms by name (``rewards.py``): a weight per second (multiplied by the policy dt), or the weight beside
    the term's parameters. A weight of 0 switches a term off; a table given in a config file is the whole table."""

    terms: dict[str, float | dict[str, float]] = field(default_factory=lambda: {
        "tracking_lin_vel": {"weight": 1.0, "sigma": 0.25},
        "tracking_ang_vel": {"weight": 0.5, "sigma": 0.25},
        "lin_vel_z": -2.0,
        "ang_vel_xy": -0.05,
        "orientation": -1.0,
        "base_height": {"weight": -10.0, "target": 0.30},
        "dof_power": -2e-4,
        "dof_acc": -2.5e-7,
        "action_rate": -0.01,
        "collision": -1.0,
        "dof_pos_limits": {"weight": -10.0, "soft_limit": 0.9},
        "feet_air_time": {"weight": 1.0, "target": 0.5},
        "foot_clearance": {"weight": 0.0, "target": 0.08},
        "hip_pos": -0.1,
        "dof_pos_stand_still": -0.5,
    })
    only_positive_rewards: bool = True  # clip the step's total at 0 (the termination term is added after)


@dataclass
class EventConfig:
    """Events by name (``events.py``), in the order they run: reset sampling of joints and base, physics
    randomization (``mode: [startup, reset]`` draws again at every reset), pushes every ``interval_s``. An entry
    holds the term's parameters (and optionally ``mode``); null switches a term off.

    Actuator and sensor realism (off by default): ``physics`` also takes ``joint_damping`` (Nm s/rad),
    ``joint_friction`` (Nm), ``armature_scale``, ``motor_strength`` and ``action_latency_ms`` ranges, the contact
    model's ``foot_solimp_dmin`` / ``foot_solimp_width`` (m) / ``impratio`` ranges and an ``elliptic_cone_share``
    (the MuJoCo Warp backend has one cone and impratio for all worlds and refuses those two), and an
    ``imu_bias: {ang_vel: rad/s, gravity: ...}`` entry offsets the policy's IMU readings per episode, and
    ``observation_latency: {latency_ms: [min, max]}`` delays its readings (at most one control period); each
    quantity switched on adds its term to the ``privileged`` group and is listed in the deploy contract."""

    terms: dict[str, dict[str, Any] | None] = field(default_factory=lambda: {
        "reset_joints": {"position_scale": [0.5, 1.5], "soft_limit": 0.9},
        "reset_base": {"max_yaw": math.pi, "max_velocity": 0.2, "height_offset": 0.02},
        "physics": {"friction": [0.5, 1.25], "added_base_mass": [-1.0, 1.0], "com_offset": [-0.02, 0.02],
                    "kp_scale": [0.9, 1.1], "kd_scale": [0.9, 1.1]},
        "push": {"interval_s": 8.0, "max_vel": 0.5},
    })


@dataclass
class TerminationConfig:
    """Termination terms by name (``terminations.py``) with their parameters; null switches a term off."""

    terms: dict[str, dict[str, Any] | None] = field(default_factory=lambda: {
        "illegal_contact": {"bodies": ["base"]},
        "bad_orientation": {"max_tilt_rad": 1.0},
        "base_too_low": {"min_height": 0.12},
    })
