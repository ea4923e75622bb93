"""Plot scalar curves of one or more runs from their TensorBoard event files into a PNG.

    python scripts/plot_curves.py logs/quickstart/<run> --tags Train/mean_reward Train/mean_episode_length \
        --out docs/quickstart_curve.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


def read_scalars(run_dir: Path, tag: str) -> tuple[list[int], list[float]]:
    points: dict[int, float] = {}
    for events in sorted(run_dir.glob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        if tag in accumulator.Tags()["scalars"]:
            points.update({e.step: e.value for e in accumulator.Scalars(tag)})
    steps = sorted(points)
    return steps, [points[s] for s in steps]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="run directories holding events.out.tfevents.*")
    parser.add_argument("--tags", nargs="+", default=["Train/mean_reward"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--title", default="")
    parser.add_argument("--labels", nargs="+", help="one legend label per run (default: the run directory names)")
    args = parser.parse_args()
    labels = args.labels or [run.name for run in args.runs]
    if len(labels) != len(args.runs):
        raise SystemExit(f"--labels needs one label per run ({len(args.runs)}), got {len(labels)}")

    fig, axes = plt.subplots(1, len(args.tags), figsize=(5 * len(args.tags), 3.6), squeeze=False)
    for ax, tag in zip(axes[0], args.tags):
        for run, label in zip(args.runs, labels):
            steps, values = read_scalars(run, tag)
            if not steps:
                raise SystemExit(f"no scalar {tag!r} in {run}")
            ax.plot(steps, values, label=label)
        ax.set_xlabel("iteration")
        ax.set_title(tag)
        ax.grid(alpha=0.3)
    if len(args.runs) > 1:
        axes[0][0].legend(fontsize=7)
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
