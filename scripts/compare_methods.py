"""Several trained methods on the same evaluation episodes: the deployed policy of each (and the teacher of a
teacher-student method), by mean return, falls and tracking error, as a markdown table and JSON.

The episodes are those of ``compare_teacher_student.py``: one env set built from ``--env-config`` (default: the
first run's config) with one seed, every episode from step 0, one fixed command per env drawn from the config's
command ranges, no observation noise, no pushes, each env's return summed until its first episode ends.

    python scripts/compare_methods.py --run go2_ts configs/go2_ts.yaml <ts ckpt> \\
        --run go2_cts configs/go2_cts.yaml <cts ckpt> --run go2_dreamwaq configs/go2_dreamwaq.yaml <dwq ckpt>
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch
from compare_teacher_student import first_episode_returns, fixed_commands, locomotion_env

from leggedex.cli.checkpoint import check_policy_fits_env, load_method
from leggedex.cli.fit import LeggedexCLI
from leggedex.methods.base import NoTeacher, OnPolicyMethod


def policies(method: OnPolicyMethod) -> dict[str, Any]:
    chosen = {"deployed": method.deployed_policy()}
    try:
        chosen["teacher"] = method.teacher_policy()
    except NoTeacher:
        pass
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", nargs=3, action="append", required=True, metavar=("NAME", "CONFIG", "CKPT"))
    parser.add_argument("--env-config", help="the config whose env all runs are evaluated in (default: the first)")
    parser.add_argument("--num-envs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    env_config = args.env_config or args.run[0][1]
    env_cli = LeggedexCLI(args=["--config", env_config, "--trainer.logger", "false"], run=False,
                          save_config_callback=None)
    result: dict[str, dict[str, dict[str, float]]] = {}
    for name, config, ckpt in args.run:
        _, method = load_method(["--config", config], ckpt)
        result[name] = {}
        for role, policy in policies(method).items():
            env = locomotion_env(env_cli, args.num_envs, args.seed)
            try:
                check_policy_fits_env(method, env, ckpt)
                result[name][role] = first_episode_returns(env, policy, fixed_commands(env, args.seed))
            finally:
                env.close()
    lines = [f"{args.num_envs} robots, seed {args.seed}, env of {env_config}",
             "| run | policy | mean return | falls | error v_xy (m/s) | error yaw (rad/s) |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for name, roles in result.items():
        for role, row in roles.items():
            lines.append(f"| {name} | {role} | {row['mean_return']:.2f} | {100 * row['fall_fraction']:.1f}% "
                         f"| {row['error_lin_vel']:.3f} | {row['error_yaw']:.3f} |")
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            f.write(json.dumps({"env_config": env_config, "num_envs": args.num_envs, "seed": args.seed,
                                "runs": result}, indent=2) + "\n")


if __name__ == "__main__":
    main()
