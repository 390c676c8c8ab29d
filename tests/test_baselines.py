"""The continual-learning baselines each do what they claim, on the micro stream (two CT+PET experiences)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from pemma_cl.evaluation.cost import dataset_bytes
from pemma_cl.report.summary import summarize
from pemma_cl.training.plugins.distillation import SegmentationLwFPlugin, distillation_loss
from pemma_cl.training.plugins.importance import training_masks

N_TRAIN = 4  # training cases of each micro experience (task labels 1 and 2)


def plugin_of(run, name: str):
    return next(p for p in run.strategy.plugins if type(p).__name__ == name)


def weighted_move(run, importance: dict) -> float:
    """How far the second experience moved the weights, each squared change weighted by its importance (the
    quantity the penalty keeps small)."""
    first, second = run.recorder.after_exp
    return sum(float((importance[k].data * (second[k] - first[k]).pow(2)).sum()) for k in first)


# --- EWC and MAS: importance under the training masks, a penalty that pulls back ---------------------------

def test_training_masks_are_the_masks_modality_dropout_draws() -> None:
    both = torch.tensor([[True, True], [True, True]])
    drawn = training_masks(both, 0.5)
    assert [(m.tolist(), p) for m, p in drawn] == [
        ([[True, True], [True, True]], 0.5), ([[True, False], [True, False]], 0.25), ([[False, True], [False, True]], 0.25)]
    ct_only = torch.tensor([[True, False]])
    assert [(m.tolist(), p) for m, p in training_masks(ct_only, 0.5)] == [([[True, False]], 1.0)]
    assert [(m.tolist(), p) for m, p in training_masks(both, 0.0)] == [(both.tolist(), 1.0)]


@pytest.mark.parametrize(("name", "store"), [("ewc", "importances"), ("mas", "importance")])
def test_importance_reaches_the_missing_modality_paths(name: str, store: str, run_entry, registered_entries) -> None:
    """With model(x) and no mask (Avalanche's own pass) both missing-modality adapters would get zero importance."""
    plugin = plugin_of(run_entry(registered_entries[name]), "SegmentationEWCPlugin" if name == "ewc" else "SegmentationMASPlugin")
    importance = getattr(plugin, store)
    importance = importance[0] if name == "ewc" else importance
    for adapter in ("missing_ct_adapter", "missing_pet_adapter"):
        values = [p.data for k, p in importance.items() if k.startswith(adapter)]
        assert values and sum(float(v.abs().sum()) for v in values) > 0, adapter


@pytest.mark.parametrize(("name", "plugin"), [("ewc", "SegmentationEWCPlugin"), ("mas", "SegmentationMASPlugin")])
def test_the_penalty_pulls_important_weights_back(name: str, plugin: str, run_entry, registered_entries) -> None:
    entry = registered_entries[name]
    free, pulled = run_entry(entry, {"lambda": 0.0}), run_entry(entry, {"lambda": 1e6})
    # Same seed, same first experience: identical until the penalty starts at the second.
    assert all(torch.equal(free.recorder.after_exp[0][k], v) for k, v in pulled.recorder.after_exp[0].items())
    state = plugin_of(pulled, plugin)
    importance = state.importances[0] if name == "ewc" else state.importance  # EWC: the first experience's Fisher
    assert weighted_move(pulled, importance) < 0.2 * weighted_move(free, importance)


def test_ewc_reports_what_it_stores(run_entry, registered_entries) -> None:
    run = run_entry(registered_entries["ewc"])
    n_params = sum(p.numel() for p in run.model.parameters())
    # separate mode: anchor weights and Fisher (float32) for each of the two experiences
    assert run.cost["past_bytes"] == 2 * 2 * 4 * n_params


# --- LwF: voxel-wise distillation under the student's mask ----------------------------------------------

def test_distillation_loss_by_hand() -> None:
    student = torch.tensor([0.0, 0.0]).view(1, 2, 1, 1, 1)
    teacher = torch.tensor([2.0, 0.0]).view(1, 2, 1, 1, 1)
    t = 2.0
    p = torch.softmax(teacher.flatten() / t, 0)  # teacher's softened distribution; the student's is uniform
    expected = float((p * (p.log() - math.log(0.5))).sum()) * t * t
    assert float(distillation_loss(student, teacher, t)) == pytest.approx(expected)
    assert float(distillation_loss(teacher, teacher, t)) == pytest.approx(0.0, abs=1e-7)


def test_distillation_loss_is_a_mean_over_voxels() -> None:
    generator = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(2, 3, 4, 4, 4, generator=generator), torch.randn(2, 3, 4, 4, 4, generator=generator)
    tiled = [v.repeat(1, 1, 2, 2, 2) for v in (student, teacher)]  # 8x the voxels, same per-voxel values
    assert float(distillation_loss(*tiled, 2.0)) == pytest.approx(float(distillation_loss(student, teacher, 2.0)), rel=1e-5)


class MaskRecordingTeacher(nn.Module):
    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = nn.Parameter(logits)
        self.masks: list[torch.Tensor] = []

    def forward(self, x, mask):
        self.masks.append(mask)
        return self.logits.expand(len(x), *self.logits.shape[1:])


def test_lwf_loss_follows_the_teacher_and_gives_it_the_students_mask() -> None:
    student = torch.zeros(1, 3, 2, 2, 2)
    mask = torch.tensor([[True, False]])

    def loss_with(teacher_logits: torch.Tensor) -> tuple[float, MaskRecordingTeacher]:
        plugin = SegmentationLwFPlugin(temperature=2.0, weight=1.0)
        plugin.teacher = MaskRecordingTeacher(teacher_logits)
        strategy = SimpleNamespace(mb_x=torch.zeros(1, 2, 2, 2, 2), mb_modality_mask=mask, mb_output=student,
                                   loss=torch.tensor(1.0))
        plugin.before_backward(strategy)
        return float(strategy.loss.detach()), plugin.teacher

    same, teacher = loss_with(torch.zeros(1, 3, 2, 2, 2))
    different, _ = loss_with(torch.tensor([3.0, 0.0, -3.0]).view(1, 3, 1, 1, 1).expand(1, 3, 2, 2, 2).clone())
    assert same == pytest.approx(1.0) and different > 1.1
    assert torch.equal(teacher.masks[0][-1:], mask)  # (a single small case reaches it as a pair: single_case)


def test_lwf_keeps_a_frozen_teacher_after_each_experience(run_entry, registered_entries) -> None:
    run = run_entry(registered_entries["lwf"])
    plugin = plugin_of(run, "SegmentationLwFPlugin")
    assert all(not p.requires_grad for p in plugin.teacher.parameters())
    final = run.recorder.after_exp[-1]
    assert all(torch.equal(p, final[k]) for k, p in plugin.teacher.named_parameters())
    assert run.cost["past_bytes"] == sum(t.numel() * 4 for t in [*run.model.parameters(), *run.model.buffers()])


# --- rehearsal: replay and cumulative ------------------------------------------------------------------

def test_replay_mixes_buffered_old_cases_into_every_new_mini_batch(run_entry, registered_entries) -> None:
    run = run_entry(registered_entries["replay"], {"budget": 3, "batch_size_mem": 1})
    first = [b["tasks"] for b in run.recorder.train_batches if b["exp"] == 0]
    second = [b["tasks"] for b in run.recorder.train_batches if b["exp"] == 1]
    assert first == [[1, 1], [1, 1]]  # nothing to replay yet: the preset's mini-batches of 2
    assert second and all(sorted(tasks) == [1, 2, 2] for tasks in second)  # 2 new cases + 1 buffered old one
    buffer = plugin_of(run, "CaseReplayPlugin").storage_policy.buffer
    assert len(buffer) == 3  # the budget, split over the two experiences seen
    assert run.cost["past_bytes"] == dataset_bytes(buffer) == 3 * dataset_bytes(buffer) // len(buffer)


def test_cumulative_retrains_on_everything_seen(run_entry, registered_entries) -> None:
    batches = run_entry(registered_entries["cumulative"]).recorder.train_batches
    seen = {exp: [t for b in batches if b["exp"] == exp for t in b["tasks"]] for exp in (0, 1)}
    assert sorted(seen[0]) == [1] * N_TRAIN
    assert sorted(seen[1]) == [1] * N_TRAIN + [2] * N_TRAIN


# --- joint: the offline upper bound ---------------------------------------------------------------------

def test_joint_sees_all_data_once_then_trains_nothing(run_entry, registered_entries) -> None:
    run = run_entry(registered_entries["joint"])
    batches = run.recorder.train_batches
    assert sorted(t for b in batches for t in b["tasks"]) == [1] * N_TRAIN + [2] * N_TRAIN  # one epoch, each case once
    assert {b["exp"] for b in batches} == {0}
    first, second = run.recorder.after_exp
    assert all(torch.equal(first[k], v) for k, v in second.items())


def test_joint_has_no_forgetting_only_final_scores(run_entry, registered_entries) -> None:
    import pandas as pd

    run = run_entry(registered_entries["joint"])
    summary = summarize(pd.DataFrame(run.rows), {}, {"joint": run.evaluation})["joint"]
    assert summary["evaluation"] == "offline (not continual)"
    for metrics in summary["inputs"].values():
        assert metrics["forgetting"] is None and metrics["bwt"] is None and metrics["fwt_own_start"] is None
        assert metrics["final_dice"] is not None


def test_agem_keeps_a_memory_and_projects_only_conflicting_gradients(run_entry, registered_entries) -> None:
    run = run_entry(registered_entries["agem"])
    plugin = plugin_of(run, "SegmentationAGEMPlugin")
    assert len(plugin.memory) == 2 * min(N_TRAIN, 4)  # patterns_per_experience = 4 from each experience
    assert run.cost["past_bytes"] == dataset_bytes(plugin.memory)
    params = list(run.model.parameters())
    plugin.before_training_iteration(run.strategy)  # the reference gradient of a memory batch, under its masks
    reference = plugin.reference_gradients.clone()
    assert float(reference.norm()) > 0

    def apply(gradient: torch.Tensor) -> torch.Tensor:
        offset = 0
        for p in params:
            p.grad = gradient[offset:offset + p.numel()].view_as(p).clone()
            offset += p.numel()
        plugin.after_backward(run.strategy)
        return torch.cat([p.grad.view(-1) for p in params])

    noise = torch.randn(reference.shape, generator=torch.Generator().manual_seed(0)) * float(reference.norm()) / 100
    conflicting = apply(-reference + noise)
    assert abs(float(conflicting @ reference)) < 1e-4 * float(reference @ reference)  # projected onto the plane
    agreeing = reference + noise
    assert torch.equal(apply(agreeing), agreeing)  # left alone
