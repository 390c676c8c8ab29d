"""LoRA/DoRA adapter sets on PEMMA through peft.

A named peft adapter set holds the LoRA/DoRA matrices on the transformer linears and, through peft's
``modules_to_save``, its own copy of every PEMMA module (PET embedding, token fusion, missing-modality
adapters, PET skip). Per-task PEMMA gives each task its own set (``task<label>``); the authors' protocol
keeps one set (``shared``) and continues training it. The CT base is never trained.
"""

from __future__ import annotations

from collections.abc import Collection

from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

from pemma_cl.models.backbones import Backbone
from pemma_cl.models.pemma import PEMMA_MODULES, SURVIVAL_HEAD, PemmaDesign, PemmaNetwork
from pemma_cl.models.presets import Preset

#: Name of the single adapter set of the authors' protocol.
SHARED_ADAPTER = "shared"


def adapter_name(task: int) -> str:
    """The peft adapter name of a task label."""
    return f"task{task}"


def lora_config(backbone: Backbone, preset: Preset, use_dora: bool, design: PemmaDesign = PemmaDesign(),
                prognosis: bool = False) -> LoraConfig:
    """LoRA (or DoRA) of rank ``preset.lora_rank`` on the backbone's transformer linears (``lora_targets``), PEMMA
    modules (and the survival head of a prognosis model; and, with ``design.decoder_head``, the backbone's last
    decoder stage and output convolution, named in full: peft matches ``modules_to_save`` by name suffix) saved per
    adapter."""
    return LoraConfig(
        r=preset.lora_rank,
        lora_alpha=2 * preset.lora_rank,
        lora_dropout=preset.lora_dropout,
        target_modules=backbone.lora_targets,
        modules_to_save=list(PEMMA_MODULES) + (list(backbone.decoder_head) if design.decoder_head else [])
        + ([SURVIVAL_HEAD] if prognosis else []),
        use_dora=use_dora,
    )


def wrap_with_adapters(pemma: PemmaNetwork, preset: Preset, use_dora: bool, first_adapter: str,
                       design: PemmaDesign = PemmaDesign()) -> PeftModel:
    """Freeze the PEMMA model's base and give it its first adapter set, named ``first_adapter``."""
    config = lora_config(pemma.backbone, preset, use_dora, design, prognosis=hasattr(pemma, SURVIVAL_HEAD))
    return get_peft_model(pemma, config, adapter_name=first_adapter)


def add_task_adapter(model: PeftModel, task: int, warm_start_from: int | None) -> None:
    """Add a task's adapter set (if new), optionally starting from another task's weights, and activate it.

    Only the active adapter is trainable afterwards (peft's ``set_adapter``); others stay bit-identical.
    """
    name = adapter_name(task)
    if name not in model.peft_config:
        config = next(iter(model.peft_config.values()))
        model.add_adapter(name, config)
        if warm_start_from is not None:
            state = get_peft_model_state_dict(model, adapter_name=adapter_name(warm_start_from))
            set_peft_model_state_dict(model, state, adapter_name=name)
    model.set_adapter(name)


def train_only(model: PeftModel, pemma_modules: Collection[str]) -> None:
    """Of the active adapter set, leave LoRA/DoRA and the PEMMA modules in ``pemma_modules`` trainable.

    The active set's other PEMMA module copies are frozen (see :mod:`pemma_cl.models.update_rule`);
    peft's ``set_adapter`` makes them all trainable again.
    """
    known = (*PEMMA_MODULES, SURVIVAL_HEAD)
    unknown = sorted(set(pemma_modules) - set(known))
    if unknown:
        raise ValueError(f"unknown PEMMA modules {unknown}; expected names from {known}")
    pemma = model.get_base_model()
    for module in known:
        if hasattr(pemma, module):  # the survival head exists only in models built for prognosis
            getattr(pemma, module).modules_to_save[model.active_adapter].requires_grad_(module in pemma_modules)
