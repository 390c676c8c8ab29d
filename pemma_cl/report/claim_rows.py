"""The rows of a claims table and what they are read from: the verdict words, one row, one stored run.

Shared by :mod:`pemma_cl.report.claims` (every claim's rows) and :mod:`pemma_cl.report.verdicts` (the primary
contrasts' rows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pemma_cl.core.task_kinds import PROGNOSIS
from pemma_cl.evaluation.per_case import CASES_CSV

#: The reference every paired difference of a claim is against.
REFERENCE = "early-fusion"

HELD, NOT_HELD, INCONCLUSIVE, NOT_TESTED = "held", "not held", "inconclusive", "not tested here"
#: The verdict of every row but the primary contrasts' (descriptive, not adjusted for multiplicity).
SECONDARY = "secondary"
#: What a secondary row reads against its claim's threshold (unadjusted; never a decision).
MEETS, MISSES, STRADDLES = "meets the threshold", "misses the threshold", "straddles the threshold"


@dataclass(frozen=True)
class ClaimRow:
    """One line of the claims table."""

    claim: str
    strategy: str
    evidence: str
    measured: str
    verdict: str
    why: str
    #: A secondary row's reading (:data:`MEETS`, :data:`MISSES`, :data:`STRADDLES`); empty for the others.
    reading: str = ""
    #: The primary contrast a row decides (:mod:`pemma_cl.report.contrasts`); empty for secondary rows.
    contrast: str = ""


@dataclass(frozen=True)
class StoredRun:
    """What the claims need from one run folder."""

    folder: Path
    stream: str
    modalities: list[tuple[str, ...]]
    summary: dict[str, Any]
    kinds: list[str] | None = None
    #: A ``--decide`` run's ``--max-seeds`` (its last look); None for a run of fixed seeds.
    max_seeds: int | None = None
    #: The primary contrasts a ``--decide`` run decided (``--contrast``); empty: all of its stream's.
    decide_contrasts: tuple[str, ...] = ()

    @property
    def kind(self) -> str | None:
        """``prognosis`` (the stream has prognosis experiences), ``ctpet`` (every experience CT+PET), ``single`` (PET
        first, CT-only updates later) or None."""
        if PROGNOSIS in (self.kinds or ()):
            return PROGNOSIS
        if all(m == ("ct", "pet") for m in self.modalities):
            return "ctpet"
        first_pet = next((i for i, m in enumerate(self.modalities) if "pet" in m), None)
        if first_pet is not None and any(m == ("ct",) for m in self.modalities[first_pet + 1:]):
            return "single"
        return None

    @property
    def forgetting_estimator(self) -> str:
        """How the run's ``forgetting`` values were estimated: cross-fitted where it has per-case rows, else the
        classic max-based form (the summary then holds it in both forgetting columns)."""
        if (self.folder / CASES_CSV).is_file() or any(self.folder.glob(f"seeds/seed*/{CASES_CSV}")):
            return "cross-fitted forgetting"
        return "max-based forgetting (biased upward by noise; the run has no per-case rows)"

    @property
    def strategies(self) -> dict[str, Any]:
        return self.summary["strategies"]

    def value(self, strategy: str, setting: str, metric: str) -> float | None:
        """The mean over seeds of a metric, or None where the run does not have it."""
        value = self.strategies.get(strategy, {}).get("inputs", {}).get(setting, {}).get(metric, {}).get("mean")
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)

    def interval(self, strategy: str, setting: str, metric: str) -> tuple[float, float] | None:
        """The 95% interval over seeds of a metric, or None (one seed, or undefined)."""
        estimate = self.strategies.get(strategy, {}).get("inputs", {}).get(setting, {}).get(metric, {})
        return None if estimate.get("low") is None else (estimate["low"], estimate["high"])

    def paired(self, strategy: str, setting: str, metric: str) -> tuple[float, float] | None:
        """The 95% interval over seeds of *strategy minus early fusion*, or None (one seed, or another reference)."""
        if self.summary.get("reference") != REFERENCE:
            return None
        estimate = self.summary.get("paired", {}).get(strategy, {}).get(setting, {}).get(metric, {})
        return None if estimate.get("low") is None else (estimate["low"], estimate["high"])
