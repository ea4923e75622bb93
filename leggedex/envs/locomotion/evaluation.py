"""Deterministic evaluation of a locomotion policy: tracking, survival and gait quality per command.

Training curves of the stochastic policy can mislead (a policy may rely on action noise to move), so the
numbers that matter are measured here with the deterministic policy, no observation noise and no pushes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from leggedex.envs.first_episode import FirstEpisode
from leggedex.envs.locomotion.env import LeggedLocomotion
from leggedex.envs.locomotion.mirror import MirrorUnavailable, swap_sides
from leggedex.envs.vec_env import reset_after_step

DEFAULT_COMMANDS: tuple[tuple[float, float, float], ...] = (
    (0.5, 0.0, 0.0),
    (1.0, 0.0, 0.0),
    (-0.5, 0.0, 0.0),
    (0.0, 0.5, 0.0),
    (0.0, 0.0, 0.5),
    (0.0, 0.0, 0.0),
)

Policy = Callable[[dict[str, torch.Tensor]], torch.Tensor]


def command_name(command: Sequence[float]) -> str:
    return f"vx{command[0]:+.1f}_vy{command[1]:+.1f}_yaw{command[2]:+.1f}"


@torch.inference_mode()
def evaluate_locomotion(
    env: LeggedLocomotion,
    policy: Policy,
    commands: Sequence[Sequence[float]] = DEFAULT_COMMANDS,
    duration_s: float = 8.0,
    settle_s: float = 2.0,
) -> dict[str, dict[str, float]]:
    """Run ``policy`` with each command held by ``env.num_envs // len(commands)`` envs; returns per command:

    - ``error_vx``, ``error_vy``, ``error_yaw``: |mean measured velocity - command| after ``settle_s``
      (body frame), averaged over envs;
    - ``fall_rate``: share of envs whose episode terminated, ``survival_rate`` = 1 - ``fall_rate``;
    - ``mean_return``: reward summed over the run until an env's first termination, averaged over envs;
    - ``base_height_median`` (m), ``body_contact_fraction``: share of samples with a non-foot body on the ground;
    - ``min_foot_air_fraction``: the least-lifted foot's share of samples in the air;
    - ``foot_air_asymmetry``: |left foot's share in the air - right foot's|, averaged over the leg pairs (a gait's
      left-right asymmetry; NaN for feet not named as left and right legs);
    - ``measured_vx``, ``measured_vy``, ``measured_yaw``: the mean measured velocities themselves.
    """
    per_command = env.num_envs // len(commands)
    if per_command == 0:
        raise ValueError(f"evaluation needs at least {len(commands)} envs, got {env.num_envs}")
    groups = torch.arange(env.num_envs, device=env.device) // per_command
    groups = groups.clamp(max=len(commands) - 1)
    table = torch.tensor(commands, dtype=torch.float32, device=env.device)[groups]
    env.set_evaluation_commands(table)
    obs = env.reset()
    steps = int(round(duration_s / env.step_dt))
    settle = int(round(settle_s / env.step_dt))
    n = env.num_envs
    vel_sum = torch.zeros(n, 3, device=env.device)
    vel_count = torch.zeros(n, device=env.device)
    first = FirstEpisode(n, env.device)
    heights, body_contact, foot_air = [], [], []
    for t in range(steps):
        obs, rewards, dones, extras = env.step(policy(obs))
        reset_after_step(policy, dones)
        alive = first.update(rewards, dones, extras)
        if t >= settle:
            measured = torch.cat([env.base_lin_vel[:, :2], env.base_ang_vel[:, 2:3]], dim=1)
            vel_sum += measured * alive.unsqueeze(1)
            vel_count += alive.float()
        heights.append(env.base_height.clone())
        body_contact.append(env.body_contact.any(dim=1))
        foot_air.append(~env.foot_contact)
    height = torch.stack(heights)
    contact = torch.stack(body_contact).float()
    air = torch.stack(foot_air).float()
    fell, returns = first.fell, first.returns
    mean_vel = vel_sum / vel_count.clamp(min=1).unsqueeze(1)
    try:
        partner = torch.tensor(swap_sides(env.sim.foot_names, "foot"), device=env.device)
    except MirrorUnavailable:
        partner = None
    error = (mean_vel - table).abs()
    results = {}
    for k, command in enumerate(commands):
        ids = groups == k
        valid = ids & (vel_count > 0)
        results[command_name(command)] = {
            "error_vx": float(error[valid, 0].mean()) if valid.any() else float("nan"),
            "error_vy": float(error[valid, 1].mean()) if valid.any() else float("nan"),
            "error_yaw": float(error[valid, 2].mean()) if valid.any() else float("nan"),
            "fall_rate": float(fell[ids].float().mean()),
            "survival_rate": 1.0 - float(fell[ids].float().mean()),
            "mean_return": float(returns[ids].mean()),
            "base_height_median": float(height[:, ids].median()),
            "body_contact_fraction": float(contact[:, ids].mean()),
            "min_foot_air_fraction": float(air[:, ids].mean(dim=(0, 1)).min()),
            "foot_air_asymmetry": float("nan") if partner is None else
            float((air[:, ids].mean(dim=(0, 1)) - air[:, ids].mean(dim=(0, 1))[partner]).abs().mean()),
            **{f"measured_{axis}": float(mean_vel[valid, i].mean()) if valid.any() else float("nan")
               for i, axis in enumerate(("vx", "vy", "yaw"))},
        }
    env.set_evaluation_commands(None)
    return results
