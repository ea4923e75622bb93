"""Symmetry for PPO: mirrored samples beside the collected ones (sharing their old log-probabilities, values,
advantages and returns), a mirror loss that makes the policy its own mirror image, symmetric normalizer
statistics, learning with both, and a clear refusal where the task has no mirror."""

from __future__ import annotations

import time

import pytest
import torch

from leggedex.data import PlainLoop
from leggedex.envs import LeggedLocomotion, ObsSpec, PointMassReach
from leggedex.envs.locomotion.config import ObservationConfig
from leggedex.methods import PPO
from leggedex.methods.ppo import augmented
from leggedex.storage.rollout import MiniBatch

from conftest import SMALL_PPO, make_datamodule, make_ppo, make_trainer, one_thread_backend, ppo_return


def asymmetry(ppo: PPO, env: PointMassReach) -> float:
    """Mean |policy(mirror(obs)) - mirror(policy(obs))| over the env's start observations."""
    mirror = env.mirror()
    obs = env.reset()["policy"]
    with torch.inference_mode():
        acts = ppo.inference_policy(obs)
        mirrored = ppo.inference_policy(mirror.groups["policy"].apply(obs))
    return float((mirrored - mirror.actions.apply(acts)).abs().mean())


def test_an_augmented_mini_batch_holds_the_mirrors_after_the_samples() -> None:
    mirror = PointMassReach(2).mirror()
    n = 5
    batch = MiniBatch(obs={"policy": torch.randn(n, 6), "critic": torch.randn(n, 8)}, actions=torch.randn(n, 2),
                      values=torch.randn(n), advantages=torch.randn(n), returns=torch.randn(n),
                      log_probs=torch.randn(n), action_mean=torch.randn(n, 2), action_std=torch.rand(n, 2))
    out = augmented(batch, mirror)
    assert torch.equal(out.obs["critic"][:n], batch.obs["critic"])
    assert torch.equal(out.obs["critic"][n:, 1::2], -batch.obs["critic"][:, 1::2])  # every planar y negated
    assert torch.equal(out.actions[n:], batch.actions * torch.tensor([1.0, -1.0]))
    for name in ("values", "advantages", "returns", "log_probs"):
        assert torch.equal(getattr(out, name), getattr(batch, name).repeat(2)), name
    assert torch.equal(out.action_mean, batch.action_mean)  # the KL stays the collected samples'


def test_the_mirror_loss_makes_the_policy_its_own_mirror_image() -> None:
    results = {}
    for coef in (0.0, 10.0):
        torch.manual_seed(0)
        ppo = make_ppo(symmetry_loss_coef=coef)
        loop = PlainLoop(PointMassReach(64, seed=0), ppo)
        before = asymmetry(ppo, PointMassReach(256, seed=1))
        for _ in range(8):
            logs = loop.learn(loop.collect())
        results[coef] = asymmetry(ppo, PointMassReach(256, seed=1))
        assert ("Loss/symmetry" in logs) == (coef > 0)
    print(f"asymmetry at the start {before:.4f}; after 8 updates without / with the loss: {results}")
    assert results[10.0] < 0.3 * results[0.0]


def test_normalizers_see_each_sample_and_its_mirror() -> None:
    torch.manual_seed(0)
    env = PointMassReach(32, seed=0)
    ppo = make_ppo(symmetry_augmentation=True)
    loop = PlainLoop(env, ppo)
    loop.learn(loop.collect())
    mirror = env.mirror()
    for normalizer, group in ((ppo.actor_critic.actor_normalizer, "policy"),
                              (ppo.actor_critic.critic_normalizer, "critic")):
        assert normalizer.count > 0
        torch.testing.assert_close(mirror.groups[group].apply(normalizer.mean), normalizer.mean, atol=1e-6, rtol=0)
        torch.testing.assert_close(normalizer.var[list(mirror.groups[group].index)], normalizer.var)


def test_ppo_learns_point_mass_reaching_with_mirrored_samples() -> None:
    """Same seed and budget as PPO's learning test: it learns as well, and the policy comes out more symmetric."""
    results = {}
    for symmetric in (False, True):
        torch.manual_seed(0)
        ppo = make_ppo(actor_hidden_dims=[64, 64], critic_hidden_dims=[64, 64], num_steps_per_env=24,
                       num_learning_epochs=5, num_mini_batches=4, entropy_coef=0.005,
                       symmetry_augmentation=symmetric, symmetry_loss_coef=1.0 if symmetric else 0.0)
        start = time.perf_counter()
        make_trainer(40).fit(ppo, datamodule=make_datamodule(num_envs=128))
        assert time.perf_counter() - start < 120
        results[symmetric] = (ppo_return(ppo), asymmetry(ppo, PointMassReach(256, seed=1)))
    print(f"(return, asymmetry) plain {results[False]}, symmetric {results[True]}")
    assert results[True][0] > 5.0
    assert results[True][1] < 0.5 * results[False][1]


def test_symmetry_is_refused_where_the_task_has_no_mirror() -> None:
    with pytest.raises(ValueError, match="need the task's left-right mirror.*the env reports no mirror"):
        PPO(**SMALL_PPO, symmetry_augmentation=True).build(ObsSpec({"policy": 6, "critic": 8}, num_actions=2))
    go2 = LeggedLocomotion(2, backend=one_thread_backend, observations=ObservationConfig(critic_privileged=True))
    with pytest.raises(ValueError, match="'push_vel' has no left-right mirror"):
        PPO(**SMALL_PPO, symmetry_loss_coef=0.5).build(go2.obs_spec)
    with pytest.raises(ValueError, match="model.symmetry_loss_coef must be >= 0"):
        PPO(symmetry_loss_coef=-1.0)
