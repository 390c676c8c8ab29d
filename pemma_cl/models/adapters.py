"""Per-task LoRA/DoRA adapter sets on PEMMA through peft.

One named peft adapter per task (``task<label>``) holds the LoRA/DoRA matrices on the ViT linears and,
through peft's ``modules_to_save``, its own copy of every PEMMA module (PET embedding, token fusion,
missing-modality adapters, PET skip). The CT base is never trained.
"""

from __future__ import annotations

from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

from pemma_cl.models.pemma import PEMMA_MODULES, PemmaUNETR
from pemma_cl.models.presets import Preset

#: UNETR's only nn.Linear layers are in its ViT (attention qkv/out projection and the MLP); a regex,
#: because peft's plain-name matching would also catch same-named layers elsewhere.
VIT_LINEARS = r".*base\.vit\.blocks\.\d+\.(attn\.(qkv|out_proj)|mlp\.linear[12])"


def adapter_name(task: int) -> str:
    """The peft adapter name of a task label."""
    return f"task{task}"


def lora_config(preset: Preset, use_dora: bool) -> LoraConfig:
    """LoRA (or DoRA) of rank ``preset.lora_rank`` on the ViT linears, PEMMA modules saved per adapter."""
    return LoraConfig(
        r=preset.lora_rank,
        lora_alpha=2 * preset.lora_rank,
        lora_dropout=0.0,
        target_modules=VIT_LINEARS,
        modules_to_save=list(PEMMA_MODULES),
        use_dora=use_dora,
    )


def wrap_with_adapters(pemma: PemmaUNETR, preset: Preset, use_dora: bool, first_task: int) -> PeftModel:
    """Freeze the PEMMA model's base and give it its first task's adapter set."""
    return get_peft_model(pemma, lora_config(preset, use_dora), adapter_name=adapter_name(first_task))


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
