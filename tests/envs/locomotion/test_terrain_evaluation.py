"""The per-terrain evaluation: robots placed on every (type, level) tile, crossing and falls counted per tile, and
level sizes that match the generated heights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from leggedex.envs import LeggedLocomotion
from leggedex.envs.locomotion.terrain_evaluation import (
    NoTerrain,
    evaluate_terrain,
    terrain_cells,
    terrain_envs,
    terrain_of,
    terrain_table,
)
from leggedex.envs.terrain import TERRAIN_TYPES, TerrainConfig, generate_terrain, level_size

from conftest import one_thread_backend

SMALL = dict(num_rows=3, num_cols=5, tile_size=3.0, border=1.0, resolution=0.05, platform=1.0)


def make_env(num_envs: int) -> LeggedLocomotion:
    return LeggedLocomotion(num_envs, seed=0, terrain=TerrainConfig(**SMALL), backend=one_thread_backend)


class Teleporter:
    """Zero actions; before step ``at`` moves the robots ``ids`` 2 m along x (off a 3 m tile from its centre)."""

    def __init__(self, env: LeggedLocomotion, ids: torch.Tensor, at: int) -> None:
        self.env, self.ids, self.at, self.calls = env, ids, at, 0

    def __call__(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        env = self.env
        if self.calls == self.at:
            pos = env.base_pos[self.ids].clone()
            pos[:, 0] += 2.0
            pos[:, 2] += 0.3  # above whatever the new place's ground is
            zeros = torch.zeros(len(self.ids), 3)
            env.sim.reset(self.ids, pos, env.base_quat[self.ids].clone(), zeros, zeros, env.dof_pos[self.ids].clone(),
                          torch.zeros_like(env.dof_pos[self.ids]))
        self.calls += 1
        return torch.zeros(env.num_envs, env.num_actions)


def test_every_robot_starts_on_the_tile_of_its_type_and_level_and_only_the_moved_ones_cross() -> None:
    probe = make_env(1)
    cells = terrain_cells(terrain_of(probe))
    assert cells == [(kind, row) for kind in TERRAIN_TYPES for row in range(3)]
    n = terrain_envs(terrain_of(probe), robots_per_tile=2)
    assert n == 2 * 15
    env = make_env(n)
    ground = terrain_of(env)
    moved = torch.tensor([0, 1, 6, 7])  # both robots of cells 0 (smooth slope, level 0) and 3 (rough slope, level 0)
    report = evaluate_terrain(env, Teleporter(env, moved, at=5), duration_s=0.6, settle_s=0.1)
    # placement: robot i sits on the tile (level, column) of cell i // 2, within the spawn platform
    for i in range(n):
        kind, row = cells[i // 2]
        assert int(ground.levels[i]) == row and ground.terrain.column_types[int(ground.types[i])] == kind
    assert report["robots_per_tile"] == 2 and list(report["types"]) == list(TERRAIN_TYPES)
    crossed = {(kind, row["level"]): row["crossed"] for kind, entry in report["types"].items()
               for row in entry["levels"]}
    assert crossed[("smooth_slope", 0)] == 1.0 and crossed[("rough_slope", 0)] == 1.0
    assert sum(crossed.values()) == 2.0  # nobody else left their tile standing still
    times = report["types"]["smooth_slope"]["levels"][0]["time_to_cross_s"]
    assert times == pytest.approx(6 * env.step_dt)
    for entry in report["types"].values():
        for row in entry["levels"]:
            assert row["fall_rate"] == 0.0 and 0.0 <= row["crossed"] <= 1.0
    assert not env._evaluating  # training mode restored
    assert report["types"]["smooth_slope"]["crossed_up_to"] == {"level": 0, "size": 0.0}  # level 1 not crossed
    assert report["types"]["stairs_up"]["crossed_up_to"] is None
    table = terrain_table(report)
    assert "| stairs_up | 0% (" in table and "| smooth_slope | 100% (0 deg)" in table
    assert "| 0.0% | level 0 (0 deg) |" in table and "| 0.0% | none |" in table


def test_level_sizes_are_the_heights_the_terrain_generator_builds() -> None:
    cfg = TerrainConfig(num_rows=10, num_cols=5, tile_size=8.0, border=5.0, resolution=0.1, platform=2.0)
    terrain = generate_terrain(cfg)
    n, b = int(cfg.tile_size / cfg.resolution), int(cfg.border / cfg.resolution)
    for level in (0, 4, 9):
        tile = terrain.heights[b + level * n : b + (level + 1) * n, b + 2 * n : b + 3 * n]  # column 2: stairs up
        name, size = level_size(cfg, "stairs_up", level)
        rises = np.unique(np.round(np.abs(np.diff(tile[n // 2])), 6))
        assert name == "step_cm" and rises.max() * 100 == pytest.approx(size)
        name, degrees = level_size(cfg, "smooth_slope", level)
        slope_tile = terrain.heights[b + level * n : b + (level + 1) * n, b : b + n]
        rise = np.abs(np.diff(slope_tile[n // 2])).max() / cfg.resolution
        assert name == "slope_deg" and math.degrees(math.atan(rise)) == pytest.approx(degrees, abs=0.05)
    assert level_size(cfg, "stairs_down", 4)[1] == pytest.approx(10.0)  # go2_ts's terrain: 10 cm stairs at level 4
    name, height = level_size(cfg, "discrete", 9)
    assert name == "obstacle_cm" and height == pytest.approx(15.0)


def test_flat_ground_and_a_missing_level_are_refused_by_name() -> None:
    with pytest.raises(NoTerrain, match="needs a terrain"):
        terrain_of(LeggedLocomotion(2, seed=0, backend=one_thread_backend))
    with pytest.raises(ValueError, match=r"levels \[7\] do not exist: the terrain has levels 0 to 2"):
        terrain_cells(terrain_of(make_env(1)), levels=[0, 7])
    env = make_env(4)
    with pytest.raises(ValueError, match="at least one robot on each of its 15"):
        evaluate_terrain(env, lambda obs: torch.zeros(4, 12))
