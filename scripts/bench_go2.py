"""Go2 task throughput and memory on the MuJoCo CPU backend, side by side with raw physics.

For each number of envs, in a fresh subprocess (so peak memory is that size's alone):
- raw physics: ``mujoco.batch.Batch`` alone, 4 substeps per policy step (scripts/bench_physics.py's runner);
- task: ``LeggedLocomotion.step`` with the go2_flat settings (commands, rewards, pushes, domain randomization,
  resets, observations) and zero actions (joint targets at the home pose, as the raw runner's), measured
  interleaved with the raw runner so the ratio is fair on a busy machine; then the task again with random
  actions N(0, 0.5), where the physics itself works harder (robots stumble, more contacts);
- training: PPO iterations (collection with the policy + update, go2_flat's network and PPO settings);
- peak resident memory of the process.

    python scripts/bench_go2.py --num-envs 256 1024 4096 --seconds 4 --iterations 3
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

import torch

from leggedex.benchmark import interleaved, raw_batch_runner, task_runner
from leggedex.data import PlainLoop
from leggedex.envs import LeggedLocomotion
from leggedex.methods import PPO


def measure(num_envs: int, seconds: float, iterations: int, torch_threads: int) -> dict:
    torch.set_num_threads(1)  # while stepping, as OnPolicyDataModule(collection_threads=1) does in training
    result: dict = {"num_envs": num_envs}
    with torch.inference_mode():
        env = LeggedLocomotion(num_envs, seed=0)
        env.reset()
        raw, task = interleaved(raw_batch_runner(num_envs, False, 0, "home", 250), task_runner(env, 0.0), num_envs,
                                seconds, warmup=50)
        raw_random, task_random = interleaved(raw_batch_runner(num_envs, False, 0, "random", 250),
                                              task_runner(env, 0.5), num_envs, seconds, warmup=50)
    result.update(raw_steps_per_s=raw, task_steps_per_s=task, task_over_raw=task / raw,
                  task_random_steps_per_s=task_random, raw_random_steps_per_s=raw_random)

    method = PPO(actor_hidden_dims=[256, 128, 64], critic_hidden_dims=[256, 128, 64])
    loop = PlainLoop(env, method)
    loop.timed_iteration(1, torch_threads)  # warm-up
    times = [loop.timed_iteration(1, torch_threads) for _ in range(iterations)]
    steps = num_envs * method.num_steps_per_env
    result["train_steps_per_s"] = steps * len(times) / sum(total for _, total in times)
    result["collection_s"] = sum(c for c, _ in times) / len(times)
    result["update_s"] = sum(total - c for c, total in times) / len(times)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-envs", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per runner (raw and task)")
    parser.add_argument("--iterations", type=int, default=3, help="measured PPO iterations")
    parser.add_argument("--torch-threads", type=int, default=2, help="torch threads of the update")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child, args.seconds, args.iterations, args.torch_threads)))
        return
    print("| envs | raw physics steps/s | task steps/s | task / raw | task, random actions | raw, random targets "
          "| training steps/s | collection s | update s | peak memory MiB |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in args.num_envs:
        out = subprocess.run([sys.executable, __file__, "--child", str(n), "--seconds", str(args.seconds),
                              "--iterations", str(args.iterations), "--torch-threads", str(args.torch_threads)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {n} | {r['raw_steps_per_s']:.0f} | {r['task_steps_per_s']:.0f} | {r['task_over_raw']:.2f} "
              f"| {r['task_random_steps_per_s']:.0f} | {r['raw_random_steps_per_s']:.0f} "
              f"| {r['train_steps_per_s']:.0f} | {r['collection_s']:.2f} | {r['update_s']:.2f} "
              f"| {r['peak_rss_mib']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
