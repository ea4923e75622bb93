"""The actor-critic of ``DreamWaQPPO`` (Nahrendra et al., ICRA 2023): a beta-VAE context estimator on the history.

- encoder (``estimator``, an MLP): ``history -> (mean, log-variance)`` of the context ``[z, v]``: a latent ``z``
  (``latent_dim``) and an explicit estimate ``v`` of named privileged terms (by default the base linear velocity);
  log-variances clipped to [-5, 5], both parts reparameterized;
- decoder (an MLP): ``[z, v] -> `` the next noise-free policy observation;
- actor: ``[policy, z, v]``, a sample of the context in rollouts (drawn once per step and stored, so the update
  re-evaluates the very input the actor acted on), its mean when deployed; PPO's gradient stops at the context;
- critic: ``critic``.

The VAE is trained apart (``vae_losses``): squared error of ``v`` against its label, of the reconstruction against
the next observation (where the episode went on), and ``beta`` times the KL divergence of ``z`` from N(0, I).
"""

from __future__ import annotations

from typing import Any

import torch

from leggedex.modules.actor_critic_estimator import ActorCriticEstimator
from leggedex.modules.mlp import MLP

LOG_VAR_LIMIT = 5.0


class ActorCriticDreamWaQ(ActorCriticEstimator):
    """See the module docstring; ``num_estimates`` is the size of ``v``, ``num_target_obs`` of the decoder's
    output."""

    def __init__(
        self,
        num_policy_obs: int,
        num_history_obs: int,
        num_critic_obs: int,
        num_actions: int,
        num_estimates: int,
        num_target_obs: int,
        latent_dim: int = 16,
        num_probabilities: int = 0,
        estimator_hidden_dims: list[int] | tuple[int, ...] = (256, 128),
        decoder_hidden_dims: list[int] | tuple[int, ...] = (256, 128),
        activation: str = "elu",
        **actor_critic_options: Any,
    ) -> None:
        if num_probabilities:
            raise ValueError("ActorCriticDreamWaQ estimates values only (num_probabilities must be 0)")
        if latent_dim <= 0:
            raise ValueError(f"latent_dim must be positive, got {latent_dim}")
        context = latent_dim + num_estimates
        super().__init__(num_policy_obs, num_history_obs, num_critic_obs, num_actions, num_estimates, 0,
                         estimator_hidden_dims, activation, num_actor_context=context,
                         num_estimator_outputs=2 * context, **actor_critic_options)
        self.latent_dim = latent_dim
        self.context_dim = context
        self.decoder = MLP(context, num_target_obs, decoder_hidden_dims, activation)

    def context_moments(self, history: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and clipped log-variance of the context ``[z, v]`` on a normalized history."""
        mean, log_var = self.estimator(history).split(self.context_dim, dim=-1)
        return mean, log_var.clamp(-LOG_VAR_LIMIT, LOG_VAR_LIMIT)

    def sample_context(self, history: torch.Tensor) -> torch.Tensor:
        mean, log_var = self.context_moments(history)
        return mean + torch.randn_like(mean) * (0.5 * log_var).exp()

    def estimate(self, history: torch.Tensor) -> torch.Tensor:
        """The mean of the explicit estimate ``v``."""
        return self.context_moments(history)[0][..., self.latent_dim:]

    def estimator_loss(self, history: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (self.estimate(history) - target).square().mean()

    def context_distribution(self, policy: torch.Tensor, context: torch.Tensor) -> torch.distributions.Normal:
        """The action distribution on a normalized ``policy`` and a drawn context."""
        return self.distribution(torch.cat([policy, context], dim=-1))

    def actor_input(self, policy: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # deployed: the context's mean
            mean, _ = self.context_moments(history)
        return torch.cat([policy, mean], dim=-1)

    def vae_losses(self, history: torch.Tensor, next_target: torch.Tensor, went_on: torch.Tensor,
                   label: torch.Tensor) -> dict[str, torch.Tensor]:
        """``estimate`` (MSE of ``v``), ``reconstruction`` (MSE of the decoded next observation over the samples
        whose episode ``went_on``) and ``kl`` (of ``z``, summed over its dimensions, averaged over samples)."""
        mean, log_var = self.context_moments(history)
        context = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        k = self.latent_dim
        reconstruction = (self.decoder(context) - next_target).square().mean(-1)
        weights = went_on.to(reconstruction.dtype)
        kl = -0.5 * (1.0 + log_var[..., :k] - mean[..., :k].square() - log_var[..., :k].exp()).sum(-1)
        return {"estimate": (context[..., k:] - label).square().mean(),
                "reconstruction": (reconstruction * weights).sum() / weights.sum().clamp(min=1.0),
                "kl": kl.mean()}
