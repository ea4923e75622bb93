"""Command-line overrides of a term table's entry or parameter that change only what they name.

jsonargparse merges ``--data.env.init_args.rewards.terms.<term> <value>`` into the table but replaces the whole
entry, and ``...terms.<term>.<parameter> <value>`` replaces the entry by ``{<parameter>: <value>}``: the term's
other parameters were lost. These options are taken out before parsing and applied to the parsed config:

- ``...terms.<term>.<parameter> <value>`` sets that parameter of the entry (a bare weight becomes
  ``{weight: ..., <parameter>: <value>}``);
- ``...terms.<term> <number>`` sets the weight of an entry that has parameters, or the entry itself;
- ``...terms.<term> <mapping or null>`` replaces the entry.

A table given whole (in a config file, or as ``...terms '{...}'``) is still the whole table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from jsonargparse import Namespace

TABLE_OPTION = re.compile(r"^--data\.env\.(?:init_args\.)?(\w+)\.terms\.(\w+)(?:\.(\w+))?$")


@dataclass(frozen=True)
class TableOverride:
    table: str  # rewards, events, terminations: the config group holding ``terms``
    entry: str
    parameter: str | None
    value: Any

    @property
    def option(self) -> str:
        suffix = f".{self.parameter}" if self.parameter else ""
        return f"--data.env.init_args.{self.table}.terms.{self.entry}{suffix}"


def take_table_overrides(args: list[str]) -> tuple[list[str], list[TableOverride]]:
    """``args`` without the term-table options, and those options in order."""
    rest: list[str] = []
    overrides: list[TableOverride] = []
    i = 0
    while i < len(args):
        arg = args[i]
        option, equals, inline = arg.partition("=")
        match = TABLE_OPTION.match(option)
        if match is None or (not equals and i + 1 >= len(args)):
            rest.append(arg)
            i += 1
            continue
        raw = inline if equals else args[i + 1]
        overrides.append(TableOverride(match.group(1), match.group(2), match.group(3), yaml.safe_load(raw)))
        i += 1 if equals else 2
    return rest, overrides


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def apply_table_overrides(config: Namespace, overrides: list[TableOverride]) -> None:
    """Apply ``overrides`` to ``config`` (a subcommand's namespace, with ``data.env.init_args``)."""
    for override in overrides:
        key = f"data.env.init_args.{override.table}.terms"
        table = config.get(key)
        if not isinstance(table, dict):
            raise ValueError(f"{override.option}: the env has no term table {override.table}.terms")
        table = dict(table)
        entry, value, parameter = table.get(override.entry), override.value, override.parameter
        if parameter is None:
            entry = {**entry, "weight": value} if isinstance(entry, dict) and is_number(value) else value
        elif isinstance(entry, dict):
            entry = {**entry, parameter: value}
        elif is_number(entry):
            entry = value if parameter == "weight" else {"weight": entry, parameter: value}
        else:  # a new entry, or one switched off (null)
            entry = value if parameter == "weight" else {parameter: value}
        table[override.entry] = entry
        config[key] = table
