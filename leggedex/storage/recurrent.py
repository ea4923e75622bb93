"""Rollout storage for recurrent policies: transitions plus the recurrent state before each step, served as
trajectory mini-batches.

A mini-batch takes whole envs (``num_envs // num_mini_batches`` of them), so that every env's 24-step sequence stays
in one piece. Each env's sequence is cut after every done into trajectories; the trajectories are zero-padded to
a common length (``masks`` marks the real steps) and each starts from the state the rollout stored at its first
step: a recurrent layer run over them sees exactly the states the rollout saw. The flat fields (actions,
advantages, ...) are ordered as the unpadded outputs come back: env by env, then step by step.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from leggedex.storage.rollout import MiniBatch, RolloutStorage, Shuffle


@dataclass
class Sequences:
    """Trajectories of a mini-batch: ``obs`` (time, trajectories, size) per group, ``masks`` (time, trajectories),
    ``initial_states`` (layers, trajectories, hidden) per state tensor name."""

    obs: dict[str, torch.Tensor]
    masks: torch.Tensor
    initial_states: dict[str, torch.Tensor]


@dataclass
class SequenceBatch(MiniBatch):
    """A flat mini-batch (env-major order) with its trajectories for the recurrent networks."""

    sequences: Sequences | None = None


def split_trajectories(dones: torch.Tensor, max_length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """For ``dones`` (steps, envs): the env-major flat index of each trajectory's first step, and its length. A
    trajectory ends at a done, at the rollout's last step and, with ``max_length``, after every ``max_length``
    steps of the rollout (the truncation of backpropagation through time)."""
    ends = dones.clone()
    ends[-1] = True
    if max_length is not None:
        ends[max_length - 1 :: max_length] = True
    last = ends.transpose(0, 1).reshape(-1).nonzero().squeeze(-1)
    first = torch.cat([last.new_zeros(1), last[:-1] + 1])
    return first, last - first + 1


def pad_trajectories(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``x`` (steps, envs, size) cut into trajectories of ``lengths`` (env-major order), zero-padded:
    (longest, trajectories, size)."""
    flat = x.transpose(0, 1).reshape(-1, x.shape[-1])
    pieces = torch.split(flat, lengths.tolist())
    return torch.nn.utils.rnn.pad_sequence(list(pieces))


def state_buffers(state_shapes: dict[str, tuple[int, int]] | None, num_steps: int, num_envs: int,
                  device: torch.device | str) -> dict[str, torch.Tensor]:
    """Per named recurrent state tensor (name -> (layers, hidden)), a buffer of its value before every step:
    (steps, layers, envs, hidden)."""
    if not state_shapes:
        raise ValueError("a recurrent rollout storage needs the policy's recurrent state shapes (state_shapes)")
    return {name: torch.zeros(num_steps, layers, num_envs, hidden, device=device)
            for name, (layers, hidden) in state_shapes.items()}


def store_states(buffers: dict[str, torch.Tensor], step: int, states: dict[str, torch.Tensor] | None) -> None:
    if states is None or set(states) != set(buffers):
        raise ValueError(f"a recurrent transition needs the states {sorted(buffers)}, got {sorted(states or {})}")
    for name, buffer in buffers.items():
        buffer[step].copy_(states[name])


def env_batches(num_envs: int, num_mini_batches: int, num_epochs: int, shuffle: Shuffle,
                device: torch.device | str) -> Iterator[torch.Tensor]:
    """Env indices for ``num_epochs`` passes, each split into ``num_mini_batches`` equal sets of envs (``shuffle``
    as in ``RolloutStorage.batch_indices``, over envs instead of transitions)."""
    if num_mini_batches > num_envs:
        raise ValueError(f"num_mini_batches={num_mini_batches} exceeds the {num_envs} envs a recurrent mini-batch "
                         "splits")
    size = num_envs // num_mini_batches
    order = torch.empty(0, dtype=torch.long, device=device)
    for epoch in range(num_epochs):
        if epoch == 0 or shuffle == "every_epoch":
            order = torch.randperm(num_envs, device=device)
        for k in range(num_mini_batches):
            yield order[k * size : (k + 1) * size]


def env_major(x: torch.Tensor, envs: torch.Tensor) -> torch.Tensor:
    """The steps of ``envs`` in ``x`` (steps, envs, ...), flat in env-major order: env by env, then step by step."""
    return x[:, envs].transpose(0, 1).flatten(0, 1)


def sequences_of(obs: dict[str, torch.Tensor], dones: torch.Tensor, states: dict[str, torch.Tensor],
                 envs: torch.Tensor, max_length: int | None = None) -> Sequences:
    """The trajectories of ``envs``: ``obs`` (steps, envs, size) per group cut at ``dones`` (and every
    ``max_length`` steps), padded, each started from the state ``states`` stored at its first step."""
    num_steps = dones.shape[0]
    first, lengths = split_trajectories(dones[:, envs], max_length)
    step, env = first % num_steps, envs[first // num_steps]
    return Sequences(
        obs={name: pad_trajectories(x[:, envs], lengths) for name, x in obs.items()},
        masks=torch.arange(int(lengths.max()), device=dones.device)[:, None] < lengths[None, :],
        initial_states={name: buffer[step, :, env].transpose(0, 1).contiguous() for name, buffer in states.items()},
    )


class StatesStorage(RolloutStorage):
    """A mixin for rollout storages that also keep ``states``: each named recurrent state tensor (``state_shapes``:
    name -> (layers, hidden)) as it was before every step, (steps, layers, envs, hidden); ``add`` takes them as
    ``states=``. List it before the storage it extends."""

    def __init__(
        self, num_envs: int, num_steps: int, obs_sizes: dict[str, int], num_actions: int, device: torch.device | str,
        state_shapes: dict[str, tuple[int, int]] | None = None,
    ) -> None:
        super().__init__(num_envs, num_steps, obs_sizes, num_actions, device)
        self.states = state_buffers(state_shapes, num_steps, num_envs, self.device)

    # keyword-only extension of the base signature (callers name every field), so mypy's positional check is moot
    def add(self, *, states: dict[str, torch.Tensor] | None = None, **transition: Any) -> None:  # type: ignore[override]
        step = self.step
        super().add(**transition)
        store_states(self.states, step, states)


class RecurrentRolloutStorage(StatesStorage):
    """``RolloutStorage`` plus the states before every step (``StatesStorage``), served as trajectory mini-batches."""

    def sequence_batch(self, envs: torch.Tensor, groups: Iterable[str] | None = None) -> SequenceBatch:
        """The transitions of ``envs``: flat fields in env-major order and the trajectories they form."""
        names = list(self.obs) if groups is None else list(groups)

        def flat(x: torch.Tensor) -> torch.Tensor:
            return env_major(x, envs)

        sequences = sequences_of({name: self.obs[name] for name in names}, self.dones, self.states, envs)
        return SequenceBatch({name: flat(self.obs[name]) for name in names}, flat(self.actions), flat(self.values),
                             flat(self.advantages), flat(self.returns), flat(self.log_probs), flat(self.action_mean),
                             flat(self.action_std), sequences)

    def mini_batches(self, num_mini_batches: int, num_epochs: int, groups: Iterable[str] | None = None,
                     shuffle: Shuffle = "every_epoch") -> Iterator[MiniBatch]:
        for envs in env_batches(self.num_envs, num_mini_batches, num_epochs, shuffle, self.device):
            yield self.sequence_batch(envs, groups)
