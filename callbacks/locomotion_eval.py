"""Periodic deterministic evaluation of a locomotion policy during training (rank 0 only).

Every ``every_n_iterations`` (and at the last iteration) the deterministic policy drives a separate evaluation
env (no observation noise, no pushes) with fixed commands; the callback logs ``Eval/...`` scalars and writes the
full per-command table to ``<run dir>/evaluations/iteration_<it>.json``. With ``terrain_robots_per_tile`` on a
terrain config it also runs ``leggedex play``'s per-terrain evaluation (``terrain_evaluation.py``) in an env of its
own, logs ``Eval/terrain/<type>/crossed`` and ``.../fall_rate`` (means over the levels) and adds the per-level table
to the same file under ``"terrain"``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

from callbacks.iterations import due_iteration
from leggedex.cli.report import json_ready
from leggedex.data import on_policy_datamodule
from leggedex.envs.locomotion.env import LeggedLocomotion
from leggedex.envs.locomotion.evaluation import DEFAULT_COMMANDS, command_name, evaluate_locomotion
from leggedex.envs.locomotion.ground import CurriculumTerrain
from leggedex.envs.locomotion.terrain_evaluation import evaluate_terrain, terrain_envs
from leggedex.envs.vec_env import VecEnv
from leggedex.methods.base import on_policy_method


class LocomotionEvaluation(Callback):
    """Args:
    every_n_iterations: evaluation period.
    num_envs: evaluation envs, split evenly over ``commands``.
    duration_s, settle_s: how long each command is held, and how long to wait before measuring velocity.
    commands: (vx, vy, yaw rate) triples.
    seed: seed of the evaluation env (fixed, so evaluations are comparable across iterations).
    terrain_robots_per_tile: robots on each (terrain type, level) tile of a per-terrain evaluation; 0: none.
    terrain_duration_s: seconds on the terrain tiles (the command is ``terrain_evaluation``'s default, vx 0.5).
    """

    def __init__(
        self,
        every_n_iterations: int = 100,
        num_envs: int = 96,
        duration_s: float = 8.0,
        settle_s: float = 2.0,
        commands: Sequence[Sequence[float]] = DEFAULT_COMMANDS,
        seed: int = 12345,
        terrain_robots_per_tile: int = 0,
        terrain_duration_s: float = 20.0,
    ) -> None:
        if every_n_iterations <= 0:
            raise ValueError("every_n_iterations must be positive")
        self.every_n_iterations = every_n_iterations
        self.num_envs = num_envs
        self.duration_s = duration_s
        self.settle_s = settle_s
        self.commands = [tuple(float(v) for v in c) for c in commands]
        self.seed = seed
        if terrain_robots_per_tile < 0 or terrain_duration_s <= settle_s:
            raise ValueError("terrain_robots_per_tile must be >= 0 and terrain_duration_s longer than settle_s")
        self.terrain_robots_per_tile = terrain_robots_per_tile
        self.terrain_duration_s = terrain_duration_s
        self._env: VecEnv | None = None
        self._terrain_env: VecEnv | None = None
        self.last_results: dict[str, dict[str, float]] = {}
        self.last_terrain: dict[str, Any] | None = None

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        iteration = due_iteration(trainer, self.every_n_iterations)
        if iteration is None:
            return
        log_dir = trainer.log_dir  # a collective under DDP (rank 0 broadcasts it): every rank must ask
        if not trainer.is_global_zero:
            return
        results = self.evaluate(trainer, pl_module)
        self.last_results = results
        logs = self.summary(results)
        written: dict[str, Any] = {"iteration": iteration, "commands": results}
        terrain = self.evaluate_terrain(trainer, pl_module)
        if terrain is not None:
            self.last_terrain = written["terrain"] = terrain
            logs.update(self.terrain_summary(terrain))
        pl_module.log_dict(logs, on_step=False, on_epoch=True, batch_size=1, rank_zero_only=True)
        if log_dir is not None:
            out = Path(log_dir) / "evaluations" / f"iteration_{iteration}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(json_ready(written), indent=2))

    def evaluate(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, dict[str, float]]:
        if self._env is None:
            self._env = on_policy_datamodule(trainer, "LocomotionEvaluation").evaluation_env(self.num_envs, self.seed)
        if not isinstance(self._env, LeggedLocomotion):
            raise TypeError(f"LocomotionEvaluation evaluates a velocity-tracking env (LeggedLocomotion), got "
                            f"{type(self._env).__name__}")
        policy = on_policy_method(pl_module, "LocomotionEvaluation").deployed_policy()
        return evaluate_locomotion(self._env, policy, self.commands, self.duration_s, self.settle_s)

    def evaluate_terrain(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, Any] | None:
        if self.terrain_robots_per_tile == 0 or not isinstance(self._env, LeggedLocomotion) \
                or not isinstance(self._env.ground, CurriculumTerrain):
            return None
        if self._terrain_env is None:
            num_envs = terrain_envs(self._env.ground, self.terrain_robots_per_tile)
            datamodule = on_policy_datamodule(trainer, "LocomotionEvaluation")
            self._terrain_env = datamodule.evaluation_env(num_envs, self.seed)
        env = self._terrain_env
        assert isinstance(env, LeggedLocomotion)
        policy = on_policy_method(pl_module, "LocomotionEvaluation").deployed_policy()
        return evaluate_terrain(env, policy, duration_s=self.terrain_duration_s, settle_s=self.settle_s)

    @staticmethod
    def terrain_summary(terrain: dict[str, Any]) -> dict[str, float]:
        logs = {}
        for kind, entry in terrain["types"].items():
            rows = entry["levels"]
            logs[f"Eval/terrain/{kind}/crossed"] = sum(r["crossed"] for r in rows) / len(rows)
            logs[f"Eval/terrain/{kind}/fall_rate"] = sum(r["fall_rate"] for r in rows) / len(rows)
        return logs

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
        for env in (self._env, self._terrain_env):
            if env is not None:
                env.close()
        self._env = self._terrain_env = None
