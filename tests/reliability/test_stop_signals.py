"""A scheduler's SIGTERM or a Ctrl-C: the iteration finishes, last.ckpt is written, the command exits non-zero saying
so, and resuming continues bit-exactly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from leggedex.cli import RUN_STAMP_ENV, main

from conftest import REPO

QUICKSTART = str(REPO / "configs" / "quickstart.yaml")
SMALL = ["--data.num_envs", "16", "--model.num_steps_per_env", "8", "--torch_threads", "1"]
ITERATIONS = 40


def interrupted_fit(workdir: Path, signum: int) -> tuple[int, str, Path]:
    """Start a fit, send ``signum`` once it has printed iteration 3; returns (exit code, stderr, run directory)."""
    env = {**os.environ, RUN_STAMP_ENV: "2026-01-02_03-04-05"}
    child = subprocess.Popen([sys.executable, "-m", "leggedex.cli", "fit", "--config", QUICKSTART, *SMALL,
                              "--trainer.max_epochs", str(ITERATIONS)],
                             cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("it 3/"):
            child.send_signal(signum)
            break
    _, stderr = child.communicate(timeout=120)
    return child.returncode, stderr, workdir / "logs" / "quickstart" / "2026-01-02_03-04-05"


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_signal_saves_last_checkpoint_and_exits_saying_so(tmp_path, signum, code) -> None:
    returncode, stderr, run = interrupted_fit(tmp_path, signum)
    assert returncode == code, stderr[-2000:]  # before: SIGTERM exited 0 without saving
    stopped = re.search(rf"training interrupted by {signal.Signals(signum).name} after iteration (\d+); resume with "
                        rf"--ckpt_path (\S+)", stderr)
    assert stopped is not None, stderr[-2000:]
    iteration = int(stopped.group(1))
    assert 3 <= iteration < ITERATIONS and Path(stopped.group(2)) == run / "checkpoints" / "last.ckpt"
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == iteration - 1


def test_resuming_after_sigterm_is_bit_exact(tmp_path, monkeypatch) -> None:
    _, _, run = interrupted_fit(tmp_path, signal.SIGTERM)
    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", QUICKSTART, *SMALL, "--trainer.max_epochs", str(ITERATIONS),
          "--ckpt_path", str(run / "checkpoints" / "last.ckpt")])
    monkeypatch.setenv(RUN_STAMP_ENV, "2026-01-02_09-09-09")
    main(["fit", "--config", QUICKSTART, *SMALL, "--trainer.max_epochs", str(ITERATIONS)])
    straight = tmp_path / "logs" / "quickstart" / "2026-01-02_09-09-09"
    resumed_state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    straight_state = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert resumed_state.keys() == straight_state.keys()
    assert all(torch.equal(resumed_state[k], straight_state[k]) for k in resumed_state)
