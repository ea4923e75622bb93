"""What actuator realism costs: go2_flat task env-steps/s with each realism setting beside the nominal task,
measured interleaved in one process (so the ratios hold on a busy machine).

Settings: the physics ranges of ``events.terms.physics`` that the sim2real section of the README trains with,
one at a time and all together (plus the IMU bias).

    python scripts/bench_realism.py --num-envs 1024 --seconds 6 --threads 0
"""

from __future__ import annotations

import argparse
import json

import torch

from leggedex.benchmark import interleaved, task_runner
from leggedex.envs import LeggedLocomotion
from leggedex.envs.backends import MujocoBatchBackend
from leggedex.envs.locomotion.config import EventConfig

REALISM = {"joint_damping": [0.1, 2.0], "joint_friction": [0.0, 0.3], "armature_scale": [0.5, 2.0],
           "motor_strength": [0.9, 1.1], "action_latency_ms": [0.0, 20.0]}


def make_env(num_envs: int, threads: int, physics: dict, imu_bias: bool = False) -> LeggedLocomotion:
    terms = dict(EventConfig().terms)
    terms["physics"] = {**terms["physics"], **physics}
    if imu_bias:
        terms["imu_bias"] = {"ang_vel": 0.05, "gravity": 0.02}
    return LeggedLocomotion(num_envs, seed=0, events=EventConfig(terms=terms),
                            backend=lambda *a: MujocoBatchBackend(*a, num_threads=threads))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-envs", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=6.0, help="measured seconds per runner")
    parser.add_argument("--threads", type=int, default=0, help="physics threads (0: all cores)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    settings = {name: {name: bounds} for name, bounds in REALISM.items()}
    settings["all (+ IMU bias)"] = dict(REALISM)
    rows = {}
    with torch.inference_mode():
        nominal = make_env(args.num_envs, args.threads, {})
        nominal.reset()
        for label, physics in settings.items():
            env = make_env(args.num_envs, args.threads, physics, imu_bias=label.startswith("all"))
            env.reset()
            base, other = interleaved(task_runner(nominal, 0.3), task_runner(env, 0.3), args.num_envs,
                                      args.seconds, warmup=50)
            rows[label] = {"nominal_steps_per_s": base, "steps_per_s": other, "ratio": other / base}
            print(f"| {label} | {base:,.0f} | {other:,.0f} | {other / base:.2f} |", flush=True)
            env.close()
    print(json.dumps({"num_envs": args.num_envs, "threads": args.threads, "rows": rows}))


if __name__ == "__main__":
    main()
