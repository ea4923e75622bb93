"""leggedex: legged-robot reinforcement learning on PyTorch Lightning."""

import ctypes.util
import os

__version__ = "0.1.0"

# MuJoCo picks its OpenGL backend when it is imported. Without a display, render offscreen through OSMesa when
# the library is installed (Debian: libosmesa6); otherwise leave MuJoCo's default (rendering then needs a display).
if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY") and ctypes.util.find_library("OSMesa"):
    os.environ["MUJOCO_GL"] = "osmesa"
    os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
