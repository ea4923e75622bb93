"""``leggedex sim2sim``: the contract-only MuJoCo loop reproduces the env step by step on the project's own model,
runs another Go2 model file, and refuses a contract or model it cannot run, naming what is wrong."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch

from leggedex.cli import main
from leggedex.cli.export import deploy_contract, export_onnx, write_contract
from leggedex.deploy import ContractError, MujocoRobotLoop, RobotModelError, check_contract, prepare_robot_model
from leggedex.envs import LeggedLocomotion
from leggedex.envs.locomotion.config import EventConfig
from leggedex.methods import PPO
from leggedex.robots import GO2

from conftest import REPO, one_thread_backend

MENAGERIE_GO2 = REPO.parent / "shared" / "reference" / "go2_menagerie" / "go2.xml"
COMMANDS = torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.0, 0.5], [1.0, 0.0, 0.0], [0.0, 0.5, 0.0]])
STILL_START = {"reset_joints": {"position_scale": [0.8, 1.2], "soft_limit": 0.9},
               "reset_base": {"max_yaw": 3.0, "max_velocity": 0.0, "height_offset": 0.0}}


def make_env() -> LeggedLocomotion:
    """Nominal physics (no randomization, no pushes), varied start poses and headings, at rest."""
    return LeggedLocomotion(4, seed=5, backend=one_thread_backend, events=EventConfig(terms=STILL_START))


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, PPO]:
    torch.manual_seed(0)
    env = make_env()
    method = PPO(actor_hidden_dims=[32, 32], critic_hidden_dims=[32], init_noise_std=1.0)
    method.build(env.obs_spec)
    with torch.no_grad():  # a policy that moves the legs clearly, so that the comparison means something
        method.actor_critic.actor[-1].weight.mul_(4.0)
    out = tmp_path_factory.mktemp("sim2sim_export")
    export_onnx(method, out / "policy.onnx")
    write_contract(deploy_contract(method, env), out / "deploy.json")
    env.close()
    return out / "deploy.json", method


def test_the_loop_follows_the_env_step_by_step_on_the_projects_model(exported) -> None:
    """Same start state, same policy: the observations agree to float32 precision at the start, and over 1 s
    (50 control periods, joints moving up to ~0.7 rad from home) the actions stay within 1e-4 and the joint angles
    within 1e-5 rad (measured 1.6e-7): the loop's PD in numpy through torque motors is the env's position servo."""
    contract_path, method = exported
    contract = json.loads(contract_path.read_text())
    env = make_env()
    env.set_evaluation_commands(COMMANDS)
    obs = env.reset()
    robot = prepare_robot_model(GO2.model_file, contract["env"]["joint_names"])
    assert robot.added == ["a ground plane", "torque motors"]
    loop = MujocoRobotLoop(contract, robot, contract_path.parent / "policy.onnx", num_robots=4)
    loop.reset(qpos=np.array(env.sim.batch.bind("qpos")))
    loop.command[:] = COMMANDS.numpy()
    np.testing.assert_allclose(loop.observations()["policy"], obs["policy"].numpy(), atol=1e-5)
    loop.histories = {}
    moved = worst = 0.0
    with torch.inference_mode():
        for _ in range(50):
            actions = method.inference_policy(obs["policy"])
            loop_actions = loop.step()
            np.testing.assert_allclose(loop_actions, actions.numpy(), atol=1e-4)
            obs, _, dones, _ = env.step(actions)
            assert not dones.any()
            q_env = env.dof_pos.numpy()
            q_loop = np.stack([d.qpos[robot.qpos_adr] for d in loop.data])
            np.testing.assert_allclose(q_loop, q_env, atol=1e-5)
            moved = max(moved, float(np.abs(q_env - env.default_dof_pos.numpy()).max()))
            worst = max(worst, float(np.abs(q_loop - q_env).max()))
    print(f"joints moved up to {moved:.3f} rad; loop vs env at most {worst:.2e} rad")
    assert moved > 0.2
    # the numbers play reports: body-frame velocities of the same robots
    lin = np.stack([loop.base_state(i)["lin_vel"] for i in range(4)])
    np.testing.assert_allclose(lin, env.base_lin_vel.numpy(), atol=1e-4)
    env.close()


def test_the_loop_applies_the_torque_speed_curve_training_applied(exported) -> None:
    """A robot whose motors reach only 3 rad/s (so that the curve binds): trained with the curve (motor actuation),
    the contract carries the speeds, and the loop, reading them, follows that env's joints; without them it does
    not."""
    contract_path, method = exported
    slow = dataclasses.replace(GO2, velocity_limits=(3.0,) * 12)

    def curved(*args, **kwargs):
        return one_thread_backend(*args, actuation="motor", torque_speed_curve=True, **kwargs)

    env = LeggedLocomotion(4, seed=5, backend=curved, robot=slow, events=EventConfig(terms=STILL_START))
    contract = deploy_contract(method, env)
    assert contract["env"]["velocity_limits"] == [3.0] * 12
    env.set_evaluation_commands(COMMANDS)
    obs = env.reset()
    robot = prepare_robot_model(GO2.model_file, contract["env"]["joint_names"])
    loops = {}
    for name, speeds in (("curve", None), ("no curve", [1e9] * 12)):
        loops[name] = MujocoRobotLoop(contract, robot, contract_path.parent / "policy.onnx", num_robots=4,
                                      velocity_limits=speeds)
        loops[name].reset(qpos=np.array(env.sim.batch.bind("qpos")))
        loops[name].command[:] = COMMANDS.numpy()
    with torch.inference_mode():
        for _ in range(25):
            actions = method.inference_policy(obs["policy"])
            for loop in loops.values():
                loop.step()
            obs, _, _, _ = env.step(actions)
    q_env = env.dof_pos.numpy()
    q = {name: np.stack([d.qpos[robot.qpos_adr] for d in loop.data]) for name, loop in loops.items()}
    np.testing.assert_allclose(q["curve"], q_env, atol=1e-4)
    assert np.abs(q["no curve"] - q_env).max() > 1e-2
    env.close()


def test_latency_and_the_pd_rate_change_what_the_robot_does(exported) -> None:
    contract_path, _ = exported
    contract = json.loads(contract_path.read_text())
    robot = prepare_robot_model(GO2.model_file, contract["env"]["joint_names"])
    finals = []
    for options in ({}, {"latency": 0.01}, {"pd_dt": 0.01}):
        loop = MujocoRobotLoop(contract, robot, contract_path.parent / "policy.onnx", 1, **options)
        loop.reset()
        for _ in range(10):
            loop.step()
        finals.append(loop.data[0].qpos.copy())
    assert np.abs(finals[1] - finals[0]).max() > 1e-3 and np.abs(finals[2] - finals[0]).max() > 1e-3
    with pytest.raises(ValueError, match="longer than one control period"):
        MujocoRobotLoop(contract, robot, contract_path.parent / "policy.onnx", 1, latency=0.025)
    with pytest.raises(ValueError, match="whole number"):
        MujocoRobotLoop(contract, robot, contract_path.parent / "policy.onnx", 1, latency=0.003)


@pytest.mark.parametrize("field", ["kp", "torque_limits", "joint_names", "control_dt"])
def test_a_contract_missing_a_field_is_refused_naming_it(exported, field) -> None:
    contract = json.loads(exported[0].read_text())
    del contract["env"][field]
    with pytest.raises(ContractError, match=rf"'env\.{field}'"):
        check_contract(contract)


def test_a_contract_with_wrong_sizes_or_unreadable_terms_is_refused(exported) -> None:
    contract_path, _ = exported
    contract = json.loads(contract_path.read_text())
    short = copy.deepcopy(contract)
    short["env"]["kd"] = short["env"]["kd"][:11]
    with pytest.raises(ContractError, match=r"'env\.kd' has 11 values for 12 joints"):
        check_contract(short)
    scan = copy.deepcopy(contract)
    scan["inputs"][0]["terms"].append({"name": "height_scan", "start": 45, "size": 1, "scale": 1.0})
    scan["inputs"][0]["size"] = 46
    robot = prepare_robot_model(GO2.model_file, contract["env"]["joint_names"])
    with pytest.raises(ValueError, match=r"\['height_scan'\]"):
        MujocoRobotLoop(scan, robot, contract_path.parent / "policy.onnx")


def test_a_model_without_the_contracts_joints_or_with_servos_is_refused(tmp_path) -> None:
    with pytest.raises(RobotModelError, match=r"\['FL_knee'\].*FL_calf_joint"):
        prepare_robot_model(GO2.model_file, ["FL_hip", "FL_knee"])
    # a model whose joints carry position servos: not driven unless replaced by torque motors
    spec = mujoco.MjSpec.from_file(GO2.model_file)
    for joint in GO2.joints:
        spec.add_actuator(target=joint, trntype=mujoco.mjtTrn.mjTRN_JOINT).set_to_position(kp=20.0)
    path = tmp_path / "servos.xml"
    path.write_text(spec.to_xml())
    with pytest.raises(RobotModelError, match="not torque motors.*--replace_actuators"):
        prepare_robot_model(path, GO2.dof_names)
    robot = prepare_robot_model(path, GO2.dof_names, replace_actuators=True)
    assert robot.model.nu == 12 and all(robot.model.actuator_biastype == mujoco.mjtBias.mjBIAS_NONE)


@pytest.mark.skipif(not MENAGERIE_GO2.is_file(), reason="needs ../shared/reference/go2_menagerie")
def test_the_command_runs_another_go2_model_and_writes_the_report(exported, tmp_path, capsys) -> None:
    contract_path, _ = exported
    out = tmp_path / "report.json"
    main(["sim2sim", "--contract", str(contract_path), "--model", str(MENAGERIE_GO2), "--robots", "1",
          "--commands", "[[0.5,0,0],[0,0,0.5]]", "--duration", "1.5", "--settle", "0.5", "--latency_ms", "10",
          "--json", str(out), "--video", str(tmp_path / "clip.mp4")])
    report = json.loads(out.read_text())
    assert report["timestep"] == 0.002 and report["latency_ms"] == 10.0  # the model's own physics step
    assert report["joints"]["FL_hip"] == "FL_hip_joint"
    assert "a ground plane" in report["model_changes"]  # the menagerie file has no floor; its motors are used
    assert not any("torque motors" in change for change in report["model_changes"])
    row = report["commands"]["vx+0.5_vy+0.0_yaw+0.0"]
    assert set(row) >= {"error_vx", "error_vy", "error_yaw", "survival_rate", "base_height_median"}
    assert "| (0.5, 0.0, 0.0) |" in capsys.readouterr().out
    import imageio.v3 as iio

    frame = iio.imread(report["video"], index=40)  # lit, with the collision geometry drawn: the robot shows
    assert frame.shape == (320, 480, 3) and frame.std() > 10


def test_the_robustness_sweep_changes_the_property_its_row_names(exported) -> None:
    import argparse
    import importlib.util

    spec = importlib.util.spec_from_file_location("robustness", REPO / "scripts" / "robustness.py")
    robustness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(robustness)
    contract_path, _ = exported
    contract = json.loads(contract_path.read_text())
    args = argparse.Namespace(replace_actuators=False, robots=1, duration=1.0, settle=0.5, seed=0)
    rows = {label: robustness.run_row(contract, contract_path, GO2.model_file, change, args)
            for label, change in robustness.GRID["joint damping (Nm s/rad)"][::3]}  # 0.1 and 2.0
    assert set(rows) == {"0.1", "2"}
    slow, fast = (rows[k]["vx+0.5_vy+0.0_yaw+0.0"]["error_vx"] for k in ("2", "0.1"))
    assert slow != fast  # the damping reached the physics
    table = robustness.markdown([{"property": "joint damping (Nm s/rad)", "setting": k, "commands": v}
                                 for k, v in rows.items()], "header")
    assert "| joint damping (Nm s/rad) | 2 |" in table
    feet = {label: robustness.run_row(contract, contract_path, GO2.model_file, change, args)
            for label, change in robustness.GRID["foot contact"]}
    firm, soft = (feet[k]["vx+0.5_vy+0.0_yaw+0.0"]["base_height_median"] for k in ("as in file", "soft"))
    assert soft < firm - 0.003  # the soft feet sink
