"""Simulator backends: the abstract ``SimBackend`` and its MuJoCo batch implementation."""

from .base import SimBackend, quat_rotate, quat_rotate_inverse
from .mujoco_batch import GO2_MODEL_PATH, MujocoBatchBackend, add_flat_ground, build_model

__all__ = [
    "GO2_MODEL_PATH",
    "MujocoBatchBackend",
    "SimBackend",
    "add_flat_ground",
    "build_model",
    "quat_rotate",
    "quat_rotate_inverse",
]
