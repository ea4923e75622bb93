"""Curriculum terrain as one heightfield: rows are difficulty levels, columns terrain types (legged_gym's layout).

``generate_terrain`` builds a (rows x tile) by (cols x tile) height grid surrounded by a flat border, with the
types smooth slope, rough slope, stairs up, stairs down and discrete obstacles mixed by ``proportions``.
The grid is simulator-neutral: a backend turns it into its ground (MuJoCo: ``backends/mjcf.py``, an hfield), and
``HeightSampler`` reads heights at arbitrary world points in torch by bilinear interpolation of the same grid, so
height scans need no ray casts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

TERRAIN_TYPES = ("smooth_slope", "rough_slope", "stairs_up", "stairs_down", "discrete")


@dataclass
class TerrainConfig:
    """Sizes in metres. ``proportions`` weights the terrain types (columns) in ``TERRAIN_TYPES`` order."""

    num_rows: int = 10
    num_cols: int = 10
    tile_size: float = 8.0
    border: float = 20.0
    resolution: float = 0.1
    proportions: dict[str, float] = field(default_factory=lambda: {
        "smooth_slope": 0.2, "rough_slope": 0.1, "stairs_up": 0.25, "stairs_down": 0.25, "discrete": 0.2,
    })
    max_slope: float = 0.4  # rise over run at the hardest level
    rough_amplitude: float = 0.05
    max_step_height: float = 0.18
    step_width: float = 0.31
    max_obstacle_height: float = 0.15
    platform: float = 2.0  # flat square at each tile centre, where robots spawn
    seed: int = 0  # the same terrain on every rank and in evaluation envs
    curriculum: bool = True  # legged_gym's rule; off: robots spawn on random levels
    max_init_level: int = 4  # first levels are drawn in [0, max_init_level]

    def validate(self) -> None:
        if self.num_rows <= 0 or self.num_cols <= 0:
            raise ValueError(f"terrain.num_rows and num_cols must be positive, got {self.num_rows}, {self.num_cols}")
        if self.resolution <= 0 or self.tile_size <= self.platform:
            raise ValueError("terrain.resolution must be > 0 and terrain.tile_size larger than terrain.platform")
        unknown = set(self.proportions) - set(TERRAIN_TYPES)
        if unknown:
            raise ValueError(f"unknown terrain type(s) {sorted(unknown)} in terrain.proportions; "
                             f"known: {TERRAIN_TYPES}")
        if any(v < 0 for v in self.proportions.values()) or sum(self.proportions.values()) <= 0:
            raise ValueError("terrain.proportions must be >= 0 with a positive sum")
        if not 0 <= self.max_init_level:
            raise ValueError(f"terrain.max_init_level must be >= 0, got {self.max_init_level}")


@dataclass
class Terrain:
    heights: np.ndarray  # (nx, ny) metres, x along rows
    resolution: float
    border: float
    origins: np.ndarray  # (num_rows, num_cols, 3) spawn point at each tile centre
    column_types: list[str]


def column_types(cfg: TerrainConfig) -> list[str]:
    """The terrain type of every column, in proportion to ``cfg.proportions``."""
    weights = np.array([cfg.proportions.get(t, 0.0) for t in TERRAIN_TYPES], dtype=float)
    cumulative = np.cumsum(weights / weights.sum())
    return [TERRAIN_TYPES[int(np.searchsorted(cumulative, (c + 0.5) / cfg.num_cols))] for c in range(cfg.num_cols)]


def level_difficulty(cfg: TerrainConfig, level: int) -> float:
    """A row's difficulty in [0, 1]: 0 at level 0, 1 at the last row."""
    return level / max(cfg.num_rows - 1, 1)


def slope(cfg: TerrainConfig, difficulty: float) -> float:
    """Rise over run of the slope tiles."""
    return cfg.max_slope * difficulty


def step_height(cfg: TerrainConfig, difficulty: float) -> float:
    """Height of one stair (m)."""
    return cfg.max_step_height * (0.2 + 0.8 * difficulty)


def obstacle_height(cfg: TerrainConfig, difficulty: float) -> float:
    """The tallest obstacle of a discrete tile (m); each is drawn in [0.3, 1] of it."""
    return cfg.max_obstacle_height * difficulty


def level_size(cfg: TerrainConfig, kind: str, level: int) -> tuple[str, float]:
    """What makes a tile of ``kind`` at ``level`` hard, by name and value: the slope in degrees, the step height
    or the tallest obstacle in cm (``_tile``'s formulas; ``_tile`` keeps its own order of operations so that the
    heights stay bit-identical to earlier releases, and tests check that the two agree)."""
    d = level_difficulty(cfg, level)
    if kind in ("smooth_slope", "rough_slope"):
        return "slope_deg", math.degrees(math.atan(slope(cfg, d)))
    if kind in ("stairs_up", "stairs_down"):
        return "step_cm", 100.0 * step_height(cfg, d)
    if kind == "discrete":
        return "obstacle_cm", 100.0 * obstacle_height(cfg, d)
    raise ValueError(f"unknown terrain type {kind!r}")


def _tile(kind: str, difficulty: float, cfg: TerrainConfig, n: int, rng: np.random.Generator) -> np.ndarray:
    """One tile's heights (n x n) relative to its flat platform, for ``difficulty`` in [0, 1]."""
    coords = (np.arange(n) + 0.5) * cfg.resolution - cfg.tile_size / 2
    x, y = np.meshgrid(coords, coords, indexing="ij")
    radius = np.maximum(np.abs(x), np.abs(y)) - cfg.platform / 2  # distance outside the central platform
    outside = np.clip(radius, 0.0, None)
    if kind in ("smooth_slope", "rough_slope"):
        heights = outside * cfg.max_slope * difficulty  # a pyramid rising from the platform
        if kind == "rough_slope":
            heights = heights + rng.uniform(-1, 1, size=heights.shape) * cfg.rough_amplitude * (0.5 + difficulty)
        return heights
    if kind in ("stairs_up", "stairs_down"):
        step = np.floor(outside / cfg.step_width) * cfg.max_step_height * (0.2 + 0.8 * difficulty)
        return step if kind == "stairs_up" else -step
    if kind == "discrete":
        heights = np.zeros((n, n))
        size = max(int(round(0.6 / cfg.resolution)), 1)
        for _ in range(int(20 + 20 * difficulty)):
            i, j = rng.integers(0, n - size, size=2)
            heights[i : i + size, j : j + size] = rng.uniform(0.3, 1.0) * cfg.max_obstacle_height * difficulty
        heights[radius <= 0] = 0.0
        return heights
    raise ValueError(f"unknown terrain type {kind!r}")


def generate_terrain(cfg: TerrainConfig, seed: int | None = None) -> Terrain:
    """The terrain of ``cfg`` (random parts drawn from ``seed``, default ``cfg.seed``)."""
    cfg.validate()
    rng = np.random.default_rng(cfg.seed if seed is None else seed)
    n = int(round(cfg.tile_size / cfg.resolution))
    b = int(round(cfg.border / cfg.resolution))
    heights = np.zeros((cfg.num_rows * n + 2 * b, cfg.num_cols * n + 2 * b))
    types = column_types(cfg)
    origins = np.zeros((cfg.num_rows, cfg.num_cols, 3))
    for r in range(cfg.num_rows):
        d = level_difficulty(cfg, r)
        for c, kind in enumerate(types):
            heights[b + r * n : b + (r + 1) * n, b + c * n : b + (c + 1) * n] = _tile(kind, d, cfg, n, rng)
            origins[r, c] = [cfg.border + (r + 0.5) * cfg.tile_size, cfg.border + (c + 0.5) * cfg.tile_size, 0.0]
    return Terrain(heights, cfg.resolution, cfg.border, origins, types)


class HeightSampler:
    """Terrain height at world (x, y) points by bilinear interpolation of the grid (torch, batched)."""

    def __init__(self, terrain: Terrain, device: torch.device | str = "cpu") -> None:
        self.heights = torch.as_tensor(terrain.heights, dtype=torch.float32, device=device)
        self.resolution = terrain.resolution

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        """``points`` (..., 2 or 3) world coordinates -> heights (...)."""
        nx, ny = self.heights.shape
        gx = (points[..., 0] / self.resolution - 0.5).clamp(0, nx - 1.001)
        gy = (points[..., 1] / self.resolution - 0.5).clamp(0, ny - 1.001)
        i, j = gx.floor().long(), gy.floor().long()
        fx, fy = gx - i, gy - j
        h = self.heights
        return ((1 - fx) * (1 - fy) * h[i, j] + fx * (1 - fy) * h[i + 1, j]
                + (1 - fx) * fy * h[i, j + 1] + fx * fy * h[i + 1, j + 1])

    def normals(self, points: torch.Tensor) -> torch.Tensor:
        """Unit surface normals (..., 3) at world (x, y) points, from central differences one cell apart."""
        d = self.resolution
        x, y = points[..., 0], points[..., 1]
        dx = (self(torch.stack([x + d, y], -1)) - self(torch.stack([x - d, y], -1))) / (2 * d)
        dy = (self(torch.stack([x, y + d], -1)) - self(torch.stack([x, y - d], -1))) / (2 * d)
        normal = torch.stack([-dx, -dy, torch.ones_like(dx)], dim=-1)
        return normal / normal.norm(dim=-1, keepdim=True)
