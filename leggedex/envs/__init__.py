"""Vectorized environments: the VecEnv contract, reference tasks and the Go2 locomotion task."""

from leggedex.envs.locomotion import LeggedLocomotion
from leggedex.envs.point_mass import PointMassReach
from leggedex.envs.terrain import TerrainConfig
from leggedex.envs.vec_env import Obs, ObsSpec, VecEnv

__all__ = ["LeggedLocomotion", "Obs", "ObsSpec", "PointMassReach", "TerrainConfig", "VecEnv"]
