"""Robustness sweep of an exported policy: its deterministic tracking and falls as one property of the robot at a
time moves away from the model file's, in the contract-only MuJoCo loop of ``leggedex sim2sim``.

    python scripts/robustness.py --contract <run>/exports/last/deploy.json [--model robot.xml] \\
        [--robots 10] [--duration 10] [--out robustness]

Rows: joint damping 0.1-2.0 Nm s/rad, joint friction loss 0-0.3 Nm, rotor armature x0.5-2, actuation latency
0-20 ms (rounded to the model's physics steps), payload -1..+3 kg on the base, PD stiffness x0.8-1.2 (the robot's
gains, while the contract says the nominal ones), friction cone pyramidal / elliptic (impratio 100, as public Go2
models use), foot contact as in the file / soft (solimp 0.015 1 0.022, the public Go2 model's feet), the feet's
torsional friction none / 0.01 / 0.02 m (the public model's feet: condim 6, 0.02), the motors'
torque-speed curve off / on (the contract's ``env.velocity_limits``, else the Go2's published joint speeds).
Every row holds commands vx 0.5, vx 1.0 and yaw 0.5 with ``--robots`` robots each. Writes ``<out>.md`` (the
table), ``<out>.json`` and ``<out>.png`` (one panel per property), and prints the table.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from leggedex.deploy import MujocoRobotLoop, load_contract, prepare_robot_model
from leggedex.deploy.evaluation import evaluate
from leggedex.robots import GO2

COMMANDS = [(0.5, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, 0.5)]
Change = Callable[[mujoco.MjModel, np.ndarray, np.ndarray, dict[str, Any]], None]  # model, dofs, base, options


def _set_dofs(field: str, value: float, relative: bool = False) -> Change:
    def change(model: mujoco.MjModel, dofs: np.ndarray, base: np.ndarray, options: dict[str, Any]) -> None:
        array = getattr(model, field)
        array[dofs] = array[dofs] * value if relative else value
    return change


def _payload(kg: float) -> Change:
    def change(model: mujoco.MjModel, dofs: np.ndarray, base: np.ndarray, options: dict[str, Any]) -> None:
        model.body_mass[base] += kg
    return change


def _latency(ms: float) -> Change:
    def change(model: mujoco.MjModel, dofs: np.ndarray, base: np.ndarray, options: dict[str, Any]) -> None:
        options["latency"] = ms / 1000
    return change


def _kp(scale: float) -> Change:
    def change(model: mujoco.MjModel, dofs: np.ndarray, base: np.ndarray, options: dict[str, Any]) -> None:
        options["kp_scale"] = scale
    return change


def _cone(elliptic: bool) -> Change:
    def change(model: mujoco.MjModel, dofs: np.ndarray, base: np.ndarray, options: dict[str, Any]) -> None:
        model.opt.cone = mujoco.mjtCone.mjCONE_ELLIPTIC if elliptic else mujoco.mjtCone.mjCONE_PYRAMIDAL
        model.opt.impratio = 100.0 if elliptic else 1.0
    return change


def _feet(model: mujoco.MjModel) -> list[int]:
    """The foot spheres: sphere geoms on the bodies of the ``calf`` joints."""
    calves = {int(model.jnt_bodyid[j]) for j in range(model.njnt) if "calf" in model.joint(j).name}
    feet = [g for g in range(model.ngeom)
            if model.geom_bodyid[g] in calves and model.geom_type[g] == mujoco.mjtGeom.mjGEOM_SPHERE]
    if not feet:
        raise ValueError("no foot spheres found on the bodies of the 'calf' joints")
    return feet


def _soft_feet(soft: bool) -> Change:
    """The feet with the public Go2 model's solimp (0.015 1 0.022)."""
    def change(model: mujoco.MjModel, dofs: np.ndarray, base: np.ndarray, options: dict[str, Any]) -> None:
        if soft:
            model.geom_solimp[_feet(model), :3] = (0.015, 1.0, 0.022)
    return change


def _foot_torsion(torsion: float | None) -> Change:
    """The feet's torsional friction (m), MuJoCo's condim 4; None: no torsional friction (condim 3)."""
    def change(model: mujoco.MjModel, dofs: np.ndarray, base: np.ndarray, options: dict[str, Any]) -> None:
        feet = _feet(model)
        if torsion is None:
            model.geom_condim[feet] = np.minimum(model.geom_condim[feet], 3)
        else:
            model.geom_condim[feet] = np.maximum(model.geom_condim[feet], 4)
            model.geom_friction[feet, 1] = torsion
    return change


def _torque_speed(on: bool) -> Change:
    def change(model: mujoco.MjModel, dofs: np.ndarray, base: np.ndarray, options: dict[str, Any]) -> None:
        options["torque_speed_curve"] = on
    return change


GRID: dict[str, list[tuple[str, Change]]] = {
    "joint damping (Nm s/rad)": [(f"{v:g}", _set_dofs("dof_damping", v)) for v in (0.1, 0.5, 1.0, 2.0)],
    "joint friction loss (Nm)": [(f"{v:g}", _set_dofs("dof_frictionloss", v)) for v in (0.0, 0.1, 0.2, 0.3)],
    "armature (x model)": [(f"x{v:g}", _set_dofs("dof_armature", v, relative=True)) for v in (0.5, 1.0, 2.0)],
    "action latency (ms)": [(f"{v:g}", _latency(v)) for v in (0, 5, 10, 15, 20)],
    "payload (kg)": [(f"{v:+g}", _payload(v)) for v in (-1, 0, 1, 2, 3)],
    "kp (x contract)": [(f"x{v:g}", _kp(v)) for v in (0.8, 1.0, 1.2)],
    "friction cone": [("pyramidal", _cone(False)), ("elliptic", _cone(True))],
    "foot contact": [("as in file", _soft_feet(False)), ("soft", _soft_feet(True))],
    "foot torsional friction (m)": [("none", _foot_torsion(None)), ("0.01", _foot_torsion(0.01)),
                                    ("0.02", _foot_torsion(0.02))],
    "torque-speed curve": [("off", _torque_speed(False)), ("on", _torque_speed(True))],
}


def run_row(contract: dict[str, Any], contract_path: Path, model_path: str, change: Change, args: argparse.Namespace,
            ) -> dict[str, dict[str, Any]]:
    robot = prepare_robot_model(model_path, contract["env"]["joint_names"], replace_actuators=args.replace_actuators)
    options: dict[str, Any] = {"latency": 0.0, "kp_scale": 1.0, "torque_speed_curve": False}
    change(robot.model, robot.dof_adr, np.array([robot.base_body]), options)
    mujoco.mj_setConst(robot.model, mujoco.MjData(robot.model))
    dt = float(robot.model.opt.timestep)
    options["latency"] = round(options["latency"] / dt) * dt  # whole physics steps of this model
    row_contract = copy.deepcopy(contract)
    row_contract["env"]["kp"] = [k * options["kp_scale"] for k in contract["env"]["kp"]]
    speeds = contract["env"].get("velocity_limits") or GO2.velocity_limits
    row_contract["env"]["velocity_limits"] = speeds if options["torque_speed_curve"] else None
    loop = MujocoRobotLoop(row_contract, robot, contract_path.parent / contract["files"]["onnx"],
                           len(COMMANDS) * args.robots, latency=options["latency"])
    return evaluate(loop, COMMANDS, args.robots, args.duration, args.settle, args.seed)


def markdown(rows: list[dict[str, Any]], header: str) -> str:
    lines = [header, "| property | setting | error vx @0.5 | error vx @1.0 | error yaw @0.5 | falls |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for row in rows:
        r = list(row["commands"].values())
        falls = float(np.mean([c["fall_rate"] for c in r]))
        lines.append(f"| {row['property']} | {row['setting']} | {r[0]['error_vx']:.3f} | {r[1]['error_vx']:.3f} "
                     f"| {r[2]['error_yaw']:.3f} | {100 * falls:.1f}% |")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(GRID), figsize=(3.2 * len(GRID), 3.2), sharey=True)
    for ax, prop in zip(axes, GRID):
        mine = [r for r in rows if r["property"] == prop]
        x = np.arange(len(mine))
        for k, label in ((0, "vx 0.5"), (1, "vx 1.0")):
            ax.plot(x, [list(r["commands"].values())[k]["error_vx"] for r in mine], "o-", label=f"error {label}")
        ax.plot(x, [list(r["commands"].values())[2]["error_yaw"] for r in mine], "s-", label="error yaw 0.5")
        ax.plot(x, [np.mean([c["fall_rate"] for c in r["commands"].values()]) for r in mine], "k^--", label="falls")
        ax.axhline(0.15, color="grey", lw=0.8, ls=":")
        ax.set_xticks(x, [r["setting"] for r in mine], fontsize=8)
        ax.set_title(prop, fontsize=9)
    axes[0].set_ylabel("m/s, rad/s, share of robots")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--contract", type=Path, required=True)
    p.add_argument("--model", default=GO2.model_file, help="robot MJCF (default: the project's Go2)")
    p.add_argument("--replace_actuators", action="store_true")
    p.add_argument("--robots", type=int, default=10, help="robots per command and row")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--settle", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--out", type=Path, default=Path("robustness"), help="output path without suffix")
    args = p.parse_args(argv)
    contract = load_contract(args.contract)
    rows = []
    start = time.perf_counter()
    for prop, settings in GRID.items():
        for setting, change in settings:
            results = run_row(contract, args.contract, args.model, change, args)
            rows.append({"property": prop, "setting": setting, "commands": results})
            print(f"{prop} {setting}: done ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    header = (f"{args.contract} on {args.model}: {args.robots} robots per command, {args.duration:g} s, "
              f"velocity averaged after {args.settle:g} s; one property changed per row, the rest as in the file")
    table = markdown(rows, header)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(table + "\n")
    args.out.with_suffix(".json").write_text(json.dumps({"header": header, "rows": rows}, indent=2) + "\n")
    plot(rows, args.out.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
