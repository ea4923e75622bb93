"""Actuator and sensor randomization from config: what ``events.terms.physics`` and ``imu_bias`` draw lands in the
simulator, in the privileged observations and in the deploy contract; impossible settings are refused by key."""

from __future__ import annotations

import pytest
import torch

from leggedex.envs import LeggedLocomotion
from leggedex.envs.locomotion.config import EventConfig, ObservationConfig

from conftest import one_thread_backend

REALISM = {"joint_damping": [0.1, 2.0], "joint_friction": [0.0, 0.3], "armature_scale": [0.5, 2.0],
           "motor_strength": [0.9, 1.1], "action_latency_ms": [0.0, 20.0]}


def make_env(physics: dict | None = None, imu_bias: dict | None = None, latency_ms: list | None = None,
             **observations) -> LeggedLocomotion:
    terms = dict(EventConfig().terms)
    terms["physics"] = {**terms["physics"], **(physics if physics is not None else REALISM)}
    terms["push"] = None
    if imu_bias is not None:
        terms["imu_bias"] = imu_bias
    if latency_ms is not None:
        terms["observation_latency"] = {"latency_ms": latency_ms}
    return LeggedLocomotion(16, seed=1, backend=one_thread_backend, events=EventConfig(terms=terms),
                            observations=ObservationConfig(**observations))


def test_actuator_draws_land_in_the_simulator_and_the_privileged_group() -> None:
    env = make_env(privileged=True)
    sim = env.sim
    damping, friction = sim.joint_damping, sim.joint_friction
    assert damping.min() >= 0.1 and damping.max() <= 2.0 and damping.std() > 0.3  # per env and joint
    assert friction.min() >= 0.0 and friction.max() <= 0.3
    assert sim.armature_scale.min() >= 0.5 and sim.motor_strength.max() <= 1.1
    delay = sim.action_delay
    assert torch.equal(delay, delay.round()) and delay.min() >= 0 and delay.max() <= 4 and delay.unique().numel() > 2
    obs = env.reset()
    slices = env.obs_terms["privileged"]
    names = list(slices)
    assert names[names.index("kd_scale") + 1:names.index("kd_scale") + 6] == [
        "joint_damping", "joint_friction", "armature_scale", "motor_strength", "action_latency"]
    privileged = obs["privileged"]

    def term(name: str) -> torch.Tensor:
        s = slices[name]
        return privileged[:, s["start"]:s["start"] + s["size"]]

    torch.testing.assert_close(term("joint_damping"), damping)
    torch.testing.assert_close(term("motor_strength"), sim.motor_strength - 1)
    torch.testing.assert_close(term("action_latency")[:, 0], delay * 0.005)
    assert env.obs_groups["privileged"] == 94 + 4 * 12 + 1


def test_without_actuator_randomization_the_groups_keep_their_layout() -> None:
    env = make_env(physics={}, privileged=True, critic_privileged=True)
    assert env.obs_groups["privileged"] == 94
    assert "joint_damping" not in env.obs_terms["privileged"]
    assert (env.sim.action_delay == 0).all() and torch.allclose(env.sim.joint_damping, torch.tensor(0.1))


def test_a_latency_beyond_one_control_period_is_refused_naming_the_key() -> None:
    with pytest.raises(ValueError, match=r"events\.terms\.physics\.action_latency_ms .* one control period \(20 ms"):
        make_env(physics={"action_latency_ms": [0.0, 25.0]})
    with pytest.raises(ValueError, match=r"events\.terms\.physics\.joint_friction must be >= 0"):
        make_env(physics={"joint_friction": [-0.1, 0.2]})
    with pytest.raises(ValueError, match=r"events\.terms\.observation_latency\.latency_ms .* one control period"):
        make_env(physics={}, latency_ms=[0.0, 30.0])


def test_the_imu_bias_offsets_the_policy_readings_only_and_not_in_evaluation() -> None:
    env = make_env(physics={}, imu_bias={"ang_vel": 0.1, "gravity": 0.05}, add_noise=False, privileged=True)
    obs = env.reset()
    bias = env.imu_bias
    assert bias[:, :3].abs().max() <= 0.05 and bias[:, 3:].abs().max() <= 0.1 and bias.std() > 0.01
    frame = obs["critic"][:, :45]  # the noise-free policy frame the critic sees
    offset = obs["policy"] - frame
    torch.testing.assert_close(offset[:, 3:6], bias[:, :3])
    torch.testing.assert_close(offset[:, 6:9], bias[:, 3:] * 0.25)  # in the scaled observation
    assert offset[:, :3].abs().max() == 0 and offset[:, 9:].abs().max() == 0
    slices = env.obs_terms["privileged"]["imu_bias"]
    torch.testing.assert_close(obs["privileged"][:, slices["start"]:slices["start"] + 6], bias)
    env.set_evaluation_commands(torch.zeros(16, 3))
    obs = env.reset()
    torch.testing.assert_close(obs["policy"], obs["critic"][:, :45])


def test_the_observation_latency_reads_the_frame_between_the_last_two_steps() -> None:
    terms = dict(EventConfig().terms)
    terms.update(push=None, physics=None, observation_latency={"latency_ms": [10.0, 10.0]})
    env = LeggedLocomotion(8, seed=2, backend=one_thread_backend, events=EventConfig(terms=terms),
                           observations=ObservationConfig(add_noise=False, privileged=True),
                           random_initial_episode_length=False)
    obs = env.reset()
    torch.testing.assert_close(obs["policy"], obs["critic"][:, :45])  # nothing to lag behind after a reset
    previous = obs["critic"][:, :45]
    actions = 0.5 * torch.randn(8, 12, generator=torch.Generator().manual_seed(0))
    obs, _, dones, _ = env.step(actions)
    assert not dones.any()
    frame = obs["critic"][:, :45]
    expected = frame - 0.5 * (frame - previous)  # 10 ms of a 20 ms period
    own = torch.cat([torch.arange(0, 3), torch.arange(33, 45)])  # the command and the last action are not delayed
    expected[:, own] = frame[:, own]
    torch.testing.assert_close(obs["policy"], expected)
    assert (obs["policy"][:, 21:33] - frame[:, 21:33]).abs().max() > 1e-3  # joint velocities did lag
    s = env.obs_terms["privileged"]["observation_latency"]
    assert obs["privileged"][:, s["start"]].tolist() == pytest.approx([0.01] * 8)


def test_the_contract_says_what_training_randomized_and_when_a_robot_falls() -> None:
    env = make_env(imu_bias={"ang_vel": 0.1, "gravity": 0.05})
    contract = env.deploy_contract()
    randomized = contract["training_randomization"]
    assert randomized["events"]["physics"]["joint_damping"] == [0.1, 2.0]
    assert randomized["events"]["physics"]["action_latency_ms"] == [0.0, 20.0]
    assert randomized["events"]["imu_bias"] == {"ang_vel": 0.1, "gravity": 0.05}
    assert "push" not in randomized["events"]
    assert randomized["observation_noise"]["uniform_half_width"]["dof_vel"] == 1.5
    assert contract["terminations"]["bad_orientation"] == {"max_tilt_rad": 1.0}


def test_resume_restores_the_actuator_draws_the_imu_bias_and_the_sensing_delay() -> None:
    first = make_env(imu_bias={"ang_vel": 0.1, "gravity": 0.05}, latency_ms=[0.0, 20.0])
    first.reset()
    for _ in range(3):
        first.step(torch.zeros(16, 12))
    state = first.state_dict()
    second = make_env(imu_bias={"ang_vel": 0.1, "gravity": 0.05}, latency_ms=[0.0, 20.0])
    second.load_state_dict(state)
    actions = 0.3 * torch.randn(5, 16, 12, generator=torch.Generator().manual_seed(0))
    for a in actions:
        obs_a, rew_a, _, _ = first.step(a)
        obs_b, rew_b, _, _ = second.step(a)
        assert torch.equal(obs_a["policy"], obs_b["policy"]) and torch.equal(rew_a, rew_b)
    assert torch.equal(first.sim.action_delay, second.sim.action_delay)


CONTACT = {"foot_solimp_dmin": [0.01, 0.9], "foot_solimp_width": [0.001, 0.025], "impratio": [1.0, 100.0],
           "elliptic_cone_share": 0.5, "foot_torsional_friction": [0.0, 0.03]}


def test_contact_model_draws_land_in_the_simulator_the_privileged_group_and_the_contract() -> None:
    env = make_env(physics=CONTACT, privileged=True)
    sim = env.sim
    assert 0.01 <= sim.foot_solimp_dmin.min() and sim.foot_solimp_dmin.max() <= 0.9
    assert sim.foot_solimp_width.std() > 0.003 and sim.impratio.max() <= 100.0
    assert set(sim.elliptic_cone.tolist()) == {0.0, 1.0}
    obs = env.reset()
    slices = env.obs_terms["privileged"]
    names = list(slices)
    assert names[names.index("kd_scale") + 1:names.index("kd_scale") + 6] == [
        "foot_solimp_dmin", "foot_solimp_width", "impratio", "elliptic_cone", "foot_torsional_friction"]

    def term(name: str) -> torch.Tensor:
        s = slices[name]
        return obs["privileged"][:, s["start"]:s["start"] + s["size"]][:, 0]

    torch.testing.assert_close(term("foot_solimp_width"), 100 * sim.foot_solimp_width)
    torch.testing.assert_close(term("impratio"), torch.log10(sim.impratio))
    torch.testing.assert_close(term("elliptic_cone"), sim.elliptic_cone)
    torch.testing.assert_close(term("foot_torsional_friction"), 1000 * sim.foot_torsional_friction)
    physics = env.deploy_contract()["training_randomization"]["events"]["physics"]
    assert physics["elliptic_cone_share"] == 0.5 and physics["foot_solimp_dmin"] == [0.01, 0.9]


@pytest.mark.parametrize(("physics", "message"), [
    ({"foot_solimp_dmin": [0.5, 1.0]}, r"foot_solimp_dmin \[0.5, 1.0\] must stay below 1"),
    ({"foot_solimp_width": [0.0, 0.01]}, r"foot_solimp_width must be >= 1e-06"),
    ({"elliptic_cone_share": 1.5}, r"elliptic_cone_share must be in \[0, 1\]"),
])
def test_impossible_contact_settings_are_refused_naming_the_key(physics: dict, message: str) -> None:
    with pytest.raises(ValueError, match=rf"events\.terms\.physics\.{message}"):
        make_env(physics=physics)


def test_a_contact_parameter_the_backend_cannot_vary_is_refused_naming_it() -> None:
    """MuJoCo Warp has one friction cone and impratio per model: the task refuses before training starts."""
    from types import SimpleNamespace

    from leggedex.envs.backends import MujocoBatchBackend
    from leggedex.envs.locomotion.events import prepare_physics

    one_cone = MujocoBatchBackend.per_world_parameters - {"impratio", "elliptic_cone"}
    env = SimpleNamespace(sim=type("OneConeBackend", (), {"per_world_parameters": one_cone})())
    nominal = {name: None for name in ("friction", "added_base_mass", "com_offset", "kp_scale", "kd_scale")}
    with pytest.raises(ValueError, match=r"physics \['impratio', 'elliptic_cone_share'\]: the OneConeBackend backend "
                                         "cannot vary them per world"):
        prepare_physics(env, **nominal, impratio=[1.0, 10.0], elliptic_cone_share=0.5)  # type: ignore[arg-type]
    prepare_physics(env, **nominal, foot_solimp_dmin=[0.1, 0.5])  # type: ignore[arg-type]
