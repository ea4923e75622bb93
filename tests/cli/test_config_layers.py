"""A later ``--config`` replaces a term table whole: a layer that leaves out an earlier table's terms, or an entry's
parameters, is refused naming them, before anything runs; one that lists them (null to switch off) runs as written."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from leggedex.cli import main
from leggedex.cli.config_layers import config_paths, what_a_layer_drops

from conftest import REPO

GO2_FLAT = str(REPO / "configs" / "go2_flat.yaml")


def write_events_layer(path: Path, terms: dict) -> str:
    path.write_text(yaml.safe_dump({"data": {"env": {"init_args": {"events": {"terms": terms}}}}}))
    return str(path)


def test_the_config_files_are_read_in_order() -> None:
    assert config_paths(["fit", "--config", "a.yaml", "--x", "1", "--config=b.yaml", "-c", "c.yaml"]) == [
        "a.yaml", "b.yaml", "c.yaml"]


def test_what_a_layer_drops_names_terms_and_parameters() -> None:
    earlier = {"push": {"interval_s": 8.0, "max_vel": 0.5}, "physics": {"friction": [0.5, 1.0], "kp_scale": [1, 1]},
               "lin_vel_z": -2.0}
    later = {"physics": {"friction": [0.2, 1.0]}, "lin_vel_z": {"weight": -1.0}}
    assert what_a_layer_drops(earlier, later) == ["push", "physics.kp_scale"]
    assert what_a_layer_drops(earlier, {**earlier, "push": None}) == []


def test_a_layer_that_drops_events_is_refused_naming_them(tmp_path, capsys) -> None:
    layer = write_events_layer(tmp_path / "layer.yaml", {"physics": {"joint_damping": [0.1, 2.0]}})
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", GO2_FLAT, "--config", layer, "--print_config"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert f"{layer}: data.env.init_args.events.terms replaces the whole table of {GO2_FLAT}" in error
    assert "leaves out reset_joints, reset_base, push, physics.friction, physics.added_base_mass" in error


def test_a_layer_that_lists_every_term_runs_as_written(tmp_path, capsys) -> None:
    terms = yaml.safe_load(open(GO2_FLAT))["data"]["env"]["init_args"]["events"]["terms"]
    terms = {**terms, "physics": {**terms["physics"], "joint_damping": [0.1, 2.0]}, "push": None}
    layer = write_events_layer(tmp_path / "layer.yaml", terms)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", GO2_FLAT, "--config", layer, "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)["data"]["env"]["init_args"]["events"]["terms"]
    assert printed["push"] is None and printed["physics"]["joint_damping"] == [0.1, 2.0]
    assert printed["reset_joints"] == terms["reset_joints"]
