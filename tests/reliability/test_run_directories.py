"""Run directories never collide, and go where ``trainer.default_root_dir`` says."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import yaml

from leggedex.cli import RUN_STAMP_ENV, main
from leggedex.cli.fit import claim_run_directory

from conftest import REPO

QUICKSTART = str(REPO / "configs" / "quickstart.yaml")
SMALL = ["--data.num_envs", "16", "--model.num_steps_per_env", "8", "--trainer.max_epochs", "2"]


def test_runs_started_in_the_same_second_get_their_own_directories(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(RUN_STAMP_ENV, "2026-01-02_03-04-05")
    main(["fit", "--config", QUICKSTART, *SMALL, "--model.learning_rate", "1e-3"])
    main(["fit", "--config", QUICKSTART, *SMALL, "--model.learning_rate", "2e-3"])
    root = tmp_path / "logs" / "quickstart"
    assert sorted(p.name for p in root.iterdir()) == ["2026-01-02_03-04-05", "2026-01-02_03-04-05_2"]
    rates = [yaml.safe_load((root / name / "config.yaml").read_text())["model"]["init_args"]["learning_rate"]
             for name in ("2026-01-02_03-04-05", "2026-01-02_03-04-05_2")]
    assert rates == [1e-3, 2e-3]  # before: one config.yaml of one run beside the other's checkpoints
    assert all((root / name / "checkpoints" / "last.ckpt").exists() for name in ("2026-01-02_03-04-05",
                                                                               "2026-01-02_03-04-05_2"))


def test_concurrent_claims_of_one_name_get_distinct_directories(tmp_path) -> None:
    with ThreadPoolExecutor(8) as pool:
        names = list(pool.map(lambda _: claim_run_directory(tmp_path, "run"), range(8)))
    assert sorted(names) == sorted(["run"] + [f"run_{i}" for i in range(2, 9)])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


def test_default_root_dir_decides_where_runs_go(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(RUN_STAMP_ENV, "2026-01-02_03-04-05")
    main(["fit", "--config", QUICKSTART, *SMALL, "--trainer.default_root_dir", str(tmp_path / "runs")])
    assert (tmp_path / "runs" / "quickstart" / "2026-01-02_03-04-05" / "checkpoints" / "last.ckpt").exists()
    assert not (tmp_path / "logs").exists()  # before: ignored, the run went to ./logs
