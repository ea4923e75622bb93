"""Per-command evaluation in the robot-side loop: the numbers of ``leggedex play`` that a loop on the robot's own
state can measure (tracking errors, falls by the contract's termination rules, base height)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import mujoco
import numpy as np

from leggedex.deploy.mujoco_loop import MujocoRobotLoop, RobotModelError


class FallRule:
    """The contract's termination table as a loop can check it: base tilt, base height, base ground contact."""

    def __init__(self, loop: MujocoRobotLoop, terminations: dict[str, Any] | None) -> None:
        terms: dict[str, Any] = terminations if terminations is not None else {
            "illegal_contact": {"bodies": ["base"]}, "bad_orientation": {"max_tilt_rad": 1.0},
            "base_too_low": {"min_height": 0.12}}
        self.max_tilt = terms.get("bad_orientation", {}).get("max_tilt_rad")
        self.min_height = terms.get("base_too_low", {}).get("min_height")
        model = loop.model
        bodies = set()
        for name in (terms.get("illegal_contact") or {}).get("bodies", []):
            body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
            bodies.add(loop.robot.base_body if body < 0 and name == "base" else body)
        if -1 in bodies:
            raise RobotModelError(f"the contract's illegal_contact bodies {sorted(bodies)} are not all in the model")
        self.bodies = bodies
        self.loop = loop

    def fallen(self, i: int) -> bool:
        base = self.loop.base_state(i)
        if self.max_tilt is not None and math.acos(max(-1.0, min(1.0, -base["gravity"][2]))) > self.max_tilt:
            return True
        if self.min_height is not None and base["pos"][2] < self.min_height:
            return True
        data, model = self.loop.data[i], self.loop.model
        for k in range(data.ncon):
            contact = data.contact[k]
            pair = (model.geom_bodyid[contact.geom1], model.geom_bodyid[contact.geom2])
            if 0 in pair and any(b in self.bodies for b in pair):  # a listed body against the world (ground)
                return True
        return False


def evaluate(loop: MujocoRobotLoop, commands: Sequence[Sequence[float]], robots_per_command: int, duration_s: float,
             settle_s: float, seed: int, joint_noise: float = 0.1, frames: list[np.ndarray] | None = None,
             renderer: Any = None) -> dict[str, dict[str, Any]]:
    """Hold each command with ``robots_per_command`` robots for ``duration_s``; per command the tracking errors,
    fall and survival rates and median base height."""
    from leggedex.envs.locomotion.evaluation import command_name

    rng = np.random.default_rng(seed)
    n = loop.num_robots
    table = np.repeat(np.asarray(commands, dtype=np.float64), robots_per_command, axis=0)
    joint_offsets = loop.default * rng.uniform(-joint_noise, joint_noise, (n, len(loop.default)))
    loop.reset(yaw=rng.uniform(-math.pi, math.pi, n), joint_offsets=joint_offsets)
    loop.command[:] = table
    rule = FallRule(loop, loop.contract["env"].get("terminations"))
    fell = np.zeros(n, dtype=bool)
    vel_sum, vel_count = np.zeros((n, 3)), np.zeros(n)
    heights = []
    settle = int(round(settle_s / loop.control_dt))
    for t in range(int(round(duration_s / loop.control_dt))):
        loop.step()
        for i in range(n):
            fell[i] |= rule.fallen(i)
        states = [loop.base_state(i) for i in range(n)]
        heights.append([s["pos"][2] for s in states])
        if t >= settle:
            alive = ~fell
            measured = np.array([[s["lin_vel"][0], s["lin_vel"][1], s["ang_vel"][2]] for s in states])
            vel_sum += measured * alive[:, None]
            vel_count += alive
        if renderer is not None and frames is not None:
            renderer.update_scene(loop.data[0], camera=renderer.camera, scene_option=renderer.options)
            frames.append(renderer.render().copy())
    error = np.abs(vel_sum / np.maximum(vel_count, 1)[:, None] - table)
    height = np.asarray(heights)
    results: dict[str, dict[str, Any]] = {}
    for k, command in enumerate(commands):
        ids = np.arange(k * robots_per_command, (k + 1) * robots_per_command)
        valid = ids[vel_count[ids] > 0]
        results[command_name(command)] = {
            "command": [float(v) for v in command],
            "error_vx": float(error[valid, 0].mean()) if valid.size else float("nan"),
            "error_vy": float(error[valid, 1].mean()) if valid.size else float("nan"),
            "error_yaw": float(error[valid, 2].mean()) if valid.size else float("nan"),
            "fall_rate": float(fell[ids].mean()),
            "survival_rate": 1.0 - float(fell[ids].mean()),
            "base_height_median": float(np.median(height[:, ids])),
        }
    return results
