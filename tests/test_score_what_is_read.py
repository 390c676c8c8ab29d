"""Scoring only what is read (:mod:`pemma_cl.evaluation.scoring`): frozen per-task parameters give bit-identical
cells at every later state, so copying them changes no row; a run's ``scored_cells`` keeps exactly its cells' rows."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest
import torch

from pemma_cl.core.errors import UserError
from pemma_cl.evaluation.per_case import CASE_COLUMNS
from pemma_cl.evaluation.scoring import (
    COMPUTE,
    GROUPS_READ,
    SKIP,
    ScoringPlan,
    cell_group,
    cells_read,
    scored_experiences,
)

FROZEN = ("pemma-lora", "pemma-dora")
SETTINGS = ("ct", "pet", "ctpet")


# --- the plan itself ------------------------------------------------------------------------------------------------

def test_the_plan_knows_the_template_s_input_settings() -> None:
    from pemma_cl.evaluation.scoring import INPUTS
    from pemma_cl.training.template import INPUT_SETTINGS

    assert INPUTS == tuple(INPUT_SETTINGS)


def test_every_state_scores_the_experiences_the_metrics_need() -> None:
    assert [list(scored_experiences(state, 4)) for state in range(-1, 4)] == [
        [0, 1, 2, 3], [0, 1], [0, 1, 2], [0, 1, 2, 3], [0, 1, 2, 3]]
    groups = [[cell_group(state, j, 4) for j in scored_experiences(state, 4)] for state in range(-1, 4)]
    assert groups == [["next"] * 4, ["seen", "next"], ["seen", "seen", "next"], ["seen"] * 3 + ["next"],
                      ["final"] * 4]


def test_frozen_tasks_copy_earlier_experiences_between_the_states_before_the_last() -> None:
    plan = ScoringPlan.for_run([1, 2, 3, 4], frozen_earlier_tasks=True)
    actions = [[plan.action(state, j, "ct") for j in scored_experiences(state, 4)] for state in range(-1, 4)]
    c = COMPUTE
    # Experience j's own task was last trained at state j; the last state scores every test case and HD95.
    assert actions == [[c, c, c, c], [c, c], [0, c, c], [0, 1, c, c], [c, c, c, c]]
    assert plan.computed(2, 1, SETTINGS) == ()
    assert plan.computed(2, 2, SETTINGS) == SETTINGS


def test_a_repeated_task_label_is_copied_only_from_a_state_that_scored_it() -> None:
    plan = ScoringPlan.for_run([0, 1, 0, 1], frozen_earlier_tasks=True)
    # State 1 evaluates experience 2 (task 0) with task 0's parameters of state 0, which did not score experience 2.
    assert plan.action(1, 2, "pet") == COMPUTE
    # State 2 retrains task 0: experience 0 is computed again; state 2's experience 1 (task 1, trained at 1) copied.
    assert [plan.action(2, j, "pet") for j in range(4)] == [COMPUTE, 1, COMPUTE, COMPUTE]


def test_without_frozen_tasks_every_cell_read_is_computed() -> None:
    plan = ScoringPlan.for_run([1, 2, 3], read=[("final", "ctpet"), ("seen", "ct")])
    assert plan.action(-1, 0, "ct") == SKIP
    assert [plan.action(1, j, "ct") for j in range(3)] == [COMPUTE, COMPUTE, SKIP]
    assert [plan.action(1, 0, s) for s in SETTINGS] == [COMPUTE, SKIP, SKIP]
    assert [plan.action(2, 0, s) for s in SETTINGS] == [SKIP, SKIP, COMPUTE]
    assert ScoringPlan.for_run([1, 2]).read is None


def test_a_copied_cell_comes_from_the_first_state_that_computed_it() -> None:
    # Seen cells read at ct only: state 1 copies experience 0 from state 0 (a seen cell, computed).
    plan = ScoringPlan.for_run([1, 2, 3, 4], frozen_earlier_tasks=True, read=[("seen", "ct"), ("next", "pet")])
    assert plan.action(2, 0, "ct") == 0
    assert plan.action(0, 1, "ct") == SKIP
    assert plan.action(1, 1, "ct") == COMPUTE and plan.action(2, 1, "ct") == 1
    with pytest.raises(ValueError, match="does not score experience 3"):
        plan.action(1, 3, "ct")


def test_a_decide_run_reads_the_cells_of_its_contrasts_metrics() -> None:
    from pemma_cl.report.contrasts import METRICS

    assert set(METRICS) <= set(GROUPS_READ)  # every contrast metric says what it reads
    assert cells_read([("final_dice", "ctpet")]) == (("final", "ctpet"),)
    assert cells_read([("final_dice", "ctpet"), ("forgetting", "ct"), ("forgetting_drop", "ctpet")]) == (
        ("final", "ct"), ("final", "ctpet"), ("seen", "ct"), ("seen", "ctpet"))
    assert cells_read([("final_dice", "ctpet"), ("a-new-metric", "ct")]) == ()  # unknown: every cell
    assert cells_read([("cindex_gain", "ctpet")]) == ()


def test_scored_cells_are_checked_and_stored() -> None:
    from pemma_cl.run.config import RunConfig
    from pemma_cl.streams.spec import load_stream

    config = RunConfig(stream=load_stream("centers"), strategies=("pemma-lora",),
                       scored_cells=(("final", "ctpet"), ("seen", "ct")))
    assert config.to_dict()["scored_cells"] == [["final", "ctpet"], ["seen", "ct"]]
    assert RunConfig.from_dict(config.to_dict()) == config
    assert RunConfig(stream=load_stream("centers"), strategies=("pemma-lora",)).scored_cells == ()
    with pytest.raises(UserError, match=r"^scored_cells: expected \(group, input\) pairs.*got \('last', 'ct'\)$"):
        RunConfig(stream=load_stream("centers"), strategies=("pemma-lora",), scored_cells=(("last", "ct"),))
    with pytest.raises(UserError, match="named once"):
        RunConfig(stream=load_stream("centers"), strategies=("pemma-lora",),
                  scored_cells=(("final", "ct"), ("final", "ct")))


def test_only_per_task_pemma_declares_frozen_earlier_tasks(registered_entries) -> None:
    frozen = {name for name, entry in registered_entries.items() if entry.frozen_earlier_tasks}
    assert {"pemma-lora", "pemma-dora"} <= frozen
    assert not frozen & {"pemma-lora-shared", "pemma-dora-shared", "full-finetune", "early-fusion"}


# --- real units on a three-experience micro stream ------------------------------------------------------------------

class OutputRecorder:
    """Every evaluation forward pass's output, by (state, experience, setting): its mini-batches in order."""

    def __init__(self) -> None:
        self.state = -1
        self.outputs: dict[tuple[int, int, str], list[torch.Tensor]] = {}

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.state = strategy.experience.current_experience

    def after_eval_forward(self, strategy, **kwargs) -> None:
        key = (self.state, strategy.experience.current_experience, strategy.mb_input_setting)
        self.outputs.setdefault(key, []).append(strategy.mb_output.detach().clone())

    def __getattr__(self, name: str):
        if name.startswith(("before_", "after_")):
            return lambda strategy, **kwargs: None
        raise AttributeError(name)


@pytest.fixture(scope="module")
def three_experiences(tiny_cohort, micro_stream_spec):
    """The micro stream with a third experience (HMR, task 3): state 1 scores experience 0 again before the last."""
    from pemma_cl.data.splits import split_cases
    from pemma_cl.streams.build import build_stream
    from pemma_cl.streams.spec import ExperienceSpec

    spec = replace(micro_stream_spec, name="micro-3", experiences=(
        *micro_stream_spec.experiences, ExperienceSpec(name="HMR", centres=("HMR",), modalities=("ct", "pet"), task=3)))
    train, test = split_cases(tiny_cohort, 0).for_evaluation_on("test")
    return build_stream(spec, train, test)


@pytest.fixture(scope="module")
def run_three(three_experiences, ctx_settings, registered_entries):
    """``run(name, frozen=None, scored_cells=())``: one unit on the three-experience stream, with its recorded
    outputs (``frozen``: the strategy's declaration replaced); cached."""
    from pemma_cl.run.unit import run_strategy

    settings = {**ctx_settings, "task_labels": [1, 2, 3]}
    cache: dict = {}

    def run(name: str, frozen: bool | None = None, scored_cells: tuple = ()):
        key = (name, frozen, scored_cells)
        if key not in cache:
            entry, recorder = registered_entries[name], OutputRecorder()

            def build(ctx):
                strategy = entry.build(ctx)
                strategy.plugins.append(recorder)
                return strategy

            changed = {"build": build} if frozen is None else {"build": build, "frozen_earlier_tasks": frozen}
            unit = run_strategy(replace(entry, **changed), three_experiences, settings, scored_cells=scored_cells)
            cache[key] = (unit, recorder.outputs)
        return cache[key]

    return run


def _cases(unit) -> pd.DataFrame:
    return pd.DataFrame(unit.cases, columns=list(CASE_COLUMNS))


@pytest.mark.parametrize("name", FROZEN)
def test_frozen_task_parameters_give_bit_identical_cells_at_every_later_state(run_three, name: str) -> None:
    """Every cell computed (the declaration switched off): an earlier experience's outputs after later experiences
    are its outputs right after its own, bit for bit (the last state too, which scores the same cases here)."""
    unit, outputs = run_three(name, frozen=False)
    for j in range(3):
        for setting in SETTINGS:
            own = outputs[(j, j, setting)]
            for later in range(j + 1, 3):
                assert all(torch.equal(a, b) for a, b in zip(own, outputs[(later, j, setting)], strict=True)), \
                    (name, j, setting, later)
            assert not torch.equal(own[0], outputs[(-1, j, setting)][0])  # its adapter changed the base's output
    cases = _cases(unit)
    counts = ["case_id", "structure", "tp", "fp", "fn", "dice"]
    for (j, setting), rows in cases.groupby(["eval_experience", "input"]):
        by_state = {state: part[counts].reset_index(drop=True) for state, part in rows.groupby("trained_through")}
        for state in range(j + 1, 3):
            pd.testing.assert_frame_equal(by_state[j], by_state[state])


def test_a_shared_adapter_changes_earlier_outputs(run_three) -> None:
    """The control: one adapter set continued through the stream moves an earlier experience's outputs."""
    _, outputs = run_three("pemma-lora-shared")
    assert not torch.equal(outputs[(0, 0, "ctpet")][0], outputs[(1, 0, "ctpet")][0])


@pytest.mark.parametrize("name", FROZEN)
def test_copied_cells_give_the_rows_of_computed_ones(run_three, name: str) -> None:
    computed, all_outputs = run_three(name, frozen=False)
    copied, outputs = run_three(name)
    pd.testing.assert_frame_equal(pd.DataFrame(copied.rows), pd.DataFrame(computed.rows))
    pd.testing.assert_frame_equal(_cases(copied), _cases(computed))
    # Experience 0 at state 1 was not run again, and nothing else was left out.
    assert set(all_outputs) - set(outputs) == {(1, 0, setting) for setting in SETTINGS}


def test_scored_cells_keep_exactly_their_rows(run_three) -> None:
    read = (("final", "ctpet"), ("seen", "ct"))
    full, _ = run_three("early-fusion")
    part, outputs = run_three("early-fusion", scored_cells=read)
    cases = _cases(full)
    group = [cell_group(state, j, 3) for state, j in zip(cases["trained_through"], cases["eval_experience"])]
    kept = cases[[(g, i) in read for g, i in zip(group, cases["input"])]].reset_index(drop=True)
    pd.testing.assert_frame_equal(_cases(part), kept)
    assert {(key[0], key[2]) for key in outputs} == {(2, "ctpet"), (0, "ct"), (1, "ct")}
    metric_rows = [row for row in full.rows
                   if (cell_group(row["trained_through"], row["eval_experience"], 3), row["input"]) in read]
    pd.testing.assert_frame_equal(pd.DataFrame(part.rows), pd.DataFrame(metric_rows))
