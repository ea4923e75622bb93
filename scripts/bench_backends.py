"""Every installed backend side by side on the Go2 task: raw physics, the full task and end-to-end PPO training, in
env-steps per second (worlds x policy steps / wall second), with peak memory, at several numbers of envs.

Backends: ``batch`` (MujocoBatchBackend, CPU thread pool), ``warp-cpu`` (MujocoWarpBackend on Warp's CPU device),
``warp-cuda`` (MujocoWarpBackend on the GPU, when there is one). Each measurement runs in a fresh subprocess, so its
peak memory is its own: resident memory (CPU) or device memory in use (GPU, Warp's and torch's together).
- physics: ``set_dof_targets`` + ``step`` (4 substeps) with targets home + 0.25 * N(0, 0.5) resampled every step;
- task: ``LeggedLocomotion.step`` with the same random actions (commands, rewards, pushes, domain randomization,
  resets, observations); ``--task rough`` adds the curriculum heightfield and the critic's height scan;
- training: PPO iterations (collection with the policy + update; go2_flat's networks on CPU, go2_flat_gpu's on a
  GPU), the first iteration not measured.

    python scripts/bench_backends.py                                   # every backend, CPU sizes 256 1024 4096
    python scripts/bench_backends.py --backends batch warp-cpu --num-envs 256 1024 --seconds 3
    python scripts/bench_backends.py --backends warp-cuda --num-envs 4096 8192 16384 [--task rough]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
from collections.abc import Callable

import torch

from leggedex.benchmark import timed
from leggedex.data import PlainLoop
from leggedex.envs import LeggedLocomotion, TerrainConfig
from leggedex.envs.locomotion.config import ObservationConfig
from leggedex.methods import PPO

CPU_SIZES, GPU_SIZES = [256, 1024, 4096], [4096, 8192, 16384]


def available_backends() -> list[str]:
    names = ["batch"]
    if importlib.util.find_spec("mujoco_warp") is not None:
        names.append("warp-cpu")
        import warp as wp

        if wp.get_cuda_device_count() > 0 and torch.cuda.is_available():
            names.append("warp-cuda")
    return names


def backend_factory(name: str, threads: int) -> Callable:
    from leggedex.envs.backends import MujocoBatchBackend, MujocoWarpBackend

    if name == "batch":
        return lambda *args: MujocoBatchBackend(*args, num_threads=threads)
    device = "cpu" if name == "warp-cpu" else "cuda"
    return lambda *args: MujocoWarpBackend(*args, device=device)


def make_env(name: str, num_envs: int, task: str, threads: int) -> LeggedLocomotion:
    rough = task == "rough"
    return LeggedLocomotion(
        num_envs, seed=0, backend=backend_factory(name, threads),
        terrain=TerrainConfig(border=5.0, max_init_level=2) if rough else None,
        observations=ObservationConfig(height_scan=rough, critic_privileged=rough))


def measure(name: str, num_envs: int, task: str, seconds: float, iterations: int, threads: int) -> dict:
    torch.set_num_threads(1)  # while stepping, as OnPolicyDataModule(collection_threads=1) does in training
    env = make_env(name, num_envs, task, threads)
    device, sim = env.device, env.sim
    gen = torch.Generator(device=device).manual_seed(0)
    actions = torch.zeros(num_envs, env.num_actions, device=device)
    default = sim.default_dof_pos.to(device)

    def physics() -> None:
        torch.randn(actions.shape, generator=gen, out=actions, device=device)
        sim.set_dof_targets(default + 0.25 * 0.5 * actions)
        sim.step()

    def task_step() -> None:
        torch.randn(actions.shape, generator=gen, out=actions, device=device)
        env.step(0.5 * actions)

    result: dict = {"backend": name, "num_envs": num_envs, "task": task}
    with torch.inference_mode():
        env.reset()
        result["physics"] = num_envs * timed(physics, device, seconds, warmup=25)
        result["task"] = num_envs * timed(task_step, device, seconds, warmup=25)
    gpu = device.type == "cuda"
    dims = [512, 256, 128] if gpu else [256, 128, 64]
    method = PPO(actor_hidden_dims=dims, critic_hidden_dims=dims)
    loop = PlainLoop(env, method)
    loop.timed_iteration(1, threads)  # warm-up
    times = [loop.timed_iteration(1, threads)[1] for _ in range(iterations)]
    result["training"] = num_envs * method.num_steps_per_env * len(times) / sum(times)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if gpu:
        free, total = torch.cuda.mem_get_info(device)
        result["device_mib"] = (total - free) / 2**20
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", choices=["batch", "warp-cpu", "warp-cuda"],
                        help="default: every installed one")
    parser.add_argument("--num-envs", type=int, nargs="+",
                        help=f"default: {CPU_SIZES} on CPU backends, {GPU_SIZES} on the GPU")
    parser.add_argument("--task", choices=["flat", "rough"], default="flat")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds for physics and for the task")
    parser.add_argument("--iterations", type=int, default=2, help="measured PPO iterations")
    parser.add_argument("--threads", type=int, default=2, help="physics threads (batch) and update threads")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--child", nargs=2, metavar=("BACKEND", "NUM_ENVS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        name, n = args.child
        print(json.dumps(measure(name, int(n), args.task, args.seconds, args.iterations, args.threads)))
        return
    backends = args.backends or available_backends()
    missing = sorted(set(backends) - set(available_backends()))
    if missing:
        raise SystemExit(f"not installed or no device here: {missing} (the warp backends need "
                         "pip install -e \".[warp]\"; warp-cuda a GPU and a CUDA build of torch)")
    print(f"task: {args.task}; env-steps/s (worlds x policy steps per second); {args.threads} threads")
    print("| backend | envs | physics | task | training | peak RSS MiB | GPU memory MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    rows = []
    for name in backends:
        for n in args.num_envs or (GPU_SIZES if name == "warp-cuda" else CPU_SIZES):
            out = subprocess.run([sys.executable, __file__, "--child", name, str(n), "--task", args.task,
                                  "--seconds", str(args.seconds), "--iterations", str(args.iterations),
                                  "--threads", str(args.threads)], capture_output=True, text=True)
            if out.returncode != 0:
                print(f"| {name} | {n} | failed: {out.stderr.strip().splitlines()[-1]} | | | | |", flush=True)
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(r)
            gpu_mib = f"{r['device_mib']:.0f}" if "device_mib" in r else "-"
            print(f"| {name} | {n} | {r['physics']:.0f} | {r['task']:.0f} | {r['training']:.0f} "
                  f"| {r['peak_rss_mib']:.0f} | {gpu_mib} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
