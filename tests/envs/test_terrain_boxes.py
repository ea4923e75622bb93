"""The primitive-built terrain of ``scripts/profile_terrain_physics.py --boxes`` has the height grid's surface:
a ray cast down at cell centres hits it at the grid's height, as on the hfield the task trains on."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import mujoco
import numpy as np

from leggedex.envs.backends.mjcf import build_model
from leggedex.envs.terrain import TerrainConfig, generate_terrain
from leggedex.robots.go2 import GO2

REPO = Path(__file__).resolve().parents[2]


def load_profiler():
    spec = importlib.util.spec_from_file_location("profile_terrain_physics",
                                                  REPO / "scripts" / "profile_terrain_physics.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ray_heights(model: mujoco.MjModel, points: np.ndarray) -> np.ndarray:
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    geom = np.zeros(1, dtype=np.int32)
    top = 5.0
    return np.array([top - mujoco.mj_ray(model, data, np.array([x, y, top]), np.array([0.0, 0.0, -1.0]),
                                         None, 1, -1, geom) for x, y in points])


def test_box_ground_matches_the_grid_at_cell_centres() -> None:
    profiler = load_profiler()
    cfg = TerrainConfig(num_rows=3, num_cols=5, tile_size=4.0, border=1.0, platform=1.0, seed=3)
    terrain = generate_terrain(cfg)
    res = terrain.resolution
    rng = np.random.default_rng(0)
    nx, ny = terrain.heights.shape  # x >= 1.5 m: the robot stands near the origin; the outermost cells are the
    cells = np.stack([rng.integers(15, nx - 1, 400), rng.integers(1, ny - 1, 400)], axis=1)  # hfield's edge
    points = (cells + 0.5) * res
    expected = terrain.heights[cells[:, 0], cells[:, 1]]
    boxes = build_model(GO2, ground=lambda spec: profiler.add_box_ground(spec, terrain, cfg))
    hfield = build_model(GO2, terrain)
    assert boxes.ngeom > hfield.ngeom + 50  # stairs and obstacles became boxes
    np.testing.assert_allclose(ray_heights(hfield, points), expected, atol=1e-4)
    np.testing.assert_allclose(ray_heights(boxes, points), expected, atol=1e-4)
    assert np.ptp(expected) > 0.1  # the points span slopes, steps and obstacles, not only flat ground
