"""A rolling buffer of the last ``length`` frames of an observation, oldest first, zeroed when an episode starts.

Envs use it for the ``history`` group (the student's proprioceptive history) and for frame-stacked critic
observations. ``push`` is called once per policy step (after resets), so the newest frame is always the current
observation; ``flat`` is the (num_envs, length * frame_size) view that goes into the observation dict.
"""

from __future__ import annotations

import torch


class ObsHistory:
    def __init__(self, num_envs: int, length: int, frame_size: int, device: torch.device | str) -> None:
        if length <= 0 or frame_size <= 0:
            raise ValueError(f"history length and frame size must be positive, got {length} and {frame_size}")
        self.length = length
        self.frame_size = frame_size
        self.buffer = torch.zeros(num_envs, length, frame_size, device=device)

    @property
    def size(self) -> int:
        return self.length * self.frame_size

    def reset(self, ids: torch.Tensor) -> None:
        self.buffer[ids] = 0.0

    def push(self, frame: torch.Tensor) -> None:
        if frame.shape != (self.buffer.shape[0], self.frame_size):
            raise ValueError(f"history frame must have shape {(self.buffer.shape[0], self.frame_size)}, "
                             f"got {tuple(frame.shape)}")
        self.buffer[:, :-1] = self.buffer[:, 1:].clone()
        self.buffer[:, -1] = frame

    @property
    def flat(self) -> torch.Tensor:
        return self.buffer.flatten(1)

    @property
    def newest(self) -> torch.Tensor:
        return self.buffer[:, -1]

    def state_dict(self) -> torch.Tensor:
        return self.buffer.clone()

    def load_state_dict(self, state: torch.Tensor) -> None:
        self.buffer.copy_(state)
