"""Invalid method values are refused at construction, naming the key, before any env or run directory is made."""

from __future__ import annotations

import pytest

from leggedex.cli import main

from conftest import REPO

QUICKSTART = str(REPO / "configs" / "quickstart.yaml")


@pytest.mark.parametrize(("override", "message"), [
    (["--model.learning_rate", "-1"], r"model.learning_rate must be positive, got -1"),
    (["--model.learning_rate", "0.5"], r"model.learning_rate must lie in \[min_learning_rate, max_learning_rate\]"),
    (["--model.clip_param", "0"], r"model.clip_param must be positive"),
    (["--model.entropy_coef", "-0.1"], r"model.entropy_coef must be >= 0"),
])
def test_invalid_method_values_are_refused_before_any_env_or_run_directory(tmp_path, monkeypatch, override,
                                                                           message) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message):  # before: failed inside torch after the env was built
        main(["fit", "--config", QUICKSTART, *override])
    assert not (tmp_path / "logs").exists()
