"""Rollout storage for on-policy methods: one buffer of ``num_steps x num_envs`` transitions.

Observation groups are stored by name, so a method stores exactly the groups it trains on. A rollout is
filled step by step (``add``), completed with returns and advantages (``compute_returns``), consumed by
``mini_batches`` and then ``clear``-ed; ``add`` refuses to write into a full storage, so no rollout can be
overwritten before it has been trained on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar, Literal, TypeVar

import torch

Shuffle = Literal["every_epoch", "once"]
Batch = TypeVar("Batch", bound="MiniBatch")
SHUFFLES: tuple[str, ...] = ("every_epoch", "once")


@dataclass
class MiniBatch:
    """A flat (batch, ...) slice of a rollout, as PPO consumes it."""

    obs: dict[str, torch.Tensor]
    actions: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    log_probs: torch.Tensor
    action_mean: torch.Tensor
    action_std: torch.Tensor


def batch_slice(batch: Batch, start: int, end: int) -> Batch:
    """Samples ``start:end`` of every per-sample field of ``batch`` (views; groups of ``obs`` too)."""
    def cut(value: Any) -> Any:
        if isinstance(value, dict):
            return {name: x[start:end] for name, x in value.items()}
        return value[start:end] if isinstance(value, torch.Tensor) else value
    return replace(batch, **{f.name: cut(getattr(batch, f.name)) for f in fields(batch)})


class RolloutStorage:
    """Fixed-size transition buffer with GAE; see the module docstring for its life cycle."""

    required_groups: ClassVar[tuple[str, ...]] = ()  # groups a storage subclass cannot do without

    def __init__(
        self, num_envs: int, num_steps: int, obs_sizes: dict[str, int], num_actions: int, device: torch.device | str
    ) -> None:
        missing = [name for name in self.required_groups if name not in obs_sizes]
        if missing:
            raise ValueError(f"{type(self).__name__} needs the observation group(s) {missing}; got "
                             f"{sorted(obs_sizes)}")
        self.num_envs = num_envs
        self.num_steps = num_steps
        self.device = torch.device(device)
        shape = (num_steps, num_envs)
        self.obs = {name: torch.zeros(*shape, size, device=self.device) for name, size in obs_sizes.items()}
        self.actions = torch.zeros(*shape, num_actions, device=self.device)
        self.action_mean = torch.zeros(*shape, num_actions, device=self.device)
        self.action_std = torch.zeros(*shape, num_actions, device=self.device)
        self.log_probs = torch.zeros(shape, device=self.device)
        self.rewards = torch.zeros(shape, device=self.device)
        self.dones = torch.zeros(shape, dtype=torch.bool, device=self.device)
        self.values = torch.zeros(shape, device=self.device)
        self.returns = torch.zeros(shape, device=self.device)
        self.advantages = torch.zeros(shape, device=self.device)
        self.step = 0

    @property
    def is_full(self) -> bool:
        return self.step == self.num_steps

    def add(
        self,
        obs: dict[str, torch.Tensor],
        actions: torch.Tensor,
        log_probs: torch.Tensor,
        action_mean: torch.Tensor,
        action_std: torch.Tensor,
        values: torch.Tensor,
        rewards: torch.Tensor,
        dones: torch.Tensor,
    ) -> None:
        if self.is_full:
            raise RuntimeError("rollout storage is full: it must be trained on and cleared before it is refilled")
        i = self.step
        for name, buffer in self.obs.items():
            buffer[i].copy_(obs[name])
        self.actions[i].copy_(actions)
        self.log_probs[i].copy_(log_probs)
        self.action_mean[i].copy_(action_mean)
        self.action_std[i].copy_(action_std)
        self.values[i].copy_(values)
        self.rewards[i].copy_(rewards)
        self.dones[i].copy_(dones)
        self.step += 1

    def clear(self) -> None:
        self.step = 0

    @torch.no_grad()
    def compute_returns(self, last_values: torch.Tensor, gamma: float, lam: float) -> None:
        """Generalized advantage estimation over the stored rollout (rewards already hold time-out bootstraps)."""
        advantage = torch.zeros_like(last_values)
        next_values = last_values
        for t in reversed(range(self.num_steps)):
            not_done = (~self.dones[t]).float()
            delta = self.rewards[t] + gamma * next_values * not_done - self.values[t]
            advantage = delta + gamma * lam * not_done * advantage
            self.advantages[t] = advantage
            next_values = self.values[t]
        self.returns.copy_(self.advantages + self.values)

    def batch_indices(
        self, num_mini_batches: int, num_epochs: int, shuffle: Shuffle = "every_epoch", total: int | None = None
    ) -> Iterator[torch.Tensor]:
        """Indices into the flattened (step * env) rollout, or into ``total`` samples, for ``num_epochs`` passes,
        each split into ``num_mini_batches`` equal parts: a new random permutation each pass
        (``shuffle="every_epoch"``), or one drawn for the first pass and reused, so that every pass sees the same
        mini-batches (``"once"``, rsl_rl's)."""
        total = self.num_envs * self.num_steps if total is None else total
        if num_mini_batches > total:
            raise ValueError(f"num_mini_batches={num_mini_batches} exceeds the rollout size {total}")
        if shuffle not in SHUFFLES:
            raise ValueError(f"shuffle must be one of {SHUFFLES}, got {shuffle!r}")
        size = total // num_mini_batches
        order = torch.empty(0, dtype=torch.long, device=self.device)
        for epoch in range(num_epochs):
            if epoch == 0 or shuffle == "every_epoch":
                order = torch.randperm(total, device=self.device)
            for k in range(num_mini_batches):
                yield order[k * size : (k + 1) * size]

    def flat_obs(self, names: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        """Stored observation groups (all, or ``names``) as (step * env, size) views."""
        names = self.obs.keys() if names is None else names
        return {name: self.obs[name].flatten(0, 1) for name in names}

    def mini_batches(
        self, num_mini_batches: int, num_epochs: int, groups: Iterable[str] | None = None,
        shuffle: Shuffle = "every_epoch",
    ) -> Iterator[MiniBatch]:
        """``num_epochs`` passes over the rollout, each split into ``num_mini_batches`` random mini-batches
        carrying the observation ``groups`` (default: all stored groups); ``shuffle`` as in ``batch_indices``.
        With ``"once"`` the rollout is gathered in its one order a single time and every pass serves slices of that
        copy: the same mini-batches as gathering each one per pass, for a fifth of the copying at 5 epochs. The
        passes then share that copy, so a consumer replaces a batch's tensors rather than writing into them (as
        PPO's advantage standardization does)."""
        flat = MiniBatch(self.flat_obs(groups), *(x.flatten(0, 1) for x in (
            self.actions, self.values, self.advantages, self.returns, self.log_probs, self.action_mean,
            self.action_std)))
        if shuffle != "once":
            for idx in self.batch_indices(num_mini_batches, num_epochs, shuffle):
                yield self.mini_batch(idx, flat)
            return
        batches = list(self.batch_indices(num_mini_batches, 1, shuffle))
        ordered = self.mini_batch(torch.cat(batches), flat)
        size = batches[0].numel()
        for _ in range(num_epochs):
            for k in range(num_mini_batches):
                yield batch_slice(ordered, k * size, (k + 1) * size)

    def mini_batch(self, idx: torch.Tensor, flat: MiniBatch) -> MiniBatch:
        """The samples ``idx`` of the flattened rollout ``flat`` (a storage with per-sample fields of its own adds
        them here)."""
        return MiniBatch({name: x[idx] for name, x in flat.obs.items()}, flat.actions[idx], flat.values[idx],
                         flat.advantages[idx], flat.returns[idx], flat.log_probs[idx], flat.action_mean[idx],
                         flat.action_std[idx])
