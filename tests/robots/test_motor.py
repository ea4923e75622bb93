"""The motors' torque-speed curve: the line itself, the CPU backend applying it in motor actuation, and refusals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from leggedex.envs.backends import MujocoBatchBackend
from leggedex.robots import GO2
from leggedex.robots.motor import torque_speed_clip

LIMIT, SPEED = np.array([20.0]), np.array([10.0])


@pytest.mark.parametrize(("tau", "speed", "expected"), [
    (50.0, 0.0, 20.0),     # at rest: the torque limit
    (-50.0, 0.0, -20.0),
    (50.0, 5.0, 10.0),     # driving at half the no-load speed: half the torque
    (-50.0, -5.0, -10.0),
    (50.0, 12.0, 0.0),     # beyond the no-load speed nothing drives it further
    (-50.0, 5.0, -20.0),   # braking keeps the full limit
    (5.0, 5.0, 5.0),       # below the line the torque passes unchanged
])
def test_the_torque_speed_line(tau: float, speed: float, expected: float) -> None:
    out = torque_speed_clip(np.array([tau]), np.array([speed]), LIMIT, SPEED)
    assert out.tolist() == pytest.approx([expected])


def test_the_backend_limits_a_fast_joints_torque_by_the_curve() -> None:
    """One physics step per call: the torque applied is the PD torque clipped at the state's joint speed."""
    spin = 0.75 * np.asarray(GO2.velocity_limits)
    torques = {}
    for curve in (False, True):
        sim = MujocoBatchBackend(1, substeps=1, num_threads=1, actuation="motor", torque_speed_curve=curve)
        sim.reset(torch.tensor([0]), torch.tensor([[0.0, 0.0, 0.6]]), torch.tensor([[1.0, 0.0, 0.0, 0.0]]),
                  torch.zeros(1, 3), torch.zeros(1, 3), sim.default_dof_pos[None], torch.tensor(spin)[None].float())
        sim.set_dof_targets(sim.default_dof_pos[None] + 3.0)  # far ahead of every joint: the PD torque saturates
        sim.step()
        torques[curve] = sim.applied_torques[0].double().numpy()
    limits = np.asarray(GO2.torque_limits)
    tau_pd = 20.0 * 3.0 - 0.5 * spin
    np.testing.assert_allclose(torques[False], np.minimum(tau_pd, limits), rtol=1e-5)
    np.testing.assert_allclose(torques[True], np.minimum(tau_pd, 0.25 * limits), rtol=1e-5)
    assert sim.velocity_limits is not None and sim.velocity_limits.tolist() == pytest.approx(list(GO2.velocity_limits))


def test_the_curve_needs_torque_motors_and_the_robots_speeds() -> None:
    with pytest.raises(ValueError, match="torque_speed_curve needs actuation: motor"):
        MujocoBatchBackend(1, num_threads=1, torque_speed_curve=True)
    without = dataclasses.replace(GO2, velocity_limits=None)
    with pytest.raises(ValueError, match="gives no velocity_limits"):
        MujocoBatchBackend(1, without, num_threads=1, actuation="motor", torque_speed_curve=True)
    with pytest.raises(ValueError, match="velocity_limits has 3 values for 12 joints"):
        dataclasses.replace(GO2, velocity_limits=(1.0, 2.0, 3.0))
    assert MujocoBatchBackend(1, num_threads=1).velocity_limits is None
