"""What the command line prints besides the run: Lightning's banners filtered out, and parse errors that suggest the
option meant instead of printing the whole usage."""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
import re
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from jsonargparse import ArgumentParser, Namespace
from lightning.pytorch.cli import LightningArgumentParser

# printed by every Trainer, about nothing a leggedex user chose (the accelerator is in the config) or can use
BANNERS = ("GPU available:", "TPU available:", "💡 Tip:")


class DropBanners(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(BANNERS)


def quiet_lightning() -> None:
    """Drop Lightning's accelerator banner and advertising tips (once per process)."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropBanners) for f in logger.filters):
            logger.addFilter(DropBanners())


def import_class(class_path: str) -> type | None:
    """The class ``module.Name`` names, or None."""
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None
    return cls if isinstance(cls, type) else None


def class_parameters(class_path: str) -> list[str]:
    """The keyword arguments ``class_path``'s constructors (its own and its bases') take."""
    cls = import_class(class_path)
    if cls is None:
        return []
    names = []
    for klass in inspect.getmro(cls):
        if "__init__" in vars(klass):
            names += [p.name for p in inspect.signature(vars(klass)["__init__"]).parameters.values()
                      if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return names


def closest(wrong: str, candidates: list[str]) -> str:
    """'did you mean: a, b?' for the candidates closest to ``wrong``, or ''."""
    close = difflib.get_close_matches(wrong, candidates, n=3, cutoff=0.6)
    return f"did you mean: {', '.join(close)}?" if close else ""


def did_you_mean(message: str, parser: ArgumentParser) -> str:
    """A line naming the closest accepted options to the one ``message`` refuses, or ''."""
    unknown = re.search(r"unrecognized arguments: (--[\w.]+)", message)
    if unknown:
        wrong, candidates = unknown.group(1), [o for o in parser._option_string_actions if o.startswith("--")]
    else:
        option, owner = re.search(r"Option '(\w+)' is not accepted", message), re.search(r"class_path '([\w.]+)'",
                                                                                       message)
        if option is None or owner is None:
            return ""
        wrong, candidates = option.group(1), class_parameters(owner.group(1))
    hint = closest(wrong, candidates)
    return f"\n{hint}" if hint else ""


def printing_config(parser: ArgumentParser) -> bool:
    """Whether ``--print_config`` is being answered (jsonargparse marks the parser chain while it prints)."""
    node: ArgumentParser | None = parser
    while node is not None:
        if hasattr(node, "print_config"):
            return True
        node = getattr(node, "parent_parser", None)
    return False


class LeggedexArgumentParser(LightningArgumentParser):
    """No abbreviated options (``--trainer.max_epoch`` is not ``max_epochs``); errors in a few lines;
    ``--print_config`` prints what runs (``complete_printed_config``: the CLI's run defaults)."""

    complete_printed_config: Callable[[Namespace], Namespace] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def dump(self, cfg: Namespace | None = None, *args: Any, **kwargs: Any) -> str:
        if cfg is not None and self.complete_printed_config is not None and printing_config(self):
            cfg = self.complete_printed_config(cfg)
        return super().dump(cfg, *args, **kwargs)

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:  # jsonargparse trying alternatives: raise, it handles the error
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = parser.prog.replace(" [options]", "")
        sys.stderr.write(f"{prog}: error: {message}{did_you_mean(message, parser)}\n"
                         f"(every option: {prog} --help)\n")
        self.exit(2)
