"""Faults injected into checkpoint writes: the last good checkpoint always loads, a failed write stops the run
naming the file, and no temporary file is left behind."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

import callbacks.checkpoint_io as checkpoint_io
from callbacks import IterationCheckpoint
from callbacks.checkpoint_io import CheckpointWriteError, temporary_files, write_atomically

from conftest import REPO, make_datamodule, make_ppo, make_trainer


def fit(tmp_path: Path, iterations: int, resume: bool = False) -> None:
    ckpt = IterationCheckpoint(every_n_iterations=100, last_every_n_iterations=1, dirpath=str(tmp_path))
    make_trainer(iterations, callbacks=[ckpt], enable_checkpointing=True).fit(
        make_ppo(), datamodule=make_datamodule(), ckpt_path=str(tmp_path / "last.ckpt") if resume else None)


def test_a_checkpoint_that_cannot_be_written_stops_the_run_naming_the_file(tmp_path, seeded, monkeypatch) -> None:
    fit(tmp_path, 2)
    good = (tmp_path / "last.ckpt").read_bytes()

    def unwritable(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path))

    monkeypatch.setattr(checkpoint_io.tempfile, "mkstemp", unwritable)
    with pytest.raises(CheckpointWriteError, match=rf"{tmp_path / 'last.ckpt'}: .*Permission denied"):
        fit(tmp_path, 4, resume=True)  # before: ran on to the end and exited 0
    monkeypatch.undo()
    assert (tmp_path / "last.ckpt").read_bytes() == good
    assert torch.load(tmp_path / "last.ckpt", weights_only=False)["epoch"] == 1
    assert temporary_files(tmp_path / "last.ckpt") == []


def test_a_full_disk_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch) -> None:
    target = tmp_path / "last.ckpt"
    write_atomically({"iteration": 1}, target)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_io.os, "fsync", full)
    with pytest.raises(CheckpointWriteError, match="No space left on device"):
        write_atomically({"iteration": 2}, target)
    monkeypatch.undo()
    assert torch.load(target)["iteration"] == 1 and temporary_files(target) == []


def test_the_temporary_file_is_in_the_target_directory_whatever_tmpdir_is(tmp_path, monkeypatch) -> None:
    elsewhere = tmp_path / "tmpfs"  # where TMPDIR points on a cluster: another filesystem than the run
    elsewhere.mkdir()
    monkeypatch.setenv("TMPDIR", str(elsewhere))
    monkeypatch.setattr(tempfile, "tempdir", None)
    renames = []
    real_replace = os.replace
    monkeypatch.setattr(checkpoint_io.os, "replace", lambda a, b: (renames.append((Path(a), Path(b))),
                                                                   real_replace(a, b))[1])
    target = tmp_path / "run" / "checkpoints" / "last.ckpt"
    write_atomically({"iteration": 3}, target)
    (source, destination), = renames
    assert source.parent == destination.parent == target.parent  # a rename within one directory: atomic
    assert list(elsewhere.iterdir()) == [] and torch.load(target)["iteration"] == 3


CHILD = """
import sys, time
import callbacks.checkpoint_io as io
target = io.Path(sys.argv[1])
io.write_atomically({"iteration": 1, "weights": list(range(1000))}, target)

def stalled(fd):
    print("writing", flush=True)
    time.sleep(120)

io.os.fsync = stalled
io.write_atomically({"iteration": 2, "weights": list(range(1000))}, target)
"""


def test_sigkill_during_a_write_leaves_the_last_good_checkpoint(tmp_path) -> None:
    target = tmp_path / "last.ckpt"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(target)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert torch.load(target)["iteration"] == 1
    assert len(temporary_files(target)) == 1  # what the killed write left
    write_atomically({"iteration": 3}, target)
    assert torch.load(target)["iteration"] == 3 and temporary_files(target) == []  # cleaned by the next save
