"""A config layer may not drop a term table's entries without saying so.

``leggedex fit --config configs/go2_flat.yaml --config layer.yaml``: where both files hold a term table
(``data.env.init_args.<group>.terms``: rewards, events, terminations), jsonargparse keeps the later file's table
whole, in place of the earlier one: a layer holding ``events.terms: {physics: {...}}`` would run without the
earlier file's reset sampling and pushes, and a layer's ``physics`` entry without the ranges it does not repeat,
with nothing said. Such a layer is refused, naming what it leaves out: it lists every term it keeps (``null``
switches one off) and, in an entry it changes, every parameter. Command-line options are not layers: they change
only what they name (``table_overrides.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CONFIG_OPTIONS = ("--config", "-c")


def config_paths(args: list[str]) -> list[str]:
    """The ``--config`` files of ``args``, in order."""
    paths: list[str] = []
    for i, arg in enumerate(args):
        option, equals, value = arg.partition("=")
        if option in CONFIG_OPTIONS:
            if equals:
                paths.append(value)
            elif i + 1 < len(args):
                paths.append(args[i + 1])
    return paths


def term_tables(config: Any) -> dict[str, dict[str, Any]]:
    """``{group: table}`` of a config file's ``data.env.init_args.<group>.terms`` tables."""
    node = config
    for key in ("data", "env", "init_args"):
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return {}
    return {group: value["terms"] for group, value in node.items()
            if isinstance(value, dict) and isinstance(value.get("terms"), dict)}


def what_a_layer_drops(earlier: dict[str, Any], later: dict[str, Any]) -> list[str]:
    """The terms of ``earlier`` absent from ``later``, and ``term.parameter`` for each parameter an entry given as a
    mapping in both leaves out."""
    dropped = [term for term in earlier if term not in later]
    for term, entry in later.items():
        before = earlier.get(term)
        if isinstance(entry, dict) and isinstance(before, dict):
            dropped += [f"{term}.{parameter}" for parameter in before if parameter not in entry]
    return dropped


def check_config_layers(paths: list[str]) -> None:
    """Refuse a ``--config`` file whose term table leaves out what an earlier file's table of that group holds."""
    seen: dict[str, tuple[str, dict[str, Any]]] = {}
    problems: list[str] = []
    for path in paths:
        try:
            config = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError):
            continue  # the parser says what is wrong with the file
        for group, table in term_tables(config).items():
            if group in seen:
                source, earlier = seen[group]
                dropped = what_a_layer_drops(earlier, table)
                if dropped:
                    problems.append(f"{path}: data.env.init_args.{group}.terms replaces the whole table of {source} "
                                    f"and leaves out {', '.join(dropped)}")
            seen[group] = (path, table)
    if problems:
        raise ValueError("; ".join(problems) + ". A later --config replaces a term table, it does not merge into "
                         "it: list every term to keep (null switches one off) and every parameter of an entry "
                         "it changes, or change single values on the command line (--data.env.init_args.<group>."
                         "terms.<term>.<parameter> VALUE), which keeps the rest.")
