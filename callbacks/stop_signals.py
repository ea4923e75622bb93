"""Stopping on a signal without losing work: SIGTERM (what SLURM and most schedulers send before preemption),
SIGINT (Ctrl-C) and SIGUSR1 are noted when they arrive; the iteration under way finishes, ``last.ckpt`` is written,
and training ends with ``TrainingInterrupted`` (the command exits with 128 + the signal number). A second Ctrl-C
while the iteration finishes interrupts at once, as Lightning does.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


class TrainingInterrupted(RuntimeError):
    """Training stopped on a signal after saving a resumable checkpoint."""

    def __init__(self, signum: int, iteration: int, checkpoint: str | None) -> None:
        name = signal.Signals(signum).name
        where = (f"; resume with --ckpt_path {checkpoint}" if checkpoint
                 else "; no checkpoint was written (no checkpoint folder)")
        super().__init__(f"training interrupted by {name} after iteration {iteration}{where}")
        self.signum = signum
        self.exit_code = 128 + signum


class StopSignals:
    """Notes the first stop signal (installed on the main thread only; elsewhere it notes nothing)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._note)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
            print(f"\n{signal.Signals(signum).name} received: finishing this iteration, then saving last.ckpt "
                  "(Ctrl-C again stops at once)", flush=True)
        if signum == signal.SIGINT:  # a second Ctrl-C is Python's KeyboardInterrupt again
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
