"""Empirical observation normalization with statistics kept in buffers (saved in every checkpoint).

Statistics are gathered in two steps so that a rollout is normalized with one fixed set of statistics and
so that data-parallel ranks never drift apart:

1. ``observe(x)`` adds a batch to the *pending* sums (count, sum, sum of squares) while acting;
2. ``commit()`` folds the pending sums into the running mean/variance once per iteration. Under
   ``torch.distributed`` the pending sums of all ranks are all-reduced first (one collective), so every rank
   folds in the same numbers and keeps identical statistics.

The pending sums are a plain tensor, not a buffer: DDP broadcasts rank 0's buffers at every forward, which
would replace every other rank's pending sums with rank 0's before they are reduced.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


class EmpiricalNormalizer(nn.Module):
    """``(x - mean) / (std + eps)`` with running statistics; ``until`` caps the number of samples folded in."""

    # buffers, registered in __init__
    mean: torch.Tensor
    var: torch.Tensor
    count: torch.Tensor

    def __init__(self, size: int, eps: float = 1e-2, until: int | None = None) -> None:
        super().__init__()
        self.size = size
        self.eps = eps
        self.until = until
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("var", torch.ones(size))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        # pending (count, sum, sum of squares) since the last commit, float64 so that millions of samples add up
        # exactly enough; created on the device of the first observed batch
        self._pending: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / (self.var.sqrt() + self.eps)

    @torch.no_grad()
    def observe(self, x: torch.Tensor) -> None:
        if self.until is not None and self.count >= self.until:
            return
        x = x.reshape(-1, self.size).to(torch.float64)
        if self._pending is None:
            self._pending = torch.zeros(2 * self.size + 1, dtype=torch.float64, device=x.device)
        self._pending[0] += x.shape[0]
        self._pending[1 : 1 + self.size] += x.sum(dim=0)
        self._pending[1 + self.size :] += x.square().sum(dim=0)

    @torch.no_grad()
    def commit(self) -> None:
        if self._pending is None:  # nothing observed on this rank: it still takes part in the reduction
            pending = torch.zeros(2 * self.size + 1, dtype=torch.float64, device=self.mean.device)
        else:  # a clone is a normal tensor; the pending sums were created under inference_mode
            pending = self._pending.clone()
        self._pending = None
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(pending)
        n = pending[0]
        if n == 0:
            return
        batch_mean = pending[1 : 1 + self.size] / n
        batch_var = (pending[1 + self.size :] / n - batch_mean.square()).clamp_min(0.0)
        total = self.count + n
        old_mean = self.mean.to(torch.float64)
        delta = batch_mean - old_mean
        new_mean = old_mean + delta * (n / total)
        # Chan et al.'s parallel combination of two (mean, M2) sets
        m2 = self.var.to(torch.float64) * self.count + batch_var * n + delta.square() * self.count * n / total
        self.mean.copy_(new_mean)
        self.var.copy_(m2 / total)
        self.count.copy_(total)


def empirical(normalizer: nn.Module) -> EmpiricalNormalizer:
    """``normalizer`` as the ``EmpiricalNormalizer`` it is when empirical normalization is on."""
    if not isinstance(normalizer, EmpiricalNormalizer):
        raise TypeError(f"empirical normalization is on, but the normalizer is {type(normalizer).__name__}")
    return normalizer


def normalize_frames(normalizer: nn.Module, history: torch.Tensor, frame_size: int) -> torch.Tensor:
    """A flat (batch, frames * frame_size) history normalized frame by frame with one frame's ``normalizer``."""
    return normalizer(history.reshape(history.shape[0], -1, frame_size)).flatten(1)
