"""Teacher-student PPO with a recurrent student: ``TeacherStudentPPO`` whose history encoder is an LSTM or GRU over
the ``policy`` frames (``ActorCriticRecurrentTS``) instead of an MLP over a stacked ``history`` group.

The teacher and its PPO stage are ``TeacherStudentPPO``'s. While acting, the method keeps every env's student state
(``EnvStatesMixin``): the student steps it on every frame, in the teacher phase too (the teacher acts, the student
follows along), so that the rollout stores the state before each step. Both student stages (the encoder's latent
regression in the teacher phase, the DAgger regression on the frozen teacher's actions in the distillation phase)
train on trajectory mini-batches of whole envs, cut at dones and every ``truncation_steps`` steps, each trajectory
started from the state the rollout stored at its first step: truncated backpropagation through time over at most
``truncation_steps`` steps (default: the whole rollout, ``num_steps_per_env``).

Deployed, the student takes ``policy`` and its state and returns the actions and the next state (``h`` / ``c`` for
an LSTM): ``leggedex export`` writes them as ONNX inputs and outputs and the deploy contract's ``recurrent_state``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from torch.distributions import Normal

from leggedex.envs.vec_env import Obs, ObsSpec
from leggedex.methods.distillation_settings import DistillationSettings
from leggedex.methods.env_states import EnvStatesMixin, check_recurrent_options
from leggedex.methods.teacher_student import TeacherStudentPPO
from leggedex.modules.actor_critic_ts_recurrent import ActorCriticRecurrentTS
from leggedex.storage.recurrent_ts import RECURRENT_TS_GROUPS, RecurrentRolloutStorageTS, StudentBatch
from leggedex.storage.rollout_ts import RolloutStorageTS


class RecurrentTeacherStudentPPO(EnvStatesMixin, TeacherStudentPPO):
    """``TeacherStudentPPO``'s options (``**ts_kwargs``; ``history_encoder_hidden_dims`` is the MLP head after the
    recurrent layer) plus ``rnn_type`` (``lstm`` / ``gru``), ``rnn_hidden_size``, ``rnn_num_layers`` and
    ``truncation_steps`` (backpropagation through at most that many steps; null: ``num_steps_per_env``)."""

    required_obs_groups: ClassVar[tuple[str, ...]] = RECURRENT_TS_GROUPS
    actor_critic_type: ClassVar[type[ActorCriticRecurrentTS]] = ActorCriticRecurrentTS
    storage_type: ClassVar[type[RecurrentRolloutStorageTS]] = RecurrentRolloutStorageTS
    actor_critic: ActorCriticRecurrentTS | None
    fixed_on_resume = TeacherStudentPPO.fixed_on_resume + ("rnn_type", "rnn_hidden_size", "rnn_num_layers")

    def __init__(self, rnn_type: str = "lstm", rnn_hidden_size: int = 256, rnn_num_layers: int = 1,
                 truncation_steps: int | None = None, **ts_kwargs: Any) -> None:
        super().__init__(**ts_kwargs)
        if truncation_steps is not None and not 0 < truncation_steps <= self.num_steps_per_env:
            raise ValueError(f"model.truncation_steps must lie in [1, num_steps_per_env={self.num_steps_per_env}] "
                             f"(or be null for the whole rollout), got {truncation_steps}")
        if self.hparams.history_encoder_type != "mlp":
            raise ValueError(f"{type(self).__name__}: the student's encoder is the recurrent layer (model.rnn_type); "
                             f"model.history_encoder_type {self.hparams.history_encoder_type!r} does not apply")
        check_recurrent_options(type(self).__name__, rnn_type, rnn_hidden_size, rnn_num_layers,
                                self.hparams.symmetry_augmentation or self.hparams.symmetry_loss_coef > 0)
        self.init_env_states()

    @property
    def truncation_steps(self) -> int:
        return self.hparams.truncation_steps or self.num_steps_per_env

    # ------------------------------------------------------------------------------------------ construction
    @property
    def built_actor_critic(self) -> ActorCriticRecurrentTS:
        return self.built(self.actor_critic)

    def network_arguments(self, spec: ObsSpec) -> dict[str, Any]:
        hp = self.hparams
        arguments = {name: value for name, value in super().network_arguments(spec).items()
                     if name not in ("num_history_obs", "history_encoder_type")}
        return {**arguments, "rnn_type": hp.rnn_type, "rnn_hidden_size": hp.rnn_hidden_size,
                "rnn_num_layers": hp.rnn_num_layers}

    def state_shapes(self) -> dict[str, tuple[int, int]]:
        return self.built_actor_critic.state_shapes()

    # ------------------------------------------------------------------------------------------------ acting
    def acting_distribution(self, stored: Obs) -> Normal:
        if not self.distilling:
            return super().acting_distribution(stored)
        dist, next_states = self.built_actor_critic.student_distribution_step(stored["policy"], self.states)
        self.propose_states(next_states)
        return dist

    def transition_extras(self, obs: Obs, stored: Obs) -> dict[str, Any]:
        if not self.stepped:  # the teacher acted: the student follows the frame
            _, next_states = self.built_actor_critic.student_latent_step(stored["policy"], self.states)
            self.propose_states(next_states)
        return super().transition_extras(obs, stored)  # the teacher's label (distilling) and the state

    # ---------------------------------------------------------------------------------------------- learning
    def student_batches(self, storage: RolloutStorageTS, num_mini_batches: int, num_epochs: int
                        ) -> Iterator[StudentBatch]:
        storage = self.require_type("rollout storage", "learn got", storage, RecurrentRolloutStorageTS)
        return storage.student_batches(num_mini_batches, num_epochs, self.truncation_steps)

    def encoder_losses(self, storage: RolloutStorageTS) -> Iterator[torch.Tensor]:
        ac = self.built_actor_critic
        for batch in self.student_batches(storage, self.num_encoder_mini_batches, self.hparams.num_encoder_epochs):
            with torch.no_grad():
                target = ac.teacher_latent(batch.privileged)
            yield (ac.student_latent_sequences(batch.sequences) - target).square().mean()

    def distillation_losses(self, storage: RolloutStorageTS, settings: DistillationSettings
                            ) -> Iterator[torch.Tensor]:
        ac = self.built_actor_critic
        for batch in self.student_batches(storage, self.hparams.num_mini_batches, self.hparams.num_learning_epochs):
            latent = ac.student_latent_sequences(batch.sequences)
            yield settings(ac.actor(torch.cat([batch.policy, latent], dim=-1)), batch.teacher_actions)

    # -------------------------------------------------------------------------------------------- deployment
    def policy_inputs(self) -> tuple[str, ...]:
        return ("policy",)

    def recurrent_state(self) -> dict[str, tuple[int, int]]:
        return self.built_actor_critic.state_shapes()

    # the policy frame, then the student's state tensors (recurrent_state()); returns the actions and the next state
    def inference_policy(self, policy_obs: torch.Tensor, *state: torch.Tensor  # type: ignore[override]
                         ) -> tuple[torch.Tensor, ...]:
        return self.built_actor_critic.student_step(policy_obs, *state)
