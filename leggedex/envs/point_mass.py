"""A small reference task in pure batched torch: a point mass that must reach and hold a goal.

It exists to test and benchmark the trainer: PPO learns it in well under a minute on one CPU core, and it has
what the legged tasks have (named reward terms with per-episode statistics, terminations and time-outs,
noisy actor observations and a noise-free critic group), so every trainer path is exercised on it.

Dynamics: a unit mass in the plane, force = ``action_scale * clip(action, -1, 1)``, linear drag; an episode
terminates when the mass leaves the arena (``|position| > arena_size`` on either axis) and times out after
``episode_length_s``. Goals are drawn uniformly in the inner part of the arena at each episode start.

For teacher-student methods it can hide part of the dynamics and add two groups. At each episode start,
``drag_range`` and ``action_scale_range`` redraw the env's drag and force scale uniformly, and
``flip_action_axes`` reverses each action axis with probability 1/2. ``privileged`` (``privileged=True``) holds
what the policy cannot see directly: the noise-free velocity, the drag and the signed force per action unit of
each axis. A policy that knows the polarity holds the goal; one that does not pushes the wrong way on half of
the axes. ``policy_velocity=False`` zeroes the ``policy`` group's velocity term, a memory task: the velocity
is then known only from successive ``to_goal`` readings (a recurrent policy or a history can difference them; a
single frame cannot). ``history`` (``history_length`` > 0) holds the last N ``policy`` frames, oldest first,
zeroed when an episode starts; ``noise_free_policy`` (``noise_free_policy=True``) the ``policy`` frame without
its noise. Observations are computed once per step or reset and cached, so the history
advances exactly once per step.
"""

from __future__ import annotations

from typing import Any

import torch

from leggedex.envs.history import ObsHistory
from leggedex.envs.mirror import Mirror, SignedPermutation
from leggedex.envs.reward_sums import EpisodeRewardSums
from leggedex.envs.vec_env import Obs, TermSlices, VecEnv, term_slices

POLICY_SIZE = 6
CRITIC_SIZE = 8
PRIVILEGED_SIZE = 5  # velocity (2), drag, signed action gain per axis (2)
GROUP_TERMS: dict[str, tuple[tuple[str, int], ...]] = {  # unscaled, in assembly order
    "policy": (("to_goal", 2), ("velocity", 2), ("action", 2)),
    "critic": (("to_goal", 2), ("velocity", 2), ("action", 2), ("position", 2)),
    "privileged": (("velocity", 2), ("drag", 1), ("action_gain", 2)),
    "noise_free_policy": (("to_goal", 2), ("velocity", 2), ("action", 2)),
}


class PointMassReach(VecEnv):
    """Point-mass goal reaching. Groups: ``policy`` (6, noisy), ``critic`` (8, noise-free), optionally
    ``privileged`` (5) and ``history`` (6 x ``history_length``)."""

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
        history_length: int = 0,
        privileged: bool = False,
        drag_range: tuple[float, float] | None = None,
        action_scale_range: tuple[float, float] | None = None,
        flip_action_axes: bool = False,
        policy_velocity: bool = True,
        noise_free_policy: bool = False,
    ) -> None:
        super().__init__(num_envs, seed, device)
        if dt <= 0 or episode_length_s <= 0:
            raise ValueError(f"dt and episode_length_s must be positive, got dt={dt}, "
                             f"episode_length_s={episode_length_s}")
        if history_length < 0:
            raise ValueError(f"history_length must be >= 0, got {history_length}")
        for name, bounds in (("drag_range", drag_range), ("action_scale_range", action_scale_range)):
            if bounds is not None and not (len(bounds) == 2 and 0.0 <= bounds[0] <= bounds[1]):
                raise ValueError(f"{name} must be (low, high) with 0 <= low <= high, got {bounds}")
        self.step_dt = dt
        self.policy_velocity = policy_velocity
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
        self.privileged = privileged
        self.drag_range = drag_range
        self.action_scale_range = action_scale_range
        self.flip_action_axes = flip_action_axes
        self.noise_free_policy = noise_free_policy

        n, dev = num_envs, self.device
        self.env_drag = torch.full((n,), float(drag), device=dev)
        self.env_action_gain = torch.full((n, 2), float(action_scale), device=dev)  # signed force per action unit
        self.history = ObsHistory(n, history_length, POLICY_SIZE, dev) if history_length > 0 else None
        self._obs: Obs | None = None  # the observations of the current step, computed on first request
        self.position = torch.zeros(n, 2, device=dev)
        self.velocity = torch.zeros(n, 2, device=dev)
        self.goal = torch.zeros(n, 2, device=dev)
        self.actions = torch.zeros(n, 2, device=dev)
        self.last_actions = torch.zeros(n, 2, device=dev)
        self.episode_length_buf = torch.zeros(n, dtype=torch.long, device=dev)
        self.episode_sums = EpisodeRewardSums(self.reward_scales, n, dev)

    @property
    def obs_groups(self) -> dict[str, int]:
        groups = {"policy": POLICY_SIZE, "critic": CRITIC_SIZE}
        if self.privileged:
            groups["privileged"] = PRIVILEGED_SIZE
        if self.history is not None:
            groups["history"] = self.history.size
        if self.noise_free_policy:
            groups["noise_free_policy"] = POLICY_SIZE
        return groups

    @property
    def obs_terms(self) -> dict[str, TermSlices]:
        return {group: term_slices(terms) for group, terms in GROUP_TERMS.items() if group in self.obs_groups}

    def mirror(self) -> Mirror:
        """Across the x axis: every planar vector (x, -y), the drag and the per-axis gains unchanged."""
        planar = SignedPermutation((0, 1), (1.0, -1.0))
        parts = {"to_goal": planar, "velocity": planar, "action": planar, "position": planar,
                 "drag": SignedPermutation.identity(1), "action_gain": SignedPermutation.identity(2)}
        groups = {group: SignedPermutation.concat([parts[name] for name, _ in GROUP_TERMS[group]])
                  for group in GROUP_TERMS if group in self.obs_groups}
        if self.history is not None:
            groups["history"] = groups["policy"].repeated(self.history.length)
        return Mirror(groups, planar)

    def reward_terms(self) -> dict[str, torch.Tensor]:
        return dict(self.episode_sums.last_step)

    @property
    def episode_keys(self) -> tuple[str, ...]:
        return self.episode_sums.keys()

    # ----------------------------------------------------------------------------------------------- stepping
    def step(self, actions: torch.Tensor) -> tuple[Obs, torch.Tensor, torch.Tensor, dict[str, Any]]:
        self.check_actions(actions)
        self.last_actions.copy_(self.actions)
        self.actions.copy_(actions.clamp(-1.0, 1.0))
        distance_before = (self.goal - self.position).norm(dim=1)
        force = self.env_action_gain * self.actions - self.env_drag[:, None] * self.velocity
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
        self._obs = None
        return self.get_observations(), rewards, dones, extras

    def get_observations(self) -> Obs:
        if self._obs is None:
            self._obs = self._compute_observations()
        return self._obs

    def _compute_observations(self) -> Obs:
        to_goal = self.goal - self.position
        critic = torch.cat([to_goal, self.velocity, self.actions, self.position], dim=1)
        noise = torch.randn(self.num_envs, 4, device=self.device, generator=self.generator) * self.obs_noise
        policy = torch.cat([critic[:, :4] + noise, self.actions], dim=1)
        if not self.policy_velocity:
            policy[:, 2:4] = 0.0
        obs = {"policy": policy, "critic": critic}
        if self.noise_free_policy:
            obs["noise_free_policy"] = critic[:, :POLICY_SIZE].clone()
            if not self.policy_velocity:
                obs["noise_free_policy"][:, 2:4] = 0.0
        if self.privileged:
            obs["privileged"] = torch.cat([self.velocity, self.env_drag[:, None], self.env_action_gain], dim=1)
        if self.history is not None:
            self.history.push(policy)
            obs["history"] = self.history.flat.clone()  # the buffer itself moves on at the next step
        return obs

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
            self.episode_sums.add(name, value)
            total += value
        return total

    def _episode_statistics(self, ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mean per-second sum of each reward term over the episodes ending now (legged_gym's convention)."""
        episode_s = self.max_episode_length * self.step_dt
        return self.episode_sums.per_second(ids, episode_s)

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
        self.episode_sums.reset(ids)
        if self.drag_range is not None:
            self.env_drag[ids] = self._uniform(self.drag_range, count)
        if self.action_scale_range is not None:
            self.env_action_gain[ids] = self._uniform(self.action_scale_range, count)[:, None].expand(count, 2)
        if self.flip_action_axes:
            flips = torch.rand(count, 2, device=self.device, generator=self.generator) < 0.5
            self.env_action_gain[ids] = self.env_action_gain[ids].abs() * (1.0 - 2.0 * flips.float())
        if self.history is not None:
            self.history.reset(ids)
        self._obs = None

    def _uniform(self, bounds: tuple[float, float], count: int) -> torch.Tensor:
        low, high = bounds
        return low + (high - low) * torch.rand(count, device=self.device, generator=self.generator)

    # ------------------------------------------------------------------------------------------------- resume
    _STATE_BUFFERS = ("position", "velocity", "goal", "actions", "last_actions", "env_drag", "env_action_gain")

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        for name in self._STATE_BUFFERS:
            state[name] = getattr(self, name).clone()
        state["episode_sums"] = self.episode_sums.state_dict()
        if self.history is not None:
            state["history"] = self.history.state_dict()
        if self._obs is not None:
            state["observations"] = {k: v.clone() for k, v in self._obs.items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        for name in self._STATE_BUFFERS:
            if name in state:  # the env_* buffers are absent from checkpoints written before they existed
                getattr(self, name).copy_(state[name])
        self.episode_sums.load_state_dict(state["episode_sums"])
        if self.history is not None:
            self.history.load_state_dict(state["history"])
        saved = state.get("observations")
        self._obs = {k: v.clone().to(self.device) for k, v in saved.items()} if saved is not None else None
