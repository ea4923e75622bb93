"""The on-policy DataModule: builds the vectorized env once per process and serves rollouts as batches.

One batch per Lightning epoch: the loader is *sized* (length 1), so Lightning never prefetches, and the
rollout is collected lazily when the fit loop asks for the batch, i.e. after the previous epoch's update.
The rollout of iteration k is therefore always collected with the parameters produced by update k-1.

Under DDP every rank has its own env (seed + rank). A checkpoint holds every rank's env state, observations
and episode bookkeeping, in rank order; on resume a rank takes its own entry, or keeps its freshly built env
when the checkpoint was written by fewer ranks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from lightning.pytorch import LightningDataModule, Trainer

from leggedex.envs.vec_env import Obs, VecEnv
from leggedex.methods.base import Rollout, gather_to_rank_zero, trainer_datamodule
from leggedex.methods.divergence import check_actions, check_env_step

EnvFactory = Callable[[int, int, str], VecEnv]
"""Builds an env from (num_envs, seed, device); in a config: ``class_path`` + task ``init_args``."""


class EpisodeTracker:
    """Running return and length of every env; collects finished episodes and the env's episode statistics."""

    def __init__(self, num_envs: int, device: torch.device) -> None:
        self.returns = torch.zeros(num_envs, device=device)
        self.lengths = torch.zeros(num_envs, device=device)
        self._finished_returns: list[torch.Tensor] = []
        self._finished_lengths: list[torch.Tensor] = []
        self._info: dict[str, list[torch.Tensor]] = {}

    def update(self, rewards: torch.Tensor, dones: torch.Tensor, extras: dict[str, Any]) -> None:
        self.returns += rewards
        self.lengths += 1
        if bool(dones.any()):
            self._finished_returns.append(self.returns[dones].clone())
            self._finished_lengths.append(self.lengths[dones].clone())
            self.returns[dones] = 0.0
            self.lengths[dones] = 0.0
        for group in ("episode", "log"):
            for key, value in extras.get(group, {}).items():
                self._info.setdefault(key, []).append(torch.as_tensor(value, dtype=torch.float32).reshape(()))

    def pop(self) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Finished returns, finished lengths and the mean of each statistic since the last ``pop``."""
        empty = self.returns.new_zeros(0)
        returns = torch.cat(self._finished_returns) if self._finished_returns else empty
        lengths = torch.cat(self._finished_lengths) if self._finished_lengths else empty
        info = {key: torch.stack(values).mean() for key, values in self._info.items()}
        self._finished_returns, self._finished_lengths, self._info = [], [], {}
        return returns, lengths, info

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"returns": self.returns.clone(), "lengths": self.lengths.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.returns.copy_(state["returns"])
        self.lengths.copy_(state["lengths"])


def collect_rollout(env: VecEnv, method: Any, obs: Obs, tracker: EpisodeTracker) -> Rollout:
    """One rollout from ``obs``: ``method.act`` / ``env.step`` / ``method.process_env_step``, no autograd.

    Observations, rewards and actions are checked as they enter (``divergence.check_env_step``)."""
    start = time.perf_counter()
    iteration = method.iteration
    with torch.inference_mode():
        check_env_step(env, obs, None, iteration, 0)
        for step in range(method.num_steps_per_env):
            actions = method.act(obs)
            check_actions(actions, iteration, step)
            obs, rewards, dones, extras = env.step(actions)
            check_env_step(env, obs, rewards, iteration, step)
            method.process_env_step(obs, rewards, dones, extras)
            tracker.update(rewards, dones, extras)
    returns, lengths, info = tracker.pop()
    return Rollout(
        storage=method.storage,
        last_obs=obs,
        collection_time=time.perf_counter() - start,
        num_steps=method.num_steps_per_env,
        num_envs=env.num_envs,
        episode_returns=returns,
        episode_lengths=lengths,
        episode_info=info,
    )


def optimizers_of(configured: Any) -> Any:
    """The optimizer(s) of what ``configure_optimizers`` returned: one optimizer, a list of them, or a pair
    (optimizers, schedulers). Schedulers are the method's own business (it keeps and steps them)."""
    if isinstance(configured, tuple) and len(configured) == 2 and isinstance(configured[0], list):
        return configured[0]
    return configured


class PlainLoop:
    """The Trainer's iteration without Lightning (benchmarks, reference computations): the same rollout and
    update code, with the method's optimizer(s) held here."""

    def __init__(self, env: VecEnv, method: Any, device: torch.device | str | None = None) -> None:
        """``device``: where the method runs (default: the env's device)."""
        self.env = env
        self.method = method
        method.build(env.obs_spec)
        method.to(device or env.device)
        method.setup_storage(env.num_envs)
        self.optimizer = optimizers_of(method.configure_optimizers())
        self.tracker = EpisodeTracker(env.num_envs, env.device)
        with torch.inference_mode():
            self.obs = env.reset()

    def collect(self) -> Rollout:
        rollout = collect_rollout(self.env, self.method, self.obs, self.tracker)
        self.obs = rollout.last_obs
        return rollout

    def learn(self, rollout: Rollout) -> dict[str, float]:
        losses = self.method.learn(rollout, self.optimizer)
        self.method.plain_iteration += 1
        return losses

    def timed_iteration(self, collection_threads: int = 1, update_threads: int | None = None) -> tuple[float, float]:
        """One collect + learn with training's thread split (``OnPolicyDataModule(collection_threads=1)``):
        (collection seconds, iteration seconds), the device synchronized before each clock read."""
        update_threads = update_threads or torch.get_num_threads()
        sync = torch.cuda.synchronize if self.env.device.type == "cuda" else (lambda: None)
        start = time.perf_counter()
        torch.set_num_threads(collection_threads)
        rollout = self.collect()
        sync()
        collected = time.perf_counter() - start
        torch.set_num_threads(update_threads)
        self.learn(rollout)
        sync()
        return collected, time.perf_counter() - start


class RolloutLoader:
    """A sized iterable of one rollout per epoch (see the module docstring)."""

    def __init__(self, datamodule: OnPolicyDataModule) -> None:
        self.datamodule = datamodule

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[Rollout]:
        yield self.datamodule.collect()


class OnPolicyDataModule(LightningDataModule):
    """Owns the env of this process; ``collect()`` runs one rollout with the LightningModule's ``act``.

    Args:
        env: the task, built in ``setup()`` as ``env(num_envs, seed, device)``.
        num_envs: environments stepped by this process (each DDP rank has its own).
        seed: base seed; the env of global rank r gets ``seed + r``. None: Lightning's global seed
            (``seed_everything``), or 0.
        device: where the env runs; None: the Trainer's device.
        collection_threads: torch intra-op threads while collecting (None: leave as set). On CPU, 1 keeps
            torch's OpenMP workers from spinning against the simulator's thread pool between physics steps
            (measured: a MuJoCo step took 9.1 ms instead of 5.8 ms with 2 torch threads on 2 cores); the
            update then runs with ``--torch_threads``.
    """

    def __init__(
        self,
        env: EnvFactory,
        num_envs: int = 1024,
        seed: int | None = None,
        device: str | None = None,
        collection_threads: int | None = 1,
    ) -> None:
        super().__init__()
        if num_envs <= 0:
            raise ValueError(f"data.num_envs must be positive, got {num_envs}")
        self.env_factory = env
        self.num_envs = num_envs
        self.seed = seed
        self.device = device
        if collection_threads is not None and collection_threads <= 0:
            raise ValueError(f"data.collection_threads must be positive or null, got {collection_threads}")
        self.collection_threads = collection_threads
        self.env: VecEnv | None = None
        self.obs: Obs | None = None
        self.tracker: EpisodeTracker | None = None

    @property
    def global_rank(self) -> int:
        return self.trainer.global_rank if self.trainer is not None else 0

    def env_seed(self) -> int:
        base = self.seed if self.seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))
        return base + self.global_rank

    def setup(self, stage: str | None = None) -> None:
        if self.env is not None:
            return
        device = self.device or (str(self.trainer.strategy.root_device) if self.trainer is not None else "cpu")
        self.env = self.env_factory(self.num_envs, self.env_seed(), device)
        if not isinstance(self.env, VecEnv):
            raise TypeError(f"data.env must build a leggedex VecEnv, got {type(self.env).__name__}")
        with torch.inference_mode():
            self.obs = self.env.reset()
        self.tracker = EpisodeTracker(self.env.num_envs, self.env.device)

    def evaluation_env(self, num_envs: int, seed: int, spread_start: bool = False) -> VecEnv:
        """Another env of the configured task, for evaluation, video, play and export (built on the CPU; a backend
        on a GPU keeps its own device). Every episode starts at step 0 unless ``spread_start``."""
        env = self.env_factory(num_envs, seed, "cpu")
        env.random_initial_episode_length = spread_start
        return env

    def train_dataloader(self) -> RolloutLoader:
        return RolloutLoader(self)

    def built(self) -> tuple[VecEnv, Obs, EpisodeTracker]:
        """The env, its current observations and the episode tracker, which ``setup()`` builds."""
        if self.env is None or self.obs is None or self.tracker is None:
            raise RuntimeError("OnPolicyDataModule has no env yet: setup() builds it")
        return self.env, self.obs, self.tracker

    def collect(self) -> Rollout:
        """Step the env ``num_steps_per_env`` times with the current policy, filling the module's storage."""
        if self.trainer is None:
            raise RuntimeError("OnPolicyDataModule.collect acts with the Trainer's LightningModule, so it needs a "
                               "Trainer; PlainLoop collects without one")
        env, obs, tracker = self.built()
        update_threads = torch.get_num_threads()
        if self.collection_threads is not None:
            torch.set_num_threads(self.collection_threads)
        try:
            rollout = collect_rollout(env, self.trainer.lightning_module, obs, tracker)
        finally:
            torch.set_num_threads(update_threads)
        self.obs = rollout.last_obs
        return rollout

    def state_dict(self) -> dict[str, Any]:
        """``{"ranks": [state of rank 0, rank 1, ...]}``; a collective under DDP (see ``gather_to_rank_zero``)."""
        if self.env is None:
            return {}
        env, obs, tracker = self.built()
        own = {
            "env": env.state_dict(),
            "obs": {k: v.clone() for k, v in obs.items()},
            "tracker": tracker.state_dict(),
        }
        return {"ranks": gather_to_rank_zero(own)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        if self.env is None:
            raise RuntimeError("OnPolicyDataModule.load_state_dict needs setup() to have built the env first")
        if self.global_rank >= len(state["ranks"]):
            return  # written by fewer ranks: this rank keeps its fresh env (seed + rank)
        env, _, tracker = self.built()
        own = state["ranks"][self.global_rank]
        saved_envs = int(own["tracker"]["returns"].shape[0])
        if saved_envs != env.num_envs:
            raise ValueError(f"data.num_envs is {env.num_envs}, but the checkpoint holds the state of {saved_envs} "
                             f"envs per process: resume with --data.num_envs {saved_envs}")
        env.load_state_dict(own["env"])
        self.obs = {k: v.to(env.device) for k, v in own["obs"].items()}
        tracker.load_state_dict(own["tracker"])

    def teardown(self, stage: str | None = None) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None


def on_policy_datamodule(trainer: Trainer, who: str) -> OnPolicyDataModule:
    """The Trainer's datamodule, which ``who`` (a callback) needs to be an ``OnPolicyDataModule``."""
    datamodule = trainer_datamodule(trainer)
    if not isinstance(datamodule, OnPolicyDataModule):
        raise TypeError(f"{who} needs the datamodule to be an OnPolicyDataModule, got {type(datamodule).__name__}")
    return datamodule
