"""Avalanche's supervised loop adapted to multi-modal mini-batches of segmentation and prognosis experiences.

Mini-batches are ``(x, y, modality_mask, survival, ehr, task_label)`` (:class:`pemma_cl.data.dataset.CaseDataset`):
x [B, 2, D, H, W] (CT, PET), y [B, 1, D, H, W] int labels, modality_mask [B, 2] bool, survival [B, 2] (RFS days,
relapse), ehr [B, ehr_size]. Training volumes are the network's cubic patch (the datasets cut larger volumes into
patches, :mod:`pemma_cl.data.patches`); evaluated volumes may have any shape, one shape per mini-batch. Each
experience has a task kind:

* **segmentation**: ``model(x, modality_mask)`` gives logits; DiceCE loss. Training randomly hides one modality of
  some CT+PET samples (modality dropout) so the missing-modality paths learn; evaluation runs every mini-batch
  under each input setting (``ct``, ``pet``, ``ctpet``) in turn, a volume that is not the patch by MONAI's sliding
  window (overlap 0.5).
* **prognosis**: ``model(x, modality_mask, ehr=ehr)`` gives a risk score; Cox partial likelihood (torchsurv).
  No modality dropout, and evaluation runs once with the modalities the experience declares. The partial
  likelihood ranks each relapse against the risk set *within the mini-batch*, so prognosis trains on large
  mini-batches (``prognosis_mb_size``, cheap: only the encoder runs) and drops a last mini-batch too small to
  rank; a mini-batch without a relapse gives no gradient. Prognosis steps run at ``prognosis_lr_scale`` times the
  strategy's learning rate with gradients clipped to norm :data:`PROGNOSIS_MAX_GRAD_NORM` (the partial likelihood
  of a mini-batch is a noisy objective: unclipped, a PET embedding learning at the adapter rate diverged to NaN).
  The encoder reads one patch of each case, centred on its label's foreground (``centred`` sampling of
  :mod:`pemma_cl.data.patches`), in training and evaluation.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Sequence

import torch
from avalanche.training.templates import SupervisedTemplate
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from torch.utils.data import DataLoader

# torchsurv 0.2.0 decorates helpers with torch.jit.script, which torch 2.14 deprecates with a FutureWarning at import:
# nothing a user can act on.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=FutureWarning)
# RFS is recorded in whole days, so tied times are common; torchsurv warns on every such mini-batch that it uses
# Efron's method, which is what cox_loss asks for.
warnings.filterwarnings("ignore", message=r"Ties in `time` detected")
from torchsurv.loss.cox import neg_partial_log_likelihood  # noqa: E402

from pemma_cl.core.precision import BF16, FP32, PRECISIONS
from pemma_cl.core.task_kinds import PROGNOSIS, SEGMENTATION
from pemma_cl.data.dataset import SHAPES_ATTRIBUTE
from pemma_cl.data.records import MODALITIES
from pemma_cl.training.single_case import segment

#: Gradient-norm clip of prognosis steps (see the module docstring).
PROGNOSIS_MAX_GRAD_NORM = 1.0

#: Input settings at evaluation: which of (CT, PET) the model is given.
INPUT_SETTINGS: dict[str, tuple[bool, bool]] = {"ct": (True, False), "pet": (False, True), "ctpet": (True, True)}
#: MONAI DiceCELoss settings of every strategy and base. The Dice term is over the tumour classes only (as
#: nnU-Net does): with the background class in the mean, the loss sits on an "all background" plateau for
#: most of a short CPU budget. Part of the cached bases' key (:mod:`pemma_cl.training.bases`).
LOSS_KWARGS: dict[str, bool] = {"to_onehot_y": True, "softmax": True, "include_background": False}


#: Settings of every strategy's and base's AdamW besides the learning rate. PyTorch's fused kernel updates all tensors
#: in one pass instead of a Python loop over them (the tiny UNETR's 194 tensors: 5.6 ms a step on one CPU thread
#: against 19 ms). Part of the cached bases' key.
OPTIMIZER_KWARGS: dict[str, bool] = {"fused": True}


def make_optimizer(parameters, lr: float) -> torch.optim.AdamW:
    """The optimizer of every strategy and base: AdamW with :data:`OPTIMIZER_KWARGS`."""
    return torch.optim.AdamW(parameters, lr=lr, **OPTIMIZER_KWARGS)


def segmentation_loss() -> DiceCELoss:
    """The training loss: MONAI's DiceCE with :data:`LOSS_KWARGS`."""
    return DiceCELoss(**LOSS_KWARGS)


def cox_loss(risk: torch.Tensor, survival: torch.Tensor) -> torch.Tensor:
    """torchsurv's negative Cox partial log-likelihood (Efron's ties, mean over relapses) of a mini-batch.

    Args:
        risk: predicted log-hazards [B].
        survival: [B, 2]: RFS days, relapse (1) or censored (0).

    Returns the loss; zero (still attached to ``risk``) when the mini-batch has no relapse or one case, where the
    partial likelihood has nothing to rank (torchsurv would return a detached zero with a warning).
    """
    event = survival[:, 1] > 0.5
    if len(risk) < 2 or not bool(event.any()):
        return risk.sum() * 0.0
    return neg_partial_log_likelihood(risk, event, survival[:, 0], ties_method="efron")


def batches_of_one_shape(shapes: Sequence[tuple[int, ...]], size: int) -> list[list[int]]:
    """Mini-batches of dataset indices in order, each at most ``size`` long and of one volume shape: every run of
    consecutive items of one shape is cut into batches of ``size`` (the last one shorter)."""
    batches = []
    for _, run in itertools.groupby(range(len(shapes)), key=lambda i: shapes[i]):
        run = list(run)
        batches += [run[start:start + size] for start in range(0, len(run), size)]
    return batches


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
    """Avalanche ``SupervisedTemplate`` with a DiceCE loss (Dice over the data's structures), modality dropout and
    per-setting evaluation; prognosis experiences get the Cox loss (see the module docstring).

    Args:
        roi_size: the network's input crop; a volume of another shape is evaluated with MONAI's sliding window.
        modality_dropout: probability of hiding one modality of a CT+PET training sample.
        eval_settings: input settings each evaluation mini-batch is run under.
        seed: seed of the modality-dropout draws.
        experience_kinds: the task kind of each experience of the stream, in order (none: all segmentation).
        prognosis_mb_size: training mini-batch size of prognosis experiences.
        prognosis_epochs: training epochs of prognosis experiences.
        prognosis_lr_scale: factor on the optimizer's learning rate during prognosis experiences.
        precision: one of :data:`~pemma_cl.core.precision.PRECISIONS`, for the strategy's own forward passes (training
            and evaluation); passes a plugin runs itself (LwF's teacher, EWC's and MAS's importance, A-GEM's
            reference) stay fp32.
        **kwargs: passed to ``SupervisedTemplate`` (model, optimizer, train_mb_size, train_epochs, ...).

    Attributes:
        settings_to_run: which input settings an evaluated segmentation experience runs, ``experience index ->
            settings`` (those of :attr:`eval_settings` it names run, in their order), or None: all. The run sets it
            when it scores only some cells (:mod:`pemma_cl.evaluation.scoring`); a setting left out runs no forward
            pass, and with none left the mini-batches are still served (the data loader draws its seed, the
            iteration callbacks run) but nothing runs on them.
    """

    settings_to_run: Callable[[int], Sequence[str]] | None = None

    def __init__(self, *, roi_size: int, modality_dropout: float = 0.5,
                 eval_settings: Sequence[str] = tuple(INPUT_SETTINGS), seed: int = 0,
                 experience_kinds: Sequence[str] = (), prognosis_mb_size: int = 64, prognosis_epochs: int = 1,
                 prognosis_lr_scale: float = 1.0, precision: str = FP32, **kwargs) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        super().__init__(criterion=segmentation_loss(), **kwargs)
        self.precision = precision
        self.roi_size = (roi_size,) * 3
        self.modality_dropout = modality_dropout
        self.eval_settings = tuple(eval_settings)
        self.experience_kinds = tuple(experience_kinds)
        #: (mini-batch size, epochs) of each task kind.
        self.budgets = {SEGMENTATION: (self.train_mb_size, self.train_epochs),
                         PROGNOSIS: (prognosis_mb_size, prognosis_epochs)}
        base_lrs = [group["lr"] for group in self.optimizer.param_groups]
        self._lrs = {SEGMENTATION: base_lrs, PROGNOSIS: [lr * prognosis_lr_scale for lr in base_lrs]}
        self._dropout_generator = torch.Generator().manual_seed(seed)
        self.mb_modality_mask: torch.Tensor | None = None
        self.mb_input_setting: str | None = None
        self.mb_survival: torch.Tensor | None = None
        self.mb_ehr: torch.Tensor | None = None

    @property
    def task_kind(self) -> str:
        """The task kind of the experience being trained or evaluated."""
        if not self.experience_kinds or self.experience is None:
            return SEGMENTATION
        return self.experience_kinds[self.experience.current_experience]

    def _before_training_exp(self, **kwargs) -> None:
        self.train_mb_size, self.train_epochs = self.budgets[self.task_kind]
        # Avalanche's optimizer resets keep each group's learning rate, so it is set once here per experience.
        for group, lr in zip(self.optimizer.param_groups, self._lrs[self.task_kind]):
            group["lr"] = lr
        super()._before_training_exp(**kwargs)
        self._use_fast_layout()  # after the plugins, which may have added a task's parameters

    def optimizer_step(self) -> None:
        if self.task_kind == PROGNOSIS:
            torch.nn.utils.clip_grad_norm_([p for g in self.optimizer.param_groups for p in g["params"]],
                                           PROGNOSIS_MAX_GRAD_NORM)
        super().optimizer_step()

    def make_train_dataloader(self, shuffle: bool = True, **kwargs) -> None:
        """Avalanche's loader, except for prognosis (a plain shuffled loader that drops a last mini-batch too small
        for a risk set) and for data of several tasks (cumulative's and joint's unions of experiences: Avalanche's
        task-balanced loader splits each mini-batch evenly over tasks and requires a batch at least as large as
        the number of tasks; a plain shuffled loader visits each case once per epoch instead)."""
        prognosis = self.task_kind == PROGNOSIS
        if not prognosis and len(self.adapted_dataset.targets_task_labels.uniques) <= 1:
            super().make_train_dataloader(shuffle=shuffle, **kwargs)
            return
        small_last = prognosis and len(self.adapted_dataset) % self.train_mb_size < self.train_mb_size // 4
        self.dataloader = DataLoader(self.adapted_dataset, batch_size=self.train_mb_size, shuffle=shuffle,
                                     collate_fn=self.adapted_dataset.collate_fn,
                                     drop_last=small_last and len(self.adapted_dataset) > self.train_mb_size)

    def make_eval_dataloader(self, **kwargs) -> None:
        """Avalanche's loader, except for volumes of several shapes (whole volumes of a data set that is not cubic),
        which cannot be collated together: they come in mini-batches of one shape (:func:`batches_of_one_shape`),
        still in dataset order, which the per-case rows name cases by."""
        shapes = getattr(self.adapted_dataset, SHAPES_ATTRIBUTE, None)
        if shapes is None or len(shapes.uniques) <= 1:
            super().make_eval_dataloader(**kwargs)
            return
        self.dataloader = DataLoader(self.adapted_dataset, collate_fn=self.adapted_dataset.collate_fn,
                                     batch_sampler=batches_of_one_shape(list(shapes), self.eval_mb_size),
                                     pin_memory=self.device.type == "cuda")

    def _unpack_minibatch(self) -> None:
        super()._unpack_minibatch()
        if self._channels_last:
            self.mbatch[0] = self.mbatch[0].contiguous(memory_format=torch.channels_last_3d)
        mask = self.mbatch[2].bool()
        if self.is_training and self.modality_dropout > 0 and self.task_kind == SEGMENTATION:
            mask = drop_modalities(mask, self.modality_dropout, self._dropout_generator)
        self.mb_modality_mask = mask
        self.mb_survival, self.mb_ehr = self.mbatch[3], self.mbatch[4]

    def criterion(self) -> torch.Tensor:
        if self.task_kind == PROGNOSIS:
            return cox_loss(self.mb_output, self.mb_survival)
        return super().criterion()

    def forward(self) -> torch.Tensor:
        """The model's output for the mini-batch, in fp32 whatever :attr:`precision` computed it in."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == BF16):
            return self._forward().float()

    def _forward(self) -> torch.Tensor:
        x, mask = self.mb_x, self.mb_modality_mask
        if self.task_kind == PROGNOSIS:
            return self.model(x, mask, ehr=self.mb_ehr)
        if self.is_training or tuple(x.shape[2:]) == self.roi_size:
            return segment(self.model, x, mask)
        # The windows of a case run in mini-batches of the evaluation's size: one window at a time (each run as a pair
        # on a CPU) took 2.1x as long at tiny (benchmarks/sliding_window_cost.py, 2 cores under load).
        return torch.cat([
            sliding_window_inference(
                x[i:i + 1], self.roi_size, sw_batch_size=self.eval_mb_size, overlap=0.5,
                predictor=lambda windows, m=mask[i:i + 1]: segment(self.model, windows, m.expand(len(windows), -1)))
            for i in range(len(x))
        ])

    @property
    def _channels_last(self) -> bool:
        """Whether volumes and convolution weights use the channels-last layout: on a CPU, oneDNN's 3-D convolutions
        train about 20-30 % faster so (``pemma-bench profile``, docs/changelog.md); on CUDA the layout is left as it is
        (unmeasured). A plugin whose ``needs_contiguous_weights`` is true (one that flattens gradients with
        ``.view``) keeps the default layout."""
        contiguous = any(getattr(plugin, "needs_contiguous_weights", False) for plugin in self.plugins)
        return self.device.type == "cpu" and not contiguous

    def _use_fast_layout(self) -> None:
        """Put the model's 5-D weights in the channels-last layout, once per experience trained and per evaluation
        (parameters a plugin added, such as a new task's PET embedding, are converted too; the parameter objects, and
        so the optimizer's references, stay the same)."""
        if self._channels_last:
            self.model.to(memory_format=torch.channels_last_3d)

    def _before_eval(self, **kwargs) -> None:
        super()._before_eval(**kwargs)
        self._use_fast_layout()

    def eval_epoch(self, **kwargs) -> None:
        """Avalanche's evaluation loop, with the forward pass repeated under each input setting (segmentation; those
        :attr:`settings_to_run` names) or run once on the modalities the experience declares (prognosis;
        ``mb_input_setting`` is None). The loss is the last forward pass's (zero when none ran)."""
        settings = (None,) if self.task_kind == PROGNOSIS else self._settings_to_run()
        for self.mbatch in self.dataloader:
            self._unpack_minibatch()
            self._before_eval_iteration(**kwargs)
            for setting in settings:
                self.mb_input_setting = setting
                if setting is not None:
                    self.mb_modality_mask = torch.tensor(INPUT_SETTINGS[setting], device=self.device).expand(
                        len(self.mb_x), len(MODALITIES))
                self._before_eval_forward(**kwargs)
                self.mb_output = self.forward()
                self._after_eval_forward(**kwargs)
            self.loss = self.criterion() if settings else self._make_empty_loss()
            self._after_eval_iteration(**kwargs)

    def _settings_to_run(self) -> tuple[str, ...]:
        """The input settings the evaluated segmentation experience runs (see :attr:`settings_to_run`)."""
        if self.settings_to_run is None:
            return self.eval_settings
        chosen = set(self.settings_to_run(self.experience.current_experience))
        return tuple(setting for setting in self.eval_settings if setting in chosen)
