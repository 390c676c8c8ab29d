"""Per-case rows of a run (``cases.csv.gz``): their columns, reading them back, and HECKTOR's aggregated Dice over them.

One row per (trained-through step, test experience, input setting, case, structure), long format, the columns of
:data:`CASE_COLUMNS`; ``structure`` is ``GTVp`` or ``GTVn`` ("aggregated" is derived, not stored), ``tp``/``fp``/``fn``
voxel counts, ``dice`` the case's Dice (NaN when its reference has no voxel of the structure), ``hd95`` NaN where
not computed, ``trained_through == -1`` the base.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from pemma_cl.core.errors import UserError

__all__ = ["CASES_CSV", "CASE_COLUMNS", "aggregated_dice", "read_cases"]

#: File name of the per-case rows in a run folder (and in each ``seeds/seedN/``).
CASES_CSV = "cases.csv.gz"
#: Columns of the per-case rows, in order.
CASE_COLUMNS: tuple[str, ...] = (
    "seed", "strategy", "trained_through", "trained_through_name", "eval_experience", "eval_experience_name",
    "centre", "case_id", "input", "structure", "tp", "fp", "fn", "ref_voxels", "pred_voxels", "dice", "hd95",
)


def read_cases(run_dir: Path) -> pd.DataFrame:
    """The per-case rows of ``run_dir/cases.csv.gz``.

    Raises:
        UserError: the file is missing or lacks a column of :data:`CASE_COLUMNS`.
    """
    path = Path(run_dir) / CASES_CSV
    if not path.is_file():
        raise UserError(f"{path}: no such file; expected the per-case rows of a run")
    cases = pd.read_csv(path, dtype={"case_id": str, "centre": str})
    missing = [c for c in CASE_COLUMNS if c not in cases.columns]
    if missing:
        raise UserError(f"{path}: lacks column(s) {', '.join(missing)}; expected {', '.join(CASE_COLUMNS)}")
    return cases[list(CASE_COLUMNS)]


def aggregated_dice(cases: pd.DataFrame) -> float:
    """HECKTOR's aggregated Dice over ``cases``: the mean, over the structures with any reference voxel, of
    ``2 sum(tp) / (2 sum(tp) + sum(fp) + sum(fn))``; NaN when no structure has a reference voxel."""
    sums = cases.groupby("structure")[["tp", "fp", "fn"]].sum()
    sums = sums[sums["tp"] + sums["fn"] > 0]
    if sums.empty:
        return math.nan
    return float((2 * sums["tp"] / (2 * sums["tp"] + sums["fp"] + sums["fn"])).mean())
