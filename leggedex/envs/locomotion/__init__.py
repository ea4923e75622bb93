"""Legged locomotion tasks (simulator-agnostic torch code over a ``SimBackend``)."""

from leggedex.envs.locomotion.config import (
    CommandsConfig,
    EventConfig,
    ObservationConfig,
    RewardConfig,
    TerminationConfig,
)
from leggedex.envs.locomotion.env import LeggedLocomotion

__all__ = [
    "CommandsConfig",
    "EventConfig",
    "LeggedLocomotion",
    "ObservationConfig",
    "RewardConfig",
    "TerminationConfig",
]
