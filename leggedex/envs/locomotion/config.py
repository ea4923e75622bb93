"""Configuration groups of the locomotion task, as dataclasses (each field is a config key).

In a config: ``data.env.init_args.commands.lin_vel_x: [-1.0, 1.0]``; on the command line:
``--data.env.init_args.rewards.scales '{tracking_lin_vel: 1.5}'``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def check_range(name: str, bounds: tuple[float, float] | list[float], low: float | None = None) -> None:
    if len(bounds) != 2 or bounds[0] > bounds[1]:
        raise ValueError(f"{name} must be [min, max] with min <= max, got {list(bounds)}")
    if low is not None and bounds[0] < low:
        raise ValueError(f"{name} must be >= {low}, got {list(bounds)}")


@dataclass
class CommandsConfig:
    """Velocity commands, resampled every ``resampling_time_s``; heading mode turns a heading into a yaw rate."""

    lin_vel_x: tuple[float, float] = (-1.0, 1.0)
    lin_vel_y: tuple[float, float] = (-1.0, 1.0)
    ang_vel_yaw: tuple[float, float] = (-1.0, 1.0)
    heading: tuple[float, float] = (-3.14159, 3.14159)
    heading_command: bool = False
    heading_stiffness: float = 0.5
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
        if not 0.0 <= self.standing_fraction <= 1.0:
            raise ValueError(f"commands.standing_fraction must be in [0, 1], got {self.standing_fraction}")


@dataclass
class ObservationConfig:
    """Which observation groups the task builds, and their scales and noise (noise in unscaled units).

    Always: ``policy`` (45 for the Go2) and ``critic`` (the noise-free policy frame + base linear velocity).
    ``history_length`` > 0 adds ``history`` (the last N policy frames); ``privileged`` adds ``privileged``
    (physics parameters, foot-local heights and normals, base velocity, contacts); ``critic_privileged`` and
    ``height_scan`` extend the critic frame; ``critic_frames`` stacks the last N critic frames.
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
    """Reward term scales (per second; multiplied by the policy dt) and term parameters."""

    scales: dict[str, float] = field(default_factory=lambda: {
        "tracking_lin_vel": 1.0,
        "tracking_ang_vel": 0.5,
        "lin_vel_z": -2.0,
        "ang_vel_xy": -0.05,
        "orientation": -1.0,
        "base_height": -10.0,
        "dof_power": -2e-4,
        "dof_acc": -2.5e-7,
        "action_rate": -0.01,
        "collision": -1.0,
        "dof_pos_limits": -10.0,
        "feet_air_time": 1.0,
        "foot_clearance": 0.0,
        "hip_pos": -0.1,
        "dof_pos_stand_still": -0.5,
    })
    tracking_sigma: float = 0.25
    base_height_target: float = 0.30
    foot_clearance_target: float = 0.08
    feet_air_time_target: float = 0.5
    soft_dof_pos_limit: float = 0.9
    only_positive_rewards: bool = True


@dataclass
class DomainRandomization:
    """Per-world physical parameters drawn at start (and at every reset if ``on_reset``)."""

    friction: tuple[float, float] | None = (0.5, 1.25)
    added_base_mass: tuple[float, float] | None = (-1.0, 1.0)
    com_offset: tuple[float, float] | None = (-0.02, 0.02)
    kp_scale: tuple[float, float] | None = (0.9, 1.1)
    kd_scale: tuple[float, float] | None = (0.9, 1.1)
    on_reset: bool = False
    push_interval_s: float | None = 8.0
    max_push_vel: float = 0.5

    def validate(self) -> None:
        for name, low in (("friction", 1e-6), ("kp_scale", 1e-6), ("kd_scale", 1e-6), ("added_base_mass", None),
                          ("com_offset", None)):
            bounds = getattr(self, name)
            if bounds is not None:
                check_range(f"domain_rand.{name}", bounds, low)
        if self.push_interval_s is not None and self.push_interval_s <= 0:
            raise ValueError(f"domain_rand.push_interval_s must be positive or null, got {self.push_interval_s}")
        if self.max_push_vel < 0:
            raise ValueError(f"domain_rand.max_push_vel must be >= 0, got {self.max_push_vel}")


@dataclass
class TerminationConfig:
    """An episode fails when a listed body touches the ground or the base tilts past ``max_tilt_rad``."""

    contact_bodies: tuple[str, ...] = ("base",)
    max_tilt_rad: float = 1.0
    min_base_height: float = 0.12
