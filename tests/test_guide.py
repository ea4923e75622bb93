"""docs/adding_a_method.md cannot rot: every fenced block in it is marked and exercised here.

- ``<!-- snippet: module NAME -->`` Python blocks, joined in order, are the module ``my_methods`` (as the guide
  tells the reader to save them); ``<!-- snippet: run NAME -->`` blocks run as scripts next to it, and what they
  print must equal the ``<!-- output: NAME -->`` block that follows;
- ``<!-- excerpt: PATH -->`` blocks must stand word for word in that file;
- the ``config`` YAML and the ``commands`` shell block run as a user would run them, on a short run (the test adds
  size overrides: 2 iterations, 16 envs).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from leggedex.cli import main

from conftest import REPO

GUIDE = REPO / "docs" / "adding_a_method.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
MARKER = re.compile(r"<!-- (snippet|excerpt|output): ([^>]*?) -->")
SHORT_FIT = ["--trainer.max_epochs", "2", "--data.num_envs", "16", "--model.num_steps_per_env", "8"]


class Block(NamedTuple):
    kind: str  # snippet, excerpt or output
    name: str
    language: str
    text: str


def guide_blocks() -> list[Block]:
    """Every fenced block with the marker on the line above it; a block without one fails the test."""
    source = GUIDE.read_text()
    blocks = []
    for match in BLOCK.finditer(source):
        preceding = source[: match.start()]
        marker = MARKER.fullmatch(preceding.rstrip("\n").rsplit("\n", 1)[-1])
        if marker is None:
            line = preceding.count("\n") + 1
            pytest.fail(f"{GUIDE.name}:{line}: a ```{match.group(1)} block without a snippet/excerpt/output marker")
        blocks.append(Block(marker.group(1), marker.group(2).strip(), match.group(1), match.group(2)))
    return blocks


def snippets(prefix: str) -> list[Block]:
    return [b for b in guide_blocks() if b.kind == "snippet" and b.name.startswith(prefix)]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder holding my_methods.py (the guide's module blocks), importable here and by subprocesses."""
    root = tmp_path_factory.mktemp("guide")
    (root / "my_methods.py").write_text("\n\n".join(b.text for b in snippets("module ")))
    sys.path.insert(0, str(root))
    cwd = os.getcwd()
    os.chdir(root)
    try:
        yield root
    finally:
        os.chdir(cwd)
        sys.path.remove(str(root))
        sys.modules.pop("my_methods", None)


def test_every_block_is_marked_and_every_excerpt_is_in_its_file() -> None:
    blocks = guide_blocks()
    kinds = {(b.kind, b.language) for b in blocks}
    assert kinds <= {("snippet", "python"), ("snippet", "yaml"), ("snippet", "bash"), ("excerpt", "python"),
                     ("output", "text")}, kinds
    excerpts = [b for b in blocks if b.kind == "excerpt"]
    assert len(excerpts) >= 4
    for block in excerpts:
        assert block.text in (REPO / block.name).read_text(), f"excerpt not found word for word in {block.name}:\n" \
                                                               f"{block.text}"


def test_the_python_blocks_run_and_print_what_the_guide_shows(workdir: Path) -> None:
    importlib.import_module("my_methods")
    blocks = guide_blocks()
    outputs = {b.name: b.text for b in blocks if b.kind == "output"}
    runs = snippets("run ")
    assert {b.name.removeprefix("run ") for b in runs} == set(outputs)
    for block in runs:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(block.text, f"<{GUIDE.name}: {block.name}>", "exec"), {"__name__": "__guide__"})
        assert printed.getvalue() == outputs[block.name.removeprefix("run ")], block.name


def test_the_phase_callback_switches_and_logs(workdir: Path) -> None:
    from lightning.pytorch import Trainer

    from leggedex.data import OnPolicyDataModule
    from leggedex.envs import PointMassReach

    my_methods = importlib.import_module("my_methods")
    method = my_methods.A2C(num_steps_per_env=8, entropy_coef=0.01)
    trainer = Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, callbacks=[my_methods.EntropyPhase(start=1, entropy_coef=0.0)])
    trainer.fit(method, datamodule=OnPolicyDataModule(env=PointMassReach, num_envs=16, seed=0))
    assert method.entropy_coef == 0.0 and float(trainer.callback_metrics["Phase/entropy_coef"]) == 0.0


def test_the_config_and_the_commands_run(workdir: Path, capsys) -> None:
    (config,) = snippets("config")
    (workdir / "my_method.yaml").write_text(config.text)
    with pytest.raises(SystemExit) as printed:  # the guide's --print_config remark
        main(["fit", "--config", "my_method.yaml", "--print_config"])
    assert printed.value.code in (0, None)
    assert "class_path: my_methods.A2C" in capsys.readouterr().out
    (commands,) = snippets("commands")
    lines = [shlex.split(line) for line in commands.text.splitlines() if line.strip()]
    assert all(line[0] == "leggedex" for line in lines)
    assert [line[1] for line in lines] == ["fit", "fit", "play", "export"]
    run = None
    for args in (line[1:] for line in lines):
        if run is not None:
            args = [arg.replace("<run>", run) for arg in args]
        if args[0] == "fit" and "ddp" in args:  # Lightning's DDP starts the other rank as a new process
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(workdir), os.environ.get("PYTHONPATH", "")])}
            result = subprocess.run([sys.executable, "-m", "leggedex.cli", *args, *SHORT_FIT], cwd=workdir,
                                    env=env, capture_output=True, text=True, timeout=180)
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        elif args[0] == "fit":
            main([*args, *SHORT_FIT])
        elif args[0] == "play":
            main([*args, "--num_envs", "8", "--duration", "1"])
            assert "| envs | survival | mean return |" in capsys.readouterr().out
        else:
            main(args)
            assert {p.name for p in (workdir / run_dir(workdir) / "exports" / "last").iterdir()} >= {
                "policy.pt", "policy.onnx", "deploy.json"}
        run = run_dir(workdir).name


def run_dir(workdir: Path) -> Path:
    """The latest run (the fit and the DDP fit started in one second get their own directories: ``_2``)."""
    ckpt = max((workdir / "logs" / "my_method").glob("*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    return ckpt.parent.parent.relative_to(workdir)
