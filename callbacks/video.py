"""Records a short MP4 of the deterministic policy every N iterations (rank 0; off unless listed in a config)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger

from callbacks.iterations import due_iteration
from leggedex.data import on_policy_datamodule
from leggedex.envs.vec_env import VecEnv
from leggedex.methods.base import on_policy_method


def add_gif(writer: Any, tag: str, frames: np.ndarray, step: int, fps: float, every: int = 2) -> None:
    """An animated GIF in TensorBoard's image tab (what ``SummaryWriter.add_video`` makes, without moviepy)."""
    import imageio.v2 as imageio
    from tensorboard.compat.proto.summary_pb2 import Summary

    clip = frames[::every]
    buffer = io.BytesIO()
    imageio.mimwrite(buffer, list(clip), format="GIF", duration=1000.0 * every / fps, loop=0)
    _, height, width, channels = clip.shape
    image = Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=buffer.getvalue())
    writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)


class VideoRecorder(Callback):
    """Writes ``<run dir>/videos/iteration_<it>.mp4``: one robot following ``command`` for ``duration_s``; with a
    TensorBoard logger also an animated GIF under ``Video/policy`` (every second frame).

    Args:
        every_n_iterations: recording period (and the last iteration).
        command: (vx, vy, yaw rate) held during the clip.
        duration_s, width, height: clip length and frame size.
    """

    def __init__(
        self,
        every_n_iterations: int = 100,
        command: Sequence[float] = (1.0, 0.0, 0.0),
        duration_s: float = 4.0,
        width: int = 480,
        height: int = 320,
    ) -> None:
        if every_n_iterations <= 0:
            raise ValueError("every_n_iterations must be positive")
        self.every_n_iterations = every_n_iterations
        self.command = tuple(float(v) for v in command)
        self.duration_s = duration_s
        self.width = width
        self.height = height
        self._env: VecEnv | None = None
        self.written: list[Path] = []

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        iteration = due_iteration(trainer, self.every_n_iterations)
        if iteration is None:
            return
        log_dir = trainer.log_dir  # a collective under DDP: every rank must ask
        if not trainer.is_global_zero or log_dir is None:
            return
        from leggedex.envs.locomotion.env import LeggedLocomotion
        from leggedex.envs.locomotion.video import render_rollout, write_mp4

        if self._env is None:
            self._env = on_policy_datamodule(trainer, "VideoRecorder").evaluation_env(1, 0)
        if not isinstance(self._env, LeggedLocomotion):
            raise TypeError(f"VideoRecorder films a velocity-tracking env (LeggedLocomotion), got "
                            f"{type(self._env).__name__}")
        policy = on_policy_method(pl_module, "VideoRecorder").deployed_policy()
        frames = render_rollout(self._env, policy, self.command, self.duration_s, self.width, self.height)
        fps = 1.0 / self._env.step_dt
        path = Path(log_dir) / "videos" / f"iteration_{iteration}.mp4"
        self.written.append(write_mp4(frames, path, fps=fps))
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                add_gif(logger.experiment, "Video/policy", frames, iteration, fps)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None
