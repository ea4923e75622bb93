"""What ``leggedex play`` and ``leggedex sim2sim`` share, without importing Lightning: the ``--commands`` option
and JSON-safe reports."""

from __future__ import annotations

import json
import math
from typing import Any


def parse_commands(text: str | None) -> list[tuple[float, float, float]]:
    from leggedex.envs.locomotion.evaluation import DEFAULT_COMMANDS

    if text is None:
        return list(DEFAULT_COMMANDS)
    try:
        commands = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"--commands must be a JSON list of [vx, vy, yaw] triples, got {text!r}: {error}") from None
    if (not isinstance(commands, list) or not commands
            or not all(isinstance(c, list) and len(c) == 3 and all(isinstance(v, (int, float)) for v in c)
                       for c in commands)):
        raise ValueError(f"--commands must be a non-empty JSON list of [vx, vy, yaw] triples, got {text!r}")
    return [(float(vx), float(vy), float(yaw)) for vx, vy, yaw in commands]


def json_ready(value: Any) -> Any:
    """``value`` with every non-finite float as None (JSON has no NaN or Infinity)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value
