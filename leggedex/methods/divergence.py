"""Training that diverged: a NaN or Inf where data or parameters enter, or an action std outside its range.

Checked where each value enters, so that the error names its source rather than where it first breaks:

- every observation group and the rewards as the env returns them, the actions as the method returns them
  (``check_env_step`` / ``check_actions``, once per rollout step, naming the rollout step, the envs and, where the
  env describes its groups, the observation terms or the reward terms);
- the rollout buffers, the losses, the gradients and the parameters in the update (``check_finite``,
  ``check_gradients``, ``check_parameters``).

The errors say nothing about checkpoints: ``IterationCheckpoint`` adds a note naming the last checkpoint written
before the failure (or that none was).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn


class TrainingDiverged(RuntimeError):
    """The run cannot go on: the message names the tensor, where it came from and the iteration; ``checkpoint``
    (set by the checkpoint callback, printed after the message) says what the run can resume from."""

    checkpoint: str | None = None

    def __str__(self) -> str:
        return super().__str__() + (f"\n{self.checkpoint}" if self.checkpoint else "")


class NonFiniteError(TrainingDiverged):
    """A NaN or an Inf reached the training data, a loss, a gradient or a parameter."""


class StdOutOfRange(TrainingDiverged):
    """The action std left its configured range (``std_out_of_range: stop``)."""


def all_finite(tensor: torch.Tensor) -> bool:
    """Whether ``tensor`` holds neither NaN nor Inf: its sum first (one fast pass, non-finite whenever an element is),
    each element only when the sum is not (it may have overflowed)."""
    if bool(torch.isfinite(tensor.sum())):
        return True
    return bool(torch.isfinite(tensor).all())


def counts(tensor: torch.Tensor) -> str:
    nans = int(torch.isnan(tensor).sum())
    return f"{nans} NaN, {int((~torch.isfinite(tensor)).sum()) - nans} Inf"


def listed(values: Iterable[int], most: int = 8) -> str:
    values = sorted(set(values))
    return str(values[:most])[:-1] + (", ...]" if len(values) > most else "]")


def columns_named(columns: Iterable[int], terms: Mapping[str, Mapping[str, Any]] | None) -> str:
    """' in terms a, b' (the terms of ``terms``, an env's ``TermSlices``, holding ``columns``), or the columns."""
    columns = sorted(set(columns))
    if terms:
        named = [name for name, where in terms.items()
                 if any(where["start"] <= c < where["start"] + where["size"] for c in columns)]
        if named:
            return f" in term(s) {', '.join(named)}"
    return f" in column(s) {listed(columns)}"


def check_finite(name: str, tensor: torch.Tensor, iteration: int, where: str = "") -> None:
    """Raise ``NonFiniteError`` naming ``name`` when ``tensor`` holds a NaN or an Inf.

    A tensor of two or more dimensions is read as a rollout buffer (step, env, ...): the first offending step
    and its envs are named."""
    if all_finite(tensor):
        return
    if tensor.dim() >= 2:
        bad = ~torch.isfinite(tensor).flatten(2).all(-1) if tensor.dim() > 2 else ~torch.isfinite(tensor)
        steps, envs = bad.nonzero(as_tuple=True)
        first = int(steps[0])
        where += f" (first at rollout step {first}, envs {listed(envs[steps == first].tolist())})"
    raise NonFiniteError(f"non-finite values in {name} at iteration {iteration}: {counts(tensor)}{where}. "
                         "Training stopped before the update used them.")


def check_per_env(name: str, tensor: torch.Tensor, iteration: int, step: int,
                  terms: Mapping[str, Mapping[str, Any]] | None = None, entered: str = "") -> None:
    """Raise ``NonFiniteError`` when ``tensor`` (env, ...) holds a NaN or an Inf, naming the envs, the rollout
    step and, for a (env, column) tensor, the terms (``TermSlices``) or columns that hold them."""
    if all_finite(tensor):
        return
    bad = ~torch.isfinite(tensor).reshape(tensor.shape[0], -1)
    envs = bad.any(dim=1).nonzero().flatten().tolist()
    where = f" in envs {listed(envs)}"
    if tensor.dim() == 2:
        where += columns_named(bad.any(dim=0).nonzero().flatten().tolist(), terms)
    raise NonFiniteError(f"non-finite values in {name} at iteration {iteration}, rollout step {step}: "
                         f"{counts(tensor)}{where}{entered}. Training stopped before they were used.")


def check_env_step(env: Any, obs: Mapping[str, torch.Tensor], rewards: torch.Tensor | None, iteration: int,
                   step: int) -> None:
    """Every observation group and the rewards an env (a ``VecEnv``) returned for one step (``rewards`` None: the
    observations a rollout starts from). Its ``obs_terms`` and ``reward_terms()`` are read only to name a failure."""
    entered = " (returned by env.step)" if rewards is not None else " (the observations the rollout starts from)"
    for group, values in obs.items():
        if not all_finite(values):
            check_per_env(f"observations['{group}']", values, iteration, step, env.obs_terms.get(group), entered)
    if rewards is None or all_finite(rewards):
        return
    bad_terms = [name for name, value in env.reward_terms().items() if not all_finite(value)]
    check_per_env("rewards", rewards, iteration, step,
                  entered=f" (reward term(s) {', '.join(bad_terms)})" if bad_terms else entered)


def check_actions(actions: torch.Tensor, iteration: int, step: int) -> None:
    """The actions a method chose, before the env applies them."""
    check_per_env("actions", actions, iteration, step, entered=" (returned by the method's act)")


def parameter_names(module: nn.Module) -> dict[int, str]:
    return {id(p): name for name, p in module.named_parameters()}


def check_gradients(module: nn.Module, params: list[nn.Parameter], iteration: int, what: str) -> None:
    """After a backward: raise ``NonFiniteError`` naming the parameters of ``params`` whose gradient is not finite."""
    names = parameter_names(module)
    bad = [names.get(id(p), "?") for p in params if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
    if not bad:
        return
    raise NonFiniteError(f"non-finite gradients of {what} at iteration {iteration} in parameter(s) "
                         f"{', '.join(bad[:8])}{', ...' if len(bad) > 8 else ''}. Training stopped before the "
                         "optimizer step.")


def check_parameters(module: nn.Module, iteration: int) -> None:
    """After an update: raise ``NonFiniteError`` naming every parameter that holds a NaN or an Inf."""
    bad = [(name, p) for name, p in module.named_parameters() if not all_finite(p.detach())]
    if bad:
        named = "; ".join(f"{name} ({counts(p.detach())})" for name, p in bad[:8])
        raise NonFiniteError(f"non-finite parameters after the update of iteration {iteration}: {named}.")
