"""Rollout storages, one per observation layout a method trains on."""

from leggedex.storage.recurrent import RecurrentRolloutStorage, SequenceBatch, Sequences
from leggedex.storage.recurrent_ts import RecurrentRolloutStorageTS
from leggedex.storage.rollout import MiniBatch, RolloutStorage
from leggedex.storage.rollout_cts import CTSMiniBatch, RolloutStorageCTS
from leggedex.storage.rollout_dreamwaq import RolloutStorageDreamWaQ
from leggedex.storage.rollout_ts import RolloutStorageTS

__all__ = ["CTSMiniBatch", "MiniBatch", "RecurrentRolloutStorage", "RecurrentRolloutStorageTS", "RolloutStorage",
           "RolloutStorageCTS", "RolloutStorageDreamWaQ", "RolloutStorageTS",
           "SequenceBatch", "Sequences"]
