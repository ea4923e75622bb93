"""Teacher-student PPO (LeggedGym-Ex's go2_ts) as a LightningModule.

Every iteration has two stages:

1. PPO, through PPO's hooks, on the teacher: ``actor([policy, privilege_encoder(privileged)])``, the critic, the
   privilege encoder and the action std (the first optimizer, with PPO's learning-rate schedule);
2. the student's history encoder alone (the second optimizer, ``encoder_learning_rate``, decayed by
   ``encoder_lr_decay`` once per iteration) for ``num_encoder_epochs`` passes on
   ``MSE(history_encoder(history), privilege_encoder(privileged).detach())``.

The deployed policy is the student, ``actor([policy, history_encoder(history)])``: ``policy_inputs()`` is
``("policy", "history")``, so ``leggedex export`` and ``leggedex play`` need nothing special.

Under DDP each backward leaves some parameters without a gradient (PPO's never reaches the history encoder, the
encoder's reaches nothing else), which DDP accepts only with ``find_unused_parameters=True``; ``setup`` refuses
a DDP strategy without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import torch
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.utilities.types import OptimizerLRScheduler
from torch import nn
from torch.distributions import Normal

from leggedex.envs.vec_env import Obs, ObsSpec
from leggedex.methods.base import check_finite
from leggedex.methods.ppo import PPO
from leggedex.modules.actor_critic_ts import ActorCriticTS
from leggedex.storage.rollout_ts import TS_GROUPS, RolloutStorageTS

DDP_FIX = "--trainer.strategy ddp_find_unused_parameters_true"


class TeacherStudentPPO(PPO):
    """PPO's options (``**ppo_kwargs``, see ``PPO``) plus the encoders'; network defaults follow go2_ts."""

    required_obs_groups: ClassVar[tuple[str, ...]] = TS_GROUPS
    actor_critic_type: ClassVar[type[ActorCriticTS]] = ActorCriticTS
    storage_type: ClassVar[type[RolloutStorageTS]] = RolloutStorageTS

    def __init__(
        self,
        actor_hidden_dims: list[int] = [512, 256, 128],  # noqa: B006 (LightningCLI shows list defaults)
        critic_hidden_dims: list[int] = [1024, 256, 128],  # noqa: B006
        latent_dim: int | None = None,
        privilege_encoder_hidden_dims: list[int] = [256, 128],  # noqa: B006
        history_encoder_hidden_dims: list[int] = [256, 128],  # noqa: B006
        history_encoder_type: Literal["mlp", "tcn"] = "mlp",
        encoder_learning_rate: float = 2e-4,
        num_encoder_epochs: int = 2,
        num_encoder_mini_batches: int | None = None,
        encoder_lr_decay: float = 1.0,
        **ppo_kwargs: Any,
    ) -> None:
        super().__init__(actor_hidden_dims=actor_hidden_dims, critic_hidden_dims=critic_hidden_dims, **ppo_kwargs)
        if history_encoder_type not in ("mlp", "tcn"):
            raise ValueError(f"history_encoder_type must be 'mlp' or 'tcn', got {history_encoder_type!r}")
        if encoder_learning_rate <= 0 or num_encoder_epochs <= 0:
            raise ValueError("encoder_learning_rate and num_encoder_epochs must be positive, got "
                             f"{encoder_learning_rate} and {num_encoder_epochs}")
        if num_encoder_mini_batches is not None and num_encoder_mini_batches <= 0:
            raise ValueError(f"num_encoder_mini_batches must be positive or null, got {num_encoder_mini_batches}")
        if not 0.0 < encoder_lr_decay <= 1.0:
            raise ValueError(f"encoder_lr_decay must be in (0, 1], got {encoder_lr_decay}")
        self.encoder_scheduler: torch.optim.lr_scheduler.LRScheduler | None = None

    @property
    def num_encoder_mini_batches(self) -> int:
        return self.hparams.num_encoder_mini_batches or self.hparams.num_mini_batches

    # ------------------------------------------------------------------------------------------ construction
    def setup(self, stage: str) -> None:
        strategy = self.trainer.strategy
        # Lightning keeps DDP's keyword arguments in a private field; it has no public accessor for them
        if isinstance(strategy, DDPStrategy) and not strategy._ddp_kwargs.get("find_unused_parameters", False):
            raise ValueError(
                f"{type(self).__name__} under DDP needs find_unused_parameters=True: its PPO backward does not reach "
                "the history encoder and its encoder backward reaches nothing else. Run with "
                f"{DDP_FIX} (or DDPStrategy(find_unused_parameters=True))."
            )

    def build_networks(self, spec: ObsSpec) -> None:
        hp = self.hparams
        self.actor_critic = ActorCriticTS(
            num_policy_obs=spec.groups["policy"],
            num_privileged_obs=spec.groups["privileged"],
            num_history_obs=spec.groups["history"],
            num_critic_obs=spec.groups["critic"],
            num_actions=spec.num_actions,
            latent_dim=hp.latent_dim,
            actor_hidden_dims=hp.actor_hidden_dims,
            critic_hidden_dims=hp.critic_hidden_dims,
            privilege_encoder_hidden_dims=hp.privilege_encoder_hidden_dims,
            history_encoder_hidden_dims=hp.history_encoder_hidden_dims,
            history_encoder_type=hp.history_encoder_type,
            activation=hp.activation,
            init_noise_std=hp.init_noise_std,
            min_std=hp.min_std,
            empirical_normalization=hp.empirical_normalization,
        )

    def ppo_parameters(self) -> Iterator[nn.Parameter]:
        encoder = {id(p) for p in self.actor_critic.history_encoder.parameters()}
        return (p for p in self.actor_critic.parameters() if id(p) not in encoder)

    def configure_optimizers(self) -> OptimizerLRScheduler:
        hp = self.hparams
        ppo = super().configure_optimizers()
        encoder = torch.optim.Adam(self.actor_critic.history_encoder.parameters(), lr=hp.encoder_learning_rate)
        self.encoder_scheduler = torch.optim.lr_scheduler.ExponentialLR(encoder, gamma=hp.encoder_lr_decay)
        return [ppo, encoder], [self.encoder_scheduler]

    # ------------------------------------------------------------------------------------------------ hooks
    def normalize_obs(self, obs: Obs, observe: bool = True) -> Obs:
        stored = super().normalize_obs(obs, observe)
        ac = self.actor_critic
        if observe and self.hparams.empirical_normalization:
            ac.privileged_normalizer.observe(obs["privileged"])
        stored["privileged"] = ac.privileged_normalizer(obs["privileged"])
        stored["history"] = ac.normalize_history(obs["history"])
        return stored

    def action_distribution(self, obs: Obs) -> Normal:
        return self.actor_critic.teacher_distribution(obs["policy"], obs["privileged"])

    def after_ppo_update(self, storage: RolloutStorageTS, optimizers: list[Any]) -> dict[str, float]:
        if len(optimizers) < 2:
            raise ValueError(f"{type(self).__name__}.learn needs [PPO optimizer, encoder optimizer], got "
                             f"{len(optimizers)} optimizer(s); use configure_optimizers()")
        optimizer = optimizers[1]
        hp = self.hparams
        ac = self.actor_critic
        params = list(ac.history_encoder.parameters())
        total, count = 0.0, 0
        for batch in storage.encoder_mini_batches(self.num_encoder_mini_batches, hp.num_encoder_epochs):
            with torch.no_grad():
                target = ac.teacher_latent(batch["privileged"])
            loss = (ac.student_latent(batch["history"]) - target).square().mean()
            check_finite("encoder loss", loss.detach(), self.iteration)
            optimizer.zero_grad(set_to_none=True)
            self.backward_loss(loss)
            nn.utils.clip_grad_norm_(params, hp.max_grad_norm)
            optimizer.step()
            total += float(loss.detach())
            count += 1
        logs = {"Loss/encoder": total / count, "Loss/encoder_learning_rate": optimizer.param_groups[0]["lr"]}
        self.encoder_scheduler.step()
        return logs

    # -------------------------------------------------------------------------------------------- deployment
    def policy_inputs(self) -> tuple[str, ...]:
        return ("policy", "history")

    def inference_policy(self, policy_obs: torch.Tensor, history_obs: torch.Tensor) -> torch.Tensor:
        return self.actor_critic.student_action(policy_obs, history_obs)
