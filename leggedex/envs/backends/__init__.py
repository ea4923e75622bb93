"""Simulator backends: the contract (``SimBackend``, docs/backends.md) and its implementations, one file each.

``MujocoBatchBackend`` (``mujoco.batch``, CPU, the default) and ``MujocoWarpBackend`` (MuJoCo Warp, GPU or
Warp's CPU device; ``pip install leggedex[warp]``) are imported on first use, so this package and everything
above it imports without MuJoCo.
"""

from __future__ import annotations

from typing import Any

from leggedex.envs.backends.base import (
    BackendFactory,
    SimBackend,
    WorldRenderer,
    quat_rotate,
    quat_rotate_inverse,
)

__all__ = ["BackendFactory", "MujocoBatchBackend", "MujocoWarpBackend", "SimBackend", "WorldRenderer",
           "quat_rotate", "quat_rotate_inverse"]

_LAZY = {
    "MujocoBatchBackend": "leggedex.envs.backends.mujoco_batch",
    "MujocoWarpBackend": "leggedex.envs.backends.mujoco_warp",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
