"""Rollout storage of teacher-student PPO with a recurrent student: the teacher's groups, the student's state before
every step, and trajectory mini-batches for the student's two stages.

PPO's mini-batches are ``RolloutStorageTS``'s (the teacher is feed-forward). The encoder stage and the distillation
phase train the recurrent student on ``student_batches``: whole envs, each env's rollout cut into trajectories at
dones and every ``max_length`` steps (truncated backpropagation through time), each started from the student state
the rollout stored at its first step, with the flat ``policy``, ``privileged`` and ``teacher_actions`` of the same
steps in the order the trajectories' outputs come back (env by env, then step by step).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import torch

from leggedex.storage.recurrent import Sequences, StatesStorage, env_batches, env_major, sequences_of
from leggedex.storage.rollout import Shuffle
from leggedex.storage.rollout_ts import RolloutStorageTS

RECURRENT_TS_GROUPS: tuple[str, ...] = ("policy", "privileged", "critic")


@dataclass
class StudentBatch:
    """The student's trajectories (``sequences``, its ``policy`` frames) and the flat fields of their steps, for the
    envs ``envs`` (in that order)."""

    envs: torch.Tensor
    sequences: Sequences
    policy: torch.Tensor
    privileged: torch.Tensor
    teacher_actions: torch.Tensor


class RecurrentRolloutStorageTS(StatesStorage, RolloutStorageTS):
    """``RolloutStorageTS`` without the stacked ``history`` (the student carries its past in its state), plus
    the student's named state tensors before every step (``StatesStorage``)."""

    required_groups: ClassVar[tuple[str, ...]] = RECURRENT_TS_GROUPS

    def student_batches(self, num_mini_batches: int, num_epochs: int, max_length: int | None = None,
                        shuffle: Shuffle = "every_epoch") -> Iterator[StudentBatch]:
        """``num_epochs`` passes over the envs, ``num_mini_batches`` sets of whole envs each (see the docstring)."""
        for envs in env_batches(self.num_envs, num_mini_batches, num_epochs, shuffle, self.device):
            yield StudentBatch(
                envs, sequences_of({"policy": self.obs["policy"]}, self.dones, self.states, envs, max_length),
                policy=env_major(self.obs["policy"], envs),
                privileged=env_major(self.obs["privileged"], envs),
                teacher_actions=env_major(self.teacher_actions, envs),
            )
