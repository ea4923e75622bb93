"""``leggedex sim2sim``: run an exported policy from its ``deploy.json`` and ONNX file alone on any robot MJCF.

    leggedex sim2sim --contract <run>/exports/last/deploy.json --model path/to/robot.xml \\
        [--robots 10] [--duration 10] [--commands "[[0.5,0,0],[1.0,0,0]]"] [--latency_ms 0] [--json out.json]

No checkpoint and no leggedex env: the loop (``leggedex.deploy.mujoco_loop``) assembles the observations from the
contract's terms, runs the ONNX policy, and tracks its joint targets with the contract's PD through torque motors
(added where the model has none) at ``--pd_rate`` (default: every physics step of the model's own timestep). The
contract's joint names are found in the model as they are or with a suffix (``--joint_suffix``, default
``_joint``). Robots start in the home pose, turned by a random heading, with joint offsets of up to
``--joint_noise`` of the home angles; every robot holds one command. The table and JSON have the columns of
``leggedex play`` that a robot-side loop can measure: tracking errors after ``--settle`` seconds (robots that had
not fallen), survival (a robot falls by the contract's termination rules: base tilt, base height, base contact)
and the median base height. ``--video`` records the first robot; ``--viewer`` shows it live.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from leggedex.cli.report import json_ready, parse_commands
from leggedex.deploy.contract import ContractError, load_contract
from leggedex.deploy.evaluation import evaluate
from leggedex.deploy.mujoco_loop import DEFAULT_JOINT_SUFFIXES, MujocoRobotLoop, prepare_robot_model

DEFAULT_DURATION_S = 10.0


def markdown_table(report: dict[str, Any]) -> str:
    lines = [f"{report['model']}: {report['robots_per_command']} robots per command, {report['duration_s']:g} s, "
             f"velocity averaged after {report['settle_s']:g} s, latency {report['latency_ms']:g} ms",
             "| command (vx, vy, yaw) | error vx | error vy | error yaw | survival | base height median |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for row in report["commands"].values():
        command = "(" + ", ".join(f"{v:.1f}" for v in row["command"]) + ")"
        lines.append(f"| {command} | {row['error_vx']:.3f} | {row['error_vy']:.3f} | {row['error_yaw']:.3f} "
                     f"| {100 * row['survival_rate']:.1f}% | {row['base_height_median']:.3f} m |")
    return "\n".join(lines)


def build_loop(contract_path: str | Path, model_path: str | Path, num_robots: int,
               joint_suffixes: Sequence[str] = DEFAULT_JOINT_SUFFIXES, replace_actuators: bool = False,
               timestep: float | None = None, pd_rate_hz: float | None = None,
               latency_ms: float = 0.0, velocity_limits: Sequence[float] | None = None) -> MujocoRobotLoop:
    """The checked contract, its ONNX file and the prepared model, as one loop of ``num_robots`` robots."""
    contract = load_contract(contract_path)
    onnx_path = Path(contract_path).parent / contract["files"]["onnx"]
    if not onnx_path.is_file():
        raise ContractError(f"{contract_path}: its ONNX file {onnx_path} is not there")
    robot = prepare_robot_model(model_path, contract["env"]["joint_names"], joint_suffixes, replace_actuators,
                                timestep)
    return MujocoRobotLoop(contract, robot, onnx_path, num_robots,
                           pd_dt=None if pd_rate_hz is None else 1.0 / pd_rate_hz, latency=latency_ms / 1000,
                           velocity_limits=joint_values(velocity_limits, contract["env"]["joint_names"]))


def joint_values(values: Sequence[float] | None, joint_names: Sequence[str]) -> list[float] | None:
    """One value for every joint, or one per joint, as a per-joint list (None stays None)."""
    if values is None:
        return None
    if len(values) == 1:
        return list(values) * len(joint_names)
    if len(values) != len(joint_names):
        raise ValueError(f"--velocity_limits takes one speed or one per contract joint ({len(joint_names)}), got "
                         f"{len(values)}")
    return list(values)


def sim2sim(contract_path: str | Path, model_path: str | Path, commands: Sequence[Sequence[float]] | None = None,
            robots_per_command: int = 10, duration_s: float = DEFAULT_DURATION_S, settle_s: float = 2.0,
            seed: int = 2024, latency_ms: float = 0.0, pd_rate_hz: float | None = None,
            timestep: float | None = None, joint_suffixes: Sequence[str] = DEFAULT_JOINT_SUFFIXES,
            replace_actuators: bool = False, joint_noise: float = 0.1,
            video_path: str | Path | None = None, velocity_limits: Sequence[float] | None = None) -> dict[str, Any]:
    """Evaluate the exported policy of ``contract_path`` on ``model_path``; returns the report (as the JSON)."""
    from leggedex.envs.locomotion.evaluation import DEFAULT_COMMANDS

    if duration_s <= settle_s:
        raise ValueError(f"--duration ({duration_s:g} s) must be longer than --settle ({settle_s:g} s)")
    commands = list(commands) if commands is not None else list(DEFAULT_COMMANDS)
    loop = build_loop(contract_path, model_path, len(commands) * robots_per_command, joint_suffixes,
                      replace_actuators, timestep, pd_rate_hz, latency_ms, velocity_limits)
    contract, robot = loop.contract, loop.robot
    frames: list[np.ndarray] | None = None
    renderer = None
    if video_path is not None:
        frames, renderer = [], mujoco.Renderer(loop.model, 320, 480)
        renderer.camera = mujoco.MjvCamera()
        renderer.camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        renderer.camera.trackbodyid = robot.base_body
        renderer.camera.distance, renderer.camera.elevation, renderer.camera.azimuth = 1.6, -20.0, 135.0
        renderer.options = mujoco.MjvOption()
        renderer.options.geomgroup[:] = 1  # collision-only models keep their geoms in groups 3 and above
    results = evaluate(loop, commands, robots_per_command, duration_s, settle_s, seed, joint_noise, frames, renderer)
    report: dict[str, Any] = {
        "contract": str(contract_path), "model": str(model_path), "model_changes": robot.added,
        "joints": dict(zip(contract["env"]["joint_names"], robot.joints)),
        "timestep": float(loop.model.opt.timestep), "pd_period_s": loop.pd_every * float(loop.model.opt.timestep),
        "latency_ms": float(latency_ms),
        "velocity_limits": None if loop.velocity_limits is None else loop.velocity_limits.tolist(),
        "robots_per_command": robots_per_command, "duration_s": duration_s,
        "settle_s": settle_s, "seed": seed, "commands": results}
    if video_path is not None and frames is not None and renderer is not None:
        from leggedex.envs.locomotion.video import write_mp4

        renderer.close()
        report["video"] = str(write_mp4(np.stack(frames), video_path, fps=1.0 / loop.control_dt))
    return report


def view(contract_path: str | Path, model_path: str | Path, command: Sequence[float], **options: Any) -> int:
    """MuJoCo's viewer on one robot following ``command`` until the window is closed; returns the periods run."""
    import time

    import mujoco.viewer

    loop = build_loop(contract_path, model_path, 1, **options)
    loop.reset()
    loop.command[0] = command
    periods = 0
    with mujoco.viewer.launch_passive(loop.model, loop.data[0]) as viewer:
        while viewer.is_running():
            start = time.perf_counter()
            loop.step()
            viewer.sync()
            periods += 1
            time.sleep(max(0.0, loop.control_dt - (time.perf_counter() - start)))
    return periods


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(allow_abbrev=False, prog="leggedex sim2sim", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--contract", type=Path, required=True, help="deploy.json written by leggedex export")
    p.add_argument("--model", type=Path, required=True, help="robot MJCF (a ground plane is added if it has none)")
    p.add_argument("--commands", default=None, help='JSON list of [vx, vy, yaw] (default: the six of play)')
    p.add_argument("--robots", type=int, default=10, help="robots per command")
    p.add_argument("--duration", type=float, default=DEFAULT_DURATION_S, help="seconds simulated")
    p.add_argument("--settle", type=float, default=2.0, help="seconds before velocities are averaged")
    p.add_argument("--seed", type=int, default=2024, help="seed of the start headings and joint offsets")
    p.add_argument("--joint_noise", type=float, default=0.1, help="start joint offsets, share of the home angles")
    p.add_argument("--latency_ms", type=float, default=0.0, help="actuation latency (whole physics steps)")
    p.add_argument("--velocity_limits", type=float, nargs="+", default=None,
                   help="no-load joint speeds (rad/s; one, or one per joint) of a torque-speed curve on the torques "
                        "(default: the contract's env.velocity_limits, the curve training applied, if any)")
    p.add_argument("--pd_rate", type=float, default=None, help="PD rate in Hz (default: every physics step)")
    p.add_argument("--timestep", type=float, default=None, help="physics step (default: the model's own)")
    p.add_argument("--joint_suffix", action="append", default=None,
                   help="suffix the model adds to the contract's joint names (repeatable; default _joint)")
    p.add_argument("--replace_actuators", action="store_true",
                   help="put torque motors in place of the model's actuators that are not torque motors")
    p.add_argument("--json", type=Path, default=None,
                   help="results file (default: sim2sim_<model stem>.json beside the contract)")
    p.add_argument("--video", type=Path, default=None, help="MP4 of the first robot")
    p.add_argument("--viewer", action="store_true", help="instead of evaluating: MuJoCo's viewer on one robot "
                                                          "following the first command (needs a display)")
    return p


def main(argv: list[str]) -> None:
    command_parser = parser()
    args = command_parser.parse_args(argv)
    suffixes = tuple(args.joint_suffix) if args.joint_suffix else DEFAULT_JOINT_SUFFIXES
    try:
        if args.robots <= 0:
            raise ValueError(f"--robots must be positive, got {args.robots}")
        commands = parse_commands(args.commands) if args.commands is not None else None
        if args.video is not None:
            from leggedex.envs.locomotion.video import check_video_support

            check_video_support()
        if args.viewer:
            from leggedex.envs.locomotion.viewer import check_viewer_support

            check_viewer_support()
            periods = view(args.contract, args.model, (commands or [(0.5, 0.0, 0.0)])[0],
                           joint_suffixes=suffixes, replace_actuators=args.replace_actuators,
                           timestep=args.timestep, latency_ms=args.latency_ms,
                           velocity_limits=args.velocity_limits)
            print(f"viewer closed after {periods} control periods")
            return
        report = sim2sim(args.contract, args.model, commands, args.robots, args.duration, args.settle, args.seed,
                         args.latency_ms, args.pd_rate, args.timestep, suffixes, args.replace_actuators,
                         args.joint_noise, args.video, args.velocity_limits)
    except (ValueError, RuntimeError) as error:  # ContractError and RobotModelError are ValueErrors
        command_parser.error(str(error))
    print(markdown_table(report))
    path = args.json if args.json is not None else args.contract.parent / f"sim2sim_{args.model.stem}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_ready(report), indent=2, allow_nan=False) + "\n")
    print(f"wrote {path}")
