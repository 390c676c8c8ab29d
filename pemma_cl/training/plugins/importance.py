"""Parameter importance for the regularisation baselines (EWC, MAS), under the modality masks training uses.

Avalanche 0.6.0's ``EWCPlugin.compute_importances`` and ``MASPlugin._get_importance`` call ``model(x)``: no
modality mask reaches the network, so the missing-modality paths (used only when training hides one modality)
get zero importance and are left unprotected. The subclasses here keep Avalanche's penalties and bookkeeping
and replace only the importance pass: each mini-batch of the experience is run under every mask modality
dropout can draw for it (both modalities, CT only, PET only), weighted by how often training draws it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from avalanche.training.plugins import EWCPlugin, MASPlugin
from avalanche.training.utils import ParamData, zerolike_params_dict
from torch import nn
from torch.utils.data import DataLoader

from pemma_cl.training.single_case import segment
from pemma_cl.training.storage import tensor_bytes


def training_masks(mask: torch.Tensor, dropout: float) -> list[tuple[torch.Tensor, float]]:
    """The modality masks training draws for a mini-batch whose data have ``mask`` [B, 2], with their
    probabilities (see :func:`pemma_cl.training.template.drop_modalities`)."""
    both = mask.all(dim=1)
    if dropout == 0 or not both.any():
        return [(mask, 1.0)]
    ct_only, pet_only = mask.clone(), mask.clone()
    ct_only[both, 1] = False
    pet_only[both, 0] = False
    return [(mask, 1.0 - dropout), (ct_only, dropout / 2), (pet_only, dropout / 2)]


def masked_importance(model: nn.Module, dataset, batch_size: int, device: torch.device, dropout: float,
                      loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                      measure: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, ParamData]:
    """Mean over ``dataset``'s mini-batches of ``measure(gradient of loss_of(model(x, mask), y))`` per parameter,
    summed over the :func:`training_masks` of each mini-batch with their probabilities."""
    importances = zerolike_params_dict(model)
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=getattr(dataset, "collate_fn", None))
    for batch in loader:
        x, y, data_mask = (t.to(device) for t in batch[:3])
        for mask, weight in training_masks(data_mask.bool(), dropout):
            model.zero_grad()
            loss_of(segment(model, x, mask), y).backward()
            for name, param in model.named_parameters():
                if param.grad is not None:
                    importances[name].data += weight * measure(param.grad.detach())
    model.zero_grad()
    for importance in importances.values():
        importance.data /= max(len(loader), 1)
    return importances


class SegmentationEWCPlugin(EWCPlugin):
    """Avalanche's EWC; the Fisher is the squared gradient of the training loss under the training masks.

    Args:
        ewc_lambda: weight of the penalty.
        mode: ``separate`` (one penalty per earlier experience) or ``online`` (one, decayed).
        decay_factor: importance decay of the online mode.
        penalised: which parameters (by name) the penalty covers and the plugin keeps anchors and importances
            of, e.g. an adapter set on a frozen base; default every parameter.
    """

    def __init__(self, ewc_lambda: float, mode: str, decay_factor: float,
                 penalised: Callable[[str], bool] | None = None) -> None:
        super().__init__(ewc_lambda, mode=mode, decay_factor=decay_factor if mode == "online" else None)
        self.modality_dropout = 0.0
        self.penalised = penalised

    def after_training_exp(self, strategy, **kwargs):
        self.modality_dropout = strategy.modality_dropout  # compute_importances is not given the strategy
        super().after_training_exp(strategy, **kwargs)
        anchors = self.saved_params[strategy.clock.train_exp_counter]
        self.saved_params[strategy.clock.train_exp_counter] = self._only_penalised(anchors)

    def compute_importances(self, model, criterion, optimizer, dataset, device, batch_size, num_workers=0):
        model.eval()
        importances = masked_importance(model, dataset, batch_size, device, self.modality_dropout, criterion,
                                        lambda grad: grad.pow(2))
        model.train()
        return self._only_penalised(importances)

    def _only_penalised(self, params: dict[str, ParamData]) -> dict[str, ParamData]:
        """``params`` less those the penalty does not cover (Avalanche's penalty skips a name without an anchor)."""
        return params if self.penalised is None else {k: v for k, v in params.items() if self.penalised(k)}

    def stored_bytes(self) -> int:
        """Anchor weights and importances kept for the penalty."""
        return tensor_bytes(p.data for store in (self.saved_params, self.importances)
                            for params in store.values() for p in params.values())


class SegmentationMASPlugin(MASPlugin):
    """Avalanche's MAS; importance is the gradient magnitude of the squared L2 norm of the output logits (per
    voxel, over classes, averaged over voxels), under the training masks.

    Args:
        lambda_reg: weight of the penalty.
        alpha: weight of the earlier importance when a new experience's is merged in.
    """

    def __init__(self, lambda_reg: float, alpha: float) -> None:
        super().__init__(lambda_reg=lambda_reg, alpha=alpha)

    def _get_importance(self, strategy):
        strategy.model.train()
        return masked_importance(strategy.model, strategy.experience.dataset, strategy.train_mb_size, strategy.device,
                                 strategy.modality_dropout, lambda out, _: out.pow(2).sum(dim=1).mean(), torch.abs)

    def stored_bytes(self) -> int:
        """Anchor weights and importances kept for the penalty."""
        return tensor_bytes(p.data for store in (self.params or {}, self.importance or {}) for p in store.values())
