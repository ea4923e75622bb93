"""Rollout storage of teacher-student PPO: the four groups it trains on, plus mini-batches for the encoder stage.

PPO's mini-batches carry what the teacher (``policy``, ``privileged``) and the critic (``critic``) read, not the
history, the largest group by far (go2_ts: 900 of 1 099 actor-side values per step). The encoder stage needs only
``privileged`` (its target) and ``history`` (its input): ``encoder_mini_batches`` slices just those two, in an
order of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch

from leggedex.storage.rollout import MiniBatch, RolloutStorage

TS_GROUPS: tuple[str, ...] = ("policy", "privileged", "history", "critic")
PPO_GROUPS: tuple[str, ...] = ("policy", "privileged", "critic")
ENCODER_GROUPS: tuple[str, ...] = ("privileged", "history")


class RolloutStorageTS(RolloutStorage):
    """A ``RolloutStorage`` that holds ``policy``, ``privileged``, ``history`` and ``critic``."""

    def __init__(
        self, num_envs: int, num_steps: int, obs_sizes: dict[str, int], num_actions: int, device: torch.device | str
    ) -> None:
        missing = [name for name in TS_GROUPS if name not in obs_sizes]
        if missing:
            raise ValueError(f"RolloutStorageTS needs the observation group(s) {missing}; got {sorted(obs_sizes)}")
        super().__init__(num_envs, num_steps, obs_sizes, num_actions, device)

    def mini_batches(
        self, num_mini_batches: int, num_epochs: int, groups: Iterable[str] | None = PPO_GROUPS
    ) -> Iterator[MiniBatch]:
        """PPO's mini-batches, without the history by default (see the module docstring)."""
        return super().mini_batches(num_mini_batches, num_epochs, groups)

    def encoder_mini_batches(self, num_mini_batches: int, num_epochs: int) -> Iterator[dict[str, torch.Tensor]]:
        """``num_epochs`` shuffled passes of ``{"privileged": ..., "history": ...}`` mini-batches."""
        obs = self.flat_obs(ENCODER_GROUPS)
        for idx in self.batch_indices(num_mini_batches, num_epochs):
            yield {name: x[idx] for name, x in obs.items()}
