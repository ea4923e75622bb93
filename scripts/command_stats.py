"""How often a command config asks for a turn: the share of control steps whose yaw-rate command is at least
``--min_yaw`` rad/s, and of those with a planar command below ``--in_place`` m/s (turns in place), for each
``heading_share``, with robots that follow their yaw-rate command exactly (VelocityCommands alone, no physics).

    python scripts/command_stats.py --config configs/go2_ts.yaml --heading_share 1.0 0.5
"""

from __future__ import annotations

import argparse

import torch
import yaml

from leggedex.envs.locomotion.commands import VelocityCommands
from leggedex.envs.locomotion.config import CommandsConfig


def turn_shares(cfg: CommandsConfig, num_envs: int, seconds: float, dt: float, min_yaw: float,
                in_place: float) -> tuple[float, float]:
    commands = VelocityCommands(cfg, num_envs, torch.device("cpu"), torch.Generator().manual_seed(0))
    commands.resample(torch.arange(num_envs))
    yaw = torch.zeros(num_envs)
    turning = in_place_turns = 0.0
    steps = int(seconds / dt)
    for _ in range(steps):
        commands.update_heading(yaw)
        rate = commands.command[:, 2]
        yaw = yaw + dt * rate
        turn = rate.abs() >= min_yaw
        turning += float(turn.float().mean())
        in_place_turns += float((turn & (commands.command[:, :2].norm(dim=1) < in_place)).float().mean())
    return turning / steps, in_place_turns / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="training config whose data.env.init_args.commands is used")
    parser.add_argument("--heading_share", type=float, nargs="+", default=[1.0, 0.5])
    parser.add_argument("--num_envs", type=int, default=4000)
    parser.add_argument("--min_yaw", type=float, default=0.4)
    parser.add_argument("--in_place", type=float, default=0.2)
    parser.add_argument("--dt", type=float, default=0.02, help="control period, s")
    args = parser.parse_args()
    section = yaml.safe_load(open(args.config))["data"]["env"]["init_args"].get("commands", {})
    keys = {k: tuple(v) if isinstance(v, list) else v for k, v in section.items()}
    print("| heading_share | steps with abs(yaw command) >= min_yaw | in place: also planar command < in_place |")
    print("| ---: | ---: | ---: |")
    for share in args.heading_share:
        cfg = CommandsConfig(**{**keys, "heading_share": share})
        # one command per robot for the resampling time: what a robot is asked between two resamplings
        turning, in_place = turn_shares(cfg, args.num_envs, cfg.resampling_time_s, args.dt, args.min_yaw,
                                        args.in_place)
        print(f"| {share} | {turning:.1%} | {in_place:.1%} |")


if __name__ == "__main__":
    main()
