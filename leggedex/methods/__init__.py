"""RL methods, one LightningModule each. A config selects one by ``class_path``: no registry to edit."""

from leggedex.methods.base import OnPolicyMethod, Rollout
from leggedex.methods.cts import CTSPPO
from leggedex.methods.divergence import NonFiniteError, StdOutOfRange, TrainingDiverged
from leggedex.methods.dreamwaq import DreamWaQPPO
from leggedex.methods.estimator import EstimatorPPO
from leggedex.methods.ppo import PPO
from leggedex.methods.recurrent_estimator import RecurrentEstimatorPPO
from leggedex.methods.recurrent_ppo import RecurrentPPO
from leggedex.methods.recurrent_teacher_student import RecurrentTeacherStudentPPO
from leggedex.methods.teacher_student import TeacherStudentPPO

__all__ = ["CTSPPO", "DreamWaQPPO", "EstimatorPPO", "NonFiniteError", "OnPolicyMethod", "PPO", "RecurrentEstimatorPPO",
           "RecurrentPPO", "RecurrentTeacherStudentPPO", "Rollout", "StdOutOfRange", "TeacherStudentPPO",
           "TrainingDiverged"]
