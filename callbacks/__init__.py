"""Lightning callbacks for RL training: statistics logging, iteration checkpoints, progress display."""

from callbacks.checkpoint import IterationCheckpoint
from callbacks.episode_stats import EpisodeStatsLogger
from callbacks.locomotion_eval import LocomotionEvaluation
from callbacks.progress import RLProgressBar
from callbacks.video import VideoRecorder

__all__ = ["EpisodeStatsLogger", "IterationCheckpoint", "LocomotionEvaluation", "RLProgressBar", "VideoRecorder"]
