"""Callbacks: logged tags, iteration checkpoints, atomic writes, the progress line."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from callbacks import EpisodeStatsLogger, IterationCheckpoint, LocomotionEvaluation, RLProgressBar
from leggedex.envs import LeggedLocomotion
from leggedex.envs.terrain import TERRAIN_TYPES, TerrainConfig

from conftest import make_datamodule, make_ppo, make_trainer, one_thread_backend


def test_statistics_are_logged_once_per_iteration_with_rsl_rl_tags(tmp_path, seeded) -> None:
    logger = CSVLogger(tmp_path, name="run", version="v")
    trainer = make_trainer(5, callbacks=[EpisodeStatsLogger()], logger=logger)
    trainer.fit(make_ppo(), datamodule=make_datamodule(num_envs=32, episode_length_s=0.5))
    import csv

    rows = list(csv.DictReader(open(tmp_path / "run" / "v" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [0, 1, 2, 3, 4]  # x-axis = iteration
    expected = {
        "Train/mean_reward", "Train/mean_episode_length", "Episode/rew_reach", "Episode/rew_action_rate",
        "Perf/total_fps", "Perf/collection time", "Perf/learning_time", "Loss/learning_rate",
        "Loss/value_function", "Loss/surrogate", "Policy/mean_noise_std",
    }
    assert expected <= set(rows[0])
    last = rows[-1]
    assert 0 < float(last["Train/mean_episode_length"]) <= 10  # 0.5 s episodes at dt 0.05
    assert float(last["Perf/total_fps"]) > 0
    assert float(last["Policy/mean_noise_std"]) == pytest.approx(1.0, abs=0.2)


def test_checkpoints_are_named_by_iteration_and_last_is_refreshed(tmp_path, seeded) -> None:
    ckpt = IterationCheckpoint(every_n_iterations=3, last_every_n_iterations=2, dirpath=str(tmp_path))
    make_trainer(7, callbacks=[ckpt], enable_checkpointing=True).fit(make_ppo(), datamodule=make_datamodule())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt", "model_3.ckpt", "model_6.ckpt"]
    assert torch.load(tmp_path / "model_3.ckpt", weights_only=False)["epoch"] == 2
    assert torch.load(tmp_path / "last.ckpt", weights_only=False)["epoch"] == 7  # written at the end of training


def test_a_crash_while_writing_leaves_last_checkpoint_intact(tmp_path, seeded, monkeypatch) -> None:
    import lightning.fabric.utilities.cloud_io as cloud_io

    ckpt = IterationCheckpoint(every_n_iterations=100, last_every_n_iterations=1, dirpath=str(tmp_path))
    make_trainer(2, callbacks=[ckpt], enable_checkpointing=True).fit(make_ppo(), datamodule=make_datamodule())
    good = (tmp_path / "last.ckpt").read_bytes()
    real_save = torch.save

    def crashing_save(obj, f, *args, **kwargs):
        real_save({"partial": True}, f)  # some bytes reach the target, then the process "dies"
        raise OSError("disk full")

    monkeypatch.setattr(cloud_io.torch, "save", crashing_save)
    with pytest.raises(OSError, match="disk full"):
        ckpt2 = IterationCheckpoint(every_n_iterations=100, last_every_n_iterations=1, dirpath=str(tmp_path))
        make_trainer(3, callbacks=[ckpt2], enable_checkpointing=True).fit(
            make_ppo(), datamodule=make_datamodule(), ckpt_path=str(tmp_path / "last.ckpt")
        )
    monkeypatch.undo()
    assert (tmp_path / "last.ckpt").read_bytes() == good
    assert torch.load(tmp_path / "last.ckpt", weights_only=False)["epoch"] == 1  # saved at the end of iteration index 1


def test_progress_line_shows_iteration_speed_reward_and_eta(capsys, seeded) -> None:
    trainer = make_trainer(2, callbacks=[EpisodeStatsLogger(), RLProgressBar()], enable_progress_bar=True)
    trainer.fit(make_ppo(), datamodule=make_datamodule(episode_length_s=0.5))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("it ")]
    assert len(lines) == 2
    assert lines[1].startswith("it 2/2 | ") and "steps/s" in lines[1] and "reward" in lines[1] and "ETA" in lines[1]


def test_bad_checkpoint_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="every_n_iterations"):
        IterationCheckpoint(every_n_iterations=0)


def test_a_periodic_callback_is_due_every_n_iterations_and_at_the_last() -> None:
    from types import SimpleNamespace

    from callbacks.iterations import due_iteration

    def trainer(done: int, max_epochs: int = 25) -> SimpleNamespace:
        progress = SimpleNamespace(current=SimpleNamespace(processed=done))
        return SimpleNamespace(fit_loop=SimpleNamespace(epoch_progress=progress), max_epochs=max_epochs)

    assert [i for i in range(1, 26) if due_iteration(trainer(i), 10) is not None] == [10, 20, 25]
    assert due_iteration(trainer(7), 10) is None


def test_the_evaluation_callback_also_logs_the_per_terrain_evaluation(tmp_path, seeded) -> None:
    terrain = TerrainConfig(num_rows=2, num_cols=5, tile_size=3.0, border=1.0, platform=1.0, max_init_level=1)
    datamodule = make_datamodule(8, LeggedLocomotion, terrain=terrain, backend=one_thread_backend)
    evaluation = LocomotionEvaluation(every_n_iterations=1, num_envs=6, duration_s=0.4, settle_s=0.1,
                                      terrain_robots_per_tile=1, terrain_duration_s=0.3)
    logger = CSVLogger(tmp_path, name="run", version="v")
    trainer = make_trainer(1, callbacks=[evaluation], logger=logger)
    trainer.fit(make_ppo(num_steps_per_env=4), datamodule=datamodule)
    assert evaluation.last_terrain is not None and list(evaluation.last_terrain["types"]) == list(TERRAIN_TYPES)
    assert [row["level"] for row in evaluation.last_terrain["types"]["discrete"]["levels"]] == [0, 1]
    header = (tmp_path / "run" / "v" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {f"Eval/terrain/{kind}/{what}" for kind in TERRAIN_TYPES for what in ("crossed", "fall_rate")} <= set(header)
    written = (tmp_path / "run" / "v" / "evaluations" / "iteration_1.json").read_text()
    assert '"terrain"' in written and "NaN" not in written


def test_a_terrain_evaluation_that_measures_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="terrain_duration_s longer than settle_s"):
        LocomotionEvaluation(terrain_robots_per_tile=2, terrain_duration_s=1.0, settle_s=2.0)
