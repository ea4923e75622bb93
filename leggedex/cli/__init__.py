"""The ``leggedex`` command. Modules depend one way: ``fit`` (the LightningCLI) <- ``checkpoint`` (loading a trained
method) <- ``play`` and ``export``; this package's ``main`` dispatches to them.

    leggedex fit --config configs/quickstart.yaml                                   (fit.py)
    leggedex play --config configs/go2_flat.yaml --ckpt_path <run>/checkpoints/last.ckpt     (play.py)
    leggedex export --config configs/go2_flat.yaml --ckpt_path <run>/checkpoints/last.ckpt   (export.py)
    leggedex sim2sim --contract <run>/exports/last/deploy.json --model robot.xml  (sim2sim.py: no checkpoint, no env)
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

__all__ = ["RUN_STAMP_ENV", "LeggedexCLI", "main", "run_dir_of_checkpoint", "run_stamp"]
_FROM_FIT = ("RUN_STAMP_ENV", "LeggedexCLI", "run_dir_of_checkpoint", "run_stamp")


def __getattr__(name: str) -> Any:
    """The LightningCLI names, imported on first use: ``leggedex sim2sim`` (no training) never loads Lightning."""
    if name in _FROM_FIT:
        from leggedex.cli import fit

        return getattr(fit, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


COMMANDS = {
    "fit": "train a method (LightningCLI: --config, dotted overrides, --ckpt_path to resume, --print_config)",
    "play": "evaluate a checkpoint's deterministic policy: tracking per command, survival, return (--video)",
    "export": "write TorchScript, ONNX and the deploy contract (deploy.json) of a checkpoint",
    "sim2sim": "run an exported policy (deploy.json + ONNX) on any robot MJCF in a plain MuJoCo loop",
}


def usage() -> str:
    lines = ["usage: leggedex {fit,play,export,sim2sim} [options]", "", "commands:"]
    lines += [f"  {name:<8}{text}" for name, text in COMMANDS.items()]
    lines += ["", "leggedex <command> --help lists a command's options."]
    return "\n".join(lines)


def main(args: list[str] | None = None) -> None:
    # Lightning 2.6 on torch >= 2.10 warns about its own pytree use on every batch transfer; nothing to act on
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # under DDP Lightning asks for sync_dist=True on every epoch-level value; leggedex does not want it: episode
    # statistics are reduced once by EpisodeStatsLogger, and losses are logged as rank 0 computed them
    warnings.filterwarnings("ignore", message=r".*when logging on epoch level in distributed setting")
    argv = list(sys.argv[1:] if args is None else args)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return
    if argv[0] not in COMMANDS:
        sys.stderr.write(f"leggedex: unknown command {argv[0]!r}\n{usage()}\n")
        raise SystemExit(2)
    if argv[0] in ("play", "export", "sim2sim"):  # not Trainer stages: plain commands
        if argv[0] == "play":
            from leggedex.cli.play import main as command
        elif argv[0] == "export":
            from leggedex.cli.export import main as command
        else:
            from leggedex.cli.sim2sim import main as command
        command(argv[1:])
        return
    from callbacks.checkpoint_io import CheckpointReadError
    from callbacks.stop_signals import TrainingInterrupted
    from leggedex.cli.fit import LeggedexCLI
    from leggedex.methods.divergence import TrainingDiverged

    try:
        LeggedexCLI(args=args)
    except TrainingInterrupted as interrupted:  # last.ckpt is written: say so, and exit as the signal asked
        sys.stderr.write(f"{interrupted}\n")
        raise SystemExit(interrupted.exit_code) from None
    except CheckpointReadError as error:
        sys.stderr.write(f"leggedex fit: {error}\n")
        raise SystemExit(1) from None
    except TrainingDiverged as error:  # the message and the checkpoint it can resume from say all a traceback would
        sys.stderr.write(f"leggedex fit: {type(error).__name__}: {error}\n")
        raise SystemExit(1) from None
