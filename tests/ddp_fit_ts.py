"""Helper of test_ddp_ts.py: fits a small TeacherStudentPPO under Lightning's DDP (gloo, CPU), ``SWITCH`` teacher
iterations and then distillation iterations (callbacks.DistillationPhase), in one fit.

    python tests/ddp_fit_ts.py --out DIR [--recurrent | --cts]

``--recurrent`` fits RecurrentTeacherStudentPPO (an LSTM student, backpropagation truncated at 3 steps) instead,
``--cts`` CTSPPO (each rank splits its own envs into teachers and students).

Lightning's strategy runs this command again for rank 1. Every rank writes ``DIR/rank<r>.pt``: its full state
after every iteration (every parameter and buffer, the frozen teacher's included, each optimizer's state and
learning rate, its torch RNG state and phase) and what was logged.
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import Any

import torch
from ddp_fit import ENV_SEED, NUM_ENVS, SEED, RecordingStats
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything

from callbacks import DistillationPhase
from leggedex.data import OnPolicyDataModule
from leggedex.envs import PointMassReach
from leggedex.methods import CTSPPO, RecurrentTeacherStudentPPO

from conftest import SMALL_TS, TS_ENV, make_trainer, make_ts

WORLD = 2
ITERATIONS = 4
SWITCH = 2  # iterations 0-1 train the teacher (PPO + encoder stage), 2-3 distill


class StateRecorder(Callback):
    def __init__(self) -> None:
        self.states: list[dict[str, Any]] = []

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.states.append({
            "phase": pl_module.phase,
            "state_dict": {k: v.clone() for k, v in pl_module.state_dict().items()},
            "adam": [[{k: v.clone() for k, v in s.items()} for s in optimizer.state.values()]
                     for optimizer in trainer.optimizers],
            "lr": [optimizer.param_groups[0]["lr"] for optimizer in trainer.optimizers],
            "rng": torch.get_rng_state(),
        })


def fit(out: Path, recurrent: bool = False, cts: bool = False) -> None:
    torch.set_num_threads(1)
    seed_everything(SEED, verbose=False)
    stats, states = RecordingStats(), StateRecorder()
    callbacks = [DistillationPhase(start_iteration=SWITCH, learning_rate=3e-3), stats, states]
    trainer = make_trainer(ITERATIONS, callbacks=callbacks, devices=WORLD, strategy="ddp_find_unused_parameters_true")
    datamodule = OnPolicyDataModule(env=partial(PointMassReach, **TS_ENV), num_envs=NUM_ENVS, seed=ENV_SEED)
    rates = dict(learning_rate=3e-3, encoder_learning_rate=3e-3)
    if recurrent:
        method = RecurrentTeacherStudentPPO(**SMALL_TS, **rates, rnn_hidden_size=8, truncation_steps=3)
    else:
        method = CTSPPO(**SMALL_TS, **rates) if cts else make_ts(**rates)
    trainer.fit(method, datamodule=datamodule)
    record = {"states": states.states, "logged": stats.logged, "world_size": trainer.world_size,
              "teacher_envs": getattr(method, "teacher_envs", None),
              "recurrent_states": {k: v.clone() for k, v in getattr(method, "states", {}).items()}}
    torch.save(record, out / f"rank{trainer.global_rank}.pt")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--recurrent", action="store_true", help="RecurrentTeacherStudentPPO (an LSTM student)")
    parser.add_argument("--cts", action="store_true", help="CTSPPO (concurrent teacher-student)")
    args = parser.parse_args()
    fit(args.out, args.recurrent, args.cts)


if __name__ == "__main__":
    main()
