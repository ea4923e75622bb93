"""Shared fixtures: small seeded trainers on the point-mass task."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import Trainer, seed_everything

from leggedex.data import OnPolicyDataModule
from leggedex.envs import PointMassReach
from leggedex.methods import PPO

REPO = Path(__file__).resolve().parent.parent
torch.set_num_threads(1)
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


def make_datamodule(num_envs: int = 16, env: Callable[..., Any] = PointMassReach, **env_kwargs: Any) -> OnPolicyDataModule:
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
    )
    defaults.update(kwargs)
    return Trainer(max_epochs=max_epochs, callbacks=callbacks or [], **defaults)


def flat_parameters(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()])


@pytest.fixture
def seeded() -> None:
    seed_everything(1, verbose=False)
