"""The ``leggedex`` command: config printing, overrides, errors, run directories and resume."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from leggedex.cli import RUN_STAMP_ENV, main

from conftest import REPO

QUICKSTART = str(REPO / "configs" / "quickstart.yaml")
SMALL = ["--data.num_envs", "16", "--model.num_steps_per_env", "8", "--trainer.max_epochs", "3"]


def printed_config(capsys, *overrides: str) -> dict:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", QUICKSTART, *overrides, "--print_config"])
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


def test_print_config_shows_the_resolved_config_with_overrides(capsys) -> None:
    config = printed_config(capsys, "--model.learning_rate", "3e-4", "--data.num_envs", "64",
                            "--trainer.max_epochs", "50", "--data.env.init_args.episode_length_s", "4.0")
    assert config["model"]["class_path"] == "leggedex.methods.PPO"
    assert config["model"]["init_args"]["learning_rate"] == 3e-4
    assert config["model"]["init_args"]["clip_param"] == 0.2  # defaults are shown too
    assert config["data"]["num_envs"] == 64
    assert config["data"]["env"]["init_args"]["episode_length_s"] == 4.0
    assert config["trainer"]["max_epochs"] == 50


@pytest.mark.parametrize(
    ("override", "named"),
    [
        (["--model.learnin_rate", "3e-4"], "learnin_rate"),
        (["--data.num_envs", "many"], "num_envs"),
        (["--model.schedule", "cosine"], "schedule"),
        (["--data.env.init_args.episod_length_s", "3"], "episod_length_s"),
    ],
)
def test_bad_keys_and_types_fail_before_any_env_is_built(capsys, override, named) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", QUICKSTART, *override])
    assert exit_info.value.code != 0
    assert named in capsys.readouterr().err


def event_steps(run_dir: Path, tag: str) -> list[int]:
    steps = []
    for events in sorted(run_dir.glob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        steps += [e.step for e in accumulator.Scalars(tag)]
    return steps


def test_fit_writes_a_sortable_run_dir_and_resume_continues_in_it(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(RUN_STAMP_ENV, "2026-01-02_03-04-05")
    main(["fit", "--config", QUICKSTART, *SMALL, "--run_name", "first"])
    run = tmp_path / "logs" / "quickstart" / "2026-01-02_03-04-05_first"
    assert (run / "config.yaml").exists() and (run / "checkpoints" / "last.ckpt").exists()
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["num_envs"] == 16

    monkeypatch.setenv(RUN_STAMP_ENV, "2026-01-02_09-09-09")
    main(["fit", "--config", QUICKSTART, *SMALL[:-1], "5", "--ckpt_path", str(run / "checkpoints" / "last.ckpt")])
    assert sorted(p.name for p in (tmp_path / "logs" / "quickstart").iterdir()) == ["2026-01-02_03-04-05_first"]
    assert event_steps(run, "Loss/surrogate") == [0, 1, 2, 3, 4]


def test_a_resumed_run_keeps_its_config_says_where_it_runs_and_warns_of_nothing(tmp_path, monkeypatch,
                                                                                 capsys) -> None:
    import warnings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(RUN_STAMP_ENV, "2026-01-02_03-04-05")
    main(["fit", "--config", QUICKSTART, *SMALL, "--run_name", "first"])
    run = tmp_path / "logs" / "quickstart" / "2026-01-02_03-04-05_first"
    out = capsys.readouterr().out
    assert f"training iterations 1 to 3; run directory: {run}" in out
    assert "stopped after iteration 3" in out and out.rstrip().endswith(f"run directory: {run}")
    original = (run / "config.yaml").read_text()

    monkeypatch.setenv(RUN_STAMP_ENV, "2026-01-02_09-09-09")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        main(["fit", "--config", QUICKSTART, *SMALL[:-1], "5", "--ckpt_path", str(run / "checkpoints" / "last.ckpt")])
    assert not [str(w.message) for w in caught
                if "exists and is not empty" in str(w.message) or "dirpath has changed" in str(w.message)]
    assert (run / "config.yaml").read_text() == original
    resumed = yaml.safe_load((run / "config_resumed_2026-01-02_09-09-09.yaml").read_text())
    assert resumed["trainer"]["max_epochs"] == 5 and resumed["ckpt_path"].endswith("last.ckpt")
    assert f"training iterations 4 to 5; run directory: {run}" in capsys.readouterr().out


def test_print_config_prints_the_logger_and_callbacks_that_run(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(RUN_STAMP_ENV, "2026-01-02_03-04-05")
    trainer = printed_config(capsys, "--run_name", "x")["trainer"]
    assert trainer["logger"]["class_path"].endswith("TensorBoardLogger")
    assert trainer["logger"]["init_args"] | {"save_dir": None} == {
        "save_dir": None, "name": "quickstart", "version": "2026-01-02_03-04-05_x", "default_hp_metric": False}
    assert trainer["logger"]["init_args"]["save_dir"] == str(tmp_path / "logs")
    assert [c["class_path"] for c in trainer["callbacks"]] == [
        "callbacks.EpisodeStatsLogger", "callbacks.IterationCheckpoint", "callbacks.RLProgressBar"]
    # a config's own callback replaces the default of its kind, and a chosen logger is printed as chosen
    own = printed_config(capsys, "--trainer.callbacks+=callbacks.IterationCheckpoint",
                         "--trainer.callbacks.every_n_iterations=7",
                         "--trainer.logger=lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir=csv")
    own = own["trainer"]
    assert [c["class_path"] for c in own["callbacks"]] == [
        "callbacks.IterationCheckpoint", "callbacks.EpisodeStatsLogger", "callbacks.RLProgressBar"]
    assert own["callbacks"][0]["init_args"]["every_n_iterations"] == 7
    assert own["logger"]["class_path"].endswith("CSVLogger") and own["logger"]["init_args"]["save_dir"] == "csv"
    # what a run saves as config.yaml is still the configuration as given
    main(["fit", "--config", QUICKSTART, *SMALL, "--run_name", "x"])
    saved = yaml.safe_load((tmp_path / "logs" / "quickstart" / "2026-01-02_03-04-05_x" / "config.yaml").read_text())
    assert saved["trainer"]["logger"] is None and saved["trainer"]["callbacks"] is None


def test_module_entry_point_answers_help() -> None:
    result = subprocess.run([sys.executable, "-m", "leggedex.cli", "fit", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0
    assert "--data.num_envs" in result.stdout and "--experiment" in result.stdout


def test_any_lightning_logger_can_be_chosen_from_the_config(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", QUICKSTART, *SMALL, "--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
          "--trainer.logger.save_dir", "csv_logs"])
    metrics = list((tmp_path / "csv_logs").rglob("metrics.csv"))
    assert len(metrics) == 1 and "Train/mean_reward" in metrics[0].read_text().splitlines()[0]
    assert not (tmp_path / "logs").exists()


def test_go2_flat_config_trains_for_two_iterations(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(RUN_STAMP_ENV, "2026-01-02_03-04-05")
    main(["fit", "--config", str(REPO / "configs" / "go2_flat.yaml"), "--data.num_envs", "8",
          "--model.num_steps_per_env", "4", "--trainer.max_epochs", "2",
          "--data.env.init_args.backend.init_args.num_threads", "1"])
    run = tmp_path / "logs" / "go2_flat" / "2026-01-02_03-04-05"
    assert (run / "checkpoints" / "last.ckpt").exists()
    evaluation = yaml.safe_load((run / "evaluations" / "iteration_2.json").read_text())  # JSON is YAML
    assert set(evaluation["commands"]) >= {"vx+0.5_vy+0.0_yaw+0.0", "vx+0.0_vy+0.0_yaw+0.5"}
    assert event_steps(run, "Perf/total_fps") == [0, 1]
