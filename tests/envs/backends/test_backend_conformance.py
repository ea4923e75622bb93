"""One conformance suite for every installed backend: shapes, frames, standing, partial resets, randomization
landing in the right world, terrain contacts, failures, bit-exact resume, and agreement with the CPU default.

Backends: ``MujocoBatchBackend`` always; ``MujocoWarpBackend`` on Warp's CPU device when mujoco-warp is installed
(``pip install -e ".[warp]"``); on a machine with a GPU, ``LEGGEDEX_TEST_CUDA=1`` adds Warp on ``cuda``.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable

import numpy as np
import pytest
import torch

from leggedex.envs.backends import MujocoBatchBackend, SimBackend, quat_rotate
from leggedex.envs.terrain import TerrainConfig, generate_terrain

N = 4
G = 9.81
HAS_WARP = importlib.util.find_spec("mujoco_warp") is not None
SMALL_TERRAIN = dict(num_rows=3, num_cols=5, tile_size=3.0, border=1.0, resolution=0.1, platform=1.0)


def _batch(num_envs: int, **kwargs) -> SimBackend:
    return MujocoBatchBackend(num_envs, num_threads=1, **kwargs)


def _warp(device: str) -> Callable[..., SimBackend]:
    def make(num_envs: int, **kwargs) -> SimBackend:
        from leggedex.envs.backends import MujocoWarpBackend

        return MujocoWarpBackend(num_envs, device=device, **kwargs)

    return make


BACKENDS: dict[str, Callable[..., SimBackend]] = {"batch": _batch}
if HAS_WARP:
    BACKENDS["warp_cpu"] = _warp("cpu")
    if os.environ.get("LEGGEDEX_TEST_CUDA"):
        BACKENDS["warp_cuda"] = _warp("cuda")
WARP_BACKENDS = [name for name in BACKENDS if name.startswith("warp")]


class Probe:
    """A backend's raw simulator state and per-world model fields, as float64 numpy (N, ...)."""

    def __init__(self, backend: SimBackend) -> None:
        self.backend = backend

    def state(self, name: str) -> np.ndarray:
        b = self.backend
        if isinstance(b, MujocoBatchBackend):
            return np.array(b.batch.bind(name), dtype=np.float64)
        return b._view[name].detach().cpu().double().numpy()

    def field(self, name: str) -> np.ndarray:
        b = self.backend
        if isinstance(b, MujocoBatchBackend):
            expanded = b.batch.expanded(name)
            return np.array(expanded) if expanded is not None else np.repeat(getattr(b.model, name)[None], N, 0)
        import warp as wp

        return wp.to_torch(getattr(b.m, name)).detach().cpu().double().numpy()


def _cpu(x: torch.Tensor) -> torch.Tensor:
    return x.detach().cpu()


def _hold_home(backend: SimBackend, seconds: float) -> list[torch.Tensor]:
    """Hold the home targets; return the base height after every policy step."""
    targets = backend.default_dof_pos.expand(backend.num_envs, -1)
    heights = []
    for _ in range(round(seconds / backend.policy_dt)):
        backend.set_dof_targets(targets)
        backend.step()
        heights.append(_cpu(backend.root_pos[:, 2]).clone())
    return heights


def _home_state(backend: SimBackend, n: int) -> dict[str, torch.Tensor]:
    return {
        "root_pos": torch.tensor([[0.0, 0.0, backend.home_base_height]]).repeat(n, 1),
        "root_quat": torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(n, 1),
        "root_lin_vel": torch.zeros(n, 3),
        "root_ang_vel": torch.zeros(n, 3),
        "dof_pos": _cpu(backend.default_dof_pos).repeat(n, 1),
        "dof_vel": torch.zeros(n, 12),
    }


def _random_targets(backend: SimBackend, gen: torch.Generator, scale: float = 0.3) -> torch.Tensor:
    noise = scale * torch.randn(backend.num_envs, backend.num_dofs, generator=gen)
    return (_cpu(backend.default_dof_pos) + noise).to(backend.device)


@pytest.fixture(params=list(BACKENDS))
def make(request) -> Callable[..., SimBackend]:
    return BACKENDS[request.param]


@pytest.fixture()
def backend(make) -> SimBackend:
    return make(N)


@pytest.fixture(scope="module", params=list(BACKENDS))
def stiff_standing(request) -> SimBackend:
    """Worlds that held the home pose for 2 s with stiffer PD (kp 60, kd 1)."""
    b = BACKENDS[request.param](N)
    b.randomize(torch.arange(N), kp_scale=torch.full((N, 12), 3.0), kd_scale=torch.full((N, 12), 2.0))
    b.heights = _hold_home(b, 2.0)  # type: ignore[attr-defined]
    return b


@pytest.mark.parametrize("num_envs", [0, -3])
def test_bad_num_envs_raises(make, num_envs: int) -> None:
    with pytest.raises(ValueError, match="num_envs"):
        make(num_envs)


def test_interface_and_shapes(backend: SimBackend) -> None:
    assert isinstance(backend, SimBackend)
    assert backend.num_envs == N and backend.num_dofs == 12
    assert backend.dof_names[:3] == ["FL_hip", "FL_thigh", "FL_calf"]
    assert backend.dof_names[-1] == "RR_calf"
    assert backend.foot_names == ["FL_foot", "FR_foot", "RL_foot", "RR_foot"]
    assert backend.contact_body_names[0] == "base"
    assert {f"{leg}_{p}" for leg in ("FL", "FR", "RL", "RR") for p in ("thigh", "calf")} <= set(
        backend.contact_body_names)
    assert backend.sim_dt == pytest.approx(0.005) and backend.policy_dt == pytest.approx(0.02)
    assert backend.default_dof_pos.tolist() == pytest.approx([0.0, 0.8, -1.5] * 4)
    assert backend.torque_limits.tolist() == pytest.approx([23.7, 23.7, 45.43] * 4, rel=1e-6)
    assert backend.dof_pos_limits.shape == (12, 2)
    assert 0.3 < backend.home_base_height < 0.36
    backend.step()
    k = len(backend.contact_body_names)
    expected = {
        "root_pos": ((N, 3), torch.float32), "root_quat": ((N, 4), torch.float32),
        "root_lin_vel_world": ((N, 3), torch.float32), "root_ang_vel_world": ((N, 3), torch.float32),
        "root_lin_vel_body": ((N, 3), torch.float32), "root_ang_vel_body": ((N, 3), torch.float32),
        "projected_gravity": ((N, 3), torch.float32), "dof_pos": ((N, 12), torch.float32),
        "dof_vel": ((N, 12), torch.float32), "applied_torques": ((N, 12), torch.float32),
        "foot_contact_forces": ((N, 4, 3), torch.float32), "foot_contact": ((N, 4), torch.bool),
        "foot_pos_world": ((N, 4, 3), torch.float32), "body_contact": ((N, k), torch.bool),
        "friction": ((N,), torch.float32), "added_base_mass": ((N,), torch.float32),
        "com_offset": ((N, 3), torch.float32), "kp_scale": ((N, 12), torch.float32),
        "kd_scale": ((N, 12), torch.float32), "sim_failures": ((N,), torch.bool),
    }
    for name, (shape, dtype) in expected.items():
        value = getattr(backend, name)
        value = value() if callable(value) else value
        assert tuple(value.shape) == shape, name
        assert value.dtype == dtype, name
        assert value.device == backend.device, name


def test_targets_shape_checked(backend: SimBackend) -> None:
    with pytest.raises(ValueError, match="targets"):
        backend.set_dof_targets(torch.zeros(N, 11, device=backend.device))


def test_stands_with_stiff_pd(stiff_standing: SimBackend) -> None:
    b = stiff_standing
    heights = torch.stack(b.heights)  # type: ignore[attr-defined]
    assert heights.min() > 0.25
    last_second = heights[len(heights) // 2:]
    assert (last_second.max(0).values - last_second.min(0).values).max() < 0.01
    assert (_cpu(b.projected_gravity)[:, 2] < -0.99).all()  # upright
    assert not b.body_contact.any()
    assert b.foot_contact.all()
    assert not b.sim_failures().any()
    assert (b.applied_torques.abs() <= b.torque_limits + 1e-4).all()


def test_foot_forces_carry_weight(stiff_standing: SimBackend) -> None:
    b = stiff_standing
    weight = float(b.model.body_subtreemass[1]) * G
    forces = _cpu(b.foot_contact_forces)
    assert (forces[..., 2] > 0).all()
    total = forces.sum(dim=1)
    np.testing.assert_allclose(total[:, 2].numpy(), weight, rtol=0.05)
    assert total[:, :2].abs().max() < 0.05 * weight
    # feet rest on the ground: sphere centres one radius above it
    np.testing.assert_allclose(_cpu(b.foot_pos_world)[..., 2].numpy(), 0.022, atol=0.003)


def test_nominal_pd_stays_upright(backend: SimBackend) -> None:
    """kp 20 / kd 0.5 crouches under the robot's weight but does not fall over."""
    heights = torch.stack(_hold_home(backend, 2.0))
    assert heights.min() > 0.2
    assert (_cpu(backend.projected_gravity)[:, 2] < -0.95).all()
    assert not backend.sim_failures().any()


def test_frames_after_reset(backend: SimBackend) -> None:
    ids = torch.tensor([2, 0])
    state = _home_state(backend, 2)
    yaw = math.pi / 2  # base x axis along world y
    state["root_quat"] = torch.tensor([[math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]]).repeat(2, 1)
    state["root_pos"][:, 2] = 0.5
    state["root_lin_vel"] = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    state["root_ang_vel"] = torch.tensor([[0.0, 0.5, 0.0], [0.3, 0.0, 0.0]])
    backend.reset(ids, **state)
    close = dict(atol=1e-5, rtol=0)
    # rows of the state belong to worlds 2 and 0, in that order
    torch.testing.assert_close(_cpu(backend.root_lin_vel_world)[[2, 0]], state["root_lin_vel"], **close)
    torch.testing.assert_close(_cpu(backend.root_ang_vel_world)[[2, 0]], state["root_ang_vel"], **close)
    # after a +90 deg yaw, world +x is body -y and world +y is body +x
    torch.testing.assert_close(_cpu(backend.root_lin_vel_body)[0], torch.tensor([2.0, 0.0, 0.0]), **close)
    torch.testing.assert_close(_cpu(backend.root_lin_vel_body)[2], torch.tensor([0.0, -1.0, 0.0]), **close)
    torch.testing.assert_close(_cpu(backend.root_ang_vel_body)[2], torch.tensor([0.5, 0.0, 0.0]), **close)
    torch.testing.assert_close(quat_rotate(backend.root_quat, backend.root_ang_vel_body),
                               backend.root_ang_vel_world, **close)
    torch.testing.assert_close(_cpu(backend.projected_gravity)[2], torch.tensor([0.0, 0.0, -1.0]), **close)


def test_partial_reset_touches_only_ids(backend: SimBackend) -> None:
    gen = torch.Generator().manual_seed(1)
    for _ in range(10):
        backend.set_dof_targets(_random_targets(backend, gen, 0.4))
        backend.step()
    probe = Probe(backend)
    before = {name: probe.state(name) for name in ("qpos", "qvel", "ctrl", "qacc_warmstart")}
    forces_before = _cpu(backend.foot_contact_forces).clone()
    ids = torch.tensor([3, 1])
    state = _home_state(backend, 2)
    state["root_pos"][:, 0] = torch.tensor([5.0, -5.0])
    state["dof_pos"][:, 1] = torch.tensor([0.6, 0.7])
    backend.reset(ids, **state)
    untouched = [0, 2]
    for name, value in before.items():
        np.testing.assert_array_equal(probe.state(name)[untouched], value[untouched], err_msg=name)
    torch.testing.assert_close(_cpu(backend.foot_contact_forces)[untouched], forces_before[untouched], atol=0, rtol=0)
    assert _cpu(backend.root_pos)[[3, 1], 0].tolist() == [5.0, -5.0]
    assert _cpu(backend.dof_pos)[[3, 1], 1].tolist() == pytest.approx([0.6, 0.7])
    assert backend.dof_vel[[1, 3]].abs().max() == 0
    np.testing.assert_allclose(probe.state("ctrl")[[1, 3]], np.tile([0.0, 0.8, -1.5] * 4, (2, 1)), atol=1e-6)
    assert np.all(probe.state("qacc_warmstart")[[1, 3]] == 0)
    # kinematics of the reset worlds follow the new state at once
    assert _cpu(backend.foot_pos_world)[3, :, 0].mean() == pytest.approx(5.0, abs=0.05)
    assert _cpu(backend.foot_pos_world)[0, :, 0].abs().max() < 1.0


def test_every_randomized_field_lands_in_its_world(backend: SimBackend) -> None:
    ids = torch.tensor([2, 1])
    backend.randomize(
        ids,
        friction=torch.tensor([0.3, 1.5]),
        added_base_mass=torch.tensor([1.0, -0.5]),
        com_offset=torch.tensor([[0.03, 0.0, 0.0], [0.0, -0.02, 0.01]]),
        kp_scale=torch.full((2, 12), 0.9),
        kd_scale=torch.tensor([1.1, 1.2]),
    )
    probe, model = Probe(backend), backend.model
    base, foot = model.body("base").id, model.geom("FL_foot").id
    friction = probe.field("geom_friction")[:, foot, 0]
    mass = probe.field("body_mass")[:, base]
    ipos = probe.field("body_ipos")[:, base]
    gain = probe.field("actuator_gainprm")[:, :, 0]
    damp = -probe.field("actuator_biasprm")[:, :, 2]
    stiff = -probe.field("actuator_biasprm")[:, :, 1]
    assert friction.tolist() == pytest.approx([1.0, 1.5, 0.3, 1.0])
    assert mass.tolist() == pytest.approx([6.921, 6.421, 7.921, 6.921], rel=1e-6)
    np.testing.assert_allclose(ipos[2] - ipos[0], [0.03, 0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(ipos[1] - ipos[0], [0.0, -0.02, 0.01], atol=1e-7)
    np.testing.assert_array_equal(ipos[3], ipos[0])
    np.testing.assert_allclose(gain[:, 0], [20.0, 18.0, 18.0, 20.0], rtol=1e-6)
    np.testing.assert_allclose(stiff[:, 0], [20.0, 18.0, 18.0, 20.0], rtol=1e-6)
    np.testing.assert_allclose(damp[:, 0], [0.5, 0.6, 0.55, 0.5], rtol=1e-6)
    # the constants that depend on mass follow in every world, not only world 0
    subtree = probe.field("body_subtreemass")[:, base]
    np.testing.assert_allclose(subtree - subtree[0], [0.0, -0.5, 1.0, 0.0], atol=1e-5)
    # reported back for privileged observations
    assert backend.friction.tolist() == pytest.approx([1.0, 1.5, 0.3, 1.0])
    assert backend.added_base_mass.tolist() == pytest.approx([0.0, -0.5, 1.0, 0.0])
    assert backend.kd_scale[:, 5].tolist() == pytest.approx([1.0, 1.2, 1.1, 1.0])
    # the heavier world presses harder on the ground
    _hold_home(backend, 0.4)
    fz = _cpu(backend.foot_contact_forces)[..., 2].sum(1)
    assert fz[2] > fz[0] + 5.0


def test_actuator_parameters_land_in_their_world(backend: SimBackend) -> None:
    ids = torch.tensor([3, 0])
    backend.randomize(ids, joint_damping=torch.tensor([2.0, 0.5]), joint_friction=torch.tensor([0.2, 0.0]),
                      armature_scale=torch.tensor([2.0, 0.5]), motor_strength=torch.tensor([0.8, 1.1]),
                      kp_scale=torch.tensor([1.0, 0.9]))
    probe, model = Probe(backend), backend.model
    dof = model.joint("FL_calf_joint").dofadr[0]
    assert probe.field("dof_damping")[:, dof].tolist() == pytest.approx([0.5, 0.1, 0.1, 2.0])
    assert probe.field("dof_frictionloss")[:, dof].tolist() == pytest.approx([0.0, 0.0, 0.0, 0.2])
    assert probe.field("dof_armature")[:, dof].tolist() == pytest.approx([0.005, 0.01, 0.01, 0.02], rel=1e-6)
    # motor strength scales the whole PD law, on top of the gain scales
    np.testing.assert_allclose(probe.field("actuator_gainprm")[:, 2, 0], [20 * 0.9 * 1.1, 20, 20, 16], rtol=1e-6)
    np.testing.assert_allclose(-probe.field("actuator_biasprm")[:, 2, 2], [0.5 * 1.1, 0.5, 0.5, 0.4], rtol=1e-6)
    assert backend.joint_damping[:, 2].tolist() == pytest.approx([0.5, 0.1, 0.1, 2.0])
    assert backend.joint_friction[:, 2].tolist() == pytest.approx([0.0, 0.0, 0.0, 0.2])
    assert backend.armature_scale[:, 2].tolist() == pytest.approx([0.5, 1.0, 1.0, 2.0])
    assert backend.motor_strength[:, 2].tolist() == pytest.approx([1.1, 1.0, 1.0, 0.8])
    # joint friction slows a swinging leg: the world with 0.2 Nm moves its joints least
    backend.set_dof_targets(backend.default_dof_pos.expand(N, -1) + 0.3)
    backend.step()
    speed = _cpu(backend.dof_vel).abs().mean(1)
    assert speed[3] < speed[1]


def test_foot_softness_lands_on_the_feet_of_its_world_and_lets_them_sink(backend: SimBackend) -> None:
    """The public Go2 model's soft feet (solimp 0.015 / width 22 mm) in world 1: only its foot geoms change, and
    standing, its base rests lower than the nominal worlds'."""
    backend.randomize(torch.tensor([1]), foot_solimp_dmin=torch.tensor([0.015]),
                      foot_solimp_width=torch.tensor([0.022]))
    model, probe = backend.model, Probe(backend)
    feet = [model.geom(foot).id for foot in backend.robot.feet]
    solimp = probe.field("geom_solimp")
    np.testing.assert_allclose(solimp[1][feet][:, [0, 2]], [[0.015, 0.022]] * 4, rtol=1e-6)
    np.testing.assert_array_equal(solimp[0], solimp[2])
    others = [g for g in range(model.ngeom) if g not in feet]
    np.testing.assert_array_equal(solimp[1][others], solimp[0][others])
    assert backend.foot_solimp_dmin.tolist() == pytest.approx([0.9, 0.015, 0.9, 0.9])
    assert backend.foot_solimp_width.tolist() == pytest.approx([0.001, 0.022, 0.001, 0.001])
    height = _hold_home(backend, 1.0)[-1]
    assert height[0] - height[1] > 0.004 and abs(height[0] - height[2]) < 1e-4


def test_friction_cone_impratio_and_torsion_per_world_or_refused(backend: SimBackend) -> None:
    """The CPU batch gives each world its own friction cone, impratio and foot torsional friction (condim 4); MuJoCo
    Warp has one per model and refuses, naming the parameter."""
    if not isinstance(backend, MujocoBatchBackend):
        for param in ("impratio", "elliptic_cone", "foot_torsional_friction"):
            with pytest.raises(ValueError, match=f"cannot give each world its own.*{param}"):
                backend.randomize(torch.tensor([0]), **{param: torch.tensor([1.0])})
        return
    backend.randomize(torch.tensor([2, 3]), impratio=torch.tensor([100.0, 10.0]),
                      elliptic_cone=torch.tensor([1.0, 0.0]), foot_torsional_friction=torch.tensor([0.0, 0.02]))
    feet = [backend.model.geom(foot).id for foot in backend.robot.feet]
    assert backend.batch.expand("geom_condim")[:, feet].tolist() == [[3] * 4, [3] * 4, [4] * 4, [4] * 4]
    assert backend.batch.expand("geom_friction")[3, feet, 1].tolist() == pytest.approx([0.02] * 4)
    assert backend.foot_torsional_friction.tolist() == pytest.approx([0.0, 0.0, 0.0, 0.02])
    assert backend.batch.expand("opt.cone").tolist() == [0, 0, 1, 0]
    assert backend.batch.expand("opt.impratio").tolist() == pytest.approx([1.0, 1.0, 100.0, 10.0])
    assert backend.elliptic_cone.tolist() == [0.0, 0.0, 1.0, 0.0]
    assert backend.impratio.tolist() == pytest.approx([1.0, 1.0, 100.0, 10.0])
    gen = torch.Generator().manual_seed(2)
    for _ in range(10):  # the elliptic world takes another path than the pyramidal ones
        backend.set_dof_targets(_random_targets(backend, gen, 0.0).expand(N, -1))
        backend.step()
    q = _cpu(backend.dof_pos)
    assert torch.equal(q[0], q[1]) and (q[2] - q[0]).abs().max() > 1e-6


def test_action_delay_applies_the_previous_targets_for_its_physics_steps(backend: SimBackend) -> None:
    """A world delayed by a whole control period (``substeps`` physics steps) moves exactly as an undelayed world
    given every target one call later; a delay of half a period lands in between."""
    substeps = backend.substeps
    backend.randomize(torch.arange(N), action_delay=torch.tensor([0.0, substeps, substeps // 2, 0.0]))
    assert backend.action_delay.tolist() == [0.0, substeps, substeps // 2, 0.0]
    gen = torch.Generator().manual_seed(1)
    previous = backend.default_dof_pos
    for _ in range(6):
        new = _random_targets(backend, gen, 0.2)[0]
        backend.set_dof_targets(torch.stack([previous, new, new, new]).to(backend.device))
        backend.step()
        previous = new
    q = _cpu(backend.dof_pos)
    assert torch.equal(q[0], q[1]) if backend.device.type == "cpu" else torch.allclose(q[0], q[1], atol=1e-5)
    assert (q[2] - q[1]).abs().max() > 1e-3 and (q[2] - q[3]).abs().max() > 1e-3
    state = backend.state_dict()
    assert state["randomization"]["action_delay"].tolist() == [0.0, substeps, substeps // 2, 0.0]


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
        ("joint_damping", -torch.ones(2)),
        ("joint_friction", torch.full((2, 12), -0.1)),
        ("armature_scale", torch.zeros(2)),
        ("motor_strength", torch.zeros(2, 12)),
        ("action_delay", torch.tensor([5.0, 0.0])),
        ("action_delay", torch.tensor([1.5, 0.0])),
        ("foot_solimp_dmin", torch.tensor([1.0, 0.5])),
        ("foot_solimp_dmin", torch.tensor([0.0, 0.5])),
        ("foot_solimp_width", torch.tensor([0.0, 0.01])),
        ("impratio", torch.tensor([0.0, 1.0])),
        ("elliptic_cone", torch.tensor([0.5, 1.0])),
        ("foot_torsional_friction", torch.tensor([-0.01, 0.0])),
    ],
)
def test_randomize_rejects_bad_values(backend: SimBackend, param: str, value: torch.Tensor) -> None:
    valid = {"friction": torch.tensor([0.5, 0.5]), "kp_scale": torch.full((2,), 1.1)}
    probe = Probe(backend)
    friction, gain = probe.field("geom_friction"), probe.field("actuator_gainprm")
    with pytest.raises(ValueError, match=param):
        backend.randomize(torch.tensor([0, 1]), **{**valid, param: value})
    # nothing changed, not even the valid parameters given alongside
    np.testing.assert_array_equal(probe.field("geom_friction"), friction)
    np.testing.assert_array_equal(probe.field("actuator_gainprm"), gain)
    assert backend.friction.tolist() == pytest.approx([1.0] * N)
    assert (backend.kp_scale == 1.0).all()


def test_bad_ids_rejected(backend: SimBackend) -> None:
    state = _home_state(backend, 2)
    with pytest.raises(ValueError, match="env_ids"):
        backend.reset(torch.tensor([1, 1]), **state)
    with pytest.raises(ValueError, match="env_ids"):
        backend.reset(torch.tensor([0, N]), **state)
    with pytest.raises(ValueError, match="env_ids"):
        backend.reset(torch.tensor([0.0, 1.0]), **state)
    with pytest.raises(ValueError, match="root_pos"):
        backend.reset(torch.tensor([0, 1]), **{**state, "root_pos": torch.zeros(3, 3)})


def _poison(backend: SimBackend, world: int) -> None:
    """Write a NaN into one world's joint position, as a diverged simulation would."""
    if isinstance(backend, MujocoBatchBackend):
        backend._qpos[world, 8] = float("nan")
    else:
        backend._view["qpos"][world, 8] = float("nan")


def test_nan_world_reported_and_reset(backend: SimBackend, tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.chdir(tmp_path)  # where MuJoCo would write MUJOCO_LOG.TXT without leggedex's warning handler
    backend.set_dof_targets(backend.default_dof_pos.repeat(N, 1))
    backend.step()
    _poison(backend, 2)
    assert backend.sim_failures().tolist() == [False, False, True, False]
    backend.step()  # the simulator puts the world back to a finite state and keeps reporting it
    assert backend.sim_failures().tolist() == [False, False, True, False]
    assert torch.isfinite(backend.root_pos).all() and torch.isfinite(backend.foot_pos_world).all()
    backend.step()
    assert backend.sim_failures().tolist() == [False, False, True, False]
    backend.reset(torch.tensor([2]), **_home_state(backend, 1))
    assert not backend.sim_failures().any()
    for _ in range(5):
        backend.step()
    assert not backend.sim_failures().any()
    assert torch.isfinite(backend.root_pos).all()
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()
    if isinstance(backend, MujocoBatchBackend):  # MuJoCo's warning reaches the log instead
        assert any("unstable" in record.getMessage() for record in caplog.records)


def test_the_robot_lands_on_the_heightfield(make) -> None:
    terrain = generate_terrain(TerrainConfig(**SMALL_TERRAIN), seed=2)
    backend = make(2, terrain=terrain)
    origins = torch.tensor(terrain.origins[[0, 2], [1, 3]], dtype=torch.float32)  # an easy and a hard tile
    origins[:, 2] = backend.home_base_height + 0.05
    quat = torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(2, 1)
    zeros = torch.zeros(2, 3)
    backend.reset(torch.arange(2), origins, quat, zeros, zeros, _cpu(backend.default_dof_pos).repeat(2, 1),
                  torch.zeros(2, 12))
    for _ in range(25):
        backend.step()
    assert backend.foot_contact.any(dim=1).all()
    assert (_cpu(backend.root_pos)[:, 2] > 0.15).all() and not backend.sim_failures().any()
    assert torch.allclose(_cpu(backend.root_pos)[:, :2], origins[:, :2], atol=0.3)


def test_resume_from_a_state_dict_is_bit_exact(make) -> None:
    """Bit-exact on the CPU; a GPU run is not bit-deterministic (atomics in contact and constraint kernels), so
    there the resumed run only has to stay close."""
    gen = torch.Generator().manual_seed(3)
    first = make(N)
    first.randomize(torch.arange(N), friction=torch.tensor([0.6, 0.9, 1.2, 0.8]),
                    added_base_mass=torch.tensor([0.5, -0.5, 1.0, 0.0]), kp_scale=torch.tensor([0.9, 1.0, 1.1, 1.0]),
                    foot_solimp_dmin=torch.tensor([0.9, 0.1, 0.5, 0.9]))
    if isinstance(first, MujocoBatchBackend):
        first.randomize(torch.arange(N), impratio=torch.tensor([1.0, 50.0, 1.0, 1.0]),
                        elliptic_cone=torch.tensor([0.0, 1.0, 1.0, 0.0]))
    for _ in range(20):
        first.set_dof_targets(_random_targets(first, gen))
        first.step()
    state = first.state_dict()
    actions = [_random_targets(first, gen) for _ in range(15)]
    second = make(N)
    second.load_state_dict(state)
    for targets in actions:
        for b in (first, second):
            b.set_dof_targets(targets)
            b.step()
    exact = first.device.type == "cpu"
    for name in ("root_pos", "root_quat", "dof_pos", "dof_vel", "foot_contact_forces", "foot_pos_world"):
        if exact:
            assert torch.equal(getattr(first, name), getattr(second, name)), name
        else:
            torch.testing.assert_close(getattr(first, name), getattr(second, name), atol=1e-3, rtol=0, msg=name)
    assert torch.equal(first.added_base_mass, second.added_base_mass)


def _agreement(reference: SimBackend, other: SimBackend, steps: int, scale: float, seed: int = 0) -> dict[str, float]:
    """Max absolute difference per quantity after ``steps`` policy steps of the same random targets."""
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        targets = _random_targets(reference, gen, scale)
        for b in (reference, other):
            b.set_dof_targets(targets.to(b.device))
            b.step()
    names = ("root_pos", "root_quat", "dof_pos", "dof_vel", "applied_torques", "foot_contact_forces",
             "foot_pos_world")
    out = {name: float((_cpu(getattr(reference, name)) - _cpu(getattr(other, name))).abs().max()) for name in names}
    out["qpos"] = float(np.abs(Probe(reference).state("qpos") - Probe(other).state("qpos")).max())
    out["contacts_equal"] = float(torch.equal(_cpu(reference.foot_contact), _cpu(other.foot_contact))
                                  and torch.equal(_cpu(reference.body_contact), _cpu(other.body_contact)))
    return out


@pytest.mark.parametrize("name", WARP_BACKENDS)
def test_warp_follows_the_cpu_backend_on_flat_ground(name: str) -> None:
    """Same model file, same start, per-world parameters and targets (home + 0.1 rad noise): 50 policy steps (1 s)
    agree to float32 precision (measured 1.5e-6 in qpos). Violent targets (0.3 rad) are chaotic: there the two drift
    apart after ~25 steps (6e-4 in qpos after 50), as any two float precisions would."""
    reference = _batch(16)
    other = BACKENDS[name](16)
    ids = torch.arange(16)
    dr = dict(friction=torch.linspace(0.5, 1.25, 16), kp_scale=torch.linspace(0.9, 1.1, 16),
              added_base_mass=torch.linspace(-1.0, 1.0, 16), com_offset=torch.linspace(-0.02, 0.02, 48).view(16, 3))
    for b in (reference, other):
        b.randomize(ids, **dr)
    diff = _agreement(reference, other, steps=50, scale=0.1)
    print("agreement after 50 policy steps:", {k: f"{v:.2g}" for k, v in diff.items()})
    assert diff["qpos"] < 1e-4 and diff["root_pos"] < 1e-4 and diff["dof_vel"] < 1e-2
    assert diff["foot_pos_world"] < 1e-4 and diff["foot_contact_forces"] < 0.05 and diff["applied_torques"] < 0.05
    assert diff["contacts_equal"] == 1.0


@pytest.mark.parametrize("name", WARP_BACKENDS)
def test_a_world_that_overflows_its_contacts_is_reset_and_reported(name: str) -> None:
    backend = BACKENDS[name](N, nconmax=1)  # four feet on the ground need four contacts per world
    flagged = torch.zeros(N, dtype=torch.bool)
    for _ in range(10):
        backend.step()
        flagged |= _cpu(backend.sim_failures())
    assert flagged.all()
    assert torch.isfinite(backend.root_pos).all()


def test_a_warp_device_that_is_not_there_is_named() -> None:
    pytest.importorskip("mujoco_warp")
    import warp as wp

    from leggedex.envs.backends import MujocoWarpBackend

    missing = f"cuda:{wp.get_cuda_device_count()}"
    with pytest.raises(ValueError, match=rf"device '{missing}' is not there.*device: cpu"):
        MujocoWarpBackend(2, device=missing)
    with pytest.raises(ValueError, match="'cpu', 'cuda' or 'cuda:N'"):
        MujocoWarpBackend(2, device="tpu")


def test_renders_the_world_it_is_asked_for(backend: SimBackend) -> None:
    state = _home_state(backend, 1)
    state["root_pos"][0, 2] = 0.6
    state["root_quat"][0] = torch.tensor([math.cos(math.pi / 4), math.sin(math.pi / 4), 0.0, 0.0])  # on its side
    backend.reset(torch.tensor([1]), **state)
    renderer = backend.renderer(64, 48)
    try:
        upright, again, on_its_side = renderer.render(0), renderer.render(0), renderer.render(1)
    finally:
        renderer.close()
    assert upright.shape == (48, 64, 3) and upright.dtype == np.uint8 and upright.std() > 5
    assert np.array_equal(upright, again)
    # the camera follows each world's base, so only the robot's pose tells the two apart: a few % of the pixels
    changed = (np.abs(upright.astype(int) - on_its_side.astype(int)) > 10).any(axis=-1)
    assert changed.mean() > 0.03
