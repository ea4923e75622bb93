"""Checkpoint files that are never torn and never silently missing.

``AtomicCheckpointIO`` writes a checkpoint to a temporary file in the target's own directory, flushes and syncs
it, renames it over the target (atomic on one filesystem, whatever TMPDIR is) and syncs the directory. A write
that fails raises ``CheckpointWriteError`` naming the path and the cause, which stops the run (Lightning's own
atomic save swallows a PermissionError); the temporary file is removed, and temporaries a killed process left
behind are removed by the next save of the same file. Paths that are not local fall back to Lightning's IO.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.plugins.io import TorchCheckpointIO


class CheckpointWriteError(OSError):
    """A checkpoint could not be written; the previous file at that path is unchanged."""


class CheckpointReadError(ValueError):
    """A checkpoint file is missing, empty, truncated or not a checkpoint."""


def check_checkpoint_file(path: str | Path) -> None:
    """Raise ``CheckpointReadError`` naming ``path`` and what is wrong with it, before anything loads it.

    A torch checkpoint is a zip archive; reading every member's checksum finds a truncated or damaged file without
    unpickling anything.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointReadError(f"no checkpoint at {path}")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointReadError(f"checkpoint {path} is empty (0 bytes): its write was interrupted")
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise CheckpointReadError(f"checkpoint {path} ({size} bytes) is truncated or not a torch checkpoint: "
                                  f"{error}") from None
    if damaged is not None:
        raise CheckpointReadError(f"checkpoint {path} ({size} bytes) is damaged: member {damaged} fails its "
                                  "checksum")


def temporary_files(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


def sync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (where the platform allows opening a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(checkpoint: dict[str, Any], path: Path) -> None:
    for stale in temporary_files(path):  # left by a process killed while writing
        stale.unlink(missing_ok=True)
    temporary: Path | None = None
    try:
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        temporary = Path(name)
        with os.fdopen(fd, "wb") as file:
            file.write(buffer.getbuffer())
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        temporary = None
        sync_directory(path.parent)
    except Exception as error:
        raise CheckpointWriteError(f"could not write the checkpoint {path}: {error}") from error
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO with the atomic, checked write described in the module docstring."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or not isinstance(get_filesystem(path), LocalFileSystem):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        write_atomically(checkpoint, Path(path))
