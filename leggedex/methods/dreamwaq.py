"""DreamWaQ (Nahrendra et al., ICRA 2023) as a LightningModule: PPO with a beta-VAE context estimator.

A VAE encoder reads the proprioceptive history and gives a latent ``z`` and an explicit estimate ``v`` of
privileged terms chosen by name (``estimated_terms``, as ``EstimatorPPO`` picks them; by default the base linear
velocity); a decoder reconstructs the next noise-free policy observation (the env's ``noise_free_policy`` group)
from ``[z, v]``. The actor acts on ``[policy, z, v]``: a sample in rollouts, the mean when deployed (see
``ActorCriticDreamWaQ``). Every iteration has two stages:

1. PPO on the actor, the critic and the std (the first optimizer), reading the stored context samples;
2. the VAE alone (its own Adam, ``vae_learning_rate``), ``num_learning_epochs x num_mini_batches`` steps on
   ``estimator_loss_coef * MSE(v, label) + MSE(reconstruction, next observation) + beta * KL(z)``, the
   reconstruction masked where the episode ended. genesis_lr steps the VAE after each PPO mini-batch; here its
   steps follow the PPO epochs, which changes nothing PPO sees: PPO reads the stored context and its gradient does
   not reach the VAE.

Logged besides PPO's values: ``Estimator/<term>_error`` (mean absolute error of ``v``'s mean in the raw unit, m/s
for the base velocity, on the rollout the actor acted on), ``Loss/reconstruction``, ``Loss/estimate``, ``Loss/kl``.
The deployed policy reads ``policy`` and ``history`` (``EstimatorPPO``'s deployment). Under DDP the two stages'
backwards leave each other's parameters without a gradient: ``find_unused_parameters=True`` is required.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from lightning.pytorch.utilities.types import OptimizerLRScheduler
from torch import nn
from torch.distributions import Normal

from leggedex.envs.vec_env import Obs, ObsSpec
from leggedex.methods.estimator import EstimatorPPO
from leggedex.modules.actor_critic_dreamwaq import ActorCriticDreamWaQ
from leggedex.storage.rollout import MiniBatch, RolloutStorage
from leggedex.storage.rollout_dreamwaq import RolloutStorageDreamWaQ

TARGET_GROUP = "noise_free_policy"


class DreamWaQPPO(EstimatorPPO):
    """``EstimatorPPO``'s options (the estimated terms, the networks, PPO's) plus the VAE's; defaults follow
    go2_dreamwaq (latent 16, encoder and decoder [256, 128], beta 2, VAE learning rate 2e-4)."""

    required_obs_groups: ClassVar[tuple[str, ...]] = ("policy", "history", "privileged", "critic", TARGET_GROUP)
    actor_critic_type: ClassVar[type[ActorCriticDreamWaQ]] = ActorCriticDreamWaQ
    storage_type: ClassVar[type[RolloutStorageDreamWaQ]] = RolloutStorageDreamWaQ
    actor_critic: ActorCriticDreamWaQ | None  # an actor_critic_type: check_networks checks it
    partial_backwards: ClassVar[str | None] = (
        "its PPO backward does not reach the VAE, and the VAE's reaches neither the actor nor the critic")
    fixed_on_resume = EstimatorPPO.fixed_on_resume + ("latent_dim", "decoder_hidden_dims", "vae_learning_rate")

    def __init__(
        self,
        latent_dim: int = 16,
        decoder_hidden_dims: list[int] = [256, 128],  # noqa: B006 (LightningCLI shows list defaults)
        beta: float = 2.0,
        vae_learning_rate: float = 2e-4,
        **estimator_kwargs: Any,
    ) -> None:
        super().__init__(**estimator_kwargs)
        hp = self.hparams
        if hp.probability_terms:
            raise ValueError(f"DreamWaQPPO estimates values only: model.probability_terms must be empty, got "
                             f"{hp.probability_terms}")
        if latent_dim <= 0 or not vae_learning_rate > 0 or not beta >= 0:
            raise ValueError(f"DreamWaQPPO needs latent_dim > 0, vae_learning_rate > 0 and beta >= 0, got "
                             f"{latent_dim}, {vae_learning_rate} and {beta}")
        if hp.symmetry_augmentation or hp.symmetry_loss_coef > 0:
            raise ValueError("DreamWaQPPO does not mirror its context samples: model.symmetry_augmentation and "
                             "model.symmetry_loss_coef are not available")

    # ------------------------------------------------------------------------------------------ construction
    @property
    def built_actor_critic(self) -> ActorCriticDreamWaQ:
        return self.built(self.actor_critic)

    def network_arguments(self, spec: ObsSpec) -> dict[str, Any]:
        hp = self.hparams
        return {**super().network_arguments(spec), "num_target_obs": spec.groups[TARGET_GROUP],
                "latent_dim": hp.latent_dim, "decoder_hidden_dims": hp.decoder_hidden_dims}

    def stored_obs_groups(self) -> dict[str, int]:
        """The groups PPO and the VAE read, and ``context``, the sample of ``[z, v]`` the actor acted on."""
        groups = self.built_obs_spec.groups
        stored = {name: groups[name] for name in ("policy", "history", "privileged", "critic")}
        return {**stored, "context": self.built_actor_critic.context_dim}

    def build_storage(self, num_envs: int) -> RolloutStorageDreamWaQ:
        return self.storage_type(num_envs, self.num_steps_per_env, self.stored_obs_groups(),
                                 self.built_obs_spec.num_actions, self.device,
                                 target_size=self.built_obs_spec.groups[TARGET_GROUP])

    def vae_parameters(self) -> list[nn.Parameter]:
        ac = self.built_actor_critic
        return [*ac.estimator.parameters(), *ac.decoder.parameters()]

    def ppo_parameters(self) -> Iterator[nn.Parameter]:
        vae = {id(p) for p in self.vae_parameters()}
        return (p for p in self.built_actor_critic.parameters() if id(p) not in vae)

    def configure_optimizers(self) -> OptimizerLRScheduler:
        return [self.ppo_optimizer(), torch.optim.Adam(self.vae_parameters(), lr=self.hparams.vae_learning_rate)]

    # ------------------------------------------------------------------------------------------------ hooks
    def normalize_obs(self, obs: Obs, observe: bool = True) -> Obs:
        """EstimatorPPO's groups plus ``context``, drawn here so that the storage keeps what the actor acts on."""
        stored = super().normalize_obs(obs, observe)
        with torch.no_grad():
            stored["context"] = self.built_actor_critic.sample_context(stored["history"])
        return stored

    def action_distribution(self, obs: Obs) -> Normal:
        return self.built_actor_critic.context_distribution(obs["policy"], obs["context"])

    def auxiliary_losses(self, batch: MiniBatch) -> dict[str, torch.Tensor]:
        return {}  # the VAE has a stage of its own

    def process_env_step(self, obs: Obs, rewards: torch.Tensor, dones: torch.Tensor, extras: dict[str, Any]) -> None:
        # the VAE's target: the noise-free observation this step led to, normalized as the policy's
        self._transition["next_targets"] = self.built_actor_critic.actor_normalizer(obs[TARGET_GROUP])
        super().process_env_step(obs, rewards, dones, extras)

    def after_ppo_update(self, storage: RolloutStorage, optimizers: list[Any]) -> dict[str, float]:
        if len(optimizers) < 2:
            raise ValueError(f"{type(self).__name__}.learn needs [PPO optimizer, VAE optimizer], got "
                             f"{len(optimizers)} optimizer(s); use configure_optimizers()")
        storage = self.require_type("rollout storage", "learn got", storage, RolloutStorageDreamWaQ)
        terms: dict[str, float] = {}

        def losses() -> Iterator[torch.Tensor]:
            hp, ac, estimated = self.hparams, self.built_actor_critic, self.built(self.estimated)
            for batch in storage.vae_mini_batches(hp.num_mini_batches, hp.num_learning_epochs):
                parts = ac.vae_losses(batch["history"], batch["next_target"], batch["went_on"],
                                      estimated.select(batch["privileged"]))
                for name, value in parts.items():
                    terms[name] = terms.get(name, 0.0) + float(value.detach())
                yield hp.estimator_loss_coef * parts["estimate"] + parts["reconstruction"] + hp.beta * parts["kl"]

        total = self.descend("VAE loss", losses(), optimizers[1])
        steps = self.hparams.num_mini_batches * self.hparams.num_learning_epochs
        return {"Loss/vae": total, **{f"Loss/{name}": value / steps for name, value in terms.items()}}
