"""What the locomotion task asks of the ground: heights and normals at points, spawn points, the terrain curriculum.

``FlatGround`` is the plane at z = 0. ``CurriculumTerrain`` is the heightfield of ``leggedex.envs.terrain``:
every env owns a tile (a difficulty level = row, a terrain type = column) and spawns on its flat centre.
legged_gym's curriculum moves an env whose episode ended one level up when it walked farther than half a tile
and one level down when it covered less than half the distance its command asked for; envs that pass the top
level go to a random level, so the hardest tiles stay in the mix.
"""

from __future__ import annotations

from typing import Any

import torch

from leggedex.envs.terrain import HeightSampler, Terrain, TerrainConfig


class FlatGround:
    """The z = 0 plane (the backend's default floor)."""

    curriculum = False

    def __init__(self, num_envs: int, device: torch.device) -> None:
        self.device = device
        self.num_envs = num_envs

    def height(self, points: torch.Tensor) -> torch.Tensor:
        return torch.zeros(points.shape[:-1], device=points.device)

    def normals(self, points: torch.Tensor) -> torch.Tensor:
        normal = torch.zeros(*points.shape[:-1], 3, device=points.device)
        normal[..., 2] = 1.0
        return normal

    def spawn_origins(self, ids: torch.Tensor) -> torch.Tensor:
        """(len(ids), 3) ground point at the centre of each env's spawn area."""
        return torch.zeros(ids.numel(), 3, device=self.device)

    @property
    def spawn_radius(self) -> float:
        return 0.0

    def out_of_bounds(self, xy: torch.Tensor) -> torch.Tensor:
        return torch.zeros(xy.shape[0], dtype=torch.bool, device=xy.device)

    def update_curriculum(self, ids: torch.Tensor, walked: torch.Tensor, commanded: torch.Tensor,
                          generator: torch.Generator) -> None:
        """Move envs ``ids`` between levels from the distance they ``walked`` and the distance ``commanded``."""

    def mean_level(self) -> float:
        return 0.0

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class CurriculumTerrain(FlatGround):
    """The generated heightfield; see the module docstring for the curriculum."""

    def __init__(self, cfg: TerrainConfig, terrain: Terrain, num_envs: int, device: torch.device,
                 generator: torch.Generator) -> None:
        super().__init__(num_envs, device)
        self.cfg = cfg
        self.terrain = terrain
        self.sampler = HeightSampler(self.terrain, device)
        self.origins = torch.as_tensor(self.terrain.origins, dtype=torch.float32, device=device)
        self.curriculum = cfg.curriculum
        self.num_rows, self.num_cols = cfg.num_rows, cfg.num_cols
        top = min(cfg.max_init_level, cfg.num_rows - 1) if cfg.curriculum else cfg.num_rows - 1
        self.levels = torch.randint(0, top + 1, (num_envs,), device=device, generator=generator)
        self.types = torch.arange(num_envs, device=device) % cfg.num_cols  # every type gets the same share
        size = self.terrain.heights.shape
        self._extent = (size[0] * cfg.resolution, size[1] * cfg.resolution)

    def place(self, levels: torch.Tensor, columns: torch.Tensor) -> None:
        """Put every env on the tile (``levels``, ``columns``) from its next reset on (an evaluation's layout)."""
        if levels.shape != self.levels.shape or columns.shape != self.types.shape:
            raise ValueError(f"place needs one level and one column per env ({self.num_envs}), got "
                             f"{tuple(levels.shape)} and {tuple(columns.shape)}")
        if int(levels.min()) < 0 or int(levels.max()) >= self.num_rows or int(columns.min()) < 0 \
                or int(columns.max()) >= self.num_cols:
            raise ValueError(f"tiles lie in levels [0, {self.num_rows}) and columns [0, {self.num_cols})")
        self.levels.copy_(levels)
        self.types.copy_(columns)

    def height(self, points: torch.Tensor) -> torch.Tensor:
        return self.sampler(points)

    def normals(self, points: torch.Tensor) -> torch.Tensor:
        return self.sampler.normals(points)

    def spawn_origins(self, ids: torch.Tensor) -> torch.Tensor:
        return self.origins[self.levels[ids], self.types[ids]]

    @property
    def spawn_radius(self) -> float:
        return max(self.cfg.platform / 2 - 0.3, 0.0)  # the body stays on the flat platform

    def out_of_bounds(self, xy: torch.Tensor) -> torch.Tensor:
        margin = 1.0
        return ((xy[:, 0] < margin) | (xy[:, 1] < margin)
                | (xy[:, 0] > self._extent[0] - margin) | (xy[:, 1] > self._extent[1] - margin))

    def update_curriculum(self, ids: torch.Tensor, walked: torch.Tensor, commanded: torch.Tensor,
                          generator: torch.Generator) -> None:
        if not self.curriculum or ids.numel() == 0:
            return
        up = walked > self.cfg.tile_size / 2
        down = (walked < commanded * 0.5) & ~up
        levels = self.levels[ids] + up.long() - down.long()
        beyond = levels >= self.num_rows
        random_levels = torch.randint(0, self.num_rows, levels.shape, device=self.device, generator=generator)
        self.levels[ids] = torch.where(beyond, random_levels, levels.clamp(min=0))

    def mean_level(self) -> float:
        return float(self.levels.float().mean())

    def state_dict(self) -> dict[str, Any]:
        return {"levels": self.levels.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.levels.copy_(state["levels"])
