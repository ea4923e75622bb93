"""Per-iteration training statistics: episode returns and lengths, reward terms, timing and throughput.

Values are accumulated with torchmetrics during the iteration and reduced across ranks once, at its end,
then logged through ``LightningModule.log`` with rsl_rl / LeggedGym-Ex tag names (``Train/mean_reward``,
``Episode/<term>``, ``Perf/total_fps``, ...). Each metric's x-axis is the iteration count.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torchmetrics import MeanMetric, SumMetric

from leggedex.methods.base import Rollout, trainer_datamodule


class EpisodeStatsLogger(Callback):
    """Logs the statistics of each iteration; see the module docstring."""

    def __init__(self) -> None:
        self.mean_return = MeanMetric(nan_strategy="error")
        self.mean_length = MeanMetric(nan_strategy="error")
        self.env_steps = SumMetric()
        self.info: dict[str, MeanMetric] = {}
        self._learn_start = 0.0
        self._iteration_start = 0.0
        self._collection_time = 0.0
        self._learning_time = 0.0

    def _metrics(self) -> list[MeanMetric | SumMetric]:
        return [self.mean_return, self.mean_length, self.env_steps, *self.info.values()]

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        env = getattr(trainer_datamodule(trainer), "env", None)
        # the env names its statistics up front so that every rank reduces the same metrics in the same order
        for key in getattr(env, "episode_keys", ()):
            self.info[key] = MeanMetric()
        for metric in self._metrics():
            metric.to(pl_module.device)

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        self._learn_start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Rollout, batch_idx: int
    ) -> None:
        self._learning_time = time.perf_counter() - self._learn_start
        self._collection_time = batch.collection_time
        device = pl_module.device
        if batch.episode_returns.numel() > 0:
            self.mean_return.update(batch.episode_returns.to(device))
            self.mean_length.update(batch.episode_lengths.to(device))
        self.env_steps.update(torch.tensor(float(batch.num_steps * batch.num_envs), device=device))
        for key, value in batch.episode_info.items():
            if key not in self.info:
                if trainer.world_size > 1:
                    continue  # undeclared keys would make ranks reduce different metric sets
                self.info[key] = MeanMetric().to(device)
            self.info[key].update(value.to(device))

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        logs: dict[str, float] = {}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*compute.*before.*update.*")
            mean_return = self.mean_return.compute()
            mean_length = self.mean_length.compute()
            total_steps = float(self.env_steps.compute())
            info = {key: metric.compute() for key, metric in self.info.items()}
        if torch.isfinite(mean_return):
            logs["Train/mean_reward"] = float(mean_return)
            logs["Train/mean_episode_length"] = float(mean_length)
        for key, value in info.items():
            if torch.isfinite(value):
                logs[f"Episode/{key}"] = float(value)
        # rollout and update only: an evaluation or a video made by another callback is not training time
        logs["Perf/total_fps"] = total_steps / max(self._collection_time + self._learning_time, 1e-9)
        logs["Perf/collection time"] = self._collection_time
        logs["Perf/learning_time"] = self._learning_time
        pl_module.log_dict(logs, on_step=False, on_epoch=True, batch_size=1)
        for metric in self._metrics():
            metric.reset()
