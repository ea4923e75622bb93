"""``leggedex play``: per-command tracking, survival and return as a markdown table and JSON, for the Go2 and for
any other env; bad ``--commands`` and ``--help``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from test_export import tiny_go2_checkpoint

from leggedex.cli import main
from leggedex.cli.play import default_json_path, parse_commands

from conftest import REPO

QUICKSTART = str(REPO / "configs" / "quickstart.yaml")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_go2_checkpoint(tmp_path_factory.getbasetemp() / "tiny_go2")


def test_play_reports_every_command_as_a_table_and_json(tiny, tmp_path, capsys) -> None:
    config, ckpt = tiny
    out = tmp_path / "play.json"
    main(["play", "--config", str(config), "--ckpt_path", str(ckpt), "--num_envs", "6", "--duration", "1",
          "--settle", "0.2", "--commands", "[[0.5, 0, 0], [0, 0, 0.5]]", "--json", str(out),
          "--video", str(tmp_path / "clip.mp4")])
    printed = capsys.readouterr().out
    assert "| command (vx, vy, yaw) | error vx |" in printed
    assert "| (0.5, 0.0, 0.0) |" in printed and "| (0.0, 0.0, 0.5) |" in printed
    report = json.loads(out.read_text())
    assert report["robots_per_command"] == 3 and report["method"] == "leggedex.methods.ppo.PPO"
    assert report["video"] == str(tmp_path / "clip.mp4") and (tmp_path / "clip.mp4").stat().st_size > 0
    assert list(report["commands"]) == ["vx+0.5_vy+0.0_yaw+0.0", "vx+0.0_vy+0.0_yaw+0.5"]
    for row in report["commands"].values():
        assert {"error_vx", "error_vy", "error_yaw", "survival_rate", "mean_return", "fall_rate"} <= set(row)
        assert 0.0 <= row["survival_rate"] <= 1.0 and row["survival_rate"] == pytest.approx(1 - row["fall_rate"])


def test_play_runs_any_env_and_writes_next_to_the_checkpoint(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", QUICKSTART, "--data.num_envs", "16", "--model.num_steps_per_env", "8",
          "--trainer.max_epochs", "1", "--run_name", "play"])
    (ckpt,) = tmp_path.glob("logs/quickstart/*_play/checkpoints/last.ckpt")
    capsys.readouterr()
    main(["play", "--config", QUICKSTART, "--ckpt_path", str(ckpt), "--num_envs", "8", "--duration", "2"])
    assert "| envs | survival | mean return |" in capsys.readouterr().out
    report = json.loads(default_json_path(ckpt).read_text())
    assert default_json_path(ckpt).parent == ckpt.parent
    assert set(report["commands"]["all"]) == {"survival_rate", "mean_return"}


@pytest.mark.parametrize("text", ["[[0.5, 0]]", "0.5", "[]", "[[0.5, 0, 'x']]", "[[0.5, 0, 0"])
def test_bad_commands_are_refused(text) -> None:
    with pytest.raises(ValueError, match="--commands"):
        parse_commands(text)


@pytest.mark.parametrize("command", ["play", "export"])
def test_help_answers(command, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "--ckpt_path" in capsys.readouterr().out


@pytest.mark.parametrize(("options", "message"), [
    (["--duration", "1"], "--duration (1 s) must be longer than --settle (2 s)"),
    (["--num_envs", "4"], "--num_envs (4) must give every command a robot: there are 6 commands"),
])
def test_options_that_would_measure_nothing_are_refused_before_evaluating(tiny, capsys, options, message) -> None:
    config, ckpt = tiny
    with pytest.raises(SystemExit) as exit_info:
        main(["play", "--config", str(config), "--ckpt_path", str(ckpt), *options, "--json", "never.json"])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs Xvfb's xvfb-run (Debian: apt-get install xvfb)")
def test_the_viewer_opens_on_a_virtual_display_and_drives_the_robot(tiny) -> None:
    config, ckpt = tiny
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM", "DISPLAY")}
    result = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1280x720x24", sys.executable, "-m", "leggedex.cli", "play",
         "--config", str(config), "--ckpt_path", str(ckpt), "--viewer", "--duration", "1",
         "--commands", "[[0.3, 0, 0]]"],
        capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "viewer closed after 50 steps" in result.stdout


def test_the_viewer_without_a_display_is_refused_before_loading(monkeypatch, capsys) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["play", "--config", QUICKSTART, "--ckpt_path", "missing.ckpt", "--viewer"])
    assert exit_info.value.code == 2 and "needs a display" in capsys.readouterr().err
