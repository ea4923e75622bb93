"""Loading a trained method for the commands that use a checkpoint (play, export, the scripts): the training config
parsed without running anything, the checkpoint checked against it, an evaluation env, and the fit between the two.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from callbacks.checkpoint_io import check_checkpoint_file
from leggedex.cli.fit import LeggedexCLI
from leggedex.cli.messages import closest
from leggedex.envs.vec_env import VecEnv
from leggedex.methods.base import OnPolicyMethod


class CommandHelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The module docstring as written, and every option's default (unless its help already says it)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def parse_command_line(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The command's own options, and the config overrides (dotted keys, ``--data.num_envs 8``) for the config.

    An unknown option without a dot is a misspelt option of the command: refused with the closest ones.
    """
    args, overrides = parser.parse_known_args(argv)
    for token in overrides:
        name = token.split("=", 1)[0]
        if name.startswith("-") and "." not in name:
            hint = closest(name, list(parser._option_string_actions))
            parser.error(f"unrecognized option {name}" + (f"; {hint}" if hint else ""))
    return args, overrides


def load_method(config_args: list[str], ckpt_path: str | Path) -> tuple[Any, OnPolicyMethod]:
    """Parse a training config (plus overrides) without running anything and load ``ckpt_path`` into its method.

    Returns the LightningCLI (for ``cli.datamodule.env_factory``) and the method in eval mode on the CPU. A
    checkpoint written by another method is refused with both names before the method is constructed.
    """
    ckpt_path = Path(ckpt_path)
    check_checkpoint_file(ckpt_path)
    cli = LeggedexCLI(args=[*config_args, "--trainer.logger", "false"], run=False, save_config_callback=None)
    method_type = type(cli.model)
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    written_by = (checkpoint.get("leggedex") or {}).get("method")
    if written_by is None:
        raise ValueError(f"{ckpt_path} was not written by a leggedex method (no 'leggedex' entry)")
    if written_by != method_type.method_name():
        raise ValueError(
            f"checkpoint {ckpt_path} was written by method {written_by} but the config's method is "
            f"{method_type.method_name()}; use the config of the method that wrote it"
        )
    method = method_type.load_from_checkpoint(ckpt_path, map_location="cpu")
    method.eval()
    return cli, method


def build_env(cli: Any, num_envs: int, seed: int, evaluation: bool = True) -> VecEnv:
    """The config's env (``OnPolicyDataModule.evaluation_env``); with ``evaluation``, every episode starts at
    step 0 (no spread start)."""
    return cli.datamodule.evaluation_env(num_envs, seed, spread_start=not evaluation)


def check_policy_fits_env(method: OnPolicyMethod, env: VecEnv, ckpt_path: str | Path = "the checkpoint") -> None:
    """Raise a ``ValueError`` naming every observation group or action size that differs between the two."""
    spec = method.obs_spec
    if spec is None:
        raise ValueError(f"{ckpt_path} holds no observation spec; was it written before the method was built?")
    env_groups = env.obs_groups
    problems = []
    for group in method.policy_inputs():
        if group not in env_groups:
            problems.append(f"group '{group}' is missing in the env (it has {sorted(env_groups)})")
        elif env_groups[group] != spec.groups.get(group):
            problems.append(f"group '{group}' has size {spec.groups.get(group)} in the checkpoint but "
                            f"{env_groups[group]} in the env")
    if env.num_actions != spec.num_actions:
        problems.append(f"{spec.num_actions} actions in the checkpoint but {env.num_actions} in the env")
    if problems:
        raise ValueError(f"{ckpt_path} does not fit the env of this config ({type(env).__name__}): "
                         + "; ".join(problems) + ". Use the config the checkpoint was trained with.")
