"""leggedex: legged-robot reinforcement learning on PyTorch Lightning."""

import ctypes.util
import os

__version__ = "0.1.0"


def offscreen_gl_platform() -> str | None:
    """The offscreen OpenGL platform this machine has: OSMesa (Debian: libosmesa6), else EGL (libegl1), else None."""
    for platform, library in (("osmesa", "OSMesa"), ("egl", "EGL")):
        if ctypes.util.find_library(library):
            return platform
    return None


# MuJoCo picks its OpenGL backend when it is imported. Without a display, render offscreen through the platform
# found; without one, MuJoCo's default would abort the process when asked to render (video.py checks first).
if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    _platform = offscreen_gl_platform()
    if _platform is not None:
        os.environ["MUJOCO_GL"] = _platform
        os.environ.setdefault("PYOPENGL_PLATFORM", _platform)
