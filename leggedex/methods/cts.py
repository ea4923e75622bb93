"""Concurrent teacher-student PPO (CTS; Wang et al., RA-L 2024; LeggedGym-Ex's go2_cts) as a LightningModule.

The envs are split once, for the whole run, by ``teacher_fraction``: the first ``int(num_envs * teacher_fraction)``
envs (of each rank, under DDP) are teachers, the rest students. One actor and one critic serve both: teacher envs
act on ``actor([policy, privilege_encoder(privileged)])``, student envs on ``actor([policy,
history_encoder(history)])``. Every iteration has two stages:

1. PPO on all samples: the surrogate is the teachers' mean plus the students' mean, with advantages standardized
   per group; value loss and entropy over all; the adaptive learning rate follows the teachers' KL. It trains the
   actor, the critic, the privilege encoder and the std; the students' latent enters without gradient.
2. The history encoder alone (its own optimizer) regresses on the detached privileged latent over the student
   envs' samples, ``num_encoder_epochs`` passes (logged as ``Loss/reconstruction``).

So the student learns to act from PPO's own samples, not only by imitation (the difference to ``TeacherStudentPPO``,
whose networks, optimizers, checkpoints and deployment it shares). Deployed: the student, as in
``TeacherStudentPPO``. Logged per group: ``Train/teacher_return``, ``Train/student_return`` and the episode
lengths of the episodes that ended in the rollout (the running sums are in checkpoints, each rank's).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch.distributions import Normal

from leggedex.envs.vec_env import Obs
from leggedex.methods.base import Rollout, gather_to_rank_zero
from leggedex.methods.ppo import standardized
from leggedex.methods.teacher_student import TeacherStudentPPO
from leggedex.storage.rollout import MiniBatch, RolloutStorage
from leggedex.storage.rollout_cts import CTSMiniBatch, RolloutStorageCTS

GROUPS: tuple[str, ...] = ("teacher", "student")


class GroupEpisodes:
    """Running return and length of every env, and the episodes that ended, kept apart for teachers and students."""

    def __init__(self, teacher_envs: torch.Tensor) -> None:
        self.teacher_envs = teacher_envs
        self.returns = torch.zeros(teacher_envs.shape, device=teacher_envs.device)
        self.lengths = torch.zeros_like(self.returns)
        self.finished: dict[str, list[torch.Tensor]] = {f"{g}_{k}": [] for g in GROUPS for k in ("return", "length")}

    def update(self, rewards: torch.Tensor, dones: torch.Tensor) -> None:
        self.returns += rewards
        self.lengths += 1
        for group, members in zip(GROUPS, (self.teacher_envs, ~self.teacher_envs)):
            ended = dones & members
            if bool(ended.any()):
                self.finished[f"{group}_return"].append(self.returns[ended].clone())
                self.finished[f"{group}_length"].append(self.lengths[ended].clone())
        self.returns[dones] = 0.0
        self.lengths[dones] = 0.0

    def pop(self) -> dict[str, float]:
        """``Train/<group>_return`` and ``Train/<group>_episode_length`` over the episodes ended since the last pop."""
        logs = {}
        for key, values in self.finished.items():
            if values:
                name = key.replace("length", "episode_length")
                logs[f"Train/{name}"] = float(torch.cat(values).mean())
            values.clear()
        return logs

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"returns": self.returns.clone(), "lengths": self.lengths.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.returns.copy_(state["returns"])
        self.lengths.copy_(state["lengths"])


class CTSPPO(TeacherStudentPPO):
    """``TeacherStudentPPO``'s options (networks, encoder stage, PPO) plus ``teacher_fraction``; the encoder stage's
    defaults are go2_cts's (learning rate 5e-4, one pass)."""

    storage_type: ClassVar[type[RolloutStorageCTS]] = RolloutStorageCTS

    def __init__(
        self,
        teacher_fraction: float = 0.75,
        encoder_learning_rate: float = 5e-4,
        num_encoder_epochs: int = 1,
        **ts_kwargs: Any,
    ) -> None:
        super().__init__(encoder_learning_rate=encoder_learning_rate, num_encoder_epochs=num_encoder_epochs,
                         **ts_kwargs)
        if not 0.0 < teacher_fraction < 1.0:
            raise ValueError(f"model.teacher_fraction must be in (0, 1): both teacher and student envs are needed, "
                             f"got {teacher_fraction}")
        hp = self.hparams
        if hp.normalize_advantage_per_mini_batch:
            raise ValueError("CTSPPO standardizes advantages per group (teachers, students) over the rollout; "
                             "model.normalize_advantage_per_mini_batch is not available")
        if hp.symmetry_augmentation or hp.symmetry_loss_coef > 0:
            raise ValueError("CTSPPO does not mirror its samples: model.symmetry_augmentation and "
                             "model.symmetry_loss_coef are not available")
        self.teacher_envs: torch.Tensor | None = None  # (num_envs,) bool, set with the storage
        self.episodes: GroupEpisodes | None = None
        self._resumed_episodes: dict[str, torch.Tensor] | None = None

    def teacher_split(self, num_envs: int) -> torch.Tensor:
        """(num_envs,) bool: the first ``int(num_envs * teacher_fraction)`` envs are teachers."""
        num_teachers = int(num_envs * self.hparams.teacher_fraction)
        if not 0 < num_teachers < num_envs:
            raise ValueError(f"CTSPPO with teacher_fraction {self.hparams.teacher_fraction} on {num_envs} envs has "
                             f"{num_teachers} teacher(s) and {num_envs - num_teachers} student(s); it needs both")
        split = torch.zeros(num_envs, dtype=torch.bool, device=self.device)
        split[:num_teachers] = True
        return split

    def build_storage(self, num_envs: int) -> RolloutStorageCTS:
        self.teacher_envs = self.teacher_split(num_envs)
        self.episodes = GroupEpisodes(self.teacher_envs)
        if self._resumed_episodes is not None:
            self.episodes.load_state_dict(self._resumed_episodes)
            self._resumed_episodes = None
        return self.storage_type(num_envs, self.num_steps_per_env, self.stored_obs_groups(),
                                 self.built_obs_spec.num_actions, self.device, self.teacher_envs)

    # ------------------------------------------------------------------------------------------------ hooks
    def mixed_distribution(self, obs: Obs, teacher: torch.Tensor) -> Normal:
        """The actor on the teachers' privileged latent where ``teacher`` is true, on the (detached) students'
        history latent elsewhere."""
        ac = self.built_actor_critic
        latent = obs["policy"].new_zeros(obs["policy"].shape[0], ac.latent_dim)
        latent[teacher] = ac.teacher_latent(obs["privileged"][teacher])
        with torch.no_grad():  # PPO does not train the history encoder: its own stage does
            latent[~teacher] = ac.student_latent(obs["history"][~teacher])
        return ac.distribution(torch.cat([obs["policy"], latent], dim=-1))

    def acting_distribution(self, stored: Obs) -> Normal:
        if self.distilling:
            return super().acting_distribution(stored)
        return self.mixed_distribution(stored, self.built(self.teacher_envs))

    def batch_distribution(self, batch: MiniBatch) -> Normal:
        batch = self.require_type("mini-batches", "the storage gave", batch, CTSMiniBatch)
        return self.mixed_distribution(batch.obs, batch.teacher)

    def sample_groups(self, batch: MiniBatch) -> list[torch.Tensor]:
        teacher = self.require_type("mini-batches", "the storage gave", batch, CTSMiniBatch).teacher
        return [teacher, ~teacher]

    def standardize_advantages(self, storage: RolloutStorage) -> None:
        teacher = self.built(self.teacher_envs)
        for members in (teacher, ~teacher):
            storage.advantages[:, members] = standardized(storage.advantages[:, members])

    def process_env_step(self, obs: Obs, rewards: torch.Tensor, dones: torch.Tensor, extras: dict[str, Any]) -> None:
        super().process_env_step(obs, rewards, dones, extras)
        self.built(self.episodes).update(rewards, dones)

    def learn(self, rollout: Rollout, optimizers: Any) -> dict[str, float]:
        return {**super().learn(rollout, optimizers), **self.built(self.episodes).pop()}

    def train_history_encoder(self, storage: Any, optimizer: Any) -> dict[str, float]:
        logs = super().train_history_encoder(storage, optimizer)
        logs["Loss/reconstruction"] = logs.pop("Loss/encoder")
        logs["Loss/reconstruction_relative"] = logs.pop("Loss/encoder_relative")
        return logs

    # -------------------------------------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        episodes = self.episodes.state_dict() if self.episodes is not None else None
        checkpoint["leggedex"]["cts_episodes"] = gather_to_rank_zero(episodes)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        saved = checkpoint["leggedex"].get("cts_episodes") or []
        if self.global_rank < len(saved) and saved[self.global_rank] is not None:
            self._resumed_episodes = saved[self.global_rank]
