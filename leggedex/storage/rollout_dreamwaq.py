"""Rollout storage of ``DreamWaQPPO``: PPO's transitions plus, per step, the observation the VAE must reconstruct.

``add`` takes ``next_targets`` (the noise-free policy observation after the step); where the step ended an
episode, that observation is a reset's, not the step's consequence, so ``vae_mini_batches`` says for each sample
whether its episode ``went_on``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import torch

from leggedex.storage.rollout import RolloutStorage

VAE_GROUPS: tuple[str, ...] = ("history", "privileged")


class RolloutStorageDreamWaQ(RolloutStorage):
    """A ``RolloutStorage`` with ``history``, ``privileged`` and ``next_targets`` ((steps, envs, target size))."""

    required_groups: ClassVar[tuple[str, ...]] = VAE_GROUPS

    def __init__(
        self, num_envs: int, num_steps: int, obs_sizes: dict[str, int], num_actions: int, device: torch.device | str,
        target_size: int,
    ) -> None:
        super().__init__(num_envs, num_steps, obs_sizes, num_actions, device)
        self.next_targets = torch.zeros(num_steps, num_envs, target_size, device=self.device)

    # keyword-only extension of the base signature (callers name every field), so mypy's positional check is moot
    def add(self, *, next_targets: torch.Tensor, **transition: Any) -> None:  # type: ignore[override]
        if not self.is_full:
            self.next_targets[self.step].copy_(next_targets)
        super().add(**transition)

    def vae_mini_batches(self, num_mini_batches: int, num_epochs: int) -> Iterator[dict[str, torch.Tensor]]:
        """``num_epochs`` shuffled passes of ``history``, ``privileged``, ``next_target`` and ``went_on``."""
        data = {**self.flat_obs(VAE_GROUPS), "next_target": self.next_targets.flatten(0, 1),
                "went_on": ~self.dones.flatten(0, 1)}
        for idx in self.batch_indices(num_mini_batches, num_epochs):
            yield {name: x[idx] for name, x in data.items()}
