"""Checkpoints counted in PPO iterations: ``model_<it>.ckpt`` every N iterations and a frequent ``last.ckpt``.

A ``ModelCheckpoint`` subclass, so ``--ckpt_path last`` and Lightning's bookkeeping keep working. Unless the
trainer was given a checkpoint IO of its own, files are written by ``AtomicCheckpointIO`` (``checkpoint_io.py``):
a temporary file beside the target, synced and renamed, so a crash while writing never leaves a truncated
``last.ckpt``, and a write that fails stops the run naming the file. A SIGTERM, SIGINT or SIGUSR1 during training
writes ``last.ckpt`` after the iteration under way and stops with ``TrainingInterrupted`` (``stop_signals.py``).
A run that diverges (``TrainingDiverged``) gets a note naming the latest checkpoint written before it.
``<it>`` is the number of completed iterations, the epoch a resumed run starts from.
"""

from __future__ import annotations

import signal
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from callbacks.checkpoint_io import AtomicCheckpointIO
from callbacks.iterations import completed_iterations
from callbacks.stop_signals import StopSignals, TrainingInterrupted
from leggedex.methods.divergence import TrainingDiverged


class IterationCheckpoint(ModelCheckpoint):
    """Args:
    every_n_iterations: write ``model_<it>.ckpt`` (kept) every this many iterations.
    last_every_n_iterations: refresh ``last.ckpt`` every this many iterations (and at the end of training).
    dirpath: where to write; default ``<run dir>/checkpoints``.
    """

    def __init__(
        self, every_n_iterations: int = 100, last_every_n_iterations: int = 10, dirpath: str | None = None
    ) -> None:
        if every_n_iterations <= 0 or last_every_n_iterations <= 0:
            raise ValueError("every_n_iterations and last_every_n_iterations must be positive")
        super().__init__(
            dirpath=dirpath,
            filename="model_{iteration}",
            auto_insert_metric_name=False,
            every_n_epochs=every_n_iterations,
            save_top_k=-1,
            save_last=True,
            save_on_train_epoch_end=True,
            enable_version_counter=False,
        )
        self.last_every_n_iterations = last_every_n_iterations
        self.stop_signals = StopSignals()
        self._interrupted: int | None = None
        self._intact: tuple[str, int] | None = None  # the latest checkpoint of this fit: path, iterations it holds

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # Lightning's default, not a user's choice
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        super().setup(trainer, pl_module, stage)

    def _monitor_candidates(self, trainer: Trainer) -> dict[str, Any]:
        candidates = super()._monitor_candidates(trainer)
        candidates["iteration"] = torch.tensor(completed_iterations(trainer))
        return candidates

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._interrupted = None
        self._intact = (str(trainer.ckpt_path), completed_iterations(trainer)) if trainer.ckpt_path else None
        self.stop_signals.install()

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        saved_now = self._last_global_step_saved == trainer.global_step
        # every rank decides together (a signal may reach only some of them); one collective per iteration
        stop = trainer.strategy.reduce_boolean_decision(self.stop_signals.received is not None, all=False)
        if not saved_now and (stop or completed_iterations(trainer) % self.last_every_n_iterations == 0):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        if stop:
            self._interrupted = self.stop_signals.received or signal.SIGTERM  # another rank's signal
            trainer.should_stop = True

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.stop_signals.restore()
        if self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        if self._interrupted is not None:
            raise TrainingInterrupted(self._interrupted, completed_iterations(trainer), self.last_model_path or None)

    def _save_checkpoint(self, trainer: Trainer, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        self._intact = (filepath, completed_iterations(trainer))

    def intact_checkpoint(self) -> str:
        """What a failed fit can resume from: the latest checkpoint written (or resumed from), or that none is."""
        if self._intact is None:
            return ("No checkpoint of this run exists yet (the first is written after iteration "
                    f"{min(self.last_every_n_iterations, self._every_n_epochs)}).")
        path, iterations = self._intact
        return (f"The latest checkpoint, {path}, holds {iterations} iteration(s) and was written before this "
                f"failure: resume with --ckpt_path {path} once the cause is fixed.")

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self.stop_signals.restore()
        if isinstance(exception, TrainingDiverged):
            exception.checkpoint = self.intact_checkpoint()
