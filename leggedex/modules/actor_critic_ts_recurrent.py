"""The teacher-student actor-critic with a recurrent student: an LSTM or GRU over the policy frames replaces the
history encoder.

- teacher: ``actor([policy, privilege_encoder(privileged)])``, as in ``ActorCriticTS``;
- student: ``actor([policy, head(memory(policy))])``: the recurrent layer reads one normalized ``policy`` frame per
  step and carries the past in its state, where ``ActorCriticTS``'s student reads a stacked ``history`` group;
- critic: ``critic(critic)``.

The module keeps no state: it steps a given student state while acting and runs the student over the trajectories
of a ``Sequences`` batch in updates. ``history_encoder`` is the recurrent encoder (memory + head), so everything
that trains or freezes ``ActorCriticTS``'s history encoder applies to it unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.distributions import Normal

from leggedex.modules.actor_critic_ts import ActorCriticTS
from leggedex.modules.memory import Memory, State
from leggedex.modules.mlp import MLP
from leggedex.storage.recurrent import Sequences


class RecurrentEncoder(nn.Module):
    """``head(memory(frame))``: a recurrent layer over policy frames and an MLP from its output to the latent."""

    def __init__(self, num_policy_obs: int, latent_dim: int, rnn_type: str, hidden_size: int, num_layers: int,
                 head_hidden_dims: list[int] | tuple[int, ...], activation: str) -> None:
        super().__init__()
        self.memory = Memory(num_policy_obs, rnn_type, hidden_size, num_layers)
        self.head = MLP(hidden_size, latent_dim, head_hidden_dims, activation)

    def step(self, policy: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        out, next_state = self.memory.step(policy, state)
        return self.head(out), next_state

    def sequences(self, sequences: Sequences, state_names: tuple[str, ...]) -> torch.Tensor:
        """The latent at every real step of ``sequences`` (its ``policy`` trajectories), in its batch's flat order."""
        initial = tuple(sequences.initial_states[name] for name in state_names)
        return self.head(self.memory.sequences(sequences.obs["policy"], sequences.masks, initial))


class ActorCriticRecurrentTS(ActorCriticTS):
    """``ActorCriticTS``'s options (``history_encoder_hidden_dims`` is the head after the recurrent layer) plus the
    recurrent layer's: ``rnn_type`` (``lstm`` / ``gru``), ``rnn_hidden_size``, ``rnn_num_layers``."""

    history_encoder: RecurrentEncoder

    def __init__(self, num_policy_obs: int, num_privileged_obs: int, num_critic_obs: int, num_actions: int,
                 rnn_type: str = "lstm", rnn_hidden_size: int = 256, rnn_num_layers: int = 1,
                 history_encoder_hidden_dims: list[int] | tuple[int, ...] = (256, 128), activation: str = "elu",
                 **options: Any) -> None:
        # one policy frame stands for the history ActorCriticTS would stack; its encoder is replaced below
        super().__init__(num_policy_obs, num_privileged_obs, num_policy_obs, num_critic_obs, num_actions,
                         history_encoder_hidden_dims=history_encoder_hidden_dims, activation=activation, **options)
        self.history_encoder = RecurrentEncoder(num_policy_obs, self.latent_dim, rnn_type, rnn_hidden_size,
                                                rnn_num_layers, history_encoder_hidden_dims, activation)

    @property
    def state_names(self) -> tuple[str, ...]:
        return self.history_encoder.memory.state_names

    def state_shapes(self) -> dict[str, tuple[int, int]]:
        """The student's state tensors: name -> (layers, hidden)."""
        memory = self.history_encoder.memory
        return {name: (memory.num_layers, memory.hidden_size) for name in memory.state_names}

    def zero_states(self, batch: int, device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        return {name: torch.zeros(layers, batch, hidden, device=device)
                for name, (layers, hidden) in self.state_shapes().items()}

    def _state(self, states: dict[str, torch.Tensor]) -> State:
        return tuple(states[name] for name in self.state_names)

    # ------------------------------------------------------------------------------------------------ acting
    def student_latent_step(self, policy: torch.Tensor, states: dict[str, torch.Tensor]
                            ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The student's latent for one step on normalized ``policy`` from ``states``, and the state after it."""
        latent, state = self.history_encoder.step(policy, self._state(states))
        return latent, dict(zip(self.state_names, state))

    def student_distribution_step(self, policy: torch.Tensor, states: dict[str, torch.Tensor]
                                  ) -> tuple[Normal, dict[str, torch.Tensor]]:
        latent, next_states = self.student_latent_step(policy, states)
        return self.distribution(torch.cat([policy, latent], dim=-1)), next_states

    # ----------------------------------------------------------------------------------------------- updates
    def student_latent_sequences(self, sequences: Sequences) -> torch.Tensor:
        return self.history_encoder.sequences(sequences, self.state_names)

    def student_latent(self, history: torch.Tensor) -> torch.Tensor:
        raise TypeError("a recurrent student reads one policy frame per step: call student_latent_step or "
                        "student_latent_sequences")

    # ------------------------------------------------------------------------------------------- deployment
    def student_step(self, raw_policy: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The deterministic deploy policy: raw ``policy`` and the student's state -> actions and the next state."""
        policy = self.actor_normalizer(raw_policy)
        latent, next_state = self.history_encoder.step(policy, tuple(state))
        return (self.actor(torch.cat([policy, latent], dim=-1)), *next_state)

    def student_action(self, raw_policy: torch.Tensor, raw_history: torch.Tensor) -> torch.Tensor:
        raise TypeError("a recurrent student carries a state: call student_step(policy, *state)")
