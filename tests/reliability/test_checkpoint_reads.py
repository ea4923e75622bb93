"""A corrupt, truncated or empty checkpoint is refused naming the file, before any env or run directory is made."""

from __future__ import annotations

import pytest

from callbacks.checkpoint_io import CheckpointReadError, check_checkpoint_file, write_atomically
from leggedex.cli import main
from leggedex.cli.checkpoint import load_method

from conftest import REPO

QUICKSTART = str(REPO / "configs" / "quickstart.yaml")


@pytest.fixture()
def damaged(tmp_path):
    good = tmp_path / "good.ckpt"
    write_atomically({"weights": list(range(5000))}, good)
    data = good.read_bytes()
    files = {"truncated": data[: len(data) // 2], "empty": b"", "not a checkpoint": b"hello world" * 10}
    for name, content in files.items():
        (tmp_path / f"{name.replace(' ', '_')}.ckpt").write_bytes(content)
    return tmp_path


@pytest.mark.parametrize(("name", "message"), [
    ("truncated", r"truncated\.ckpt \(\d+ bytes\) is truncated or not a torch checkpoint"),
    ("empty", r"empty\.ckpt is empty \(0 bytes\)"),
    ("not_a_checkpoint", r"not_a_checkpoint\.ckpt \(110 bytes\) is truncated or not a torch checkpoint"),
    ("missing", r"no checkpoint at .*missing\.ckpt"),
])
def test_a_bad_checkpoint_file_is_named_with_what_is_wrong(damaged, name, message) -> None:
    with pytest.raises(CheckpointReadError, match=message):
        check_checkpoint_file(damaged / f"{name}.ckpt")
    with pytest.raises(CheckpointReadError, match=message):  # play and export
        load_method(["--config", QUICKSTART], damaged / f"{name}.ckpt")
    check_checkpoint_file(damaged / "good.ckpt")


def test_resuming_from_a_truncated_checkpoint_stops_before_anything_is_made(damaged, monkeypatch, capsys) -> None:
    monkeypatch.chdir(damaged)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", QUICKSTART, "--ckpt_path", str(damaged / "truncated.ckpt")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "truncated.ckpt" in err and "is truncated" in err
    assert not (damaged / "logs").exists()  # no run directory was made

