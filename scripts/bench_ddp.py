"""Data-parallel throughput on CPU: a task on 1 process against 2 DDP processes (gloo), side by side.

Runs the user's command, ``leggedex fit --config <config>`` (default: configs/quickstart.yaml), once as it is
(plus ``--extra``) and once with (plus ``--extra`` and ``--ddp-extra``)
``--trainer.strategy ddp --trainer.devices 2``, alternating for ``--rounds`` rounds so that machine noise hits
both alike. Every process steps ``--num-envs`` envs with one torch thread (the config's ``torch_threads``), so
2 processes collect twice the data per iteration. Reads ``Perf/total_fps`` (env steps of all ranks per second
of iteration) through a CSV logger and reports its median over the iterations after the warm-up, the ratio,
and each run's wall time including start-up.

    python scripts/bench_ddp.py --num-envs 256 1024 --iterations 60 --rounds 2
    python scripts/bench_ddp.py --config configs/go2_flat.yaml --num-envs 256 --iterations 20 --rounds 1 \
        --ddp-extra="--data.env.init_args.backend.init_args.num_threads 1"   # one physics thread a process, 2 cores
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WARMUP = 5


def run(config: Path, devices: int, num_envs: int, iterations: int, log_dir: Path, extra: list[str]
        ) -> tuple[list[float], float]:
    """One fit; returns the logged Perf/total_fps of the iterations after the warm-up, and the wall time."""
    command = [
        sys.executable, "-m", "leggedex.cli", "fit", "--config", str(config), *extra,
        "--trainer.max_epochs", str(iterations), "--data.num_envs", str(num_envs),
        "--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir", str(log_dir),
        "--trainer.logger.name", "bench", "--trainer.logger.version", f"processes_{devices}",
    ]
    if devices > 1:
        command += ["--trainer.accelerator", "cpu", "--trainer.strategy", "ddp", "--trainer.devices", str(devices)]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    with open(log_dir / "bench" / f"processes_{devices}" / "metrics.csv") as f:
        fps = [float(row["Perf/total_fps"]) for row in csv.DictReader(f) if row.get("Perf/total_fps")]
    if len(fps) != iterations:
        raise RuntimeError(f"expected {iterations} logged iterations, got {len(fps)}")
    return fps[WARMUP:], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-envs", type=int, nargs="+", default=[256], help="envs per process")
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2, help="alternating 1-process / 2-process runs")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "quickstart.yaml")
    parser.add_argument("--extra", default="", help="overrides for both runs, one string")
    parser.add_argument("--ddp-extra", default="", help="overrides for the 2-process run only, one string")
    args = parser.parse_args()
    if args.iterations <= WARMUP:
        parser.error(f"--iterations must exceed the {WARMUP} warm-up iterations")

    print(f"{args.config.name}: {os.cpu_count()} CPU cores (load average {os.getloadavg()[0]:.2f} before), "
          f"{args.iterations} iterations x "
          f"{args.rounds} rounds, one torch thread per process; median env steps/s of all processes over iterations "
          f"{WARMUP + 1}-{args.iterations}")
    print("| envs per process | 1 process steps/s | 2 processes steps/s | ratio | wall 1 process | wall 2 processes |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for num_envs in args.num_envs:
        fps: dict[int, list[float]] = {1: [], 2: []}
        wall: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(args.rounds):
            for devices in (1, 2):
                with tempfile.TemporaryDirectory() as log_dir:
                    extra = args.extra.split() + (args.ddp_extra.split() if devices > 1 else [])
                    run_fps, run_wall = run(args.config, devices, num_envs, args.iterations, Path(log_dir), extra)
                fps[devices] += run_fps
                wall[devices].append(run_wall)
        med = {devices: statistics.median(values) for devices, values in fps.items()}
        walls = {devices: statistics.median(values) for devices, values in wall.items()}
        print(f"| {num_envs} | {med[1]:,.0f} | {med[2]:,.0f} | {med[2] / med[1]:.2f} "
              f"| {walls[1]:.1f} s | {walls[2]:.1f} s |", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
