"""Where rough-terrain physics spends its time: MuJoCo's forward pass and its collision stage per physics step, on
flat ground and on go2_ts's heightfield, on the heightfield with groups of robot geoms left out of collision, and on
the same terrain built from primitives (``--boxes``): every piecewise-constant tile (stairs, obstacles, the border)
as axis-aligned boxes, the smooth slopes as four tilted boxes each, only the rough slopes as small hfields.

States are recorded once per ground (one world, random PD targets N(0, 0.5) x action scale 0.25 around the home
pose, a new tile on levels 0-2 every 2 s) and then replayed on every variant, so every variant computes the same
states: ``mj_kinematics`` then a timed ``mj_collision``, and a timed ``mj_forward``. A variant whose contact count
differs from the full model's changes the physics on these states; one with the same count only skips tests that
found nothing. One thread, no leggedex env: the cost of the simulator alone. ``mj_kinematics`` is timed too: it
places every geom, static ones included, at every step.

    python scripts/profile_terrain_physics.py --states 4000 --rounds 2 --boxes
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time

import mujoco
import numpy as np

from leggedex.envs.backends import mjcf
from leggedex.envs.backends.mjcf import build_model
from leggedex.envs.terrain import Terrain, TerrainConfig, generate_terrain, level_difficulty, slope
from leggedex.robots.go2 import GO2

GO2_TS_TERRAIN = TerrainConfig(num_rows=10, num_cols=10, tile_size=8.0, border=5.0, max_init_level=2)
LEFT_OUT = {"thighs and hips": ("_thigh", "_hip"), "calves (shins)": ("_calf",),
            "base (trunk, head)": ("trunk", "head"), "all but the feet and base": ("_thigh", "_hip", "_calf")}
ACTION_SCALE, SUBSTEPS = 0.25, 4
BOX_DEPTH = 1.0  # every level box reaches this far below its top face
SLOPE_THICKNESS = 0.1  # a tilted box's outer end leans over its neighbour by this x sin(slope): under half a cell
Box = tuple[float, float, float, float, float]  # x0, x1, y0, y1, top (world metres)


def level_set_boxes(heights: np.ndarray, resolution: float, x0: float, y0: float) -> list[Box]:
    """Axis-aligned boxes whose union is the piecewise-constant grid ``heights`` (cell (i, j) spans
    [x0 + i * res, x0 + (i + 1) * res) in x): for every height v, rectangles that cover the cells at v and lie
    where the grid is >= v, so no box rises above the surface and the highest box over each cell is its height."""
    boxes = []
    for value in np.unique(heights):
        todo = np.isclose(heights, value)
        allowed = heights >= value - 1e-9
        while todo.any():
            i, j = np.unravel_index(np.argmax(todo), todo.shape)
            j_end = j + 1
            while j_end < heights.shape[1] and allowed[i, j_end]:
                j_end += 1
            i_end = i + 1
            while i_end < heights.shape[0] and allowed[i_end, j:j_end].all():
                i_end += 1
            todo[i:i_end, j:j_end] = False
            boxes.append((x0 + i * resolution, x0 + i_end * resolution, y0 + j * resolution, y0 + j_end * resolution,
                          float(value)))
    return boxes


def add_slope_boxes(spec: mujoco.MjSpec, cfg: TerrainConfig, rise: float, x0: float, y0: float) -> None:
    """A smooth-slope tile (a pyramid rising outward from its platform) as four tilted boxes, each as wide as the
    tile, on the tile's level box: their union is max(0, rise * (|x| - p), rise * (|y| - p)) over the tile."""
    half, platform = cfg.tile_size / 2, cfg.platform / 2
    angle = math.atan(rise)
    length = (half - platform) / math.cos(angle)
    middle = (platform + half) / 2
    for k in range(4):
        yaw = k * math.pi / 2
        out = np.array([math.cos(yaw), math.sin(yaw)])
        normal = np.array([*(-out * math.sin(angle)), math.cos(angle)])
        top = np.array([x0 + half + out[0] * middle, y0 + half + out[1] * middle, rise * (middle - platform)])
        yaw_quat, pitch_quat, quat = np.zeros(4), np.zeros(4), np.zeros(4)
        mujoco.mju_axisAngle2Quat(yaw_quat, [0.0, 0.0, 1.0], yaw)
        mujoco.mju_axisAngle2Quat(pitch_quat, [0.0, 1.0, 0.0], -angle)
        mujoco.mju_mulQuat(quat, yaw_quat, pitch_quat)
        spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, size=[length / 2, half, SLOPE_THICKNESS / 2],
                                pos=(top - normal * SLOPE_THICKNESS / 2).tolist(), quat=quat.tolist(), group=0)


def add_box_ground(spec: mujoco.MjSpec, terrain: Terrain, cfg: TerrainConfig) -> None:
    """``terrain`` made of primitives (see the module docstring) on the world body of ``spec``."""
    res = terrain.resolution
    n, b = int(round(cfg.tile_size / res)), int(round(cfg.border / res))
    size_x, size_y, border = terrain.heights.shape[0] * res, terrain.heights.shape[1] * res, b * res
    boxes: list[Box] = [(0.0, size_x, 0.0, border, 0.0), (0.0, size_x, size_y - border, size_y, 0.0),
                        (0.0, border, border, size_y - border, 0.0),
                        (size_x - border, size_x, border, size_y - border, 0.0)]
    for row in range(cfg.num_rows):
        for col, kind in enumerate(terrain.column_types):
            i, j = b + row * n, b + col * n
            tile, x0, y0 = terrain.heights[i : i + n, j : j + n], i * res, j * res
            if kind == "smooth_slope":
                boxes.append((x0, x0 + cfg.tile_size, y0, y0 + cfg.tile_size, 0.0))
                rise = slope(cfg, level_difficulty(cfg, row))
                if rise > 0:
                    add_slope_boxes(spec, cfg, rise, x0, y0)
            elif kind == "rough_slope":  # one cell more on every side: the hfield's vertices are cell centres
                patch = Terrain(terrain.heights[i - 1 : i + n + 1, j - 1 : j + n + 1], res, 0.0, terrain.origins,
                                terrain.column_types)
                mjcf.add_heightfield(spec, patch, name=f"rough_{row}_{col}", offset=(x0 - res, y0 - res))
            else:
                boxes += level_set_boxes(tile, res, x0, y0)
    for x_lo, x_hi, y_lo, y_hi, top in boxes:
        spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, group=0,
                                size=[(x_hi - x_lo) / 2, (y_hi - y_lo) / 2, BOX_DEPTH / 2],
                                pos=[(x_lo + x_hi) / 2, (y_lo + y_hi) / 2, top - BOX_DEPTH / 2])


def without_collision(model: mujoco.MjModel, suffixes: tuple[str, ...]) -> mujoco.MjModel:
    """A copy of ``model`` whose geoms named ``*suffix`` collide with nothing."""
    variant = copy.deepcopy(model)
    for geom in range(variant.ngeom):
        name = mujoco.mj_id2name(variant, mujoco.mjtObj.mjOBJ_GEOM, geom) or ""
        if name.endswith(suffixes):
            variant.geom_contype[geom] = variant.geom_conaffinity[geom] = 0
    return variant


def record_states(model: mujoco.MjModel, terrain: Terrain | None, count: int, seed: int) -> list[np.ndarray]:
    data = mujoco.MjData(model)
    rng = np.random.default_rng(seed)
    tiles = [(row, col) for row in range(3) for col in range(terrain.origins.shape[1])] if terrain else []

    def respawn() -> None:
        mujoco.mj_resetDataKeyframe(model, data, model.nkey - 1)
        if terrain is not None:
            data.qpos[:2] = terrain.origins[tiles[rng.integers(len(tiles))]][:2] + rng.uniform(-0.7, 0.7, 2)

    respawn()
    home = data.ctrl.copy()
    states = []
    for step in range(count):
        if step % SUBSTEPS == 0:
            data.ctrl[:] = home + rng.normal(0.0, 0.5, home.shape) * ACTION_SCALE
        mujoco.mj_step(model, data)
        states.append(np.concatenate([data.qpos, data.qvel, data.ctrl]))
        if step % 400 == 399:
            respawn()
    return states


def profile(model: mujoco.MjModel, states: list[np.ndarray]) -> dict[str, float]:
    data = mujoco.MjData(model)
    nq, nv = model.nq, model.nv
    kinematics = collision = forward = 0.0
    contacts = 0
    for state in states:
        data.qpos[:], data.qvel[:], data.ctrl[:] = state[:nq], state[nq : nq + nv], state[nq + nv :]
        start = time.perf_counter()
        mujoco.mj_kinematics(model, data)
        kinematics += time.perf_counter() - start
        start = time.perf_counter()
        mujoco.mj_collision(model, data)
        collision += time.perf_counter() - start
        contacts += data.ncon
        start = time.perf_counter()
        mujoco.mj_forward(model, data)
        forward += time.perf_counter() - start
    n = len(states)
    return {"forward_us": 1e6 * forward / n, "kinematics_us": 1e6 * kinematics / n, "collision_us": 1e6 * collision / n,
            "contacts": contacts / n, "geoms": model.ngeom}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--states", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=2, help="each variant is profiled this often, interleaved")
    parser.add_argument("--boxes", action="store_true", help="add the terrain built from primitives")
    args = parser.parse_args()
    terrain = generate_terrain(GO2_TS_TERRAIN)
    flat, rough = build_model(GO2), build_model(GO2, terrain)
    flat_states = record_states(flat, None, args.states, seed=0)
    rough_states = record_states(rough, terrain, args.states, seed=0)
    variants = {"flat": (flat, flat_states), "rough": (rough, rough_states)}
    for label, suffixes in LEFT_OUT.items():
        variants[f"rough without {label}"] = (without_collision(rough, suffixes), rough_states)
    if args.boxes:
        boxes = build_model(GO2, ground=lambda spec: add_box_ground(spec, terrain, GO2_TS_TERRAIN))
        variants["boxes"] = (boxes, rough_states)
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (model, states) in variants.items():
            rows[name].append(profile(model, states))
    result = {name: {key: round(float(np.median([r[key] for r in runs])), 2) for key in runs[0]}
              for name, runs in rows.items()}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
