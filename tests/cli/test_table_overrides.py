"""A dotted option into a term table changes only the entry or parameter it names, in the run and in
``--print_config``; before, it replaced the entry and dropped the term's other parameters."""

from __future__ import annotations

import pytest
import yaml
from jsonargparse import Namespace

from leggedex.cli import main
from leggedex.cli.table_overrides import TableOverride, apply_table_overrides, take_table_overrides

from conftest import REPO

GO2_FLAT = str(REPO / "configs" / "go2_flat.yaml")
REWARDS = "--data.env.init_args.rewards.terms"


def test_table_options_are_taken_out_of_the_arguments() -> None:
    rest, overrides = take_table_overrides(
        ["--config", "x.yaml", f"{REWARDS}.tracking_lin_vel.sigma", "0.3", "--data.env.events.terms.push=null",
         "--model.learning_rate", "1e-3"])
    assert rest == ["--config", "x.yaml", "--model.learning_rate", "1e-3"]
    assert overrides == [TableOverride("rewards", "tracking_lin_vel", "sigma", 0.3),
                         TableOverride("events", "push", None, None)]


def apply(table: dict, *overrides: TableOverride) -> dict:
    config = Namespace()
    config["data.env.init_args.rewards.terms"] = table
    apply_table_overrides(config, list(overrides))
    return config["data.env.init_args.rewards.terms"]


@pytest.mark.parametrize(("entry", "parameter", "value", "expected"), [
    ("track", "sigma", 0.3, {"weight": 1.0, "sigma": 0.3}),       # a parameter: the weight stays
    ("track", "weight", 2.0, {"weight": 2.0, "sigma": 0.25}),     # the weight: the parameters stay
    ("track", None, 2.0, {"weight": 2.0, "sigma": 0.25}),         # a number for an entry with parameters
    ("track", None, {"weight": 3.0}, {"weight": 3.0}),            # a mapping replaces the entry
    ("lin", "weight", -3.0, -3.0),                               # a bare weight stays bare
    ("lin", "target", 0.5, {"weight": -2.0, "target": 0.5}),
    ("new", "weight", 1.0, 1.0),
])
def test_an_override_changes_only_what_it_names(entry, parameter, value, expected) -> None:
    table = {"track": {"weight": 1.0, "sigma": 0.25}, "lin": -2.0, "other": -0.1}
    out = apply(dict(table), TableOverride("rewards", entry, parameter, value))
    assert out[entry] == expected
    assert {k: v for k, v in out.items() if k != entry} == {k: v for k, v in table.items() if k != entry}


def test_print_config_shows_the_merged_table(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["fit", "--config", GO2_FLAT, f"{REWARDS}.tracking_lin_vel.weight", "1.5",
              "--data.env.init_args.events.terms.push.max_vel", "1.0", "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)["data"]["env"]["init_args"]
    given = yaml.safe_load(open(GO2_FLAT))["data"]["env"]["init_args"]
    expected = dict(given["rewards"]["terms"], tracking_lin_vel={"weight": 1.5, "sigma": 0.25})
    assert printed["rewards"]["terms"] == expected  # all 15 terms, one weight changed
    assert printed["events"]["terms"]["push"] == {"interval_s": 8.0, "max_vel": 1.0}
