"""EstimatorPPO with a recurrent actor: the actor is an LSTM or GRU over ``[policy, estimate]`` before its MLP
(``ActorCriticRecurrentEstimator``); the estimator on the history, its regression and its logged errors are
``EstimatorPPO``'s.

As in ``RecurrentPPO``, the method keeps every env's actor state (``EnvStatesMixin``), the storage keeps the state
before each step (``RecurrentRolloutStorage``), and PPO's mini-batches are whole envs cut into trajectories at
dones, each started from its stored state, so the update re-evaluates the rollout's log-probabilities exactly; the
estimator's regression reads the same mini-batches' flat groups. Deployed: ``policy``, ``history`` and the actor's
state -> actions and the next state.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch.distributions import Normal

from leggedex.envs.vec_env import Obs, ObsSpec
from leggedex.methods.env_states import EnvStatesMixin, check_recurrent_options
from leggedex.methods.estimator import EstimatorPPO
from leggedex.modules.actor_critic_estimator_recurrent import ActorCriticRecurrentEstimator
from leggedex.storage.recurrent import RecurrentRolloutStorage
from leggedex.storage.rollout import MiniBatch


class RecurrentEstimatorPPO(EnvStatesMixin, EstimatorPPO):
    """``EstimatorPPO``'s options (``**estimator_kwargs``) plus ``rnn_type`` (``lstm`` / ``gru``),
    ``rnn_hidden_size`` and ``rnn_num_layers`` for the actor's recurrent layer."""

    actor_critic_type: ClassVar[type[ActorCriticRecurrentEstimator]] = ActorCriticRecurrentEstimator
    storage_type: ClassVar[type[RecurrentRolloutStorage]] = RecurrentRolloutStorage
    actor_critic: ActorCriticRecurrentEstimator | None
    fixed_on_resume = EstimatorPPO.fixed_on_resume + ("rnn_type", "rnn_hidden_size", "rnn_num_layers")

    def __init__(self, rnn_type: str = "lstm", rnn_hidden_size: int = 256, rnn_num_layers: int = 1,
                 **estimator_kwargs: Any) -> None:
        super().__init__(**estimator_kwargs)
        check_recurrent_options(type(self).__name__, rnn_type, rnn_hidden_size, rnn_num_layers,
                                self.hparams.symmetry_augmentation or self.hparams.symmetry_loss_coef > 0)
        self.init_env_states()

    # ------------------------------------------------------------------------------------------ construction
    @property
    def built_actor_critic(self) -> ActorCriticRecurrentEstimator:
        return self.built(self.actor_critic)

    def network_arguments(self, spec: ObsSpec) -> dict[str, Any]:
        hp = self.hparams
        return {**super().network_arguments(spec), "rnn_type": hp.rnn_type, "rnn_hidden_size": hp.rnn_hidden_size,
                "rnn_num_layers": hp.rnn_num_layers}

    def state_shapes(self) -> dict[str, tuple[int, int]]:
        return self.built_actor_critic.state_shapes()

    # ------------------------------------------------------------------------------------------------ acting
    def action_distribution(self, obs: Obs) -> Normal:
        dist, next_states = self.built_actor_critic.policy_distribution_step(obs["policy"], obs["history"],
                                                                            self.states)
        self.propose_states(next_states)
        return dist

    # ---------------------------------------------------------------------------------------------- learning
    def batch_distribution(self, batch: MiniBatch) -> Normal:
        return self.built_actor_critic.policy_distribution_sequences(self.batch_sequences(batch))

    # -------------------------------------------------------------------------------------------- deployment
    def recurrent_state(self) -> dict[str, tuple[int, int]]:
        return self.built_actor_critic.state_shapes()

    # policy, history, then the actor's state tensors (recurrent_state()); returns the actions and the next state
    def inference_policy(self, policy_obs: torch.Tensor, history_obs: torch.Tensor,  # type: ignore[override]
                         *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.built_actor_critic.deploy_step(policy_obs, history_obs, *state)
