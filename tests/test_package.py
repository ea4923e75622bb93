"""What ``import leggedex`` decides: the offscreen OpenGL platform MuJoCo renders with."""

from __future__ import annotations

import ctypes.util

import leggedex


def test_the_offscreen_platform_is_osmesa_then_egl_then_none(monkeypatch) -> None:
    for installed, expected in ((("OSMesa", "EGL"), "osmesa"), (("EGL",), "egl"), ((), None)):
        monkeypatch.setattr(ctypes.util, "find_library", lambda name, have=installed: name if name in have else None)
        assert leggedex.offscreen_gl_platform() == expected
