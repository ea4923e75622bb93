"""What every on-policy method shares: the contract with the DataModule, construction checks, resume extras.

A method is one LightningModule subclass. The DataModule drives the env and calls, per rollout step,

    actions = method.act(obs)                                   # under torch.inference_mode
    method.process_env_step(next_obs, rewards, dones, extras)   # fills the method's own storage

``num_steps_per_env`` times, then yields a ``Rollout`` batch to ``training_step``. A subclass declares
``required_obs_groups``; ``build(spec)`` checks them against the env and builds networks before the Trainer
wraps the model (``configure_model``), so a mismatch fails with one message before any training. The networks
(``check_networks``) and the storage (``storage_type``, checked when the fit starts) are checked the same way.

Checkpoints carry, beside Lightning's own content, the method's class, the env's observation spec (so a
checkpoint can be loaded without an env) and the RNG states (so a resumed run continues bit-exactly).

Data-parallel (Lightning DDP): each rank samples its own action noise and mini-batch order (torch seeded with
the global seed + rank before the networks are built; DDP then broadcasts rank 0's initial weights). DDP
averages the gradients of every ``manual_backward`` (see ``backward_loss``). Checkpoints hold every rank's RNG
states, in rank order; on resume a rank takes its own entry when the checkpoint has one.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from lightning.fabric.utilities.apply_func import move_data_to_device
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.utilities import AttributeDict
from torch import nn

from leggedex.envs.vec_env import Obs, ObsSpec, VecEnv
from leggedex.methods.divergence import check_finite, check_gradients
from leggedex.modules.memory import forget

T = TypeVar("T")
DDP_FIX = "--trainer.strategy ddp_find_unused_parameters_true"


@dataclass
class Rollout:
    """The batch an iteration trains on: the method's filled storage plus what the collector measured."""

    storage: Any
    last_obs: Obs
    collection_time: float
    num_steps: int
    num_envs: int
    episode_returns: torch.Tensor
    episode_lengths: torch.Tensor
    episode_info: dict[str, torch.Tensor] = field(default_factory=dict)


def numpy_rng_state() -> dict[str, Any]:
    """NumPy's global RNG state as tensors and numbers, which ``torch.load(weights_only=True)`` accepts."""
    # legacy=True is NumPy's default, spelled out: the stubs type a bare call as returning the dict form
    state = np.random.get_state(legacy=True)
    if isinstance(state, dict):  # the form of a bit generator other than MT19937, which the global RNG always is
        raise TypeError(f"NumPy's global RNG has no MT19937 state to save (it is a {state['bit_generator']})")
    name, keys, pos, has_gauss, cached = state
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached": float(cached)}


def set_numpy_rng_state(state: dict[str, Any]) -> None:
    keys = state["keys"].numpy().astype(np.uint32)
    np.random.set_state((state["name"], keys, state["pos"], state["has_gauss"], state["cached"]))


def gather_to_rank_zero(obj: Any) -> list[Any]:
    """Every rank's ``obj`` in rank order on global rank 0 (the rank that writes checkpoints), ``[]`` elsewhere.

    Tensors are moved to the CPU first. Under ``torch.distributed`` this is a collective: every rank must call
    it at the same point (Lightning builds a checkpoint on every rank and writes it from rank 0).
    """
    obj = move_data_to_device(obj, "cpu")
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    gathered: list[Any] | None = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(obj, gathered, dst=0)
    return gathered if gathered is not None else []


def trainer_datamodule(trainer: Trainer) -> LightningDataModule | None:
    """``trainer.datamodule``, the DataModule of the running fit (None without one)."""
    # Lightning assigns this attribute in its data connector but does not declare it on Trainer
    return trainer.datamodule  # type: ignore[attr-defined]


class OnPolicyMethod(LightningModule):
    """Base class of on-policy methods; see the module docstring."""

    required_obs_groups: ClassVar[tuple[str, ...]] = ("policy", "critic")
    # options a resumed run must share with its checkpoint (what the saved networks were built with); every other
    # option given on resume replaces the checkpoint's (``leggedex fit --ckpt_path``)
    fixed_on_resume: ClassVar[tuple[str, ...]] = ()
    storage_type: ClassVar[type] = object  # what build_storage must return (a subclass of it)
    # why some backward passes leave parameters without a gradient (None: none does); DDP then needs
    # find_unused_parameters=True, which ``setup`` requires
    partial_backwards: ClassVar[str | None] = None

    if TYPE_CHECKING:
        # what save_hyperparameters() stores, read by attribute; Lightning's type also admits any other mapping
        @property
        def hparams(self) -> AttributeDict: ...

    def __init__(self, num_steps_per_env: int = 24) -> None:
        super().__init__()
        if num_steps_per_env <= 0:
            raise ValueError(f"num_steps_per_env must be positive, got {num_steps_per_env}")
        self.automatic_optimization = False
        self.num_steps_per_env = num_steps_per_env
        self.obs_spec: ObsSpec | None = None
        self.storage: Any = None
        self.plain_iteration = 0  # the iteration counter when driven without a Trainer
        self.resumed_hparams: dict[str, Any] = {}  # the options of the checkpoint this module was loaded from

    # ------------------------------------------------------------------------------------------ construction
    @property
    def is_built(self) -> bool:
        return self.obs_spec is not None

    def built(self, part: T | None) -> T:
        """``part``, one of what ``build`` sets (the spec, the networks); a ``RuntimeError`` before ``build``."""
        if part is None:
            raise RuntimeError(f"{type(self).__name__} is not built yet: build(spec) builds it (a fit or loading a "
                               "checkpoint runs it)")
        return part

    @property
    def built_obs_spec(self) -> ObsSpec:
        """The observation spec the method was built for."""
        return self.built(self.obs_spec)

    def build(self, spec: ObsSpec) -> None:
        """Check ``spec`` against ``required_obs_groups`` and build the networks (once)."""
        if self.is_built:
            if spec != self.obs_spec:
                raise ValueError(f"{type(self).__name__} was built for {self.obs_spec} but the env has {spec}")
            return
        spec.require(self.required_obs_groups, type(self).__name__)
        self.build_networks(spec)
        self.check_networks()
        self.obs_spec = spec

    def build_networks(self, spec: ObsSpec) -> None:
        raise NotImplementedError

    def check_networks(self) -> None:
        """Raise a ``TypeError`` (see ``require_type``) when ``build_networks`` built networks this method cannot
        train."""

    def build_storage(self, num_envs: int) -> Any:
        raise NotImplementedError

    def setup_storage(self, num_envs: int) -> None:
        """Build the rollout storage and check that it is a ``storage_type``."""
        storage = self.build_storage(num_envs)
        self.require_type("rollout storage", "build_storage returned", storage, self.storage_type)
        self.storage = storage

    def require_type(self, what: str, where: str, value: object, expected: type[T]) -> T:
        """``value``, when it is an ``expected``; else a ``TypeError`` naming ``what`` and ``where`` it came from."""
        if not isinstance(value, expected):
            raise TypeError(f"{type(self).__name__} needs its {what} to be {expected.__name__} (or a subclass), "
                            f"but {where} {type(value).__name__}")
        return value

    def datamodule_env(self) -> VecEnv:
        """The env of the Trainer's datamodule (``OnPolicyDataModule`` builds it in its ``setup``)."""
        env = getattr(trainer_datamodule(self.trainer), "env", None)
        if env is None:
            raise RuntimeError(f"{type(self).__name__} needs a datamodule that builds an env (OnPolicyDataModule)")
        return env

    def configure_model(self) -> None:
        if self._trainer is None:  # load_from_checkpoint: on_load_checkpoint builds from the saved spec
            return
        env = self.datamodule_env()
        if self.trainer.world_size > 1:
            # ranks sharing one seed would draw the same action noise for env i of every rank
            torch.manual_seed(int(os.environ.get("PL_GLOBAL_SEED", 0)) + self.global_rank)
        self.build(env.obs_spec)

    def setup(self, stage: str) -> None:
        strategy = self.trainer.strategy
        # Lightning keeps DDP's keyword arguments in a private field; it has no public accessor for them
        if (self.partial_backwards is not None and isinstance(strategy, DDPStrategy)
                and not strategy._ddp_kwargs.get("find_unused_parameters", False)):
            raise ValueError(
                f"{type(self).__name__} under DDP needs find_unused_parameters=True: {self.partial_backwards}. Run "
                f"with {DDP_FIX} (or DDPStrategy(find_unused_parameters=True))."
            )

    def on_fit_start(self) -> None:
        self.setup_storage(self.datamodule_env().num_envs)

    # ----------------------------------------------------------------------------------------- rollout API
    def act(self, obs: Obs) -> torch.Tensor:
        raise NotImplementedError

    def process_env_step(self, obs: Obs, rewards: torch.Tensor, dones: torch.Tensor, extras: dict[str, Any]) -> None:
        raise NotImplementedError

    def policy_inputs(self) -> tuple[str, ...]:
        """Observation groups the deployed policy reads, in ``inference_policy`` argument order."""
        return ("policy",)

    def inference_policy(self, *obs: torch.Tensor) -> torch.Tensor:
        """The deterministic deploy policy on raw observations."""
        raise NotImplementedError

    def deployed_policy(self) -> DeployedPolicy:
        """``inference_policy`` as a function of an env's observations (see ``DeployedPolicy``): what play,
        evaluation and video drive the env with; a ``RecurrentDeployedPolicy`` when it carries a recurrent state."""
        return RecurrentDeployedPolicy(self) if self.recurrent_state() else DeployedPolicy(self)

    def teacher_policy(self) -> DeployedPolicy:
        """The teacher's deterministic policy on an env's observations (``leggedex play --teacher``); a method
        without a teacher (anything but the teacher-student family) raises ``NoTeacher``."""
        raise NoTeacher(f"{self.method_name()} has no teacher policy: --teacher needs a teacher-student method "
                        f"(TeacherStudentPPO, CTSPPO, RecurrentTeacherStudentPPO)")

    def recurrent_state(self) -> dict[str, tuple[int, int]]:
        """The recurrent state the deployed policy carries from step to step: name -> (layers, hidden size), in
        the order ``inference_policy`` takes the tensors after the observations and returns them after the
        actions. Empty for a feed-forward policy."""
        return {}

    def backward_loss(self, loss: torch.Tensor) -> None:
        """``manual_backward`` under a Trainer, plain ``backward`` without one.

        Under DDP, ``manual_backward`` arms the DDP reducer, whose hooks on the parameters average the gradients
        over ranks during this backward, although the networks are called directly rather than through the
        DDP-wrapped forward. A plain ``loss.backward()`` there would leave every rank with its own gradients.
        """
        if self._trainer is not None:
            self.manual_backward(loss)
        else:
            loss.backward()

    def clipped_step(
        self, what: str, loss: torch.Tensor, optimizer: Any, max_grad_norm: float,
        clip_groups: Sequence[Sequence[nn.Parameter]] | None = None,
    ) -> None:
        """One step of ``optimizer`` on ``loss``: the loss and then the gradients checked (``NonFiniteError`` naming
        ``what`` and the parameters), the gradient norm clipped to ``max_grad_norm``: of all the optimizer's
        parameters together, or of each of ``clip_groups`` (which must cover them) on its own."""
        check_finite(what, loss.detach(), self.iteration)
        optimizer.zero_grad(set_to_none=True)
        self.backward_loss(loss)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        groups = [params] if clip_groups is None else clip_groups
        try:  # raises before it scales that group's gradients, so that the non-finite ones can be named
            for group in groups:
                nn.utils.clip_grad_norm_(group, max_grad_norm, error_if_nonfinite=True)
        except RuntimeError as error:
            if "non-finite" not in str(error):
                raise
            check_gradients(self, params, self.iteration, what)
            raise
        optimizer.step()

    def mean_over_ranks(self, value: torch.Tensor) -> torch.Tensor:
        """Average ``value`` over data-parallel ranks (identity in a single process)."""
        if self._trainer is not None:
            return self.trainer.strategy.reduce(value, reduce_op="mean")
        return value

    @property
    def iteration(self) -> int:
        """Index of the running iteration (= Lightning epoch), starting at 0."""
        return self.current_epoch if self._trainer is not None else self.plain_iteration

    # -------------------------------------------------------------------------------------------- checkpoints
    @classmethod
    def method_name(cls) -> str:
        return f"{cls.__module__}.{cls.__qualname__}"

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["leggedex"] = {
            "method": self.method_name(),
            "obs_spec": self.obs_spec.to_dict() if self.obs_spec is not None else None,
            "rng": gather_to_rank_zero({
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "numpy": numpy_rng_state(),
                "python": random.getstate(),
            }),
        }

    def check_checkpoint_shapes(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Raise one ``ValueError`` naming every tensor whose shape differs between a checkpoint and this method."""
        own = self.state_dict()
        mismatched = [
            f"{name}: {tuple(value.shape)} in the checkpoint, {tuple(own[name].shape)} here"
            for name, value in state_dict.items()
            if name in own and hasattr(value, "shape") and tuple(value.shape) != tuple(own[name].shape)
        ]
        if mismatched:
            raise ValueError(
                f"the checkpoint does not fit {type(self).__name__} as configured ({len(mismatched)} tensor(s) differ "
                f"in shape): " + "; ".join(mismatched[:6]) + ("; ..." if len(mismatched) > 6 else "")
                + ". Use the network sizes and observation groups the checkpoint was written with."
            )

    def check_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse, with one message, a checkpoint written by another method or for other observations or network
        shapes; builds the networks from the checkpoint's observation spec when they are not built yet."""
        extra = checkpoint.get("leggedex")
        if extra is None:
            raise ValueError("this checkpoint was not written by a leggedex method (no 'leggedex' entry)")
        if extra["method"] != self.method_name():
            raise ValueError(
                f"checkpoint was written by method {extra['method']} and cannot be loaded into {self.method_name()}; "
                "use the config of the method that wrote it"
            )
        if extra["obs_spec"] is not None:
            saved = ObsSpec.from_dict(extra["obs_spec"])
            if self.is_built and saved != self.obs_spec:
                raise ValueError(f"the checkpoint was written for observations {saved}, but {type(self).__name__} "
                                 f"runs on {self.obs_spec}")
            self.build(saved)
        self.check_checkpoint_shapes(checkpoint.get("state_dict") or {})

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.check_checkpoint(checkpoint)
        self.resumed_hparams = dict(checkpoint.get("hyper_parameters") or {})
        extra = checkpoint["leggedex"]
        if self.global_rank >= len(extra["rng"]):
            return  # written by fewer ranks: this one keeps its own seed
        rng = extra["rng"][self.global_rank]
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(rng["cuda"])
        set_numpy_rng_state(rng["numpy"])
        random.setstate(rng["python"])


class NoTeacher(ValueError):
    """A teacher's policy was asked of a method that has none."""


class DeployedPolicy:
    """A method's deterministic deploy policy as a function of an env's observations, wherever the env runs: the
    groups of ``policy_inputs()`` are moved to the method's device, actions come back on it (envs move them to
    theirs). Who drives an env with it calls ``reset(dones)`` after every step: a recurrent policy (see
    ``RecurrentPPO``) then zeroes the state of the robots whose episode ended; for a feed-forward one it is a no-op."""

    def __init__(self, method: OnPolicyMethod) -> None:
        self.method = method
        self.groups = method.policy_inputs()

    def inputs(self, obs: Obs) -> tuple[torch.Tensor, ...]:
        return tuple(obs[group].to(self.method.device) for group in self.groups)

    def __call__(self, obs: Obs) -> torch.Tensor:
        return self.method.inference_policy(*self.inputs(obs))

    def reset(self, dones: torch.Tensor) -> None:
        """Forget what the policy remembers of the envs where ``dones`` is true."""


class RecurrentDeployedPolicy(DeployedPolicy):
    """The deployed policy of a method whose ``inference_policy`` carries a recurrent state (``recurrent_state()``),
    with one state per env: zero at first and after ``reset(dones)``."""

    def __init__(self, method: OnPolicyMethod) -> None:
        super().__init__(method)
        self.state: tuple[torch.Tensor, ...] = ()

    def __call__(self, obs: Obs) -> torch.Tensor:
        inputs = self.inputs(obs)
        batch = inputs[0].shape[0]
        if not self.state or self.state[0].shape[1] != batch:
            self.state = tuple(torch.zeros(layers, batch, hidden, device=self.method.device)
                               for layers, hidden in self.method.recurrent_state().values())
        actions, *state = self.method.inference_policy(*inputs, *self.state)
        self.state = tuple(state)
        return actions

    def reset(self, dones: torch.Tensor) -> None:
        self.state = tuple(forget(tensor, dones) for tensor in self.state)


def on_policy_method(module: LightningModule, who: str) -> OnPolicyMethod:
    """``module`` as the ``OnPolicyMethod`` that ``who`` (a callback) needs."""
    if not isinstance(module, OnPolicyMethod):
        raise TypeError(f"{who} needs a leggedex method (an OnPolicyMethod), got {type(module).__name__}")
    return module
