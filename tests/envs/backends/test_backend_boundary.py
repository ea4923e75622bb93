"""The simulator boundary: backends chosen in config, bad backends and devices named, the library importable without
MuJoCo, and a Go2 training run through ``leggedex fit`` on the Warp backend."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import pytest
import torch
import yaml

from leggedex.envs import LeggedLocomotion
from leggedex.envs.backends import SimBackend

from conftest import REPO, one_thread_backend

HAS_WARP = importlib.util.find_spec("mujoco_warp") is not None


def run_without(modules: list[str], code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter in which importing any of ``modules`` fails, as if not installed."""
    blocker = textwrap.dedent(f"""
        import importlib.abc, sys
        class Missing(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {modules!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        sys.meta_path.insert(0, Missing())
    """)
    return subprocess.run([sys.executable, "-c", blocker + textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=REPO, timeout=300)


def test_the_methods_and_the_datamodule_import_and_train_without_mujoco() -> None:
    done = run_without(["mujoco", "mujoco_warp", "warp"], """
        import sys
        import leggedex.methods, leggedex.data, leggedex.envs, leggedex.envs.backends
        from leggedex.envs import PointMassReach
        from leggedex.methods import PPO
        method = PPO(actor_hidden_dims=[8], critic_hidden_dims=[8], num_steps_per_env=4)
        env = PointMassReach(8, seed=0)
        method.build(env.obs_spec)
        print("ok", [m for m in ("mujoco", "warp") if m in sys.modules])
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok []"


@pytest.mark.parametrize("how", ["import", "config"])
def test_a_missing_warp_extra_names_the_install_command(how: str) -> None:
    code = {"import": "from leggedex.envs.backends import MujocoWarpBackend",
            "config": "from leggedex.cli import main; main(['fit', '--config', 'configs/go2_flat_gpu.yaml'])"}[how]
    done = run_without(["mujoco_warp", "warp"], code)
    assert done.returncode != 0
    assert 'pip install -e ".[warp]"' in done.stderr and "Python >= 3.11" in done.stderr


class HalfABackend(SimBackend):
    """Implements nothing of the contract."""

    def __init__(self, num_envs, robot, terrain, substeps) -> None:  # noqa: ANN001
        pass


def test_a_backend_that_does_not_implement_the_contract_is_named() -> None:
    with pytest.raises(TypeError, match=r"does not implement the SimBackend contract.*HalfABackend.*dof_names"):
        LeggedLocomotion(2, backend=HalfABackend)
    with pytest.raises(TypeError, match="must build a leggedex SimBackend.*got dict"):
        LeggedLocomotion(2, backend=lambda *args: {})


def test_the_backend_is_chosen_by_class_path_in_the_config(capsys) -> None:
    from leggedex.cli import main

    with pytest.raises(SystemExit):
        main(["fit", "--config", str(REPO / "configs" / "go2_flat.yaml"), "--data.env.init_args.backend",
              '{"class_path": "leggedex.envs.backends.MujocoBatchBackend", "init_args": {"num_threads": 1}}',
              "--print_config"])
    backend = yaml.safe_load(capsys.readouterr().out)["data"]["env"]["init_args"]["backend"]
    assert backend == {"class_path": "leggedex.envs.backends.MujocoBatchBackend",
                       "init_args": {"num_threads": 1, "device": "cpu", "actuation": "position",
                                     "torque_speed_curve": False}}


def test_the_task_runs_unchanged_on_another_backend_instance() -> None:
    env = LeggedLocomotion(4, seed=0, backend=one_thread_backend)
    with torch.inference_mode():
        obs = env.reset()
        for _ in range(3):
            obs, _, _, _ = env.step(torch.zeros(4, 12))
    assert obs["policy"].shape == (4, 45) and torch.isfinite(obs["policy"]).all()


@pytest.mark.skipif(not HAS_WARP, reason="needs the warp extra")
def test_a_go2_flat_fit_runs_on_the_warp_backend_and_resumes(tmp_path, monkeypatch) -> None:
    from leggedex.cli import RUN_STAMP_ENV, main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(RUN_STAMP_ENV, "2026-01-02_03-04-05")
    warp = '{"class_path": "leggedex.envs.backends.MujocoWarpBackend", "init_args": {"device": "cpu"}}'
    args = ["fit", "--config", str(REPO / "configs" / "go2_flat.yaml"), "--data.num_envs", "32",
            "--model.num_steps_per_env", "8", "--data.env.init_args.backend", warp, "--trainer.callbacks", "[]",
            "--trainer.callbacks+=callbacks.IterationCheckpoint", "--trainer.max_epochs", "3"]
    main(args)
    run = tmp_path / "logs" / "go2_flat" / "2026-01-02_03-04-05"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["data"]["env"]["init_args"]["backend"]["class_path"] == "leggedex.envs.backends.MujocoWarpBackend"
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["epoch"] == 3
    assert "site_xpos" in checkpoint["OnPolicyDataModule"]["ranks"][0]["env"]["sim"]  # the Warp backend's state
    monkeypatch.setenv(RUN_STAMP_ENV, "2026-01-02_03-04-06")
    main([*args[:-1], "5", "--ckpt_path", str(run / "checkpoints" / "last.ckpt")])


@pytest.mark.skipif(not HAS_WARP, reason="needs the warp extra")
def test_a_cuda_device_on_a_machine_without_one_stops_before_training(tmp_path, monkeypatch) -> None:
    import warp as wp

    from leggedex.cli import main

    if wp.get_cuda_device_count() > 0:
        pytest.skip("this machine has a GPU")
    monkeypatch.chdir(tmp_path)
    warp = '{"class_path": "leggedex.envs.backends.MujocoWarpBackend", "init_args": {"device": "cuda"}}'
    with pytest.raises(ValueError, match=r"device 'cuda:0' is not there.*device: cpu"):
        main(["fit", "--config", str(REPO / "configs" / "go2_flat.yaml"), "--data.num_envs", "8",
              "--data.env.init_args.backend", warp, "--trainer.max_epochs", "1"])
    assert not list(tmp_path.rglob("*.ckpt"))
