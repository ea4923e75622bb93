"""Every non-finite value is caught where it enters, naming the tensor, its group or term, the iteration and the
envs, and the error says which checkpoint is intact (or that none exists); a runaway std is clamped or stops the
run, as configured."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from callbacks import IterationCheckpoint
from leggedex.data import PlainLoop
from leggedex.envs import PointMassReach
from leggedex.methods import PPO, NonFiniteError, StdOutOfRange
from leggedex.methods.divergence import check_parameters

from conftest import SMALL_PPO, make_datamodule, make_ppo, make_trainer

NAN = float("nan")


class PoisonedPointMass(PointMassReach):
    """Puts a NaN into the policy observation (one term) or into one reward term at a chosen step, env 5."""

    def __init__(self, num_envs, seed=0, device="cpu", *, poison="policy", at_step=11, **kwargs):
        super().__init__(num_envs, seed, device, reward_scales={"progress": 1.0}, **kwargs)
        self.poison, self.at_step, self.steps = poison, at_step, 0

    def step(self, actions):
        self.steps += 1
        obs, rewards, dones, extras = super().step(actions)
        if self.poison == "policy" and self.steps == self.at_step:
            obs["policy"][5, 4] = NAN  # columns 4-5: the term "action"
        return obs, rewards, dones, extras

    def _compute_rewards(self, distance_before):
        if self.poison == "progress" and self.steps == self.at_step:
            distance_before = distance_before.clone()
            distance_before[5] = NAN
        return super()._compute_rewards(distance_before)


def loop(method: PPO, env_type=PointMassReach, **env_kwargs) -> PlainLoop:
    return PlainLoop(env_type(16, seed=3, **env_kwargs), method)


def run(plain: PlainLoop, iterations: int) -> None:
    for _ in range(iterations):
        plain.learn(plain.collect())


def test_nan_policy_observation_is_named_by_group_term_step_and_env(seeded) -> None:
    plain = loop(make_ppo(), PoisonedPointMass, poison="policy", at_step=11)  # 8 steps/iteration: iteration 1
    with pytest.raises(NonFiniteError) as info:
        run(plain, 3)
    message = str(info.value)
    # before: torch's distribution check failed with a tensor dump naming no group, iteration or env
    assert "observations['policy'] at iteration 1, rollout step 2" in message
    assert "envs [5]" in message and "in term(s) action (returned" in message and "returned by env.step" in message
    assert "Normal" not in message


def test_nan_reward_names_the_reward_term(seeded) -> None:
    plain = loop(make_ppo(), PoisonedPointMass, poison="progress", at_step=4)
    with pytest.raises(NonFiniteError, match=r"rewards at iteration 0, rollout step 3: 1 NaN, 0 Inf in envs \[5\] "
                                             r"\(reward term\(s\) progress\)"):
        run(plain, 1)


class NaNActionPPO(PPO):
    def act(self, obs):
        actions = super().act(obs)
        if self.storage.step == 6:
            actions[[1, 9], 0] = NAN
        return actions


def test_nan_action_is_caught_before_the_env_applies_it(seeded) -> None:
    plain = loop(NaNActionPPO(**SMALL_PPO))
    with pytest.raises(NonFiniteError, match=r"actions at iteration 0, rollout step 6: 2 NaN, 0 Inf in envs \[1, 9\]"):
        run(plain, 1)
    assert torch.isfinite(plain.env.position).all()  # the env never stepped with it


class InfiniteGradientPPO(PPO):
    """A finite auxiliary loss (0) whose gradient with respect to the std is NaN (sqrt at 0)."""

    def auxiliary_losses(self, batch):
        return {"sqrt_at_zero": torch.sqrt(self.actor_critic.std.sum() * 0.0)}


def test_non_finite_gradient_names_the_parameter_before_the_optimizer_steps(seeded) -> None:
    ppo = InfiniteGradientPPO(**SMALL_PPO)
    plain = loop(ppo)
    before = ppo.actor_critic.std.detach().clone()
    with pytest.raises(NonFiniteError, match=r"non-finite gradients of loss at iteration 0 in parameter\(s\) "
                                             r"actor_critic.std\."):
        run(plain, 1)
    assert torch.equal(ppo.actor_critic.std.detach(), before)


class CorruptingPPO(PPO):
    def after_ppo_update(self, storage, optimizers):
        with torch.no_grad():
            self.actor_critic.critic[0].weight[0, 0] = float("inf")
        return {}


def test_non_finite_parameter_after_the_update_is_named(seeded) -> None:
    with pytest.raises(NonFiniteError, match=r"non-finite parameters after the update of iteration 0: "
                                             r"actor_critic.critic.0.weight \(0 NaN, 1 Inf\)"):
        run(loop(CorruptingPPO(**SMALL_PPO)), 1)
    module = nn.Linear(2, 2)
    check_parameters(module, 0)  # finite: no error


class StdPushingPPO(PPO):
    """An auxiliary loss that drives every std down (sign -1) or up (+1) at a high fixed learning rate."""

    def __init__(self, direction: float = -1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.direction = direction

    def auxiliary_losses(self, batch):
        return {"push_std": -self.direction * 100.0 * self.actor_critic.std.sum()}


FAST = {**SMALL_PPO, "schedule": "fixed", "learning_rate": 0.2}


def test_runaway_std_is_clamped_into_its_range_by_default(seeded) -> None:
    # before: the std parameter ran to large negative values while the forward pass clamped it silently
    down = StdPushingPPO(direction=-1.0, min_std=0.05, **FAST)
    plain = loop(down)
    logs = [plain.learn(plain.collect()) for _ in range(3)]
    assert down.actor_critic.std.min() >= 0.05 - 1e-7
    assert torch.allclose(down.actor_critic.std.detach(), torch.full_like(down.actor_critic.std, 0.05))
    assert logs[-1]["Policy/std_clamped_steps"] == 4  # every one of 2 epochs x 2 mini-batches
    up = StdPushingPPO(direction=1.0, max_std=1.5, **FAST)
    plain = loop(up)
    run(plain, 3)
    assert torch.allclose(up.actor_critic.std.detach(), torch.full_like(up.actor_critic.std, 1.5))


def test_runaway_std_stops_the_run_when_configured(seeded) -> None:
    plain = loop(StdPushingPPO(direction=-1.0, min_std=0.05, std_out_of_range="stop", **FAST))
    with pytest.raises(StdOutOfRange, match=r"the action std left \[min_std, max_std\] = \[0.05, None\] at "
                                            r"iteration \d: action\(s\) \[0, 1\]"):
        run(plain, 5)


def test_a_std_range_that_excludes_the_initial_std_is_refused() -> None:
    with pytest.raises(ValueError, match=r"model.init_noise_std must lie in \[min_std, max_std\] = \[0.001, 0.5\]"):
        make_ppo(max_std=0.5)
    with pytest.raises(ValueError, match="model.std_out_of_range must be 'clamp' or 'stop'"):
        make_ppo(std_out_of_range="ignore")


@pytest.mark.parametrize(("at_step", "checkpoint"), [(3, None), (20, "last.ckpt")])
def test_the_error_says_which_checkpoint_is_intact(tmp_path, seeded, at_step, checkpoint) -> None:
    # 8 steps per iteration, last.ckpt after every iteration: step 3 is before any checkpoint, step 20 after two
    ckpt = IterationCheckpoint(every_n_iterations=100, last_every_n_iterations=1, dirpath=str(tmp_path))
    datamodule = make_datamodule(env=PoisonedPointMass, poison="policy", at_step=at_step)
    with pytest.raises(NonFiniteError) as info:
        make_trainer(10, callbacks=[ckpt], enable_checkpointing=True).fit(make_ppo(), datamodule=datamodule)
    message = str(info.value)
    if checkpoint is None:
        # before: "the last checkpoint is intact" although none existed
        assert "No checkpoint of this run exists yet (the first is written after iteration 1)" in message
        assert not list(tmp_path.glob("*.ckpt"))
    else:
        path = tmp_path / checkpoint
        assert f"The latest checkpoint, {path}, holds 2 iteration(s)" in message
        assert torch.load(path, weights_only=False)["epoch"] == 1  # iterations 0 and 1: before the NaN
