"""ActorCritic, MLP and EmpiricalNormalizer."""

from __future__ import annotations

import pytest
import torch

from leggedex.modules import MLP, ActorCritic, EmpiricalNormalizer


def test_mlp_shapes_and_bad_activation() -> None:
    mlp = MLP(5, 3, [16, 8], "tanh")
    assert mlp(torch.zeros(7, 5)).shape == (7, 3)
    assert isinstance(mlp[1], torch.nn.Tanh)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        MLP(5, 3, [8], "swish")


def test_std_is_clamped_and_never_zero() -> None:
    ac = ActorCritic(4, 6, 2, [8], [8], min_std=0.05)
    with torch.no_grad():
        ac.std.fill_(-3.0)  # what a runaway update can produce
    dist = ac.distribution(torch.zeros(3, 4))
    assert torch.all(dist.stddev == 0.05)
    assert torch.isfinite(dist.log_prob(torch.zeros(3, 2))).all()


def test_act_inference_is_deterministic_and_normalized() -> None:
    ac = ActorCritic(4, 6, 2, [8], [8], empirical_normalization=True)
    ac.actor_normalizer.observe(torch.randn(100, 4) * 3 + 1)
    ac.actor_normalizer.commit()
    obs = torch.randn(5, 4)
    out1, out2 = ac.act_inference(obs), ac.act_inference(obs)
    assert torch.equal(out1, out2)
    assert torch.allclose(out1, ac.actor(ac.actor_normalizer(obs)))
    assert not torch.allclose(out1, ac.actor(obs))


def test_normalizer_matches_data_statistics_across_commits() -> None:
    torch.manual_seed(0)
    data = torch.randn(3000, 3) * torch.tensor([1.0, 5.0, 0.1]) + torch.tensor([2.0, -1.0, 0.0])
    norm = EmpiricalNormalizer(3)
    for chunk in data.split(700):  # uneven chunks: the parallel combination must be exact
        norm.observe(chunk)
        norm.commit()
    assert norm.count == 3000
    assert torch.allclose(norm.mean, data.mean(0), atol=1e-5)
    assert torch.allclose(norm.var, data.var(0, unbiased=False), rtol=1e-4)


def test_normalizer_only_changes_at_commit_and_is_saved() -> None:
    norm = EmpiricalNormalizer(2)
    norm.observe(torch.ones(10, 2) * 4)
    assert torch.equal(norm.mean, torch.zeros(2))  # a rollout keeps one fixed normalization
    norm.commit()
    assert torch.allclose(norm.mean, torch.full((2,), 4.0))
    state = norm.state_dict()
    assert set(state) == {"mean", "var", "count"}
    assert state["count"] == 10

