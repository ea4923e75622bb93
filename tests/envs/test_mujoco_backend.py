"""MujocoBatchBackend: shapes, frames, standing, partial resets, DR and failures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from leggedex.envs.backends import MujocoBatchBackend, SimBackend, quat_rotate

N = 4
G = 9.81


def _hold_home(backend: MujocoBatchBackend, seconds: float) -> list[torch.Tensor]:
    """Hold the home targets; return the base height after every policy step."""
    targets = backend.default_dof_pos.expand(backend.num_envs, -1)
    heights = []
    for _ in range(round(seconds / backend.policy_dt)):
        backend.set_dof_targets(targets)
        backend.step()
        heights.append(backend.root_pos[:, 2].clone())
    return heights


def _home_state(backend: MujocoBatchBackend, n: int) -> dict[str, torch.Tensor]:
    return {
        "root_pos": torch.tensor([[0.0, 0.0, backend.home_base_height]]).repeat(n, 1),
        "root_quat": torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(n, 1),
        "root_lin_vel": torch.zeros(n, 3),
        "root_ang_vel": torch.zeros(n, 3),
        "dof_pos": backend.default_dof_pos.repeat(n, 1),
        "dof_vel": torch.zeros(n, 12),
    }


@pytest.fixture()
def backend() -> MujocoBatchBackend:
    return MujocoBatchBackend(N, num_threads=2)


@pytest.fixture(scope="module")
def stiff_standing() -> MujocoBatchBackend:
    """Worlds that held the home pose for 2 s with stiffer PD (kp 60, kd 1)."""
    b = MujocoBatchBackend(N, num_threads=2)
    ids = torch.arange(N)
    b.randomize(ids, kp_scale=torch.full((N, 12), 3.0), kd_scale=torch.full((N, 12), 2.0))
    b.heights = _hold_home(b, 2.0)  # type: ignore[attr-defined]
    return b


@pytest.mark.parametrize("num_envs", [0, -3])
def test_bad_num_envs_raises(num_envs: int) -> None:
    with pytest.raises(ValueError, match="num_envs"):
        MujocoBatchBackend(num_envs)


def test_interface_and_shapes(backend: MujocoBatchBackend) -> None:
    assert isinstance(backend, SimBackend)
    assert backend.num_envs == N and backend.num_dofs == 12
    assert backend.dof_names[:3] == ["FL_hip", "FL_thigh", "FL_calf"]
    assert backend.dof_names[-1] == "RR_calf"
    assert backend.foot_names == ["FL_foot", "FR_foot", "RL_foot", "RR_foot"]
    assert backend.contact_body_names[0] == "base"
    assert {f"{leg}_{p}" for leg in ("FL", "FR", "RL", "RR") for p in ("thigh", "calf")} <= set(
        backend.contact_body_names
    )
    assert backend.sim_dt == pytest.approx(0.005) and backend.policy_dt == pytest.approx(0.02)
    assert backend.default_dof_pos.tolist() == pytest.approx([0.0, 0.8, -1.5] * 4)
    assert backend.torque_limits.tolist() == pytest.approx([23.7, 23.7, 45.43] * 4, rel=1e-6)
    assert backend.dof_pos_limits.shape == (12, 2)
    assert 0.3 < backend.home_base_height < 0.36
    backend.step()
    k = len(backend.contact_body_names)
    expected = {
        "root_pos": ((N, 3), torch.float32),
        "root_quat": ((N, 4), torch.float32),
        "root_lin_vel_world": ((N, 3), torch.float32),
        "root_ang_vel_world": ((N, 3), torch.float32),
        "root_lin_vel_body": ((N, 3), torch.float32),
        "root_ang_vel_body": ((N, 3), torch.float32),
        "projected_gravity": ((N, 3), torch.float32),
        "dof_pos": ((N, 12), torch.float32),
        "dof_vel": ((N, 12), torch.float32),
        "applied_torques": ((N, 12), torch.float32),
        "foot_contact_forces": ((N, 4, 3), torch.float32),
        "foot_contact": ((N, 4), torch.bool),
        "foot_pos_world": ((N, 4, 3), torch.float32),
        "body_contact": ((N, k), torch.bool),
        "friction": ((N,), torch.float32),
        "added_base_mass": ((N,), torch.float32),
        "com_offset": ((N, 3), torch.float32),
        "kp_scale": ((N, 12), torch.float32),
        "kd_scale": ((N, 12), torch.float32),
        "sim_failures": ((N,), torch.bool),
    }
    for name, (shape, dtype) in expected.items():
        value = getattr(backend, name)
        value = value() if callable(value) else value
        assert tuple(value.shape) == shape, name
        assert value.dtype == dtype, name
        assert value.device == backend.device, name


def test_targets_shape_checked(backend: MujocoBatchBackend) -> None:
    with pytest.raises(ValueError, match="targets"):
        backend.set_dof_targets(torch.zeros(N, 11))


def test_stands_with_stiff_pd(stiff_standing: MujocoBatchBackend) -> None:
    b = stiff_standing
    heights = torch.stack(b.heights)  # type: ignore[attr-defined]
    assert heights.min() > 0.25
    last_second = heights[len(heights) // 2 :]
    assert (last_second.max(0).values - last_second.min(0).values).max() < 0.01
    assert (b.projected_gravity[:, 2] < -0.99).all()  # upright
    assert not b.body_contact.any()
    assert b.foot_contact.all()
    assert not b.sim_failures().any()
    assert (b.applied_torques.abs() <= b.torque_limits + 1e-4).all()


def test_foot_forces_carry_weight(stiff_standing: MujocoBatchBackend) -> None:
    b = stiff_standing
    weight = float(b.model.body_subtreemass[1]) * G
    forces = b.foot_contact_forces
    assert (forces[..., 2] > 0).all()
    total = forces.sum(dim=1)
    np.testing.assert_allclose(total[:, 2].numpy(), weight, rtol=0.05)
    assert total[:, :2].abs().max() < 0.05 * weight
    # feet rest on the ground: sphere centres one radius above it
    np.testing.assert_allclose(b.foot_pos_world[..., 2].numpy(), 0.022, atol=0.003)


def test_nominal_pd_stays_upright(backend: MujocoBatchBackend) -> None:
    """kp 20 / kd 0.5 crouches under the robot's weight but does not fall over."""
    heights = torch.stack(_hold_home(backend, 2.0))
    assert heights.min() > 0.2
    assert (backend.projected_gravity[:, 2] < -0.95).all()
    assert not backend.sim_failures().any()


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


def test_frames_after_reset(backend: MujocoBatchBackend) -> None:
    ids = torch.tensor([2, 0])
    state = _home_state(backend, 2)
    yaw = math.pi / 2  # base x axis along world y
    state["root_quat"] = torch.tensor([[math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]]).repeat(2, 1)
    state["root_pos"][:, 2] = 0.5
    state["root_lin_vel"] = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    state["root_ang_vel"] = torch.tensor([[0.0, 0.5, 0.0], [0.3, 0.0, 0.0]])
    backend.reset(ids, **state)
    # rows of the state belong to worlds 2 and 0, in that order
    torch.testing.assert_close(backend.root_lin_vel_world[[2, 0]], state["root_lin_vel"])
    torch.testing.assert_close(backend.root_ang_vel_world[[2, 0]], state["root_ang_vel"])
    # after a +90 deg yaw, world +x is body -y and world +y is body +x
    torch.testing.assert_close(backend.root_lin_vel_body[0], torch.tensor([2.0, 0.0, 0.0]), atol=1e-5, rtol=0)
    torch.testing.assert_close(backend.root_lin_vel_body[2], torch.tensor([0.0, -1.0, 0.0]), atol=1e-5, rtol=0)
    torch.testing.assert_close(backend.root_ang_vel_body[2], torch.tensor([0.5, 0.0, 0.0]), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        quat_rotate(backend.root_quat, backend.root_ang_vel_body), backend.root_ang_vel_world
    )
    torch.testing.assert_close(backend.projected_gravity[2], torch.tensor([0.0, 0.0, -1.0]))


def test_partial_reset_touches_only_ids(backend: MujocoBatchBackend) -> None:
    gen = torch.Generator().manual_seed(1)
    for _ in range(10):
        backend.set_dof_targets(backend.default_dof_pos + 0.4 * torch.randn(N, 12, generator=gen))
        backend.step()
    qpos_before = backend._qpos.copy()
    qvel_before = backend._qvel.copy()
    ctrl_before = backend._ctrl.copy()
    ids = torch.tensor([3, 1])
    state = _home_state(backend, 2)
    state["root_pos"][:, 0] = torch.tensor([5.0, -5.0])
    state["dof_pos"][:, 1] = torch.tensor([0.6, 0.7])
    backend.reset(ids, **state)
    untouched = [0, 2]
    np.testing.assert_array_equal(backend._qpos[untouched], qpos_before[untouched])
    np.testing.assert_array_equal(backend._qvel[untouched], qvel_before[untouched])
    np.testing.assert_array_equal(backend._ctrl[untouched], ctrl_before[untouched])
    assert backend.root_pos[[3, 1], 0].tolist() == [5.0, -5.0]
    assert backend.dof_pos[[3, 1], 1].tolist() == pytest.approx([0.6, 0.7])
    assert backend.dof_vel[[1, 3]].abs().max() == 0
    torch.testing.assert_close(backend._tensor(backend._ctrl)[[1, 3]], backend.default_dof_pos.repeat(2, 1))
    # kinematics of the reset worlds follow the new state at once
    assert backend.foot_pos_world[3, :, 0].mean() == pytest.approx(5.0, abs=0.05)
    assert backend.foot_pos_world[0, :, 0].abs().max() < 1.0


def test_randomize_only_given_worlds(backend: MujocoBatchBackend) -> None:
    ids = torch.tensor([2, 1])
    backend.randomize(
        ids,
        friction=torch.tensor([0.3, 1.5]),
        added_base_mass=torch.tensor([1.0, -0.5]),
        com_offset=torch.tensor([[0.03, 0.0, 0.0], [0.0, -0.02, 0.01]]),
        kp_scale=torch.full((2, 12), 0.9),
        kd_scale=torch.tensor([1.1, 1.2]),
    )
    batch, model = backend.batch, backend.model
    base = model.body("base").id
    foot = model.geom("FL_foot").id
    friction = batch.expanded("geom_friction")[:, foot, 0]
    mass = batch.expanded("body_mass")[:, base]
    ipos = batch.expanded("body_ipos")[:, base]
    gain = batch.expanded("actuator_gainprm")[:, :, 0]
    damp = -batch.expanded("actuator_biasprm")[:, :, 2]
    assert friction.tolist() == pytest.approx([1.0, 1.5, 0.3, 1.0])
    assert mass.tolist() == pytest.approx([6.921, 6.421, 7.921, 6.921])
    np.testing.assert_allclose(ipos[2] - ipos[0], [0.03, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(ipos[1] - ipos[0], [0.0, -0.02, 0.01], atol=1e-12)
    np.testing.assert_array_equal(ipos[3], ipos[0])
    np.testing.assert_allclose(gain[:, 0], [20.0, 18.0, 18.0, 20.0])
    np.testing.assert_allclose(damp[:, 0], [0.5, 0.6, 0.55, 0.5])
    # derived constants follow: subtree mass of the whole robot
    subtree = batch.expanded("body_subtreemass")[:, base]
    np.testing.assert_allclose(subtree - subtree[0], [0.0, -0.5, 1.0, 0.0], atol=1e-9)
    # reported back for privileged observations
    assert backend.friction.tolist() == pytest.approx([1.0, 1.5, 0.3, 1.0])
    assert backend.added_base_mass.tolist() == pytest.approx([0.0, -0.5, 1.0, 0.0])
    assert backend.kd_scale[:, 5].tolist() == pytest.approx([1.0, 1.2, 1.1, 1.0])
    # the heavier world presses harder on the ground
    _hold_home(backend, 0.4)
    fz = backend.foot_contact_forces[..., 2].sum(1)
    assert fz[2] > fz[0] + 5.0


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("friction", torch.tensor([0.0, 1.0])),
        ("friction", torch.tensor([-0.1, 1.0])),
        ("friction", torch.tensor([float("nan"), 1.0])),
        ("added_base_mass", torch.tensor([float("inf"), 0.0])),
        ("added_base_mass", torch.tensor([-7.0, 0.0])),
        ("com_offset", torch.zeros(2, 2)),
        ("kp_scale", torch.zeros(2, 12)),
        ("kp_scale", -torch.ones(2)),
        ("kd_scale", torch.full((2, 12), float("nan"))),
        ("kd_scale", torch.zeros(2)),
    ],
)
def test_randomize_rejects_bad_values(backend: MujocoBatchBackend, param: str, value: torch.Tensor) -> None:
    valid = {"friction": torch.tensor([0.5, 0.5]), "kp_scale": torch.full((2,), 1.1)}
    with pytest.raises(ValueError, match=param):
        backend.randomize(torch.tensor([0, 1]), **{**valid, param: value})
    # nothing changed, not even the valid parameters given alongside
    assert backend.batch.expanded("geom_friction") is None
    assert backend.batch.expanded("actuator_gainprm") is None
    assert backend.friction.tolist() == pytest.approx([1.0] * N)
    assert (backend.kp_scale == 1.0).all()


def test_bad_ids_rejected(backend: MujocoBatchBackend) -> None:
    state = _home_state(backend, 2)
    with pytest.raises(ValueError, match="env_ids"):
        backend.reset(torch.tensor([1, 1]), **state)
    with pytest.raises(ValueError, match="env_ids"):
        backend.reset(torch.tensor([0, N]), **state)
    with pytest.raises(ValueError, match="root_pos"):
        backend.reset(torch.tensor([0, 1]), **{**state, "root_pos": torch.zeros(3, 3)})


def test_nan_world_reported_and_reset(backend: MujocoBatchBackend) -> None:
    backend.set_dof_targets(backend.default_dof_pos.repeat(N, 1))
    backend.step()
    backend._qpos[2, 8] = float("nan")
    assert backend.sim_failures().tolist() == [False, False, True, False]
    backend.step()  # MuJoCo auto-resets the world and counts a warning
    assert backend.sim_failures().tolist() == [False, False, True, False]
    backend.step()
    assert backend.sim_failures().tolist() == [False, False, True, False]
    backend.reset(torch.tensor([2]), **_home_state(backend, 1))
    assert not backend.sim_failures().any()
    for _ in range(5):
        backend.step()
    assert not backend.sim_failures().any()
    assert torch.isfinite(backend.root_pos).all()
