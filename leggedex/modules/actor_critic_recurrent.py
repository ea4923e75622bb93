"""The recurrent actor-critic: an LSTM or GRU between the normalized observations and the MLP heads.

The actor is ``actor_mlp(memory(actor obs))``; the critic is an MLP on the critic observations, or, with
``critic_recurrent``, ``critic_mlp(critic_memory(critic obs))``. States are dictionaries of named tensors
(``actor_h``, ``actor_c`` for an LSTM actor, ``critic_h``, ... for a recurrent critic), each (layers, batch,
hidden); this module keeps none of them: it steps a given state while acting and runs the networks over the
trajectories of a ``Sequences`` batch in updates.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.distributions import Normal

from leggedex.modules.actor_critic import ActorCritic
from leggedex.modules.memory import Memory, State
from leggedex.storage.recurrent import Sequences

States = dict[str, torch.Tensor]


class RecurrentActorCritic(ActorCritic):
    """``ActorCritic``'s options plus the recurrent layer's: ``rnn_type`` (``lstm`` / ``gru``), ``rnn_hidden_size``,
    ``rnn_num_layers``, and whether the critic has its own recurrent layer (``critic_recurrent``)."""

    def __init__(self, num_actor_obs: int, num_critic_obs: int, num_actions: int, rnn_type: str = "lstm",
                 rnn_hidden_size: int = 256, rnn_num_layers: int = 1, critic_recurrent: bool = False,
                 **options: Any) -> None:
        super().__init__(num_actor_obs, num_critic_obs, num_actions, actor_input_dim=rnn_hidden_size,
                         critic_input_dim=rnn_hidden_size if critic_recurrent else None, **options)
        self.actor_memory = Memory(num_actor_obs, rnn_type, rnn_hidden_size, rnn_num_layers)
        self.critic_memory = (Memory(num_critic_obs, rnn_type, rnn_hidden_size, rnn_num_layers)
                              if critic_recurrent else None)

    def memories(self) -> dict[str, Memory]:
        """The recurrent layers by the prefix of their state names."""
        return {"actor": self.actor_memory, **({"critic": self.critic_memory} if self.critic_memory else {})}

    def state_shapes(self) -> dict[str, tuple[int, int]]:
        """Every state tensor's name and (layers, hidden)."""
        return {f"{prefix}_{name}": (memory.num_layers, memory.hidden_size)
                for prefix, memory in self.memories().items() for name in memory.state_names}

    def zero_states(self, batch: int, device: torch.device | str | None = None) -> States:
        return {name: torch.zeros(layers, batch, hidden, device=device)
                for name, (layers, hidden) in self.state_shapes().items()}

    @staticmethod
    def _part(states: States, prefix: str, memory: Memory) -> State:
        return tuple(states[f"{prefix}_{name}"] for name in memory.state_names)

    @staticmethod
    def _named(prefix: str, memory: Memory, state: State) -> States:
        return {f"{prefix}_{name}": tensor for name, tensor in zip(memory.state_names, state)}

    # ------------------------------------------------------------------------------------------------ acting
    def distribution_step(self, actor_obs: torch.Tensor, states: States) -> tuple[Normal, States]:
        """The action distribution for one step from ``states`` (the state before it) and the actor's next state."""
        out, state = self.actor_memory.step(actor_obs, self._part(states, "actor", self.actor_memory))
        mean = self.actor(out)
        return Normal(mean, self.action_std.expand_as(mean)), self._named("actor", self.actor_memory, state)

    def evaluate_step(self, critic_obs: torch.Tensor, states: States) -> tuple[torch.Tensor, States]:
        """The value for one step and the critic's next state (none for an MLP critic)."""
        if self.critic_memory is None:
            return self.evaluate(critic_obs), {}
        out, state = self.critic_memory.step(critic_obs, self._part(states, "critic", self.critic_memory))
        return self.critic(out).squeeze(-1), self._named("critic", self.critic_memory, state)

    # ----------------------------------------------------------------------------------------------- updates
    def distribution_sequences(self, sequences: Sequences) -> Normal:
        """The action distributions at every real step of ``sequences``, in the flat order of its batch."""
        out = self.actor_memory.sequences(sequences.obs["policy"], sequences.masks,
                                          self._part(sequences.initial_states, "actor", self.actor_memory))
        mean = self.actor(out)
        return Normal(mean, self.action_std.expand_as(mean))

    def evaluate_sequences(self, sequences: Sequences, flat_critic_obs: torch.Tensor) -> torch.Tensor:
        """The values at every real step (the MLP critic reads the flat observations)."""
        if self.critic_memory is None:
            return self.evaluate(flat_critic_obs)
        out = self.critic_memory.sequences(sequences.obs["critic"], sequences.masks,
                                           self._part(sequences.initial_states, "critic", self.critic_memory))
        return self.critic(out).squeeze(-1)

    # ------------------------------------------------------------------------------------------- deployment
    def act_inference_step(self, raw_actor_obs: torch.Tensor, *state: torch.Tensor
                           ) -> tuple[torch.Tensor, ...]:
        """The deterministic deploy policy: raw observations and the actor's state -> actions and the next state."""
        out, next_state = self.actor_memory.step(self.actor_normalizer(raw_actor_obs), tuple(state))
        return (self.actor(out), *next_state)
