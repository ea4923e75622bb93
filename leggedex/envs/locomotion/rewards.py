"""Reward terms: small functions of the env's per-step state, each named by its config key.

Every term returns a (num_envs,) tensor; the env multiplies it by ``scale * dt`` and sums the terms whose scale
is non-zero. Signs live in the scales (penalties have negative scales), as in legged_gym.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from leggedex.envs.locomotion.env import LeggedLocomotion

RewardFn = Callable[["LeggedLocomotion"], torch.Tensor]
REWARD_TERMS: dict[str, RewardFn] = {}


def term(fn: RewardFn) -> RewardFn:
    REWARD_TERMS[fn.__name__] = fn
    return fn


def moving(env: LeggedLocomotion) -> torch.Tensor:
    return (env.commands.command.norm(dim=1) > 0.1).float()


@term
def tracking_lin_vel(env: LeggedLocomotion) -> torch.Tensor:
    error = (env.commands.command[:, :2] - env.base_lin_vel[:, :2]).square().sum(dim=1)
    return torch.exp(-error / env.reward_cfg.tracking_sigma)


@term
def tracking_ang_vel(env: LeggedLocomotion) -> torch.Tensor:
    error = (env.commands.command[:, 2] - env.base_ang_vel[:, 2]).square()
    return torch.exp(-error / env.reward_cfg.tracking_sigma)


@term
def lin_vel_z(env: LeggedLocomotion) -> torch.Tensor:
    return env.base_lin_vel[:, 2].square()


@term
def ang_vel_xy(env: LeggedLocomotion) -> torch.Tensor:
    return env.base_ang_vel[:, :2].square().sum(dim=1)


@term
def orientation(env: LeggedLocomotion) -> torch.Tensor:
    return env.projected_gravity[:, :2].square().sum(dim=1)


@term
def base_height(env: LeggedLocomotion) -> torch.Tensor:
    return (env.base_height - env.reward_cfg.base_height_target).clamp(max=0.0).square()


@term
def torques(env: LeggedLocomotion) -> torch.Tensor:
    return env.torques.square().sum(dim=1)


@term
def dof_power(env: LeggedLocomotion) -> torch.Tensor:
    return (env.torques * env.dof_vel).abs().sum(dim=1)


@term
def dof_acc(env: LeggedLocomotion) -> torch.Tensor:
    return ((env.dof_vel - env.last_dof_vel) / env.step_dt).square().sum(dim=1)


@term
def action_rate(env: LeggedLocomotion) -> torch.Tensor:
    return (env.actions - env.last_actions).square().sum(dim=1)


@term
def action_smoothness(env: LeggedLocomotion) -> torch.Tensor:
    return (env.actions - 2 * env.last_actions + env.last_last_actions).square().sum(dim=1)


@term
def collision(env: LeggedLocomotion) -> torch.Tensor:
    return env.penalized_contact.float().sum(dim=1)


@term
def termination(env: LeggedLocomotion) -> torch.Tensor:
    return (env.terminated & ~env.time_outs).float()


@term
def dof_pos_limits(env: LeggedLocomotion) -> torch.Tensor:
    low, high = env.soft_dof_pos_limits[:, 0], env.soft_dof_pos_limits[:, 1]
    return ((low - env.dof_pos).clamp(min=0.0) + (env.dof_pos - high).clamp(min=0.0)).sum(dim=1)


@term
def feet_air_time(env: LeggedLocomotion) -> torch.Tensor:
    """Reward each touchdown by how much its swing exceeded the target air time (legged_gym)."""
    gain = (env.feet_air_time_at_touchdown - env.reward_cfg.feet_air_time_target) * env.first_contact
    return gain.sum(dim=1) * moving(env)


@term
def foot_clearance(env: LeggedLocomotion) -> torch.Tensor:
    """Swing feet near the target height above the ground (mean over the feet in the air)."""
    swing = (~env.foot_contact).float()
    close = torch.exp(-(env.foot_height - env.reward_cfg.foot_clearance_target).square() / 0.0025)
    return (close * swing).sum(dim=1) / swing.sum(dim=1).clamp(min=1.0) * moving(env)


@term
def hip_pos(env: LeggedLocomotion) -> torch.Tensor:
    return (env.dof_pos[:, env.hip_ids] - env.default_dof_pos[env.hip_ids]).square().sum(dim=1)


@term
def dof_pos_stand_still(env: LeggedLocomotion) -> torch.Tensor:
    return (env.dof_pos - env.default_dof_pos).abs().sum(dim=1) * (1.0 - moving(env))


@term
def feet_contact_stand_still(env: LeggedLocomotion) -> torch.Tensor:
    return env.foot_contact.float().mean(dim=1) * (1.0 - moving(env))


@term
def feet_slip(env: LeggedLocomotion) -> torch.Tensor:
    foot_speed = env.foot_vel_xy.norm(dim=2)
    return (foot_speed * env.foot_contact.float()).sum(dim=1)
