"""Proximal Policy Optimization as a LightningModule (manual optimization).

One Lightning epoch is one PPO iteration: the DataModule fills ``self.storage`` through ``act`` /
``process_env_step``; ``training_step`` then computes GAE returns (time-outs bootstrapped), folds the rollout's
observation statistics into the normalizers, and runs ``num_learning_epochs x num_mini_batches`` clipped-PPO
steps with gradient-norm clipping and a fixed or adaptive-KL learning rate. Defaults follow rsl_rl / legged_gym.
Where legged_gym's PPO and rsl_rl 5's differ in the update, both are options: ``grad_norm_clipping`` (``joint``:
one norm over all trained parameters, legged_gym's; ``per_network``: the critic's apart from the rest, rsl_rl 5's),
``mini_batch_shuffle`` (``every_epoch``: a new permutation each epoch, legged_gym's; ``once``: the same mini-batches
in every epoch, rsl_rl 5's) and ``normalize_advantage_per_mini_batch`` (standardize each mini-batch's advantages
instead of the rollout's). The defaults are rsl_rl 5's: over five seeds on go2_flat they learned at least as fast
per env-step as legged_gym's choices (README, "PPO beside rsl_rl 5"); ``TeacherStudentPPO`` keeps legged_gym's (see
there).

Methods built on PPO override small hooks instead of PPO's bodies:

- ``stored_obs_groups()``: the groups kept in the rollout storage (``storage_type``);
- ``normalize_obs(obs, observe)``: the normalized groups that are stored and that the hooks below read;
- ``action_distribution(obs)`` and ``value(obs)``: the policy and the critic on stored (normalized) groups;
  ``batch_distribution(batch)`` and ``batch_value(batch)`` the same on a mini-batch (by default on its groups);
- ``acting_distribution(obs)`` and ``transition_extras(obs, stored)``: who acts in rollouts, and what else each
  step stores;
- ``standardize_advantages(storage)`` and ``sample_groups(batch)``: advantages standardized over groups of envs, and
  surrogates averaged per group of samples (the first group's KL sets the learning rate);
- ``auxiliary_losses(batch)``: extra terms, coefficients included, added to every PPO mini-batch loss;
- ``after_ppo_update(storage, optimizers)``: a stage of its own after the PPO epochs, with further optimizers;
- ``ppo_parameters()``: what the PPO optimizer (the first one) trains;
- ``network_options()``: PPO's network arguments, to pass on to an ``ActorCritic`` subclass in ``build_networks``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar, Literal

import torch
from lightning.pytorch.utilities.types import OptimizerLRScheduler
from torch import nn
from torch.distributions import Normal

from leggedex.envs.mirror import Mirror
from leggedex.envs.vec_env import Obs, ObsSpec
from leggedex.methods.base import OnPolicyMethod, Rollout
from leggedex.methods.divergence import StdOutOfRange, check_finite, check_parameters
from leggedex.modules.actor_critic import ActorCritic
from leggedex.modules.normalizer import EmpiricalNormalizer, empirical
from leggedex.storage.rollout import SHUFFLES, MiniBatch, RolloutStorage, Shuffle

GRAD_NORM_CLIPPINGS: tuple[str, ...] = ("joint", "per_network")
NETWORK_OPTIONS: tuple[str, ...] = (
    "actor_hidden_dims", "critic_hidden_dims", "activation", "init_noise_std", "min_std", "empirical_normalization",
)


class PPO(OnPolicyMethod):
    """Clipped PPO with a Gaussian MLP actor-critic; every argument is a config key (``--model.<name>``)."""

    actor_critic_type: ClassVar[type[ActorCritic]] = ActorCritic  # what build_networks must build
    storage_type: ClassVar[type[RolloutStorage]] = RolloutStorage
    fixed_on_resume: ClassVar[tuple[str, ...]] = (
        "actor_hidden_dims", "critic_hidden_dims", "activation", "empirical_normalization",
    )

    def __init__(
        self,
        actor_hidden_dims: list[int] = [256, 128, 64],  # noqa: B006 (LightningCLI shows list defaults)
        critic_hidden_dims: list[int] = [256, 128, 64],  # noqa: B006
        activation: str = "elu",
        init_noise_std: float = 1.0,
        min_std: float = 1e-3,
        max_std: float | None = None,
        std_out_of_range: Literal["clamp", "stop"] = "clamp",
        empirical_normalization: bool = False,
        num_steps_per_env: int = 24,
        num_learning_epochs: int = 5,
        num_mini_batches: int = 4,
        learning_rate: float = 1e-3,
        schedule: Literal["adaptive", "fixed"] = "adaptive",
        desired_kl: float = 0.01,
        min_learning_rate: float = 1e-5,
        max_learning_rate: float = 1e-2,
        clip_param: float = 0.2,
        gamma: float = 0.99,
        lam: float = 0.95,
        value_loss_coef: float = 1.0,
        entropy_coef: float = 0.01,
        max_grad_norm: float = 1.0,
        use_clipped_value_loss: bool = True,
        normalize_advantage: bool = True,
        normalize_advantage_per_mini_batch: bool = False,
        grad_norm_clipping: Literal["joint", "per_network"] = "per_network",
        mini_batch_shuffle: Shuffle = "once",
        symmetry_augmentation: bool = False,
        symmetry_loss_coef: float = 0.0,
    ) -> None:
        super().__init__(num_steps_per_env)
        self.save_hyperparameters()
        if schedule not in ("adaptive", "fixed"):
            raise ValueError(f"schedule must be 'adaptive' or 'fixed', got {schedule!r}")
        if num_learning_epochs <= 0 or num_mini_batches <= 0:
            raise ValueError("num_learning_epochs and num_mini_batches must be positive")
        if not 0.0 < gamma <= 1.0 or not 0.0 <= lam <= 1.0:
            raise ValueError(f"gamma must be in (0, 1] and lam in [0, 1], got gamma={gamma}, lam={lam}")
        positive = {"learning_rate": learning_rate, "min_learning_rate": min_learning_rate,
                    "max_learning_rate": max_learning_rate, "desired_kl": desired_kl, "clip_param": clip_param,
                    "init_noise_std": init_noise_std, "min_std": min_std, "max_grad_norm": max_grad_norm}
        for name, value in positive.items():
            if not value > 0:  # also refuses NaN
                raise ValueError(f"model.{name} must be positive, got {value}")
        choices = {"grad_norm_clipping": (grad_norm_clipping, GRAD_NORM_CLIPPINGS),
                   "mini_batch_shuffle": (mini_batch_shuffle, SHUFFLES)}
        for name, (choice, allowed) in choices.items():
            if choice not in allowed:
                raise ValueError(f"model.{name} must be one of {list(allowed)}, got {choice!r}")
        if normalize_advantage_per_mini_batch and not normalize_advantage:
            raise ValueError("model.normalize_advantage_per_mini_batch needs model.normalize_advantage: true (it "
                             "chooses where advantages are normalized, not whether)")
        if std_out_of_range not in ("clamp", "stop"):
            raise ValueError(f"model.std_out_of_range must be 'clamp' or 'stop', got {std_out_of_range!r}")
        if not min_std <= init_noise_std <= (max_std if max_std is not None else math.inf):
            raise ValueError(f"model.init_noise_std must lie in [min_std, max_std] = [{min_std}, {max_std}], got "
                             f"{init_noise_std}")
        if schedule == "adaptive" and not min_learning_rate <= learning_rate <= max_learning_rate:
            raise ValueError(f"model.learning_rate must lie in [min_learning_rate, max_learning_rate] = "
                             f"[{min_learning_rate}, {max_learning_rate}], got {learning_rate}")
        for name, value in {"value_loss_coef": value_loss_coef, "entropy_coef": entropy_coef,
                            "symmetry_loss_coef": symmetry_loss_coef}.items():
            if not value >= 0:
                raise ValueError(f"model.{name} must be >= 0, got {value}")
        self.actor_critic: ActorCritic | None = None
        self.mirror: Mirror | None = None  # the env's, when symmetry is on (set by build)
        self._transition: dict[str, Any] = {}

    # ------------------------------------------------------------------------------------------ construction
    def build(self, spec: ObsSpec) -> None:
        if self.hparams.symmetry_augmentation or self.hparams.symmetry_loss_coef > 0:
            self.mirror = symmetry_mirror(spec, type(self).__name__)
        super().build(spec)

    def build_networks(self, spec: ObsSpec) -> None:
        self.actor_critic = ActorCritic(num_actor_obs=spec.groups["policy"], num_critic_obs=spec.groups["critic"],
                                        num_actions=spec.num_actions, **self.network_options())

    @property
    def built_actor_critic(self) -> ActorCritic:
        """The actor-critic ``build_networks`` built."""
        return self.built(self.actor_critic)

    def network_options(self) -> dict[str, Any]:
        """The options every ``ActorCritic`` (and subclass) takes from PPO's arguments, as keyword arguments."""
        return {name: self.hparams[name] for name in NETWORK_OPTIONS}

    def check_networks(self) -> None:
        self.require_type("actor-critic", "build_networks built", self.actor_critic, self.actor_critic_type)

    def stored_obs_groups(self) -> dict[str, int]:
        """Observation groups (name -> size) kept in the rollout storage: by default the required ones."""
        return {name: self.built_obs_spec.groups[name] for name in self.required_obs_groups}

    def build_storage(self, num_envs: int) -> RolloutStorage:
        return self.storage_type(num_envs, self.num_steps_per_env, self.stored_obs_groups(),
                                 self.built_obs_spec.num_actions, self.device)

    def ppo_parameters(self) -> Iterator[nn.Parameter]:
        return self.built_actor_critic.parameters()

    def ppo_optimizer(self) -> torch.optim.Optimizer:
        """The first optimizer: Adam on ``ppo_parameters()`` at ``learning_rate``."""
        return torch.optim.Adam(self.ppo_parameters(), lr=self.hparams.learning_rate)

    def configure_optimizers(self) -> OptimizerLRScheduler:
        return self.ppo_optimizer()

    def on_train_start(self) -> None:
        """On resume, a ``learning_rate`` other than the checkpoint's replaces the one its optimizer state restored
        (an unchanged one leaves the adapted rate as it was, so that the run continues exactly)."""
        resumed = self.resumed_hparams.get("learning_rate")
        if resumed is not None and resumed != self.hparams.learning_rate:
            optimizers = self.optimizers()
            first = optimizers[0] if isinstance(optimizers, list) else optimizers
            for group in first.optimizer.param_groups:
                group["lr"] = self.hparams.learning_rate

    def normalizers(self) -> list[EmpiricalNormalizer]:
        return [m for m in self.modules() if isinstance(m, EmpiricalNormalizer)]

    # ------------------------------------------------------------------------------------------------ hooks
    def normalize_obs(self, obs: Obs, observe: bool = True) -> Obs:
        """The stored groups, normalized; with ``observe`` (rollouts) their statistics are gathered first."""
        ac = self.built_actor_critic
        if observe and self.hparams.empirical_normalization:
            empirical(ac.actor_normalizer).observe(obs["policy"])
            empirical(ac.critic_normalizer).observe(obs["critic"])
        return {"policy": ac.actor_normalizer(obs["policy"]), "critic": ac.critic_normalizer(obs["critic"])}

    def action_distribution(self, obs: Obs) -> Normal:
        """The policy being trained, on normalized groups."""
        return self.built_actor_critic.distribution(obs["policy"])

    def value(self, obs: Obs) -> torch.Tensor:
        """The critic, on normalized groups."""
        return self.built_actor_critic.evaluate(obs["critic"])

    def batch_distribution(self, batch: MiniBatch) -> Normal:
        """The policy on a mini-batch's samples (a recurrent method runs it over the batch's trajectories)."""
        return self.action_distribution(batch.obs)

    def batch_value(self, batch: MiniBatch) -> torch.Tensor:
        """The critic on a mini-batch's samples."""
        return self.value(batch.obs)

    def auxiliary_losses(self, batch: MiniBatch) -> dict[str, torch.Tensor]:
        """Extra loss terms (coefficients included) added to each PPO mini-batch loss, logged as ``Loss/<name>``."""
        return {}

    def after_ppo_update(self, storage: RolloutStorage, optimizers: list[Any]) -> dict[str, float]:
        """A further training stage after the PPO epochs (``optimizers[1:]`` are its own); returns what it logs."""
        return {}

    def descend(self, name: str, losses: Iterable[torch.Tensor], optimizer: Any) -> float:
        """One clipped step of ``optimizer`` per loss (a stage of ``after_ppo_update``), each loss computed when the
        previous step is done; returns the mean loss. A non-finite loss or gradient raises ``NonFiniteError`` naming
        ``name``."""
        total, count = 0.0, 0
        for loss in losses:
            self.clipped_step(name, loss, optimizer, self.hparams.max_grad_norm)
            total += float(loss.detach())
            count += 1
        return total / count

    # ------------------------------------------------------------------------------------------------ acting
    def acting_distribution(self, stored: Obs) -> Normal:
        """What rollout actions are sampled from (the trained policy; a distillation phase lets the student act)."""
        return self.action_distribution(stored)

    def transition_extras(self, obs: Obs, stored: Obs) -> dict[str, torch.Tensor]:
        """Further per-step fields for the storage's ``add`` (raw and stored groups at hand), e.g. teacher labels."""
        return {}

    def act(self, obs: Obs) -> torch.Tensor:
        if self.mirror is not None and self.hparams.empirical_normalization:
            # the normalizers see every sample's mirror too: symmetric statistics, so that mirroring a normalized
            # observation is the normalized mirror
            self.normalize_obs(self.mirror.observations(obs))
        stored = self.normalize_obs(obs)
        dist = self.acting_distribution(stored)
        actions = dist.sample()
        self._transition = {
            "obs": stored,
            "actions": actions,
            "log_probs": dist.log_prob(actions).sum(-1),
            "action_mean": dist.mean,
            "action_std": dist.stddev,
            "values": self.value(stored),
            **self.transition_extras(obs, stored),
        }
        return actions

    def process_env_step(self, obs: Obs, rewards: torch.Tensor, dones: torch.Tensor, extras: dict[str, Any]) -> None:
        values = self._transition["values"]
        time_outs = extras.get("time_outs")
        if time_outs is not None:
            # an episode cut by the time limit did not fail: bootstrap it with the value of its last state
            rewards = rewards + self.hparams.gamma * values * time_outs.to(values.dtype)
        self.storage.add(**self._transition, rewards=rewards, dones=dones)

    # one tensor per group of policy_inputs(), which each method chooses: the arity is the method's own
    def inference_policy(self, policy_obs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.built_actor_critic.act_inference(policy_obs)

    # ---------------------------------------------------------------------------------------------- learning
    def training_step(self, batch: Rollout, batch_idx: int) -> None:
        losses = self.learn(batch, self.optimizers())
        self.log_dict(losses, on_step=False, on_epoch=True, batch_size=1)

    def learn(self, rollout: Rollout, optimizers: Any | Sequence[Any]) -> dict[str, float]:
        """One update on a collected rollout; returns the logged values. Usable without a Trainer.

        ``optimizers``: one optimizer or a list (what ``self.optimizers()`` returns); the first is PPO's.
        """
        optimizers = list(optimizers) if isinstance(optimizers, (list, tuple)) else [optimizers]
        storage = rollout.storage
        if not storage.is_full:
            raise RuntimeError(f"got a rollout with {storage.step}/{storage.num_steps} steps; it must be full")
        self.check_rollout(storage)
        self.compute_returns(storage, rollout.last_obs)
        for normalizer in self.normalizers():
            normalizer.commit()
        losses = self.update(storage, optimizers[0])
        losses.update(self.after_ppo_update(storage, optimizers))
        check_parameters(self, self.iteration)
        storage.clear()
        return losses

    def check_rollout(self, storage: RolloutStorage) -> None:
        """What the rollout computed beside the env's data (observations, rewards and actions were checked as they
        entered): the values, the bootstrapped rewards and the log-probabilities, before the update reads them."""
        for name in ("values", "rewards", "log_probs"):
            check_finite(f"stored {name}", getattr(storage, name), self.iteration)

    def enforce_std_range(self) -> bool:
        """After a PPO step, the action std parameter held in ``[min_std, max_std]``: clamped into it, or the run
        stopped with ``StdOutOfRange`` (``std_out_of_range``). Returns whether it was clamped."""
        hp = self.hparams
        std = self.built_actor_critic.std
        high = hp.max_std if hp.max_std is not None else math.inf
        outside = (std < hp.min_std) | (std > high)
        if not bool(outside.any()):
            return False
        if hp.std_out_of_range == "stop":
            ids = outside.nonzero().flatten().tolist()
            values = [round(float(std[i]), 6) for i in ids]
            raise StdOutOfRange(
                f"the action std left [min_std, max_std] = [{hp.min_std}, {hp.max_std}] at iteration "
                f"{self.iteration}: action(s) {ids[:8]} at {values[:8]}. The learning rate or the entropy "
                "coefficient may be too high; model.std_out_of_range: clamp keeps the std in range instead.")
        with torch.no_grad():
            std.clamp_(hp.min_std, high)
        return True

    @torch.no_grad()
    def compute_returns(self, storage: RolloutStorage, last_obs: Obs) -> None:
        last_values = self.value(self.normalize_obs(last_obs, observe=False))
        storage.compute_returns(last_values, self.hparams.gamma, self.hparams.lam)
        if self.hparams.normalize_advantage and not self.hparams.normalize_advantage_per_mini_batch:
            self.standardize_advantages(storage)

    def standardize_advantages(self, storage: RolloutStorage) -> None:
        """The rollout's advantages shifted to mean 0 and scaled to std 1 (``normalize_advantage``)."""
        storage.advantages.copy_(standardized(storage.advantages))

    def sample_groups(self, batch: MiniBatch) -> list[torch.Tensor] | None:
        """Boolean masks splitting a mini-batch's samples into groups whose surrogate losses are averaged apart and
        then summed; the learning-rate schedule reads the first group's KL. None: one group of all samples."""
        return None

    def clip_groups(self, optimizer: Any) -> list[list[nn.Parameter]] | None:
        """The parameter sets whose gradient norms are clipped each on its own: ``None`` (``grad_norm_clipping:
        joint``, all of the optimizer's together, legged_gym's), or the critic's and all others (``per_network``,
        rsl_rl 5's: a large value gradient then no longer shrinks the policy's step)."""
        if self.hparams.grad_norm_clipping == "joint":
            return None
        critic = {id(p) for p in self.built_actor_critic.critic.parameters()}
        params = [p for group in optimizer.param_groups for p in group["params"]]
        return [[p for p in params if id(p) not in critic], [p for p in params if id(p) in critic]]

    def update(self, storage: RolloutStorage, optimizer: Any) -> dict[str, float]:
        hp = self.hparams
        totals: dict[str, float] = {}
        count = clamped = 0
        clip_groups = self.clip_groups(optimizer)
        for batch in storage.mini_batches(hp.num_mini_batches, hp.num_learning_epochs, shuffle=hp.mini_batch_shuffle):
            if hp.normalize_advantage_per_mini_batch:
                batch.advantages = standardized(batch.advantages)
            if hp.symmetry_augmentation:
                batch = augmented(batch, self.built(self.mirror))
            losses = self.ppo_losses(batch, optimizer)
            loss = (losses["surrogate"] + hp.value_loss_coef * losses["value_function"]
                    - hp.entropy_coef * losses["entropy"] + hp.symmetry_loss_coef * losses.get("symmetry", 0.0))
            auxiliary = self.auxiliary_losses(batch)
            for term in auxiliary.values():
                loss = loss + term
            self.clipped_step("loss", loss, optimizer, hp.max_grad_norm, clip_groups)
            clamped += self.enforce_std_range()
            for key, term in {**losses, **auxiliary}.items():
                totals[f"Loss/{key}"] = totals.get(f"Loss/{key}", 0.0) + float(term.detach())
            count += 1
        logs = {key: value / count for key, value in totals.items()}
        logs["Loss/learning_rate"] = optimizer.param_groups[0]["lr"]
        logs["Policy/mean_noise_std"] = float(self.built_actor_critic.action_std.detach().mean())
        logs["Policy/std_clamped_steps"] = float(clamped)
        return logs

    def ppo_losses(self, batch: MiniBatch, optimizer: Any) -> dict[str, torch.Tensor]:
        """Surrogate, value and entropy terms of one mini-batch; adapts the learning rate to the KL first. KL and
        entropy are those of the collected samples (the first ``len(batch.action_mean)``; an augmented batch has
        their mirrors after them)."""
        hp = self.hparams
        dist = self.batch_distribution(batch)
        n = batch.action_mean.shape[0]
        groups = self.sample_groups(batch)
        if hp.schedule == "adaptive":
            kl = groups[0] if groups is not None else slice(None)
            self.adapt_learning_rate(batch.action_mean[kl], batch.action_std[kl], dist.mean[:n][kl],
                                     dist.stddev[:n][kl], optimizer)
        log_probs = dist.log_prob(batch.actions).sum(-1)
        ratio = torch.exp(log_probs - batch.log_probs)
        clipped = ratio.clamp(1.0 - hp.clip_param, 1.0 + hp.clip_param)
        per_sample = -torch.min(batch.advantages * ratio, batch.advantages * clipped)
        surrogate = (per_sample.mean() if groups is None
                     else sum((per_sample[mask].mean() for mask in groups), per_sample.new_zeros(())))

        values = self.batch_value(batch)
        if hp.use_clipped_value_loss:
            values_clipped = batch.values + (values - batch.values).clamp(-hp.clip_param, hp.clip_param)
            value_loss = torch.max((values - batch.returns).square(), (values_clipped - batch.returns).square()).mean()
        else:
            value_loss = (values - batch.returns).square().mean()
        losses = {"surrogate": surrogate, "value_function": value_loss, "entropy": dist.entropy()[:n].sum(-1).mean()}
        if hp.symmetry_loss_coef > 0:
            losses["symmetry"] = self.symmetry_loss(batch, dist)
        return losses

    def symmetry_loss(self, batch: MiniBatch, dist: Normal) -> torch.Tensor:
        """MSE between the policy's mean action on the mirrored samples and the mirror of its mean action on the
        samples (that one held fixed): zero for a policy that acts as the mirror image of itself."""
        mirror = self.built(self.mirror)
        n = batch.action_mean.shape[0]
        mean = dist.mean
        if mean.shape[0] == n:  # not augmented: the mirrored samples need their own forward pass
            mirrored = self.action_distribution(mirror.observations(batch.obs)).mean
        else:
            mirrored = mean[n:]
        return (mirrored - mirror.actions.apply(mean[:n]).detach()).square().mean()

    @torch.no_grad()
    def adapt_learning_rate(
        self, old_mean: torch.Tensor, old_std: torch.Tensor, new_mean: torch.Tensor, new_std: torch.Tensor,
        optimizer: Any,
    ) -> None:
        """rsl_rl's rule on the KL averaged over the mini-batch and over all ranks (so every rank agrees)."""
        hp = self.hparams
        new_std = new_std.detach()
        kl = (
            torch.log(new_std / old_std)
            + (old_std.square() + (old_mean - new_mean.detach()).square()) / (2.0 * new_std.square())
            - 0.5
        ).sum(-1).mean()
        kl = self.mean_over_ranks(kl)
        lr = optimizer.param_groups[0]["lr"]
        if kl > 2.0 * hp.desired_kl:
            lr = max(hp.min_learning_rate, lr / 1.5)
        elif 0.0 < kl < 0.5 * hp.desired_kl:
            lr = min(hp.max_learning_rate, lr * 1.5)
        for group in optimizer.param_groups:
            group["lr"] = lr


def symmetry_mirror(spec: ObsSpec, who: str) -> Mirror:
    """The env's mirror from ``spec``, or a ``ValueError`` saying why there is none."""
    if "mirror" not in spec.extras:
        reason = spec.extras.get("mirror_unavailable", "the env reports no mirror")
        raise ValueError(f"{who}: model.symmetry_augmentation / symmetry_loss_coef need the task's left-right mirror, "
                         f"and this env has none: {reason}")
    return Mirror.from_dict(spec.extras["mirror"])


def augmented(batch: MiniBatch, mirror: Mirror) -> MiniBatch:
    """The mini-batch followed by its mirror image: mirrored observations and actions sharing the originals' old
    log-probabilities, values, advantages and returns; ``action_mean`` / ``action_std`` stay the originals' (the
    KL is theirs). A mini-batch type with further fields is refused, naming them."""
    known = {"obs", "actions", "values", "advantages", "returns", "log_probs", "action_mean", "action_std"}
    extra = [f.name for f in dataclasses.fields(batch) if f.name not in known]
    if extra:
        raise ValueError(f"symmetry augmentation cannot mirror the {type(batch).__name__} field(s) {extra}")
    obs = {name: torch.cat([value, mirrored]) for (name, value), mirrored in
           zip(batch.obs.items(), mirror.observations(batch.obs).values())}

    def twice(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, x])

    return dataclasses.replace(batch, obs=obs, actions=torch.cat([batch.actions, mirror.actions.apply(batch.actions)]),
                               values=twice(batch.values), advantages=twice(batch.advantages),
                               returns=twice(batch.returns), log_probs=twice(batch.log_probs))


def standardized(x: torch.Tensor) -> torch.Tensor:
    """``x`` shifted to mean 0 and scaled to std 1 (over all its elements)."""
    return (x - x.mean()) / (x.std() + 1e-8)
