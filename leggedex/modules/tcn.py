"""A temporal convolutional encoder of an observation history (the TCN option of the student's history encoder)."""

from __future__ import annotations

from torch import Tensor, nn

from leggedex.modules.mlp import activation


class TCNEncoder(nn.Module):
    """``(batch, length * frame_size)`` history, oldest frame first -> ``(batch, out_dim)``.

    Causal 1-D convolutions over the frames (layer i dilated by 2**i, left-padded so every layer keeps
    ``length`` time steps), then a linear layer on all time steps' features.
    """

    def __init__(
        self,
        frame_size: int,
        length: int,
        out_dim: int,
        channels: list[int] | tuple[int, ...],
        act: str = "elu",
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        if min(frame_size, length, out_dim, kernel_size) <= 0 or not channels or any(c <= 0 for c in channels):
            raise ValueError(f"TCN sizes must be positive: frame {frame_size}, length {length}, channels "
                             f"{list(channels)}, out {out_dim}, kernel {kernel_size}")
        self.frame_size = frame_size
        self.length = length
        layers: list[nn.Module] = []
        previous = frame_size
        for i, width in enumerate(channels):
            dilation = 2**i
            layers += [nn.ConstantPad1d(((kernel_size - 1) * dilation, 0), 0.0),
                       nn.Conv1d(previous, width, kernel_size, dilation=dilation), activation(act)]
            previous = width
        self.convs = nn.Sequential(*layers)
        self.head = nn.Linear(previous * length, out_dim)

    def forward(self, history: Tensor) -> Tensor:
        frames = history.reshape(-1, self.length, self.frame_size).transpose(1, 2)  # (batch, channels, time)
        return self.head(self.convs(frames).flatten(1))
