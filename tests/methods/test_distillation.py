"""The distillation phase of TeacherStudentPPO (callbacks.DistillationPhase): the student acts and the frozen teacher
labels; the student of a teacher checkpoint learns to match it; refusals; exact resume across the switch; the CLI."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from lightning.pytorch import Callback, Trainer, seed_everything

from callbacks import DistillationPhase, EpisodeStatsLogger, IterationCheckpoint, RLProgressBar
from leggedex.cli import main
from leggedex.data import OnPolicyDataModule
from leggedex.envs import Obs, PointMassReach
from leggedex.methods import TeacherStudentPPO
from leggedex.methods.distillation_settings import DistillationSettings
from leggedex.modules import FrozenTeacher

from conftest import (
    QUICKSTART_TS,
    REPO,
    TS_ENV,
    MetricsRecorder,
    assert_same_training_state,
    deterministic_return,
    make_datamodule,
    make_ppo,
    make_trainer,
    make_ts,
    training_state,
    ts_datamodule,
)

Policy = Callable[[Obs], torch.Tensor]

# the quickstart teacher with go2_ts's encoder stage (2e-4, 2 passes): after 40 iterations the teacher returns ~6.5
# of ~8 and its student, far behind, ~0.1
TEACHER_ARGS: dict[str, Any] = {**QUICKSTART_TS["model"]["init_args"], "encoder_learning_rate": 2e-4,
                                "num_encoder_epochs": 2}
TEACHER_ITERATIONS = 40
DISTILLATION_ITERATIONS = 30


def quickstart_datamodule() -> OnPolicyDataModule:
    return OnPolicyDataModule(env=partial(PointMassReach, **TS_ENV), num_envs=256, seed=3)


@pytest.fixture(scope="module")
def teacher_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("teacher")
    seed_everything(1, verbose=False)
    checkpoint = IterationCheckpoint(every_n_iterations=TEACHER_ITERATIONS, dirpath=str(out))
    trainer = make_trainer(TEACHER_ITERATIONS, callbacks=[checkpoint], enable_checkpointing=True)
    trainer.fit(TeacherStudentPPO(**TEACHER_ARGS), datamodule=quickstart_datamodule())
    return out / f"model_{TEACHER_ITERATIONS}.ckpt"


def teacher_policy(method: TeacherStudentPPO) -> Policy:
    return lambda obs: method.action_distribution(method.normalize_obs(obs, observe=False)).mean


def student_policy(method: TeacherStudentPPO) -> Policy:
    return lambda obs: method.inference_policy(obs["policy"], obs["history"])


class FrozenTeacherRecorder(Callback):
    """The frozen teacher's parameters and statistics after every iteration."""

    def __init__(self) -> None:
        self.states: list[dict[str, torch.Tensor]] = []

    def on_train_epoch_end(self, trainer: Trainer, pl_module: TeacherStudentPPO) -> None:
        self.states.append({k: v.clone() for k, v in pl_module.frozen_teacher.state_dict().items()})


# ---------------------------------------------------------------------------------------------- acting
def test_the_student_acts_and_the_frozen_teacher_labels(seeded) -> None:
    method = make_ts()
    env = PointMassReach(8, seed=1, **TS_ENV)
    method.build(env.obs_spec)
    method.setup_storage(env.num_envs)
    assert not any(p.requires_grad for p in method.frozen_teacher.parameters())
    with torch.inference_mode():
        obs = env.reset()
        live_teacher = method.teacher_policy()(obs)
    assert torch.equal(live_teacher, teacher_policy(method)(obs))  # before distillation: the live teacher
    method.start_distillation(DistillationSettings("huber", 3e-3))
    with torch.inference_mode():
        actions = method.act(obs)
        transition = method._transition
        assert torch.equal(transition["action_mean"], method.inference_policy(obs["policy"], obs["history"]))
        assert torch.equal(transition["teacher_actions"], teacher_policy(method)(obs))  # the copy of the teacher
        assert torch.equal(method.teacher_policy()(obs), transition["teacher_actions"])  # what play --teacher runs
        assert not torch.equal(actions, transition["action_mean"])  # sampled with the std
        method.process_env_step(*env.step(actions))
    assert torch.equal(method.storage.teacher_actions[0], transition["teacher_actions"])
    assert method.phase == "distillation" and method.distillation.loss == "huber"


# ------------------------------------------------------------------------------------------- learning
def test_student_distilled_from_a_teacher_checkpoint_nearly_matches_it(teacher_checkpoint: Path, capsys) -> None:
    saved = TeacherStudentPPO.load_from_checkpoint(teacher_checkpoint, map_location="cpu")
    teacher_return = deterministic_return(teacher_policy(saved))
    student_before = deterministic_return(student_policy(saved))
    assert student_before < 0.2 * teacher_return and teacher_return > 5.0, (student_before, teacher_return)

    seed_everything(1, verbose=False)
    method = TeacherStudentPPO(**TEACHER_ARGS)
    recorder, frozen = MetricsRecorder(), FrozenTeacherRecorder()
    switch = DistillationPhase(teacher_checkpoint=str(teacher_checkpoint), learning_rate=1e-2)
    callbacks = [switch, EpisodeStatsLogger(), RLProgressBar(refresh_rate=10), frozen, recorder]
    trainer = make_trainer(DISTILLATION_ITERATIONS, callbacks=callbacks, enable_progress_bar=True)
    trainer.fit(method, datamodule=quickstart_datamodule())

    losses = [entry["Loss/distillation"] for entry in recorder.logged]
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) / 4, losses
    student_after = deterministic_return(student_policy(method))
    assert student_after > 0.8 * teacher_return, (student_before, student_after, teacher_return)
    # the frozen teacher is the checkpoint's, bit for bit, through every iteration
    expected = FrozenTeacher(saved.actor_critic).state_dict()
    for state in frozen.states:
        assert state.keys() == expected.keys() and all(torch.equal(state[k], v) for k, v in expected.items())
    # no PPO stage: the critic, the privilege encoder and the std are the checkpoint's
    trained, loaded = method.actor_critic.state_dict(), saved.actor_critic.state_dict()
    untouched = [k for k in trained if k.startswith(("critic.", "privilege_encoder.", "std"))]
    assert len(untouched) > 4 and all(torch.equal(trained[k], loaded[k]) for k in untouched)
    # statistics and the progress line keep working
    assert all(entry["Train/phase"] == 1.0 and "Train/mean_reward" in entry for entry in recorder.logged)
    assert [line.split(" |")[0] for line in capsys.readouterr().out.splitlines() if line.startswith("it ")] == [
        "it 10/30", "it 20/30", "it 30/30"]


# ------------------------------------------------------------------------------------------- refusals
def test_arguments_and_methods_are_checked() -> None:
    with pytest.raises(ValueError, match="exactly one of start_iteration and teacher_checkpoint"):
        DistillationPhase()
    with pytest.raises(ValueError, match="exactly one of"):
        DistillationPhase(start_iteration=3, teacher_checkpoint="teacher.ckpt")
    with pytest.raises(ValueError, match=r"distillation loss must be one of \['huber', 'mse'\], got 'l1'"):
        DistillationPhase(start_iteration=3, loss="l1")
    with pytest.raises(ValueError, match="learning rate must be positive"):
        DistillationPhase(start_iteration=3, learning_rate=0.0)
    with pytest.raises(TypeError, match="distills a TeacherStudentPPO student, but the method is PPO"):
        make_trainer(1, callbacks=[DistillationPhase(start_iteration=0)]).fit(make_ppo(), datamodule=make_datamodule())


def test_a_checkpoint_of_another_method_or_shape_is_refused(teacher_checkpoint: Path, tmp_path: Path) -> None:
    checkpoint = IterationCheckpoint(every_n_iterations=1, dirpath=str(tmp_path))
    make_trainer(1, callbacks=[checkpoint], enable_checkpointing=True).fit(make_ppo(), datamodule=make_datamodule())
    refusals = [
        (tmp_path / "model_1.ckpt", {}, r"model_1.ckpt: checkpoint was written by method leggedex.methods.ppo.PPO and "
                                        r"cannot be loaded into leggedex.methods.teacher_student.TeacherStudentPPO"),
        (teacher_checkpoint, {}, rf"model_{TEACHER_ITERATIONS}.ckpt: the checkpoint does not fit TeacherStudentPPO "
                                 r"as configured \(\d+ tensor\(s\) differ in shape\): actor_critic.actor.0.weight"),
        (teacher_checkpoint, {"history_length": 3}, r"the checkpoint was written for observations .*'history': 60.*, "
                                                    r"but TeacherStudentPPO runs on .*'history': 18"),
    ]
    for path, env_overrides, message in refusals:
        datamodule = ts_datamodule(**env_overrides)
        trainer = make_trainer(1, callbacks=[DistillationPhase(teacher_checkpoint=str(path))])
        with pytest.raises(ValueError, match=message):
            trainer.fit(make_ts(), datamodule=datamodule)
        assert not datamodule.tracker.lengths.any()  # refused before any env step


# -------------------------------------------------------------------------------------------- resume
SWITCH = 3


def fit_switching(max_epochs: int, ckpt_dir: Path | None = None, ckpt_path: Path | None = None):
    seed_everything(7, verbose=False)
    method = make_ts(learning_rate=3e-3, encoder_lr_decay=0.9)
    recorder = MetricsRecorder()
    callbacks: list[Callback] = [DistillationPhase(start_iteration=SWITCH, loss="huber", learning_rate=3e-3), recorder]
    if ckpt_dir is not None:
        callbacks.append(IterationCheckpoint(every_n_iterations=2, dirpath=str(ckpt_dir)))
    trainer = make_trainer(max_epochs, callbacks=callbacks, enable_checkpointing=ckpt_dir is not None)
    trainer.fit(method, datamodule=ts_datamodule(num_envs=16), ckpt_path=ckpt_path)
    return method, trainer, recorder.logged


def phase_losses(logged: list[dict[str, float]]) -> list[float]:
    return [entry["Loss/distillation"] if entry["Train/phase"] else entry["Loss/surrogate"] for entry in logged]


def test_resume_across_the_switch_is_exact(tmp_path: Path) -> None:
    uninterrupted, trainer_a, logged = fit_switching(8)
    assert [entry["Train/phase"] for entry in logged] == [0.0] * SWITCH + [1.0] * (8 - SWITCH)
    fit_switching(5, ckpt_dir=tmp_path)  # 3 teacher iterations + 2 distillation iterations, then stop
    stopped = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert stopped["leggedex"]["distillation"] == {"loss": "huber", "learning_rate": 3e-3}
    for ckpt, done in (("last.ckpt", 5), ("model_2.ckpt", 2)):  # in the phase, and before the switch
        resumed, trainer_b, logged_b = fit_switching(8, ckpt_dir=tmp_path / f"from_{done}", ckpt_path=tmp_path / ckpt)
        assert_same_training_state(training_state(uninterrupted, trainer_a), training_state(resumed, trainer_b))
        assert resumed.distilling and len(training_state(resumed, trainer_b)["adam"][2]) > 0
        assert phase_losses(logged_b) == phase_losses(logged[done:]), ckpt


# ----------------------------------------------------------------------------------------------- CLI
def test_the_config_snippet_switches_a_cli_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    snippet = {"trainer": {"callbacks": [{"class_path": "callbacks.DistillationPhase",
                                          "init_args": {"start_iteration": 1, "loss": "huber"}}]}}
    (tmp_path / "distill.yaml").write_text(yaml.safe_dump(snippet))
    main(["fit", "--config", str(REPO / "configs" / "quickstart_ts.yaml"), "--config", "distill.yaml",
          "--data.num_envs", "16", "--model.num_steps_per_env", "8", "--trainer.max_epochs", "2", "--run_name", "d"])
    (ckpt,) = tmp_path.glob("logs/quickstart_ts/*_d/checkpoints/last.ckpt")
    assert torch.load(ckpt, weights_only=True)["leggedex"]["distillation"] == {"loss": "huber", "learning_rate": 1e-3}
    assert TeacherStudentPPO.load_from_checkpoint(ckpt, map_location="cpu").distilling
