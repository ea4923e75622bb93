"""``leggedex export``: TorchScript and ONNX equal the PyTorch deploy policy, the contract round-trips, the
exported policy drives the Go2 env exactly like the checkpoint, and mismatched checkpoints are refused clearly."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from leggedex.cli import main
from leggedex.cli.checkpoint import load_method
from leggedex.cli.export import read_contract, write_contract

from conftest import REPO, one_thread_backend

QUICKSTART = str(REPO / "configs" / "quickstart.yaml")
_TINY: dict[str, Path] = {}


def tiny_fit(root: Path, name: str, config: dict) -> tuple[Path, Path]:
    """Fit ``config`` (a shipped config, edited to be tiny) for its iterations under ``root`` as ``<name>.yaml``;
    returns (config, checkpoint)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    cwd = os.getcwd()
    os.chdir(root)
    try:
        main(["fit", "--config", str(path), "--run_name", "tiny"])
    finally:
        os.chdir(cwd)
    (ckpt,) = root.glob(f"logs/{name}/*_tiny/checkpoints/last.ckpt")
    return path, ckpt


def tiny_go2_checkpoint(root: Path) -> tuple[Path, Path]:
    """A 1-iteration Go2 fit (8 envs x 4 steps, [32, 32] networks, empirical normalization on), made once per
    test process; returns (config, checkpoint)."""
    if not _TINY:
        config = yaml.safe_load((REPO / "configs" / "go2_flat.yaml").read_text())
        config["torch_threads"] = 1
        config["trainer"]["max_epochs"] = 1
        config["trainer"].pop("callbacks")  # no periodic evaluation: keep the fit short
        config["model"]["init_args"].update(actor_hidden_dims=[32, 32], critic_hidden_dims=[32, 32],
                                            empirical_normalization=True, num_steps_per_env=4)
        config["data"]["num_envs"] = 8
        config["data"]["env"]["init_args"]["backend"]["init_args"]["num_threads"] = 1
        path, ckpt = tiny_fit(root, "tiny_go2", config)
        _TINY.update(config=path, ckpt=ckpt)
    return _TINY["config"], _TINY["ckpt"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    return tiny_go2_checkpoint(tmp_path_factory.getbasetemp() / "tiny_go2")


@pytest.fixture(scope="module")
def exported(tiny, tmp_path_factory) -> Path:
    config, ckpt = tiny
    out = tmp_path_factory.mktemp("export")
    main(["export", "--config", str(config), "--ckpt_path", str(ckpt), "--out", str(out)])
    return out


def test_export_writes_the_three_files_and_the_default_folder_is_in_the_run(tiny, exported) -> None:
    assert {p.name for p in exported.iterdir()} >= {"policy.pt", "policy.onnx", "deploy.json"}
    from leggedex.cli.export import default_out_dir

    assert default_out_dir(tiny[1]) == tiny[1].parent.parent / "exports" / "last"


def test_torchscript_and_onnx_equal_the_pytorch_policy(tiny, exported) -> None:
    import onnx
    import onnxruntime as ort

    config, ckpt = tiny
    _, method = load_method(["--config", str(config)], ckpt)
    assert method.actor_critic.actor_normalizer.count > 0  # a normalizer with statistics is folded in
    obs = torch.randn(64, method.obs_spec.groups["policy"]) * 3
    with torch.no_grad():
        expected = method.inference_policy(obs)
        scripted = torch.jit.load(str(exported / "policy.pt"))(obs)
    assert torch.allclose(scripted, expected, atol=1e-5, rtol=0)

    model = onnx.load(str(exported / "policy.onnx"))
    onnx.checker.check_model(model)
    assert model.opset_import[0].version in (17, 18)
    session = ort.InferenceSession(str(exported / "policy.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(method.policy_inputs()) == ["policy"]
    assert [o.name for o in session.get_outputs()] == ["actions"]
    (actions,) = session.run(None, {"policy": obs.numpy()})
    np.testing.assert_allclose(actions, expected.numpy(), atol=1e-5, rtol=0)


def test_deploy_contract_round_trips_and_describes_the_go2(exported, tmp_path) -> None:
    contract = read_contract(exported / "deploy.json")
    write_contract(contract, tmp_path / "again.json")
    assert read_contract(tmp_path / "again.json") == contract
    env = contract["env"]
    assert contract["method"] == "leggedex.methods.ppo.PPO"
    assert contract["inputs"][0]["name"] == "policy" and contract["inputs"][0]["size"] == 45
    terms = contract["inputs"][0]["terms"]
    assert [t["name"] for t in terms] == ["command", "projected_gravity", "base_ang_vel", "dof_pos", "dof_vel",
                                          "last_action"]
    assert terms[-1]["start"] + terms[-1]["size"] == 45 and terms[0]["scale"] == [2.0, 2.0, 0.25]
    assert contract["outputs"] == [{"name": "actions", "size": 12}]
    assert env["joint_names"][:3] == ["FL_hip", "FL_thigh", "FL_calf"] and len(env["joint_names"]) == 12
    assert env["default_joint_pos"][:3] == pytest.approx([0.0, 0.8, -1.5])
    assert env["action_scale"] == 0.25 and env["control_dt"] == pytest.approx(0.02)
    assert env["kp"] == [20.0] * 12 and env["kd"] == [0.5] * 12
    assert env["observation_clip"] == 100.0 and env["clip_actions"] == 100.0


def test_exported_torchscript_drives_the_go2_like_the_checkpoint(tiny, exported) -> None:
    from leggedex.cli.checkpoint import build_env

    config, ckpt = tiny
    cli, method = load_method(["--config", str(config)], ckpt)
    scripted = torch.jit.load(str(exported / "policy.pt"))

    def episode(policy):
        env = build_env(cli, num_envs=4, seed=7)
        obs, actions, rewards, dones = env.reset(), [], [], []
        with torch.inference_mode():
            for _ in range(60):
                action = policy(obs["policy"])
                obs, reward, done, _ = env.step(action)
                actions.append(action)
                rewards.append(reward)
                dones.append(done)
        env.close()
        return torch.stack(actions), torch.stack(rewards), torch.stack(dones)

    eager = episode(method.inference_policy)
    traced = episode(scripted)
    assert torch.allclose(traced[0], eager[0], atol=1e-5, rtol=0)  # same actions on the same observations
    assert torch.allclose(traced[1], eager[1], atol=1e-5, rtol=0)
    assert torch.equal(traced[2], eager[2])  # same episode outcome


def test_the_run_directorys_saved_config_exports_its_checkpoint(tiny, tmp_path) -> None:
    """The config.yaml a run saves carries fit's ckpt_path and weights_only keys; play and export accept it."""
    _, ckpt = tiny
    saved = ckpt.parents[1] / "config.yaml"
    assert "ckpt_path" in yaml.safe_load(saved.read_text())
    main(["export", "--config", str(saved), "--ckpt_path", str(ckpt), "--out", str(tmp_path)])
    assert read_contract(tmp_path / "deploy.json")["env"]["num_actions"] == 12


def test_a_checkpoint_for_another_env_is_refused_naming_the_groups(tiny) -> None:
    with pytest.raises(ValueError, match=r"group 'policy' has size 45 in the checkpoint but \d+ in the env"):
        main(["export", "--config", QUICKSTART, "--ckpt_path", str(tiny[1])])


def test_a_checkpoint_of_another_method_is_refused_naming_both(tiny, tmp_path) -> None:
    checkpoint = torch.load(tiny[1], map_location="cpu", weights_only=False)
    checkpoint["leggedex"]["method"] = "somewhere.TeacherStudent"
    torch.save(checkpoint, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match=r"somewhere\.TeacherStudent.*leggedex\.methods\.ppo\.PPO"):
        main(["export", "--config", str(tiny[0]), "--ckpt_path", str(tmp_path / "other.ckpt")])


def test_network_shape_mismatch_names_the_tensors(tiny) -> None:
    from conftest import make_ppo

    checkpoint = torch.load(tiny[1], map_location="cpu", weights_only=False)
    method = make_ppo(actor_hidden_dims=[16, 16])
    with pytest.raises(ValueError, match=r"actor_critic\.actor\..*\(32, 45\) in the checkpoint, \(16, 45\) here"):
        method.on_load_checkpoint(checkpoint)


def test_the_contract_of_a_student_policy_describes_its_history_input() -> None:
    from leggedex.cli.export import deploy_contract
    from leggedex.envs import LeggedLocomotion
    from leggedex.envs.locomotion.config import ObservationConfig
    from leggedex.methods import TeacherStudentPPO

    env = LeggedLocomotion(2, seed=0, backend=one_thread_backend,
                           observations=ObservationConfig(history_length=20, privileged=True))
    method = TeacherStudentPPO(actor_hidden_dims=[8], critic_hidden_dims=[8], privilege_encoder_hidden_dims=[8],
                               history_encoder_hidden_dims=[8])
    method.build(env.obs_spec)
    contract = deploy_contract(method, env)
    policy, history = contract["inputs"]
    assert (policy["name"], history["name"]) == ("policy", "history")
    assert history["size"] == 900 and history["frames"] == 20 and history["frame_terms"] == policy["terms"]
    assert history["order"].startswith("oldest first")


def assert_exports_match(method, out: Path, inputs: dict[str, torch.Tensor]) -> None:
    """TorchScript and ONNX in ``out`` take ``inputs`` (named after the method's groups) and equal the method."""
    import onnxruntime as ort

    with torch.no_grad():
        expected = method.inference_policy(*inputs.values())
        scripted = torch.jit.load(str(out / "policy.pt"))(*inputs.values())
    assert torch.allclose(scripted, expected, atol=1e-5, rtol=0)
    session = ort.InferenceSession(str(out / "policy.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(inputs) == list(method.policy_inputs())
    (actions,) = session.run(None, {name: x.numpy() for name, x in inputs.items()})
    np.testing.assert_allclose(actions, expected.numpy(), atol=1e-5, rtol=0)


def test_an_estimator_policy_exports_and_plays_through_the_generic_commands(tmp_path, monkeypatch, capsys) -> None:
    from leggedex.methods import EstimatorPPO

    config = str(REPO / "configs" / "quickstart_ee.yaml")
    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", config, "--data.num_envs", "16", "--model.num_steps_per_env", "8",
          "--trainer.max_epochs", "1", "--run_name", "ee"])
    (ckpt,) = tmp_path.glob("logs/quickstart_ee/*_ee/checkpoints/last.ckpt")
    main(["export", "--config", config, "--ckpt_path", str(ckpt), "--out", str(tmp_path / "export")])
    _, method = load_method(["--config", config], ckpt)
    assert isinstance(method, EstimatorPPO) and method.actor_critic.actor_normalizer.count > 0
    assert_exports_match(method, tmp_path / "export", {"policy": torch.randn(32, 6), "history": torch.randn(32, 60)})
    contract = read_contract(tmp_path / "export" / "deploy.json")
    assert contract["method"] == "leggedex.methods.estimator.EstimatorPPO"
    assert [(i["name"], i["size"]) for i in contract["inputs"]] == [("policy", 6), ("history", 60)]

    capsys.readouterr()
    main(["play", "--config", config, "--ckpt_path", str(ckpt), "--num_envs", "8", "--duration", "1"])
    assert "| envs | survival | mean return |" in capsys.readouterr().out


def test_the_exported_torchscript_returns_actions_that_need_no_gradient(tiny, exported) -> None:
    _, ckpt = tiny
    policy = torch.jit.load(str(exported / "policy.pt"))
    _, method = load_method(["--config", str(tiny[0])], ckpt)
    actions = policy(torch.zeros(1, method.built_obs_spec.groups["policy"]))
    assert not actions.requires_grad
    actions.numpy()  # what a robot-side loop does
    assert all(p.requires_grad for p in method.parameters())  # the method itself is left trainable
