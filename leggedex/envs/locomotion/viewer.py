"""An interactive viewer for play: MuJoCo's viewer on one robot, the camera following it, the command from the keys.

Keys: up / down change the forward velocity command, ``,`` / ``.`` the lateral one, left / right the yaw rate
(steps of 0.1), space stops. The overlay shows the command, the measured base velocity and the step. Needs a
display and MuJoCo's GLFW viewer (``leggedex`` leaves ``MUJOCO_GL`` unset when ``DISPLAY`` is set); runs in real
time until the window is closed or ``duration_s`` has passed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from leggedex.envs.locomotion.env import LeggedLocomotion
from leggedex.envs.vec_env import reset_after_step

# GLFW key codes
KEY_STEPS = {265: (0, 0.1), 264: (0, -0.1), 44: (1, 0.1), 46: (1, -0.1), 263: (2, 0.1), 262: (2, -0.1)}
KEY_SPACE = 32
HELP = "up/down: vx, ,/. : vy, left/right: yaw rate, space: stop"


class KeyboardCommand:
    """The command (vx, vy, yaw rate) the keys set, each axis clipped to +-``limit``."""

    def __init__(self, command: Sequence[float], limit: float = 2.0) -> None:
        self.command = [float(v) for v in command]
        self.limit = limit

    def press(self, key: int) -> None:
        if key == KEY_SPACE:
            self.command = [0.0, 0.0, 0.0]
        elif key in KEY_STEPS:
            axis, step = KEY_STEPS[key]
            value = round(self.command[axis] + step, 3)
            self.command[axis] = max(-self.limit, min(self.limit, value))


def check_viewer_support() -> None:
    """Raise a RuntimeError naming what the interactive viewer needs and this machine lacks."""
    if not os.environ.get("DISPLAY"):
        raise RuntimeError("--viewer opens a window and needs a display (DISPLAY is not set); --video records "
                           "an MP4 offscreen instead")
    if os.environ.get("MUJOCO_GL", "glfw").lower() != "glfw":
        raise RuntimeError(f"--viewer needs MuJoCo's GLFW platform, but MUJOCO_GL={os.environ['MUJOCO_GL']}")


@torch.inference_mode()
def run_viewer(env: LeggedLocomotion, policy: Callable[[dict[str, torch.Tensor]], torch.Tensor],
               command: Sequence[float] = (0.5, 0.0, 0.0), duration_s: float | None = None,
               launch: Callable[..., Any] | None = None) -> int:
    """Drive world 0 of ``env`` with ``policy`` under the keyboard's command; returns the steps shown."""
    import mujoco

    from leggedex.envs.backends.mujoco_base import MujocoBackend

    if not isinstance(env.sim, MujocoBackend):
        raise TypeError(f"the viewer shows a MuJoCo backend's world, got {type(env.sim).__name__}")
    if launch is None:
        import mujoco.viewer

        launch = mujoco.viewer.launch_passive
    keys = KeyboardCommand(command)
    model = env.sim.display_model()
    data = mujoco.MjData(model)
    steps = 0
    before = set(threading.enumerate())
    viewer = launch(model, data, key_callback=keys.press)
    render_threads = [t for t in threading.enumerate() if t not in before]
    try:
        viewer.cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        viewer.cam.trackbodyid = env.sim.index.base_body
        viewer.cam.distance, viewer.cam.elevation = 2.0, -20.0
        env.set_evaluation_commands(torch.tensor([keys.command] * env.num_envs, device=env.device))
        obs = env.reset()
        while viewer.is_running() and (duration_s is None or steps * env.step_dt < duration_s):
            started = time.perf_counter()
            env.set_evaluation_commands(torch.tensor([keys.command] * env.num_envs, device=env.device))
            obs, _, dones, _ = env.step(policy(obs))
            reset_after_step(policy, dones)
            steps += 1
            with viewer.lock():
                env.sim.pose(data, 0)
            vx, vy = env.base_lin_vel[0, :2].tolist()
            commanded = " ".join(f"{v:+.1f}" for v in keys.command)
            measured = f"{vx:+.2f} {vy:+.2f} {float(env.base_ang_vel[0, 2]):+.2f}"
            viewer.set_texts((None, mujoco.mjtGridPos.mjGRID_TOPLEFT,
                              "command vx vy yaw\nmeasured vx vy yaw\nstep\nkeys",
                              f"{commanded}\n{measured}\n{steps}\n{HELP}"))
            viewer.sync()
            time.sleep(max(0.0, env.step_dt - (time.perf_counter() - started)))
    finally:
        viewer.close()
        for thread in render_threads:  # the viewer renders on its own thread: let it finish before going on
            thread.join(timeout=10.0)
    env.set_evaluation_commands(None)
    return steps
