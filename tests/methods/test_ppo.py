"""PPO: time-out bootstrapping, the adaptive learning rate, construction checks, learning."""

from __future__ import annotations

import time

import pytest
import torch

from leggedex.data import PlainLoop
from leggedex.envs import ObsSpec, PointMassReach
from leggedex.methods import PPO

from conftest import SMALL_PPO, make_datamodule, make_ppo, make_trainer, ppo_return


def built_ppo(num_envs: int = 3, **overrides) -> PPO:
    ppo = make_ppo(**overrides)
    ppo.build(ObsSpec({"policy": 6, "critic": 8}, num_actions=2))
    ppo.storage = ppo.build_storage(num_envs)
    return ppo


def test_time_outs_are_bootstrapped_but_terminations_are_not() -> None:
    ppo = built_ppo(gamma=0.9)
    obs = {"policy": torch.randn(3, 6), "critic": torch.randn(3, 8)}
    with torch.inference_mode():
        ppo.act(obs)
        values = ppo._transition["values"].clone()
        dones = torch.tensor([True, True, False])
        time_outs = torch.tensor([True, False, False])
        ppo.process_env_step(obs, torch.ones(3), dones, {"time_outs": time_outs})
    stored = ppo.storage.rewards[0]
    assert torch.allclose(stored, torch.tensor([1.0 + 0.9 * values[0], 1.0, 1.0]))


@pytest.mark.parametrize(
    ("kl_scale", "expected_factor"), [(0.0, 1.0), (1.0, 1.0 / 1.5), (0.001, 1.5)]
)
def test_adaptive_learning_rate_follows_the_kl_rule(kl_scale: float, expected_factor: float) -> None:
    ppo = built_ppo(desired_kl=0.01, learning_rate=1e-3)
    optimizer = ppo.configure_optimizers()
    mean = torch.zeros(64, 2)
    std = torch.ones(64, 2)
    # KL(N(0,1) || N(d,1)) = d^2 / 2 per dimension, summed over 2 dimensions = d^2
    shift = torch.full((64, 2), (kl_scale * 0.03) ** 0.5) if kl_scale else torch.zeros(64, 2)
    ppo.adapt_learning_rate(mean, std, mean + shift, std, optimizer)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * expected_factor)


def test_learning_rate_stays_within_bounds() -> None:
    ppo = built_ppo(learning_rate=1e-5, min_learning_rate=1e-5)
    optimizer = ppo.configure_optimizers()
    m, s = torch.zeros(8, 2), torch.ones(8, 2)
    ppo.adapt_learning_rate(m, s, m + 5.0, s, optimizer)  # huge KL
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-5)


class PolicyOnlyEnv(PointMassReach):
    @property
    def obs_groups(self) -> dict[str, int]:
        return {"policy": 6}


def test_missing_observation_group_fails_before_any_step(seeded) -> None:
    steps = []
    dm = make_datamodule(env=PolicyOnlyEnv)
    original = PolicyOnlyEnv.step

    def counting_step(self, actions):
        steps.append(1)
        return original(self, actions)

    PolicyOnlyEnv.step = counting_step
    try:
        with pytest.raises(ValueError,
                           match=r"PPO needs observation group\(s\) \['critic'\].*provides only \['policy'\]"):
            make_trainer(2).fit(make_ppo(), datamodule=dm)
    finally:
        PolicyOnlyEnv.step = original
    assert not steps


def test_bad_hyperparameters_are_named() -> None:
    with pytest.raises(ValueError, match="schedule"):
        PPO(schedule="cosine")
    with pytest.raises(ValueError, match="gamma"):
        PPO(gamma=1.5)
    with pytest.raises(ValueError, match="num_steps_per_env"):
        PPO(num_steps_per_env=0)


def test_ppo_learns_point_mass_reaching_quickly(seeded) -> None:
    ppo = make_ppo(actor_hidden_dims=[64, 64], critic_hidden_dims=[64, 64], num_steps_per_env=24,
                   num_learning_epochs=5, num_mini_batches=4, entropy_coef=0.005)
    dm = make_datamodule(num_envs=128)
    start = time.perf_counter()
    make_trainer(1).fit(ppo, datamodule=dm)
    before = ppo_return(ppo)
    make_trainer(40).fit(ppo, datamodule=make_datamodule(num_envs=128), ckpt_path=None)
    after = ppo_return(ppo)
    assert time.perf_counter() - start < 120
    # the return of a full episode of holding the goal is ~8; an untrained policy drifts away (< 1)
    assert before < 1.5
    assert after > 5.0, (before, after)


class PenalizedStdPPO(PPO):
    """Uses the two extension points that methods built on PPO add training through."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.stages: list[tuple[bool, int]] = []

    def auxiliary_losses(self, batch):
        return {"std_penalty": 10.0 * self.actor_critic.std.square().sum()}

    def after_ppo_update(self, storage, optimizers):
        self.stages.append((storage.is_full, len(optimizers)))
        return {"Extra/stage": 1.0}


def test_auxiliary_losses_and_the_extra_stage_join_the_update() -> None:
    def train(method: PPO, as_list: bool) -> dict[str, float]:
        torch.manual_seed(0)
        loop = PlainLoop(PointMassReach(16, seed=0), method)
        if as_list:  # what self.optimizers() returns when a method has several
            loop.optimizer = [loop.optimizer]
        return [loop.learn(loop.collect()) for _ in range(3)][-1]

    options = {**SMALL_PPO, "schedule": "fixed", "learning_rate": 1e-2}
    plain = train(PPO(**options), as_list=False)
    penalized = PenalizedStdPPO(**options)
    logs = train(penalized, as_list=True)
    assert set(logs) == set(plain) | {"Loss/std_penalty", "Extra/stage"}
    assert set(plain) == {"Loss/value_function", "Loss/surrogate", "Loss/entropy", "Loss/learning_rate",
                          "Policy/mean_noise_std", "Policy/std_clamped_steps"}
    assert penalized.stages == [(True, 1)] * 3  # after the PPO epochs, before the rollout is cleared
    assert logs["Policy/mean_noise_std"] < plain["Policy/mean_noise_std"] - 0.03  # the penalty was trained on


def gradient_norms(ppo: PPO, critic_scale: float, grad_norm_clipping: str) -> tuple[float, float]:
    """The actor's and the critic's gradient norms after one clipped step on a loss whose critic part is scaled."""
    ppo.hparams.grad_norm_clipping = grad_norm_clipping
    ac = ppo.built_actor_critic
    optimizer = torch.optim.SGD(ac.parameters(), lr=0.0)  # lr 0: only the gradients are of interest
    torch.manual_seed(0)
    dist = ac.distribution(torch.randn(16, 6))
    loss = 1e-3 * dist.mean.square().mean() + critic_scale * ac.evaluate(torch.randn(16, 8)).square().mean()
    ppo.clipped_step("loss", loss, optimizer, 1.0, ppo.clip_groups(optimizer))

    def norm(params) -> float:
        return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None])))

    critic = {id(p) for p in ac.critic.parameters()}
    return norm([p for p in ac.parameters() if id(p) not in critic]), norm(ac.critic.parameters())


def test_gradient_norms_are_clipped_jointly_or_per_network() -> None:
    ppo = built_ppo()
    actor_alone, _ = gradient_norms(ppo, 0.0, "joint")  # no critic gradient: nothing to clip
    assert 0.0 < actor_alone < 1.0
    actor, critic = gradient_norms(ppo, 1e4, "joint")
    assert actor < 1e-3 * actor_alone  # the large critic gradient shrank the policy's step
    assert actor ** 2 + critic ** 2 == pytest.approx(1.0, rel=1e-4)
    actor, critic = gradient_norms(ppo, 1e4, "per_network")
    assert actor == pytest.approx(actor_alone, rel=1e-5)  # the policy's step is its own
    assert critic == pytest.approx(1.0, rel=1e-4)


class AdvantageRecordingPPO(PPO):
    def ppo_losses(self, batch, optimizer):
        self.seen.append(batch.advantages.clone())
        return super().ppo_losses(batch, optimizer)


@pytest.mark.parametrize("per_mini_batch", [False, True])
def test_advantages_are_normalized_over_the_rollout_or_per_mini_batch(per_mini_batch: bool) -> None:
    torch.manual_seed(0)
    ppo = AdvantageRecordingPPO(**{**SMALL_PPO, "num_mini_batches": 4},
                                normalize_advantage_per_mini_batch=per_mini_batch)
    ppo.seen = []
    loop = PlainLoop(PointMassReach(16, seed=0), ppo)
    rollout = loop.collect()
    loop.learn(rollout)
    means = torch.stack([a.mean() for a in ppo.seen]).abs()
    stds = torch.stack([a.std() for a in ppo.seen])
    rollout_wide = torch.cat(ppo.seen[:4])  # the first epoch's mini-batches cover the rollout
    if per_mini_batch:
        assert float(means.max()) < 1e-5 and torch.allclose(stds, torch.ones_like(stds), atol=1e-5)
    else:
        assert float(means.max()) > 1e-3  # each mini-batch a sample of the rollout-wide standardization
        assert abs(float(rollout_wide.mean())) < 1e-5 and float(rollout_wide.std()) == pytest.approx(1.0, abs=1e-4)


def test_update_options_are_checked_by_name() -> None:
    with pytest.raises(ValueError, match="model.grad_norm_clipping must be one of"):
        PPO(grad_norm_clipping="separate")
    with pytest.raises(ValueError, match="model.mini_batch_shuffle must be one of"):
        PPO(mini_batch_shuffle="never")
    with pytest.raises(ValueError, match="needs model.normalize_advantage"):
        PPO(normalize_advantage=False, normalize_advantage_per_mini_batch=True)


@pytest.mark.parametrize("shuffle", ["every_epoch", "once"])
def test_the_update_reuses_its_mini_batches_only_when_shuffled_once(shuffle: str) -> None:
    torch.manual_seed(0)
    ppo = AdvantageRecordingPPO(**{**SMALL_PPO, "num_mini_batches": 2, "num_learning_epochs": 2},
                                mini_batch_shuffle=shuffle)
    ppo.seen = []
    loop = PlainLoop(PointMassReach(16, seed=0), ppo)
    loop.learn(loop.collect())
    first, second = ppo.seen[:2], ppo.seen[2:]
    assert all(torch.equal(a, b) for a, b in zip(first, second)) == (shuffle == "once")
