"""Velocity commands (lin x, lin y, yaw rate or heading), resampled per env, with a lin-x curriculum."""

from __future__ import annotations

import math

import torch

from leggedex.envs.locomotion.config import CommandsConfig


def wrap_to_pi(angle: torch.Tensor) -> torch.Tensor:
    return torch.remainder(angle + math.pi, 2 * math.pi) - math.pi


class VelocityCommands:
    """Holds ``command`` (num_envs, 3): lin x, lin y (m/s, base frame) and yaw rate (rad/s)."""

    def __init__(self, cfg: CommandsConfig, num_envs: int, device: torch.device, generator: torch.Generator) -> None:
        cfg.validate()
        self.cfg = cfg
        self.generator = generator
        self.command = torch.zeros(num_envs, 3, device=device)
        self.heading = torch.zeros(num_envs, device=device)
        self.in_heading_mode = torch.full((num_envs,), cfg.heading_command, dtype=torch.bool, device=device)
        self.lin_vel_x = list(cfg.lin_vel_x)
        self.fixed: torch.Tensor | None = None  # evaluation: (num_envs, 3) commands held fixed

    def _uniform(self, bounds: list[float] | tuple[float, float], count: int) -> torch.Tensor:
        low, high = bounds
        r = torch.rand(count, device=self.command.device, generator=self.generator)
        return low + (high - low) * r

    def resample(self, ids: torch.Tensor) -> None:
        if ids.numel() == 0:
            return
        if self.fixed is not None:
            self.command[ids] = self.fixed[ids]
            return
        n = ids.numel()
        cfg = self.cfg
        command = torch.stack([self._uniform(self.lin_vel_x, n), self._uniform(cfg.lin_vel_y, n),
                               self._uniform(cfg.ang_vel_yaw, n)], dim=1)
        small = command[:, :2].norm(dim=1) < cfg.zero_below
        command[:, :2] *= (~small).unsqueeze(1)
        standing = torch.rand(n, device=command.device, generator=self.generator) < cfg.standing_fraction
        command[standing] = 0.0
        self.command[ids] = command
        self.heading[ids] = self._uniform(cfg.heading, n)
        if cfg.heading_command and cfg.heading_share < 1.0:  # drawn only here: other configs keep their streams
            self.in_heading_mode[ids] = torch.rand(n, device=command.device,
                                                   generator=self.generator) < cfg.heading_share

    def update_heading(self, base_heading: torch.Tensor) -> None:
        """In heading mode, turn toward the commanded heading with a proportional yaw rate."""
        if self.cfg.heading_command and self.fixed is None:
            error = wrap_to_pi(self.heading - base_heading)
            low, high = self.cfg.ang_vel_yaw
            turn = (self.cfg.heading_stiffness * error).clamp(low, high)
            self.command[:, 2] = torch.where(self.in_heading_mode, turn, self.command[:, 2])

    def update_curriculum(self, tracking_fraction: float) -> None:
        """legged_gym's rule: widen lin x when the mean tracking reward exceeds 0.8 of its maximum."""
        cfg = self.cfg
        if cfg.curriculum and tracking_fraction > 0.8:
            step = cfg.curriculum_step
            self.lin_vel_x = [max(self.lin_vel_x[0] - step, -cfg.max_lin_vel_x),
                              min(self.lin_vel_x[1] + step, cfg.max_lin_vel_x)]
