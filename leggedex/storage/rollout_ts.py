"""Rollout storage of teacher-student PPO: the four groups it trains on, plus mini-batches for the encoder stage.

PPO's mini-batches carry what the teacher (``policy``, ``privileged``) and the critic (``critic``) read, not the
history, the largest group by far (go2_ts: 900 of 1 099 actor-side values per step). The encoder stage needs only
``privileged`` (its target) and ``history`` (its input): ``encoder_mini_batches`` slices just those two, in an
order of its own.

In the distillation phase (``TeacherStudentPPO``) the frozen teacher labels every visited state: ``add`` then
takes ``teacher_actions`` as well, and ``distillation_mini_batches`` slices the student's inputs (``policy``,
``history``) with those labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import torch

from leggedex.storage.rollout import MiniBatch, RolloutStorage, Shuffle

TS_GROUPS: tuple[str, ...] = ("policy", "privileged", "history", "critic")
PPO_GROUPS: tuple[str, ...] = ("policy", "privileged", "critic")
ENCODER_GROUPS: tuple[str, ...] = ("privileged", "history")
DISTILLATION_GROUPS: tuple[str, ...] = ("policy", "history")


class RolloutStorageTS(RolloutStorage):
    """A ``RolloutStorage`` that holds ``policy``, ``privileged``, ``history`` and ``critic`` (``required_groups``)."""

    required_groups: ClassVar[tuple[str, ...]] = TS_GROUPS

    def __init__(
        self, num_envs: int, num_steps: int, obs_sizes: dict[str, int], num_actions: int, device: torch.device | str
    ) -> None:
        super().__init__(num_envs, num_steps, obs_sizes, num_actions, device)
        self.teacher_actions = torch.zeros_like(self.actions)

    # keyword-only extension of the base signature (callers name every field), so mypy's positional check is moot
    def add(self, *, teacher_actions: torch.Tensor | None = None, **transition: Any) -> None:  # type: ignore[override]
        """``RolloutStorage.add``, plus the frozen teacher's label of the step in the distillation phase."""
        if teacher_actions is not None and not self.is_full:
            self.teacher_actions[self.step].copy_(teacher_actions)
        super().add(**transition)

    def mini_batches(
        self, num_mini_batches: int, num_epochs: int, groups: Iterable[str] | None = PPO_GROUPS,
        shuffle: Shuffle = "every_epoch",
    ) -> Iterator[MiniBatch]:
        """PPO's mini-batches, without the history by default (see the module docstring)."""
        return super().mini_batches(num_mini_batches, num_epochs, groups, shuffle)

    def encoder_mini_batches(self, num_mini_batches: int, num_epochs: int) -> Iterator[dict[str, torch.Tensor]]:
        """``num_epochs`` shuffled passes of ``{"privileged": ..., "history": ...}`` mini-batches."""
        return self.sliced(self.flat_obs(ENCODER_GROUPS), num_mini_batches, num_epochs)

    def distillation_mini_batches(self, num_mini_batches: int, num_epochs: int) -> Iterator[dict[str, torch.Tensor]]:
        """``num_epochs`` shuffled passes of ``{"policy": ..., "history": ..., "teacher_actions": ...}``."""
        data = {**self.flat_obs(DISTILLATION_GROUPS), "teacher_actions": self.teacher_actions.flatten(0, 1)}
        return self.sliced(data, num_mini_batches, num_epochs)

    def sliced(
        self, data: dict[str, torch.Tensor], num_mini_batches: int, num_epochs: int
    ) -> Iterator[dict[str, torch.Tensor]]:
        total = next(iter(data.values())).shape[0]
        for idx in self.batch_indices(num_mini_batches, num_epochs, total=total):
            yield {name: x[idx] for name, x in data.items()}
