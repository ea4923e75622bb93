"""EpisodeRewardSums: running sums per term, reported per second of episode, reset per env, resumable."""

from __future__ import annotations

import torch

from leggedex.envs.reward_sums import EpisodeRewardSums


def test_sums_are_reported_per_second_and_reset_per_env() -> None:
    sums = EpisodeRewardSums(["reach", "effort"], num_envs=3, device="cpu")
    for _ in range(4):
        sums.add("reach", torch.tensor([1.0, 2.0, 3.0]))
    sums.add("effort", torch.tensor([-1.0, 0.0, 0.0]))
    stats = sums.per_second(torch.tensor([0, 2]), episode_s=2.0)
    assert stats["rew_reach"].item() == (4.0 + 12.0) / 2 / 2.0 and stats["rew_effort"].item() == -0.25
    assert sums.keys() == ("rew_reach", "rew_effort")
    saved = sums.state_dict()
    sums.reset(torch.tensor([1]))
    assert sums["reach"].tolist() == [4.0, 0.0, 12.0]
    sums.load_state_dict(saved)
    assert sums["reach"].tolist() == [4.0, 8.0, 12.0]
