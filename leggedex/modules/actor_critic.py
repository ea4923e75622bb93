"""The Gaussian actor-critic used by PPO: MLP actor and critic, state-independent action std.

Networks take *normalized* observations; the normalizers live here too (``actor_normalizer`` and
``critic_normalizer``, identity when empirical normalization is off), so that the deploy policy
``act_inference(raw_obs)`` carries its normalization with it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Normal

from leggedex.modules.mlp import MLP
from leggedex.modules.normalizer import EmpiricalNormalizer


class ActorCritic(nn.Module):
    """Actor ``policy obs -> action mean``, critic ``critic obs -> value``, std a learned vector >= ``min_std``."""

    def __init__(
        self,
        num_actor_obs: int,
        num_critic_obs: int,
        num_actions: int,
        actor_hidden_dims: list[int] | tuple[int, ...] = (256, 128, 64),
        critic_hidden_dims: list[int] | tuple[int, ...] = (256, 128, 64),
        activation: str = "elu",
        init_noise_std: float = 1.0,
        min_std: float = 1e-3,
        empirical_normalization: bool = False,
        actor_latent_dim: int = 0,
        actor_input_dim: int | None = None,
        critic_input_dim: int | None = None,
    ) -> None:
        super().__init__()
        if init_noise_std <= 0 or min_std <= 0:
            raise ValueError(f"init_noise_std and min_std must be > 0, got {init_noise_std} and {min_std}")
        self.num_actions = num_actions
        self.min_std = min_std
        # a subclass may append a latent (an encoding of other observations) to the actor's normalized input, or
        # feed the MLPs something else (a recurrent layer's output: ``actor_input_dim``, ``critic_input_dim``)
        actor_in = actor_input_dim if actor_input_dim is not None else num_actor_obs + actor_latent_dim
        critic_in = critic_input_dim if critic_input_dim is not None else num_critic_obs
        self.actor = MLP(actor_in, num_actions, actor_hidden_dims, activation)
        self.critic = MLP(critic_in, 1, critic_hidden_dims, activation)
        self.std = nn.Parameter(torch.full((num_actions,), float(init_noise_std)))
        self.actor_normalizer: nn.Module = (
            EmpiricalNormalizer(num_actor_obs) if empirical_normalization else nn.Identity()
        )
        self.critic_normalizer: nn.Module = (
            EmpiricalNormalizer(num_critic_obs) if empirical_normalization else nn.Identity()
        )

    @property
    def action_std(self) -> torch.Tensor:
        # clamped in the forward pass so that a runaway update can never produce std <= 0
        return self.std.clamp(min=self.min_std)

    def distribution(self, actor_obs: torch.Tensor) -> Normal:
        mean = self.actor(actor_obs)
        return Normal(mean, self.action_std.expand_as(mean))

    def evaluate(self, critic_obs: torch.Tensor) -> torch.Tensor:
        return self.critic(critic_obs).squeeze(-1)

    def act_inference(self, raw_actor_obs: torch.Tensor) -> torch.Tensor:
        """The deterministic deploy policy on raw observations (normalization included)."""
        return self.actor(self.actor_normalizer(raw_actor_obs))
