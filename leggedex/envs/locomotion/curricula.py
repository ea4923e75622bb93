"""Curricula: how the task gets harder while training goes well (never during evaluation).

- ``terrain_levels`` (switched by ``terrain.curriculum``): at the end of an episode, an env moves up a terrain level
  when it walked farther than half a tile, down when it covered less than half the distance its command asked for
  (legged_gym's rule, kept by ``ground.CurriculumTerrain``).
- ``CommandCurriculum`` (switched and parametrized by ``commands.curriculum``, ``curriculum_step``,
  ``max_lin_vel_x``): widens the lin_vel_x range when the tracking reward of the episodes that ended over the last
  episode length averaged more than 0.8 of its maximum (legged_gym's cadence: deciding on the few envs that end in
  one step would widen the range on noise).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from leggedex.envs.locomotion.commands import VelocityCommands

if TYPE_CHECKING:
    from leggedex.envs.locomotion.env import LeggedLocomotion


def terrain_levels(env: LeggedLocomotion, ids: torch.Tensor) -> None:
    """Move the envs ``ids``, whose episodes just ended, between terrain levels."""
    if not env.ground.curriculum:
        return
    walked = (env.base_pos[ids, :2] - env.ground.spawn_origins(ids)[:, :2]).norm(dim=1)
    commanded = env.commands.command[ids, :2].norm(dim=1) * env.max_episode_length * env.step_dt
    env.ground.update_curriculum(ids, walked, commanded, env.generator)


class CommandCurriculum:
    """Gathers the lin-vel tracking of ended episodes and decides once per ``period`` policy steps."""

    def __init__(self, commands: VelocityCommands, period: int) -> None:
        self.commands = commands
        self.period = period
        self.step_count = 0
        self.tracking = torch.zeros(2)  # sum of ended episodes' tracking fractions, their count

    @property
    def active(self) -> bool:
        return self.commands.cfg.curriculum

    def gather(self, fractions: torch.Tensor) -> None:
        """Tracking reward of ended episodes as a fraction of its maximum (one value per episode)."""
        self.tracking += torch.tensor([float(fractions.sum()), float(fractions.numel())])

    def step(self) -> None:
        self.step_count += 1
        if self.step_count % self.period != 0:
            return
        total, count = self.tracking.tolist()
        if count > 0:
            self.commands.update_curriculum(total / count)
        self.tracking.zero_()

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step_count, "tracking": self.tracking.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step"])
        self.tracking.copy_(state["tracking"])
