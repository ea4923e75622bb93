"""The estimator actor-critic with a recurrent actor: ``ActorCriticEstimator`` whose actor is
``actor_mlp(memory([policy, estimate]))``, an LSTM or GRU between its input and its MLP.

The estimator (an MLP on the history) and the critic (an MLP on ``critic``) are ``ActorCriticEstimator``'s; the
estimate still enters the actor without gradient. The module keeps no state: it steps a given actor state while
acting and runs the actor over the trajectories of a ``Sequences`` batch in updates.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.distributions import Normal

from leggedex.modules.actor_critic_estimator import ActorCriticEstimator
from leggedex.modules.memory import Memory
from leggedex.storage.recurrent import Sequences

States = dict[str, torch.Tensor]


class ActorCriticRecurrentEstimator(ActorCriticEstimator):
    """``ActorCriticEstimator``'s options plus ``rnn_type`` (``lstm`` / ``gru``), ``rnn_hidden_size`` and
    ``rnn_num_layers``; ``actor_hidden_dims`` is the MLP after the recurrent layer."""

    def __init__(self, num_policy_obs: int, num_history_obs: int, num_critic_obs: int, num_actions: int,
                 num_estimates: int, rnn_type: str = "lstm", rnn_hidden_size: int = 256, rnn_num_layers: int = 1,
                 **options: Any) -> None:
        super().__init__(num_policy_obs, num_history_obs, num_critic_obs, num_actions, num_estimates,
                         actor_input_dim=rnn_hidden_size, **options)
        self.actor_memory = Memory(num_policy_obs + num_estimates, rnn_type, rnn_hidden_size, rnn_num_layers)

    def state_shapes(self) -> dict[str, tuple[int, int]]:
        """The actor's state tensors: name -> (layers, hidden)."""
        memory = self.actor_memory
        return {name: (memory.num_layers, memory.hidden_size) for name in memory.state_names}

    def zero_states(self, batch: int, device: torch.device | str | None = None) -> States:
        return {name: torch.zeros(layers, batch, hidden, device=device)
                for name, (layers, hidden) in self.state_shapes().items()}

    def _normal(self, out: torch.Tensor) -> Normal:
        mean = self.actor(out)
        return Normal(mean, self.action_std.expand_as(mean))

    def policy_distribution_step(self, policy: torch.Tensor, history: torch.Tensor, states: States
                                 ) -> tuple[Normal, States]:
        """The action distribution for one step on normalized groups from ``states``, and the state after it."""
        names = self.actor_memory.state_names
        out, state = self.actor_memory.step(self.actor_input(policy, history), tuple(states[n] for n in names))
        return self._normal(out), dict(zip(names, state))

    def policy_distribution_sequences(self, sequences: Sequences) -> Normal:
        """The action distributions at every real step of ``sequences`` (its ``policy`` and ``history``)."""
        inputs = self.actor_input(sequences.obs["policy"], sequences.obs["history"])
        initial = tuple(sequences.initial_states[name] for name in self.actor_memory.state_names)
        return self._normal(self.actor_memory.sequences(inputs, sequences.masks, initial))

    def deploy_step(self, raw_policy: torch.Tensor, raw_history: torch.Tensor, *state: torch.Tensor
                    ) -> tuple[torch.Tensor, ...]:
        """The deterministic deploy policy: raw groups and the actor's state -> actions and the next state."""
        inputs = self.actor_input(self.actor_normalizer(raw_policy), self.normalize_history(raw_history))
        out, next_state = self.actor_memory.step(inputs, tuple(state))
        return (self.actor(out), *next_state)

    def deploy_action(self, raw_policy: torch.Tensor, raw_history: torch.Tensor) -> torch.Tensor:
        raise TypeError("a recurrent actor carries a state: call deploy_step(policy, history, *state)")
