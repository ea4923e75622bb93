"""A recurrent layer (LSTM or GRU) run one step at a time while acting, or over padded trajectories in updates.

Its state is a tuple of tensors of shape ``(num_layers, batch, hidden_size)``: ``(h, c)`` for an LSTM, ``(h,)`` for
a GRU. The module keeps no state itself: whoever acts owns it (the method per env, a deployed policy per robot).
"""

from __future__ import annotations

import torch
from torch import nn

RNN_TYPES: dict[str, type[nn.LSTM] | type[nn.GRU]] = {"lstm": nn.LSTM, "gru": nn.GRU}
State = tuple[torch.Tensor, ...]


def forget(state: torch.Tensor, dones: torch.Tensor) -> torch.Tensor:
    """``state`` (layers, batch, hidden) with the columns of the envs where ``dones`` is true zeroed."""
    return state * (~dones.to(state.device)).to(state.dtype)[None, :, None]


class Memory(nn.Module):
    """``rnn_type`` (``lstm`` or ``gru``) with ``num_layers`` layers of ``hidden_size`` over ``input_size`` inputs."""

    def __init__(self, input_size: int, rnn_type: str = "lstm", hidden_size: int = 256, num_layers: int = 1) -> None:
        super().__init__()
        if rnn_type not in RNN_TYPES:
            raise ValueError(f"rnn_type must be one of {sorted(RNN_TYPES)}, got {rnn_type!r}")
        if input_size <= 0 or hidden_size <= 0 or num_layers <= 0:
            raise ValueError(f"recurrent sizes must be positive: input {input_size}, hidden_size {hidden_size}, "
                             f"num_layers {num_layers}")
        self.rnn_type = rnn_type
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.rnn = RNN_TYPES[rnn_type](input_size, hidden_size, num_layers)

    @property
    def state_names(self) -> tuple[str, ...]:
        """The names of the state's tensors: ``("h", "c")`` for an LSTM, ``("h",)`` for a GRU."""
        return ("h", "c") if self.rnn_type == "lstm" else ("h",)

    def _run(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        if self.rnn_type == "lstm":
            out, (h, c) = self.rnn(x, (state[0], state[1]))
            return out, (h, c)
        out, h = self.rnn(x, state[0])
        return out, (h,)

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One step: ``x`` (batch, input) and the state before it -> output (batch, hidden) and the state after."""
        out, new_state = self._run(x.unsqueeze(0), state)
        return out.squeeze(0), new_state

    def sequences(self, padded: torch.Tensor, masks: torch.Tensor, initial: State) -> torch.Tensor:
        """Trajectories ``padded`` (time, trajectories, input), valid where ``masks`` (time, trajectories), each
        started from its column of ``initial``: the outputs at the valid steps, trajectory by trajectory
        (``(valid steps, hidden)``, in the order ``sequence_batch`` flattens the rollout)."""
        out, _ = self._run(padded, initial)
        return out.transpose(0, 1)[masks.transpose(0, 1)]
