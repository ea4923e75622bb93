"""Per-env recurrent states kept by a method while it acts: a mixin for the recurrent methods.

While acting, the method keeps every env's recurrent state (``states``: named tensors, (layers, envs, hidden)
each), proposes the state each step leads to (``propose_states``) and, once the env has stepped, takes it,
zeroed where an episode ended. The states are in the checkpoint (each rank's, as the RNG states are), so a resumed
run continues bit-exactly; a run resumed with another number of envs starts them from zero.

A method lists it before its PPO base (``class RecurrentPPO(EnvStatesMixin, PPO)``), calls ``init_env_states()``
in its ``__init__`` and names its state tensors in ``state_shapes()``: a new run starts them from zero, the storage
(a ``storage_type`` taking ``state_shapes``) keeps them before every step (``transition_extras``), and
``batch_sequences`` gives a trajectory mini-batch's ``Sequences``.
"""

from __future__ import annotations

from typing import Any

import torch

from leggedex.envs.vec_env import Obs
from leggedex.methods.base import gather_to_rank_zero
from leggedex.methods.ppo import PPO
from leggedex.modules.memory import RNN_TYPES, forget
from leggedex.storage.recurrent import SequenceBatch, Sequences
from leggedex.storage.rollout import MiniBatch

States = dict[str, torch.Tensor]


def check_recurrent_options(who: str, rnn_type: str, rnn_hidden_size: int, rnn_num_layers: int,
                            symmetry: bool) -> None:
    """Refuse, naming the config key, a recurrent layer that cannot be built, and symmetry augmentation (a mirrored
    trajectory would need mirrored hidden states, which no mirror function gives)."""
    if rnn_type not in RNN_TYPES:
        raise ValueError(f"model.rnn_type must be one of {sorted(RNN_TYPES)}, got {rnn_type!r}")
    if rnn_hidden_size <= 0 or rnn_num_layers <= 0:
        raise ValueError(f"model.rnn_hidden_size and model.rnn_num_layers must be positive, got {rnn_hidden_size} "
                         f"and {rnn_num_layers}")
    if symmetry:
        raise ValueError(f"{who}: symmetry augmentation (model.symmetry_augmentation / symmetry_loss_coef) does not "
                         "apply to recurrent policies: a mirrored trajectory needs mirrored hidden states, which the "
                         "task's mirror cannot give")


class EnvStatesMixin(PPO):
    """See the module docstring."""

    def init_env_states(self) -> None:
        self.states: States = {}  # per env, the state before the next step
        self._next_states: States = {}  # what the step being taken leads to (taken in process_env_step)
        self._resumed_states: States | None = None

    def state_shapes(self) -> dict[str, tuple[int, int]]:
        """Every state tensor the method keeps per env while acting: name -> (layers, hidden)."""
        raise NotImplementedError

    def zero_states(self, num_envs: int) -> States:
        """The states of ``num_envs`` envs at the start of their episodes."""
        return {name: torch.zeros(layers, num_envs, hidden, device=self.device)
                for name, (layers, hidden) in self.state_shapes().items()}

    def build_storage(self, num_envs: int) -> Any:
        storage_type: Any = self.storage_type  # a recurrent storage, which takes the state shapes
        return storage_type(num_envs, self.num_steps_per_env, self.stored_obs_groups(),
                            self.built_obs_spec.num_actions, self.device, state_shapes=self.state_shapes())

    def transition_extras(self, obs: Obs, stored: Obs) -> dict[str, Any]:
        return {**super().transition_extras(obs, stored), "states": dict(self.states)}  # the state before the step

    def batch_sequences(self, batch: MiniBatch) -> Sequences:
        """A trajectory mini-batch's ``Sequences``; a ``TypeError`` for a flat one."""
        if not isinstance(batch, SequenceBatch) or batch.sequences is None:
            raise TypeError(f"{type(self).__name__} trains on trajectory mini-batches (RecurrentRolloutStorage), got "
                            f"a {type(batch).__name__}")
        return batch.sequences

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
