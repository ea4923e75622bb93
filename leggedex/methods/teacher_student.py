"""Teacher-student PPO (LeggedGym-Ex's go2_ts) as a LightningModule.

Every iteration has two stages:

1. PPO, through PPO's hooks, on the teacher: ``actor([policy, privilege_encoder(privileged)])``, the critic, the
   privilege encoder and the action std (the first optimizer, with PPO's learning-rate schedule);
2. the student's history encoder alone (the second optimizer, ``encoder_learning_rate``, decayed by
   ``encoder_lr_decay`` once per iteration) for ``num_encoder_epochs`` passes on
   ``MSE(history_encoder(history), privilege_encoder(privileged).detach())``.

The deployed policy is the student, ``actor([policy, history_encoder(history)])``: ``policy_inputs()`` is
``("policy", "history")``, so ``leggedex export`` and ``leggedex play`` need nothing special.

``start_distillation`` (the ``callbacks.DistillationPhase`` callback calls it) switches to a distillation phase
(DAgger): a frozen copy of the teacher (``FrozenTeacher``, built with the other networks and refreshed at the
switch) labels every state the student visits, the student's stochastic action (its mean, the learned std)
drives the env, and each iteration trains the actor and the history encoder on ``loss(student mean, teacher
action)`` for ``num_learning_epochs x num_mini_batches`` steps of a third optimizer. No PPO stage, no critic,
no encoder stage in that phase. The phase and its settings are kept in checkpoints.

Under DDP each backward leaves some parameters without a gradient (PPO's never reaches the history encoder, the
encoder's reaches nothing else, the distillation's neither the critic nor the privilege encoder), which DDP
accepts only with ``find_unused_parameters=True``; ``setup`` refuses a DDP strategy without it
(``partial_backwards``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from lightning.pytorch.utilities.types import OptimizerLRScheduler
from torch import nn
from torch.distributions import Normal

from leggedex.envs.vec_env import Obs, ObsSpec
from leggedex.methods.base import DeployedPolicy
from leggedex.methods.distillation_settings import DistillationSettings
from leggedex.methods.ppo import PPO
from leggedex.modules.actor_critic_ts import ActorCriticTS
from leggedex.modules.frozen_teacher import FrozenTeacher
from leggedex.modules.normalizer import EmpiricalNormalizer, empirical
from leggedex.storage.rollout import RolloutStorage, Shuffle
from leggedex.storage.rollout_ts import TS_GROUPS, RolloutStorageTS


class TeacherStudentPPO(PPO):
    """PPO's options (``**ppo_kwargs``, see ``PPO``) plus the encoders'; network defaults follow go2_ts. The update
    keeps legged_gym's ``grad_norm_clipping: joint`` and ``mini_batch_shuffle: every_epoch`` by default, where PPO
    takes rsl_rl 5's: with rsl_rl's, the quickstart_ts student fell behind its teacher (return 2.6 against the
    teacher's 6.7 after 60 iterations; with legged_gym's it passes the test's 0.75 of the teacher,
    tests/methods/test_teacher_student.py)."""

    required_obs_groups: ClassVar[tuple[str, ...]] = TS_GROUPS
    actor_critic_type: ClassVar[type[ActorCriticTS]] = ActorCriticTS
    storage_type: ClassVar[type[RolloutStorageTS]] = RolloutStorageTS
    actor_critic: ActorCriticTS | None  # an actor_critic_type: check_networks checks it
    # the encoder's rate lives in its scheduler too: it cannot change on resume
    partial_backwards: ClassVar[str | None] = (
        "its PPO backward does not reach the history encoder, its encoder backward reaches nothing else and its "
        "distillation phase trains neither the critic nor the privilege encoder")
    fixed_on_resume = PPO.fixed_on_resume + ("latent_dim", "privilege_encoder_hidden_dims",
                                             "history_encoder_hidden_dims", "history_encoder_type",
                                             "encoder_learning_rate", "encoder_lr_decay")

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
        grad_norm_clipping: Literal["joint", "per_network"] = "joint",
        mini_batch_shuffle: Shuffle = "every_epoch",
        **ppo_kwargs: Any,
    ) -> None:
        super().__init__(actor_hidden_dims=actor_hidden_dims, critic_hidden_dims=critic_hidden_dims,
                         grad_norm_clipping=grad_norm_clipping, mini_batch_shuffle=mini_batch_shuffle, **ppo_kwargs)
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
        self.frozen_teacher: FrozenTeacher | None = None
        self.distillation: DistillationSettings | None = None  # set by start_distillation: the phase has begun

    @property
    def num_encoder_mini_batches(self) -> int:
        return self.hparams.num_encoder_mini_batches or self.hparams.num_mini_batches

    @property
    def built_actor_critic(self) -> ActorCriticTS:
        return self.built(self.actor_critic)

    @property
    def distilling(self) -> bool:
        return self.distillation is not None

    @property
    def phase(self) -> Literal["teacher", "distillation"]:
        return "distillation" if self.distilling else "teacher"

    # ------------------------------------------------------------------------------------------ construction
    def network_arguments(self, spec: ObsSpec) -> dict[str, Any]:
        """What ``ActorCriticTS`` is built with: the groups' sizes and the network options."""
        hp = self.hparams
        return dict(
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

    def build_networks(self, spec: ObsSpec) -> None:
        self.actor_critic = self.actor_critic_type(**self.network_arguments(spec))
        self.frozen_teacher = FrozenTeacher(self.actor_critic)

    def normalizers(self) -> list[EmpiricalNormalizer]:
        frozen = {id(m) for m in self.built(self.frozen_teacher).modules()}
        return [m for m in super().normalizers() if id(m) not in frozen]

    def ppo_parameters(self) -> Iterator[nn.Parameter]:
        ac = self.built_actor_critic
        encoder = {id(p) for p in ac.history_encoder.parameters()}
        return (p for p in ac.parameters() if id(p) not in encoder)

    def configure_optimizers(self) -> OptimizerLRScheduler:
        hp = self.hparams
        ac = self.built_actor_critic
        ppo = self.ppo_optimizer()
        encoder = torch.optim.Adam(ac.history_encoder.parameters(), lr=hp.encoder_learning_rate)
        self.encoder_scheduler = torch.optim.lr_scheduler.ExponentialLR(encoder, gamma=hp.encoder_lr_decay)
        student = [*ac.actor.parameters(), *ac.history_encoder.parameters()]
        distillation = torch.optim.Adam(student, lr=DistillationSettings().learning_rate)  # set at every update
        return [ppo, encoder, distillation], [self.encoder_scheduler]

    # -------------------------------------------------------------------------------------- distillation phase
    def start_distillation(self, settings: DistillationSettings | None = None) -> None:
        """Freeze a copy of the teacher as it is now (unless the phase has begun already) and distill from then on,
        with ``settings`` (default: MSE, learning rate 1e-3)."""
        if not self.distilling:
            self.built(self.frozen_teacher).copy_from(self.built_actor_critic)
        self.distillation = settings or DistillationSettings()

    def load_teacher(self, path: str | Path) -> None:
        """Take every network and normalizer of a TeacherStudentPPO checkpoint; when it was written in the
        distillation phase, its frozen teacher and the phase too. Another method's checkpoint, or one for other
        observations or network sizes, is refused with ``check_checkpoint``'s message."""
        checkpoint = torch.load(path, map_location=self.device, weights_only=True)
        self.check_checkpoint(checkpoint)
        self.load_state_dict(self.with_frozen_teacher(checkpoint["state_dict"]))
        self.distillation = self.saved_distillation(checkpoint)

    def with_frozen_teacher(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``state_dict``, completed with this method's frozen teacher when it was written before there was one."""
        return {**self.built(self.frozen_teacher).state_dict(prefix="frozen_teacher."), **state_dict}

    @staticmethod
    def saved_distillation(checkpoint: dict[str, Any]) -> DistillationSettings | None:
        saved = checkpoint["leggedex"].get("distillation")
        return DistillationSettings(**saved) if saved is not None else None

    # ------------------------------------------------------------------------------------------------ hooks
    def normalize_obs(self, obs: Obs, observe: bool = True) -> Obs:
        stored = super().normalize_obs(obs, observe)
        ac = self.built_actor_critic
        if observe and self.hparams.empirical_normalization:
            empirical(ac.privileged_normalizer).observe(obs["privileged"])
        stored["privileged"] = ac.privileged_normalizer(obs["privileged"])
        if "history" in self.required_obs_groups:
            stored["history"] = ac.normalize_history(obs["history"])
        return stored

    def action_distribution(self, obs: Obs) -> Normal:
        return self.built_actor_critic.teacher_distribution(obs["policy"], obs["privileged"])

    def acting_distribution(self, stored: Obs) -> Normal:
        if not self.distilling:
            return super().acting_distribution(stored)
        return self.built_actor_critic.student_distribution(stored["policy"], stored["history"])

    def transition_extras(self, obs: Obs, stored: Obs) -> dict[str, torch.Tensor]:
        if not self.distilling:
            return {}
        return {"teacher_actions": self.built(self.frozen_teacher)(obs["policy"], obs["privileged"])}

    def compute_returns(self, storage: RolloutStorage, last_obs: Obs) -> None:
        if not self.distilling:  # the distillation regresses on labels: it needs no values nor returns
            super().compute_returns(storage, last_obs)

    def update(self, storage: RolloutStorage, optimizer: Any) -> dict[str, float]:
        if self.distilling:
            return {}  # no PPO stage in the distillation phase; after_ppo_update distills instead
        return super().update(storage, optimizer)

    def after_ppo_update(self, storage: RolloutStorage, optimizers: list[Any]) -> dict[str, float]:
        if len(optimizers) < 3:
            raise ValueError(f"{type(self).__name__}.learn needs [PPO optimizer, encoder optimizer, distillation "
                             f"optimizer], got {len(optimizers)} optimizer(s); use configure_optimizers()")
        storage = self.require_type("rollout storage", "learn got", storage, RolloutStorageTS)
        if self.distilling:
            return {**self.distill(storage, optimizers[2]), "Train/phase": 1.0}
        return {**self.train_history_encoder(storage, optimizers[1]), "Train/phase": 0.0}

    def encoder_losses(self, storage: RolloutStorageTS) -> Iterator[torch.Tensor]:
        """The encoder stage's mini-batch losses, each computed when the previous step is done: the student's latent
        regressing on the (detached) privileged latent."""
        ac = self.built_actor_critic
        for batch in storage.encoder_mini_batches(self.num_encoder_mini_batches, self.hparams.num_encoder_epochs):
            with torch.no_grad():
                target = ac.teacher_latent(batch["privileged"])
            yield (ac.student_latent(batch["history"]) - target).square().mean()

    def distillation_losses(self, storage: RolloutStorageTS, settings: DistillationSettings
                            ) -> Iterator[torch.Tensor]:
        """The distillation phase's mini-batch losses: the student's mean action against the teacher's label."""
        ac = self.built_actor_critic
        for batch in storage.distillation_mini_batches(self.hparams.num_mini_batches, self.hparams.num_learning_epochs):
            student = ac.student_distribution(batch["policy"], batch["history"]).mean
            yield settings(student, batch["teacher_actions"])

    def train_history_encoder(self, storage: RolloutStorageTS, optimizer: Any) -> dict[str, float]:
        """Stage 2: the history encoder regresses on the (detached) privileged latent."""
        ac = self.built_actor_critic
        logs = {"Loss/encoder": self.descend("encoder loss", self.encoder_losses(storage), optimizer),
                "Loss/encoder_learning_rate": optimizer.param_groups[0]["lr"]}
        # the teacher's latent grows while PPO trains it: relative to its spread, the error reads across iterations
        with torch.no_grad():
            spread = ac.teacher_latent(storage.obs["privileged"].flatten(0, 1)).var(dim=0).mean()
        logs["Loss/encoder_relative"] = logs["Loss/encoder"] / max(float(spread), 1e-8)
        if self.encoder_scheduler is None:
            raise RuntimeError(f"{type(self).__name__} has no encoder scheduler: configure_optimizers() makes it")
        self.encoder_scheduler.step()
        return logs

    def distill(self, storage: RolloutStorageTS, optimizer: Any) -> dict[str, float]:
        """The distillation phase's update: the student's mean action regresses on the frozen teacher's labels."""
        settings = self.distillation
        if settings is None:
            raise RuntimeError(f"{type(self).__name__}.distill runs in the distillation phase only: "
                               "start_distillation() begins it")
        for group in optimizer.param_groups:
            group["lr"] = settings.learning_rate
        return {"Loss/distillation": self.descend("distillation loss", self.distillation_losses(storage, settings),
                                                  optimizer),
                "Loss/distillation_learning_rate": settings.learning_rate}

    # -------------------------------------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        settings = self.distillation
        checkpoint["leggedex"]["distillation"] = settings.to_dict() if settings is not None else None

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        checkpoint["state_dict"] = self.with_frozen_teacher(checkpoint["state_dict"])
        self.distillation = self.saved_distillation(checkpoint)

    # -------------------------------------------------------------------------------------------- deployment
    def policy_inputs(self) -> tuple[str, ...]:
        return ("policy", "history")

    def teacher_policy(self) -> TeacherPolicy:
        return TeacherPolicy(self)

    # the deployed student reads two groups (policy_inputs()), where PPO's policy reads one: see PPO.inference_policy
    def inference_policy(  # type: ignore[override]
        self, policy_obs: torch.Tensor, history_obs: torch.Tensor
    ) -> torch.Tensor:
        return self.built_actor_critic.student_action(policy_obs, history_obs)


class TeacherPolicy(DeployedPolicy):
    """The teacher's deterministic action on an env's raw ``policy`` and ``privileged`` groups: the live teacher or,
    once the distillation phase started (the actor then serves the student), its frozen copy."""

    def __init__(self, method: TeacherStudentPPO) -> None:
        super().__init__(method)
        self.teacher_student = method
        self.groups = ("policy", "privileged")

    def __call__(self, obs: Obs) -> torch.Tensor:
        policy, privileged = self.inputs(obs)
        method = self.teacher_student
        if method.distilling:
            return method.built(method.frozen_teacher)(policy, privileged)
        ac = method.built_actor_critic
        return ac.teacher_distribution(ac.actor_normalizer(policy), ac.privileged_normalizer(privileged)).mean
