"""RecurrentTeacherStudentPPO: a recurrent student that follows every frame while the teacher acts, trajectory
mini-batches that replay the rollout's student states with backpropagation truncated at ``truncation_steps``, a
DAgger phase after which the student matches the teacher, exact resume with the states, export, refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from lightning.pytorch import seed_everything

from callbacks import DistillationPhase
from leggedex.data import PlainLoop
from leggedex.envs import ObsSpec, PointMassReach
from leggedex.methods import RecurrentTeacherStudentPPO
from leggedex.storage.recurrent import env_major, split_trajectories
from leggedex.storage.recurrent_ts import RecurrentRolloutStorageTS

from conftest import (
    REPO,
    SMALL_TS,
    TS_ENV,
    assert_same_training_state,
    deterministic_return,
    make_trainer,
    training_state,
    ts_datamodule,
)

SMALL_RTS: dict[str, Any] = dict(SMALL_TS, rnn_hidden_size=16)
QUICKSTART = REPO / "configs" / "quickstart_ts_rnn.yaml"


def short_episode_rollout(method: RecurrentTeacherStudentPPO, distilling: bool) -> RecurrentRolloutStorageTS:
    """One rollout of 16 envs whose episodes end several times in it."""
    loop = PlainLoop(PointMassReach(16, seed=0, **{**TS_ENV, "episode_length_s": 0.6}), method)
    if distilling:
        method.start_distillation()
    storage = loop.collect().storage
    assert isinstance(storage, RecurrentRolloutStorageTS) and int(storage.dones.sum()) > 16
    return storage


def test_trajectories_are_also_cut_every_truncation_steps() -> None:
    dones = torch.zeros(6, 2, dtype=torch.bool)
    dones[1, 0] = True
    first, lengths = split_trajectories(dones, max_length=4)
    # env 0: steps 0-1 (done), 2-3 (cut), 4-5; env 1: steps 0-3 (cut), 4-5
    assert first.tolist() == [0, 2, 4, 6, 10] and lengths.tolist() == [2, 2, 2, 4, 2]


@pytest.mark.parametrize("truncation_steps", [None, 5])
def test_the_student_stages_see_the_states_the_rollout_stored(truncation_steps: int | None) -> None:
    torch.manual_seed(0)
    method = RecurrentTeacherStudentPPO(**{**SMALL_RTS, "num_steps_per_env": 24}, truncation_steps=truncation_steps)
    storage = short_episode_rollout(method, distilling=True)
    ac = method.built_actor_critic
    seen = 0
    for batch in storage.student_batches(4, 1, method.truncation_steps):
        assert int(batch.sequences.masks.sum(0).max()) <= (truncation_steps or 24)
        with torch.no_grad():
            latent = ac.student_latent_sequences(batch.sequences)
            means = ac.actor(torch.cat([batch.policy, latent], dim=-1))
        # the acting means of the rollout (the student acted), in the batch's env-major order
        torch.testing.assert_close(means, env_major(storage.action_mean, batch.envs), rtol=0, atol=1e-5)
        seen += means.shape[0]
    assert seen == 16 * 24
    done = storage.dones[-1]
    for name, state in method.states.items():  # an env whose episode just ended starts from a zero state
        assert torch.all(state[:, done] == 0) and torch.any(state[:, ~done] != 0), name


def test_the_student_follows_every_frame_while_the_teacher_acts() -> None:
    torch.manual_seed(0)
    method = RecurrentTeacherStudentPPO(**{**SMALL_RTS, "num_steps_per_env": 24})
    storage = short_episode_rollout(method, distilling=False)
    assert not method.distilling
    # the stored student state moves from step to step although the teacher acted
    assert not torch.equal(storage.states["h"][1], storage.states["h"][2])
    assert torch.all(storage.states["h"][0] == 0)  # a new run starts from zero


def test_backpropagation_stops_at_the_truncation_boundary() -> None:
    torch.manual_seed(0)
    method = RecurrentTeacherStudentPPO(**{**SMALL_RTS, "num_steps_per_env": 8}, truncation_steps=4)
    loop = PlainLoop(PointMassReach(2, seed=0, **{**TS_ENV, "episode_length_s": 8.0}), method)
    storage = loop.collect().storage
    assert not storage.dones.any()
    storage.obs["policy"].requires_grad_(True)
    (batch,) = storage.student_batches(1, 1, method.truncation_steps)
    latent = method.built_actor_critic.student_latent_sequences(batch.sequences)
    latent[6].sum().backward()  # the first env's step 6, in its second 4-step piece
    reaching = storage.obs["policy"].grad.abs().sum(-1)  # (steps, envs)
    env = int(batch.envs[0])
    assert torch.all(reaching[:4, env] == 0) and torch.all(reaching[4:7, env] > 0) and reaching[7, env] == 0


def test_a_distilled_recurrent_student_matches_the_teacher_and_needs_its_memory() -> None:
    seed_everything(1, verbose=False)
    method = RecurrentTeacherStudentPPO(**_quickstart_args())
    switch = DistillationPhase(start_iteration=60, learning_rate=3e-3)
    make_trainer(90, callbacks=[switch]).fit(method, datamodule=ts_datamodule(num_envs=256))
    assert method.distilling
    teacher = deterministic_return(lambda obs: method.action_distribution(method.normalize_obs(obs, False)).mean)
    student = deterministic_return(method.deployed_policy())
    deployed = method.deployed_policy()

    def memoryless(obs: dict[str, torch.Tensor]) -> torch.Tensor:
        actions = deployed(obs)
        deployed.reset(torch.ones(actions.shape[0], dtype=torch.bool))
        return actions

    forgetful = deterministic_return(memoryless)
    print(f"returns: teacher {teacher:.2f}, recurrent student {student:.2f}, student without memory {forgetful:.2f}")
    # the MLP student's bar in test_teacher_student.py (seeded: teacher 6.55, student 5.22, without memory 1.59)
    assert teacher > 5.0 and student > 0.75 * teacher and forgetful < 0.5 * student


def _quickstart_args() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(QUICKSTART.read_text())["model"]["init_args"]


def fit_switching(max_epochs: int, ckpt_dir: Path | None = None, ckpt_path: Path | None = None):
    from callbacks import IterationCheckpoint

    seed_everything(5, verbose=False)
    method = RecurrentTeacherStudentPPO(**SMALL_RTS, learning_rate=3e-3, truncation_steps=3)
    callbacks: list = [DistillationPhase(start_iteration=3, learning_rate=3e-3)]
    if ckpt_dir:
        callbacks.append(IterationCheckpoint(every_n_iterations=2, dirpath=str(ckpt_dir)))
    trainer = make_trainer(max_epochs, callbacks=callbacks, enable_checkpointing=bool(ckpt_dir))
    trainer.fit(method, datamodule=ts_datamodule(num_envs=16), ckpt_path=ckpt_path)
    return method, trainer


def test_resume_across_the_switch_is_exact_with_the_student_states(tmp_path: Path) -> None:
    uninterrupted, trainer_a = fit_switching(6)
    fit_switching(4, ckpt_dir=tmp_path)  # 3 teacher iterations, 1 distillation iteration
    saved = torch.load(tmp_path / "model_4.ckpt", weights_only=True)["leggedex"]["recurrent_states"][0]
    assert set(saved) == {"h", "c"} and saved["h"].abs().sum() > 0
    resumed, trainer_b = fit_switching(6, ckpt_dir=tmp_path / "resumed", ckpt_path=tmp_path / "model_4.ckpt")
    assert resumed.distilling
    assert_same_training_state(training_state(uninterrupted, trainer_a), training_state(resumed, trainer_b))
    for name in uninterrupted.states:
        assert torch.equal(uninterrupted.states[name], resumed.states[name]), name


def test_refusals_name_the_problem() -> None:
    with pytest.raises(ValueError, match="history_encoder_type 'tcn' does not apply"):
        RecurrentTeacherStudentPPO(**SMALL_RTS, history_encoder_type="tcn")
    with pytest.raises(ValueError, match=r"truncation_steps must lie in \[1, num_steps_per_env=8\]"):
        RecurrentTeacherStudentPPO(**SMALL_RTS, truncation_steps=9)
    with pytest.raises(ValueError, match="model.rnn_type must be one of"):
        RecurrentTeacherStudentPPO(**SMALL_RTS, rnn_type="transformer")
    with pytest.raises(ValueError, match="symmetry augmentation.*does not apply to recurrent policies"):
        RecurrentTeacherStudentPPO(**SMALL_RTS, symmetry_augmentation=True)
    method = RecurrentTeacherStudentPPO(**SMALL_RTS)
    with pytest.raises(ValueError, match=r"needs observation group.*privileged"):
        method.build(ObsSpec({"policy": 6, "critic": 8}, num_actions=2))


def test_the_quickstart_config_distills_plays_and_exports_with_the_state_as_inputs_and_outputs(
        tmp_path, monkeypatch, capsys) -> None:
    import onnxruntime as ort

    from leggedex.cli import main
    from leggedex.cli.checkpoint import load_method
    from leggedex.cli.export import read_contract

    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", str(QUICKSTART), "--data.num_envs", "16", "--model.num_steps_per_env", "8",
          "--model.truncation_steps", "4", "--trainer.max_epochs", "3",
          "--trainer.callbacks.init_args.start_iteration", "1", "--run_name", "r"])
    (ckpt,) = tmp_path.glob("logs/quickstart_ts_rnn/*_r/checkpoints/last.ckpt")
    _, method = load_method(["--config", str(QUICKSTART)], ckpt)
    assert isinstance(method, RecurrentTeacherStudentPPO) and method.distilling
    capsys.readouterr()
    main(["play", "--config", str(QUICKSTART), "--ckpt_path", str(ckpt), "--num_envs", "8", "--duration", "1"])
    assert "| envs | survival | mean return |" in capsys.readouterr().out
    main(["export", "--config", str(QUICKSTART), "--ckpt_path", str(ckpt), "--out", str(tmp_path / "export")])
    contract = read_contract(tmp_path / "export" / "deploy.json")
    assert [t["input"] for t in contract["recurrent_state"]["tensors"]] == ["h_in", "c_in"]
    session = ort.InferenceSession(str(tmp_path / "export" / "policy.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["policy", "h_in", "c_in"]  # no history: the state holds it
    reference = method.deployed_policy()
    size = method.built_obs_spec.groups["policy"]
    state = {name: np.zeros((1, 2, 64), dtype=np.float32) for name in ("h", "c")}
    torch.manual_seed(0)
    for _ in range(6):
        obs = torch.randn(2, size)
        with torch.inference_mode():
            expected = reference({"policy": obs})
        actions, h, c = session.run(["actions", "h_out", "c_out"], {"policy": obs.numpy(), "h_in": state["h"],
                                                                    "c_in": state["c"]})
        np.testing.assert_allclose(actions, expected.numpy(), atol=1e-5, rtol=0)
        state = {"h": h, "c": c}
