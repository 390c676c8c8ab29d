"""Per-task peft adapter sets: isolation between tasks, warm start, and task-aware switching in a real run."""

from __future__ import annotations

import pytest
import torch
from peft import get_peft_model_state_dict

from pemma_cl.models.adapters import adapter_name, add_task_adapter, wrap_with_adapters
from pemma_cl.models.backbones import MaskedInputNetwork, build_network
from pemma_cl.models.pemma import PEMMA_MODULES, PemmaNetwork
from pemma_cl.models.presets import PRESETS
from pemma_cl.training.single_case import segment

MICRO = PRESETS["micro"]
SIDE = MICRO.img_size
SETTINGS = torch.tensor([[True, False], [False, True], [True, True]])  # ct, pet, ctpet: every path trains


def params(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def is_task(name: str, task: int) -> bool:
    return f".{adapter_name(task)}." in name or name.endswith(f".{adapter_name(task)}")


def train_steps(model, x, y, steps: int, lr: float = 1e-2) -> None:
    from monai.losses import DiceCELoss

    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        loss_fn(model(x, SETTINGS), y).backward()
        optimizer.step()


@pytest.fixture(scope="module")
def batch():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(3, 2, SIDE, SIDE, SIDE, generator=generator)
    y = torch.randint(0, 3, (3, 1, SIDE, SIDE, SIDE), generator=generator)
    return x, y


@pytest.fixture(scope="module")
def two_tasks(batch):
    """A micro PEMMA model: task1 trained, then task2 added (warm-started from task1) and trained.

    Returns the model, the CT base output before wrapping, and parameter snapshots
    (after task1 training, right after adding task2, after task2 training).
    """
    x, y = batch
    torch.manual_seed(0)
    base = build_network(MICRO, in_channels=1, num_classes=3)
    with torch.no_grad():
        ct_base_out = MaskedInputNetwork(base, (0,))(x, SETTINGS)
    model = wrap_with_adapters(PemmaNetwork(base, MICRO), MICRO, use_dora=False, first_adapter=adapter_name(1))
    train_steps(model, x, y, steps=2)
    after_task1 = params(model)
    add_task_adapter(model, 2, warm_start_from=1)
    added = params(model)
    trainable_after_add = [name for name, p in model.named_parameters() if p.requires_grad]
    train_steps(model, x, y, steps=3)
    return model, ct_base_out, after_task1, added, trainable_after_add


def test_only_the_new_task_is_trainable(two_tasks) -> None:
    model, _, _, added, trainable = two_tasks
    assert model.active_adapter == "task2"
    task2 = [name for name in added if is_task(name, 2)]
    assert task2 and sorted(trainable) == sorted(task2)


def test_warm_start_copies_the_previous_task(two_tasks) -> None:
    _, _, after_task1, added, _ = two_tasks
    task1 = [name for name in after_task1 if is_task(name, 1)]
    assert task1
    for name in task1:
        twin = name.replace(".task1", ".task2")
        assert torch.equal(added[twin], after_task1[name]), twin
    # ...and task1 was really trained, so the copy is not the trivial zero/initial state.
    assert any(after_task1[n].abs().max() > 0 for n in task1 if "lora_B" in n)


def test_training_task2_leaves_base_and_task1_bit_identical(two_tasks) -> None:
    model, _, _, added, _ = two_tasks
    final = params(model)
    for name, before in added.items():
        if is_task(name, 2):
            continue
        assert torch.equal(final[name], before), f"{name} changed while training task2"
    task2 = [name for name in added if is_task(name, 2)]
    changed = {name for name in task2 if not torch.equal(final[name], added[name])}
    assert any("lora_A" in n for n in changed) and any("lora_B" in n for n in changed)
    for module in PEMMA_MODULES:
        assert any(n.startswith(f"base_model.model.{module}.") for n in changed), f"{module} copy of task2 not trained"


@torch.no_grad()
def test_task_outputs_differ_and_disabled_is_ct_base(two_tasks, batch) -> None:
    model, ct_base_out, _, _, _ = two_tasks
    x, _ = batch
    model.set_adapter("task1")
    out1 = model(x, SETTINGS)
    model.set_adapter("task2")
    out2 = model(x, SETTINGS)
    assert not torch.allclose(out1, out2)
    with model.disable_adapter():
        disabled = model(x, SETTINGS)
    ct_rows = SETTINGS[:, 0]
    assert torch.equal(disabled[ct_rows], ct_base_out[ct_rows])  # ct and ctpet: exactly the CT base
    assert not torch.allclose(out2[ct_rows], ct_base_out[ct_rows])
    assert torch.equal(model(x, SETTINGS), out2)  # leaving the context restores task2


def test_new_adapter_without_warm_start_starts_from_the_base() -> None:
    torch.manual_seed(0)
    model = wrap_with_adapters(PemmaNetwork(build_network(MICRO, 1, 3), MICRO), MICRO, use_dora=False, first_adapter=adapter_name(1))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if is_task(name, 1):
                p.add_(0.1)
    add_task_adapter(model, 3, warm_start_from=None)
    state = params(model)
    for name in state:
        if is_task(name, 3) and "lora_B" in name:
            assert torch.equal(state[name], torch.zeros_like(state[name])), name
        if is_task(name, 3) and "modules_to_save" in name:
            pristine = name.replace("modules_to_save.task3", "original_module")
            assert torch.equal(state[name], state[pristine]), name


def test_re_adding_an_existing_task_keeps_its_weights(two_tasks) -> None:
    model, _, _, _, _ = two_tasks
    before = {k: v.clone() for k, v in get_peft_model_state_dict(model, adapter_name="task1").items()}
    add_task_adapter(model, 1, warm_start_from=2)  # already there: only activated, never overwritten
    after = get_peft_model_state_dict(model, adapter_name="task1")
    assert model.active_adapter == "task1"
    assert all(torch.equal(after[k], v) for k, v in before.items())
    add_task_adapter(model, 2, warm_start_from=None)  # leave the shared fixture as it was


# ----------------------------------------------------------------------------------------------------------------
# TaskAdapterPlugin inside a real Avalanche run (micro stream: experience 0 = task 1, experience 1 = task 2)


@pytest.fixture(scope="module")
def lora_run(run_entry, registered_entries):
    return run_entry(registered_entries["pemma-lora"])


def test_evaluation_before_training_uses_the_ct_base(lora_run, shared_bases, micro_preset) -> None:
    before = [r for r in lora_run.recorder.evals if r["trained"] == 0]
    assert len(before) == 2 * 3  # two test experiences (one case each) x three input settings
    assert all(r["disabled"] for r in before)
    # Laid out and called as the loop lays out and calls a model on a CPU (channels-last; a single case as a pair).
    ct_base = MaskedInputNetwork(shared_bases.get("ct"), (0,)).eval().to(memory_format=torch.channels_last_3d)
    fresh = PemmaNetwork(shared_bases.get("ct"), micro_preset).eval().to(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        for r in before:
            if r["setting"] != "pet":
                assert torch.equal(r["output"], segment(ct_base, r["x"], r["mask"])), r["setting"]
            assert torch.equal(r["output"], segment(fresh, r["x"], r["mask"])), r["setting"]


def test_evaluation_picks_the_adapter_of_the_test_experience_task(lora_run) -> None:
    evals = lora_run.recorder.evals
    assert {(r["trained"], r["exp"], r["task"]) for r in evals} == {(t, e, e + 1) for t in range(3) for e in range(2)}
    for r in evals:
        if r["trained"] == 0:
            continue
        assert r["disabled"] is False
        # After training task 1 only, task 2's test set falls back to the latest trained adapter.
        expected = "task1" if (r["exp"] == 0 or r["trained"] == 1) else "task2"
        assert r["active_adapter"] == expected, r
    assert lora_run.model._adapters_disabled is False  # the disable context was closed


def test_base_weights_equal_the_cached_ct_base_after_the_run(lora_run, shared_bases) -> None:
    cached = torch.load(shared_bases.cache_path("ct"), weights_only=True)
    state = lora_run.model.get_base_model().base.state_dict()
    base = {k.replace(".base_layer.", "."): v for k, v in state.items() if "lora_" not in k}
    assert base.keys() == cached.keys()
    for name, value in cached.items():
        assert torch.equal(base[name], value), name


def test_each_task_trains_its_own_adapter_and_keeps_it(lora_run) -> None:
    initial, (after0, after1) = lora_run.recorder.initial, lora_run.recorder.after_exp
    lora_b1 = [n for n in initial if "lora_B" in n and is_task(n, 1)]
    assert lora_b1 and all(initial[n].abs().max() == 0 for n in lora_b1)
    assert all(after0[n].abs().max() > 0 for n in lora_b1)  # task1 trained during experience 0
    for name, value in after0.items():  # training experience 1 leaves task1 (and the base) untouched
        if name in after1 and not is_task(name, 2):
            assert torch.equal(after1[name], value), name
    # task2 was warm-started from task1, then trained by a rebuilt optimizer: it must have moved away.
    lora_b2 = [n.replace(".task1", ".task2") for n in lora_b1]
    assert all(n in after1 for n in lora_b2)
    assert any(not torch.equal(after1[b2], after1[b1]) for b1, b2 in zip(lora_b1, lora_b2))
    assert any(not torch.equal(after1[n.replace(".task1", ".task2")], after1[n])
               for n in after1 if is_task(n, 1) and "modules_to_save" in n)


def test_design_choices_pet_embedding_copy_and_a_decoder_head_per_adapter_set(batch) -> None:
    """``PemmaDesign``: the authors' PET embedding initialisation, and the ablation's per-set decoder head, which
    trains copies of the last decoder stage while the base's own decoder stays bit-identical."""
    from pemma_cl.models.pemma import PemmaDesign

    x, y = batch
    torch.manual_seed(0)
    base = build_network(MICRO, in_channels=1, num_classes=3)
    design = PemmaDesign(pet_embed_init="ct-copy", decoder_head=True)
    pemma = PemmaNetwork(base, MICRO, design)
    for key, value in base.vit.patch_embedding.state_dict().items():
        assert torch.equal(pemma.pet_embed.state_dict()[key], value), key
    model = wrap_with_adapters(pemma, MICRO, use_dora=False, first_adapter=adapter_name(1), design=design)
    before = params(model)
    train_steps(model, x, y, steps=2)
    after = params(model)
    for stage in ("decoder2", "out"):
        pristine = [n for n in before if f".base.{stage}.original_module." in n]
        copies = [n for n in before if f".base.{stage}.modules_to_save.task1." in n]
        assert pristine and copies, stage
        assert all(torch.equal(after[n], before[n]) for n in pristine), f"the base's {stage} moved"
        assert any(not torch.equal(after[n], before[n]) for n in copies), f"task1's {stage} did not train"
    assert all(torch.equal(after[n], before[n]) for n in before if ".base.decoder3." in n)  # the rest stays frozen
    with pytest.raises(ValueError, match="pet_embed_init"):
        PemmaDesign(pet_embed_init="zeros")
