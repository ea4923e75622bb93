"""Rollout storage of concurrent teacher-student PPO (``CTSPPO``): each env is a teacher or a student for the whole
run, and the storage knows which.

PPO's mini-batches (``CTSMiniBatch``) carry every group the two kinds of actors read (the teachers ``privileged``,
the students ``history``) and, per sample, whether a teacher env collected it. The encoder stage trains on the
student envs' samples only (``encoder_mini_batches``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields

import torch

from leggedex.storage.rollout import MiniBatch, Shuffle
from leggedex.storage.rollout_ts import ENCODER_GROUPS, TS_GROUPS, RolloutStorageTS


@dataclass
class CTSMiniBatch(MiniBatch):
    """A PPO mini-batch with ``teacher``: (batch,) bool, true for the samples of teacher envs."""

    teacher: torch.Tensor


class RolloutStorageCTS(RolloutStorageTS):
    """A ``RolloutStorageTS`` whose envs are split into teachers and students (``teacher_envs``, (num_envs,) bool)."""

    def __init__(
        self, num_envs: int, num_steps: int, obs_sizes: dict[str, int], num_actions: int, device: torch.device | str,
        teacher_envs: torch.Tensor,
    ) -> None:
        super().__init__(num_envs, num_steps, obs_sizes, num_actions, device)
        if teacher_envs.shape != (num_envs,) or teacher_envs.dtype != torch.bool:
            raise ValueError(f"teacher_envs must be a ({num_envs},) bool tensor, got {tuple(teacher_envs.shape)} "
                             f"{teacher_envs.dtype}")
        self.teacher_envs = teacher_envs.to(self.device)

    def mini_batches(
        self, num_mini_batches: int, num_epochs: int, groups: Iterable[str] | None = TS_GROUPS,
        shuffle: Shuffle = "every_epoch",
    ) -> Iterator[MiniBatch]:
        """PPO's mini-batches with every group (the students act on the history) and the teacher flags."""
        return super().mini_batches(num_mini_batches, num_epochs, groups, shuffle)

    def mini_batch(self, idx: torch.Tensor, flat: MiniBatch) -> CTSMiniBatch:
        batch = super().mini_batch(idx, flat)
        return CTSMiniBatch(**{f.name: getattr(batch, f.name) for f in fields(batch)},
                            teacher=self.teacher_envs[idx % self.num_envs])  # flat index: step * envs + env

    def encoder_mini_batches(self, num_mini_batches: int, num_epochs: int) -> Iterator[dict[str, torch.Tensor]]:
        """``num_epochs`` shuffled passes over the student envs' ``privileged`` and ``history``."""
        students = ~self.teacher_envs
        return self.sliced({name: self.obs[name][:, students].flatten(0, 1) for name in ENCODER_GROUPS},
                           num_mini_batches, num_epochs)
