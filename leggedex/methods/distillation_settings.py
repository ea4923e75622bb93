"""The settings of a DAgger distillation phase: the regression loss and the learning rate of its optimizer.

``TeacherStudentPPO.start_distillation`` takes them (the ``callbacks.DistillationPhase`` callback passes its
own), keeps them for the rest of the fit and writes them into every checkpoint, so that a resumed run goes on
with the settings it switched with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

DistillationLoss = Literal["mse", "huber"]
LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": F.mse_loss,
    "huber": F.huber_loss,  # delta 1, as rsl_rl's distillation
}


@dataclass(frozen=True)
class DistillationSettings:
    """``loss(student mean action, frozen teacher's action)``, minimized by Adam at ``learning_rate``."""

    loss: DistillationLoss = "mse"
    learning_rate: float = 1e-3

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"the distillation loss must be one of {sorted(LOSSES)}, got {self.loss!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"the distillation learning rate must be positive, got {self.learning_rate}")

    def __call__(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return LOSSES[self.loss](student, teacher)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
