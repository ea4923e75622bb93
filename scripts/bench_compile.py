"""Does ``torch.compile`` shorten the PPO update on the CPU? One mini-batch's forward and backward through an actor
and a critic of go2_ts's sizes, eager against compiled, in alternating rounds (the median of each).

    python scripts/bench_compile.py --threads 2 --batch 6144 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from leggedex.modules.mlp import MLP


def seconds_per_step(networks: list[nn.Module], batches: list[torch.Tensor], steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        sum(net(x).square().mean() for net, x in zip(networks, batches)).backward()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=6144, help="samples per mini-batch (go2_ts: 24576 / 4)")
    parser.add_argument("--critic-inputs", type=int, default=860)
    parser.add_argument("--actor-inputs", type=int, default=139, help="policy 45 + privileged latent 94")
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 128, 64])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="mini-batch steps per round")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    eager: list[nn.Module] = [MLP(args.critic_inputs, 1, args.hidden), MLP(args.actor_inputs, 12, args.hidden)]
    compiled = [torch.compile(net) for net in eager]
    batches = [torch.randn(args.batch, args.critic_inputs), torch.randn(args.batch, args.actor_inputs)]
    start = time.perf_counter()
    seconds_per_step(compiled, batches, 1)
    print(f"compiling took {time.perf_counter() - start:.1f} s")
    seconds_per_step(eager, batches, 3)  # warm-up
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for _ in range(args.rounds):
        times["eager"].append(seconds_per_step(eager, batches, args.steps))
        times["compiled"].append(seconds_per_step(compiled, batches, args.steps))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"{args.threads} threads, {args.batch} samples, forward + backward of critic and actor, "
          f"median of {args.rounds} rounds x {args.steps} steps")
    for name, value in medians.items():
        print(f"{name}: {1e3 * value:.1f} ms per mini-batch ({value / medians['eager']:.2f} of eager)")


if __name__ == "__main__":
    main()
