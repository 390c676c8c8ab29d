"""The boundary and detection measures of a run's final state, per strategy, input and structure, from its per-case
rows (:data:`~pemma_cl.evaluation.lesions.MEASURES`, computed after the stream's last experience only).

Per seed: the mean NSD over the cases whose reference or prediction has the structure (NSD is undefined where both
are empty); the aggregated lesion-detection F1 of the summed counts (:func:`~pemma_cl.evaluation.lesions.
detection_f1`, HECKTOR 2025's aggregation); the mean false-positive and false-negative volumes in mL over every
case (autoPET). Over seeds: the mean of the seeds' values.
"""

from __future__ import annotations

import pandas as pd

from pemma_cl.evaluation.lesions import DetectionCounts, detection_f1
from pemma_cl.evaluation.per_case import final_state

__all__ = ["FINAL_MEASURES", "final_measures", "final_measures_by_strategy"]

#: The measures of :func:`final_measures`, in order.
FINAL_MEASURES: tuple[str, ...] = ("nsd", "lesion_f1", "fp_volume_ml", "fn_volume_ml")


def final_measures(cases: pd.DataFrame) -> pd.DataFrame:
    """The final state's measures (module docstring) of every strategy, input and structure, mean over seeds.

    Args:
        cases: per-case rows of one run (:data:`~pemma_cl.evaluation.per_case.CASE_COLUMNS`).

    Returns:
        One row per (strategy, input, structure) in the rows' order, columns :data:`FINAL_MEASURES` and ``seeds``;
        empty when the rows hold no measure (a run written before them).
    """
    final = final_state(cases).dropna(subset=["lesion_tp"])
    keys = ["strategy", "input", "structure"]
    if final.empty:
        return pd.DataFrame(columns=[*keys, *FINAL_MEASURES, "seeds"])
    per_seed = final.groupby(["seed", *keys], sort=False).apply(_seed_measures, include_groups=False).reset_index()
    out = per_seed.groupby(keys, sort=False)[list(FINAL_MEASURES)].mean()
    out["seeds"] = per_seed.groupby(keys, sort=False)["seed"].nunique()
    return out.reset_index()


def _seed_measures(rows: pd.DataFrame) -> pd.Series:
    """One seed's measures of one strategy, input and structure (its final-state rows)."""
    counts = [DetectionCounts(int(r.lesion_tp), int(r.lesion_fp), int(r.lesion_fn))
              for r in rows[["lesion_tp", "lesion_fp", "lesion_fn"]].itertuples(index=False)]
    return pd.Series({"nsd": rows["nsd"].mean(), "lesion_f1": detection_f1(counts),
                      "fp_volume_ml": rows["fp_volume_ml"].mean(), "fn_volume_ml": rows["fn_volume_ml"].mean()})


def final_measures_by_strategy(cases: pd.DataFrame) -> dict[str, dict[str, dict[str, dict[str, float | None]]]]:
    """:func:`final_measures` as a JSON-ready mapping ``strategy -> input -> structure -> measure -> value`` (None
    where undefined); empty for a run without measures."""
    out: dict = {}
    for row in final_measures(cases).itertuples(index=False):
        values = {m: (None if pd.isna(getattr(row, m)) else float(getattr(row, m))) for m in FINAL_MEASURES}
        out.setdefault(row.strategy, {}).setdefault(row.input, {})[row.structure] = values
    return out
