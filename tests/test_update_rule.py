"""Single-modality updates: what a CT-only experience may train, in real Avalanche runs on the micro stream
whose second experience (CHUV, task 2) brings CT only."""

from __future__ import annotations

import pytest
import torch

from pemma_cl.models.pemma import PEMMA_MODULES
from pemma_cl.models.update_rule import trainable_pemma_modules

#: PEMMA's PET path: what a CT-only update must leave bit-identical.
PET_PATH = ("pet_embed", "pet_skip", "token_fusion", "missing_ct_adapter")


def test_the_rule_by_modalities() -> None:
    assert trainable_pemma_modules(["pet", "ct"]) == PEMMA_MODULES
    assert trainable_pemma_modules(["ct"]) == ("missing_pet_adapter",)
    assert trainable_pemma_modules(["pet"]) == ("missing_ct_adapter",)
    with pytest.raises(ValueError, match="non-empty subset"):
        trainable_pemma_modules([])


def _adapter_params(snapshot: dict, adapter: str, module: str) -> dict[str, torch.Tensor]:
    marker = f"base_model.model.{module}.modules_to_save.{adapter}."
    return {name: value for name, value in snapshot.items() if name.startswith(marker)}


@pytest.mark.parametrize("name, first, second", [("pemma-lora-shared", "shared", "shared"),
                                                 ("pemma-lora", "task1", "task2")])
def test_a_ct_only_update_leaves_the_pet_path_bit_identical(name, first, second, run_ct_update, registered_entries):
    run = run_ct_update(registered_entries[name])
    after_ctpet, after_ct = run.recorder.after_exp
    for module in PET_PATH:
        before = _adapter_params(after_ctpet, first, module)  # per task: task2 is warm-started from task1
        after = _adapter_params(after_ct, second, module)
        assert before and len(before) == len(after), module
        for key, value in before.items():
            assert torch.equal(after[key.replace(f".{first}.", f".{second}.")], value), f"{key} moved on CT only"
    # ...while what the rule lets it train did learn: the CT-side adapter and LoRA.
    for module in ("missing_pet_adapter",):
        before, after = _adapter_params(after_ctpet, first, module), _adapter_params(after_ct, second, module)
        assert any(not torch.equal(after[k.replace(f".{first}.", f".{second}.")], v) for k, v in before.items())
    lora = [k for k in after_ctpet if "lora_B" in k and k.endswith(f".{first}.weight")]
    assert lora and any(not torch.equal(after_ct[k.replace(f".{first}.", f".{second}.")], after_ctpet[k]) for k in lora)


def test_the_pet_path_did_train_on_the_ct_pet_experience(run_ct_update, registered_entries) -> None:
    """The control for the test above: the same parts do move when PET is there (the missing-CT adapter only
    trains on samples whose CT modality dropout hides, which two micro steps may not draw)."""
    run = run_ct_update(registered_entries["pemma-lora-shared"])
    initial, after_ctpet = run.recorder.initial, run.recorder.after_exp[0]
    for module in ("pet_embed", "pet_skip", "token_fusion"):
        moved = [k for k, v in _adapter_params(initial, "shared", module).items() if not torch.equal(after_ctpet[k], v)]
        assert moved, f"{module} did not train on CT+PET"


@pytest.mark.parametrize("name", ["pemma-lora-shared", "full-finetune", "early-fusion"])
def test_no_pet_voxel_reaches_training_on_a_ct_only_experience(name, run_ct_update, registered_entries) -> None:
    batches = run_ct_update(registered_entries[name]).recorder.train_batches
    ct_only = [b for b in batches if b["exp"] == 1]
    assert ct_only and all(b["pet_max"] == 0.0 and not b["pet_in_mask"] for b in ct_only)
    assert any(b["pet_max"] > 0 for b in batches if b["exp"] == 0)  # PET is there on the CT+PET experience


def test_the_shared_protocol_never_reads_the_test_task_label(run_ct_update, registered_entries) -> None:
    run = run_ct_update(registered_entries["pemma-lora-shared"])
    assert run.evaluation == "task-agnostic"
    trained = [r for r in run.recorder.evals if r["trained"] > 0]
    assert trained and {r["active_adapter"] for r in trained} == {"shared"}
    assert all(r["disabled"] is False for r in trained)
    assert all(r["disabled"] for r in run.recorder.evals if r["trained"] == 0)  # the CT base before training
    assert set(run.model.peft_config) == {"shared"}  # one adapter set, never one per task


def test_full_finetuning_cannot_train_its_pet_path_on_ct_only_data(run_ct_update, registered_entries) -> None:
    """No gradient reaches PEMMA's PET embedding and PET skip without PET, even when every parameter may train."""
    after_ctpet, after_ct = run_ct_update(registered_entries["full-finetune"]).recorder.after_exp
    pet_path = [name for name in after_ct if name.startswith(("pet_embed.", "pet_skip."))]
    assert pet_path and all(torch.equal(after_ct[n], after_ctpet[n]) for n in pet_path)
    assert any(not torch.equal(after_ct[n], after_ctpet[n]) for n in after_ct if n.startswith("base.vit."))
