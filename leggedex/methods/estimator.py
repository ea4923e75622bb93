"""PPO with an explicit state estimator trained concurrently (LeggedGym-Ex's go2_ee; Ji et al. 2022,
"Concurrent Training of a Control Policy and a State Estimator for Dynamic and Robust Legged Locomotion").

An estimator reads the proprioceptive history and predicts privileged quantities named in the config
(``estimated_terms``, terms of the env's ``privileged`` group; by default the base linear velocity). The actor
acts on ``[policy, estimate]``; the critic on ``critic``. Each PPO mini-batch loss gains the regression term
``estimator_loss_coef * loss(estimator(history), privileged target)`` (squared error, or binary cross-entropy for
the ``probability_terms``), logged as ``Loss/estimator``. The estimate enters the actor without gradient, so the
estimator learns from the regression alone and its output keeps the target's meaning.

One backward per mini-batch reaches every parameter (PPO's terms the actor, critic and std; the regression the
estimator), so plain DDP needs no ``find_unused_parameters``. The estimator follows PPO's learning rate.

Logged besides PPO's values: ``Estimator/<term>_error``, the mean absolute error of each term in the raw
quantity's unit (m/s for ``base_lin_vel``: the env's observation scale is divided out), measured on each rollout
before the update trains on it, i.e. on the estimates the actor acted with. The deployed policy reads only
``policy`` and ``history``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn
from torch.distributions import Normal

from leggedex.envs.vec_env import Obs, ObsSpec
from leggedex.methods.base import Rollout
from leggedex.methods.estimated_terms import EstimatedTerms
from leggedex.methods.ppo import PPO
from leggedex.modules.actor_critic_estimator import ActorCriticEstimator
from leggedex.storage.rollout import MiniBatch, RolloutStorage


class EstimatorPPO(PPO):
    """PPO's options (``**ppo_kwargs``, see ``PPO``) plus the estimator's."""

    required_obs_groups: ClassVar[tuple[str, ...]] = ("policy", "history", "privileged", "critic")
    actor_critic_type: ClassVar[type[ActorCriticEstimator]] = ActorCriticEstimator
    actor_critic: ActorCriticEstimator | None  # an actor_critic_type: check_networks checks it
    fixed_on_resume = PPO.fixed_on_resume + ("estimator_hidden_dims", "estimated_terms", "probability_terms")

    def __init__(
        self,
        estimator_hidden_dims: list[int] = [256, 128],  # noqa: B006 (LightningCLI shows list defaults)
        estimated_terms: list[str] = ["base_lin_vel"],  # noqa: B006
        probability_terms: list[str] = [],  # noqa: B006
        estimator_loss_coef: float = 1.0,
        **ppo_kwargs: Any,
    ) -> None:
        super().__init__(**ppo_kwargs)
        if not estimated_terms or len(set(estimated_terms)) != len(estimated_terms):
            raise ValueError(f"estimated_terms must name distinct terms, got {estimated_terms}")
        if not set(probability_terms) <= set(estimated_terms):
            raise ValueError(f"probability_terms {probability_terms} must be among estimated_terms {estimated_terms}")
        if estimator_loss_coef < 0:
            raise ValueError(f"estimator_loss_coef must be >= 0, got {estimator_loss_coef}")
        self.estimated: EstimatedTerms | None = None

    # ------------------------------------------------------------------------------------------ construction
    @property
    def built_actor_critic(self) -> ActorCriticEstimator:
        return self.built(self.actor_critic)

    def network_arguments(self, spec: ObsSpec) -> dict[str, Any]:
        """What ``actor_critic_type`` is built with (resolving the estimated terms in ``spec`` first)."""
        hp = self.hparams
        self.estimated = EstimatedTerms.resolve(spec, hp.estimated_terms, hp.probability_terms, type(self).__name__)
        return dict(
            num_policy_obs=spec.groups["policy"], num_history_obs=spec.groups["history"],
            num_critic_obs=spec.groups["critic"], num_actions=spec.num_actions, num_estimates=self.estimated.size,
            num_probabilities=self.estimated.num_probabilities, estimator_hidden_dims=hp.estimator_hidden_dims,
            **self.network_options(),
        )

    def build_networks(self, spec: ObsSpec) -> None:
        self.actor_critic = self.actor_critic_type(**self.network_arguments(spec))

    # ------------------------------------------------------------------------------------------------ hooks
    def normalize_obs(self, obs: Obs, observe: bool = True) -> Obs:
        stored = super().normalize_obs(obs, observe)
        stored["history"] = self.built_actor_critic.normalize_history(obs["history"])
        stored["privileged"] = obs["privileged"]  # raw: the targets keep the env's units
        return stored

    def action_distribution(self, obs: Obs) -> Normal:
        return self.built_actor_critic.policy_distribution(obs["policy"], obs["history"])

    def auxiliary_losses(self, batch: MiniBatch) -> dict[str, torch.Tensor]:
        target = self.built(self.estimated).select(batch.obs["privileged"])
        return {"estimator": self.hparams.estimator_loss_coef
                * self.built_actor_critic.estimator_loss(batch.obs["history"], target)}

    def clip_groups(self, optimizer: Any) -> list[list[nn.Parameter]] | None:
        """With ``per_network`` clipping the estimator's gradient is clipped apart from the actor's too: its
        regression on raw targets (a friction in mm, a latency in s) can be far larger than the policy gradient,
        and sharing one norm would shrink the actor's step to almost nothing."""
        groups = super().clip_groups(optimizer)
        if groups is None:
            return None
        estimator = {id(p) for p in self.built_actor_critic.estimator.parameters()}
        others = [[p for p in group if id(p) not in estimator] for group in groups]
        own = [p for group in groups for p in group if id(p) in estimator]
        return [group for group in others + [own] if group]

    def learn(self, rollout: Rollout, optimizers: Any | Sequence[Any]) -> dict[str, float]:
        errors = self.estimator_errors(rollout.storage)  # before the update: the estimates the actor acted with
        return {**super().learn(rollout, optimizers), **errors}

    @torch.no_grad()
    def estimator_errors(self, storage: RolloutStorage) -> dict[str, float]:
        obs = storage.flat_obs(["history", "privileged"])
        estimate = self.built_actor_critic.estimate(obs["history"])
        estimated = self.built(self.estimated)
        errors = estimated.errors(estimate, estimated.select(obs["privileged"]))
        return {f"Estimator/{name}_error": value for name, value in errors.items()}

    # -------------------------------------------------------------------------------------------- deployment
    def policy_inputs(self) -> tuple[str, ...]:
        return ("policy", "history")

    # the deployed policy reads two groups (policy_inputs()), where PPO's reads one: see PPO.inference_policy
    def inference_policy(  # type: ignore[override]
        self, policy_obs: torch.Tensor, history_obs: torch.Tensor
    ) -> torch.Tensor:
        return self.built_actor_critic.deploy_action(policy_obs, history_obs)
