"""What a policy can cross: the deterministic policy on every terrain type and level of the curriculum terrain.

Each (type, level) cell gets the same number of robots, spread over the columns of that type, all holding one
command (default vx 0.5 m/s) from the flat platform at their tile's centre, facing a random direction (the tiles
are pyramids: every way out of a stairs-up tile climbs). A robot **crosses** its tile when it leaves the tile's
square before its first termination; it **falls** when its episode terminates (time-outs and leaving the terrain
are not falls) before it crossed. Tracking errors are |mean measured velocity - command| over the steps after
``settle_s`` while a robot is still on its tile, as ``evaluation.py`` measures them. No observation noise, no pushes,
no curriculum (the env is in evaluation mode).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from leggedex.envs.first_episode import FirstEpisode
from leggedex.envs.locomotion.env import LeggedLocomotion
from leggedex.envs.locomotion.evaluation import Policy
from leggedex.envs.locomotion.ground import CurriculumTerrain
from leggedex.envs.terrain import TERRAIN_TYPES, level_size
from leggedex.envs.vec_env import VecEnv, reset_after_step

DEFAULT_TERRAIN_COMMAND = (0.5, 0.0, 0.0)
CROSSED_SHARE = 0.9  # a level counts as mastered when this share of its robots crossed


class NoTerrain(ValueError):
    """The env walks on flat ground: there is nothing to evaluate per terrain."""


def terrain_of(env: VecEnv) -> CurriculumTerrain:
    """The curriculum terrain ``env`` walks on; ``NoTerrain`` for anything else."""
    if not isinstance(env, LeggedLocomotion):
        raise NoTerrain(f"the per-terrain evaluation needs a velocity-tracking env (LeggedLocomotion), got "
                        f"{type(env).__name__}")
    if not isinstance(env.ground, CurriculumTerrain):
        raise NoTerrain("the per-terrain evaluation needs a terrain (data.env.init_args.terrain); this env is flat")
    return env.ground


def terrain_cells(ground: CurriculumTerrain, levels: Sequence[int] | None = None) -> list[tuple[str, int]]:
    """Every (terrain type, level) of ``ground``, types in ``TERRAIN_TYPES`` order."""
    present = set(ground.terrain.column_types)
    rows = list(range(ground.num_rows)) if levels is None else list(levels)
    bad = [r for r in rows if not 0 <= r < ground.num_rows]
    if bad:
        raise ValueError(f"terrain levels {bad} do not exist: the terrain has levels 0 to {ground.num_rows - 1}")
    return [(kind, row) for kind in TERRAIN_TYPES if kind in present for row in rows]


def parse_tile(text: str) -> tuple[str, int]:
    """``"stairs_up:4"`` -> ("stairs_up", 4)."""
    kind, _, level = text.partition(":")
    if kind not in TERRAIN_TYPES or not level.strip().isdigit():
        raise ValueError(f"a tile is TYPE:LEVEL with TYPE one of {', '.join(TERRAIN_TYPES)}, got {text!r}")
    return kind, int(level)


def tile_column(ground: CurriculumTerrain, kind: str, level: int) -> int:
    """The first column of terrain type ``kind``, once ``kind`` and ``level`` are known to exist."""
    columns = [c for c, t in enumerate(ground.terrain.column_types) if t == kind]
    if not columns:
        raise ValueError(f"the terrain has no {kind} tiles (its types: {sorted(set(ground.terrain.column_types))})")
    terrain_cells(ground, [level])
    return columns[0]


def place_on_tile(env: VecEnv, kind: str, level: int) -> None:
    """Every env of ``env`` spawns on the first tile of terrain type ``kind`` at ``level`` from its next reset."""
    ground = terrain_of(env)
    column = tile_column(ground, kind, level)
    ground.place(torch.full_like(ground.levels, level), torch.full_like(ground.types, column))


def terrain_envs(ground: CurriculumTerrain, robots_per_tile: int, levels: Sequence[int] | None = None) -> int:
    """How many envs an evaluation with ``robots_per_tile`` robots per (type, level) cell needs."""
    return robots_per_tile * len(terrain_cells(ground, levels))


@torch.inference_mode()
def evaluate_terrain(
    env: LeggedLocomotion,
    policy: Policy,
    command: Sequence[float] = DEFAULT_TERRAIN_COMMAND,
    duration_s: float = 20.0,
    settle_s: float = 2.0,
    levels: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Run ``policy`` on every (type, level) cell with ``env.num_envs // cells`` robots each; returns
    ``{"command", "duration_s", "robots_per_tile", "types": {type: {"size": name, "levels": [row, ...]}}}`` where a
    row holds ``level``, ``size`` (slope in degrees, step or obstacle height in cm), ``crossed``, ``fall_rate``,
    ``error_vx``, ``error_vy``, ``error_yaw`` and ``time_to_cross_s`` (mean over the robots that crossed)."""
    ground = terrain_of(env)
    cells = terrain_cells(ground, levels)
    per_tile = env.num_envs // len(cells)
    if per_tile == 0:
        raise ValueError(f"the per-terrain evaluation needs at least one robot on each of its {len(cells)} "
                         f"(type, level) cells, got {env.num_envs} envs")
    n, device = env.num_envs, env.device
    cell = (torch.arange(n, device=device) // per_tile).clamp(max=len(cells) - 1)
    columns_of = {kind: [c for c, t in enumerate(ground.terrain.column_types) if t == kind] for kind, _ in cells}
    level_ids = torch.tensor([cells[int(k)][1] for k in cell], device=device)
    column_ids = torch.tensor([columns_of[cells[int(k)][0]][i % len(columns_of[cells[int(k)][0]])]
                               for i, k in enumerate(cell)], device=device)
    ground.place(level_ids, column_ids)
    target = torch.tensor(command, dtype=torch.float32, device=device)
    env.set_evaluation_commands(target.expand(n, 3).clone())
    try:
        obs = env.reset()
        centres = ground.spawn_origins(torch.arange(n, device=device))[:, :2]
        half = ground.cfg.tile_size / 2
        first = FirstEpisode(n, device)
        crossed = torch.zeros(n, dtype=torch.bool, device=device)
        fell = torch.zeros(n, dtype=torch.bool, device=device)
        cross_step = torch.zeros(n, device=device)
        vel_sum = torch.zeros(n, 3, device=device)
        vel_count = torch.zeros(n, device=device)
        settle = int(round(settle_s / env.step_dt))
        for t in range(int(round(duration_s / env.step_dt))):
            on_tile = ~crossed & ~first.fell
            obs, rewards, dones, extras = env.step(policy(obs))
            reset_after_step(policy, dones)
            first.update(rewards, dones, extras)
            fell |= on_tile & first.fell
            left = on_tile & ~first.fell & ((env.base_pos[:, :2] - centres).abs().amax(dim=1) >= half)
            crossed |= left
            cross_step[left] = t + 1
            if t >= settle:
                still = (on_tile & ~first.fell).float()
                measured = torch.cat([env.base_lin_vel[:, :2], env.base_ang_vel[:, 2:3]], dim=1)
                vel_sum += measured * still.unsqueeze(1)
                vel_count += still
    finally:
        env.set_evaluation_commands(None)
    error = (vel_sum / vel_count.clamp(min=1).unsqueeze(1) - target).abs()
    types: dict[str, dict[str, Any]] = {}
    for k, (kind, row) in enumerate(cells):
        ids = cell == k
        measured = ids & (vel_count > 0)
        went = ids & crossed
        size_name, size = level_size(ground.cfg, kind, row)
        entry = types.setdefault(kind, {"size": size_name, "levels": []})

        def mean(values: torch.Tensor, where: torch.Tensor) -> float:
            return float(values[where].mean()) if where.any() else float("nan")

        entry["levels"].append({
            "level": row, "size": round(size, 2),
            "crossed": float(crossed[ids].float().mean()), "fall_rate": float(fell[ids].float().mean()),
            "error_vx": mean(error[:, 0], measured), "error_vy": mean(error[:, 1], measured),
            "error_yaw": mean(error[:, 2], measured), "time_to_cross_s": mean(cross_step * env.step_dt, went),
        })
    for entry in types.values():
        entry["crossed_up_to"] = crossed_up_to(entry["levels"])
    return {"command": [float(v) for v in command], "duration_s": duration_s, "settle_s": settle_s,
            "robots_per_tile": per_tile, "types": types}


def crossed_up_to(rows: list[dict[str, Any]], share: float = CROSSED_SHARE) -> dict[str, Any] | None:
    """The hardest level such that it and every easier one were crossed by at least ``share`` of the robots
    (its ``level`` and ``size``); None when the easiest level was not."""
    reached = None
    for row in sorted(rows, key=lambda r: r["level"]):
        if row["crossed"] < share:
            break
        reached = {"level": row["level"], "size": row["size"]}
    return reached


SIZE_UNITS = {"slope_deg": "deg", "step_cm": "cm", "obstacle_cm": "cm"}


def terrain_table(report: dict[str, Any], key: str = "crossed") -> str:
    """Markdown: one row per terrain type, one column per level, each cell ``key`` (a share, in %) and the level's
    size; then falls per type (all levels)."""
    types = report["types"]
    levels = [row["level"] for row in next(iter(types.values()))["levels"]]
    lines = [f"{report['robots_per_tile']} robots per tile, command {tuple(report['command'])}, "
             f"{report['duration_s']:g} s: share of robots that crossed their tile (and the level's size)",
             "| terrain | " + " | ".join(f"level {r}" for r in levels) + " | falls | >= 90 % crossed up to |",
             "| --- | " + " | ".join("---:" for _ in levels) + " | ---: | ---: |"]
    for kind, entry in types.items():
        unit = SIZE_UNITS[entry["size"]]
        cells = [f"{100 * row[key]:.0f}% ({row['size']:.0f} {unit})" for row in entry["levels"]]
        falls = sum(row["fall_rate"] for row in entry["levels"]) / len(entry["levels"])
        reached = entry.get("crossed_up_to")
        up_to = "none" if reached is None else f"level {reached['level']} ({reached['size']:.0f} {unit})"
        lines.append(f"| {kind} | " + " | ".join(cells) + f" | {100 * falls:.1f}% | {up_to} |")
    return "\n".join(lines)


def terrain_heat_map(report: dict[str, Any], path: Any, title: str = "") -> None:
    """A PNG: terrain types x levels, coloured by the share of robots that crossed, each cell labelled with the
    share and the level's size. Needs matplotlib (``pip install -e ".[plot]"``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    types = report["types"]
    kinds = list(types)
    levels = [row["level"] for row in types[kinds[0]]["levels"]]
    share = torch.tensor([[row["crossed"] for row in types[k]["levels"]] for k in kinds]).numpy()
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(levels), 0.8 + 0.6 * len(kinds)))
    image = ax.imshow(share, vmin=0.0, vmax=1.0, cmap="RdYlGn", aspect="auto")
    for i, kind in enumerate(kinds):
        unit = SIZE_UNITS[types[kind]["size"]]
        for j, row in enumerate(types[kind]["levels"]):
            ax.text(j, i, f"{100 * row['crossed']:.0f}%\n{row['size']:.0f} {unit}", ha="center", va="center",
                    fontsize=7)
    ax.set_xticks(range(len(levels)), [str(r) for r in levels])
    ax.set_yticks(range(len(kinds)), kinds)
    ax.set_xlabel("terrain level")
    ax.set_title(title or f"crossed, command {tuple(report['command'])}", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.03, label="share crossed")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
