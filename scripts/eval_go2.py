"""Evaluate a trained locomotion checkpoint with the deterministic policy and print a markdown table.

    python scripts/eval_go2.py --config configs/go2_flat.yaml --ckpt_path logs/go2_flat/<run>/checkpoints/last.ckpt \
        --num-envs 600 --duration 10 --json eval.json

The env is built from the config's ``data.env`` (same task, same robot), with no observation noise and no pushes;
domain randomization stays as configured. Each command is held by ``num_envs / len(commands)`` robots.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from lightning.pytorch.cli import LightningCLI

from leggedex.cli import LeggedexCLI
from leggedex.envs.locomotion.evaluation import DEFAULT_COMMANDS, evaluate_locomotion


def load(config: str, ckpt_path: str) -> tuple[LightningCLI, torch.nn.Module]:
    cli = LeggedexCLI(args=["--config", config, "--trainer.logger", "false"], run=False, save_config_callback=None)
    method = type(cli.model).load_from_checkpoint(ckpt_path, map_location="cpu")
    method.eval()
    return cli, method


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--ckpt_path", required=True)
    parser.add_argument("--num-envs", type=int, default=600)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--settle", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)

    cli, method = load(args.config, args.ckpt_path)
    env = cli.datamodule.env_factory(args.num_envs, args.seed, "cpu", random_initial_episode_length=False)
    groups = method.policy_inputs()
    results = evaluate_locomotion(env, lambda obs: method.inference_policy(*(obs[g] for g in groups)),
                                  DEFAULT_COMMANDS, args.duration, args.settle)
    per = args.num_envs // len(DEFAULT_COMMANDS)
    print(f"{per} robots per command, {args.duration:.0f} s, velocity averaged after {args.settle:.0f} s")
    print("| command (vx, vy, yaw) | error vx | error vy | error yaw | falls | base height median | "
          "non-foot contact | least-lifted foot in air |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for command, (name, row) in zip(DEFAULT_COMMANDS, results.items()):
        print(f"| {command} | {row['error_vx']:.3f} | {row['error_vy']:.3f} | {row['error_yaw']:.3f} "
              f"| {100 * row['fall_rate']:.1f}% | {row['base_height_median']:.3f} m "
              f"| {100 * row['body_contact_fraction']:.1f}% | {100 * row['min_foot_air_fraction']:.0f}% |")
    if args.json:
        args.json.write_text(json.dumps({"checkpoint": args.ckpt_path, "commands": results}, indent=2))


if __name__ == "__main__":
    main()
