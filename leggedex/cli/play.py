"""``leggedex play``: evaluate a checkpoint's deterministic policy and print a markdown table.

    leggedex play --config configs/go2_flat.yaml --ckpt_path logs/go2_flat/<run>/checkpoints/last.ckpt \\
        [--num_envs 600] [--duration 10] [--commands "[[0.5,0,0],[1.0,0,0]]"] [--json eval.json]

The env is built from the config's ``data.env`` (same task, same robot) on the CPU. A velocity-tracking env
(``LeggedLocomotion``) holds each command with ``num_envs / len(commands)`` robots, without observation noise
and without pushes (domain randomization stays as configured), and reports per command the velocity tracking
errors (after ``--settle`` seconds), the survival rate, the mean return, the base height and gait numbers
(``evaluate_locomotion``). Any other env is run for ``--duration`` seconds and reports survival and mean return.
The results are also written as JSON (default: next to the checkpoint, ``<ckpt stem>_play.json``).

The policy is ``method.inference_policy(*obs[g] for g in method.policy_inputs())``, so any method plays.
Arguments that this command does not know (``--data.env.init_args.backend.init_args.num_threads 1``, ...) are
passed to the config parser as overrides (a misspelt option of this command is refused). ``--video clip.mp4``
also records one robot following the first command (checked before the evaluation: imageio and an OpenGL platform).
Non-finite numbers are written to the JSON as null.
``--viewer`` instead opens MuJoCo's viewer on one robot (camera following it) and sets the command from the
keyboard (arrows: vx and yaw rate, ``,``/``.``: vy, space: stop); it needs a display.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from leggedex.cli.checkpoint import (
    CommandHelpFormatter,
    build_env,
    check_policy_fits_env,
    load_method,
    parse_command_line,
)
from leggedex.cli.report import json_ready, parse_commands
from leggedex.envs.first_episode import FirstEpisode
from leggedex.envs.locomotion.env import LeggedLocomotion
from leggedex.envs.locomotion.ground import CurriculumTerrain
from leggedex.envs.locomotion.terrain_evaluation import (
    DEFAULT_TERRAIN_COMMAND,
    NoTerrain,
    evaluate_terrain,
    parse_tile,
    place_on_tile,
    terrain_envs,
    terrain_heat_map,
    terrain_of,
    terrain_table,
    tile_column,
)
from leggedex.envs.vec_env import Obs, VecEnv, reset_after_step
from leggedex.methods.base import DeployedPolicy, NoTeacher, OnPolicyMethod

Policy = Callable[[Obs], torch.Tensor]


DEFAULT_DURATION_S = 10.0


class PlayOptionError(ValueError):
    """An option that does not fit the env it plays (found once the env is built, before evaluating)."""


@torch.inference_mode()
def evaluate_generic(env: VecEnv, policy: Policy, duration_s: float) -> dict[str, dict[str, float]]:
    """Survival rate and mean return (summed until an env's first termination) over ``duration_s``."""
    obs = env.reset()
    first = FirstEpisode(env.num_envs, env.device)
    for _ in range(int(round(duration_s / env.step_dt))):
        obs, rewards, dones, extras = env.step(policy(obs))
        reset_after_step(policy, dones)
        first.update(rewards, dones, extras)
    survival = 1.0 - float(first.fell.float().mean())
    return {"all": {"survival_rate": survival, "mean_return": float(first.returns.mean())}}


def play(
    config_args: list[str],
    ckpt_path: str | Path,
    num_envs: int = 600,
    commands: Sequence[Sequence[float]] | None = None,
    duration_s: float = DEFAULT_DURATION_S,
    settle_s: float = 2.0,
    seed: int = 2024,
    video_path: str | Path | None = None,
    teacher: bool = False,
    terrain: TerrainOptions | None = None,
    video_tile: tuple[str, int] | None = None,
) -> dict[str, Any]:
    """Evaluate ``ckpt_path`` in the config's env; returns ``{"checkpoint", ..., "commands": {name: row}}``.

    With ``video_path`` (velocity-tracking envs), also records one robot following the first command to an MP4.
    ``video_tile`` (a terrain type and level) puts the filmed robot on that tile.
    With ``teacher``, the teacher's policy plays instead of the deployed one (teacher-student methods). On a terrain
    config, ``terrain`` (default ``TerrainOptions()``; ``robots_per_tile`` 0 skips it) also runs the per-terrain
    evaluation (``terrain_evaluation.py``) in an env of its own: ``report["terrain"]``.
    """
    from leggedex.envs.locomotion.evaluation import (
        DEFAULT_COMMANDS,
        evaluate_locomotion,
    )

    cli, method = load_method(config_args, ckpt_path)
    env = build_env(cli, num_envs, seed)
    try:
        check_policy_fits_env(method, env, ckpt_path)
        policy = chosen_policy(method, teacher)
        report: dict[str, Any] = {"checkpoint": str(ckpt_path), "method": method.method_name(),
                                  "policy": "teacher" if teacher else "deployed",
                                  "env": type(env).__name__, "num_envs": num_envs, "seed": seed,
                                  "duration_s": duration_s}
        if isinstance(env, LeggedLocomotion):
            if duration_s <= settle_s:
                raise PlayOptionError(f"--duration ({duration_s:g} s) must be longer than --settle ({settle_s:g} s): "
                                      "velocities are averaged after --settle, so nothing would be measured")
            if video_tile is not None:
                try:
                    tile_column(terrain_of(env), *video_tile)
                except ValueError as error:
                    raise PlayOptionError(f"--video_tile: {error}") from None
            commands = list(commands) if commands is not None else list(DEFAULT_COMMANDS)
            if num_envs < len(commands):
                raise PlayOptionError(f"--num_envs ({num_envs}) must give every command a robot: there are "
                                      f"{len(commands)} commands")
            report["settle_s"] = settle_s
            report["robots_per_command"] = num_envs // len(commands)
            report["commands"] = evaluate_locomotion(env, policy, commands, duration_s, settle_s)
            for row, command in zip(report["commands"].values(), commands):
                row["command"] = [float(v) for v in command]
            if video_path is not None:
                report["video"] = str(record_video(cli, policy, commands[0], duration_s, seed, video_path,
                                                   video_tile))
            terrain = terrain if terrain is not None else TerrainOptions()
            if isinstance(env.ground, CurriculumTerrain) and terrain.robots_per_tile > 0:
                num_terrain_envs = terrain_envs(env.ground, terrain.robots_per_tile)
                report["terrain"] = play_terrain(cli, method, teacher, terrain, seed, num_terrain_envs)
        else:
            if commands is not None:
                raise PlayOptionError(f"--commands needs a velocity-tracking env; {type(env).__name__} takes none")
            report["commands"] = evaluate_generic(env, policy, duration_s)
    finally:
        env.close()
    return report


@dataclass
class TerrainOptions:
    """The per-terrain part of play (``terrain_evaluation.py``): robots per (type, level) cell, command, seconds."""

    robots_per_tile: int = 10
    command: tuple[float, float, float] = DEFAULT_TERRAIN_COMMAND
    duration_s: float = 20.0
    settle_s: float = 2.0


def chosen_policy(method: OnPolicyMethod, teacher: bool) -> DeployedPolicy:
    return method.teacher_policy() if teacher else method.deployed_policy()


def play_terrain(cli: Any, method: OnPolicyMethod, teacher: bool, options: TerrainOptions, seed: int,
                 num_envs: int) -> dict[str, Any]:
    """The per-terrain evaluation in an env of its own with ``num_envs`` robots (``terrain_envs``)."""
    env = build_env(cli, num_envs, seed)
    try:
        if not isinstance(env, LeggedLocomotion):
            raise NoTerrain(f"the per-terrain evaluation needs LeggedLocomotion, got {type(env).__name__}")
        return evaluate_terrain(env, chosen_policy(method, teacher), options.command, options.duration_s,
                                options.settle_s)
    finally:
        env.close()


def view(config_args: list[str], ckpt_path: str | Path, command: Sequence[float], duration_s: float | None,
         seed: int) -> int:
    """Open the interactive viewer on one robot driven by ``ckpt_path``'s policy; returns the steps shown."""
    from leggedex.envs.locomotion.viewer import run_viewer

    cli, method = load_method(config_args, ckpt_path)
    env = build_env(cli, 1, seed)
    try:
        if not isinstance(env, LeggedLocomotion):
            raise PlayOptionError(f"--viewer needs a velocity-tracking env (LeggedLocomotion), got "
                                  f"{type(env).__name__}")
        check_policy_fits_env(method, env, ckpt_path)
        return run_viewer(env, method.deployed_policy(), command, duration_s)
    finally:
        env.close()


def record_video(cli: Any, policy: Any, command: Sequence[float], duration_s: float, seed: int,
                 path: str | Path, tile: tuple[str, int] | None = None) -> Path:
    from leggedex.envs.locomotion.video import render_rollout, write_mp4

    env = build_env(cli, 1, seed)
    try:
        if not isinstance(env, LeggedLocomotion):
            raise TypeError(f"a video needs a velocity-tracking env (LeggedLocomotion), got {type(env).__name__}")
        if tile is not None:
            place_on_tile(env, *tile)
        frames = render_rollout(env, policy, command, duration_s)
        return write_mp4(frames, path, fps=1.0 / env.step_dt)
    finally:
        env.close()


def markdown_table(report: dict[str, Any]) -> str:
    rows = report["commands"]
    lines = []
    if "robots_per_command" in report:
        lines.append(f"{report['robots_per_command']} robots per command, {report['duration_s']:g} s, "
                     f"velocity averaged after {report['settle_s']:g} s, no observation noise, no pushes")
        lines.append("| command (vx, vy, yaw) | error vx | error vy | error yaw | survival | mean return "
                     "| base height median | non-foot contact | least-lifted foot in air |")
        lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for row in rows.values():
            command = "(" + ", ".join(f"{v:.1f}" for v in row["command"]) + ")"
            lines.append(
                f"| {command} | {row['error_vx']:.3f} | {row['error_vy']:.3f} | {row['error_yaw']:.3f} "
                f"| {100 * row['survival_rate']:.1f}% | {row['mean_return']:.2f} | {row['base_height_median']:.3f} m "
                f"| {100 * row['body_contact_fraction']:.1f}% | {100 * row['min_foot_air_fraction']:.0f}% |")
    else:
        lines.append(f"{report['num_envs']} envs, {report['duration_s']:g} s")
        lines.append("| envs | survival | mean return |")
        lines.append("| --- | ---: | ---: |")
        for name, row in rows.items():
            lines.append(f"| {name} | {100 * row['survival_rate']:.1f}% | {row['mean_return']:.2f} |")
    return "\n".join(lines)


def default_json_path(ckpt_path: str | Path) -> Path:
    ckpt_path = Path(ckpt_path)
    return ckpt_path.with_name(f"{ckpt_path.stem}_play.json")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        allow_abbrev=False, prog="leggedex play", description=__doc__, formatter_class=CommandHelpFormatter)
    p.add_argument("--config", action="append", required=True, help="training config (repeatable)")
    p.add_argument("--ckpt_path", required=True, help="checkpoint to evaluate")
    p.add_argument("--num_envs", type=int, default=600, help="robots in all (split evenly over the commands)")
    p.add_argument("--commands", default=None,
                   help='JSON list of [vx, vy, yaw], e.g. "[[0.5,0,0],[1.0,0,0]]" (default: the six of evaluation.py)')
    p.add_argument("--duration", type=float, default=None,
                   help="seconds per run (default: 10; with --viewer: until the window is closed)")
    p.add_argument("--settle", type=float, default=2.0, help="seconds before velocities are averaged")
    p.add_argument("--seed", type=int, default=2024, help="env seed")
    p.add_argument("--json", type=Path, default=None, help="results file (default: <ckpt stem>_play.json beside it)")
    p.add_argument("--video", type=Path, default=None, help="MP4 of one robot following the first command")
    p.add_argument("--teacher", action="store_true",
                   help="play the teacher's policy (privileged observations) instead of the deployed one; "
                        "teacher-student methods only")
    p.add_argument("--terrain_robots", type=int, default=10,
                   help="on a terrain config: robots per (terrain type, level) tile in the per-terrain evaluation "
                        "(0 skips it)")
    p.add_argument("--terrain_command", default="[0.5, 0, 0]", help="[vx, vy, yaw] held on every terrain tile")
    p.add_argument("--terrain_duration", type=float, default=20.0, help="seconds on the terrain tiles")
    p.add_argument("--heat_map", type=Path, default=None,
                   help="the per-terrain heat map (default: <json stem>_terrain.png beside the JSON; needs matplotlib)")
    p.add_argument("--video_tile", default=None,
                   help="on a terrain config: film the robot on this tile, TYPE:LEVEL (e.g. stairs_up:4)")
    p.add_argument("--viewer", action="store_true",
                   help="instead of evaluating: MuJoCo's viewer on one robot, the command set from the keyboard "
                        "(starting from the first command; needs a display)")
    return p


def check_options(args: argparse.Namespace) -> None:
    """Refuse options that could only fail late or report nothing, before any env is built."""
    if args.num_envs <= 0:
        raise ValueError(f"--num_envs must be positive, got {args.num_envs}")
    if args.viewer:
        from leggedex.envs.locomotion.viewer import check_viewer_support

        if args.video is not None:
            raise ValueError("--viewer and --video are two ways to watch: choose one")
        check_viewer_support()
    if args.terrain_robots < 0 or args.terrain_duration <= args.settle:
        raise ValueError(f"--terrain_robots must be >= 0 and --terrain_duration longer than --settle, got "
                         f"{args.terrain_robots} and {args.terrain_duration}")
    if (args.duration is not None and args.duration <= 0) or args.settle < 0:
        raise ValueError(f"--duration must be positive and --settle >= 0, got {args.duration} and {args.settle}")
    if args.video is not None:
        from leggedex.envs.locomotion.video import check_video_support

        check_video_support()


def parse_terrain_command(text: str) -> tuple[float, float, float]:
    try:
        (command,) = parse_commands(f"[{text}]")
    except ValueError:
        raise ValueError(f"--terrain_command must be one [vx, vy, yaw] triple, got {text!r}") from None
    return command


def main(argv: list[str]) -> None:
    command_parser = parser()
    args, overrides = parse_command_line(command_parser, argv)
    try:
        check_options(args)
        commands = parse_commands(args.commands) if args.commands is not None else None
        terrain_command = parse_terrain_command(args.terrain_command)
        video_tile = parse_tile(args.video_tile) if args.video_tile is not None else None
        if video_tile is not None and args.video is None:
            raise ValueError("--video_tile says where to film: it needs --video")
    except (ValueError, RuntimeError) as error:
        command_parser.error(str(error))
    config_args = [item for path in args.config for item in ("--config", path)] + overrides
    if args.viewer:
        first = commands[0] if commands else (0.5, 0.0, 0.0)
        try:
            steps = view(config_args, args.ckpt_path, first, args.duration, args.seed)
        except PlayOptionError as error:
            command_parser.error(str(error))
        print(f"viewer closed after {steps} steps")
        return
    duration = args.duration if args.duration is not None else DEFAULT_DURATION_S
    try:
        terrain = TerrainOptions(args.terrain_robots, terrain_command, args.terrain_duration, args.settle)
        report = play(config_args, args.ckpt_path, args.num_envs, commands, duration, args.settle, args.seed,
                      args.video, args.teacher, terrain, video_tile)
    except (PlayOptionError, NoTeacher, NoTerrain) as error:
        command_parser.error(str(error))
    print(markdown_table(report))
    path = args.json if args.json is not None else default_json_path(args.ckpt_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_ready(report), indent=2, allow_nan=False) + "\n")
    print(f"wrote {path}")
    if "terrain" in report:
        print(terrain_table(report["terrain"]))
        heat_map = args.heat_map if args.heat_map is not None else path.with_name(f"{path.stem}_terrain.png")
        write_heat_map(report, heat_map)


def write_heat_map(report: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(f"no heat map written ({path}): it needs matplotlib, pip install -e \".[plot]\"")
        return
    title = f"{report['method']} ({report['policy']} policy): share of robots that crossed their tile"
    terrain_heat_map(report["terrain"], path, title)
    print(f"wrote {path}")
