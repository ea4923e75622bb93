"""The GPU configs are the CPU configs' tasks at GPU sizes: equal outside the keys a GPU run changes, and they parse."""

from __future__ import annotations

import copy
import importlib.util

import pytest
import yaml

from conftest import REPO

GPU_KEYS = {  # what a GPU config may change, as paths into the YAML
    ("trainer", "accelerator"), ("trainer", "max_epochs"), ("data", "num_envs"),
    ("model", "init_args", "actor_hidden_dims"), ("model", "init_args", "critic_hidden_dims"),
    ("data", "env", "init_args", "backend"), ("data", "env", "init_args", "terrain", "border"),
}


def _without_gpu_keys(config: dict) -> dict:
    config = copy.deepcopy(config)
    for path in GPU_KEYS:
        node = config
        for key in path[:-1]:
            node = node.get(key, {})
        node.pop(path[-1], None)
    for callback in config["trainer"]["callbacks"]:  # the distillation phase and the checkpoints follow the length
        callback.get("init_args", {}).pop("start_iteration", None)
        if callback["class_path"] == "callbacks.IterationCheckpoint":
            callback["init_args"].pop("every_n_iterations", None)
    return config


@pytest.mark.parametrize("name", ["go2_flat", "go2_ts"])
def test_the_gpu_config_trains_the_same_task(name: str) -> None:
    cpu = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())
    gpu = yaml.safe_load((REPO / "configs" / f"{name}_gpu.yaml").read_text())
    assert _without_gpu_keys(gpu) == _without_gpu_keys(cpu)
    assert gpu["trainer"]["accelerator"] == "gpu" and gpu["data"]["num_envs"] >= 4096
    assert gpu["data"]["env"]["init_args"]["backend"]["class_path"] == "leggedex.envs.backends.MujocoWarpBackend"
    assert gpu["data"]["env"]["init_args"]["backend"]["init_args"]["device"] == "cuda"


@pytest.mark.skipif(importlib.util.find_spec("mujoco_warp") is None, reason="needs the warp extra")
@pytest.mark.parametrize("name", ["go2_flat_gpu", "go2_ts_gpu"])
def test_the_gpu_config_parses(name: str, capsys) -> None:
    from leggedex.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(REPO / "configs" / f"{name}.yaml"), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["data"]["env"]["init_args"]["backend"]["init_args"]["graph"] is True


def test_the_recurrent_go2_config_trains_the_go2_flat_task() -> None:
    flat = yaml.safe_load((REPO / "configs" / "go2_flat.yaml").read_text())
    rnn = yaml.safe_load((REPO / "configs" / "go2_flat_rnn.yaml").read_text())
    assert rnn["model"]["class_path"] == "leggedex.methods.RecurrentPPO"
    recurrent_keys = {"rnn_type", "rnn_hidden_size", "rnn_num_layers", "critic_recurrent"}
    rnn_args = {k: v for k, v in rnn["model"]["init_args"].items() if k not in recurrent_keys}
    assert rnn_args == flat["model"]["init_args"]
    assert {k: v for k, v in rnn.items() if k != "model"} == {k: v for k, v in flat.items() if k != "model"}


METHOD_KEYS = {  # the options of each method beside go2_ts's, which its Go2 config may set
    "go2_cts": {"teacher_fraction", "encoder_learning_rate", "num_encoder_epochs"},
    "go2_dreamwaq": {"latent_dim", "privilege_encoder_hidden_dims", "history_encoder_hidden_dims",
                     "history_encoder_type", "encoder_learning_rate", "num_encoder_epochs"},
}
DATA_KEYS = {"go2_dreamwaq": {"noise_free_policy"}}  # observation options a method adds to go2_ts's


@pytest.mark.parametrize("name", list(METHOD_KEYS))
def test_the_method_configs_train_the_go2_ts_task(name: str) -> None:
    ts = yaml.safe_load((REPO / "configs" / "go2_ts.yaml").read_text())
    other = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())
    added = DATA_KEYS.get(name, set())
    observations = other["data"]["env"]["init_args"]["observations"]
    assert all(observations.pop(key) is True for key in added)
    assert other["data"] == ts["data"] and other["seed_everything"] == ts["seed_everything"]
    phases = [c for c in ts["trainer"]["callbacks"] if c["class_path"] != "callbacks.DistillationPhase"]
    assert other["trainer"]["callbacks"] == phases
    shared = set(ts["model"]["init_args"]) - METHOD_KEYS[name]
    assert {k: other["model"]["init_args"].get(k) for k in shared} == {k: ts["model"]["init_args"][k] for k in shared}


def test_the_go2_dreamwaq_config_builds_on_the_go2() -> None:
    from leggedex.cli import LeggedexCLI
    from leggedex.methods import DreamWaQPPO

    cli = LeggedexCLI(args=["--config", str(REPO / "configs" / "go2_dreamwaq.yaml"), "--trainer.logger", "false",
                            "--data.env.init_args.backend.init_args.num_threads", "1"],
                      run=False, save_config_callback=None)
    env = cli.datamodule.env_factory(2, 0, "cpu")
    try:
        method = cli.model
        method.build(env.obs_spec)
    finally:
        env.close()
    assert isinstance(method, DreamWaQPPO) and method.obs_spec.groups["noise_free_policy"] == 45
    ac = method.actor_critic
    assert ac.actor[0].in_features == 45 + 16 + 3 and ac.decoder.out_dim == 45 and ac.estimator.in_dim == 900


REALISM_KEYS = {"joint_damping", "joint_friction", "armature_scale", "motor_strength", "action_latency_ms",
                "foot_solimp_dmin", "foot_solimp_width", "impratio", "elliptic_cone_share", "foot_torsional_friction"}


@pytest.mark.parametrize("layer", ["configs/go2_flat_realism.yaml", "docs/realism/ee_flat_realism.yaml"])
def test_a_realism_layer_keeps_go2_flats_events_and_adds_the_realism_ranges(layer: str) -> None:
    flat = yaml.safe_load((REPO / "configs" / "go2_flat.yaml").read_text())["data"]["env"]["init_args"]["events"]
    events = yaml.safe_load((REPO / layer).read_text())["data"]["env"]["init_args"]["events"]["terms"]
    physics = dict(events.pop("physics"))
    assert set(physics) - set(flat["terms"]["physics"]) == REALISM_KEYS
    assert {k: physics[k] for k in flat["terms"]["physics"]} == flat["terms"]["physics"]
    assert events.pop("imu_bias") == {"ang_vel": 0.05, "gravity": 0.02}
    assert events == {k: v for k, v in flat["terms"].items() if k != "physics"}
