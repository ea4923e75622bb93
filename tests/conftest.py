"""Shared fixtures: small seeded trainers on the point-mass task, and the teacher-student variants of both."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from lightning.pytorch import Callback, Trainer, seed_everything

from callbacks import IterationCheckpoint
from leggedex.data import OnPolicyDataModule
from leggedex.envs import PointMassReach
from leggedex.envs.vec_env import reset_after_step
from leggedex.methods import PPO, TeacherStudentPPO

REPO = Path(__file__).resolve().parent.parent
torch.set_num_threads(1)


def one_thread_backend(*args: Any, **kwargs: Any) -> Any:
    """The default CPU backend on one physics thread (tests keep thread counts explicit)."""
    from leggedex.envs.backends import MujocoBatchBackend

    return MujocoBatchBackend(*args, num_threads=1, **kwargs)
os.environ.setdefault("PYTHONHASHSEED", "0")

SMALL_PPO = dict(
    actor_hidden_dims=[32, 32],
    critic_hidden_dims=[32, 32],
    num_steps_per_env=8,
    num_learning_epochs=2,
    num_mini_batches=2,
    empirical_normalization=True,
)


def make_ppo(**overrides: Any) -> PPO:
    return PPO(**{**SMALL_PPO, **overrides})


QUICKSTART_TS: dict[str, Any] = yaml.safe_load((REPO / "configs" / "quickstart_ts.yaml").read_text())
TS_ENV: dict[str, Any] = QUICKSTART_TS["data"]["env"]["init_args"]  # the point mass with privileged and history
SMALL_TS: dict[str, Any] = dict(
    actor_hidden_dims=[32, 32], critic_hidden_dims=[32, 32], privilege_encoder_hidden_dims=[32],
    history_encoder_hidden_dims=[32], num_steps_per_env=8, num_learning_epochs=2, num_mini_batches=2,
    empirical_normalization=True,
)


def make_ts(**overrides: Any) -> TeacherStudentPPO:
    return TeacherStudentPPO(**{**SMALL_TS, **overrides})


def make_datamodule(num_envs: int = 16, env: Callable[..., Any] = PointMassReach,
                    **env_kwargs: Any) -> OnPolicyDataModule:
    factory = partial(env, **env_kwargs) if env_kwargs else env
    return OnPolicyDataModule(env=factory, num_envs=num_envs, seed=3)


def make_trainer(max_epochs: int, callbacks: list | None = None, **kwargs: Any) -> Trainer:
    defaults = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,  # one batch per iteration, as the CLI's default
    )
    defaults.update(kwargs)
    return Trainer(max_epochs=max_epochs, callbacks=callbacks or [], **defaults)


def ts_datamodule(num_envs: int = 16, **env_overrides: Any) -> OnPolicyDataModule:
    return make_datamodule(num_envs=num_envs, **{**TS_ENV, **env_overrides})


def flat_parameters(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()])


class MetricsRecorder(Callback):
    """What was logged, iteration by iteration."""

    def __init__(self) -> None:
        self.logged: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: Trainer, pl_module: Any) -> None:
        self.logged.append({k: float(v) for k, v in trainer.callback_metrics.items()})


def deterministic_return(policy: Callable[[dict[str, torch.Tensor]], torch.Tensor], num_envs: int = 256,
                         seed: int = 123) -> float:
    """Mean return of one full episode per env of the teacher-student point mass (~8: the goal held throughout)."""
    return episode_return(policy, num_envs, seed, **TS_ENV)


def ppo_return(ppo: PPO, seed: int = 123, num_envs: int = 64) -> float:
    """The same on the plain point mass, for a PPO policy on its ``policy`` group."""
    return episode_return(lambda obs: ppo.inference_policy(obs["policy"]), num_envs, seed)


def episode_return(policy: Callable[[dict[str, torch.Tensor]], torch.Tensor], num_envs: int, seed: int,
                   **env_options: Any) -> float:
    env = PointMassReach(num_envs, seed=seed, random_initial_episode_length=False, **env_options)
    total = torch.zeros(num_envs)
    alive = torch.ones(num_envs, dtype=torch.bool)
    with torch.inference_mode():
        obs = env.reset()
        for _ in range(env.max_episode_length):
            obs, rewards, dones, _ = env.step(policy(obs))
            reset_after_step(policy, dones)
            total += rewards * alive
            alive &= ~dones
    return float(total.mean())


def training_state(method: TeacherStudentPPO, trainer: Trainer) -> dict[str, Any]:
    """What an exact resume must restore: parameters, normalizer statistics, every optimizer, the scheduler, obs."""
    return {
        "params": flat_parameters(method),
        "buffers": {k: v.clone() for k, v in method.state_dict().items() if "normalizer" in k},
        "lr": [optimizer.param_groups[0]["lr"] for optimizer in trainer.optimizers],
        "adam": [[s[key].clone() for s in optimizer.state.values() for key in ("exp_avg", "exp_avg_sq")]
                 for optimizer in trainer.optimizers],
        "scheduler": trainer.lr_scheduler_configs[0].scheduler.state_dict(),
        "obs": dict(trainer.datamodule.obs),  # the env itself is closed after the fit
    }


def assert_same_training_state(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert torch.equal(a["params"], b["params"])
    assert a["buffers"].keys() == b["buffers"].keys()
    assert all(torch.equal(a["buffers"][k], b["buffers"][k]) for k in a["buffers"])
    assert a["lr"] == b["lr"]
    assert all(torch.equal(x, y) for xs, ys in zip(a["adam"], b["adam"]) for x, y in zip(xs, ys))
    assert [len(xs) for xs in a["adam"]] == [len(ys) for ys in b["adam"]]
    assert a["scheduler"] == b["scheduler"]
    assert a["obs"].keys() == b["obs"].keys() and all(torch.equal(a["obs"][k], b["obs"][k]) for k in a["obs"])


@pytest.fixture
def seeded() -> None:
    seed_everything(1, verbose=False)


def fit_with_checkpoints(method: Any, datamodule: OnPolicyDataModule, max_epochs: int, ckpt_dir: Path | None = None,
                         ckpt_path: str | None = None) -> Trainer:
    """Fit ``method`` for ``max_epochs`` (checkpoints every 4 iterations into ``ckpt_dir``, resuming from
    ``ckpt_path``): the runs that resume tests compare. Seed before building ``method`` and ``datamodule``."""
    callbacks = [IterationCheckpoint(every_n_iterations=4, dirpath=str(ckpt_dir))] if ckpt_dir else []
    trainer = make_trainer(max_epochs, callbacks=callbacks, enable_checkpointing=bool(ckpt_dir))
    trainer.fit(method, datamodule=datamodule, ckpt_path=ckpt_path)
    return trainer
