"""The vectorized-environment contract every leggedex task implements.

A ``VecEnv`` steps ``num_envs`` copies of a task at once, in torch, on ``device``.

Observations are *named groups*: ``obs`` is a ``dict[str, Tensor]`` whose keys are the group names and whose
values have shape ``(num_envs, size)``. Every env provides at least

- ``"policy"``: what the deployed actor sees (noisy, scaled);
- ``"critic"``: what the value function sees during training (may hold privileged, noise-free quantities);

and may provide more (``"privileged"``, ``"history"``, ...). ``obs_groups`` maps each group name to its size and
is fixed at construction; methods check it before they build networks (see ``ObsSpec``). An env that assembles a
group from named quantities may say where each lies (``obs_terms``: group -> term -> start, size, scale).

Stepping::

    obs = env.reset()                                   # dict of (num_envs, size) tensors
    obs, rewards, dones, extras = env.step(actions)     # actions: (num_envs, num_actions)

- ``rewards``: (num_envs,) float; ``dones``: (num_envs,) bool, True where an episode ended in this step
  (termination *or* time-out). Ended envs are reset inside ``step``: the returned ``obs`` of a done env is the
  first observation of its next episode.
- ``extras["time_outs"]``: (num_envs,) bool, the subset of ``dones`` caused by the episode-length limit, which a
  method bootstraps instead of treating as failure.
- ``extras["episode"]``: ``dict[str, Tensor]`` of scalar statistics over the episodes that ended in this step
  (for example each reward term's mean per-second sum); present only when at least one episode ended.
  Envs list the keys they may report in ``episode_keys`` so that data-parallel ranks reduce the same set.
- ``extras["log"]`` (optional): ``dict[str, Tensor]`` of scalar per-step statistics (curriculum levels, ...).

``max_episode_length`` is in policy steps; ``episode_length_buf`` (num_envs,) long counts the steps of each
running episode. ``step_dt`` is the policy period in seconds.

Seeding: an env owns a ``torch.Generator`` seeded at construction; all its randomness comes from it, so two
envs built with the same seed produce the same trajectories under the same actions. ``state_dict()`` /
``load_state_dict()`` capture everything needed to continue bit-exactly (simulator state, task buffers,
generator state): training resumes from a checkpoint as if it had never stopped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

from leggedex.envs.mirror import Mirror

Obs = dict[str, torch.Tensor]


@runtime_checkable
class ResettablePolicy(Protocol):
    """A policy that remembers (a recurrent one): ``reset(dones)`` after every env step forgets the envs whose
    episode ended."""

    def __call__(self, obs: Obs) -> torch.Tensor: ...

    def reset(self, dones: torch.Tensor) -> None: ...


def reset_after_step(policy: Any, dones: torch.Tensor) -> None:
    """What a loop driving an env with ``policy`` calls after each step: ``policy.reset(dones)`` where the policy
    remembers (a ``ResettablePolicy``); nothing for a plain function of the observations."""
    if isinstance(policy, ResettablePolicy):
        policy.reset(dones)


TermSlices = dict[str, dict[str, Any]]
"""Term name -> ``{"start", "size", "scale"}``: where a named quantity lies in an observation group (``scale``: what
the env multiplied the raw value by, a number or one per component)."""


def term_slices(terms: list[tuple[str, int]] | tuple[tuple[str, int], ...], scale: float = 1.0) -> TermSlices:
    """``TermSlices`` of consecutive ``(name, size)`` terms that all carry ``scale``."""
    out, start = {}, 0
    for name, size in terms:
        out[name] = {"start": start, "size": size, "scale": scale}
        start += size
    return out


@dataclass(frozen=True)
class ObsSpec:
    """Sizes of an env's observation groups and of its action: what a method needs to build its networks.

    ``extras`` describe the groups further and take no part in ``==`` (a checkpoint written before an env
    described itself still matches it). ``extras["terms"]``, when the env knows its layouts (``VecEnv.obs_terms``),
    maps a group to its ``TermSlices``, so that a method can pick a quantity by name (``EstimatorPPO``).
    """

    groups: dict[str, int]
    num_actions: int
    extras: dict[str, Any] = field(default_factory=dict, compare=False)

    def require(self, names: tuple[str, ...] | list[str], who: str) -> None:
        """Raise one ``ValueError`` naming every group in ``names`` this spec lacks."""
        missing = [name for name in names if name not in self.groups]
        if missing:
            raise ValueError(
                f"{who} needs observation group(s) {missing}, but the env provides only "
                f"{sorted(self.groups)}. Choose an env that produces them or a method that does not need them."
            )

    def to_dict(self) -> dict[str, Any]:
        return {"groups": dict(self.groups), "num_actions": self.num_actions, "extras": dict(self.extras)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObsSpec:
        return cls(groups=dict(data["groups"]), num_actions=int(data["num_actions"]), extras=dict(data["extras"]))


class VecEnv(ABC):
    """Base class of vectorized environments; see the module docstring for the contract."""

    num_envs: int
    num_actions: int
    max_episode_length: int
    step_dt: float
    device: torch.device
    episode_length_buf: torch.Tensor
    random_initial_episode_length: bool = False

    @property
    def episode_keys(self) -> tuple[str, ...]:
        """The statistics this env may report in ``extras["episode"]`` (none by default)."""
        return ()

    def __init__(self, num_envs: int, seed: int, device: str | torch.device) -> None:
        if not isinstance(num_envs, int) or num_envs <= 0:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.num_envs = num_envs
        self.seed = seed
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)

    @property
    @abstractmethod
    def obs_groups(self) -> dict[str, int]:
        """Observation group name -> size of its last dimension."""

    @property
    def obs_terms(self) -> dict[str, TermSlices]:
        """Group -> its named terms (``TermSlices``), for the groups the env assembles from named quantities;
        ``{}`` when it does not describe them."""
        return {}

    def reward_terms(self) -> dict[str, torch.Tensor]:
        """Each named reward term's (num_envs,) contribution to the latest step's rewards, for an env that sums
        named terms (``{}`` otherwise): what an error about a non-finite reward names."""
        return {}

    def mirror(self) -> Mirror:
        """The task's left-right mirror of every observation group and of the action (``leggedex.envs.mirror``),
        for symmetry augmentation; raises ``ValueError`` saying why when the task has none."""
        raise ValueError(f"{type(self).__name__} defines no mirror (VecEnv.mirror)")

    @property
    def obs_spec(self) -> ObsSpec:
        terms = self.obs_terms
        extras: dict[str, Any] = {"terms": terms} if terms else {}
        try:
            extras["mirror"] = self.mirror().to_dict()
        except ValueError as reason:
            extras["mirror_unavailable"] = str(reason)
        return ObsSpec(groups=dict(self.obs_groups), num_actions=self.num_actions, extras=extras)

    def reset(self) -> Obs:
        """Reset every env and return the first observations.

        With ``random_initial_episode_length`` the episode counters start spread over the episode, so that
        envs do not all time out together (legged_gym's trick for smooth statistics and rollouts).
        """
        self._reset_envs(torch.arange(self.num_envs, device=self.device))
        if self.random_initial_episode_length:
            self.episode_length_buf.random_(0, self.max_episode_length, generator=self.generator)
        return self.get_observations()

    @abstractmethod
    def _reset_envs(self, ids: torch.Tensor) -> None:
        """Start new episodes in the envs ``ids``."""

    def check_actions(self, actions: torch.Tensor) -> None:
        if actions.shape != (self.num_envs, self.num_actions):
            raise ValueError(f"actions must have shape {(self.num_envs, self.num_actions)}, got {tuple(actions.shape)}")

    @abstractmethod
    def step(self, actions: torch.Tensor) -> tuple[Obs, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Apply ``actions`` for one policy step; see the module docstring."""

    @abstractmethod
    def get_observations(self) -> Obs:
        """The current observations, without stepping."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly; subclasses extend it with their own buffers."""
        return {"generator": self.generator.get_state(), "episode_length_buf": self.episode_length_buf.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.episode_length_buf.copy_(state["episode_length_buf"])

    def close(self) -> None:  # noqa: B027 (an optional hook: a task without simulator resources keeps it)
        """Release simulator resources (threads, GPU memory)."""
