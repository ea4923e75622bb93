"""Every term of the locomotion task's tables on its own, against values computed by hand.

The terms are functions of the env's per-step state, so a namespace holding that state stands in for the env.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from leggedex.envs.locomotion import observations, rewards, terminations
from leggedex.envs.locomotion.config import EventConfig, RewardConfig, TerminationConfig
from leggedex.envs.locomotion.curricula import CommandCurriculum, terrain_levels
from leggedex.envs.locomotion.events import EVENTS, ResetState, bind_events
from leggedex.envs.locomotion.ground import FlatGround
from leggedex.envs.term_table import TermTable


def tensor(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def state(**overrides) -> SimpleNamespace:
    """Two envs, two joints, two feet; what the terms read, with round numbers."""
    env = SimpleNamespace(
        num_envs=2, num_actions=2, step_dt=0.5, device=torch.device("cpu"), generator=torch.Generator(),
        commands=SimpleNamespace(command=tensor([1.0, 0.0, 0.5], [0.0, 0.0, 0.0])),
        base_lin_vel=tensor([0.5, 0.5, 0.2], [0.0, 0.0, -0.1]),
        base_ang_vel=tensor([0.1, 0.2, 0.0], [0.0, 0.0, 0.3]),
        projected_gravity=tensor([0.6, 0.0, -0.8], [0.0, 0.0, -1.0]),
        base_height=tensor(0.2, 0.35),
        torques=tensor([1.0, -2.0], [0.0, 3.0]),
        dof_vel=tensor([2.0, 1.0], [0.0, -1.0]),
        last_dof_vel=tensor([1.0, 1.0], [0.0, 0.0]),
        actions=tensor([1.0, 0.0], [0.5, 0.5]),
        last_actions=tensor([0.0, 0.0], [0.5, 0.0]),
        last_last_actions=tensor([1.0, 1.0], [0.0, 0.0]),
        penalized_contact=torch.tensor([[True, True, False], [False, False, False]]),
        terminated=torch.tensor([True, True]),
        time_outs=torch.tensor([False, True]),
        dof_pos=tensor([0.9, -0.2], [0.1, 0.5]),
        default_dof_pos=tensor(0.1, 0.2),
        dof_pos_limits=tensor([-1.0, 1.0], [-0.5, 0.5]),
        hip_ids=torch.tensor([0]),
        feet_air_time_at_touchdown=tensor([0.7, 0.2], [0.9, 0.0]),
        first_contact=tensor([1.0, 1.0], [1.0, 0.0]),
        foot_contact=torch.tensor([[True, False], [False, False]]),
        foot_height=tensor([0.0, 0.08], [0.13, 0.03]),
        foot_vel_xy=torch.tensor([[[3.0, 4.0], [1.0, 0.0]], [[0.0, 2.0], [0.0, 0.0]]]),
    )
    for key, value in overrides.items():
        setattr(env, key, value)
    return env


# env 0 moves (|command| > 0.1), env 1 stands
REWARD_CASES = {
    "tracking_lin_vel": ({"sigma": 0.25}, [math.exp(-0.5 / 0.25), 1.0]),
    "tracking_ang_vel": ({"sigma": 0.25}, [math.exp(-0.25 / 0.25), math.exp(-0.09 / 0.25)]),
    "lin_vel_z": ({}, [0.04, 0.01]),
    "ang_vel_xy": ({}, [0.05, 0.0]),
    "orientation": ({}, [0.36, 0.0]),
    "base_height": ({"target": 0.3}, [0.01, 0.0]),
    "torques": ({}, [5.0, 9.0]),
    "dof_power": ({}, [4.0, 3.0]),
    "dof_acc": ({}, [4.0, 4.0]),  # ((2 - 1) / 0.5)^2 and ((-1 - 0) / 0.5)^2
    "action_rate": ({}, [1.0, 0.25]),
    "action_smoothness": ({}, [5.0, 0.5]),  # a - 2 a_1 + a_2: (2, 1) and (-0.5, 0.5)
    "collision": ({}, [2.0, 0.0]),
    "termination": ({}, [1.0, 0.0]),  # a time-out is not a failure
    "dof_pos_limits": ({"soft_limit": 0.8}, [0.1, 0.1]),  # soft ranges [-0.8, 0.8] and [-0.4, 0.4]
    "feet_air_time": ({"target": 0.5}, [0.2 - 0.3, 0.0]),  # standing envs get nothing
    "foot_clearance": ({"target": 0.08}, [1.0, 0.0]),  # the swing foot of env 0 is at the target
    "hip_pos": ({}, [0.64, 0.0]),
    "dof_pos_stand_still": ({}, [0.0, 0.3]),
    "feet_contact_stand_still": ({}, [0.0, 0.0]),
    "feet_slip": ({}, [5.0, 0.0]),  # only feet in contact slip
}


def test_every_reward_term_has_a_hand_computed_case() -> None:
    assert set(REWARD_CASES) == set(rewards.REWARDS.names())


@pytest.mark.parametrize("name", sorted(REWARD_CASES))
def test_reward_term(name: str) -> None:
    params, expected = REWARD_CASES[name]
    term = rewards.REWARDS.bind(name, params, state())
    assert torch.allclose(term(state()), torch.tensor(expected), atol=1e-6), name


def test_reward_entries_are_a_weight_or_a_weight_beside_the_parameters() -> None:
    env = state()
    bound = rewards.bind_rewards({"lin_vel_z": -2.0, "base_height": {"weight": -10.0, "target": 0.3},
                                  "hip_pos": 0.0}, env)
    assert {name: weight for name, (_, weight) in bound.items()} == {"lin_vel_z": -2.0, "base_height": -10.0}
    assert bound["base_height"][0].params == {"target": 0.3}
    for terms, message in (({"base_height": -10.0}, r"rewards.terms.base_height needs parameter\(s\) \['target'\]"),
                           ({"base_height": {"target": 0.3}}, "needs a 'weight'"),
                           ({"lin_vel_z": {"weight": 1.0, "sigma": 1.0}}, r"unknown parameter\(s\) \['sigma'\]"),
                           ({"hip_pos": {"weight": 0.0, "target": 1.0}}, "hip_pos: unknown parameter"),
                           ({"tracking_lin_vell": 1.0}, "unknown reward term 'tracking_lin_vell'")):
        with pytest.raises(ValueError, match=message):
            rewards.bind_rewards(terms, env)


def test_the_default_tables_bind() -> None:
    env = state(sim=SimpleNamespace(contact_body_names=["base", "FL_thigh"]))
    assert len(rewards.bind_rewards(RewardConfig().terms, env)) == 14  # foot_clearance has weight 0
    assert [t.name for t in terminations.bind_terminations(TerminationConfig().terms, env)] == [
        "illegal_contact", "bad_orientation", "base_too_low"]


def test_termination_terms() -> None:
    env = state(body_contact=torch.tensor([[False, True], [True, False]]),
                sim=SimpleNamespace(contact_body_names=["base", "FL_thigh"]))
    table = terminations.TERMINATIONS
    assert table.bind("illegal_contact", {"bodies": ["base"]}, env)(env).tolist() == [False, True]
    assert table.bind("illegal_contact", {"bodies": ["FL_thigh", "base"]}, env)(env).tolist() == [True, True]
    # gravity z -0.8 is a tilt of acos(0.8) = 0.6435 rad
    assert table.bind("bad_orientation", {"max_tilt_rad": 0.6}, env)(env).tolist() == [True, False]
    assert table.bind("bad_orientation", {"max_tilt_rad": 0.7}, env)(env).tolist() == [False, False]
    assert table.bind("base_too_low", {"min_height": 0.3}, env)(env).tolist() == [True, False]
    with pytest.raises(ValueError, match=r"bodies \['torso'\] are not contact bodies"):
        table.bind("illegal_contact", {"bodies": ["torso"]}, env)
    bound = terminations.bind_terminations({"bad_orientation": None, "base_too_low": {"min_height": 0.3}}, env)
    assert [t.name for t in bound] == ["base_too_low"]
    with pytest.raises(ValueError, match="unknown termination term 'tilt'"):
        terminations.bind_terminations({"tilt": None}, env)


def observation_state() -> SimpleNamespace:
    ground = FlatGround(2, torch.device("cpu"))
    sim = SimpleNamespace(friction=tensor(0.8, 1.2), added_base_mass=tensor(0.5, -1.0),
                          com_offset=tensor([0.01, 0.0, 0.0], [0.0, 0.0, -0.02]),
                          kp_scale=tensor([1.1, 0.9], [1.0, 1.0]), kd_scale=tensor([1.0, 1.2], [0.8, 1.0]),
                          joint_damping=tensor([0.1, 2.0], [0.5, 0.5]), joint_friction=tensor([0.0, 0.2], [0.1, 0.0]),
                          armature_scale=tensor([0.5, 2.0], [1.0, 1.0]), motor_strength=tensor([0.9, 1.0], [1.1, 1.0]),
                          action_delay=tensor(0.0, 3.0), sim_dt=0.005, foot_solimp_dmin=tensor(0.9, 0.015),
                          foot_solimp_width=tensor(0.001, 0.022), impratio=tensor(1.0, 100.0),
                          elliptic_cone=tensor(0.0, 1.0), foot_torsional_friction=tensor(0.0, 0.02))
    return state(sim=sim, ground=ground, push_vel=tensor([0.3, -0.1], [0.0, 0.0]), foot_radius=0.02,
                 imu_bias=tensor([0.01, 0.0, -0.02, 0.1, 0.0, 0.0], [0.0] * 6),
                 observation_latency=tensor(0.0, 0.01),
                 body_contact=torch.tensor([[True, False, False, True], [False, True, True, False]]),
                 leg_body_ids={"thigh": torch.tensor([0, 1]), "calf": torch.tensor([2, 3])},
                 foot_pos=torch.tensor([[[0.0, 0.0, 0.02], [1.0, 0.0, 0.12]], [[0.0, 0.0, 2.0], [0.0, 0.0, 0.0]]]),
                 base_pos=tensor([0.0, 0.0, 0.4], [1.0, 1.0, 0.25]), base_heading=tensor(0.0, math.pi / 2))


OBSERVATION_CASES = {
    "command": ({}, [[1.0, 0.0, 0.5], [0.0, 0.0, 0.0]]),
    "projected_gravity": ({}, [[0.6, 0.0, -0.8], [0.0, 0.0, -1.0]]),
    "base_ang_vel": ({}, [[0.1, 0.2, 0.0], [0.0, 0.0, 0.3]]),
    "base_lin_vel": ({}, [[0.5, 0.5, 0.2], [0.0, 0.0, -0.1]]),
    "dof_pos": ({}, [[0.8, -0.4], [0.0, 0.3]]),  # relative to the home pose
    "dof_vel": ({}, [[2.0, 1.0], [0.0, -1.0]]),
    "last_action": ({}, [[1.0, 0.0], [0.5, 0.5]]),
    "friction": ({}, [[0.8], [1.2]]),
    "added_base_mass": ({}, [[0.5], [-1.0]]),
    "com_offset": ({}, [[0.01, 0.0, 0.0], [0.0, 0.0, -0.02]]),
    "push_vel": ({}, [[0.3, -0.1], [0.0, 0.0]]),
    "kp_scale": ({}, [[0.1, -0.1], [0.0, 0.0]]),  # scale - 1
    "kd_scale": ({}, [[0.0, 0.2], [-0.2, 0.0]]),
    "joint_damping": ({}, [[0.1, 2.0], [0.5, 0.5]]),
    "joint_friction": ({}, [[0.0, 0.2], [0.1, 0.0]]),
    "armature_scale": ({}, [[-0.5, 1.0], [0.0, 0.0]]),  # scale - 1
    "motor_strength": ({}, [[-0.1, 0.0], [0.1, 0.0]]),
    "action_latency": ({}, [[0.0], [0.015]]),  # 3 physics steps of 5 ms
    "foot_solimp_dmin": ({}, [[0.9], [0.015]]),
    "foot_solimp_width": ({}, [[0.1], [2.2]]),  # cm
    "impratio": ({}, [[0.0], [2.0]]),  # log10
    "elliptic_cone": ({}, [[0.0], [1.0]]),
    "foot_torsional_friction": ({}, [[0.0], [20.0]]),  # mm
    "imu_bias": ({}, [[0.01, 0.0, -0.02, 0.1, 0.0, 0.0], [0.0] * 6]),
    "observation_latency": ({}, [[0.0], [0.01]]),
    "thigh_contact": ({}, [[1.0, 0.0], [0.0, 1.0]]),
    "calf_contact": ({}, [[0.0, 1.0], [1.0, 0.0]]),
    "foot_contact": ({}, [[1.0, 0.0], [0.0, 0.0]]),
    # soles at 0, 0.1, 1.98 (clipped to 1) and -0.02 above the flat ground, the same at all 9 points
    "foot_heights": ({"spacing": 0.05}, [[0.0] * 9 + [0.1] * 9, [1.0] * 9 + [-0.02] * 9]),
    "foot_normals": ({}, [[0.0, 0.0, 1.0] * 2] * 2),
    "height_scan": ({"points": (1, 2), "spacing": 0.1, "offset": 0.3}, [[0.1, 0.1], [-0.05, -0.05]]),
}


def test_every_observation_term_has_a_hand_computed_case_and_a_unit() -> None:
    assert set(OBSERVATION_CASES) == set(observations.OBSERVATIONS.names())
    assert all(observations.unit(name) for name in OBSERVATION_CASES)
    assert "rad/s" in observations.unit("base_ang_vel") and "m/s" in observations.unit("base_lin_vel")


@pytest.mark.parametrize("name", sorted(OBSERVATION_CASES))
def test_observation_term(name: str) -> None:
    params, expected = OBSERVATION_CASES[name]
    env = observation_state()
    value = observations.OBSERVATIONS.bind(name, params, env)(env)
    assert torch.allclose(value, torch.tensor(expected), atol=1e-6), (name, value)


def test_the_height_scan_grid_turns_with_the_base_and_reads_the_ground_under_it() -> None:
    env = observation_state()
    sampled = []
    env.ground.height = lambda points: (sampled.append(points), points[..., 0])[1]  # ground z = world x
    observations.OBSERVATIONS.bind("height_scan", {"points": (2, 1), "spacing": 1.0, "offset": 0.0}, env)(env)
    # grid x = -0.5, +0.5 ahead of the base: env 0 faces +x at x = 0, env 1 faces +y at (1, 1)
    assert torch.allclose(sampled[0], torch.tensor([[[-0.5, 0.0], [0.5, 0.0]], [[1.0, 0.5], [1.0, 1.5]]]),
                          atol=1e-6)


def test_contact_observations_need_the_leg_bodies() -> None:
    env = observation_state()
    env.leg_body_ids = {"thigh": None, "calf": None}
    env.sim.foot_names, env.robot = ["FL", "FR"], SimpleNamespace(name="stick", leg_bodies={})
    with pytest.raises(ValueError, match="leg_bodies 'thigh'"):
        observations.OBSERVATIONS.bind("thigh_contact", {}, env)


class RecordingSim:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.home_base_height = 0.3

    def randomize(self, ids, **draws) -> None:
        self.calls.append(("randomize", {"ids": ids.tolist(), **draws}))

    def reset(self, ids, *state) -> None:
        self.calls.append(("reset", {"ids": ids.tolist(), "state": state}))

    def set_dof_targets(self, targets) -> None:
        self.calls.append(("targets", {"targets": targets}))


def event_state(seed: int = 0) -> SimpleNamespace:
    env = observation_state()
    env.generator = torch.Generator().manual_seed(seed)
    env.sim = RecordingSim()
    env.base_quat = torch.tensor([[1.0, 0.0, 0.0, 0.0]] * 2)
    env.joint_targets = lambda: torch.full((2, 2), 7.0)
    env.push_vel = torch.zeros(2, 2)
    return env


def test_reset_events_draw_the_new_state_in_their_ranges() -> None:
    env = event_state()
    ids = torch.tensor([0, 1])
    reset = ResetState.home(env, ids)
    assert reset.height == 0.3 and reset.quat.tolist() == [[1.0, 0.0, 0.0, 0.0]] * 2
    assert torch.equal(reset.dof_pos, env.default_dof_pos.expand(2, 2))
    EVENTS.bind("reset_joints", {"position_scale": [2.0, 2.0], "soft_limit": 0.5}, env)(env, ids, reset)
    # 2 x home (0.2, 0.4), clamped to the soft ranges [-0.5, 0.5] and [-0.25, 0.25]
    assert torch.allclose(reset.dof_pos, tensor([0.2, 0.25], [0.2, 0.25]))
    EVENTS.bind("reset_base", {"max_yaw": 0.5, "max_velocity": 0.2, "height_offset": 0.02}, env)(env, ids, reset)
    yaw = 2 * torch.atan2(reset.quat[:, 3], reset.quat[:, 0])
    assert (yaw.abs() <= 0.5).all() and (reset.quat[:, 1:3] == 0).all()
    assert (reset.lin_vel.abs() <= 0.2).all() and (reset.ang_vel.abs() <= 0.2).all() and reset.lin_vel.any()
    assert reset.height == pytest.approx(0.32)
    assert torch.equal(reset.root_pos, torch.zeros(2, 3))  # flat ground: no spawn area to spread over


def test_physics_randomization_draws_each_range_and_leaves_null_ones_nominal() -> None:
    env = event_state()
    ranges = {"friction": [0.5, 0.5], "added_base_mass": None, "com_offset": [-0.1, 0.1], "kp_scale": [2.0, 3.0],
              "kd_scale": None}
    EVENTS.bind("physics", ranges, env)(env, torch.tensor([1]), None)
    (kind, call), = env.sim.calls
    assert kind == "randomize" and call["ids"] == [1]
    assert call["friction"].tolist() == [0.5] and call["added_base_mass"] is None and call["kd_scale"] is None
    assert call["com_offset"].shape == (1, 3) and (call["com_offset"].abs() <= 0.1).all()
    assert call["kp_scale"].shape == (1, 2) and ((call["kp_scale"] >= 2) & (call["kp_scale"] <= 3)).all()
    with pytest.raises(ValueError, match=r"events.terms.physics.friction must be >= 1e-06"):
        EVENTS.bind("physics", {**ranges, "friction": [0.0, 1.0]}, env)


def test_a_push_sets_the_horizontal_world_velocity_and_restores_the_joint_targets() -> None:
    env = event_state()
    EVENTS.bind("push", {"max_vel": 1.0}, env)(env, torch.tensor([1]), None)
    (reset, call), (targets, target_call) = env.sim.calls
    lin_vel = call["state"][2]
    assert reset == "reset" and call["ids"] == [1]
    assert lin_vel[0, 2] == pytest.approx(-0.1)  # the vertical velocity is kept
    assert torch.equal(env.push_vel[1], lin_vel[0, :2]) and (env.push_vel[0] == 0).all()
    assert targets == "targets" and (target_call["targets"] == 7.0).all()
    quiet = event_state()
    EVENTS.bind("push", {"max_vel": 0.0}, quiet)(quiet, torch.tensor([1]), None)
    assert quiet.sim.calls == []


def test_event_entries_name_their_mode_and_interval() -> None:
    env = event_state()
    env.step_dt = 0.02
    events = bind_events(EventConfig().terms, env)
    assert [(e.term.name, e.modes, e.interval_steps) for e in events] == [
        ("reset_joints", ("reset",), 0), ("reset_base", ("reset",), 0), ("physics", ("startup",), 0),
        ("push", ("interval",), 400)]
    physics = {**EventConfig().terms["physics"], "mode": ["startup", "reset"]}
    assert bind_events({"physics": physics, "push": None}, env)[0].modes == ("startup", "reset")
    for terms, message in (({"push": {"max_vel": 1.0}}, "needs a positive interval_s"),
                           ({"push": {"interval_s": 1.0, "max_vel": -1.0}}, "push.max_vel must be >= 0"),
                           ({"physics": {**physics, "mode": "sometimes"}}, "physics.mode must be one or more of"),
                           ({"reset_base": {"max_yaw": 1.0, "max_velocity": 0.0, "height_offset": 0.0,
                                            "interval_s": 2.0}}, "has no interval"),
                           ({"shake": None}, "unknown event term 'shake'")):
        with pytest.raises(ValueError, match=message):
            bind_events(terms, env)


def test_terrain_levels_use_the_walked_and_the_commanded_distance() -> None:
    seen = {}

    class Ground(FlatGround):
        curriculum = True

        def update_curriculum(self, ids, walked, commanded, generator) -> None:
            seen.update(ids=ids.tolist(), walked=walked.tolist(), commanded=commanded.tolist())

    env = observation_state()
    env.ground, env.max_episode_length = Ground(2, torch.device("cpu")), 10
    env.base_pos = tensor([3.0, 4.0, 0.3], [1.0, 0.0, 0.3])
    terrain_levels(env, torch.tensor([0, 1]))
    # walked from the spawn origin (0, 0); commanded |v_xy| * 10 steps * 0.5 s
    assert seen == {"ids": [0, 1], "walked": [5.0, 1.0], "commanded": [5.0, 0.0]}


def test_the_command_curriculum_decides_once_per_period_on_what_it_gathered() -> None:
    decisions = []
    commands = SimpleNamespace(cfg=SimpleNamespace(curriculum=True), update_curriculum=decisions.append)
    curriculum = CommandCurriculum(commands, period=3)
    curriculum.gather(torch.tensor([0.9, 0.7]))
    curriculum.step()
    curriculum.gather(torch.tensor([1.0]))
    curriculum.step()
    assert decisions == []
    curriculum.step()
    assert decisions == [pytest.approx(0.8666667)] and curriculum.tracking.tolist() == [0.0, 0.0]
    for _ in range(3):
        curriculum.step()
    assert len(decisions) == 1  # nothing gathered, nothing decided
    restored = CommandCurriculum(commands, period=3)
    curriculum.gather(torch.tensor([0.5]))
    restored.load_state_dict(curriculum.state_dict())
    assert restored.step_count == 6 and restored.tracking.tolist() == [0.5, 1.0]


def test_a_term_table_checks_names_and_parameters_against_the_signatures() -> None:
    table = TermTable("demo", "demo.terms")

    @table.term
    def scaled(env, *, factor: float, offset: float = 0.0):
        return env * factor + offset

    with pytest.raises(ValueError, match="registered twice"):
        table.term(scaled)
    assert table.bind("scaled", {"factor": 2.0}, None)(3.0) == 6.0
    assert table.bind("scaled", {"factor": 2.0, "offset": 1.0}, None)(3.0) == 7.0
    with pytest.raises(ValueError, match=r"demo.terms.scaled needs parameter\(s\) \['factor'\]"):
        table.bind("scaled", {}, None)
    with pytest.raises(ValueError, match="unknown demo term 'scale' in demo.terms; known: \\['scaled'\\]"):
        table.bind("scale", {}, None)
