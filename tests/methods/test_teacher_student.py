"""TeacherStudentPPO: the point mass's extra groups, network and storage shapes, the encoder stage, the student's
return against the teacher's, construction checks, the DDP setup check, exact resume, export and play."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch import Trainer, seed_everything
from lightning.pytorch.strategies import DDPStrategy

from leggedex.cli import main
from leggedex.data import OnPolicyDataModule
from leggedex.envs import ObsSpec, PointMassReach
from leggedex.methods import PPO, TeacherStudentPPO
from leggedex.modules import ActorCriticTS
from leggedex.storage import RolloutStorage, RolloutStorageTS

from conftest import (
    QUICKSTART_TS,
    REPO,
    SMALL_TS,
    TS_ENV,
    MetricsRecorder,
    assert_same_training_state,
    deterministic_return,
    fit_with_checkpoints,
    make_datamodule,
    make_trainer,
    make_ts,
    training_state,
    ts_datamodule,
)

CONFIG = REPO / "configs" / "quickstart_ts.yaml"


# ------------------------------------------------------------------------------------------- env and shapes
def test_point_mass_groups_history_and_cached_observations() -> None:
    assert PointMassReach(4).obs_groups == {"policy": 6, "critic": 8}
    env = PointMassReach(4, seed=1, history_length=3, privileged=True, drag_range=(0.5, 2.0),
                         action_scale_range=(2.0, 6.0), flip_action_axes=True)
    assert env.obs_groups == {"policy": 6, "critic": 8, "privileged": 5, "history": 18}
    first = env.reset()
    assert env.get_observations() is first  # cached: asking twice neither redraws noise nor pushes the history
    frames = first["history"].view(4, 3, 6)
    assert torch.equal(frames[:, 2], first["policy"]) and not frames[:, :2].any()  # zeroed at reset, newest last
    second, *_ = env.step(torch.full((4, 2), 0.5))
    frames = second["history"].view(4, 3, 6)
    assert torch.equal(frames[:, 1], first["policy"]) and torch.equal(frames[:, 2], second["policy"])
    gains = second["privileged"][:, 3:]
    assert ((gains.abs() >= 2.0) & (gains.abs() <= 6.0)).all()
    assert torch.equal(second["privileged"][:, :2], env.velocity)
    assert torch.allclose(env.velocity, gains * 0.5 * env.step_dt)  # force = signed gain x action, from rest

    env.episode_length_buf[1] = env.max_episode_length - 1  # env 1 times out at the next step
    third, *_ = env.step(torch.zeros(4, 2))
    frames = third["history"].view(4, 3, 6)
    assert not frames[1, :2].any() and frames[0, :2].any()


def test_actor_critic_ts_shapes_and_encoders() -> None:
    for kind in ("mlp", "tcn"):
        ac = ActorCriticTS(6, 5, 60, 8, 2, latent_dim=None, actor_hidden_dims=[16], critic_hidden_dims=[16],
                           privilege_encoder_hidden_dims=[16], history_encoder_hidden_dims=[8, 8],
                           history_encoder_type=kind, empirical_normalization=True)
        assert ac.latent_dim == 5 and ac.history_length == 10
        policy, privileged, history = torch.randn(7, 6), torch.randn(7, 5), torch.randn(7, 60)
        assert ac.teacher_distribution(policy, privileged).mean.shape == (7, 2)
        assert ac.student_latent(history).shape == ac.teacher_latent(privileged).shape == (7, 5)
        assert ac.student_action(policy, history).shape == (7, 2)
        assert ac.evaluate(torch.randn(7, 8)).shape == (7,)
    with pytest.raises(ValueError, match=r"history group \(50\) must hold whole policy frames \(6 each\)"):
        ActorCriticTS(6, 5, 50, 8, 2)


def test_storage_keeps_the_four_groups_and_serves_encoder_batches() -> None:
    method = make_ts()
    method.build(ObsSpec({"policy": 6, "critic": 8, "privileged": 5, "history": 30}, num_actions=2))
    method.setup_storage(num_envs=4)
    storage = method.storage
    assert isinstance(storage, RolloutStorageTS)
    assert {k: v.shape[-1] for k, v in storage.obs.items()} == {"policy": 6, "privileged": 5, "history": 30,
                                                                "critic": 8}
    assert set(next(storage.mini_batches(2, 1)).obs) == {"policy", "privileged", "critic"}  # PPO's: no history
    batches = list(storage.encoder_mini_batches(num_mini_batches=2, num_epochs=3))
    assert len(batches) == 6 and all(set(b) == {"privileged", "history"} for b in batches)
    assert batches[0]["history"].shape == (16, 30)  # 8 steps x 4 envs / 2
    with pytest.raises(ValueError, match=r"RolloutStorageTS needs the observation group\(s\) \['history'\]"):
        RolloutStorageTS(4, 8, {"policy": 6, "privileged": 5, "critic": 8}, 2, "cpu")


# ------------------------------------------------------------------------------------------------- learning
def test_encoder_loss_falls_while_the_teacher_is_held(seeded) -> None:
    # a (nearly) fixed teacher keeps the target latent still, so the loss measures the encoder stage alone
    method = make_ts(schedule="fixed", learning_rate=1e-6, encoder_learning_rate=3e-3, num_encoder_epochs=4,
                     encoder_lr_decay=0.99)
    recorder = MetricsRecorder()
    make_trainer(40, callbacks=[recorder]).fit(method, datamodule=ts_datamodule(num_envs=64))
    losses = [entry["Loss/encoder"] for entry in recorder.logged]
    assert np.mean(losses[-10:]) < np.mean(losses[:5]) / 3, losses
    rates = [entry["Loss/encoder_learning_rate"] for entry in recorder.logged]
    assert rates[0] == pytest.approx(3e-3) and rates[-1] == pytest.approx(3e-3 * 0.99**39)  # once per iteration
    assert {"Loss/value_function", "Loss/surrogate", "Loss/entropy", "Loss/learning_rate",
            "Policy/mean_noise_std"} <= set(recorder.logged[-1])


def test_student_of_the_quickstart_config_nearly_matches_the_teacher(seeded) -> None:
    init_args = QUICKSTART_TS["model"]["init_args"]
    method = TeacherStudentPPO(**init_args)
    datamodule = OnPolicyDataModule(env=partial(PointMassReach, **TS_ENV), num_envs=256, seed=3)
    recorder = MetricsRecorder()
    make_trainer(60, callbacks=[recorder]).fit(method, datamodule=datamodule)
    # while the teacher trains its latent grows; relative to that spread the encoder's error falls
    relative = [entry["Loss/encoder_relative"] for entry in recorder.logged]
    assert np.mean(relative[-10:]) < np.mean(relative[:5]) / 2, relative

    def teacher(obs):
        return method.action_distribution(method.normalize_obs(obs, observe=False)).mean

    def student(obs):
        return method.inference_policy(obs["policy"], obs["history"])

    def blind_student(obs):  # the student without its history: it cannot tell the axes' polarity
        return method.inference_policy(obs["policy"], torch.zeros_like(obs["history"]))

    returns = {name: deterministic_return(policy) for name, policy in
               [("teacher", teacher), ("student", student), ("blind", blind_student)]}
    # holding the goal for a whole episode returns ~8; a policy that does not know the polarity gets ~1.5
    assert returns["teacher"] > 5.0, returns
    assert returns["student"] > 0.75 * returns["teacher"], returns
    assert returns["blind"] < 0.5 * returns["student"], returns


# -------------------------------------------------------------------------------------- construction checks
class PlainStorageTS(TeacherStudentPPO):
    def build_storage(self, num_envs: int) -> RolloutStorage:
        spec = self.obs_spec
        return RolloutStorage(num_envs, self.num_steps_per_env, self.stored_obs_groups(), spec.num_actions, "cpu")


class PlainActorCriticTS(TeacherStudentPPO):
    def build_networks(self, spec: ObsSpec) -> None:
        PPO.build_networks(self, spec)


@pytest.mark.parametrize(("method_type", "env_kwargs", "error", "message"), [
    (TeacherStudentPPO, {}, ValueError,
     r"TeacherStudentPPO needs observation group\(s\) \['privileged', 'history'\], but the env provides only "
     r"\['critic', 'policy'\]"),
    (TeacherStudentPPO, {"history_length": 2}, ValueError, r"needs observation group\(s\) \['privileged'\]"),
    (PlainStorageTS, TS_ENV, TypeError,
     r"needs its rollout storage to be RolloutStorageTS \(or a subclass\), but build_storage returned RolloutStorage"),
    (PlainActorCriticTS, TS_ENV, TypeError,
     r"needs its actor-critic to be ActorCriticTS \(or a subclass\), but build_networks built ActorCritic$"),
])
def test_mismatched_pieces_fail_before_training(seeded, method_type, env_kwargs, error, message) -> None:
    datamodule = make_datamodule(**env_kwargs)
    with pytest.raises(error, match=message):
        make_trainer(2).fit(method_type(**SMALL_TS), datamodule=datamodule)
    assert not datamodule.tracker.lengths.any()  # no env step was taken


@pytest.mark.parametrize(("strategy", "refused"), [
    ("ddp", True), (DDPStrategy(), True), (DDPStrategy(find_unused_parameters=True), False),
    ("ddp_find_unused_parameters_true", False), ("auto", False),
])
def test_ddp_without_find_unused_parameters_is_refused_at_setup(strategy, refused) -> None:
    method = make_ts()
    method.trainer = Trainer(accelerator="cpu", devices=1, strategy=strategy, logger=False)
    if refused:
        with pytest.raises(ValueError, match="--trainer.strategy ddp_find_unused_parameters_true"):
            method.setup("fit")
    else:
        method.setup("fit")


# ------------------------------------------------------------------------------------------------ resume
def fit_ts(max_epochs: int, ckpt_dir: Path | None = None, ckpt_path: str | None = None):
    seed_everything(7, verbose=False)
    method = make_ts(learning_rate=3e-3, encoder_lr_decay=0.9)
    return method, fit_with_checkpoints(method, ts_datamodule(num_envs=16), max_epochs, ckpt_dir, ckpt_path)


def test_resume_is_exact(tmp_path: Path) -> None:
    uninterrupted, trainer_a = fit_ts(8)
    fit_ts(4, ckpt_dir=tmp_path)
    resumed, trainer_c = fit_ts(8, ckpt_dir=tmp_path / "resumed", ckpt_path=str(tmp_path / "model_4.ckpt"))
    a, c = training_state(uninterrupted, trainer_a), training_state(resumed, trainer_c)
    assert_same_training_state(a, c)
    assert "actor_critic.privileged_normalizer.mean" in a["buffers"]
    assert a["lr"][1] == pytest.approx(2e-4 * 0.9**8)  # the default, decayed 8 times
    assert len(a["adam"][0]) > 0 and len(a["adam"][1]) > 0  # PPO's and the encoder's optimizers have stepped
    assert len(a["adam"][2]) == 0  # the distillation optimizer waits for its phase


# ---------------------------------------------------------------------------------------- export and play
def test_student_exports_with_two_inputs_and_plays(tmp_path: Path, monkeypatch, capsys) -> None:
    import onnxruntime as ort

    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", str(CONFIG), "--data.num_envs", "16", "--model.num_steps_per_env", "8",
          "--trainer.max_epochs", "1", "--run_name", "ts"])
    (ckpt,) = tmp_path.glob("logs/quickstart_ts/*_ts/checkpoints/last.ckpt")
    out = tmp_path / "export"
    main(["export", "--config", str(CONFIG), "--ckpt_path", str(ckpt), "--out", str(out)])
    method = TeacherStudentPPO.load_from_checkpoint(ckpt, map_location="cpu").eval()
    assert method.actor_critic.actor_normalizer.count > 0  # normalization is folded in
    policy, history = torch.randn(32, 6), torch.randn(32, 60)
    with torch.no_grad():
        expected = method.inference_policy(policy, history)
        scripted = torch.jit.load(str(out / "policy.pt"))(policy, history)
    assert torch.allclose(scripted, expected, atol=1e-5, rtol=0)
    session = ort.InferenceSession(str(out / "policy.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["policy", "history"]
    (actions,) = session.run(None, {"policy": policy.numpy(), "history": history.numpy()})
    np.testing.assert_allclose(actions, expected.numpy(), atol=1e-5, rtol=0)
    contract = json.loads((out / "deploy.json").read_text())
    assert contract["inputs"] == [{"name": "policy", "size": 6}, {"name": "history", "size": 60}]

    capsys.readouterr()
    main(["play", "--config", str(CONFIG), "--ckpt_path", str(ckpt), "--num_envs", "8", "--duration", "1"])
    assert "| envs | survival | mean return |" in capsys.readouterr().out
    report = json.loads(ckpt.with_name("last_play.json").read_text())
    assert report["method"] == "leggedex.methods.teacher_student.TeacherStudentPPO"


def test_tcn_student_exports_to_onnx(tmp_path: Path) -> None:
    import onnxruntime as ort

    from leggedex.cli.export import export_onnx

    method = make_ts(history_encoder_type="tcn", history_encoder_hidden_dims=[8, 8]).eval()
    method.build(ObsSpec({"policy": 6, "critic": 8, "privileged": 5, "history": 60}, num_actions=2))
    export_onnx(method, tmp_path / "policy.onnx")
    policy, history = torch.randn(3, 6), torch.randn(3, 60)
    session = ort.InferenceSession(str(tmp_path / "policy.onnx"), providers=["CPUExecutionProvider"])
    (actions,) = session.run(None, {"policy": policy.numpy(), "history": history.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(actions, method.inference_policy(policy, history).numpy(), atol=1e-5, rtol=0)
