"""InfLoRA (Liang & Li, CVPR 2024, "InfLoRA: Interference-Free Low-Rank Adaptation for Continual Learning") on
PEMMA's per-experience LoRAs: the subspace maths and the plugin of ``inflora``.

For each LoRA'd linear, with H the matrix of its inputs (one column per token) on an experience's training data
and C = H H^T their (uncentred) second-moment matrix:

* **before** experience t trains, its down-projection A_t [r, d_in] is set to the top-r left singular vectors of
  (I - M M^T) H, the new inputs with the earlier subspace M removed (the eigenvectors of the projected C), as rows
  of norm 1/sqrt(3) (the authors' scale, also that of peft's default initialisation), and frozen: only B_t trains.
  Every row of A_t is orthogonal to M, so A_t x = 0 for any input x of the earlier subspace: the new LoRA leaves
  the earlier experiences' inputs untouched (up to the part of their energy M does not capture);
* **after** it, M (orthonormal columns) is extended with the top directions of the inputs' part outside M until
  the captured share of the inputs' energy, ||M^T H||_F^2 / ||H||_F^2, reaches the threshold (GPM's criterion,
  Saha et al., 2021). As in the authors' code the threshold rises linearly from the option's value toward 1:
  threshold + (1 - threshold) * t / T at experience t (0-based) of T.

Inputs are gathered in evaluation mode, under every modality mask training draws for each mini-batch (CT+PET, CT
only, PET only), weighted by how often it draws it (:func:`~pemma_cl.training.plugins.importance.training_masks`),
since evaluation uses all three inputs.

The LoRA'd linears are PEMMA's (on UNETR the ViT's qkv, out projection and both MLP linears), each with its own
input subspace; the authors' ViT has LoRA on the key and value projections only, which share the attention's input.
Deviations from the authors' code, each toward the paper's text: the code runs the SVD and the energy criterion on
C in place of H (which squares the spectrum: fewer directions reach a threshold) and, at the first experience,
keeps one direction fewer than the criterion asks. It stores M or its complement, whichever is smaller (DualGPM),
the same projection; M is kept whole here. Like the paper, nothing is recomputed when PEMMA's PET parts (trained
through the stream) shift the inputs of an earlier experience: the guarantee is about the inputs as measured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader

from pemma_cl.strategies._lora_sum import SummedLoraPlugin, lora_layers
from pemma_cl.training.plugins.importance import training_masks
from pemma_cl.training.single_case import segment
from pemma_cl.training.storage import tensor_bytes

#: Norm of each row of a designed down-projection (the authors' U^T / sqrt(3)).
ROW_NORM = 1 / math.sqrt(3)


def complement(basis: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis [d, d - m] of the orthogonal complement of the orthonormal columns of ``basis`` [d, m]."""
    full, _ = torch.linalg.qr(basis, mode="complete")
    return full[:, basis.shape[1]:]


def _top_directions(second_moment: torch.Tensor, basis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (descending) and orthonormal eigenvectors [d, d - m] of ``second_moment`` restricted to the
    complement of ``basis``: every vector lies in that complement, whatever its eigenvalue."""
    outside = complement(basis)
    values, vectors = torch.linalg.eigh(outside.T @ second_moment @ outside)
    order = torch.argsort(values, descending=True)
    return values[order], outside @ vectors[:, order]


def down_projection(second_moment: torch.Tensor, basis: torch.Tensor, rank: int) -> torch.Tensor:
    """InfLoRA's down-projection [rank, d]: the top-``rank`` directions of the inputs outside ``basis``, rows of norm
    :data:`ROW_NORM`; zero rows where the complement has fewer than ``rank`` dimensions.

    Args:
        second_moment: C = H H^T [d, d] of the new experience's inputs.
        basis: the earlier inputs' orthonormal basis M [d, m] (m may be 0).
        rank: the LoRA's rank r.
    """
    _, directions = _top_directions(second_moment, basis)
    rows = directions[:, :rank].T * ROW_NORM
    return torch.cat((rows, rows.new_zeros(rank - len(rows), rows.shape[1])))


def extend_basis(basis: torch.Tensor, second_moment: torch.Tensor, threshold: float) -> torch.Tensor:
    """M with the fewest new directions (top ones outside it first) after which it captures at least ``threshold``
    of the energy trace(C) of the inputs whose second moment is C (GPM's criterion); M unchanged if it already does.

    Args:
        basis: orthonormal M [d, m].
        second_moment: C = H H^T [d, d].
        threshold: share of the energy in (0, 1].
    """
    total = float(torch.trace(second_moment))
    captured = float(torch.trace(basis.T @ second_moment @ basis))
    values, directions = _top_directions(second_moment, basis)
    count = 0
    while count < len(values) and captured < threshold * total and values[count] > 0:
        captured += float(values[count])
        count += 1
    return torch.cat((basis, directions[:, :count]), dim=1)


def input_second_moments(model: nn.Module, dataset, batch_size: int, device: torch.device,
                         dropout: float) -> dict[str, torch.Tensor]:
    """C = sum of x x^T (float64) over the inputs x of every LoRA'd linear of ``model``, by layer name, on
    ``dataset`` under the modality masks training draws (each weighted by its probability)."""
    moments: dict[str, torch.Tensor] = {}
    weight = [1.0]

    def gather(name: str):
        def hook(_module, args) -> None:
            x = args[0].detach().reshape(-1, args[0].shape[-1]).double()
            moments[name] = moments.get(name, 0) + weight[0] * (x.T @ x)
        return hook

    handles = [layer.register_forward_pre_hook(gather(name)) for name, layer in lora_layers(model)]
    was_training = model.training
    model.eval()
    try:
        loader = DataLoader(dataset, batch_size=batch_size, collate_fn=getattr(dataset, "collate_fn", None))
        with torch.no_grad():
            for batch in loader:
                x, data_mask = batch[0].to(device), batch[2].to(device).bool()
                for mask, share in training_masks(data_mask, dropout):
                    weight[0] = share
                    segment(model, x, mask)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return moments


class InfLoraPlugin(SummedLoraPlugin):
    """A new LoRA per experience (:class:`SummedLoraPlugin`) whose down-projection InfLoRA designs and fixes.

    Args:
        threshold: the first experience's energy threshold (see the module docstring for the schedule).
        experience_modalities: per experience of the stream (in order), the modalities of its training data.
        experience_kinds: per experience, its task kind.

    Attributes:
        bases: per LoRA'd linear (by module name), the orthonormal basis M [d, m] (float64) of the inputs of the
            experiences trained so far.
    """

    def __init__(self, threshold: float, experience_modalities: Sequence[Sequence[str]],
                 experience_kinds: Sequence[str] = ()) -> None:
        super().__init__(experience_modalities, experience_kinds)
        self.threshold = threshold
        self.bases: dict[str, torch.Tensor] = {}

    def threshold_at(self, index: int) -> float:
        """The energy threshold after the experience at ``index``: rising linearly toward 1 over the stream."""
        return self.threshold + (1.0 - self.threshold) * index / len(self.experience_modalities)

    def _moments(self, strategy) -> dict[str, torch.Tensor]:
        return input_second_moments(strategy.model, strategy.experience.dataset, strategy.train_mb_size,
                                    strategy.device, strategy.modality_dropout)

    def _activate_for_training(self, strategy) -> None:
        super()._activate_for_training(strategy)
        new = self.trained[-1]
        moments = self._moments(strategy)
        for name, layer in lora_layers(strategy.model):
            weight = layer.lora_A[new].weight
            basis = self.bases.get(name, moments[name].new_zeros(len(moments[name]), 0))
            with torch.no_grad():
                weight.copy_(down_projection(moments[name], basis, len(weight)).to(weight.dtype))
            weight.requires_grad_(False)

    def after_training_exp(self, strategy, **kwargs) -> None:
        threshold = self.threshold_at(strategy.experience.current_experience)
        for name, moment in self._moments(strategy).items():
            self.bases[name] = extend_basis(self.bases.get(name, moment.new_zeros(len(moment), 0)), moment, threshold)

    def stored_bytes(self) -> int:
        """The bases of the earlier inputs."""
        return tensor_bytes(self.bases.values())
