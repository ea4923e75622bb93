"""Lightning callbacks for RL training: statistics logging, iteration checkpoints, progress display, phases."""

from callbacks.checkpoint import IterationCheckpoint
from callbacks.distillation import DistillationPhase
from callbacks.episode_stats import EpisodeStatsLogger
from callbacks.locomotion_eval import LocomotionEvaluation
from callbacks.progress import RLProgressBar
from callbacks.video import VideoRecorder

__all__ = [
    "DistillationPhase", "EpisodeStatsLogger", "IterationCheckpoint", "LocomotionEvaluation", "RLProgressBar",
    "VideoRecorder",
]
