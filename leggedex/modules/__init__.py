"""Neural-network building blocks: MLPs, actor-critics, encoders and the empirical normalizer."""

from leggedex.modules.actor_critic import ActorCritic
from leggedex.modules.mlp import MLP, activation
from leggedex.modules.normalizer import EmpiricalNormalizer

__all__ = ["MLP", "ActorCritic", "EmpiricalNormalizer", "activation"]
