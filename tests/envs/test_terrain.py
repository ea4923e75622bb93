"""Curriculum terrain: layout, MuJoCo heightfield and the torch height sampler agree."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

from leggedex.envs.terrain import (
    TERRAIN_TYPES,
    HeightSampler,
    TerrainConfig,
    column_types,
    generate_terrain,
)

SMALL = dict(num_rows=3, num_cols=5, tile_size=3.0, border=1.0, resolution=0.1, platform=1.0)


def test_columns_follow_the_proportions_and_rows_get_harder() -> None:
    cfg = TerrainConfig(**SMALL)
    assert column_types(cfg) == list(TERRAIN_TYPES)
    terrain = generate_terrain(cfg, seed=0)
    n = 30
    b = 10
    slope = terrain.heights[b:, b : b + n]  # the smooth-slope column
    tile_max = [slope[r * n : (r + 1) * n].max() for r in range(3)]
    assert tile_max[0] == 0.0 and tile_max[0] < tile_max[1] < tile_max[2]
    stairs_down = terrain.heights[b + 2 * n : b + 3 * n, b + 3 * n : b + 4 * n]
    assert stairs_down.min() < -0.1
    # robots spawn on the flat platform at each tile centre, at height 0
    centre = terrain.origins[2, 2, :2]
    assert HeightSampler(terrain)(torch.tensor(centre, dtype=torch.float32)) == pytest.approx(0.0, abs=1e-6)


def test_heightfield_in_mujoco_matches_the_sampler() -> None:
    cfg = TerrainConfig(**SMALL)
    terrain = generate_terrain(cfg, seed=1)
    from leggedex.envs.backends.mjcf import add_heightfield

    spec = mujoco.MjSpec()
    add_heightfield(spec, terrain)
    model = spec.compile()
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    sampler = HeightSampler(terrain)
    rng = np.random.default_rng(0)
    nx, ny = terrain.heights.shape
    geomid = np.zeros(1, dtype=np.int32)
    for _ in range(50):  # at grid vertices the two must agree exactly (up to float32 storage)
        i, j = rng.integers(0, nx), rng.integers(0, ny)
        x, y = (i + 0.5) * cfg.resolution, (j + 0.5) * cfg.resolution
        distance = mujoco.mj_ray(model, data, np.array([x, y, 5.0]), np.array([0.0, 0.0, -1.0]), None, 1, -1, geomid)
        assert 5.0 - distance == pytest.approx(terrain.heights[i, j], abs=2e-4)
        assert float(sampler(torch.tensor([x, y]))) == pytest.approx(terrain.heights[i, j], abs=1e-5)


def test_bad_terrain_configuration_is_named() -> None:
    with pytest.raises(ValueError, match="unknown terrain type"):
        TerrainConfig(proportions={"lava": 1.0}).validate()
    with pytest.raises(ValueError, match="num_rows"):
        TerrainConfig(num_rows=0).validate()


def test_the_robot_lands_on_the_heightfield_through_the_backend() -> None:
    from leggedex.envs.backends import MujocoBatchBackend

    terrain = generate_terrain(TerrainConfig(**SMALL), seed=2)
    backend = MujocoBatchBackend(2, terrain=terrain, num_threads=1)
    origins = torch.tensor(terrain.origins[[0, 2], [1, 3]], dtype=torch.float32)  # an easy and a hard tile
    origins[:, 2] = backend.home_base_height + 0.05
    quat = torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(2, 1)
    zeros = torch.zeros(2, 3)
    backend.reset(torch.arange(2), origins, quat, zeros, zeros, backend.default_dof_pos.repeat(2, 1),
                  torch.zeros(2, 12))
    for _ in range(25):
        backend.step()
    assert backend.foot_contact.any(dim=1).all()
    assert (backend.root_pos[:, 2] > 0.15).all() and not backend.sim_failures().any()
    assert torch.allclose(backend.root_pos[:, :2], origins[:, :2], atol=0.3)
