"""Avalanche's supervised loop adapted to multi-modal segmentation mini-batches.

Mini-batches are ``(x, y, modality_mask, task_label)``: x [B, 2, D, H, W] (CT, PET), y [B, 1, D, H, W] int
labels, modality_mask [B, 2] bool. Models are called as ``model(x, modality_mask)``. Training randomly hides
one modality of some CT+PET samples (modality dropout) so the missing-modality paths learn; evaluation runs
every mini-batch under each input setting (``ct``, ``pet``, ``ctpet``) in turn.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from avalanche.training.templates import SupervisedTemplate
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from torch.utils.data import DataLoader

#: Input settings at evaluation: which of (CT, PET) the model is given.
INPUT_SETTINGS: dict[str, tuple[bool, bool]] = {"ct": (True, False), "pet": (False, True), "ctpet": (True, True)}
#: MONAI DiceCELoss settings of every strategy and base. The Dice term is over the tumour classes only (as
#: nnU-Net does): with the background class in the mean, the loss sits on an "all background" plateau for
#: most of a short CPU budget. Part of the cached bases' key (:mod:`pemma_cl.training.bases`).
LOSS_KWARGS: dict[str, bool] = {"to_onehot_y": True, "softmax": True, "include_background": False}


def segmentation_loss() -> DiceCELoss:
    """The training loss: MONAI's DiceCE with :data:`LOSS_KWARGS`."""
    return DiceCELoss(**LOSS_KWARGS)


def drop_modalities(mask: torch.Tensor, rate: float, generator: torch.Generator) -> torch.Tensor:
    """Hide one modality (chosen at random) of each two-modality sample with probability ``rate``."""
    both = mask.all(dim=1)
    dropped = (torch.rand(len(mask), generator=generator) < rate).to(mask.device) & both
    keep_ct = (torch.rand(len(mask), generator=generator) < 0.5).to(mask.device)
    new = mask.clone()
    new[dropped, 0] = keep_ct[dropped]
    new[dropped, 1] = ~keep_ct[dropped]
    return new


class SegmentationTemplate(SupervisedTemplate):
    """Avalanche ``SupervisedTemplate`` with a DiceCE loss (Dice over GTVp and GTVn), modality dropout and
    per-setting evaluation.

    Args:
        roi_size: the network's input crop; larger volumes are evaluated with MONAI's sliding window.
        modality_dropout: probability of hiding one modality of a CT+PET training sample.
        eval_settings: input settings each evaluation mini-batch is run under.
        seed: seed of the modality-dropout draws.
        **kwargs: passed to ``SupervisedTemplate`` (model, optimizer, train_mb_size, train_epochs, ...).
    """

    def __init__(self, *, roi_size: int, modality_dropout: float = 0.5,
                 eval_settings: Sequence[str] = tuple(INPUT_SETTINGS), seed: int = 0, **kwargs) -> None:
        super().__init__(criterion=segmentation_loss(), **kwargs)
        self.roi_size = (roi_size,) * 3
        self.modality_dropout = modality_dropout
        self.eval_settings = tuple(eval_settings)
        self._dropout_generator = torch.Generator().manual_seed(seed)
        self.mb_modality_mask: torch.Tensor | None = None
        self.mb_input_setting: str | None = None

    def make_train_dataloader(self, shuffle: bool = True, **kwargs) -> None:
        """Avalanche's loader, except for data of several tasks (cumulative's and joint's unions of experiences):
        Avalanche's task-balanced loader splits each mini-batch evenly over tasks and requires a batch at least as
        large as the number of tasks; a plain shuffled loader visits each case once per epoch instead."""
        if len(self.adapted_dataset.targets_task_labels.uniques) <= 1:
            super().make_train_dataloader(shuffle=shuffle, **kwargs)
            return
        self.dataloader = DataLoader(self.adapted_dataset, batch_size=self.train_mb_size, shuffle=shuffle,
                                     collate_fn=self.adapted_dataset.collate_fn)

    def _unpack_minibatch(self) -> None:
        super()._unpack_minibatch()
        mask = self.mbatch[2].bool()
        if self.is_training and self.modality_dropout > 0:
            mask = drop_modalities(mask, self.modality_dropout, self._dropout_generator)
        self.mb_modality_mask = mask

    def forward(self) -> torch.Tensor:
        x, mask = self.mb_x, self.mb_modality_mask
        if self.is_training or tuple(x.shape[2:]) == self.roi_size:
            return self.model(x, mask)
        return torch.cat([
            sliding_window_inference(x[i:i + 1], self.roi_size, sw_batch_size=1, overlap=0.5,
                                     predictor=lambda window, m=mask[i:i + 1]: self.model(window, m))
            for i in range(len(x))
        ])

    def eval_epoch(self, **kwargs) -> None:
        """Avalanche's evaluation loop, with the forward pass repeated under each input setting."""
        for self.mbatch in self.dataloader:
            self._unpack_minibatch()
            self._before_eval_iteration(**kwargs)
            for setting in self.eval_settings:
                self.mb_input_setting = setting
                self.mb_modality_mask = torch.tensor(INPUT_SETTINGS[setting], device=self.device).expand(len(self.mb_x), 2)
                self._before_eval_forward(**kwargs)
                self.mb_output = self.forward()
                self._after_eval_forward(**kwargs)
            self.loss = self.criterion()
            self._after_eval_iteration(**kwargs)
