"""Counting PPO iterations in a fit (one Lightning epoch each) and deciding when a periodic callback is due."""

from __future__ import annotations

from lightning.pytorch import Trainer


def completed_iterations(trainer: Trainer) -> int:
    """Iterations finished so far in this fit, a resumed run's included (the epoch it starts from)."""
    # Lightning types the tracker as a _ReadyCompletedTracker, but the fit loop's epoch tracker is the
    # _ProcessedTracker (its default), which counts processed epochs
    return trainer.fit_loop.epoch_progress.current.processed  # type: ignore[attr-defined]


def due_iteration(trainer: Trainer, every_n_iterations: int) -> int | None:
    """The completed iteration when a callback with this period is due (every N iterations and at the last one),
    else None."""
    iteration = completed_iterations(trainer)
    if iteration % every_n_iterations == 0 or iteration == trainer.max_epochs:
        return iteration
    return None
