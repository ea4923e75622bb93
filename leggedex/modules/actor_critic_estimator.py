"""The actor-critic of ``EstimatorPPO``: an estimator reads the proprioceptive history, the actor reads the
policy observation and the estimate.

- estimator: ``history -> estimate`` (an MLP), trained by supervised regression on privileged quantities;
  its first ``num_estimates - num_probabilities`` outputs are values, the last ``num_probabilities`` are logits
  of 0/1 quantities (contacts), returned as probabilities by ``estimate``;
- actor: ``[policy, estimate]``, with the estimate taken without gradient: PPO trains the actor, the regression
  alone trains the estimator, so the estimate keeps the meaning (and unit) of its target;
- critic: ``critic``.

As in ``ActorCritic`` the networks take normalized observations and the normalizers live here; the history is
normalized frame by frame with the policy normalizer. ``deploy_action`` takes raw observations.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.distributions import Normal
from torch.nn import functional as F

from leggedex.modules.actor_critic import ActorCritic
from leggedex.modules.mlp import MLP
from leggedex.modules.normalizer import normalize_frames


class ActorCriticEstimator(ActorCritic):
    """See the module docstring."""

    def __init__(
        self,
        num_policy_obs: int,
        num_history_obs: int,
        num_critic_obs: int,
        num_actions: int,
        num_estimates: int,
        num_probabilities: int = 0,
        estimator_hidden_dims: list[int] | tuple[int, ...] = (256, 128),
        activation: str = "elu",
        num_actor_context: int | None = None,
        num_estimator_outputs: int | None = None,
        **actor_critic_options: Any,
    ) -> None:
        """``actor_critic_options``: the other ``ActorCritic`` arguments (hidden sizes, std, normalization).
        ``num_actor_context`` (what the actor reads beside ``policy``) and ``num_estimator_outputs`` default to
        ``num_estimates``; a subclass whose history network gives more (DreamWaQ's latent and variances) sets them."""
        if num_history_obs % num_policy_obs:
            raise ValueError(f"the history group ({num_history_obs}) must hold whole policy frames "
                             f"({num_policy_obs} each)")
        if not 0 <= num_probabilities <= num_estimates or num_estimates <= 0:
            raise ValueError(f"need 0 <= num_probabilities <= num_estimates and num_estimates > 0, got "
                             f"{num_probabilities} and {num_estimates}")
        super().__init__(num_policy_obs, num_critic_obs, num_actions, activation=activation,
                         actor_latent_dim=num_estimates if num_actor_context is None else num_actor_context,
                         **actor_critic_options)
        self.num_policy_obs = num_policy_obs
        self.num_values = num_estimates - num_probabilities
        outputs = num_estimates if num_estimator_outputs is None else num_estimator_outputs
        self.estimator = MLP(num_history_obs, outputs, estimator_hidden_dims, activation)

    def normalize_history(self, raw_history: torch.Tensor) -> torch.Tensor:
        return normalize_frames(self.actor_normalizer, raw_history, self.num_policy_obs)

    def estimate(self, history: torch.Tensor) -> torch.Tensor:
        """The estimate on a normalized history: values, then probabilities."""
        raw = self.estimator(history)
        if self.num_values == raw.shape[-1]:
            return raw
        return torch.cat([raw[..., : self.num_values], torch.sigmoid(raw[..., self.num_values :])], dim=-1)

    def estimator_loss(self, history: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean over outputs of the squared error (values) and the binary cross-entropy (probabilities)."""
        raw = self.estimator(history)
        k = self.num_values
        squared = (raw[..., :k] - target[..., :k]).square()
        cross_entropy = F.binary_cross_entropy_with_logits(raw[..., k:], target[..., k:], reduction="none")
        return torch.cat([squared, cross_entropy], dim=-1).mean()

    def policy_distribution(self, policy: torch.Tensor, history: torch.Tensor) -> Normal:
        """The action distribution on normalized ``policy`` and ``history``."""
        return self.distribution(self.actor_input(policy, history))

    def actor_input(self, policy: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # see the module docstring: PPO's gradient stops at the estimate
            estimate = self.estimate(history)
        return torch.cat([policy, estimate], dim=-1)

    def deploy_action(self, raw_policy: torch.Tensor, raw_history: torch.Tensor) -> torch.Tensor:
        """The deterministic deploy policy on raw observations (normalization included)."""
        return self.actor(self.actor_input(self.actor_normalizer(raw_policy), self.normalize_history(raw_history)))

    def act_inference(self, raw_actor_obs: torch.Tensor) -> torch.Tensor:
        raise TypeError("ActorCriticEstimator acts on the policy observation and the history: call "
                        "deploy_action(policy, history)")
