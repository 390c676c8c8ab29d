"""Per-case rows of a run (``cases.csv.gz``): every evaluated case's voxel counts, Dice and HD95.

Every run folder, and each ``seeds/seed<S>/`` folder of it, holds ``cases.csv.gz``: one row per (seed, strategy,
trained-through step, test experience, input setting, case, structure), columns :data:`CASE_COLUMNS`
(``docs/per-case.md``). ``tp``/``fp``/``fn`` are voxel counts of the structure in the case, ``ref_voxels = tp +
fn`` and ``pred_voxels = tp + fp``; ``dice`` is the case's Dice (NaN when its reference has no voxel of the
structure, MONAI's ``ignore_empty``); ``hd95`` its HD95 in mm, computed after the stream's last experience only
(NaN elsewhere). ``trained_through == -1`` is the model before any training on the stream. The ``aggregated``
structure of ``metrics.csv`` is not stored: :func:`aggregated_dice` derives it from any set of rows.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pemma_cl.core.errors import UserError
from pemma_cl.data.records import STRUCTURES
from pemma_cl.evaluation.dice import COUNTS, dice_scores

__all__ = ["CASES_CSV", "CASE_COLUMNS", "CASE_STRUCTURES", "aggregated_dice", "case_frame", "challenger_table",
           "final_state", "read_cases", "scored_at_every_state"]

#: File name of the per-case rows in a run folder and in each of its seed folders.
CASES_CSV = "cases.csv.gz"
#: Columns of the per-case rows, in order.
CASE_COLUMNS: tuple[str, ...] = (
    "seed", "strategy", "trained_through", "trained_through_name", "eval_experience", "eval_experience_name",
    "centre", "case_id", "input", "structure", "tp", "fp", "fn", "ref_voxels", "pred_voxels", "dice", "hd95",
)
#: The structures of the rows, in label order (GTVp, GTVn).
CASE_STRUCTURES: tuple[str, ...] = tuple(STRUCTURES[label] for label in sorted(STRUCTURES))
_INTEGER_COLUMNS = ("seed", "trained_through", "eval_experience", "tp", "fp", "fn", "ref_voxels", "pred_voxels")
_FLOAT_COLUMNS = ("dice", "hd95")


def case_frame(rows: list[list]) -> pd.DataFrame:
    """Per-case rows (lists in the order of :data:`CASE_COLUMNS`, None for an undefined value) as a typed frame."""
    frame = pd.DataFrame(rows, columns=list(CASE_COLUMNS))
    return frame.astype({**dict.fromkeys(_INTEGER_COLUMNS, "int64"), **dict.fromkeys(_FLOAT_COLUMNS, float)})


def read_cases(run_dir: Path) -> pd.DataFrame:
    """The per-case rows of a run folder (or of one of its ``seeds/seed<S>`` folders).

    Raises:
        UserError: If the folder has no readable ``cases.csv.gz`` with the columns of :data:`CASE_COLUMNS`.
    """
    path = Path(run_dir) / CASES_CSV
    if not path.is_file():
        raise UserError(f"{path}: not found; expected a run folder written by 'pemma-bench run' (runs written before "
                        "per-case rows existed must be run again)")
    text_columns = [c for c in CASE_COLUMNS if c not in _INTEGER_COLUMNS + _FLOAT_COLUMNS]
    try:
        frame = pd.read_csv(path, dtype=dict.fromkeys(text_columns, str), keep_default_na=False,
                            na_values=dict.fromkeys(_FLOAT_COLUMNS, [""]), float_precision="round_trip")
    except (OSError, EOFError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise UserError(f"{path}: cannot read it as gzipped CSV: {exc}") from None
    if tuple(frame.columns) != CASE_COLUMNS:
        raise UserError(f"{path}: columns are {', '.join(frame.columns)}; expected {', '.join(CASE_COLUMNS)}")
    try:
        return frame.astype({**dict.fromkeys(_INTEGER_COLUMNS, "int64"), **dict.fromkeys(_FLOAT_COLUMNS, float)})
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path}: a count or score is not a number: {exc}") from None


def aggregated_dice(cases: pd.DataFrame) -> float:
    """HECKTOR's aggregated Dice over a set of per-case rows (exactly what
    :class:`~pemma_cl.evaluation.dice.DiceAccumulator` reports for those cases).

    Per structure ``2 sum(tp) / (2 sum(tp) + sum(fp) + sum(fn))`` over the rows; the mean over the structures with
    any reference voxel; NaN if none has one.

    Raises:
        ValueError: If a row's structure is not one of :data:`CASE_STRUCTURES`.
    """
    unknown = sorted(set(cases["structure"]) - set(CASE_STRUCTURES))
    if unknown:
        raise ValueError(f"per-case rows have structure(s) {unknown}; expected {list(CASE_STRUCTURES)}")
    totals = cases.groupby("structure")[list(COUNTS)].sum().reindex(list(CASE_STRUCTURES), fill_value=0)
    return dice_scores(totals.to_numpy())["aggregated"]


def scored_at_every_state(cases: pd.DataFrame) -> pd.DataFrame:
    """The rows of the cases scored at every state their test experience was scored at (per seed, strategy and
    input setting): the tracked cases of a run whose intermediate states score a subset
    (``tracked_cases_per_centre``), every row of one whose states all score every case. Rows are grouped by
    whichever of those columns they have."""
    experience = [c for c in ("seed", "strategy", "input", "eval_experience") if c in cases.columns]
    states = cases.groupby(experience)["trained_through"].transform("nunique")
    scored = cases.groupby([*experience, "case_id"])["trained_through"].transform("nunique")
    return cases[scored == states]


def final_state(cases: pd.DataFrame) -> pd.DataFrame:
    """The rows of each (seed, strategy)'s last model state: trained through its stream's last experience."""
    last = cases.groupby(["seed", "strategy"])["trained_through"].transform("max")
    return cases[cases["trained_through"] == last]


def challenger_table(cases: pd.DataFrame) -> pd.DataFrame:
    """The final state's per-case Dice in challengeR's long format: columns ``task, case, algorithm, value``.

    One task per input setting and structure (``ctpet/GTVp``...), the algorithms are the strategies, the value the
    case's Dice (NaN where its reference has no voxel of the structure). A run of several seeds names each case
    ``seed<S>/<case_id>``: every seed has its own test cases.
    """
    final = final_state(cases)
    several_seeds = final["seed"].nunique() > 1
    case = ("seed" + final["seed"].astype(str) + "/" + final["case_id"]) if several_seeds else final["case_id"]
    table = pd.DataFrame({"task": final["input"] + "/" + final["structure"], "case": case,
                          "algorithm": final["strategy"], "value": final["dice"]})
    return table.sort_values(["task", "algorithm", "case"], kind="stable").reset_index(drop=True)
