"""``leggedex play`` on a terrain config: the per-terrain table, JSON and heat map, for the deployed student and,
with ``--teacher``, for the teacher; ``--teacher`` on a method without one is refused; and
``scripts/compare_teacher_student.py`` on the same checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_export import tiny_fit, tiny_go2_checkpoint

from leggedex.cli import main
from leggedex.envs.terrain import TERRAIN_TYPES

from conftest import REPO


def tiny_ts_checkpoint(root: Path) -> tuple[Path, Path]:
    """A 1-iteration go2_ts fit (8 envs x 4 steps, small networks, a 2-level terrain of 3 m tiles)."""
    config = yaml.safe_load((REPO / "configs" / "go2_ts.yaml").read_text())
    config["torch_threads"] = 1
    config["trainer"]["max_epochs"] = 1
    config["trainer"].pop("callbacks")
    config["model"]["init_args"].update(actor_hidden_dims=[32], critic_hidden_dims=[32], num_steps_per_env=4,
                                        privilege_encoder_hidden_dims=[32], history_encoder_hidden_dims=[32])
    config["data"]["num_envs"] = 8
    env = config["data"]["env"]["init_args"]
    env["backend"]["init_args"]["num_threads"] = 1
    env["terrain"].update(num_rows=2, num_cols=5, tile_size=3.0, border=1.0, platform=1.0, max_init_level=1)
    return tiny_fit(root, "tiny_ts", config)


@pytest.fixture(scope="module")
def tiny_ts(tmp_path_factory) -> tuple[Path, Path]:
    return tiny_ts_checkpoint(tmp_path_factory.getbasetemp() / "tiny_ts")


@pytest.mark.parametrize("teacher", [False, True])
def test_play_on_terrain_reports_every_type_and_level(tiny_ts, tmp_path, capsys, teacher) -> None:
    config, ckpt = tiny_ts
    out = tmp_path / "play.json"
    main(["play", "--config", str(config), "--ckpt_path", str(ckpt), "--num_envs", "2", "--duration", "0.5",
          "--settle", "0.1", "--commands", "[[0.5, 0, 0]]", "--terrain_robots", "2", "--terrain_duration", "0.6",
          "--json", str(out), *(["--teacher"] if teacher else [])])
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["policy"] == ("teacher" if teacher else "deployed")
    terrain = report["terrain"]
    assert terrain["robots_per_tile"] == 2 and terrain["command"] == [0.5, 0.0, 0.0]
    assert list(terrain["types"]) == list(TERRAIN_TYPES)
    assert [row["level"] for row in terrain["types"]["stairs_up"]["levels"]] == [0, 1]
    assert terrain["types"]["stairs_up"]["size"] == "step_cm"
    assert terrain["types"]["stairs_up"]["levels"][1]["size"] == pytest.approx(18.0)  # the top level: max_step_height
    for entry in terrain["types"].values():
        for row in entry["levels"]:
            assert {"crossed", "fall_rate", "error_vx", "error_yaw", "time_to_cross_s"} <= set(row)
    assert "| terrain | level 0 | level 1 | falls |" in printed and "| discrete |" in printed
    heat_map = out.with_name("play_terrain.png")
    assert heat_map.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote {heat_map}" in printed


def test_teacher_of_a_method_without_one_is_refused(tmp_path, capsys) -> None:
    config, ckpt = tiny_go2_checkpoint(tmp_path / "tiny_go2")
    with pytest.raises(SystemExit) as exit_info:
        main(["play", "--config", str(config), "--ckpt_path", str(ckpt), "--teacher", "--num_envs", "1",
              "--duration", "0.5", "--settle", "0.1", "--json", str(tmp_path / "never.json")])
    assert exit_info.value.code == 2
    assert "leggedex.methods.ppo.PPO has no teacher policy" in capsys.readouterr().err
    assert not (tmp_path / "never.json").exists()


def test_the_video_is_filmed_on_the_tile_asked_for(tiny_ts, tmp_path, monkeypatch) -> None:
    from leggedex.envs.locomotion import video

    config, ckpt = tiny_ts
    placed = {}
    render = video.render_rollout

    def spy(env, *args, **kwargs):
        placed["tile"] = (int(env.ground.levels[0]), env.ground.terrain.column_types[int(env.ground.types[0])])
        return render(env, *args, **kwargs)

    monkeypatch.setattr(video, "render_rollout", spy)
    clip = tmp_path / "stairs.mp4"
    main(["play", "--config", str(config), "--ckpt_path", str(ckpt), "--num_envs", "1", "--duration", "0.3",
          "--settle", "0.1", "--commands", "[[0.3, 0, 0]]", "--terrain_robots", "0", "--video", str(clip),
          "--video_tile", "stairs_down:1",
          "--json", str(tmp_path / "play.json")])
    assert placed["tile"] == (1, "stairs_down") and clip.stat().st_size > 0


@pytest.mark.parametrize(("tile", "message"), [
    ("stairs:1", "a tile is TYPE:LEVEL with TYPE one of smooth_slope"),
    ("stairs_up:5", "--video_tile: terrain levels [5] do not exist: the terrain has levels 0 to 1"),
])
def test_a_bad_video_tile_is_refused_naming_it(tiny_ts, tmp_path, capsys, tile, message) -> None:
    config, ckpt = tiny_ts
    with pytest.raises(SystemExit) as exit_info:
        main(["play", "--config", str(config), "--ckpt_path", str(ckpt), "--num_envs", "1", "--duration", "0.3",
              "--settle", "0.1", "--commands", "[[0.3, 0, 0]]", "--video", str(tmp_path / "x.mp4"),
              "--video_tile", tile,
              "--json", str(tmp_path / "never.json")])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()


def test_compare_teacher_student_runs_the_teacher_and_the_student(tiny_ts, tmp_path) -> None:
    config, ckpt = tiny_ts
    out = tmp_path / "compare.json"
    subprocess.run([sys.executable, str(REPO / "scripts" / "compare_teacher_student.py"), "--config", str(config),
                    "--ckpt", str(ckpt), "--num-envs", "4", "--json", str(out)], check=True, cwd=REPO,
                   capture_output=True)
    result = json.loads(out.read_text())
    teacher, student = result["teacher"], result["student"]
    assert {"mean_return", "fall_fraction", "error_lin_vel", "error_yaw"} <= set(teacher) == set(student)
    assert teacher["mean_return"] != student["mean_return"]  # two policies, not one run twice
    assert result["student_over_teacher"]["mean_return"] == pytest.approx(student["mean_return"]
                                                                          / teacher["mean_return"])
