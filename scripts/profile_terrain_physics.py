"""Where rough-terrain physics spends its time: MuJoCo's forward pass and its collision stage per physics step, on
flat ground and on go2_ts's heightfield, and on the heightfield with groups of robot geoms left out of collision.

States are recorded once per ground (one world, random PD targets N(0, 0.5) x action scale 0.25 around the home
pose, a new tile on levels 0-2 every 2 s) and then replayed on every variant, so every variant computes the same
states: ``mj_kinematics`` then a timed ``mj_collision``, and a timed ``mj_forward``. A variant whose contact count
differs from the full model's changes the physics on these states; one with the same count only skips tests that
found nothing. One thread, no leggedex env: the cost of the simulator alone.

    python scripts/profile_terrain_physics.py --states 4000 --rounds 2
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import mujoco
import numpy as np

from leggedex.envs.backends.mjcf import build_model
from leggedex.envs.terrain import Terrain, TerrainConfig, generate_terrain
from leggedex.robots.go2 import GO2

GO2_TS_TERRAIN = TerrainConfig(num_rows=10, num_cols=10, tile_size=8.0, border=5.0, max_init_level=2)
LEFT_OUT = {"thighs and hips": ("_thigh", "_hip"), "calves (shins)": ("_calf",),
            "base (trunk, head)": ("trunk", "head"), "all but the feet and base": ("_thigh", "_hip", "_calf")}
ACTION_SCALE, SUBSTEPS = 0.25, 4


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
    collision = forward = 0.0
    contacts = 0
    for state in states:
        data.qpos[:], data.qvel[:], data.ctrl[:] = state[:nq], state[nq : nq + nv], state[nq + nv :]
        mujoco.mj_kinematics(model, data)
        start = time.perf_counter()
        mujoco.mj_collision(model, data)
        collision += time.perf_counter() - start
        contacts += data.ncon
        start = time.perf_counter()
        mujoco.mj_forward(model, data)
        forward += time.perf_counter() - start
    n = len(states)
    return {"forward_us": 1e6 * forward / n, "collision_us": 1e6 * collision / n, "contacts": contacts / n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--states", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=2, help="each variant is profiled this often, interleaved")
    args = parser.parse_args()
    terrain = generate_terrain(GO2_TS_TERRAIN)
    flat, rough = build_model(GO2), build_model(GO2, terrain)
    flat_states = record_states(flat, None, args.states, seed=0)
    rough_states = record_states(rough, terrain, args.states, seed=0)
    variants = {"flat": (flat, flat_states), "rough": (rough, rough_states)}
    for label, suffixes in LEFT_OUT.items():
        variants[f"rough without {label}"] = (without_collision(rough, suffixes), rough_states)
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (model, states) in variants.items():
            rows[name].append(profile(model, states))
    result = {name: {key: round(float(np.median([r[key] for r in runs])), 2) for key in runs[0]}
              for name, runs in rows.items()}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
