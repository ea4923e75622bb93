"""``leggedex fit``: a LightningCLI for on-policy RL.

    leggedex fit --config configs/quickstart.yaml [--model.learning_rate 3e-4] [--data.num_envs 64]
    leggedex fit --config configs/quickstart.yaml --ckpt_path logs/<experiment>/<run>/checkpoints/last.ckpt
    leggedex fit --config configs/quickstart.yaml --print_config

Beyond LightningCLI it adds:

- ``--experiment`` (default: the config file's stem) and ``--run_name``: runs go to
  ``logs/<experiment>/<YYYY-MM-DD_HH-MM-SS>_<run_name>/`` (names sort by time; ``logs`` is
  ``trainer.default_root_dir`` when that is set), holding TensorBoard events, the resolved ``config.yaml`` and
  ``checkpoints/``. The directory is created exclusively: a second run started in the same second gets a ``_2``
  suffix. Resuming from a checkpoint inside such a directory keeps writing into it. Any Lightning logger can be
  chosen instead with ``trainer.logger``.
- dotted options into a term table change only the entry or parameter they name (``table_overrides.py``).
- ``--torch_threads``: torch's intra-op threads (explicit on CPU; the simulators use their own pools).
- the RL callbacks (statistics, iteration checkpoints, progress line) are added unless the config lists its own.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from jsonargparse import Namespace
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger

from callbacks import EpisodeStatsLogger, IterationCheckpoint, RLProgressBar
from callbacks.checkpoint_io import check_checkpoint_file
from leggedex.cli.config_layers import check_config_layers, config_paths
from leggedex.cli.messages import LeggedexArgumentParser, import_class, quiet_lightning
from leggedex.cli.table_overrides import TableOverride, apply_table_overrides, take_table_overrides
from leggedex.data import OnPolicyDataModule
from leggedex.methods.base import OnPolicyMethod

RUN_STAMP_ENV = "LEGGEDEX_RUN_STAMP"
RUN_VERSION_ENV = "LEGGEDEX_RUN_VERSION"
CKPT_ALIASES = ("last", "best", "hpc", "registry")  # --ckpt_path values Lightning resolves itself
# jsonargparse warns about its own deprecated API that LightningCLI calls: nothing a leggedex user can act on
os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")
DEFAULT_CALLBACKS: tuple[type[Callback], ...] = (EpisodeStatsLogger, IterationCheckpoint, RLProgressBar)
TRAINER_DEFAULTS: dict[str, Any] = {
    "max_epochs": 1500,
    "accelerator": "auto",
    "devices": 1,
    "num_sanity_val_steps": 0,
    "enable_model_summary": False,
    "log_every_n_steps": 1,
}


def run_stamp() -> str:
    """The run's timestamp, shared with DDP worker processes through the environment."""
    if RUN_STAMP_ENV not in os.environ:
        os.environ[RUN_STAMP_ENV] = time.strftime("%Y-%m-%d_%H-%M-%S")
    return os.environ[RUN_STAMP_ENV]


def claim_run_directory(root: Path, name: str) -> str:
    """Create a new run directory ``root/name`` (or ``name_2``, ``name_3``, ... when another run holds it) and
    return its name. Created exclusively, so two runs never share one; DDP workers take their launcher's."""
    if os.environ.get("LOCAL_RANK", "0") != "0" and RUN_VERSION_ENV in os.environ:
        return os.environ[RUN_VERSION_ENV]
    root.mkdir(parents=True, exist_ok=True)
    for attempt in itertools.count(1):
        version = name if attempt == 1 else f"{name}_{attempt}"
        try:
            (root / version).mkdir()
        except FileExistsError:
            continue
        os.environ[RUN_VERSION_ENV] = version  # inherited by the DDP workers the launcher starts
        return version
    raise AssertionError("unreachable")


def run_dir_of_checkpoint(ckpt_path: str | None) -> Path | None:
    """``logs/<exp>/<run>`` for a checkpoint at ``logs/<exp>/<run>/checkpoints/<file>``, else None."""
    if not ckpt_path or ckpt_path in CKPT_ALIASES:
        return None
    path = Path(ckpt_path).resolve()
    if path.parent.name == "checkpoints":
        return path.parent.parent
    return None


class LeggedexCLI(LightningCLI):
    """LightningCLI with leggedex's defaults; see the module docstring."""

    table_overrides: list[TableOverride] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        quiet_lightning()
        kwargs.setdefault("parser_class", LeggedexArgumentParser)
        kwargs.setdefault("model_class", OnPolicyMethod)
        kwargs.setdefault("datamodule_class", OnPolicyDataModule)
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("auto_configure_optimizers", False)
        kwargs.setdefault("trainer_defaults", dict(TRAINER_DEFAULTS))
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        with warnings.catch_warnings():
            # leggedex.cli.main passes its arguments on explicitly (play and export too): sys.argv is not ours to read
            warnings.filterwarnings("ignore", message=r"LightningCLI's args parameter is intended")
            super().__init__(*args, **kwargs)

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """Only ``fit``: validate, test and predict have no meaning for an on-policy method (no dataset to score);
        ``leggedex play`` evaluates a policy."""
        return {"fit": LightningCLI.subcommands()["fit"]}

    def setup_parser(self, add_subcommands: bool, main_kwargs: dict[str, Any], subparser_kwargs: dict[str, Any],
                     ) -> None:
        super().setup_parser(add_subcommands, main_kwargs, subparser_kwargs)
        if not add_subcommands:  # play and export read a run's saved config.yaml, which holds fit's own two keys
            self.parser.add_argument("--ckpt_path", type=str | None, default=None, help="(fit's; ignored here)")
            self.parser.add_argument("--weights_only", type=bool | None, default=None, help="(fit's; ignored here)")

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.add_argument("--experiment", type=str | None, default=None,
                            help="Run group under logs/ (default: config stem)")
        parser.add_argument("--run_name", type=str, default="", help="Suffix of the run directory name")
        parser.add_argument("--torch_threads", type=int | None, default=None, help="torch.set_num_threads")

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        if args is None:
            args = sys.argv[1:]
        if isinstance(args, list):
            # (see table_overrides.py) applied after parsing, and to what --print_config shows
            args, self.table_overrides = take_table_overrides(args)
            try:  # config layers checked before --print_config prints what would run
                check_config_layers(config_paths(args))
            except ValueError as error:
                parser.error(str(error))
        super().parse_arguments(parser, args)
        config = self.config.get(str(self.config.get("subcommand")), self.config)
        apply_table_overrides(config, self.table_overrides)
        ckpt_path = config.get("ckpt_path")
        if ckpt_path and ckpt_path not in CKPT_ALIASES:
            check_checkpoint_file(ckpt_path)  # before LightningCLI reads its hyperparameters, and before any env

    def _parse_ckpt_path(self) -> None:
        """On resume the config as given runs; LightningCLI would put the checkpoint's model options over it, so that
        ``--model.learning_rate`` on resume was dropped. Options that differ from the checkpoint's are said and
        applied, except those its networks fix (``fixed_on_resume``), which are refused here, before any env."""
        config = self.config.get(str(self.config.get("subcommand")), self.config)
        ckpt_path = config.get("ckpt_path")
        if not ckpt_path or ckpt_path in CKPT_ALIASES or not Path(ckpt_path).is_file():
            return
        saved = torch.load(ckpt_path, weights_only=True, map_location="cpu").get("hyper_parameters") or {}
        model = config.get("model")
        if not saved or not isinstance(model, Namespace) or "init_args" not in model:
            return
        given = model.init_args.as_dict() if isinstance(model.init_args, Namespace) else dict(model.init_args)
        changed = {key: (saved[key], value) for key, value in given.items() if key in saved and saved[key] != value}
        method = import_class(str(model.get("class_path")))
        fixed = [key for key in changed if key in getattr(method, "fixed_on_resume", ())]
        if fixed:
            raise ValueError("cannot resume " + ckpt_path + " with other " + ", ".join(
                f"model.{key} ({changed[key][1]!r}; the checkpoint has {changed[key][0]!r})" for key in fixed)
                + ": its networks and optimizers were built with the checkpoint's values. Resume with those, or "
                "start a new run.")
        for key, (before, after) in changed.items():
            sys.stderr.write(f"resuming with model.{key} = {after!r} (the checkpoint ran {before!r})\n")

    def before_instantiate_classes(self) -> None:
        config = self.config.get(str(self.subcommand), self.config)
        threads = config.get("torch_threads")
        if threads is not None:
            if threads <= 0:
                raise ValueError(f"--torch_threads must be positive, got {threads}")
            torch.set_num_threads(threads)
        if run_dir_of_checkpoint(config.get("ckpt_path")) is not None:
            # a resumed run keeps the config.yaml it started with; the resuming invocation is saved beside it
            self.save_config_kwargs["config_filename"] = f"config_resumed_{run_stamp()}.yaml"
            # and writes on into its own checkpoints folder, which Lightning would warn about
            warnings.filterwarnings("ignore", message=r".*[/\\]checkpoints exists and is not empty")

    def _experiment_name(self, config: Any) -> str:
        if config.get("experiment"):
            return config["experiment"]
        paths = config.get("config") or []
        return Path(str(paths[0])).stem if paths else "default"

    def _default_logger_args(self, config: Any, claim: bool = False) -> dict[str, Any]:
        """TensorBoardLogger's arguments for the run directory (see the module docstring); with ``claim`` a new
        run directory is created for them."""
        resumed = run_dir_of_checkpoint(config.get("ckpt_path"))
        if resumed is not None:
            return {"save_dir": str(resumed.parent.parent), "name": resumed.parent.name, "version": resumed.name,
                    "default_hp_metric": False}
        name = run_stamp() + (f"_{config['run_name']}" if config.get("run_name") else "")
        root_dir = (config.get("trainer") or {}).get("default_root_dir")
        save_dir = Path(root_dir if root_dir else "logs").resolve()
        experiment = self._experiment_name(config)
        if claim:
            name = claim_run_directory(save_dir / experiment, name)
        return {"save_dir": str(save_dir), "name": experiment, "version": name, "default_hp_metric": False}

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        parser = super().init_parser(**kwargs)
        if isinstance(parser, LeggedexArgumentParser):
            parser.complete_printed_config = self._with_run_defaults
        return parser

    def _with_run_defaults(self, config: Namespace) -> Namespace:
        """``config`` as it will run: the default logger and RL callbacks filled in where the config has none."""
        config = config.clone()
        if "trainer" not in config:
            return config
        apply_table_overrides(config, self.table_overrides)
        if config.get("trainer.logger") in (None, True):
            config["trainer.logger"] = Namespace(class_path=f"{TensorBoardLogger.__module__}.TensorBoardLogger",
                                                 init_args=Namespace(**self._default_logger_args(config)))
        given = config.get("trainer.callbacks") or []
        given = list(given) if isinstance(given, list) else [given]
        present = [import_class(c.class_path) for c in given if isinstance(c, Namespace) and "class_path" in c]
        for callback_type in DEFAULT_CALLBACKS:
            if not any(isinstance(p, type) and issubclass(p, callback_type) for p in present):
                given.append(Namespace(class_path=f"callbacks.{callback_type.__name__}", init_args=Namespace()))
        config["trainer.callbacks"] = given
        return config

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Callback]) -> Trainer:
        cli_config = self.config.get(str(self.subcommand), self.config)
        if config.get("logger") in (None, True):
            config["logger"] = TensorBoardLogger(**self._default_logger_args(cli_config, claim=True))
        given = list(config.get("callbacks") or []) + list(callbacks)
        for callback_type in DEFAULT_CALLBACKS:
            if not any(isinstance(c, callback_type) for c in given):
                callbacks.append(callback_type())
        return super()._instantiate_trainer(config, callbacks)
