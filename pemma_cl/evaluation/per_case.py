"""Per-case rows of a run (``cases.csv.gz``): every evaluated case's voxel counts, Dice and HD95.

Every run folder, and each ``seeds/seed<S>/`` folder of it, holds ``cases.csv.gz``: one row per (seed, strategy,
trained-through step, test experience, input setting, case, structure), columns :data:`CASE_COLUMNS`
(``docs/per-case.md``). The structures are the data's (its description's names, each case's in label order: GTVp,
GTVn in the built-in cohort); every function here reads them from the rows it is given. ``tp``/``fp``/``fn`` are
voxel counts of the structure in the case, ``ref_voxels = tp + fn`` and ``pred_voxels = tp + fp``; ``dice`` is the
case's Dice (NaN when its reference has no voxel of the structure, MONAI's ``ignore_empty``); ``hd95`` its HD95 in
mm, computed after the stream's last experience only (NaN elsewhere). ``trained_through == -1`` is the model before
any training on the stream. The ``aggregated`` structure of ``metrics.csv`` is not stored: :func:`aggregated_dice`
derives it from any set of rows (the mean over the rows' structures; with one structure, that structure's Dice).

The last columns, :data:`~pemma_cl.evaluation.lesions.MEASURES` (``nsd``, ``lesion_tp``, ``lesion_fp``, ``lesion_fn``,
``fp_volume_ml``, ``fn_volume_ml``; :mod:`pemma_cl.evaluation.lesions`), are computed with HD95, after the stream's
last experience only (NaN elsewhere). Runs written before they existed have none: :func:`read_cases` and
:func:`case_frame` fill them with NaN, so such a run reads and summarises as before.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pemma_cl.core.errors import UserError
from pemma_cl.evaluation.dice import COUNTS, dice_scores
from pemma_cl.evaluation.lesions import MEASURES

__all__ = ["CASES_CSV", "CASE_COLUMNS", "aggregated_dice", "case_frame", "challenger_table", "final_state",
           "read_cases", "scored_at_every_state", "structure_dice", "structures_of"]

#: File name of the per-case rows in a run folder and in each of its seed folders.
CASES_CSV = "cases.csv.gz"
#: Columns of the per-case rows, in order.
CASE_COLUMNS: tuple[str, ...] = (
    "seed", "strategy", "trained_through", "trained_through_name", "eval_experience", "eval_experience_name",
    "centre", "case_id", "input", "structure", "tp", "fp", "fn", "ref_voxels", "pred_voxels", "dice", "hd95",
    *MEASURES,
)
#: The columns of the rows written before :data:`~pemma_cl.evaluation.lesions.MEASURES` existed.
_EARLIER_COLUMNS = CASE_COLUMNS[:-len(MEASURES)]
_INTEGER_COLUMNS = ("seed", "trained_through", "eval_experience", "tp", "fp", "fn", "ref_voxels", "pred_voxels")
# The lesion counts are floats: NaN before the final evaluation.
_FLOAT_COLUMNS = ("dice", "hd95", *MEASURES)


def case_frame(rows: list[list]) -> pd.DataFrame:
    """Per-case rows (lists in the order of :data:`CASE_COLUMNS`, None for an undefined value) as a typed frame; rows
    without the trailing :data:`~pemma_cl.evaluation.lesions.MEASURES` (kept by a run written before them) get NaN."""
    missing = [None] * len(MEASURES)
    frame = pd.DataFrame([[*row, *missing] if len(row) == len(_EARLIER_COLUMNS) else row for row in rows],
                         columns=list(CASE_COLUMNS))
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
    if tuple(frame.columns) not in (CASE_COLUMNS, _EARLIER_COLUMNS):
        raise UserError(f"{path}: columns are {', '.join(frame.columns)}; expected {', '.join(CASE_COLUMNS)}")
    frame = frame.reindex(columns=list(CASE_COLUMNS))  # a run written before MEASURES existed: NaN there
    try:
        return frame.astype({**dict.fromkeys(_INTEGER_COLUMNS, "int64"), **dict.fromkeys(_FLOAT_COLUMNS, float)})
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path}: a count or score is not a number: {exc}") from None


def structures_of(rows: pd.DataFrame) -> list[str]:
    """The structures that rows (per-case or metric rows) name, in the order they first appear (label order: a run
    writes each case's structures in label order), less ``aggregated``."""
    return [name for name in pd.unique(rows["structure"]) if name != "aggregated"]


def structure_dice(cases: pd.DataFrame) -> dict[str, float]:
    """HECKTOR's aggregated Dice of each structure of a set of per-case rows, and their mean (exactly what
    :class:`~pemma_cl.evaluation.dice.DiceAccumulator` reports for those cases).

    Per structure the rows name, ``2 sum(tp) / (2 sum(tp) + sum(fp) + sum(fn))`` over its rows (NaN without a
    reference voxel); ``aggregated``: the mean over the structures with one, NaN if none has one. A data set of one
    structure gives that structure and ``aggregated``, equal to it.

    Returns:
        ``{structure: float, ..., "aggregated": float}``, structures in the order of :func:`structures_of`.

    Raises:
        ValueError: If a row's structure is ``aggregated`` (a metric row, not a per-case one).
    """
    if (cases["structure"] == "aggregated").any():
        raise ValueError("per-case rows name the structure 'aggregated'; expected the data's structures "
                         "(aggregated is derived from them)")
    names = structures_of(cases)
    totals = cases.groupby("structure", sort=False)[list(COUNTS)].sum().reindex(names)
    return dice_scores(totals.to_numpy(), names)


def aggregated_dice(cases: pd.DataFrame) -> float:
    """The ``aggregated`` Dice of :func:`structure_dice`: the mean over the rows' structures of each one's
    aggregated Dice, leaving out a structure without a reference voxel; NaN if none has one.

    Raises:
        ValueError: If a row's structure is ``aggregated``.
    """
    return structure_dice(cases)["aggregated"]


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

    One task per input setting and structure (``ctpet/GTVp``... in the built-in cohort), the algorithms are the
    strategies, the value the case's Dice (NaN where its reference has no voxel of the structure). A run of several
    seeds names each case ``seed<S>/<case_id>``: every seed has its own test cases.
    """
    final = final_state(cases)
    several_seeds = final["seed"].nunique() > 1
    case = ("seed" + final["seed"].astype(str) + "/" + final["case_id"]) if several_seeds else final["case_id"]
    table = pd.DataFrame({"task": final["input"] + "/" + final["structure"], "case": case,
                          "algorithm": final["strategy"], "value": final["dice"]})
    return table.sort_values(["task", "algorithm", "case"], kind="stable").reset_index(drop=True)
