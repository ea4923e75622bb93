"""Legged locomotion tasks (simulator-agnostic torch code over a ``SimBackend``)."""

from leggedex.envs.locomotion.config import (
    CommandsConfig,
    DomainRandomization,
    ObservationConfig,
    RewardConfig,
    TerminationConfig,
)
from leggedex.envs.locomotion.env import LeggedLocomotion

__all__ = [
    "CommandsConfig",
    "DomainRandomization",
    "LeggedLocomotion",
    "ObservationConfig",
    "RewardConfig",
    "TerminationConfig",
]
