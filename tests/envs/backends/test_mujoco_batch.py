"""What only the CPU default does: torque motors with the PD in numpy, next to MuJoCo's own position servos."""

from __future__ import annotations

import torch

from leggedex.envs.backends import MujocoBatchBackend


def test_position_and_motor_actuation_agree() -> None:
    pos = MujocoBatchBackend(2, num_threads=1)
    mot = MujocoBatchBackend(2, num_threads=1, actuation="motor")
    gen = torch.Generator().manual_seed(0)
    for b in (pos, mot):
        b.randomize(torch.tensor([1]), kp_scale=torch.tensor([1.2]), kd_scale=torch.tensor([0.8]))
    for _ in range(15):
        targets = pos.default_dof_pos + 0.3 * torch.randn(2, 12, generator=gen)
        for b in (pos, mot):
            b.set_dof_targets(targets)
            b.step()
    torch.testing.assert_close(pos.dof_pos, mot.dof_pos, atol=1e-5, rtol=0)
    torch.testing.assert_close(pos.applied_torques, mot.applied_torques, atol=1e-3, rtol=0)
    assert mot.model.actuator_biastype[0] == 0  # the motor model really has no servo bias
