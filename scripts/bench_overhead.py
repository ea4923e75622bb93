"""What does Lightning cost per PPO iteration? The Trainer against a plain PyTorch loop, side by side.

Both run the same code (``collect_rollout`` + ``PPO.learn``) with the same seed on the point-mass task, one
torch thread, and alternate in blocks so that machine noise hits both alike. Reports the median wall time
per iteration (first iterations dropped as warm-up), the ratio, and whether both ended with identical weights.

    python scripts/bench_overhead.py --num-envs 64 1024 --iterations 30 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from lightning.pytorch import Callback, Trainer, seed_everything

from callbacks import EpisodeStatsLogger
from leggedex.data import OnPolicyDataModule, PlainLoop
from leggedex.envs import PointMassReach
from leggedex.methods import PPO

SEED = 1
WARMUP = 3


def make_method() -> PPO:
    return PPO(actor_hidden_dims=[256, 128, 64], critic_hidden_dims=[256, 128, 64], empirical_normalization=True)


def plain_loop(num_envs: int, iterations: int) -> tuple[list[float], torch.Tensor]:
    seed_everything(SEED, verbose=False)
    method = make_method()
    loop = PlainLoop(PointMassReach(num_envs, seed=SEED), method)
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        loop.learn(loop.collect())
        times.append(time.perf_counter() - start)
    return times, torch.cat([p.detach().flatten() for p in method.parameters()])


class EpochTimer(Callback):
    def __init__(self) -> None:
        self.starts: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.starts.append(time.perf_counter())

    def on_train_end(self, trainer, pl_module) -> None:
        self.starts.append(time.perf_counter())

    def times(self) -> list[float]:
        return [b - a for a, b in zip(self.starts, self.starts[1:])]


def lightning_loop(num_envs: int, iterations: int, with_stats: bool) -> tuple[list[float], torch.Tensor]:
    seed_everything(SEED, verbose=False)
    timer = EpochTimer()
    callbacks = [timer, EpisodeStatsLogger()] if with_stats else [timer]
    trainer = Trainer(
        max_epochs=iterations, accelerator="cpu", devices=1, logger=False, callbacks=callbacks,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    method = make_method()
    trainer.fit(method, datamodule=OnPolicyDataModule(env=PointMassReach, num_envs=num_envs, seed=SEED))
    return timer.times(), torch.cat([p.detach().flatten() for p in method.parameters()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-envs", type=int, nargs="+", default=[64, 1024])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3, help="alternating plain / Lightning blocks")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    print(f"torch threads {args.threads}, {args.iterations} iterations x {args.rounds} rounds, median ms/iteration")
    print("| envs | plain loop | Lightning Trainer | ratio | Trainer + stats logging | ratio | same weights |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | :---: |")
    for num_envs in args.num_envs:
        runs: dict[str, list[float]] = {"plain": [], "trainer": [], "stats": []}
        same = True
        for _ in range(args.rounds):
            plain_times, plain_params = plain_loop(num_envs, args.iterations)
            trainer_times, trainer_params = lightning_loop(num_envs, args.iterations, with_stats=False)
            stats_times, _ = lightning_loop(num_envs, args.iterations, with_stats=True)
            runs["plain"] += plain_times[WARMUP:]
            runs["trainer"] += trainer_times[WARMUP:]
            runs["stats"] += stats_times[WARMUP:]
            same &= torch.equal(plain_params, trainer_params)
        med = {key: statistics.median(values) * 1000 for key, values in runs.items()}
        print(
            f"| {num_envs} | {med['plain']:.1f} | {med['trainer']:.1f} | {med['trainer'] / med['plain']:.3f} "
            f"| {med['stats']:.1f} | {med['stats'] / med['plain']:.3f} | {'yes' if same else 'NO'} |"
        )


if __name__ == "__main__":
    main()
