"""Neural-network building blocks: MLPs, actor-critics, encoders and the empirical normalizer."""

from leggedex.modules.actor_critic import ActorCritic
from leggedex.modules.actor_critic_ts import ActorCriticTS
from leggedex.modules.mlp import MLP, activation
from leggedex.modules.normalizer import EmpiricalNormalizer
from leggedex.modules.tcn import TCNEncoder

__all__ = ["MLP", "ActorCritic", "ActorCriticTS", "EmpiricalNormalizer", "TCNEncoder", "activation"]
