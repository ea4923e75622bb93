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
from leggedex.methods.env_states import EnvStatesMixin, check_recurrent_options
from leggedex.methods.ppo import PPO
from leggedex.modules.actor_critic_recurrent import RecurrentActorCritic
from leggedex.storage.recurrent import RecurrentRolloutStorage
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
        check_recurrent_options(type(self).__name__, rnn_type, rnn_hidden_size, rnn_num_layers,
                                self.hparams.symmetry_augmentation or self.hparams.symmetry_loss_coef > 0)
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

    def state_shapes(self) -> dict[str, tuple[int, int]]:
        return self.built_actor_critic.state_shapes()

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

    # ---------------------------------------------------------------------------------------------- learning
    def batch_distribution(self, batch: MiniBatch) -> Normal:
        return self.built_actor_critic.distribution_sequences(self.batch_sequences(batch))

    def batch_value(self, batch: MiniBatch) -> torch.Tensor:
        return self.built_actor_critic.evaluate_sequences(self.batch_sequences(batch), batch.obs["critic"])

    # -------------------------------------------------------------------------------------------- deployment
    def recurrent_state(self) -> dict[str, tuple[int, int]]:
        memory = self.built_actor_critic.actor_memory
        return {name: (memory.num_layers, memory.hidden_size) for name in memory.state_names}

    # the observations, then the actor's state tensors (recurrent_state()); returns the actions and the next state
    def inference_policy(self, policy_obs: torch.Tensor, *state: torch.Tensor  # type: ignore[override]
                         ) -> tuple[torch.Tensor, ...]:
        return self.built_actor_critic.act_inference_step(policy_obs, *state)
