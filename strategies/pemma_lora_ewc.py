"""PEMMA-LoRA with EWC: the shared adapter set of ``pemma-lora-shared`` (frozen CT base, one LoRA set with PEMMA's
PET parts continued through the stream, task-agnostic), plus EWC's penalty on the adapter parameters only, the
recipe of MedCRP-CL (LoRA with EWC; ICML 2026).

The penalty and its Fisher are the ``ewc`` baseline's (:class:`~pemma_cl.training.plugins.importance.
SegmentationEWCPlugin`: squared gradient of the training loss under the training modality masks), restricted to
the LoRA matrices and the adapter set's own PEMMA modules (the frozen base never moves, so it needs no anchor).

Options are ``ewc``'s, with its defaults: ``lambda=1000.0`` (the same weight as the ``ewc`` baseline, so that the
two differ only in which parameters are pulled back; not tuned), ``mode=separate``, ``decay=1.0`` (online only).
"""

from __future__ import annotations

from pemma_cl.strategies._ewc_options import EWCOptions
from pemma_cl.strategy_api.registry import register_strategy


def is_adapter_parameter(name: str) -> bool:
    """Whether a parameter of a peft-wrapped PEMMA model belongs to an adapter set: its LoRA/DoRA weights or its copy
    of a PEMMA module (peft's pristine ``original_module`` copies and the base are frozen)."""
    return "lora_" in name or "modules_to_save" in name


@register_strategy("pemma-lora-ewc", "PEMMA, one LoRA adapter set continued through the stream (as pemma-lora-shared) "
                                     "with EWC's Fisher penalty on the adapter parameters only (task-agnostic)",
                   family="PEMMA", options=EWCOptions)
def build(ctx):
    from pemma_cl.training.pemma_strategy import build_pemma
    from pemma_cl.training.plugins.importance import SegmentationEWCPlugin

    options = ctx.options
    ewc = SegmentationEWCPlugin(options.lambda_, options.mode, options.decay, penalised=is_adapter_parameter)
    return build_pemma(ctx, use_dora=False, shared=True, plugins=[ewc])
