"""Teacher against student on the same evaluation episodes: mean return of each, and their ratio.

The teacher is ``method.teacher_policy()`` (the policy PPO trains, on the privileged group; after a distillation
phase started, the frozen teacher copy); the student is the deployed policy (``method.inference_policy`` on
``policy_inputs()``). Both run the same episodes: one env set built from the config with one seed, every episode
starting at step 0, one fixed command per env drawn from the config's command ranges, no observation noise and no
pushes. Each env's return is summed until its first episode ends (a fall ends it early); the tracking errors are
the mean over those steps of |v_xy - command_xy| (m/s, body frame) and |yaw rate - command| (rad/s).

    python scripts/compare_teacher_student.py --config configs/go2_ts.yaml --ckpt logs/go2_ts/<run>/last.ckpt
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch

from leggedex.cli.checkpoint import build_env, check_policy_fits_env, load_method
from leggedex.cli.play import Policy
from leggedex.envs.locomotion.env import LeggedLocomotion
from leggedex.envs.vec_env import reset_after_step


def locomotion_env(cli: Any, num_envs: int, seed: int) -> LeggedLocomotion:
    env = build_env(cli, num_envs, seed)
    if not isinstance(env, LeggedLocomotion):
        raise SystemExit(f"this comparison needs a velocity-tracking env (LeggedLocomotion), got {type(env).__name__}")
    return env


def fixed_commands(env: LeggedLocomotion, seed: int) -> torch.Tensor:
    cfg = env.command_cfg
    gen = torch.Generator().manual_seed(seed)
    columns = []
    for low, high in (cfg.lin_vel_x, cfg.lin_vel_y, cfg.ang_vel_yaw):
        columns.append(low + (high - low) * torch.rand(env.num_envs, generator=gen))
    return torch.stack(columns, dim=1)


@torch.inference_mode()
def first_episode_returns(env: LeggedLocomotion, policy: Policy, commands: torch.Tensor) -> dict[str, float]:
    env.set_evaluation_commands(commands)
    try:
        obs = env.reset()
        returns = torch.zeros(env.num_envs)
        running = torch.ones(env.num_envs, dtype=torch.bool)
        fell = torch.zeros(env.num_envs, dtype=torch.bool)
        errors, steps = torch.zeros(env.num_envs, 2), torch.zeros(env.num_envs)
        for _ in range(env.max_episode_length):
            obs, rewards, dones, extras = env.step(policy(obs))
            reset_after_step(policy, dones)
            returns += rewards * running
            lin = (env.base_lin_vel[:, :2] - commands[:, :2]).norm(dim=1)
            yaw = (env.base_ang_vel[:, 2] - commands[:, 2]).abs()
            errors += torch.stack([lin, yaw], dim=1) * running.unsqueeze(1)
            steps += running
            fell |= running & dones & ~extras["time_outs"]
            running &= ~dones
            if not running.any():
                break
    finally:
        env.set_evaluation_commands(None)
    tracking = errors / steps.clamp(min=1).unsqueeze(1)
    return {"mean_return": float(returns.mean()), "fall_fraction": float(fell.float().mean()),
            "error_lin_vel": float(tracking[:, 0].mean()), "error_yaw": float(tracking[:, 1].mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--num-envs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the result here")
    args, overrides = parser.parse_known_args()
    torch.set_num_threads(args.threads)

    cli, method = load_method(["--config", args.config, *overrides], args.ckpt)
    result: dict[str, dict[str, float]] = {}
    for name, make in (("teacher", method.teacher_policy), ("student", method.deployed_policy)):
        env = locomotion_env(cli, args.num_envs, args.seed)
        check_policy_fits_env(method, env, args.ckpt)
        result[name] = first_episode_returns(env, make(), fixed_commands(env, args.seed))
        env.close()
    ratio = result["student"]["mean_return"] / result["teacher"]["mean_return"]
    result["student_over_teacher"] = {"mean_return": ratio}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
