"""Reward terms: small functions of the env's per-step state, each named by its key in ``rewards.terms``.

Every term returns a (num_envs,) tensor; the env multiplies it by ``weight * dt`` and sums the terms whose weight
is non-zero. Signs live in the weights (penalties have negative weights), as in legged_gym. A term's parameters
(keyword-only arguments) sit beside its weight in the config: ``tracking_lin_vel: {weight: 1.0, sigma: 0.25}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from leggedex.envs.term_table import BoundTerm, TermTable

if TYPE_CHECKING:
    from leggedex.envs.locomotion.env import LeggedLocomotion

REWARDS = TermTable("reward", "rewards.terms")
term = REWARDS.term


def moving(env: LeggedLocomotion) -> torch.Tensor:
    return (env.commands.command.norm(dim=1) > 0.1).float()


@term
def tracking_lin_vel(env: LeggedLocomotion, *, sigma: float) -> torch.Tensor:
    """exp(-|v_xy command - v_xy|^2 / sigma), base frame."""
    error = (env.commands.command[:, :2] - env.base_lin_vel[:, :2]).square().sum(dim=1)
    return torch.exp(-error / sigma)


@term
def tracking_ang_vel(env: LeggedLocomotion, *, sigma: float) -> torch.Tensor:
    """exp(-(yaw rate command - yaw rate)^2 / sigma)."""
    error = (env.commands.command[:, 2] - env.base_ang_vel[:, 2]).square()
    return torch.exp(-error / sigma)


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
def base_height(env: LeggedLocomotion, *, target: float) -> torch.Tensor:
    """Squared shortfall of the base height (above the ground under the feet) below ``target`` metres."""
    return (env.base_height - target).clamp(max=0.0).square()


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


def soft_dof_pos_limits(env: LeggedLocomotion, soft_limit: float) -> torch.Tensor:
    """(dofs, 2) joint range shrunk about its middle to the fraction ``soft_limit`` of its width."""
    limits = env.dof_pos_limits
    middle, half = limits.mean(dim=1), (limits[:, 1] - limits[:, 0]) / 2 * soft_limit
    return torch.stack([middle - half, middle + half], dim=1)


def prepare_dof_pos_limits(env: LeggedLocomotion, *, soft_limit: float) -> dict[str, Any]:
    limits = soft_dof_pos_limits(env, soft_limit)
    return {"low": limits[:, 0], "high": limits[:, 1]}


@term(prepare=prepare_dof_pos_limits)
def dof_pos_limits(env: LeggedLocomotion, *, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """How far (rad, summed over joints) the joints are outside the soft range (``soft_limit`` of the full one)."""
    return ((low - env.dof_pos).clamp(min=0.0) + (env.dof_pos - high).clamp(min=0.0)).sum(dim=1)


@term
def feet_air_time(env: LeggedLocomotion, *, target: float) -> torch.Tensor:
    """Reward each touchdown by how much its swing exceeded ``target`` seconds in the air (legged_gym)."""
    gain = (env.feet_air_time_at_touchdown - target) * env.first_contact
    return gain.sum(dim=1) * moving(env)


@term
def foot_clearance(env: LeggedLocomotion, *, target: float) -> torch.Tensor:
    """Swing feet near ``target`` metres above the ground (mean over the feet in the air)."""
    swing = (~env.foot_contact).float()
    close = torch.exp(-(env.foot_height - target).square() / 0.0025)
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


def reward_entries(terms: Mapping[str, float | Mapping[str, float]]) -> dict[str, tuple[float, dict[str, float]]]:
    """``rewards.terms`` checked -> name -> (weight, parameters), for the terms with a non-zero weight.

    An entry is a weight (``lin_vel_z: -2.0``) or a weight beside the term's parameters (``{weight: w, ...}``).
    Every entry is checked, also those with weight 0, so a config stays valid when a weight is switched on.
    """
    entries = {}
    for name, entry in terms.items():
        params = dict(entry) if isinstance(entry, Mapping) else {"weight": entry}
        if "weight" not in params:
            raise ValueError(f"rewards.terms.{name} needs a 'weight' beside its parameters, got {params}")
        weight = float(params.pop("weight"))
        REWARDS.check(name, params)
        if weight != 0.0:
            entries[name] = (weight, params)
    return entries


def bind_rewards(terms: Mapping[str, float | Mapping[str, float]], env: LeggedLocomotion
                 ) -> dict[str, tuple[BoundTerm, float]]:
    """``rewards.terms`` -> name -> (the bound term, its weight), for the terms with a non-zero weight."""
    return {name: (REWARDS.bind(name, params, env), weight) for name, (weight, params) in reward_entries(terms).items()}
