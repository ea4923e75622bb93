"""Rollout storages, one per observation layout a method trains on."""

from leggedex.storage.rollout import MiniBatch, RolloutStorage

__all__ = ["MiniBatch", "RolloutStorage"]
