"""PPO with a recurrent actor (LSTM or GRU) and, optionally, a recurrent critic (rsl_rl's recurrent PPO).

While acting, the method keeps every env's recurrent state (``states``: ``actor_h``, ``actor_c``, ...; (layers,
envs, hidden) each), stores the state before each step with the transition, steps it, and zeroes it where an
episode ended. The rollout storage (``RecurrentRolloutStorage``) serves mini-batches of whole envs cut into
trajectories at dones, each started from its stored state, so the update evaluates the policy on the hidden states
the rollout acted with. The last value of a rollout is computed from the current state without stepping it.
The states are in the checkpoint (``EnvStatesMixin``), so a resumed run continues bit-exactly.

Deployed, the policy takes the actor's state after its observations and returns the next one after the actions
(``recurrent_state()`` names them); ``leggedex export`` turns that into ONNX inputs / outputs and a TorchScript
module that keeps the state inside. Symmetry augmentation is refused: mirrored trajectories would need mirrored
hidden states, which no mirror function gives.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch.distributions import Normal

from leggedex.envs.vec_env import Obs, ObsSpec
from leggedex.methods.env_states import EnvStatesMixin, States
from leggedex.methods.ppo import PPO
from leggedex.modules.actor_critic_recurrent import RecurrentActorCritic
from leggedex.modules.memory import RNN_TYPES
from leggedex.storage.recurrent import RecurrentRolloutStorage, SequenceBatch, Sequences
from leggedex.storage.rollout import MiniBatch


class RecurrentPPO(EnvStatesMixin, PPO):
    """PPO's options (``**ppo_kwargs``, see ``PPO``; ``actor_hidden_dims`` / ``critic_hidden_dims`` are the MLP
    heads after the recurrent layers) plus ``rnn_type`` (``lstm`` / ``gru``), ``rnn_hidden_size``,
    ``rnn_num_layers`` and ``critic_recurrent`` (a recurrent layer of its own for the critic; default an MLP)."""

    actor_critic_type: ClassVar[type[RecurrentActorCritic]] = RecurrentActorCritic
    storage_type: ClassVar[type[RecurrentRolloutStorage]] = RecurrentRolloutStorage
    actor_critic: RecurrentActorCritic | None
    fixed_on_resume = PPO.fixed_on_resume + ("rnn_type", "rnn_hidden_size", "rnn_num_layers", "critic_recurrent")

    def __init__(self, rnn_type: str = "lstm", rnn_hidden_size: int = 256, rnn_num_layers: int = 1,
                 critic_recurrent: bool = False, **ppo_kwargs: Any) -> None:
        super().__init__(**ppo_kwargs)
        if rnn_type not in RNN_TYPES:
            raise ValueError(f"model.rnn_type must be one of {sorted(RNN_TYPES)}, got {rnn_type!r}")
        if rnn_hidden_size <= 0 or rnn_num_layers <= 0:
            raise ValueError(f"model.rnn_hidden_size and model.rnn_num_layers must be positive, got {rnn_hidden_size} "
                             f"and {rnn_num_layers}")
        if self.hparams.symmetry_augmentation or self.hparams.symmetry_loss_coef > 0:
            raise ValueError("RecurrentPPO: symmetry augmentation (model.symmetry_augmentation / symmetry_loss_coef) "
                             "does not apply to recurrent policies: a mirrored trajectory needs mirrored hidden "
                             "states, which the task's mirror cannot give")
        self.init_env_states()

    # ------------------------------------------------------------------------------------------ construction
    @property
    def built_actor_critic(self) -> RecurrentActorCritic:
        return self.built(self.actor_critic)

    def build_networks(self, spec: ObsSpec) -> None:
        hp = self.hparams
        self.actor_critic = RecurrentActorCritic(
            num_actor_obs=spec.groups["policy"], num_critic_obs=spec.groups["critic"], num_actions=spec.num_actions,
            rnn_type=hp.rnn_type, rnn_hidden_size=hp.rnn_hidden_size, rnn_num_layers=hp.rnn_num_layers,
            critic_recurrent=hp.critic_recurrent, **self.network_options())

    def build_storage(self, num_envs: int) -> RecurrentRolloutStorage:
        return self.storage_type(num_envs, self.num_steps_per_env, self.stored_obs_groups(),
                                 self.built_obs_spec.num_actions, self.device,
                                 state_shapes=self.built_actor_critic.state_shapes())

    def zero_states(self, num_envs: int) -> States:
        return self.built_actor_critic.zero_states(num_envs, self.device)

    # ------------------------------------------------------------------------------------------------ acting
    def action_distribution(self, obs: Obs) -> Normal:
        """The policy's next step from the envs' current states (the state it leads to is applied once the env
        has stepped)."""
        dist, next_states = self.built_actor_critic.distribution_step(obs["policy"], self.states)
        self.propose_states(next_states)
        return dist

    def value(self, obs: Obs) -> torch.Tensor:
        """The critic from the envs' current states, which it does not change (the rollout's last value reads
        the state after the last step and leaves it for the next rollout)."""
        values, next_states = self.built_actor_critic.evaluate_step(obs["critic"], self.states)
        self.propose_states(next_states)
        return values

    def transition_extras(self, obs: Obs, stored: Obs) -> dict[str, Any]:
        return {"states": dict(self.states)}  # the state before this step, which the storage keeps

    # ---------------------------------------------------------------------------------------------- learning
    def _sequences(self, batch: MiniBatch) -> Sequences:
        if not isinstance(batch, SequenceBatch) or batch.sequences is None:
            raise TypeError(f"{type(self).__name__} trains on trajectory mini-batches (RecurrentRolloutStorage), got "
                            f"a {type(batch).__name__}")
        return batch.sequences

    def batch_distribution(self, batch: MiniBatch) -> Normal:
        return self.built_actor_critic.distribution_sequences(self._sequences(batch))

    def batch_value(self, batch: MiniBatch) -> torch.Tensor:
        return self.built_actor_critic.evaluate_sequences(self._sequences(batch), batch.obs["critic"])

    # -------------------------------------------------------------------------------------------- deployment
    def recurrent_state(self) -> dict[str, tuple[int, int]]:
        memory = self.built_actor_critic.actor_memory
        return {name: (memory.num_layers, memory.hidden_size) for name in memory.state_names}

    # the observations, then the actor's state tensors (recurrent_state()); returns the actions and the next state
    def inference_policy(self, policy_obs: torch.Tensor, *state: torch.Tensor  # type: ignore[override]
                         ) -> tuple[torch.Tensor, ...]:
        return self.built_actor_critic.act_inference_step(policy_obs, *state)
