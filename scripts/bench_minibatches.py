"""What serving one update's mini-batches costs, per shuffle, on a config's own rollout storage.

The method and env are built as ``leggedex fit`` builds them; the storage (filled with random numbers: only the
copying is timed) is then served for the config's epochs and mini-batches with each shuffle, alternating, and the
median time per update is printed. ``once`` gathers the rollout a single time and slices it every pass;
``every_epoch`` gathers each mini-batch anew. The cost is the mini-batch copying only, which
``scripts/bench_update.py`` cannot resolve beside the update's noise.

    python scripts/bench_minibatches.py --config configs/go2_flat.yaml --num-envs 1024 --threads 2 --rounds 15
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from leggedex.cli.fit import LeggedexCLI
from leggedex.data import PlainLoop
from leggedex.storage.rollout import SHUFFLES, RolloutStorage


def serve_seconds(storage: RolloutStorage, num_mini_batches: int, num_epochs: int, shuffle: str) -> float:
    start = time.perf_counter()
    for _ in storage.mini_batches(num_mini_batches, num_epochs, shuffle=shuffle):  # type: ignore[arg-type]
        pass
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--num-envs", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    cli = LeggedexCLI(args=["--config", args.config, "--trainer.logger", "false"], run=False, save_config_callback=None)
    env = cli.datamodule.evaluation_env(args.num_envs, seed=0)
    method = PlainLoop(env, cli.model).method
    storage, hp = method.storage, method.hparams
    generator = torch.Generator().manual_seed(0)
    for tensor in (*storage.obs.values(), storage.actions, storage.values, storage.advantages, storage.returns,
                   storage.log_probs, storage.action_mean, storage.action_std):
        tensor.copy_(torch.randn(tensor.shape, generator=generator))

    times: dict[str, list[float]] = {shuffle: [] for shuffle in SHUFFLES}
    for shuffle in SHUFFLES:  # untimed: first-call costs
        serve_seconds(storage, hp.num_mini_batches, hp.num_learning_epochs, shuffle)
    for _ in range(args.rounds):
        for shuffle in SHUFFLES:
            times[shuffle].append(serve_seconds(storage, hp.num_mini_batches, hp.num_learning_epochs, shuffle))
    groups = {name: tensor.shape[-1] for name, tensor in storage.obs.items()}
    print(f"{args.config}: {args.num_envs} envs x {storage.num_steps} steps, groups {groups}, "
          f"{hp.num_learning_epochs} epochs x {hp.num_mini_batches} mini-batches, {args.threads} threads, "
          f"median of {args.rounds} rounds")
    for shuffle, values in times.items():
        print(f"  {shuffle}: {statistics.median(values) * 1e3:.1f} ms per update")


if __name__ == "__main__":
    main()
