"""Survival and return over an evaluation run: each env counts until its first termination (time-outs are not
falls), as play and the locomotion evaluation report them."""

from __future__ import annotations

from typing import Any

import torch


class FirstEpisode:
    """Per env: the reward summed until its first termination, and whether it terminated."""

    def __init__(self, num_envs: int, device: torch.device | str) -> None:
        self.returns = torch.zeros(num_envs, device=device)
        self.fell = torch.zeros(num_envs, dtype=torch.bool, device=device)

    def update(self, rewards: torch.Tensor, dones: torch.Tensor, extras: dict[str, Any]) -> torch.Tensor:
        """Add one step; returns the envs that were still in their first episode during it."""
        alive = ~self.fell
        self.returns += rewards * alive
        time_outs = extras.get("time_outs")
        self.fell |= dones & ~time_outs if time_outs is not None else dones
        return alive
