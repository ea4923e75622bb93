"""Recurrent PPO: trajectory mini-batches that replay the rollout's hidden states, states zeroed on dones and kept
in the checkpoint, a memory task an MLP on the same single frame cannot solve, and refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch import seed_everything

from leggedex.data import PlainLoop
from leggedex.envs import ObsSpec, PointMassReach
from leggedex.methods import PPO, RecurrentPPO
from leggedex.storage.recurrent import RecurrentRolloutStorage, split_trajectories

from conftest import SMALL_PPO, episode_return, fit_with_checkpoints, flat_parameters, make_datamodule

SMALL_RNN = dict(SMALL_PPO, rnn_hidden_size=16)
MEMORY_TASK = dict(policy_velocity=False, drag=0.2)  # the velocity only from successive to_goal readings


def test_trajectories_are_cut_after_each_done() -> None:
    dones = torch.tensor([[0, 0], [1, 0], [0, 0], [0, 1]], dtype=torch.bool)  # (steps, envs)
    first, lengths = split_trajectories(dones)
    # env 0: steps 0-1 and 2-3; env 1: steps 0-3 (env-major flat index = env * steps + step)
    assert first.tolist() == [0, 2, 4] and lengths.tolist() == [2, 2, 4]


@pytest.mark.parametrize("options", [{"rnn_type": "lstm"}, {"rnn_type": "gru", "critic_recurrent": True}],
                         ids=["lstm", "gru-recurrent-critic"])
def test_the_update_sees_the_hidden_states_the_rollout_acted_with(options: dict) -> None:
    torch.manual_seed(0)
    method = RecurrentPPO(**{**SMALL_RNN, "num_steps_per_env": 24, **options})
    loop = PlainLoop(PointMassReach(16, seed=0, episode_length_s=0.6), method)  # several dones per rollout
    storage = loop.collect().storage
    assert isinstance(storage, RecurrentRolloutStorage) and int(storage.dones.sum()) > 16
    seen = 0
    for batch in storage.mini_batches(num_mini_batches=4, num_epochs=1):
        with torch.no_grad():
            log_probs = method.batch_distribution(batch).log_prob(batch.actions).sum(-1)
            values = method.batch_value(batch)
        torch.testing.assert_close(log_probs, batch.log_probs, rtol=0, atol=1e-5)
        torch.testing.assert_close(values, batch.values, rtol=0, atol=1e-5)
        seen += batch.actions.shape[0]
    assert seen == 16 * 24
    # an env whose episode just ended starts its next step from a zero state
    done = storage.dones[-1]
    assert done.any()
    for name, state in method.states.items():
        assert torch.all(state[:, done] == 0), name
        assert torch.any(state[:, ~done] != 0), name


def test_a_recurrent_policy_learns_what_a_single_frame_mlp_cannot() -> None:
    returns = {}
    options = dict(SMALL_PPO, num_steps_per_env=16, num_learning_epochs=4, learning_rate=3e-3)
    for name, make in (("mlp", lambda: PPO(**options)), ("lstm", lambda: RecurrentPPO(**options, rnn_hidden_size=32))):
        torch.manual_seed(0)
        method = make()
        loop = PlainLoop(PointMassReach(64, seed=0, **MEMORY_TASK), method)
        for _ in range(100):
            loop.learn(loop.collect())
        returns[name] = episode_return(method.deployed_policy(), 256, 123, **MEMORY_TASK)
    print(f"memory task, deterministic return after 100 iterations: {returns}")
    assert returns["lstm"] > 4.5 and returns["lstm"] > 1.5 * returns["mlp"]


def fit_rnn(max_epochs: int, ckpt_dir: Path | None = None, ckpt_path: str | None = None):
    seed_everything(7, verbose=False)
    method = RecurrentPPO(**SMALL_RNN, learning_rate=3e-3, critic_recurrent=True)
    return method, fit_with_checkpoints(method, make_datamodule(num_envs=16), max_epochs, ckpt_dir, ckpt_path)


def test_resume_is_exact_with_the_hidden_states(tmp_path: Path) -> None:
    uninterrupted, _ = fit_rnn(8)
    fit_rnn(4, ckpt_dir=tmp_path)
    checkpoint = torch.load(tmp_path / "model_4.ckpt", weights_only=False)
    saved = checkpoint["leggedex"]["recurrent_states"][0]
    assert set(saved) == {"actor_h", "actor_c", "critic_h", "critic_c"} and saved["actor_h"].abs().sum() > 0
    resumed, _ = fit_rnn(8, ckpt_dir=tmp_path / "resumed", ckpt_path=str(tmp_path / "model_4.ckpt"))
    assert torch.equal(flat_parameters(uninterrupted), flat_parameters(resumed))
    for name in uninterrupted.states:
        assert torch.equal(uninterrupted.states[name], resumed.states[name]), name


def test_refusals_name_the_problem() -> None:
    with pytest.raises(ValueError, match="symmetry augmentation.*does not apply to recurrent policies"):
        RecurrentPPO(**SMALL_RNN, symmetry_augmentation=True)
    with pytest.raises(ValueError, match="model.rnn_type must be one of"):
        RecurrentPPO(rnn_type="transformer")
    with pytest.raises(ValueError, match="rnn_hidden_size and model.rnn_num_layers must be positive"):
        RecurrentPPO(rnn_hidden_size=0)
    method = RecurrentPPO(**SMALL_RNN)
    method.build(ObsSpec({"policy": 6, "critic": 8}, num_actions=2))
    mismatch = r"actor_memory.rnn.weight_ih_l0: \(64, 6\) in the checkpoint, \(32, 6\) here"
    with pytest.raises(ValueError, match=mismatch):  # another hidden size than the checkpoint's
        other = RecurrentPPO(**{**SMALL_RNN, "rnn_hidden_size": 8})
        other.build(ObsSpec({"policy": 6, "critic": 8}, num_actions=2))
        other.check_checkpoint_shapes(method.state_dict())


def test_the_quickstart_config_trains_plays_and_exports_with_the_state_as_inputs_and_outputs(
        tmp_path, monkeypatch, capsys) -> None:
    import onnxruntime as ort

    from leggedex.cli import main
    from leggedex.cli.checkpoint import load_method
    from leggedex.cli.export import read_contract

    from conftest import REPO

    config = str(REPO / "configs" / "quickstart_rnn.yaml")
    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", config, "--data.num_envs", "16", "--model.num_steps_per_env", "8",
          "--trainer.max_epochs", "2", "--run_name", "rnn"])
    (ckpt,) = tmp_path.glob("logs/quickstart_rnn/*_rnn/checkpoints/last.ckpt")
    _, method = load_method(["--config", config], ckpt)
    assert isinstance(method, RecurrentPPO) and set(method.recurrent_state()) == {"h", "c"}
    capsys.readouterr()
    main(["play", "--config", config, "--ckpt_path", str(ckpt), "--num_envs", "8", "--duration", "1"])
    assert "| envs | survival | mean return |" in capsys.readouterr().out
    main(["export", "--config", config, "--ckpt_path", str(ckpt), "--out", str(tmp_path / "export")])
    contract = read_contract(tmp_path / "export" / "deploy.json")
    tensors = contract["recurrent_state"]["tensors"]
    assert [(t["input"], t["output"], t["shape"]) for t in tensors] == [("h_in", "h_out", [1, "batch", 64]),
                                                                        ("c_in", "c_out", [1, "batch", 64])]
    session = ort.InferenceSession(str(tmp_path / "export" / "policy.onnx"), providers=["CPUExecutionProvider"])
    scripted = torch.jit.load(str(tmp_path / "export" / "policy.pt"))
    torch.manual_seed(0)
    reference = method.deployed_policy()
    state = {name: torch.zeros(1, 3, 64).numpy() for name in ("h", "c")}
    for step in range(12):  # three robots; the first restarts at step 5, all at step 9
        obs = torch.randn(3, 6)
        dones = torch.tensor([step == 5, False, False]) | (step == 9)
        with torch.inference_mode():
            expected = reference({"policy": obs})
        actions, h, c = session.run(["actions", "h_out", "c_out"], {"policy": obs.numpy(), "h_in": state["h"],
                                                                    "c_in": state["c"]})
        np.testing.assert_allclose(actions, expected.numpy(), atol=1e-5, rtol=0)
        if step == 10:  # the robots restarted after step 9
            scripted.reset()
        with torch.no_grad():
            torch.testing.assert_close(scripted(obs[1:2]), expected[1:2], atol=1e-5, rtol=0)  # one robot: no. 1
        keep = (~dones).numpy()[None, :, None]
        state = {"h": h * keep, "c": c * keep}
        reference.reset(dones)
