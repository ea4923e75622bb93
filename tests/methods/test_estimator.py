"""EstimatorPPO: term layouts published by the envs, target selection and units, the network and its gradients,
construction checks, the estimator's error falling during a short seeded fit, exact resume, plain DDP, and the
Go2 config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from lightning.pytorch import Callback, Trainer, seed_everything

from callbacks import IterationCheckpoint
from leggedex.envs import ObsSpec, PointMassReach
from leggedex.envs.locomotion.config import ObservationConfig
from leggedex.envs.locomotion.obs_layouts import locomotion_obs_layouts
from leggedex.methods import EstimatorPPO
from leggedex.methods.estimated_terms import EstimatedTerms
from leggedex.modules import ActorCriticEstimator
from leggedex.storage import RolloutStorage

from conftest import REPO, flat_parameters, make_datamodule, make_trainer

CONFIG = REPO / "configs" / "quickstart_ee.yaml"
QUICKSTART_EE = yaml.safe_load(CONFIG.read_text())
EE_ENV: dict[str, Any] = QUICKSTART_EE["data"]["env"]["init_args"]
SMALL_EE: dict[str, Any] = dict(
    actor_hidden_dims=[32, 32], critic_hidden_dims=[32, 32], estimator_hidden_dims=[32], num_steps_per_env=8,
    num_learning_epochs=2, num_mini_batches=2, empirical_normalization=True,
    estimated_terms=["velocity", "action_gain"],
)


def make_ee(**overrides: Any) -> EstimatorPPO:
    return EstimatorPPO(**{**SMALL_EE, **overrides})


def ee_spec() -> ObsSpec:
    return PointMassReach(1, history_length=3, privileged=True).obs_spec


# ------------------------------------------------------------------------------------------- term layouts
def test_point_mass_describes_its_groups_term_by_term() -> None:
    env = PointMassReach(4, seed=1, history_length=3, privileged=True, action_scale_range=(2.0, 6.0),
                         flip_action_axes=True)
    terms = env.obs_spec.extras["terms"]
    assert set(terms) == {"policy", "critic", "privileged"}  # the history is frames, not terms
    for group, layout in terms.items():
        assert sum(t["size"] for t in layout.values()) == env.obs_groups[group]
    obs, *_ = env.step(torch.full((4, 2), 0.5))
    velocity, gain = terms["privileged"]["velocity"], terms["privileged"]["action_gain"]
    assert torch.equal(obs["privileged"][:, velocity["start"] : velocity["start"] + 2], env.velocity)
    assert torch.equal(obs["privileged"][:, gain["start"] : gain["start"] + 2], env.env_action_gain)
    assert set(PointMassReach(4).obs_spec.extras["terms"]) == {"policy", "critic"}
    assert env.obs_spec == ObsSpec(env.obs_groups, num_actions=2)  # extras describe; they do not take part in ==


def test_go2_privileged_layout_names_base_lin_vel_with_its_scale() -> None:
    groups = locomotion_obs_layouts(ObservationConfig(history_length=20, privileged=True, critic_frames=5), 12, 4)
    slices = groups.term_slices()
    assert set(slices) == {"policy", "privileged"}  # history and the stacked critic are frames
    assert slices["privileged"]["base_lin_vel"] == {"start": 79, "size": 3, "scale": 2.0}
    assert slices["privileged"]["foot_contact"] == {"start": 90, "size": 4, "scale": 1.0}
    assert slices["policy"]["command"]["scale"] == [2.0, 2.0, 0.25]


def test_estimated_terms_order_select_and_errors_in_raw_units() -> None:
    layout = {"a": {"start": 0, "size": 2, "scale": 1.0}, "lin_vel": {"start": 2, "size": 3, "scale": 2.0},
              "contact": {"start": 5, "size": 2, "scale": 1.0}}
    spec = ObsSpec({"privileged": 7}, 2, extras={"terms": {"privileged": layout}})
    terms = EstimatedTerms.resolve(spec, ["contact", "lin_vel"], ["contact"], "X")
    assert [t.name for t in terms.terms] == ["lin_vel", "contact"]  # values first, then probabilities
    assert terms.size == 5 and terms.num_probabilities == 2
    privileged = torch.arange(7.0).expand(3, 7)
    target = terms.select(privileged)
    assert torch.equal(target[0], torch.tensor([2.0, 3.0, 4.0, 5.0, 6.0]))
    estimate = target + torch.tensor([0.4, -0.4, 0.4, 0.25, 0.25])  # 0.4 in scaled units = 0.2 m/s
    errors = terms.errors(estimate, target)
    assert errors["lin_vel"] == pytest.approx(0.2) and errors["contact"] == pytest.approx(0.25)


# ------------------------------------------------------------------------------------------- construction
def test_network_sizes_and_the_deployed_policy() -> None:
    method = make_ee()
    method.build(ee_spec())
    ac = method.actor_critic
    assert isinstance(ac, ActorCriticEstimator)
    assert ac.actor[0].in_features == 6 + 4 and ac.estimator.in_dim == 18 and ac.estimator.out_dim == 4
    policy, history = torch.randn(5, 6), torch.randn(5, 18)
    expected = ac.actor(torch.cat([ac.actor_normalizer(policy), ac.estimate(ac.normalize_history(history))], -1))
    assert torch.equal(method.inference_policy(policy, history), expected)
    assert method.policy_inputs() == ("policy", "history")
    with pytest.raises(TypeError, match=r"deploy_action\(policy, history\)"):
        ac.act_inference(policy)


def test_probability_outputs_are_sigmoids_trained_with_cross_entropy() -> None:
    ac = ActorCriticEstimator(6, 12, 8, 2, num_estimates=5, num_probabilities=2, estimator_hidden_dims=[8])
    ac.requires_grad_(False)
    history = torch.randn(64, 12) * 5
    raw, estimate = ac.estimator(history), ac.estimate(history)
    assert torch.equal(estimate[:, :3], raw[:, :3]) and torch.equal(estimate[:, 3:], torch.sigmoid(raw[:, 3:]))
    target = torch.cat([torch.randn(64, 3), torch.randint(0, 2, (64, 2)).float()], dim=-1)
    squared = (raw[:, :3] - target[:, :3]).square()
    entropy = -(target[:, 3:] * torch.log(estimate[:, 3:]) + (1 - target[:, 3:]) * torch.log(1 - estimate[:, 3:]))
    expected = torch.cat([squared, entropy], dim=-1).mean()
    assert float(ac.estimator_loss(history, target)) == pytest.approx(float(expected), rel=1e-5)


def test_one_backward_reaches_every_parameter_and_ppo_stops_at_the_estimate(seeded) -> None:
    env = PointMassReach(4, seed=2, **EE_ENV)
    method = make_ee()
    method.build(env.obs_spec)
    method.setup_storage(num_envs=4)
    with torch.inference_mode():
        obs = env.reset()
        for _ in range(method.num_steps_per_env):
            method.act(obs)
            obs, rewards, dones, extras = env.step(torch.zeros(4, 2))
            method.process_env_step(obs, rewards, dones, extras)
    storage = method.storage
    assert type(storage) is RolloutStorage and set(storage.obs) == {"policy", "history", "privileged", "critic"}
    method.compute_returns(storage, obs)
    batch = next(storage.mini_batches(1, 1))
    optimizer = method.configure_optimizers()
    ppo = method.ppo_losses(batch, optimizer)
    (ppo["surrogate"] + ppo["value_function"] - 0.01 * ppo["entropy"]).backward()
    assert all(p.grad is None for p in method.actor_critic.estimator.parameters())
    method.auxiliary_losses(batch)["estimator"].backward()
    # what plain DDP needs (no find_unused_parameters): the mini-batch loss reaches every parameter
    assert all(p.grad is not None for p in method.parameters())


@pytest.mark.parametrize("grad_norm_clipping", ["per_network", "joint"])
def test_a_large_estimator_loss_leaves_the_actors_step_alone_with_per_network_clipping(grad_norm_clipping) -> None:
    method = make_ee(grad_norm_clipping=grad_norm_clipping)
    method.build(ee_spec())
    ac = method.built_actor_critic
    optimizer = torch.optim.SGD(ac.parameters(), lr=0.0)  # lr 0: only the gradients are of interest
    torch.manual_seed(0)
    policy, history = torch.randn(16, 6), torch.randn(16, 18)

    def actor_norm(estimator_scale: float) -> float:
        optimizer.zero_grad()
        loss = (1e-3 * ac.policy_distribution(policy, history).mean.square().mean()
                + estimator_scale * ac.estimator_loss(history, torch.full((16, 4), 100.0)))
        method.clipped_step("loss", loss, optimizer, 1.0, method.clip_groups(optimizer))
        return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in ac.actor.parameters()])))

    alone = actor_norm(0.0)
    assert 0.0 < alone < 1.0
    if grad_norm_clipping == "per_network":  # actor, estimator and critic clipped each on its own
        assert len(method.clip_groups(optimizer)) == 3
        assert actor_norm(1e3) == pytest.approx(alone, rel=1e-5)
    else:  # legged_gym's one norm: the regression's gradient shrinks the policy's step
        assert actor_norm(1e3) < 1e-3 * alone


@pytest.mark.parametrize(("kwargs", "env_kwargs", "message"), [
    ({}, {}, r"EstimatorPPO needs observation group\(s\) \['history', 'privileged'\], but the env provides only "
             r"\['critic', 'policy'\]"),
    ({"estimated_terms": ["base_lin_vel"]}, EE_ENV,
     r"EstimatorPPO estimates \['base_lin_vel'\], which the env's 'privileged' group does not hold; it holds "
     r"\['velocity', 'drag', 'action_gain'\]"),
])
def test_mismatched_env_fails_before_training(seeded, kwargs, env_kwargs, message) -> None:
    datamodule = make_datamodule(**env_kwargs)
    with pytest.raises(ValueError, match=message):
        make_trainer(2).fit(make_ee(**kwargs), datamodule=datamodule)
    assert not datamodule.tracker.lengths.any()  # no env step was taken


def test_an_env_that_does_not_describe_its_terms_and_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match=r"does not describe that group's terms \(VecEnv.obs_terms\)"):
        make_ee().build(ObsSpec({"policy": 6, "critic": 8, "privileged": 5, "history": 18}, num_actions=2))
    with pytest.raises(ValueError, match=r"probability_terms \['drag'\] must be among estimated_terms"):
        make_ee(probability_terms=["drag"])
    with pytest.raises(ValueError, match="estimated_terms must name distinct terms"):
        make_ee(estimated_terms=["velocity", "velocity"])


# ------------------------------------------------------------------------------------------------ learning
class MetricsRecorder(Callback):
    def __init__(self) -> None:
        self.logged: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: Trainer, pl_module: Any) -> None:
        self.logged.append({k: float(v) for k, v in trainer.callback_metrics.items()})


def test_the_estimators_velocity_error_falls_during_a_short_fit(seeded) -> None:
    recorder = MetricsRecorder()
    method = make_ee(actor_hidden_dims=[64, 64], critic_hidden_dims=[64, 64], estimator_hidden_dims=[64, 64],
                     num_steps_per_env=24, num_learning_epochs=5, num_mini_batches=4)
    make_trainer(30, callbacks=[recorder]).fit(method, datamodule=make_datamodule(num_envs=128, **EE_ENV))
    velocity = [entry["Estimator/velocity_error"] for entry in recorder.logged]
    gain = [entry["Estimator/action_gain_error"] for entry in recorder.logged]
    # m/s: from ~0.3 (an untrained estimator) to ~0.08 after 30 iterations; the signed force per action unit
    # (|value| 2 to 6) from ~3.7 to ~0.8: the estimate tells the actor each axis's polarity
    assert np.mean(velocity[-5:]) < 0.4 * np.mean(velocity[:3]), velocity
    assert np.mean(gain[-5:]) < 0.4 * np.mean(gain[:3]), gain
    assert {"Loss/estimator", "Loss/surrogate", "Loss/value_function", "Loss/learning_rate"} <= set(recorder.logged[-1])


# ------------------------------------------------------------------------------------------------- resume
def fit_ee(max_epochs: int, ckpt_dir: Path | None = None, ckpt_path: str | None = None):
    seed_everything(7, verbose=False)
    method = make_ee(learning_rate=3e-3)
    callbacks = [IterationCheckpoint(every_n_iterations=4, dirpath=str(ckpt_dir))] if ckpt_dir else []
    trainer = make_trainer(max_epochs, callbacks=callbacks, enable_checkpointing=bool(ckpt_dir))
    trainer.fit(method, datamodule=make_datamodule(num_envs=16, **EE_ENV), ckpt_path=ckpt_path)
    return method, trainer


def test_resume_is_exact(tmp_path: Path) -> None:
    uninterrupted, trainer_a = fit_ee(8)
    fit_ee(4, ckpt_dir=tmp_path)
    resumed, trainer_c = fit_ee(8, ckpt_dir=tmp_path / "resumed", ckpt_path=str(tmp_path / "model_4.ckpt"))
    assert torch.equal(flat_parameters(uninterrupted), flat_parameters(resumed))
    a, c = uninterrupted.state_dict(), resumed.state_dict()
    assert a.keys() == c.keys() and all(torch.equal(a[k], c[k]) for k in a)  # normalizer statistics included
    adam_a, adam_c = trainer_a.optimizers[0], trainer_c.optimizers[0]
    assert adam_a.param_groups[0]["lr"] == adam_c.param_groups[0]["lr"]
    assert all(torch.equal(x["exp_avg_sq"], y["exp_avg_sq"])
               for x, y in zip(adam_a.state.values(), adam_c.state.values()))


# ------------------------------------------------------------------------------------------------- DDP and Go2
def test_plain_ddp_trains_it_on_two_processes(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "leggedex.cli", "fit", "--config", str(CONFIG), "--data.num_envs", "16",
               "--model.num_steps_per_env", "8", "--trainer.max_epochs", "2", "--trainer.strategy", "ddp",
               "--trainer.devices", "2", "--experiment", "ddp_ee", "--run_name", "ddp"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (ckpt,) = tmp_path.glob("logs/ddp_ee/*_ddp/checkpoints/last.ckpt")
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert len(checkpoint["leggedex"]["rng"]) == 2  # both ranks' states


def test_the_go2_config_estimates_base_velocity_and_contacts() -> None:
    from leggedex.cli import LeggedexCLI

    cli = LeggedexCLI(args=["--config", str(REPO / "configs" / "go2_ee.yaml"), "--trainer.logger", "false",
                            "--data.env.init_args.backend.init_args.num_threads", "1"],
                      run=False, save_config_callback=None)
    env = cli.datamodule.env_factory(2, 0, "cpu")
    try:
        method = cli.model
        method.build(env.obs_spec)
    finally:
        env.close()
    assert isinstance(method, EstimatorPPO) and method.obs_spec.groups["history"] == 900
    assert [(t.name, t.start, t.size, t.probability) for t in method.estimated.terms] == [
        ("base_lin_vel", 79, 3, False), ("foot_contact", 90, 4, True)]
    assert method.actor_critic.actor[0].in_features == 45 + 7
