"""Every reward term's running sum over the current episode, reported per second of episode when episodes end
(legged_gym's ``Episode/rew_<term>`` statistics); shared by the tasks."""

from __future__ import annotations

from collections.abc import Iterable

import torch


class EpisodeRewardSums:
    """Per term, the weighted reward summed over each env's current episode."""

    def __init__(self, names: Iterable[str], num_envs: int, device: torch.device | str) -> None:
        self.sums = {name: torch.zeros(num_envs, device=device) for name in names}
        self.last_step: dict[str, torch.Tensor] = {}  # each term's value in the latest step

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.sums[name]

    def __contains__(self, name: object) -> bool:
        return name in self.sums

    def add(self, name: str, value: torch.Tensor) -> None:
        self.sums[name] += value
        self.last_step[name] = value

    def reset(self, ids: torch.Tensor) -> None:
        for sums in self.sums.values():
            sums[ids] = 0.0

    def per_second(self, ids: torch.Tensor, episode_s: float) -> dict[str, torch.Tensor]:
        """``rew_<term>``: the mean over the episodes of ``ids`` of each sum, divided by the episode length in s."""
        return {f"rew_{name}": sums[ids].mean() / episode_s for name, sums in self.sums.items()}

    def keys(self) -> tuple[str, ...]:
        return tuple(f"rew_{name}" for name in self.sums)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: sums.clone() for name, sums in self.sums.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name, sums in state.items():
            self.sums[name].copy_(sums)
