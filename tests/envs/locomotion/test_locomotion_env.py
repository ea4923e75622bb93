"""The Go2 velocity-tracking task over the MuJoCo batch backend."""

from __future__ import annotations

import pytest
import torch

from leggedex.envs import LeggedLocomotion, ObsSpec
from leggedex.envs.locomotion import CommandsConfig, EventConfig, RewardConfig, TerminationConfig
from leggedex.envs.locomotion.evaluation import evaluate_locomotion

from conftest import REPO, one_thread_backend


def with_entries(table: dict, **entries) -> dict:
    """A copy of a term table with some entries replaced."""
    return {**table, **entries}


def physics_with(**ranges) -> EventConfig:
    terms = EventConfig().terms
    return EventConfig(with_entries(terms, physics={**terms["physics"], **ranges}))


def make_env(num_envs: int = 8, **kwargs) -> LeggedLocomotion:
    kwargs.setdefault("backend", one_thread_backend)
    return LeggedLocomotion(num_envs, seed=0, **kwargs)


def test_observation_groups_come_from_the_layouts() -> None:
    env = make_env()
    assert env.obs_spec == ObsSpec({"policy": 45, "critic": 48}, num_actions=12)
    names = [t["name"] for t in env.policy_layout.describe()]
    assert names == ["command", "projected_gravity", "base_ang_vel", "dof_pos", "dof_vel", "last_action"]
    with torch.inference_mode():
        obs = env.reset()
    assert obs["policy"].shape == (8, 45) and obs["critic"].shape == (8, 48)
    gravity = obs["critic"][:, 3:6]
    assert torch.allclose(gravity[:, 2], torch.full((8,), -1.0), atol=0.05)  # upright at reset
    # noise only in the actor group: the critic's copy of the same terms is clean
    assert not torch.equal(obs["policy"], obs["critic"][:, :45])
    assert torch.allclose(obs["policy"], obs["critic"][:, :45], atol=0.2)


def test_step_returns_named_reward_statistics_time_outs_and_resets() -> None:
    env = make_env(episode_length_s=0.2, random_initial_episode_length=False)
    with torch.inference_mode():
        env.reset()
        for _ in range(9):
            obs, rewards, dones, extras = env.step(torch.zeros(8, 12))
            assert not dones.any()
        obs, rewards, dones, extras = env.step(torch.zeros(8, 12))
    assert env.max_episode_length == 10
    assert dones.all() and extras["time_outs"].all()
    assert {"rew_tracking_lin_vel", "rew_feet_air_time", "rew_collision"} <= set(extras["episode"])
    assert set(extras["episode"]) <= set(env.episode_keys)
    assert (env.episode_length_buf == 0).all()
    assert rewards.shape == (8,) and (rewards >= 0).all()  # only positive rewards


def test_a_robot_that_falls_terminates_without_time_out() -> None:
    env = make_env(num_envs=2, terminations=TerminationConfig(
        with_entries(TerminationConfig().terms, bad_orientation={"max_tilt_rad": 0.3})))
    with torch.inference_mode():
        env.reset()
        fell = torch.zeros(2, dtype=torch.bool)
        for _ in range(100):
            _, _, dones, extras = env.step(torch.full((2, 12), 3.0) * torch.tensor([1.0, -1.0]).repeat(6))
            fell |= dones & ~extras["time_outs"]
    assert fell.all()


def test_a_simulator_failure_resets_only_that_world_and_is_counted() -> None:
    env = make_env(num_envs=4, random_initial_episode_length=False)
    with torch.inference_mode():
        env.reset()
        env.step(torch.zeros(4, 12))
        env.sim._qvel[2, 8] = float("nan")
        obs, _, dones, extras = env.step(torch.zeros(4, 12))
    assert dones.tolist() == [False, False, True, False]
    assert extras["episode"]["sim_failures"] == 1
    assert torch.isfinite(obs["policy"]).all()
    assert env.episode_length_buf.tolist() == [2, 2, 0, 2]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rewards": RewardConfig({"tracking_lin_vell": 1.0})}, "unknown reward term"),
        ({"events": physics_with(friction=(0.0, 1.0))}, "events.terms.physics.friction"),
        ({"events": physics_with(kp_scale=(1.2, 0.8))}, "events.terms.physics.kp_scale"),
        ({"commands": CommandsConfig(lin_vel_x=(1.0, -1.0))}, "commands.lin_vel_x"),
        ({"terminations": TerminationConfig({"illegal_contact": {"bodies": ["torso"]}})}, "torso"),
        ({"backend": "isaacgym"}, "unknown backend"),
    ],
)
def test_bad_configuration_is_named_before_stepping(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        make_env(**kwargs)


def test_num_envs_must_be_positive() -> None:
    with pytest.raises(ValueError, match="num_envs"):
        LeggedLocomotion(0, backend=one_thread_backend)


def test_commands_are_resampled_within_ranges_and_small_ones_are_zeroed() -> None:
    env = make_env(num_envs=256, commands=CommandsConfig(lin_vel_x=(0.0, 1.0), lin_vel_y=(0.0, 0.0),
                                                         ang_vel_yaw=(-0.5, 0.5), standing_fraction=0.0))
    with torch.inference_mode():
        env.reset()
    cmd = env.commands.command
    assert (cmd[:, 0] >= 0).all() and (cmd[:, 0] <= 1).all() and (cmd[:, 2].abs() <= 0.5).all()
    assert ((cmd[:, 0] == 0) | (cmd[:, 0] >= 0.2)).all()


def test_evaluation_reports_every_command_with_a_standing_robot() -> None:
    env = make_env(num_envs=6, random_initial_episode_length=False)
    commands = [(0.5, 0.0, 0.0), (0.0, 0.0, 0.0)]
    results = evaluate_locomotion(env, lambda obs: torch.zeros(6, 12), commands, duration_s=2.0, settle_s=1.5)
    assert list(results) == ["vx+0.5_vy+0.0_yaw+0.0", "vx+0.0_vy+0.0_yaw+0.0"]
    assert results["vx+0.5_vy+0.0_yaw+0.0"]["error_vx"] == pytest.approx(0.5, abs=0.15)  # zero policy: no motion
    assert results["vx+0.0_vy+0.0_yaw+0.0"]["fall_rate"] == 0.0
    assert env.commands.fixed is None and not env._evaluating  # training settings restored


def test_evaluation_measures_the_gaits_left_right_asymmetry() -> None:
    """Standing on four feet is symmetric; holding the left front foot up (thigh back, calf bent) is not: about half
    of the foot pairs' air time differs."""
    env = make_env(num_envs=4, random_initial_episode_length=False)
    lifted = torch.zeros(4, 12)
    lifted[:, 1] = lifted[:, 2] = -3.0
    name = "vx+0.0_vy+0.0_yaw+0.0"
    for actions, low, high in ((torch.zeros(4, 12), 0.0, 0.05), (lifted, 0.4, 0.55)):
        result = evaluate_locomotion(env, lambda obs, a=actions: a, [(0.0, 0.0, 0.0)], duration_s=2.0,
                                     settle_s=1.0)[name]
        assert low <= result["foot_air_asymmetry"] <= high
        assert result["error_vx"] >= abs(result["measured_vx"]) - 1e-6  # the mean of |v| bounds |mean v|


def test_state_dict_continues_bit_exactly() -> None:
    torch.manual_seed(0)
    actions = [torch.randn(6, 12) * 0.5 for _ in range(40)]
    env = make_env(num_envs=6, episode_length_s=0.5)  # short episodes: resets happen after the snapshot too
    with torch.inference_mode():
        env.reset()
        for a in actions[:20]:
            env.step(a)
        snapshot = env.state_dict()
        expected = [env.step(a) for a in actions[20:]]
    other = LeggedLocomotion(6, seed=99, backend=one_thread_backend, episode_length_s=0.5)
    with torch.inference_mode():
        other.reset()
        other.load_state_dict(snapshot)
        replayed = [other.step(a) for a in actions[20:]]
    for (obs_a, rew_a, done_a, _), (obs_b, rew_b, done_b, _) in zip(expected, replayed):
        assert torch.equal(obs_a["policy"], obs_b["policy"]) and torch.equal(obs_a["critic"], obs_b["critic"])
        assert torch.equal(rew_a, rew_b) and torch.equal(done_a, done_b)
    assert any(d.any() for _, _, d, _ in expected)


def test_command_curriculum_widens_lin_x_only_while_tracking_is_good() -> None:
    from leggedex.envs.locomotion.commands import VelocityCommands

    cfg = CommandsConfig(lin_vel_x=(-0.5, 0.5), curriculum=True, curriculum_step=0.25, max_lin_vel_x=1.0)
    commands = VelocityCommands(cfg, 4, torch.device("cpu"), torch.Generator().manual_seed(0))
    commands.update_curriculum(0.5)
    assert commands.lin_vel_x == [-0.5, 0.5]
    for _ in range(5):
        commands.update_curriculum(0.9)
    assert commands.lin_vel_x == [-1.0, 1.0]


def test_the_env_decides_the_command_curriculum_once_per_episode_length() -> None:
    # standing still under zero commands tracks perfectly (fraction ~1 > 0.8 for a whole episode)
    cfg = CommandsConfig(lin_vel_x=(0.0, 0.0), lin_vel_y=(0.0, 0.0), ang_vel_yaw=(0.0, 0.0), curriculum=True,
                         curriculum_step=0.5, max_lin_vel_x=1.0)
    options = dict(num_envs=16, episode_length_s=0.2, commands=cfg,
                   events=EventConfig(with_entries(EventConfig().terms, push=None)),
                   rewards=RewardConfig({"tracking_lin_vel": {"weight": 1.0, "sigma": 0.25}}))
    spread = make_env(**options)  # episodes spread over the first 10 steps end a few at a time
    aligned = make_env(**options, random_initial_episode_length=False)  # all end at step 10
    widths = {"spread": [], "aligned": []}
    with torch.inference_mode():
        for name, env in (("spread", spread), ("aligned", aligned)):
            env.reset()
            for step in range(10):
                env.step(torch.zeros(16, 12))
                widths[name].append(list(env.commands.lin_vel_x))
                if name == "spread" and step == 8:
                    assert env.command_curriculum.tracking[1] > 0  # some episodes have ended by now
            if name == "spread":
                assert widths[name][:9] == [[0.0, 0.0]] * 9  # episodes ended, but no decision before step 10
    assert widths["aligned"][:9] == [[0.0, 0.0]] * 9 and widths["aligned"][9] == [-0.5, 0.5]
    assert aligned.command_curriculum.tracking.tolist() == [0.0, 0.0]  # the decision consumed what had been gathered


def test_heading_mode_turns_toward_the_commanded_heading() -> None:
    from leggedex.envs.locomotion.commands import VelocityCommands

    cfg = CommandsConfig(heading_command=True, heading_stiffness=0.5, ang_vel_yaw=(-1.0, 1.0))
    commands = VelocityCommands(cfg, 3, torch.device("cpu"), torch.Generator().manual_seed(0))
    commands.heading[:] = torch.tensor([1.0, -1.0, 3.0])
    commands.update_heading(torch.tensor([0.0, 0.0, -3.0]))  # the last one is closer the other way round
    assert torch.allclose(commands.command[:, 2], torch.tensor([0.5, -0.5, -0.5 * (2 * torch.pi - 6.0)]))


def test_heading_share_keeps_the_sampled_yaw_rate_for_the_other_commands() -> None:
    from leggedex.envs.locomotion.commands import VelocityCommands

    def commands(share: float) -> VelocityCommands:
        cfg = CommandsConfig(heading_command=True, heading_share=share, standing_fraction=0.0)
        made = VelocityCommands(cfg, 4000, torch.device("cpu"), torch.Generator().manual_seed(0))
        made.resample(torch.arange(4000))
        return made

    mixed = commands(0.25)
    sampled = mixed.command[:, 2].clone()
    mixed.update_heading(mixed.heading.clone() - 0.4)  # every heading error is 0.4 rad: a turn of 0.2 rad/s
    turning = mixed.in_heading_mode
    assert 0.22 < turning.float().mean() < 0.28
    assert torch.allclose(mixed.command[turning, 2], torch.full((int(turning.sum()),), 0.2))
    assert torch.equal(mixed.command[~turning, 2], sampled[~turning])
    whole = commands(1.0)  # the default draws nothing more: the commands of older configs are unchanged
    assert bool(whole.in_heading_mode.all())
    assert torch.equal(whole.heading, commands(1.0).heading)
    assert not torch.equal(whole.generator.get_state(), mixed.generator.get_state())
    with pytest.raises(ValueError, match="commands.heading_share must be in"):
        CommandsConfig(heading_share=1.5).validate()


def test_a_description_that_does_not_match_its_model_file_is_refused_with_the_names(tmp_path) -> None:
    from dataclasses import replace

    from leggedex.robots import GO2

    renamed = tmp_path / "go2_renamed.xml"
    renamed.write_text(GO2.model_path.read_text().replace("FL_hip_joint", "FL_abduction_joint")
                       .replace('"RR_foot"', '"RR_toe"').replace('name="RL_thigh"', 'name="RL_upper_leg"'))
    with pytest.raises(ValueError, match=r"missing in the model \['FL_hip_joint'\], hinge joints of the model not "
                                         r"listed \['FL_abduction_joint'\].*feet: no geoms named \['RR_foot'\]"
                                         r".*contact_bodies: no bodies named \['RL_thigh'\]"):
        make_env(robot=replace(GO2, model_file=str(renamed)))
    with pytest.raises(ValueError, match=r"default_joint_pos has 12 values for 11 joints"):
        replace(GO2, joints=GO2.joints[:11], torque_limits=GO2.torque_limits[:11])
    with pytest.raises(FileNotFoundError, match="model_file"):
        make_env(robot=replace(GO2, model_file=str(tmp_path / "nothing.xml")))




def test_command_stats_counts_more_sustained_turns_with_a_smaller_heading_share() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("command_stats", REPO / "scripts" / "command_stats.py")
    stats = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stats)
    def config(share: float) -> CommandsConfig:
        return CommandsConfig(heading_command=True, heading_share=share, standing_fraction=0.0)

    shares = {share: stats.turn_shares(config(share), 2000, 10.0, 0.02, 0.4, 0.2) for share in (1.0, 0.5, 0.0)}
    assert shares[1.0][0] < shares[0.5][0] < shares[0.0][0]  # sampled yaw rates do not decay as the robot turns
    # yaw rates uniform on [-1, 1], never resampled: 60 % of the steps turn at 0.4 rad/s or more
    assert shares[0.0][0] == pytest.approx(0.6, abs=0.03)
    assert all(in_place <= turning for turning, in_place in shares.values())
