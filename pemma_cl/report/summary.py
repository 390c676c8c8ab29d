"""From tidy metric rows to the continual-learning summary of one seed (a dict per strategy).

The metric rows are a :class:`pandas.DataFrame` with the columns of :data:`METRIC_COLUMNS`, one
row per (seed, strategy, model state, evaluated experience, input setting, structure):

* ``seed``: the seed of the sub-run.
* ``strategy``: strategy name.
* ``trained_through`` (int): index of the last experience trained on; ``-1`` is the model before
  any training on the stream. ``trained_through_name``: that experience's name.
* ``eval_experience`` (int), ``eval_experience_name``: the experience whose test set is scored.
* ``centre``: centre(s) of the evaluated experience.
* ``input``: input setting, one of :data:`INPUTS` (``ct``, ``pet``, ``ctpet``).
* ``structure``: one of the data's structures (``GTVp``, ``GTVn`` in the built-in cohort) or ``aggregated``, the
  mean over them (see :mod:`pemma_cl.evaluation.dice`; with one structure, that structure's values).
* ``dice`` (float): aggregated Dice; ``dice_case_mean`` (float): mean per-case Dice;
  ``hd95`` (float): median per-case HD95 in mm (see :mod:`pemma_cl.evaluation.hd95`);
  ``n_cases`` (int): number of test cases.

:func:`summarize` works on the rows of one seed; :mod:`pemma_cl.report.seeds` aggregates seeds and renders.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pemma_cl.core.errors import UserError
from pemma_cl.core.protocol import OFFLINE
from pemma_cl.data.hecktor.layout import HEAD_AND_NECK_STRUCTURES
from pemma_cl.evaluation.cl_metrics import (
    backward_transfer,
    crossfit_forgetting_mean,
    final_average,
    forgetting,
    forward_transfer,
)
from pemma_cl.evaluation.per_case import aggregated_dice, scored_at_every_state
from pemma_cl.evaluation.plasticity import PLASTICITY_REFERENCE, plasticity

__all__ = ["INPUTS", "INPUT_LABELS", "METRICS", "METRIC_COLUMNS", "PLASTICITY", "note", "r_matrix", "run_structures",
           "summarize"]

#: Columns of the tidy metric rows, in order.
METRIC_COLUMNS: tuple[str, ...] = (
    "seed",
    "strategy",
    "trained_through",
    "trained_through_name",
    "eval_experience",
    "eval_experience_name",
    "centre",
    "input",
    "structure",
    "dice",
    "dice_case_mean",
    "hd95",
    "n_cases",
)
#: Per strategy and input setting, what :func:`summarize` reports.
METRICS: tuple[str, ...] = ("final_dice", "forgetting", "forgetting_max", "bwt", "fwt_own_start", "final_hd95")
#: Reported per input setting beside :data:`METRICS` only when the run includes the plasticity reference
#: (:data:`~pemma_cl.evaluation.plasticity.PLASTICITY_REFERENCE`); absent otherwise (not defined).
PLASTICITY = "plasticity"
#: Input settings in display order.
INPUTS: tuple[str, ...] = ("ct", "pet", "ctpet")
#: Display names of the input settings.
INPUT_LABELS: dict[str, str] = {"ct": "CT", "pet": "PET", "ctpet": "CT+PET"}

#: The structures of a run stored before summaries recorded them: every such run is of the head-and-neck cohort (the
#: built-in one or HECKTOR 2022).
LEGACY_STRUCTURES: tuple[str, ...] = tuple(HEAD_AND_NECK_STRUCTURES.values())
#: Definitions printed under the summary tables, after the sentence on the structures (:func:`note`).
_NOTE: str = (
    "Final Dice: the mean over experiences (centres) of each experience's aggregated Dice "
    "after the last one, not the Dice of all test cases pooled: every centre weighs the same whatever its number "
    "of test cases. Final Dice and HD95 are scored on every test case; forgetting, BWT and FWT on the tracked "
    "cases of each experience (the first tracked_cases_per_centre test cases of each centre, scored at every "
    "state; the final state's scores of the same cases). Forgetting is cross-fitted max-based forgetting "
    "(docs/forgetting.md): per experience, its tracked cases split in two halves stratified by centre, the step "
    "where it peaked (from the step it was trained until the one before last) chosen on one half and its drop to "
    "the final Dice read on the other, both ways averaged, then averaged over all but the last experience (higher "
    "= more forgetting; about 0 when nothing is forgotten). Forgetting (max) is the classic max-based form "
    "(Chaudhry et al., 2018) on the tracked cases: best Dice minus final Dice, biased upward by noise (the "
    "maximum of noisy scores); a run without per-case rows "
    "(cases.csv.gz) reports it in both columns. BWT is "
    "GEM's backward transfer (Lopez-Paz & Ranzato, 2017): final Dice minus the Dice right after training on "
    "that experience, averaged (negative = forgetting). FWT (vs own start): Dice on an experience just before "
    "it is trained minus the same strategy's Dice on it before any training (not GEM's random-model "
    "reference: strategies that start from different bases are not comparable on it). HD95: 95th-percentile Hausdorff distance in mm, the median over an experience's cases per structure, then the mean over structures; final HD95 is its mean over all experiences after the last one (lower is better; a structure missed or hallucinated in a case counts as the volume's diagonal). Evaluation: "
    "task-aware strategies are given each test experience's task label and pick their adapter with it, so "
    "their earlier results cannot change (zero forgetting by construction); task-agnostic ones are told "
    "nothing. Offline (joint): not a continual method, one model trained once on every experience's training "
    "data (the upper-bound row); every row of its R matrix is that model, so only its final Dice and HD95 are "
    "defined. Trainable % (task): trainable parameters of one task over the parameters that serve one task; "
    "(stored): over every parameter the strategy stores after the whole stream. Past MB: what a strategy keeps "
    "beyond its model to remember the past (replay buffer, importance and anchor weights, teacher copy, the data "
    "it retrains on)."
)



def run_structures(summary: Mapping[str, Any]) -> tuple[str, ...]:
    """The structures a run's summary (``summary.json``) records, or :data:`LEGACY_STRUCTURES` for a run stored
    before summaries recorded them."""
    return tuple(summary.get("structures") or LEGACY_STRUCTURES)


def note(structures: Sequence[str]) -> str:
    """The definitions printed under the summary tables, naming the structures ``aggregated`` averages.

    Args:
        structures: the structures of the rows summarised (:func:`run_structures`); empty: not known (several runs
            of different data side by side).
    """
    names = list(structures)
    if len(names) == 1:
        mean = f"'aggregated' is {names[0]}'s Dice (the data's one structure)"
    else:
        over = f"{', '.join(names[:-1])} and {names[-1]}" if names else "the data's structures"
        mean = (f"'aggregated' is the mean over {over}, leaving out a structure no reference mask of that experience "
                "contains")
    return ("Dice: HECKTOR's aggregated Dice per structure (2 sum TP / sum(|P|+|G|) over an experience's cases); "
            f"{mean}. {_NOTE}")

def _check_columns(df: pd.DataFrame) -> None:
    missing = [c for c in METRIC_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"metric table lacks column(s) {', '.join(missing)}; expected {', '.join(METRIC_COLUMNS)}")


def r_matrix(
    df: pd.DataFrame, strategy: str, input: str, structure: str = "aggregated", value: str = "dice"
) -> tuple[np.ndarray, np.ndarray | None]:
    """The results matrix of one strategy and input setting (of one seed).

    Args:
        df: metric rows (columns :data:`METRIC_COLUMNS`).
        strategy: strategy name.
        input: input setting (``ct``, ``pet`` or ``ctpet``).
        structure: structure whose ``value`` is used.
        value: the metric column (``dice`` or ``hd95``).

    Returns:
        ``(R, baseline)``: ``R[i, j]`` is the Dice on experience ``j`` after training through
        experience ``i`` (``T x T``, NaN where missing, e.g. the columns of prognosis experiences), with ``T`` one
        more than the highest experience index trained or scored. ``baseline[j]`` is the Dice on ``j``
        before any training (rows with ``trained_through == -1``), or None without such rows.
    """
    _check_columns(df)
    rows = df[(df["strategy"] == strategy) & (df["input"] == input) & (df["structure"] == structure)]
    if rows.empty:
        raise UserError(f"no metric rows for strategy={strategy!r}, input={input!r}, structure={structure!r}")
    where = f"strategy={strategy!r}, input={input!r}, structure={structure!r}"
    if rows.duplicated(["trained_through", "eval_experience"]).any():
        raise UserError(f"metric table has several rows for the same trained_through/eval_experience ({where})")
    experiences = sorted(int(e) for e in rows["eval_experience"].unique())
    trained = rows["trained_through"].astype(int)
    # A stream's prognosis experiences have no Dice rows: T counts every experience trained or scored, and the
    # columns of the others stay NaN (every metric of cl_metrics skips NaN).
    T = max(experiences[-1], int(trained.max())) + 1
    if experiences[0] < 0:
        raise UserError(f"eval_experience values must be 0..{T - 1}, got {experiences} ({where})")
    if (trained < -1).any():
        raise UserError(f"trained_through values must be -1..{T - 1}, got {sorted(trained.unique())} ({where})")
    R = np.full((T, T), math.nan)
    baseline = np.full(T, math.nan)
    for i, j, score in zip(trained, rows["eval_experience"].astype(int), rows[value].astype(float)):
        if i == -1:
            baseline[j] = score
        else:
            R[i, j] = score
    return R, (baseline if (trained == -1).any() else None)


def summarize(df: pd.DataFrame, costs: dict[str, dict[str, Any]],
              evaluation: dict[str, str] | None = None, cases: pd.DataFrame | None = None) -> dict[str, dict[str, Any]]:
    """Continual-learning metrics of every strategy on the aggregated Dice.

    Args:
        df: metric rows (columns :data:`METRIC_COLUMNS`).
        costs: per strategy, cost fields (e.g. ``trainable_params``, ``total_params``,
            ``trainable_pct``, ``bytes_per_task``, ``train_seconds``), copied as given.
        evaluation: per strategy, how it was evaluated (``task-agnostic`` or ``task-aware (task label
            given)``); strategies not named are recorded as ``None`` (unknown).
        cases: the seed's per-case rows (:data:`pemma_cl.evaluation.per_case.CASE_COLUMNS`); given, ``forgetting``
            is :func:`~pemma_cl.evaluation.cl_metrics.crossfit_forgetting_mean` (halves seeded with the rows'
            seed); None: ``forgetting`` is the max-based form, like ``forgetting_max``.

    Returns:
        ``{strategy: {"evaluation": str | None, "inputs": {input: {"final_dice", "forgetting", "forgetting_max",
        "bwt", "fwt_own_start", "final_hd95"}}, "costs": {...}}}`` with strategies in order of first appearance and
        inputs in the order of :data:`INPUTS` (only those present). ``fwt_own_start`` is None when the table has no
        ``trained_through == -1`` rows. See :mod:`pemma_cl.evaluation.cl_metrics` for the definitions. An offline
        reference (``joint``) has only ``final_dice`` and ``final_hd95``: its other metrics are None (undefined).
        When the rows include ``separate-models``, every input also has ``plasticity``
        (:func:`~pemma_cl.evaluation.plasticity.plasticity` on the tracked cases, against ``separate-models`` at the
        same input): None for ``separate-models`` itself (0 by construction) and for an offline reference; without
        ``separate-models`` the key is absent (no reference, no plasticity).
    """
    _check_columns(df)
    unknown = sorted(set(df["input"]) - set(INPUTS))
    if unknown:
        raise UserError(f"metric table has unknown input setting(s) {unknown}; expected {list(INPUTS)}")
    evaluation = evaluation or {}
    alone = _plasticity_references(df, cases)
    summary: dict[str, dict[str, Any]] = {}
    for strategy in pd.unique(df["strategy"]):
        present = set(df.loc[df["strategy"] == strategy, "input"])
        inputs: dict[str, dict[str, float | None]] = {}
        continual = evaluation.get(strategy) != OFFLINE
        for inp in (i for i in INPUTS if i in present):
            R, baseline = r_matrix(df, strategy, inp)
            rows = None if cases is None or not continual else _case_rows_of(cases, strategy, inp)
            tracked, tracked_baseline = _tracked_r_matrix(df, rows, strategy, inp) if continual else (R, baseline)
            inputs[inp] = {
                "final_dice": final_average(R),
                "forgetting": _forgetting(tracked, rows) if continual else None,
                "forgetting_max": forgetting(tracked) if continual else None,
                "bwt": backward_transfer(tracked) if continual else None,
                "fwt_own_start": (None if tracked_baseline is None or not continual
                                  else forward_transfer(tracked, tracked_baseline)),
                "final_hd95": final_average(r_matrix(df, strategy, inp, value="hd95")[0]),
            }
            if alone:
                own = continual and strategy != PLASTICITY_REFERENCE
                inputs[inp][PLASTICITY] = plasticity(tracked, alone.get(inp)) if own else None
        summary[str(strategy)] = {"evaluation": evaluation.get(strategy), "inputs": inputs,
                                  "costs": dict(costs.get(strategy, {}))}
    return summary


def _plasticity_references(df: pd.DataFrame, cases: pd.DataFrame | None) -> dict[str, np.ndarray]:
    """Per input setting, the tracked results matrix of :data:`~pemma_cl.evaluation.plasticity.PLASTICITY_REFERENCE`
    (each experience's model trained on it alone); empty when the rows do not include that strategy."""
    rows = df[df["strategy"] == PLASTICITY_REFERENCE]
    return {inp: _tracked_r_matrix(df, None if cases is None else _case_rows_of(cases, PLASTICITY_REFERENCE, inp),
                                   PLASTICITY_REFERENCE, inp)[0]
            for inp in (i for i in INPUTS if i in set(rows["input"]))}


def _tracked_r_matrix(df: pd.DataFrame, cases: pd.DataFrame | None, strategy: str, inp: str
                      ) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`r_matrix` of the aggregated Dice on the cases scored at every state of each experience (the tracked
    cases: ``tracked_cases_per_centre``), from the per-case rows of ``strategy`` and ``inp``; forgetting, BWT and
    FWT compare states on it.

    Without per-case rows it is :func:`r_matrix` itself, which is right only if every state scored the same cases.

    Raises:
        UserError: Without per-case rows, when an experience's states were scored on different numbers of cases.
    """
    if cases is None:
        rows = df[(df["strategy"] == strategy) & (df["input"] == inp) & (df["structure"] == "aggregated")]
        if (rows.groupby("eval_experience")["n_cases"].nunique() > 1).any():
            raise UserError(f"strategy {strategy!r}, input {inp!r}: the states were scored on different cases "
                            "(tracked cases); forgetting, BWT and FWT need the per-case rows (cases=...)")
        return r_matrix(df, strategy, inp)
    rows = scored_at_every_state(cases)
    cells = rows.groupby(["trained_through", "eval_experience"]).apply(aggregated_dice, include_groups=False)
    table = cells.rename("dice").reset_index().assign(strategy=strategy, input=inp, structure="aggregated")
    return r_matrix(table.reindex(columns=list(METRIC_COLUMNS)), strategy, inp)


def _forgetting(R: np.ndarray, rows: pd.DataFrame | None) -> float:
    """Cross-fitted forgetting from the per-case rows of one strategy and input setting; max-based without rows."""
    if rows is None:
        return forgetting(R)
    return crossfit_forgetting_mean(rows, seed=int(rows["seed"].iloc[0]))


def _case_rows_of(cases: pd.DataFrame, strategy: str, inp: str) -> pd.DataFrame:
    """The per-case rows of ``strategy`` and ``inp`` (a UserError if there are none)."""
    rows = cases[(cases["strategy"] == strategy) & (cases["input"] == inp)]
    if rows.empty:
        raise UserError(f"per-case rows lack strategy={strategy!r}, input={inp!r}; expected the rows of every "
                        "strategy and input setting of the metric table")
    return rows
