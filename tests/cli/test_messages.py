"""What the command line says: the commands it offers, misspelt options refused with the closest ones, options that
could only fail late refused first, no Lightning banners."""

from __future__ import annotations

import json
import logging
import re

import pytest

from leggedex.cli import main
from leggedex.cli.export import check_export_support
from leggedex.cli.messages import quiet_lightning
from leggedex.cli.play import json_ready
from leggedex.envs.locomotion.video import check_video_support

from conftest import REPO

QUICKSTART = str(REPO / "configs" / "quickstart.yaml")


def test_help_lists_the_three_commands_and_others_are_refused(capsys) -> None:
    main(["--help"])
    out = capsys.readouterr().out
    assert all(f"  {name}" in out for name in ("fit", "play", "export"))
    with pytest.raises(SystemExit) as exit_info:
        main(["validate"])
    assert exit_info.value.code == 2 and "unknown command 'validate'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("override", "suggested"),
    [(["--trainer.max_epoch", "2"], "did you mean: --trainer.max_epochs"),  # no prefix matching
     (["--model.lerning_rate", "1e-3"], "did you mean: learning_rate")],
)
def test_a_misspelt_fit_option_is_refused_with_the_closest_ones(capsys, override, suggested) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", QUICKSTART, *override, "--print_config"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and suggested in err
    assert "usage:" not in err and len(err.splitlines()) < 15  # not the whole usage


@pytest.mark.parametrize(
    ("options", "message"),
    [(["--duraton", "3"], "unrecognized option --duraton; did you mean: --duration"),
     (["--duration", "0", "--settle", "0"], "--duration must be positive"),
     (["--commands", "[]"], "non-empty JSON list")],
)
def test_play_refuses_bad_options_before_loading_anything(capsys, options, message) -> None:
    # the checkpoint does not exist: each refusal comes before it is read
    argv = ["play", "--config", QUICKSTART, "--ckpt_path", "missing.ckpt", *options]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    text = capsys.readouterr().err
    assert exit_info.value.code == 2 and re.search(message, text), text


def test_play_writes_valid_json_with_null_for_non_finite_numbers() -> None:
    report = {"commands": {"a": {"error_vx": float("nan"), "survival_rate": 1.0, "seen": [float("inf"), 2.0]}}}
    text = json.dumps(json_ready(report), allow_nan=False)
    assert json.loads(text) == {"commands": {"a": {"error_vx": None, "survival_rate": 1.0, "seen": [None, 2.0]}}}


def test_export_and_video_say_what_they_need_before_any_work(monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    with pytest.raises(RuntimeError, match=r'needs the onnx package: pip install -e ".\[export\]"'):
        check_export_support()
    monkeypatch.setattr(importlib.util, "find_spec", real)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    with pytest.raises(RuntimeError, match="no display and neither OSMesa nor EGL"):
        check_video_support()
    monkeypatch.setenv("MUJOCO_GL", "egl")
    check_video_support()


def test_lightning_banners_are_dropped_and_other_messages_kept() -> None:
    quiet_lightning()
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    seen: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        for message in ("GPU available: False, used: False", "TPU available: False, using: 0 TPU cores",
                        "💡 Tip: For seamless cloud logging ...", "`Trainer.fit` stopped: `max_epochs=1` reached."):
            logger.info(message)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert seen == ["`Trainer.fit` stopped: `max_epochs=1` reached."]
