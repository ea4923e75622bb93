"""Periodic deterministic evaluation of a locomotion policy during training (rank 0 only).

Every ``every_n_iterations`` (and at the last iteration) the deterministic policy drives a separate evaluation
env (no observation noise, no pushes) with fixed commands; the callback logs ``Eval/...`` scalars and writes the
full per-command table to ``<run dir>/evaluations/iteration_<it>.json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from lightning.pytorch import Callback, LightningModule, Trainer

from callbacks.iterations import due_iteration
from leggedex.data import on_policy_datamodule
from leggedex.envs.locomotion.env import LeggedLocomotion
from leggedex.envs.locomotion.evaluation import DEFAULT_COMMANDS, command_name, evaluate_locomotion
from leggedex.envs.vec_env import VecEnv
from leggedex.methods.base import on_policy_method


class LocomotionEvaluation(Callback):
    """Args:
    every_n_iterations: evaluation period.
    num_envs: evaluation envs, split evenly over ``commands``.
    duration_s, settle_s: how long each command is held, and how long to wait before measuring velocity.
    commands: (vx, vy, yaw rate) triples.
    seed: seed of the evaluation env (fixed, so evaluations are comparable across iterations).
    """

    def __init__(
        self,
        every_n_iterations: int = 100,
        num_envs: int = 96,
        duration_s: float = 8.0,
        settle_s: float = 2.0,
        commands: Sequence[Sequence[float]] = DEFAULT_COMMANDS,
        seed: int = 12345,
    ) -> None:
        if every_n_iterations <= 0:
            raise ValueError("every_n_iterations must be positive")
        self.every_n_iterations = every_n_iterations
        self.num_envs = num_envs
        self.duration_s = duration_s
        self.settle_s = settle_s
        self.commands = [tuple(float(v) for v in c) for c in commands]
        self.seed = seed
        self._env: VecEnv | None = None
        self.last_results: dict[str, dict[str, float]] = {}

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        iteration = due_iteration(trainer, self.every_n_iterations)
        if iteration is None:
            return
        log_dir = trainer.log_dir  # a collective under DDP (rank 0 broadcasts it): every rank must ask
        if not trainer.is_global_zero:
            return
        results = self.evaluate(trainer, pl_module)
        self.last_results = results
        pl_module.log_dict(self.summary(results), on_step=False, on_epoch=True, batch_size=1, rank_zero_only=True)
        if log_dir is not None:
            out = Path(log_dir) / "evaluations" / f"iteration_{iteration}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"iteration": iteration, "commands": results}, indent=2))

    def evaluate(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, dict[str, float]]:
        if self._env is None:
            self._env = on_policy_datamodule(trainer, "LocomotionEvaluation").evaluation_env(self.num_envs, self.seed)
        if not isinstance(self._env, LeggedLocomotion):
            raise TypeError(f"LocomotionEvaluation evaluates a velocity-tracking env (LeggedLocomotion), got "
                            f"{type(self._env).__name__}")
        policy = on_policy_method(pl_module, "LocomotionEvaluation").deployed_policy()
        return evaluate_locomotion(self._env, policy, self.commands, self.duration_s, self.settle_s)

    def summary(self, results: dict[str, dict[str, float]]) -> dict[str, float]:
        """Per command: the error on each commanded axis and the fall rate; gait numbers over moving commands."""
        logs: dict[str, float] = {}
        moving = []
        for command in self.commands:
            name = command_name(command)
            row = results[name]
            for axis, value in zip(("vx", "vy", "yaw"), command):
                if value != 0.0:
                    logs[f"Eval/{name}/error_{axis}"] = row[f"error_{axis}"]
            logs[f"Eval/{name}/fall_rate"] = row["fall_rate"]
            if any(command):
                moving.append(row)
        if moving:
            logs["Eval/base_height_median"] = min(r["base_height_median"] for r in moving)
            logs["Eval/body_contact_fraction"] = max(r["body_contact_fraction"] for r in moving)
            logs["Eval/min_foot_air_fraction"] = min(r["min_foot_air_fraction"] for r in moving)
        return logs

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None
