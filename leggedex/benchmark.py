"""Timing helpers shared by the benchmark scripts under ``scripts/`` (each prints its own table).

Rates are policy steps per second of one runner (a closure doing one policy step); multiply by the number of worlds
for env-steps per second. ``interleaved`` alternates two runners in short rounds so that machine load hits both
alike: quote their ratio, measured side by side.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

SUBSTEPS = 4


def joint_targets(kind: str, home: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, joints) targets: the home pose, or home + U(-0.5, 0.5) rad (``kind`` "random")."""
    if kind == "home":
        return np.tile(home, (n, 1))
    return home + rng.uniform(-0.5, 0.5, size=(n, home.size))


def raw_batch_runner(n: int, motor: bool, threads: int, targets: str, reset_every: int) -> Callable[[], None]:
    """One policy step of a bare ``mujoco.batch.Batch`` of the Go2 (no task, no torch), as a closure."""
    import mujoco.batch

    from leggedex.envs.backends.mjcf import build_model
    from leggedex.robots import GO2

    model = build_model(GO2, actuation="motor" if motor else "position")
    batch = mujoco.batch.Batch(model, nsim=n, nthread=threads)
    batch.reset(keyframe=0)
    qpos, qvel, ctrl = batch.bind("qpos"), batch.bind("qvel"), batch.bind("ctrl")
    home = model.key_qpos[0, 7:].copy()
    rng = np.random.default_rng(0)
    kp, kd = 20.0, 0.5
    lim = model.actuator_forcerange[:, 1].copy()
    state: dict[str, Any] = {"step": 0, "tgt": joint_targets(targets, home, n, rng)}

    def policy_step() -> None:
        if state["step"] % 10 == 0:  # new targets at 5 Hz
            state["tgt"] = joint_targets(targets, home, n, rng)
        tgt = state["tgt"]
        if motor:
            for _ in range(SUBSTEPS):
                tau = kp * (tgt - qpos[:, 7:]) - kd * qvel[:, 6:]
                np.clip(tau, -lim, lim, out=tau)
                ctrl[...] = tau
                batch.step(nstep=1)
        else:
            ctrl[...] = tgt
            batch.step(nstep=SUBSTEPS)
        state["step"] += 1
        if state["step"] % reset_every == 0:
            batch.reset(keyframe=0)

    return policy_step


def task_runner(env: Any, action_std: float) -> Callable[[], None]:
    """One ``env.step`` with N(0, action_std) actions (seeded), as a closure."""
    generator = torch.Generator().manual_seed(0)
    actions = torch.zeros(env.num_envs, env.num_actions)

    def policy_step() -> None:
        torch.randn(actions.shape, generator=generator, out=actions)
        env.step(actions * action_std)

    return policy_step


def interleaved(
    a: Callable[[], None], b: Callable[[], None], n: int, seconds: float, warmup: int
) -> tuple[float, float]:
    """Policy steps/s of a and b, run alternately in rounds of ~0.25 s each.

    Both first run ``warmup`` policy steps, so that the robots have landed and
    settled into ground contact (a falling robot without contacts is ~2x cheaper).
    """
    for f in (a, b):
        for _ in range(warmup):
            f()
    spent = [0.0, 0.0]
    steps = [0, 0]
    while min(spent) < seconds:
        for i, f in enumerate((a, b)):
            t0 = time.perf_counter()
            k = 0
            while time.perf_counter() - t0 < 0.25:
                f()
                k += 1
            spent[i] += time.perf_counter() - t0
            steps[i] += k
    return steps[0] * n / spent[0], steps[1] * n / spent[1]


def timed(step: Callable[[], None], device: torch.device, seconds: float, warmup: int) -> float:
    """Policy steps per second of ``step`` over about ``seconds`` after ``warmup`` unmeasured steps."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            step()
        count += 10
        sync()
    return count / (time.perf_counter() - start)
