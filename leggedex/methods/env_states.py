"""Per-env recurrent states kept by a method while it acts: a mixin for the recurrent methods.

While acting, the method keeps every env's recurrent state (``states``: named tensors, (layers, envs, hidden)
each), proposes the state each step leads to (``propose_states``) and, once the env has stepped, takes it,
zeroed where an episode ended. The states are in the checkpoint (each rank's, as the RNG states are), so a resumed
run continues bit-exactly; a run resumed with another number of envs starts them from zero.

A method lists it before its PPO base (``class RecurrentPPO(EnvStatesMixin, PPO)``), calls ``init_env_states()``
in its ``__init__`` and says what a new run starts from in ``zero_states``.
"""

from __future__ import annotations

from typing import Any

import torch

from leggedex.envs.vec_env import Obs
from leggedex.methods.base import OnPolicyMethod, gather_to_rank_zero
from leggedex.modules.memory import forget

States = dict[str, torch.Tensor]


class EnvStatesMixin(OnPolicyMethod):
    """See the module docstring."""

    def init_env_states(self) -> None:
        self.states: States = {}  # per env, the state before the next step
        self._next_states: States = {}  # what the step being taken leads to (taken in process_env_step)
        self._resumed_states: States | None = None

    def zero_states(self, num_envs: int) -> States:
        """The states of ``num_envs`` envs at the start of their episodes."""
        raise NotImplementedError

    def propose_states(self, next_states: States) -> None:
        """The state (or part of it) the step being taken leads to."""
        self._next_states.update(next_states)

    @property
    def stepped(self) -> bool:
        """Whether the step being taken has proposed its next states already."""
        return bool(self._next_states)

    def setup_storage(self, num_envs: int) -> None:
        super().setup_storage(num_envs)
        zero = self.zero_states(num_envs)
        resumed = self._resumed_states
        if resumed is not None and set(resumed) == set(zero) and all(resumed[k].shape == zero[k].shape for k in zero):
            self.states = {name: tensor.to(self.device) for name, tensor in resumed.items()}
        else:  # a new run (or one resumed with another number of envs: its episodes start afresh anyway)
            self.states = zero
        self._resumed_states = None

    def process_env_step(self, obs: Obs, rewards: torch.Tensor, dones: torch.Tensor, extras: dict[str, Any]) -> None:
        super().process_env_step(obs, rewards, dones, extras)
        self.states = {name: forget(self._next_states[name], dones) for name in self.states}
        self._next_states = {}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["leggedex"]["recurrent_states"] = gather_to_rank_zero(self.states)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        saved = checkpoint["leggedex"].get("recurrent_states") or []
        if self.global_rank < len(saved):
            self._resumed_states = saved[self.global_rank]
