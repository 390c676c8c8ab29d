"""Learning without Forgetting for segmentation: voxel-wise distillation of the previous model's soft output.

Avalanche 0.6.0's ``LwFPlugin`` does not fit this problem: it reads class targets the datasets do not have,
sums its KL over every voxel (the loss grows with the volume) and runs the teacher without the modality mask.
Here the teacher is the model as it was after the previous experience, called on the student's own mini-batch
under the student's own modality mask; the KL between their softened per-voxel class distributions is averaged
over voxels and scaled by T^2 (Hinton et al., 2015), so its weight does not depend on the temperature or the
volume size.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin

from pemma_cl.evaluation.cost import tensor_bytes
from pemma_cl.training.single_case import segment


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) of the softened class distributions [B, C, ...], averaged over voxels, times T^2."""
    log_student = F.log_softmax(student / temperature, dim=1)
    log_teacher = F.log_softmax(teacher / temperature, dim=1)
    kl = F.kl_div(log_student, log_teacher, log_target=True, reduction="none").sum(dim=1)
    return kl.mean() * temperature ** 2


class SegmentationLwFPlugin(SupervisedPlugin):
    """Adds ``weight * distillation_loss(student, teacher, temperature)`` to the training loss from the second
    experience on; the teacher is a frozen copy of the model taken after each experience.

    Args:
        temperature: softening temperature T.
        weight: weight of the distillation term (the task loss has weight 1).
    """

    def __init__(self, temperature: float, weight: float) -> None:
        super().__init__()
        self.temperature = temperature
        self.weight = weight
        self.teacher: torch.nn.Module | None = None

    def before_backward(self, strategy, **kwargs) -> None:
        if self.teacher is None:
            return
        with torch.no_grad():
            teacher = segment(self.teacher, strategy.mb_x, strategy.mb_modality_mask)
        strategy.loss = strategy.loss + self.weight * distillation_loss(strategy.mb_output, teacher, self.temperature)

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.teacher = copy.deepcopy(strategy.model).eval().requires_grad_(False)

    def stored_bytes(self) -> int:
        """The teacher copy's parameters and buffers."""
        if self.teacher is None:
            return 0
        return tensor_bytes([*self.teacher.parameters(), *self.teacher.buffers()])
