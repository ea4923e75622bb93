"""Offscreen video of a locomotion policy: the backend's renderer on one world, a camera that follows the base.

With the MuJoCo backends rendering needs an OpenGL context without a display: ``MUJOCO_GL=osmesa`` (Debian
package libosmesa6) or ``MUJOCO_GL=egl`` (libegl1) before MuJoCo is imported; ``leggedex`` picks the one installed
when no display is set and the variable is unset. MP4 files are written with imageio's ffmpeg plugin
(``pip install leggedex[video]``). ``check_video_support()`` says what is missing before any work is done.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from leggedex.envs.locomotion.env import LeggedLocomotion
from leggedex.envs.vec_env import reset_after_step


def check_video_support() -> None:
    """Raise a RuntimeError naming what recording an MP4 needs and this machine lacks."""
    missing = [name for name in ("imageio", "imageio_ffmpeg") if importlib.util.find_spec(name) is None]
    if missing:
        raise RuntimeError(f"a video needs {' and '.join(missing)}: pip install -e \".[video]\"")
    platform = os.environ.get("MUJOCO_GL", "").lower()
    if platform in ("", "glfw") and not os.environ.get("DISPLAY"):
        raise RuntimeError("a video needs an OpenGL platform and this machine has no display and neither OSMesa nor "
                           "EGL: install one (Debian/Ubuntu: apt-get install libosmesa6, or libegl1), or set MUJOCO_GL")
    if platform == "disable":
        raise RuntimeError("a video needs rendering, and MUJOCO_GL=disable turns it off")


@torch.inference_mode()
def render_rollout(
    env: LeggedLocomotion,
    policy: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    command: Sequence[float] = (1.0, 0.0, 0.0),
    duration_s: float = 4.0,
    width: int = 480,
    height: int = 320,
    world: int = 0,
) -> np.ndarray:
    """Frames (T, height, width, 3) uint8 of world ``world`` driven by ``policy`` with a fixed ``command``."""
    commands = torch.tensor([list(command)], dtype=torch.float32, device=env.device).expand(env.num_envs, 3).clone()
    env.set_evaluation_commands(commands)
    renderer = env.sim.renderer(width, height)
    frames = []
    try:
        obs = env.reset()
        for _ in range(int(round(duration_s / env.step_dt))):
            obs, _, dones, _ = env.step(policy(obs))
            reset_after_step(policy, dones)
            frames.append(renderer.render(world))
    finally:
        renderer.close()
        env.set_evaluation_commands(None)
    return np.stack(frames)


def write_mp4(frames: np.ndarray, path: str | Path, fps: float) -> Path:
    import imageio.v2 as imageio  # optional dependency: leggedex[video]

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimwrite(path, list(frames), fps=fps, codec="libx264", macro_block_size=1)
    return path
