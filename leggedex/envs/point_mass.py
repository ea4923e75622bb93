"""A small reference task in pure batched torch: a point mass that must reach and hold a goal.

It exists to test and benchmark the trainer: PPO learns it in well under a minute on one CPU core, and it has
what the legged tasks have (named reward terms with per-episode statistics, terminations and time-outs,
noisy actor observations and a noise-free critic group), so every trainer path is exercised on it.

Dynamics: a unit mass in the plane, force = ``action_scale * clip(action, -1, 1)``, linear drag; an episode
terminates when the mass leaves the arena (``|position| > arena_size`` on either axis) and times out after
``episode_length_s``. Goals are drawn uniformly in the inner part of the arena at each episode start.
"""

from __future__ import annotations

from typing import Any

import torch

from leggedex.envs.vec_env import Obs, VecEnv


class PointMassReach(VecEnv):
    """Point-mass goal reaching. Groups: ``policy`` (6, noisy) and ``critic`` (8, noise-free)."""

    num_actions = 2

    def __init__(
        self,
        num_envs: int,
        seed: int = 0,
        device: str | torch.device = "cpu",
        *,
        dt: float = 0.05,
        episode_length_s: float = 8.0,
        arena_size: float = 2.0,
        goal_range: float = 1.0,
        action_scale: float = 4.0,
        drag: float = 1.0,
        obs_noise: float = 0.02,
        reward_scales: dict[str, float] | None = None,
        random_initial_episode_length: bool = True,
    ) -> None:
        super().__init__(num_envs, seed, device)
        if dt <= 0 or episode_length_s <= 0:
            raise ValueError(f"dt and episode_length_s must be positive, got dt={dt}, episode_length_s={episode_length_s}")
        self.step_dt = dt
        self.max_episode_length = int(round(episode_length_s / dt))
        self.arena_size = arena_size
        self.goal_range = goal_range
        self.action_scale = action_scale
        self.drag = drag
        self.obs_noise = obs_noise
        self.reward_scales = {"reach": 1.0, "progress": 0.0, "effort": -0.02, "action_rate": -0.02}
        if reward_scales:
            unknown = set(reward_scales) - set(self.reward_scales)
            if unknown:
                raise ValueError(f"unknown reward term(s) {sorted(unknown)}; known: {sorted(self.reward_scales)}")
            self.reward_scales.update(reward_scales)
        self.random_initial_episode_length = random_initial_episode_length

        n, dev = num_envs, self.device
        self.position = torch.zeros(n, 2, device=dev)
        self.velocity = torch.zeros(n, 2, device=dev)
        self.goal = torch.zeros(n, 2, device=dev)
        self.actions = torch.zeros(n, 2, device=dev)
        self.last_actions = torch.zeros(n, 2, device=dev)
        self.episode_length_buf = torch.zeros(n, dtype=torch.long, device=dev)
        self.episode_sums = {name: torch.zeros(n, device=dev) for name in self.reward_scales}

    @property
    def obs_groups(self) -> dict[str, int]:
        return {"policy": 6, "critic": 8}

    @property
    def episode_keys(self) -> tuple[str, ...]:
        return tuple(f"rew_{name}" for name in self.reward_scales)

    # ----------------------------------------------------------------------------------------------- stepping
    def step(self, actions: torch.Tensor) -> tuple[Obs, torch.Tensor, torch.Tensor, dict[str, Any]]:
        self.check_actions(actions)
        self.last_actions.copy_(self.actions)
        self.actions.copy_(actions.clamp(-1.0, 1.0))
        distance_before = (self.goal - self.position).norm(dim=1)
        force = self.action_scale * self.actions - self.drag * self.velocity
        self.velocity += force * self.step_dt
        self.position += self.velocity * self.step_dt
        self.episode_length_buf += 1

        rewards = self._compute_rewards(distance_before)
        terminated = (self.position.abs() > self.arena_size).any(dim=1)
        time_outs = self.episode_length_buf >= self.max_episode_length
        dones = terminated | time_outs
        extras: dict[str, Any] = {"time_outs": time_outs}
        done_ids = dones.nonzero(as_tuple=False).squeeze(-1)
        if done_ids.numel() > 0:
            extras["episode"] = self._episode_statistics(done_ids)
            self._reset_envs(done_ids)
        return self.get_observations(), rewards, dones, extras

    def get_observations(self) -> Obs:
        to_goal = self.goal - self.position
        critic = torch.cat([to_goal, self.velocity, self.actions, self.position], dim=1)
        noise = torch.randn(self.num_envs, 4, device=self.device, generator=self.generator) * self.obs_noise
        policy = torch.cat([critic[:, :4] + noise, self.actions], dim=1)
        return {"policy": policy, "critic": critic}

    # ------------------------------------------------------------------------------------------------ rewards
    def _compute_rewards(self, distance_before: torch.Tensor) -> torch.Tensor:
        distance = (self.goal - self.position).norm(dim=1)
        terms = {
            "reach": torch.exp(-distance.square() / 0.1),
            "progress": (distance_before - distance) / self.step_dt,
            "effort": self.actions.square().sum(dim=1),
            "action_rate": (self.actions - self.last_actions).square().sum(dim=1),
        }
        total = torch.zeros(self.num_envs, device=self.device)
        for name, scale in self.reward_scales.items():
            if scale == 0.0:
                continue
            value = terms[name] * scale * self.step_dt
            self.episode_sums[name] += value
            total += value
        return total

    def _episode_statistics(self, ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mean per-second sum of each reward term over the episodes ending now (legged_gym's convention)."""
        episode_s = self.max_episode_length * self.step_dt
        return {f"rew_{name}": sums[ids].mean() / episode_s for name, sums in self.episode_sums.items()}

    def _reset_envs(self, ids: torch.Tensor) -> None:
        count = ids.numel()
        goals = (torch.rand(count, 2, device=self.device, generator=self.generator) * 2 - 1) * self.goal_range
        starts = (torch.rand(count, 2, device=self.device, generator=self.generator) * 2 - 1) * self.goal_range
        self.goal[ids] = goals
        self.position[ids] = starts
        self.velocity[ids] = 0.0
        self.actions[ids] = 0.0
        self.last_actions[ids] = 0.0
        self.episode_length_buf[ids] = 0
        for sums in self.episode_sums.values():
            sums[ids] = 0.0

    # ------------------------------------------------------------------------------------------------- resume
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        for name in ("position", "velocity", "goal", "actions", "last_actions"):
            state[name] = getattr(self, name).clone()
        state["episode_sums"] = {k: v.clone() for k, v in self.episode_sums.items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        for name in ("position", "velocity", "goal", "actions", "last_actions"):
            getattr(self, name).copy_(state[name])
        for key, value in state["episode_sums"].items():
            self.episode_sums[key].copy_(value)
