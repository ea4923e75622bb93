"""Switches a teacher-student run to its distillation phase (DAgger): the student acts, the frozen teacher labels.

Either after ``start_iteration`` teacher iterations of the same fit, or from the first iteration with the teacher
of a ``TeacherStudentPPO`` checkpoint (``teacher_checkpoint``). The method keeps the phase and its settings in
its checkpoints: a run resumed with ``--ckpt_path`` continues in the phase it was in, and this callback then
changes nothing.

```yaml
trainer:
  callbacks:
    - class_path: callbacks.DistillationPhase
      init_args: {start_iteration: 1000, loss: mse, learning_rate: 1.0e-3}
```
"""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info

from leggedex.methods.distillation_settings import DistillationLoss, DistillationSettings
from leggedex.methods.teacher_student import TeacherStudentPPO


def teacher_student(pl_module: LightningModule) -> TeacherStudentPPO:
    """``pl_module`` as the ``TeacherStudentPPO`` that a distillation phase needs."""
    if not isinstance(pl_module, TeacherStudentPPO):
        raise TypeError(f"DistillationPhase distills a TeacherStudentPPO student, but the method is "
                        f"{type(pl_module).__name__}")
    return pl_module


class DistillationPhase(Callback):
    """Args:
    start_iteration: switch at the start of this iteration (0-based, so after this many iterations).
    teacher_checkpoint: or switch before the first iteration, with the teacher (and student) of this checkpoint.
    loss: ``mse`` or ``huber`` between the student's mean action and the frozen teacher's action.
    learning_rate: of the Adam that trains the actor and the history encoder in the phase.
    """

    def __init__(
        self,
        start_iteration: int | None = None,
        teacher_checkpoint: str | None = None,
        loss: DistillationLoss = "mse",
        learning_rate: float = 1e-3,
    ) -> None:
        if (start_iteration is None) == (teacher_checkpoint is None):
            raise ValueError("DistillationPhase needs exactly one of start_iteration and teacher_checkpoint, got "
                             f"start_iteration={start_iteration}, teacher_checkpoint={teacher_checkpoint!r}")
        if start_iteration is not None and start_iteration < 0:
            raise ValueError(f"start_iteration must be >= 0, got {start_iteration}")
        self.settings = DistillationSettings(loss, learning_rate)
        self.start_iteration = start_iteration
        self.teacher_checkpoint = teacher_checkpoint

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        teacher_student(pl_module)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        method = teacher_student(pl_module)
        if self.teacher_checkpoint is None or method.distilling:  # resumed in the phase: nothing to change
            return
        try:
            method.load_teacher(self.teacher_checkpoint)
        except ValueError as error:
            raise ValueError(f"teacher_checkpoint {self.teacher_checkpoint}: {error}") from error
        self.switch(trainer, method, f"with the teacher of {Path(self.teacher_checkpoint).name}")

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        method = teacher_student(pl_module)
        due = self.start_iteration is not None and trainer.current_epoch >= self.start_iteration
        if due and not method.distilling:
            self.switch(trainer, method, f"after {trainer.current_epoch} teacher iterations")

    def switch(self, trainer: Trainer, pl_module: TeacherStudentPPO, how: str) -> None:
        pl_module.start_distillation(self.settings)
        rank_zero_info(f"distillation phase from iteration {trainer.current_epoch} {how} "
                       f"({self.settings.loss} loss, learning rate {self.settings.learning_rate})")
