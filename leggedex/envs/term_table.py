"""Tables of named terms: small functions that a config selects by name and parametrizes in place.

A task module registers its functions in a ``TermTable`` (``@REWARDS.term``); a config entry names one and gives its
parameters beside its weight or switch, e.g. ``base_height: {weight: -10.0, target: 0.30}``. A term's parameters are
its function's keyword-only arguments, all given by the config (the config is the one place their values live), and
are checked against the signature when the env is built, so a misspelt term or parameter fails before any step.
A term that needs derived values (body names to indices, a grid of scan points) registers a ``prepare(env, **params)``
that turns the config parameters (then the keyword-only arguments of ``prepare``) into the function's, once.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

Fn = TypeVar("Fn", bound=Callable[..., Any])
Prepare = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Registered:
    """A function in a table, with what the table knows about it (``info``: a unit, a default mode)."""

    fn: Callable[..., Any]
    prepare: Prepare | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def parameters(self) -> tuple[list[str], list[str]]:
        """The parameters a config gives (keyword-only ones of ``prepare`` or the function): (all, required)."""
        signature = inspect.signature(self.prepare if self.prepare is not None else self.fn)
        kwonly = [p for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY]
        return [p.name for p in kwonly], [p.name for p in kwonly if p.default is p.empty]


@dataclass(frozen=True)
class BoundTerm:
    """A term selected by a config: its function with the parameters the config gave."""

    name: str
    fn: Callable[..., Any]
    params: dict[str, Any]

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args, **self.params)


class TermTable:
    """Named functions of one kind (``kind`` and ``config_key`` name them in errors)."""

    def __init__(self, kind: str, config_key: str) -> None:
        self.kind = kind
        self.config_key = config_key
        self.entries: dict[str, Registered] = {}

    def term(self, fn: Fn | None = None, *, prepare: Prepare | None = None, **info: Any) -> Any:
        """Register ``fn`` under its name; as ``@table.term`` or ``@table.term(prepare=..., unit=...)``."""
        def register(f: Fn) -> Fn:
            if f.__name__ in self.entries:
                raise ValueError(f"{self.kind} term {f.__name__!r} is registered twice")
            self.entries[f.__name__] = Registered(f, prepare, info)
            return f

        return register(fn) if fn is not None else register

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def names(self) -> list[str]:
        return sorted(self.entries)

    def __getitem__(self, name: str) -> Registered:
        if name not in self.entries:
            raise ValueError(f"unknown {self.kind} term {name!r} in {self.config_key}; known: {self.names()}")
        return self.entries[name]

    def check(self, name: str, params: Mapping[str, Any] | None) -> None:
        """Raise a ValueError naming the config key when ``name`` is unknown or ``params`` do not fit the term's
        signature (None: a term switched off, only its name is checked)."""
        accepted, required = self[name].parameters()
        if params is None:
            return
        unknown = sorted(set(params) - set(accepted))
        if unknown:
            raise ValueError(f"{self.config_key}.{name}: unknown parameter(s) {unknown}; {name} takes {accepted}")
        missing = [p for p in required if p not in params]
        if missing:
            raise ValueError(f"{self.config_key}.{name} needs parameter(s) {missing} (it takes {accepted})")

    def bind(self, name: str, params: Mapping[str, Any], env: Any) -> BoundTerm:
        """Check ``params`` and prepare them for ``env`` (see the module docstring)."""
        self.check(name, params)
        entry = self.entries[name]
        values = entry.prepare(env, **params) if entry.prepare is not None else dict(params)
        return BoundTerm(name, entry.fn, values)
