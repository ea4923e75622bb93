"""Termination terms: when an episode fails, each a function of the env's state returning a (num_envs,) bool.

Selected by name in ``terminations.terms`` with their parameters (``bad_orientation: {max_tilt_rad: 1.0}``; null or
leaving a term out switches it off). A failed simulation always ends its episode, and the time limit or the end of
the terrain is a time-out (bootstrapped), not a failure; neither is a term to switch off.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from leggedex.envs.term_table import BoundTerm, TermTable

if TYPE_CHECKING:
    from leggedex.envs.locomotion.env import LeggedLocomotion

TERMINATIONS = TermTable("termination", "terminations.terms")


def prepare_illegal_contact(env: LeggedLocomotion, *, bodies: Sequence[str]) -> dict[str, Any]:
    names = env.sim.contact_body_names
    missing = [b for b in bodies if b not in names]
    if missing:
        raise ValueError(f"terminations.terms.illegal_contact.bodies {missing} are not contact bodies of the model: "
                         f"{names}")
    return {"body_ids": torch.tensor([names.index(b) for b in bodies], dtype=torch.long, device=env.device)}


@TERMINATIONS.term(prepare=prepare_illegal_contact)
def illegal_contact(env: LeggedLocomotion, *, body_ids: torch.Tensor) -> torch.Tensor:
    """One of ``bodies`` (contact bodies of the robot description) touches the ground."""
    return env.body_contact[:, body_ids].any(dim=1)


@TERMINATIONS.term
def bad_orientation(env: LeggedLocomotion, *, max_tilt_rad: float) -> torch.Tensor:
    """The base's z axis is more than ``max_tilt_rad`` from vertical."""
    return env.projected_gravity[:, 2] > -math.cos(max_tilt_rad)


@TERMINATIONS.term
def base_too_low(env: LeggedLocomotion, *, min_height: float) -> torch.Tensor:
    """The base is less than ``min_height`` metres above the ground under the feet."""
    return env.base_height < min_height


def termination_entries(terms: Mapping[str, Mapping[str, Any] | None]) -> dict[str, dict[str, Any]]:
    """``terminations.terms`` checked -> the terms switched on, with their parameters, in config order."""
    for name, params in terms.items():
        TERMINATIONS.check(name, params)
    return {name: dict(params) for name, params in terms.items() if params is not None}


def bind_terminations(terms: Mapping[str, Mapping[str, Any] | None], env: LeggedLocomotion) -> list[BoundTerm]:
    """``terminations.terms`` -> the bound terms that are switched on, in config order."""
    return [TERMINATIONS.bind(name, params, env) for name, params in termination_entries(terms).items()]
