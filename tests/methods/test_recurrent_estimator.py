"""RecurrentEstimatorPPO: the recurrent actor over [policy, estimate] re-evaluates the rollout's log-probabilities
on trajectory mini-batches, the estimator regression still trains, resume is exact with the states, export gives
ONNX with the state as inputs and outputs, and it learns on the estimator point mass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch import seed_everything
from test_estimator import EE_ENV, QUICKSTART_EE, SMALL_EE

from leggedex.data import PlainLoop
from leggedex.envs import PointMassReach
from leggedex.methods import RecurrentEstimatorPPO
from leggedex.storage.recurrent import RecurrentRolloutStorage

from conftest import episode_return, fit_with_checkpoints, flat_parameters, make_datamodule

SMALL_REE = dict(SMALL_EE, rnn_hidden_size=16)


def test_the_update_sees_the_states_the_rollout_acted_with() -> None:
    torch.manual_seed(0)
    method = RecurrentEstimatorPPO(**{**SMALL_REE, "num_steps_per_env": 24})
    loop = PlainLoop(PointMassReach(16, seed=0, **{**EE_ENV, "episode_length_s": 0.6}), method)
    storage = loop.collect().storage
    assert isinstance(storage, RecurrentRolloutStorage) and int(storage.dones.sum()) > 16
    for batch in storage.mini_batches(num_mini_batches=4, num_epochs=1):
        with torch.no_grad():
            log_probs = method.batch_distribution(batch).log_prob(batch.actions).sum(-1)
        torch.testing.assert_close(log_probs, batch.log_probs, rtol=0, atol=1e-5)
        assert "estimator" in method.auxiliary_losses(batch)  # the regression reads the flat groups
    done = storage.dones[-1]
    for name, state in method.states.items():
        assert torch.all(state[:, done] == 0) and torch.any(state[:, ~done] != 0), name


def test_it_learns_on_the_estimator_point_mass() -> None:
    torch.manual_seed(0)
    args = {**QUICKSTART_EE["model"]["init_args"], "rnn_hidden_size": 32}
    method = RecurrentEstimatorPPO(**args)
    loop = PlainLoop(PointMassReach(128, seed=0, **EE_ENV), method)
    errors = []
    for _ in range(60):
        errors.append(loop.learn(loop.collect())["Estimator/velocity_error"])
    returns = episode_return(method.deployed_policy(), 128, 123, **EE_ENV)
    print(f"velocity error {np.mean(errors[:5]):.3f} -> {np.mean(errors[-5:]):.3f}, return {returns:.2f}")
    assert np.mean(errors[-5:]) < 0.5 * np.mean(errors[:5]) and returns > 4.0


def fit_ree(max_epochs: int, ckpt_dir: Path | None = None, ckpt_path: str | None = None):
    seed_everything(7, verbose=False)
    method = RecurrentEstimatorPPO(**SMALL_REE, learning_rate=3e-3)
    return method, fit_with_checkpoints(method, make_datamodule(num_envs=16, **EE_ENV), max_epochs, ckpt_dir,
                                        ckpt_path)


def test_resume_is_exact_with_the_states(tmp_path: Path) -> None:
    uninterrupted, _ = fit_ree(8)
    fit_ree(4, ckpt_dir=tmp_path)
    resumed, _ = fit_ree(8, ckpt_dir=tmp_path / "resumed", ckpt_path=str(tmp_path / "model_4.ckpt"))
    assert torch.equal(flat_parameters(uninterrupted), flat_parameters(resumed))
    for name in uninterrupted.states:
        assert torch.equal(uninterrupted.states[name], resumed.states[name]), name


def test_refusals_and_export(tmp_path: Path) -> None:
    import onnxruntime as ort

    from leggedex.cli.export import export_onnx

    with pytest.raises(ValueError, match="symmetry augmentation.*does not apply to recurrent policies"):
        RecurrentEstimatorPPO(**SMALL_REE, symmetry_augmentation=True)
    with pytest.raises(ValueError, match="model.rnn_type must be one of"):
        RecurrentEstimatorPPO(**SMALL_REE, rnn_type="transformer")
    method, _ = fit_ree(2)
    method.eval()
    export_onnx(method, tmp_path / "policy.onnx")
    session = ort.InferenceSession(str(tmp_path / "policy.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["policy", "history", "h_in", "c_in"]
    spec = method.built_obs_spec.groups
    reference = method.deployed_policy()
    state = {name: np.zeros((1, 2, 16), dtype=np.float32) for name in ("h", "c")}
    for _ in range(5):
        obs = {"policy": torch.randn(2, spec["policy"]), "history": torch.randn(2, spec["history"])}
        with torch.inference_mode():
            expected = reference(obs)
        actions, h, c = session.run(["actions", "h_out", "c_out"], {"policy": obs["policy"].numpy(),
                                    "history": obs["history"].numpy(), "h_in": state["h"], "c_in": state["c"]})
        np.testing.assert_allclose(actions, expected.numpy(), atol=1e-5, rtol=0)
        state = {"h": h, "c": c}
