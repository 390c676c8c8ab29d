"""The parameter-efficient CL rivals and the one-model-per-experience reference each do what defines them, on the micro
stream (experience 0 = task 1, experience 1 = task 2, both CT+PET)."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from avalanche.core import SupervisedPlugin
from torch import nn

from pemma_cl.strategies.pemma_lora_ewc import is_adapter_parameter
from pemma_cl.training.plugins.separate_models import PerTaskNetworks, SeparateModelsPlugin
from pemma_cl.training.single_case import segment

N_EXPERIENCES = 2


def plugin_of(run, name: str):
    return next(p for p in run.strategy.plugins if type(p).__name__ == name)


class FinalEvalRecorder(SupervisedPlugin):
    """The input, mask and output of every evaluation forward pass after the whole stream, by (test experience,
    input setting)."""

    def __init__(self) -> None:
        super().__init__()
        self.trained = 0
        self.final: dict[tuple[int, str], dict] = {}

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.trained += 1

    def after_eval_forward(self, strategy, **kwargs) -> None:
        if self.trained == N_EXPERIENCES:
            self.final[(strategy.experience.task_label, strategy.mb_input_setting)] = {
                "x": strategy.mb_x.detach().clone(), "mask": strategy.mb_modality_mask.clone(),
                "output": strategy.mb_output.detach().clone()}


# --- separate-models ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def separate_run(run_entry, registered_entries):
    """A run of separate-models with a :class:`FinalEvalRecorder` (``run.final``)."""
    recorder = FinalEvalRecorder()
    run = run_entry(registered_entries["separate-models"], plugins=(recorder,))
    run.final = recorder.final
    return run


def network_params(params: dict, task: int) -> dict:
    prefix = f"modules_to_save.task{task}."
    return {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}


def test_each_experience_trains_its_own_network_and_later_ones_leave_it_bit_identical(separate_run) -> None:
    initial, (after0, after1) = separate_run.recorder.initial, separate_run.recorder.after_exp
    start, first_then, first_later = network_params(initial, 1), network_params(after0, 1), network_params(after1, 1)
    assert start and first_then.keys() == start.keys()
    assert any(not torch.equal(first_then[k], v) for k, v in start.items())  # task 1's network trained
    assert all(torch.equal(first_later[k], v) for k, v in first_then.items())  # and experience 1 left it alone
    second = network_params(after1, 2)
    assert second.keys() == start.keys() and not network_params(after0, 2)  # added when task 2 first trained
    assert any(not torch.equal(second[k], v) for k, v in start.items())


def test_a_new_task_gets_a_fresh_copy_of_the_start_and_only_it_trains() -> None:
    start = nn.Linear(3, 2)
    model = PerTaskNetworks(copy.deepcopy(start), first_task=1)
    with torch.no_grad():
        model.modules_to_save["task1"].weight.add_(1.0)  # as if task 1 had trained
    plugin, rebuilt = SeparateModelsPlugin(start), []
    strategy = SimpleNamespace(model=model, device=torch.device("cpu"), experience=SimpleNamespace(task_label=2),
                               make_optimizer=lambda **kwargs: rebuilt.append(kwargs))
    plugin.before_training_exp(strategy)
    second = model.modules_to_save["task2"]
    assert second is not start and torch.equal(second.weight, start.weight)  # the start, not task 1's weights
    assert [p.requires_grad for p in model.parameters()] == [False, False, True, True]
    assert rebuilt == [{"reset_optimizer_state": True}] and plugin.trained_tasks == [2]
    strategy.experience.task_label = 1
    plugin.before_eval_exp(strategy)  # task 1 never trained here: the latest trained network
    assert model.active == "task2"


def test_evaluation_of_experience_k_runs_network_k(separate_run) -> None:
    networks = separate_run.model.modules_to_save
    assert sorted(networks) == ["task1", "task2"]
    assert {task for task, _ in separate_run.final} == {1, 2}
    with torch.no_grad():
        for (task, setting), r in separate_run.final.items():
            own = segment(networks[f"task{task}"].eval(), r["x"], r["mask"])
            other = segment(networks[f"task{3 - task}"].eval(), r["x"], r["mask"])
            assert torch.allclose(r["output"], own, atol=1e-5), (task, setting)
            assert not torch.allclose(own, other, atol=1e-3), (task, setting)


def test_separate_models_is_task_aware_and_stores_a_whole_network_per_task(separate_run) -> None:
    n_network = sum(p.numel() for p in separate_run.model.modules_to_save["task1"].parameters())
    cost = separate_run.cost
    assert separate_run.evaluation.startswith("task-aware")
    assert (cost["trainable_params"], cost["total_params"]) == (n_network, n_network)
    assert cost["bytes_per_task"] == 4 * n_network  # float32
    assert cost["stored_params"] == N_EXPERIENCES * n_network
    assert cost["trainable_pct_stored"] == pytest.approx(100.0 / N_EXPERIENCES)


# --- pemma-lora-ewc ------------------------------------------------------------------------------------------------

def test_adapter_ewc_covers_exactly_the_adapter_parameters(run_entry, registered_entries) -> None:
    run = run_entry(registered_entries["pemma-lora-ewc"])
    ewc = plugin_of(run, "SegmentationEWCPlugin")
    names = {n for n, _ in run.model.named_parameters()}
    adapter = {n for n in names if ".lora_" in n or ".modules_to_save.shared." in n}
    assert adapter and set(ewc.importances[0]) == adapter == set(ewc.saved_params[0])
    assert not any(is_adapter_parameter(n) for n in names - adapter - {n for n in names if "original_module" in n})
    n_adapter = sum(p.numel() for n, p in run.model.named_parameters() if n in adapter)
    assert run.cost["past_bytes"] == 2 * 2 * 4 * n_adapter  # anchors and Fisher (float32), two experiences


def test_adapter_ewc_pulls_the_adapters_toward_their_earlier_values(run_entry, registered_entries) -> None:
    entry = registered_entries["pemma-lora-ewc"]
    free, pulled = run_entry(entry, {"lambda": 0.0}), run_entry(entry, {"lambda": 1e6})
    # Same seed, same first experience: identical until the penalty starts at the second.
    assert all(torch.equal(free.recorder.after_exp[0][k], v) for k, v in pulled.recorder.after_exp[0].items())
    fisher = plugin_of(pulled, "SegmentationEWCPlugin").importances[0]

    def weighted_move(run) -> float:
        first, second = run.recorder.after_exp
        return sum(float((fisher[k].data * (second[k] - first[k]).pow(2)).sum()) for k in fisher)

    assert weighted_move(pulled) < 0.2 * weighted_move(free)
