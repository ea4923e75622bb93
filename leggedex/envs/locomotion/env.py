"""Velocity-tracking locomotion for a legged robot, written once in torch over a ``SimBackend``.

The env orchestrates; what the task computes is in tables of small named terms selected and parametrized by config:
``observations.py``, ``rewards.py``, ``terminations.py``, ``events.py`` (randomization, pushes, reset sampling),
``curricula.py`` and ``commands.py``. Per policy step: actions -> joint targets ``default + action_scale * action``
-> ``backend.step()`` (PD inside) -> state read once -> commands, interval events (pushes), terminations, rewards
-> curricula and resets of finished envs -> observations. The simulator is behind ``SimBackend`` (MuJoCo batch on
CPU by default); the ground is a plane or a curriculum heightfield (``ground.py``), whose heights the task reads
from the height grid in torch (no ray casts).

Observation groups are defined once in ``obs_layouts.py`` (``policy`` 45 and ``critic`` 48 by default; history,
privileged, height scan and stacked critic frames by config); the env assembles each group's frame once per step.
Heights (base height, foot clearance, scans) are measured from the ground under the robot.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from leggedex.envs.backends.base import (
    BackendFactory,
    SimBackend,
    make_backend,
    quat_rotate,
)
from leggedex.envs.history import ObsHistory
from leggedex.envs.locomotion.commands import VelocityCommands
from leggedex.envs.locomotion.config import (
    CommandsConfig,
    EventConfig,
    ObservationConfig,
    RewardConfig,
    TerminationConfig,
)
from leggedex.envs.locomotion.curricula import CommandCurriculum, terrain_levels
from leggedex.envs.locomotion.events import ResetState, bind_events, event_entries, randomized_physics_terms
from leggedex.envs.locomotion.ground import CurriculumTerrain, FlatGround
from leggedex.envs.locomotion.mirror import LocomotionMirror
from leggedex.envs.locomotion.obs_layouts import locomotion_obs_layouts
from leggedex.envs.locomotion.observations import OBSERVATIONS
from leggedex.envs.locomotion.rewards import bind_rewards, reward_entries
from leggedex.envs.locomotion.terminations import bind_terminations, termination_entries
from leggedex.envs.mirror import Mirror
from leggedex.envs.reward_sums import EpisodeRewardSums
from leggedex.envs.terrain import TerrainConfig, generate_terrain
from leggedex.envs.vec_env import Obs, VecEnv
from leggedex.robots import GO2, RobotDescription


def as_lists(value: Any) -> Any:
    """Tuples -> lists, so that a contract equals its JSON round trip."""
    if isinstance(value, (tuple, list)):
        return [as_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: as_lists(v) for k, v in value.items()}
    return value


class LeggedLocomotion(VecEnv):
    """Velocity tracking for a quadruped (the Go2 by default) on any ``SimBackend``.

    Args:
        num_envs, seed, device: see ``VecEnv``; the task computes on the backend's device (where the physics is).
        backend: the simulator, by ``class_path`` with its options as ``init_args``; None is ``MujocoBatchBackend``
            (CPU). ``leggedex.envs.backends.MujocoWarpBackend`` runs on a GPU (docs/backends.md).
        robot: the robot description (``leggedex.robots``); None is the Go2. Its ``joints`` are the action order.
        episode_length_s, decimation: episode limit and physics steps per policy step (sim dt from the model).
        action_scale, clip_actions: joint target = default + action_scale * clip(action).
        commands, observations, rewards, events, terminations: the config groups (``config.py``); rewards,
            events and terminations are tables of named terms with their parameters.
        terrain: a curriculum heightfield (``leggedex.envs.terrain.TerrainConfig``); None for flat ground.
        random_initial_episode_length: spread the first resets over the episode (legged_gym's trick).
    """

    def __init__(
        self,
        num_envs: int,
        seed: int = 0,
        device: str | torch.device = "cpu",
        *,
        backend: BackendFactory | None = None,
        robot: RobotDescription | None = None,
        episode_length_s: float = 20.0,
        decimation: int = 4,
        action_scale: float = 0.25,
        clip_actions: float = 100.0,
        commands: CommandsConfig = CommandsConfig(),  # noqa: B008 (read-only defaults, shown by --print_config)
        observations: ObservationConfig = ObservationConfig(),  # noqa: B008 (read-only defaults, shown by --print_config)
        rewards: RewardConfig = RewardConfig(),  # noqa: B008 (read-only defaults, shown by --print_config)
        events: EventConfig = EventConfig(),  # noqa: B008 (read-only defaults, shown by --print_config)
        terminations: TerminationConfig = TerminationConfig(),  # noqa: B008 (read-only defaults, shown by --print_config)
        terrain: TerrainConfig | None = None,
        random_initial_episode_length: bool = True,
    ) -> None:
        self.command_cfg = commands or CommandsConfig()
        self.obs_cfg = observations or ObservationConfig()
        self.reward_cfg = rewards or RewardConfig()
        self.event_cfg = events or EventConfig()
        self.termination_cfg = terminations or TerminationConfig()
        self.robot = robot or GO2
        # the term tables are checked before the simulator is built (binding them needs it)
        reward_entries(self.reward_cfg.terms)
        termination_entries(self.termination_cfg.terms)
        event_entries(self.event_cfg.terms)
        terrain_grid = generate_terrain(terrain) if terrain is not None else None
        self.sim: SimBackend = make_backend(backend, num_envs, self.robot, terrain_grid, decimation)
        # the task computes where the physics lives; the rollout loop moves tensors to the policy's device
        super().__init__(num_envs, seed, self.sim.device)
        self.step_dt = self.sim.policy_dt
        self.max_episode_length = int(math.ceil(episode_length_s / self.step_dt))
        self.action_scale = action_scale
        self.clip_actions = clip_actions
        self.random_initial_episode_length = random_initial_episode_length
        self.num_actions = self.sim.num_dofs
        self.ground = (CurriculumTerrain(terrain, terrain_grid, num_envs, self.device, self.generator)
                       if terrain is not None and terrain_grid is not None else FlatGround(num_envs, self.device))
        self.imu_biased = self.event_cfg.terms.get("imu_bias") is not None
        self.sensing_delayed = self.event_cfg.terms.get("observation_latency") is not None
        randomized = (randomized_physics_terms(self.event_cfg.terms) + (("imu_bias",) if self.imu_biased else ())
                      + (("observation_latency",) if self.sensing_delayed else ()))
        self.obs_layouts = locomotion_obs_layouts(self.obs_cfg, self.num_actions, len(self.sim.foot_names),
                                                  randomized)
        self.policy_layout = self.obs_layouts.policy
        self._init_buffers()
        self._init_indices()
        self.commands = VelocityCommands(self.command_cfg, num_envs, self.device, self.generator)
        self.command_curriculum = CommandCurriculum(self.commands, self.max_episode_length)
        self.rewards = bind_rewards(self.reward_cfg.terms, self)
        self.reward_weights = {name: weight for name, (_, weight) in self.rewards.items()}
        self.terminations = bind_terminations(self.termination_cfg.terms, self)
        self.events = bind_events(self.event_cfg.terms, self)
        self.observation_table = {name: OBSERVATIONS.bind(name, term.params, self)
                                  for name, term in self.obs_layouts.terms.items()}
        self.episode_sums = EpisodeRewardSums(self.reward_weights, num_envs, self.device)
        self.interval_events = [event for event in self.events if "interval" in event.modes]
        self.event_countdown = {event.term.name: torch.zeros(num_envs, dtype=torch.long, device=self.device)
                                for event in self.interval_events}
        self._init_observation_buffers()
        self.sim_failure_count = torch.zeros((), device=self.device)  # failed worlds this step (no host sync)
        self._evaluating = False
        self._run_events("startup", torch.arange(num_envs, device=self.device))

    # ------------------------------------------------------------------------------------------------ setup
    def _init_buffers(self) -> None:
        n, d, dev = self.num_envs, self.num_actions, self.device
        self.actions = torch.zeros(n, d, device=dev)
        self.last_actions = torch.zeros(n, d, device=dev)
        self.last_last_actions = torch.zeros(n, d, device=dev)
        self.last_dof_vel = torch.zeros(n, d, device=dev)
        self.episode_length_buf = torch.zeros(n, dtype=torch.long, device=dev)
        num_feet = len(self.sim.foot_names)
        self.feet_air_time = torch.zeros(n, num_feet, device=dev)
        self.last_foot_contact = torch.zeros(n, num_feet, dtype=torch.bool, device=dev)
        self.last_foot_pos = torch.zeros(n, num_feet, 3, device=dev)
        self.push_vel = torch.zeros(n, 2, device=dev)
        self.imu_bias = torch.zeros(n, 6, device=dev)  # projected gravity, angular velocity (events.imu_bias)
        self.observation_latency = torch.zeros(n, device=dev)  # seconds (events.observation_latency)
        self.terminated = torch.zeros(n, dtype=torch.bool, device=dev)
        self.time_outs = torch.zeros(n, dtype=torch.bool, device=dev)
        self.default_dof_pos = self.sim.default_dof_pos.to(dev)
        self.dof_pos_limits = self.sim.dof_pos_limits.to(dev)
        self.foot_radius = self.robot.foot_radius
        self._unit_x = torch.zeros(n, 3, device=dev)
        self._unit_x[:, 0] = 1.0

    def _init_observation_buffers(self) -> None:
        groups, dev, cfg = self.obs_layouts, self.device, self.obs_cfg
        self._critic_scales = groups.critic_frame.scale_vector(dev)
        self._privileged_scales = groups.privileged.scale_vector(dev) if groups.privileged is not None else None
        self._noise = groups.policy.noise_vector(dev, cfg.noise_level)
        slices = groups.term_slices()["policy"]
        self._imu_slots = [(slices[name]["start"], torch.as_tensor(slices[name]["scale"], device=dev))
                           for name in ("projected_gravity", "base_ang_vel")]
        self.history = (ObsHistory(self.num_envs, groups.history_length, groups.policy.size, dev)
                        if groups.history_length > 0 else None)
        self.critic_history = ObsHistory(self.num_envs, groups.critic_frames, groups.critic_frame.size, dev)
        self._obs: Obs = {name: torch.zeros(self.num_envs, size, device=dev) for name, size in groups.sizes.items()}
        self._last_policy_frame: torch.Tensor | None = None  # the previous step's noise-free frame (sensing delay)
        self._own_slots = torch.cat([torch.arange(slices[t]["start"], slices[t]["start"] + slices[t]["size"])
                                     for t in ("command", "last_action")]).to(dev)  # never delayed

    def _init_indices(self) -> None:
        """Robot-description bodies and joints as indices (contact bodies, hips)."""
        names, dev, robot = self.sim.contact_body_names, self.device, self.robot
        # the legs' contact bodies (thighs, calves) are penalized by the collision reward
        legs = sorted({names.index(b) for bodies in robot.leg_bodies.values() for b in bodies})
        self.penalized_body_ids = torch.tensor(legs, dtype=torch.long, device=dev)
        self.hip_ids = torch.tensor([robot.joints.index(j) for j in robot.hip_joints], dtype=torch.long, device=dev)
        self.leg_body_ids = {part: torch.tensor([names.index(b) for b in robot.leg_bodies[part]], device=dev)
                             if part in robot.leg_bodies else None for part in ("thigh", "calf")}
        if len(self.hip_ids) == 0:
            raise ValueError(f"robot {robot.name!r} lists no hip_joints (the hip_pos reward needs them)")

    @property
    def obs_groups(self) -> dict[str, int]:
        return self.obs_layouts.sizes

    @property
    def obs_terms(self) -> dict[str, dict[str, dict[str, Any]]]:
        return self.obs_layouts.term_slices()

    def mirror(self) -> Mirror:
        """Left-right, from the layouts' term names (``leggedex/envs/locomotion/mirror.py``)."""
        hips = [joint.removesuffix(self.robot.joint_suffix) for joint in self.robot.hip_joints]
        return LocomotionMirror(self.sim.dof_names, self.sim.foot_names, hips,
                                self.default_dof_pos.tolist()).of(self.obs_layouts)

    def reward_terms(self) -> dict[str, torch.Tensor]:
        return dict(self.episode_sums.last_step)

    @property
    def episode_keys(self) -> tuple[str, ...]:
        keys = self.episode_sums.keys() + ("max_command_x", "sim_failures")
        return keys + (("terrain_level",) if isinstance(self.ground, CurriculumTerrain) else ())

    # ------------------------------------------------------------------------------------------- stepping
    def step(self, actions: torch.Tensor) -> tuple[Obs, torch.Tensor, torch.Tensor, dict[str, Any]]:
        self.check_actions(actions)
        self.last_last_actions.copy_(self.last_actions)
        self.last_actions.copy_(self.actions)
        self.actions.copy_(actions.to(self.device).clamp(-self.clip_actions, self.clip_actions))
        self.sim.set_dof_targets(self.joint_targets())
        self.sim.step()
        self.episode_length_buf += 1
        self._read_state()
        self._update_feet()
        self._update_commands()
        if not self._evaluating:
            self._run_interval_events()
        self._check_termination()
        rewards = self._compute_rewards()
        dones = self.terminated | self.time_outs
        extras: dict[str, Any] = {"time_outs": self.time_outs.clone()}
        done_ids = dones.nonzero(as_tuple=False).squeeze(-1)
        if done_ids.numel() > 0:
            if not self._evaluating:
                terrain_levels(self, done_ids)
            extras["episode"] = self._episode_statistics(done_ids)
            self._reset_envs(done_ids)
        self.command_curriculum.step()
        self.last_dof_vel.copy_(self.dof_vel)
        self.last_foot_pos.copy_(self.foot_pos)
        self._observe()
        return self.get_observations(), rewards, dones, extras

    def _read_state(self) -> None:
        sim = self.sim
        self.base_pos = sim.root_pos
        self.base_quat = sim.root_quat
        self.base_lin_vel = sim.root_lin_vel_body
        self.base_ang_vel = sim.root_ang_vel_body
        self.projected_gravity = sim.projected_gravity
        forward = quat_rotate(self.base_quat, self._unit_x)
        self.base_heading = torch.atan2(forward[:, 1], forward[:, 0])  # yaw of the body's x axis
        self.dof_pos = sim.dof_pos
        self.dof_vel = sim.dof_vel
        self.torques = sim.applied_torques
        self.foot_contact = sim.foot_contact
        self.foot_pos = sim.foot_pos_world
        self.body_contact = sim.body_contact
        self.penalized_contact = self.body_contact[:, self.penalized_body_ids]
        self.foot_ground = self.ground.height(self.foot_pos[:, :, :2])  # (n, feet) ground height under each foot
        self.foot_height = self.foot_pos[:, :, 2] - self.foot_radius - self.foot_ground
        self.base_height = self.base_pos[:, 2] - self.foot_ground.mean(dim=1)

    def _update_feet(self) -> None:
        self.foot_vel_xy = (self.foot_pos[:, :, :2] - self.last_foot_pos[:, :, :2]) / self.step_dt
        contact = self.foot_contact | self.last_foot_contact  # filter single-step contact flicker
        self.first_contact = ((self.feet_air_time > 0) & contact).float()
        self.feet_air_time += self.step_dt
        self.feet_air_time_at_touchdown = self.feet_air_time.clone()
        self.feet_air_time *= ~contact
        self.last_foot_contact = self.foot_contact.clone()

    def _update_commands(self) -> None:
        period = max(int(round(self.command_cfg.resampling_time_s / self.step_dt)), 1)
        ids = (self.episode_length_buf % period == 0).nonzero(as_tuple=False).squeeze(-1)
        self.commands.resample(ids)
        self.commands.update_heading(self.base_heading)

    def joint_targets(self) -> torch.Tensor:
        """The PD position targets of the current actions."""
        return self.default_dof_pos + self.action_scale * self.actions

    def _run_events(self, mode: str, ids: torch.Tensor, reset: ResetState | None = None) -> None:
        for event in self.events:
            if mode in event.modes:
                event.term(self, ids, reset)

    def _run_interval_events(self) -> None:
        """Each interval event runs for the envs whose countdown ran out, then restarts their countdown."""
        ran = False
        for event in self.interval_events:
            countdown = self.event_countdown[event.term.name]
            countdown -= 1
            ids = (countdown <= 0).nonzero(as_tuple=False).squeeze(-1)
            if ids.numel() > 0:
                countdown[ids] = event.interval_steps
                event.term(self, ids, None)
                ran = True
        if ran:  # the simulator state changed (a push)
            self._read_state()

    def _check_termination(self) -> None:
        failed = self.sim.sim_failures()
        self.sim_failure_count = failed.sum().float()
        terminated = failed.clone()
        for term in self.terminations:
            terminated |= term(self)
        self.terminated = terminated
        out_of_bounds = self.ground.out_of_bounds(self.base_pos[:, :2])  # not a failure: the terrain ended
        self.time_outs = ((self.episode_length_buf >= self.max_episode_length) | out_of_bounds) & ~self.terminated

    def _compute_rewards(self) -> torch.Tensor:
        total = torch.zeros(self.num_envs, device=self.device)
        termination = None
        for name, (term, weight) in self.rewards.items():
            value = term(self) * (weight * self.step_dt)
            if name == "termination":
                termination = value
            else:
                total += value
            self.episode_sums.add(name, value)
        if self.reward_cfg.only_positive_rewards:
            total.clamp_(min=0.0)
        if termination is not None:  # added after clipping, as in legged_gym
            total += termination
        return total

    def _episode_statistics(self, ids: torch.Tensor) -> dict[str, torch.Tensor]:
        episode_s = self.max_episode_length * self.step_dt
        stats = self.episode_sums.per_second(ids, episode_s)
        if "tracking_lin_vel" in self.episode_sums and self.command_curriculum.active and not self._evaluating:
            weight = self.reward_weights["tracking_lin_vel"]
            self.command_curriculum.gather(self.episode_sums["tracking_lin_vel"][ids] / episode_s / weight)
        stats["max_command_x"] = torch.tensor(float(self.commands.lin_vel_x[1]))
        stats["sim_failures"] = self.sim_failure_count.clone()
        if isinstance(self.ground, CurriculumTerrain):
            stats["terrain_level"] = torch.tensor(self.ground.mean_level())
        return stats

    # --------------------------------------------------------------------------------------------- resets
    def _reset_envs(self, ids: torch.Tensor) -> None:
        reset = ResetState.home(self, ids)
        self._run_events("reset", ids, reset)
        reset.root_pos[:, 2] += reset.height
        self.sim.reset(ids, reset.root_pos, reset.quat, reset.lin_vel, reset.ang_vel, reset.dof_pos, reset.dof_vel)
        self.commands.resample(ids)
        for buffer in (self.actions, self.last_actions, self.last_last_actions, self.last_dof_vel, self.feet_air_time,
                       self.push_vel):
            buffer[ids] = 0.0
        for history in (self.history, self.critic_history):
            if history is not None:
                history.reset(ids)
        self.last_foot_contact[ids] = False
        self.episode_length_buf[ids] = 0
        for event in self.interval_events:
            self.event_countdown[event.term.name][ids] = event.interval_steps
        self.episode_sums.reset(ids)
        self._read_state()
        self.last_foot_pos[ids] = self.foot_pos[ids]

    def set_evaluation_commands(self, commands: torch.Tensor | None) -> None:
        """Hold ``commands`` (num_envs, 3), from this step on, with no observation noise and no pushes; None
        restores training (new commands are drawn at the next resampling)."""
        self.commands.fixed = commands
        if commands is not None:
            self.commands.command.copy_(commands)
        self._evaluating = commands is not None

    def deploy_contract(self) -> dict[str, Any]:
        """What a robot-side loop needs to feed the exported policy and apply its actions (JSON-ready).

        Observation groups are listed term by term in assembly order (``start``/``size`` slice, ``scale``
        applied to the raw value); ``policy`` is read with no noise on a robot. An action ``a`` (clipped to
        ``+-clip_actions``) becomes the joint position target ``default_joint_pos + action_scale * a`` for
        ``joint_names`` in order, tracked by a PD loop with ``kp``/``kd`` (nominal gains, no randomization).
        """
        def floats(values: torch.Tensor) -> list[float]:  # float32 values written as their shortest decimals
            return [float(f"{float(v):.7g}") for v in values.cpu()]

        return {
            "env": f"{type(self).__module__}.{type(self).__qualname__}",
            "observations": as_lists(self.obs_layouts.describe()),
            "observation_clip": float(self.obs_cfg.clip),
            "observation_units": self.obs_layouts.units(),
            "num_actions": int(self.num_actions),
            "joint_names": list(self.sim.dof_names),
            "default_joint_pos": floats(self.default_dof_pos),
            "action_scale": float(self.action_scale),
            "clip_actions": float(self.clip_actions),
            "kp": floats(self.sim.kp),
            "kd": floats(self.sim.kd),
            "torque_limits": floats(self.sim.torque_limits),
            # the no-load speeds of the torque-speed curve training applied (leggedex.robots.motor), or null
            "velocity_limits": None if self.sim.velocity_limits is None else floats(self.sim.velocity_limits),
            "control_dt": float(self.step_dt),
            "sim_dt": float(self.sim.sim_dt),
            "decimation": int(self.sim.substeps),
            "terminations": as_lists({name: dict(entry) for name, entry in self.termination_cfg.terms.items()
                                        if entry is not None}),
            "training_randomization": self.training_randomization(),
        }

    def training_randomization(self) -> dict[str, Any]:
        """What training varied (the events table as run, observation noise), for the deploy contract: a robot-side
        loop can check that the robot's actuators and sensors lie inside what the policy has seen."""
        events = {name: dict(entry) for name, entry in self.event_cfg.terms.items() if entry is not None}
        cfg = self.obs_cfg
        noise = {"uniform_half_width": {"projected_gravity": cfg.noise_gravity, "base_ang_vel": cfg.noise_ang_vel,
                                        "dof_pos": cfg.noise_dof_pos, "dof_vel": cfg.noise_dof_vel},
                 "noise_level": cfg.noise_level} if cfg.add_noise else None
        return as_lists({"events": events, "observation_noise": noise})

    # ------------------------------------------------------------------------------------------ observing
    def raw_observations(self, names: set[str]) -> dict[str, torch.Tensor]:
        """The raw (unscaled) value of every observation term in ``names``."""
        return {name: self.observation_table[name](self) for name in names}

    def _observe(self) -> None:
        """Assemble every group once per step (noise drawn here, history frames pushed here)."""
        groups, clip = self.obs_layouts, self.obs_cfg.clip
        terms = self.raw_observations(groups.term_names)
        critic = groups.critic_frame.assemble(terms, self._critic_scales).clamp(-clip, clip)
        policy = critic[:, : groups.policy.size]
        noise_free = policy.clone() if groups.noise_free_policy else None
        if self.sensing_delayed:
            policy = self._delayed_frame(policy)
        if self.obs_cfg.add_noise and not self._evaluating:
            noise = torch.rand(policy.shape, device=self.device, generator=self.generator) * 2 - 1
            policy = policy + noise * self._noise
        if self.imu_biased and not self._evaluating:
            policy = policy.clone()
            for i, (start, scale) in enumerate(self._imu_slots):
                policy[:, start:start + 3] += self.imu_bias[:, 3 * i:3 * i + 3] * scale
        self.critic_history.push(critic)
        obs = {"policy": policy.clone(), "critic": self.critic_history.flat.clone()}
        if self.history is not None:
            self.history.push(policy)
            obs["history"] = self.history.flat.clone()
        if groups.privileged is not None and self._privileged_scales is not None:
            obs["privileged"] = groups.privileged.assemble(terms, self._privileged_scales).clamp(-clip, clip)
        if noise_free is not None:
            obs["noise_free_policy"] = noise_free
        self._obs = obs

    def _delayed_frame(self, frame: torch.Tensor) -> torch.Tensor:
        """The policy frame read ``observation_latency`` late: interpolated towards the previous step's frame (the
        same frame after a reset); the commands and the last action are the policy's own and are not delayed."""
        previous, self._last_policy_frame = self._last_policy_frame, frame.clone()
        if previous is None or self._evaluating:
            return frame
        fresh = self.episode_length_buf == 0
        lag = (self.observation_latency / self.step_dt).masked_fill(fresh, 0.0)[:, None]
        delayed = frame - lag * (frame - previous)
        own = self._own_slots
        delayed[:, own] = frame[:, own]
        return delayed

    def reset(self) -> Obs:
        super().reset()
        self._observe()
        return self.get_observations()

    def get_observations(self) -> Obs:
        """The observations of the current step (the same tensors until the next step)."""
        return dict(self._obs)

    # ------------------------------------------------------------------------------------------------ resume
    _BUFFERS = ("actions", "last_actions", "last_last_actions", "last_dof_vel", "feet_air_time", "last_foot_contact",
                "last_foot_pos", "push_vel", "imu_bias", "observation_latency")

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["sim"] = self.sim.state_dict()
        state.update({name: getattr(self, name).clone() for name in self._BUFFERS})
        state["episode_sums"] = self.episode_sums.state_dict()
        state["ground"] = self.ground.state_dict()
        state["command_curriculum"] = self.command_curriculum.state_dict()
        state["event_countdown"] = {name: countdown.clone() for name, countdown in self.event_countdown.items()}
        state["observations"] = {name: obs.clone() for name, obs in self._obs.items()}
        state["critic_history"] = self.critic_history.state_dict()
        if self._last_policy_frame is not None:
            state["last_policy_frame"] = self._last_policy_frame.clone()
        if self.history is not None:
            state["history"] = self.history.state_dict()
        state["commands"] = {"command": self.commands.command.clone(), "heading": self.commands.heading.clone(),
                             "in_heading_mode": self.commands.in_heading_mode.clone(),
                             "lin_vel_x": list(self.commands.lin_vel_x)}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.sim.load_state_dict(state["sim"])
        for name in self._BUFFERS:
            if name in state:  # imu_bias is absent from checkpoints written before it
                getattr(self, name).copy_(state[name])
        self.episode_sums.load_state_dict(state["episode_sums"])
        self.ground.load_state_dict(state["ground"])
        if "command_curriculum" in state:  # absent in checkpoints written before the curriculum cadence
            self.command_curriculum.load_state_dict(state["command_curriculum"])
        countdowns = state.get("event_countdown", {"push": state.get("push_countdown")})  # older: one push countdown
        for name, countdown in self.event_countdown.items():
            if countdowns.get(name) is not None:
                countdown.copy_(countdowns[name])
        self._obs = {name: obs.clone() for name, obs in state["observations"].items()}
        self.critic_history.load_state_dict(state["critic_history"])
        frame = state.get("last_policy_frame")
        self._last_policy_frame = frame.clone() if frame is not None else None
        if self.history is not None:
            self.history.load_state_dict(state["history"])
        self.commands.command.copy_(state["commands"]["command"])
        self.commands.heading.copy_(state["commands"]["heading"])
        if "in_heading_mode" in state["commands"]:  # absent in checkpoints written before heading_share
            self.commands.in_heading_mode.copy_(state["commands"]["in_heading_mode"])
        self.commands.lin_vel_x = list(state["commands"]["lin_vel_x"])
        self._read_state()

    def close(self) -> None:
        self.sim = None  # type: ignore[assignment]
