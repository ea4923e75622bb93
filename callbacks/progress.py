"""A progress display for RL: one line per iteration instead of a per-batch bar (one batch per epoch here)."""

from __future__ import annotations

import time
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ProgressBar


def format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class RLProgressBar(ProgressBar):
    """Prints ``it 12/300 | 45.3k steps/s | reward 12.34 | ep len 200 | 0m31s elapsed | ETA 9m40s``.

    The run directory is printed when training starts and when it ends. Steps/s count the rollout and the update
    only; time spent after the update by other callbacks (an evaluation, a video) is shown as ``callbacks 48s``.

    Args:
        refresh_rate: print every this many iterations (0 disables the display).
    """

    def __init__(self, refresh_rate: int = 1) -> None:
        super().__init__()
        self.refresh_rate = refresh_rate
        self._enabled = refresh_rate > 0
        self._start = 0.0
        self._first_iteration = 0
        self._updated_at = 0.0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = self.refresh_rate > 0

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start = time.perf_counter()
        self._first_iteration = trainer.current_epoch
        log_dir = trainer.log_dir  # a collective under DDP: every rank asks
        if self._enabled and trainer.is_global_zero:
            total = trainer.max_epochs if trainer.max_epochs not in (None, -1) else "?"
            print(f"training iterations {trainer.current_epoch + 1} to {total}; run directory: {log_dir}", flush=True)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        log_dir = trainer.log_dir
        if self._enabled and trainer.is_global_zero:
            took = format_duration(time.perf_counter() - self._start)
            print(f"stopped after iteration {trainer.current_epoch}, {took}; run directory: {log_dir}", flush=True)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._updated_at = time.perf_counter()

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        iteration = trainer.current_epoch + 1
        if not (self._enabled and trainer.is_global_zero) or iteration % self.refresh_rate:
            return
        metrics = trainer.callback_metrics
        elapsed = time.perf_counter() - self._start
        done = iteration - self._first_iteration
        parts = [f"it {iteration}/{trainer.max_epochs if trainer.max_epochs not in (None, -1) else '?'}"]
        if "Perf/total_fps" in metrics:
            parts.append(f"{float(metrics['Perf/total_fps']) / 1000:.1f}k steps/s")
        if "Train/mean_reward" in metrics:
            parts.append(f"reward {float(metrics['Train/mean_reward']):.3f}")
            parts.append(f"ep len {float(metrics['Train/mean_episode_length']):.0f}")
        after_update = time.perf_counter() - self._updated_at
        if after_update >= 1.0:
            parts.append(f"callbacks {after_update:.0f}s")
        parts.append(f"{format_duration(elapsed)} elapsed")
        if trainer.max_epochs not in (None, -1) and done > 0:
            parts.append(f"ETA {format_duration(elapsed / done * (trainer.max_epochs - iteration))}")
        print(" | ".join(parts), flush=True)
