"""Helper of test_ddp.py: fits a small PPO on CPU, under Lightning's DDP (gloo) when ``--devices`` > 1.

    python tests/ddp_fit.py --out DIR --devices 2 --iterations 4 [--ckpt_path CKPT]

Lightning's ``ddp`` strategy runs this command again for rank 1. Every rank writes ``DIR/rank<r>.pt``: its state
at the start and at the end of the fit and what was logged each iteration; checkpoints go to
``DIR/checkpoints`` every ``CHECKPOINT_EVERY`` iterations. ``fit`` also runs in-process for one rank.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything

from callbacks import EpisodeStatsLogger, IterationCheckpoint
from leggedex.data import OnPolicyDataModule
from leggedex.envs import PointMassReach
from leggedex.methods import PPO, RecurrentPPO

from conftest import SMALL_PPO, flat_parameters, make_trainer

SEED = 5  # seed_everything: rank r samples actions with torch seeded SEED + r
ENV_SEED = 10  # the env of rank r gets ENV_SEED + r
NUM_ENVS = 16
CHECKPOINT_EVERY = 2


def make_method(**overrides: Any) -> PPO:
    # desired_kl: some mini-batch KLs of the two ranks fall on both sides of 2 x desired_kl, so a learning rate
    # adapted to a rank's own KL instead of the rank average would differ between ranks
    return PPO(**{**SMALL_PPO, "learning_rate": 3e-3, "desired_kl": 0.012, **overrides})


def rank_dependent_env(num_envs: int, seed: int, device: str) -> PointMassReach:
    """Rank 0 (even seed): 10-step episodes. Rank 1 (odd): every episode lasts exactly 24 steps and never leaves
    the arena, so with 8 steps per iteration it finishes episodes only in its third iteration."""
    if seed % 2 == 0:
        return PointMassReach(num_envs, seed, device, episode_length_s=0.5)
    return PointMassReach(num_envs, seed, device, episode_length_s=1.2, arena_size=100.0,
                          random_initial_episode_length=False)


def env_state(datamodule: OnPolicyDataModule) -> dict[str, Any]:
    return {"env": datamodule.env.state_dict(), "obs": {k: v.clone() for k, v in datamodule.obs.items()},
            "tracker": datamodule.tracker.state_dict()}


class Recorder(Callback):
    """The state each rank starts and ends the fit with."""

    def __init__(self) -> None:
        self.record: dict[str, Any] = {}

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.record["start"] = {"params": flat_parameters(pl_module), "rng": torch.get_rng_state(),
                                **env_state(trainer.datamodule)}

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        optimizer = trainer.optimizers[0]
        self.record["end"] = {
            "params": flat_parameters(pl_module),
            "normalizers": {k: v.clone() for k, v in pl_module.state_dict().items() if "normalizer" in k},
            "lr": optimizer.param_groups[0]["lr"],
            "adam": [{k: v.clone() for k, v in optimizer.state[p].items()} for p in pl_module.parameters()],
            "rng": torch.get_rng_state(),
            **env_state(trainer.datamodule),
        }


class RecordingStats(EpisodeStatsLogger):
    """Also records the reduced step count that Perf/total_fps divides by the iteration time."""

    def __init__(self) -> None:
        super().__init__()
        self.logged: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        total_steps = float(self.env_steps.compute())  # synced and cached: super() logs with this very value
        super().on_train_epoch_end(trainer, pl_module)
        self.logged.append({"total_steps": total_steps, **{k: float(v) for k, v in trainer.callback_metrics.items()}})


SYMMETRY = {"symmetry_augmentation": True, "symmetry_loss_coef": 0.5}


def fit(out: Path, devices: int, iterations: int, ckpt_path: str | None = None,
        symmetry: bool = False, recurrent: bool = False) -> dict[str, Any]:
    torch.set_num_threads(1)
    seed_everything(SEED, verbose=False)
    stats, recorder = RecordingStats(), Recorder()
    checkpoint = IterationCheckpoint(every_n_iterations=CHECKPOINT_EVERY, last_every_n_iterations=1000,
                                     dirpath=str(out / "checkpoints"))
    trainer = make_trainer(iterations, callbacks=[stats, recorder, checkpoint], devices=devices,
                           strategy="ddp" if devices > 1 else "auto", enable_checkpointing=True)
    datamodule = OnPolicyDataModule(env=rank_dependent_env, num_envs=NUM_ENVS, seed=ENV_SEED)
    method = (RecurrentPPO(**{**SMALL_PPO, "learning_rate": 3e-3, "rnn_hidden_size": 8, "critic_recurrent": True})
              if recurrent else make_method(**(SYMMETRY if symmetry else {})))
    trainer.fit(method, datamodule=datamodule, ckpt_path=ckpt_path)
    record = {**recorder.record, "logged": stats.logged, "world_size": trainer.world_size}
    if recurrent:
        record["states"] = {name: state.clone() for name, state in method.states.items()}
    torch.save(record, out / f"rank{trainer.global_rank}.pt")
    return record


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--ckpt_path", type=str, default=None)
    parser.add_argument("--symmetry", action="store_true", help="PPO with mirrored samples and the mirror loss")
    parser.add_argument("--recurrent", action="store_true", help="RecurrentPPO (LSTM actor and critic)")
    args = parser.parse_args()
    fit(args.out, args.devices, args.iterations, args.ckpt_path, args.symmetry, args.recurrent)


if __name__ == "__main__":
    main()
