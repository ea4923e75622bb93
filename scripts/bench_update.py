"""Time per training iteration (collection and update) of methods side by side, each on the env of its own config.

Every config's method and env are built as ``leggedex fit`` builds them (its seed, its env at ``--num-envs``), then
driven by ``PlainLoop.timed_iteration`` with training's thread split (1 torch thread while collecting,
``--update-threads`` in the update). The configs alternate in rounds of ``--iterations`` iterations so that machine
load hits all alike; the table gives the median seconds per iteration and the ratios to the first config.

    python scripts/bench_update.py --configs configs/go2_flat.yaml configs/go2_flat_rnn.yaml --num-envs 1024 \\
        --iterations 3 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from leggedex.cli.fit import LeggedexCLI
from leggedex.data import PlainLoop


def build_loop(config: str, num_envs: int) -> PlainLoop:
    cli = LeggedexCLI(args=["--config", config, "--trainer.logger", "false"], run=False, save_config_callback=None)
    env = cli.datamodule.evaluation_env(num_envs, seed=cli.config.get("seed_everything") or 0, spread_start=True)
    return PlainLoop(env, cli.model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", required=True)
    parser.add_argument("--num-envs", type=int, default=1024)
    parser.add_argument("--iterations", type=int, default=3, help="iterations per config and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--update-threads", type=int, default=2)
    args = parser.parse_args()

    loops = {config: build_loop(config, args.num_envs) for config in args.configs}
    times: dict[str, list[tuple[float, float]]] = {config: [] for config in args.configs}
    for loop in loops.values():  # one untimed iteration each: allocations, first-call costs
        loop.timed_iteration(1, args.update_threads)
    for _ in range(args.rounds):
        for config, loop in loops.items():
            for _ in range(args.iterations):
                collected, total = loop.timed_iteration(1, args.update_threads)
                times[config].append((collected, total - collected))
    torch.set_num_threads(args.update_threads)

    first = args.configs[0]
    medians = {c: (statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts)) for c, ts in times.items()}
    print(f"{args.num_envs} envs, {args.rounds} rounds x {args.iterations} iterations per config, median seconds per "
          f"iteration (1 torch thread collecting, {args.update_threads} updating)")
    print("| config | method | collection s | update s | iteration s | update / first's | iteration / first's |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for config, (collect, update) in medians.items():
        method = type(loops[config].method).__name__
        print(f"| {Path(config).name} | {method} | {collect:.2f} | {update:.2f} | {collect + update:.2f} | "
              f"{update / medians[first][1]:.2f} | {(collect + update) / sum(medians[first]):.2f} |")


if __name__ == "__main__":
    main()
