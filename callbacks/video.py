"""Records a short MP4 of the deterministic policy every N iterations (rank 0; off unless listed in a config)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from callbacks.checkpoint import completed_iterations


class VideoRecorder(Callback):
    """Writes ``<run dir>/videos/iteration_<it>.mp4``: one robot following ``command`` for ``duration_s``.

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
        self._env = None
        self.written: list[Path] = []

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        iteration = completed_iterations(trainer)
        if iteration % self.every_n_iterations and iteration != trainer.max_epochs:
            return
        log_dir = trainer.log_dir  # a collective under DDP: every rank must ask
        if not trainer.is_global_zero or log_dir is None:
            return
        from leggedex.envs.locomotion.video import render_rollout, write_mp4

        if self._env is None:
            self._env = trainer.datamodule.env_factory(1, 0, "cpu", random_initial_episode_length=False)
        groups = pl_module.policy_inputs()

        def policy(obs: dict[str, torch.Tensor]) -> torch.Tensor:
            return pl_module.inference_policy(*(obs[g].to(pl_module.device) for g in groups)).cpu()

        frames = render_rollout(self._env, policy, self.command, self.duration_s, self.width, self.height)
        path = Path(log_dir) / "videos" / f"iteration_{iteration}.mp4"
        self.written.append(write_mp4(frames, path, fps=1.0 / self._env.step_dt))

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None
