"""Neural-network building blocks: MLPs, actor-critics, encoders, an estimator and the empirical normalizer."""

from leggedex.modules.actor_critic import ActorCritic
from leggedex.modules.actor_critic_dreamwaq import ActorCriticDreamWaQ
from leggedex.modules.actor_critic_estimator import ActorCriticEstimator
from leggedex.modules.actor_critic_estimator_recurrent import ActorCriticRecurrentEstimator
from leggedex.modules.actor_critic_recurrent import RecurrentActorCritic
from leggedex.modules.actor_critic_ts import ActorCriticTS
from leggedex.modules.actor_critic_ts_recurrent import ActorCriticRecurrentTS
from leggedex.modules.frozen_teacher import FrozenTeacher
from leggedex.modules.memory import Memory
from leggedex.modules.mlp import MLP, activation
from leggedex.modules.normalizer import EmpiricalNormalizer
from leggedex.modules.tcn import TCNEncoder

__all__ = ["ActorCritic", "ActorCriticDreamWaQ", "ActorCriticEstimator", "ActorCriticRecurrentEstimator",
           "ActorCriticRecurrentTS", "ActorCriticTS", "EmpiricalNormalizer", "FrozenTeacher", "MLP", "Memory",
           "RecurrentActorCritic", "TCNEncoder", "activation"]
