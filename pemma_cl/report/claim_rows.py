"""The rows of a claims table and what they are read from: the verdict words, one row, one stored run.

Shared by :mod:`pemma_cl.report.claims` (every claim's rows) and :mod:`pemma_cl.report.verdicts` (the primary
contrasts' rows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pemma_cl.core.task_kinds import PROGNOSIS
from pemma_cl.evaluation.per_case import CASES_CSV
from pemma_cl.report.scope import RunScope
from pemma_cl.report.summary import run_structures
from pemma_cl.stats.sequential import HELD, NOT_HELD

#: The reference every paired difference of a claim is against.
REFERENCE = "early-fusion"
#: The claims of the table that the primary contrasts decide (their text, as the contrast file's ``claim`` names it).
DICE_CLAIM = "Dice comparable to early fusion with ~8% trainable parameters"
PET_GAIN_CLAIM = "+28% PET Dice over early fusion after a single-modality (CT-only) update"
PET_FORGETTING_CLAIM = "No forgetting of PET when updating with CT only"
CENTRES_CTPET_CLAIM = "Continual learning of new centres with CT+PET, without forgetting"
CT_ALONE_CLAIM = "Earlier centres still served from CT alone"
CENTRES_CT_CLAIM = "Continual learning of new centres with CT only, without forgetting"
PROGNOSIS_FORGETTING_CLAIM = "No forgetting of segmentation when adapting to prognosis"
CINDEX_PET_CLAIM = "C-index +10% adapting a CT model to CT+PET"
CINDEX_EHR_CLAIM = "C-index +23% adapting a CT model to CT+PET+EHR"
#: The input settings each claim's wording names: a primary contrast of the claim scores one of them. "PET Dice" is
#: read as the Dice with PET in the input (CT+PET, or PET alone); a claim that names no input admits every one. A
#: C-index claim names the richer prognosis task's input (its modalities joined by ``+``), compared with CT alone.
CLAIM_INPUTS: dict[str, tuple[str, ...]] = {
    DICE_CLAIM: ("ctpet",),
    PET_GAIN_CLAIM: ("ctpet", "pet"),
    PET_FORGETTING_CLAIM: ("pet",),
    CENTRES_CTPET_CLAIM: ("ctpet",),
    CT_ALONE_CLAIM: ("ct",),
    CENTRES_CT_CLAIM: ("ct",),
    PROGNOSIS_FORGETTING_CLAIM: ("ct", "pet", "ctpet"),
    CINDEX_PET_CLAIM: ("ct+pet",),
    CINDEX_EHR_CLAIM: ("ct+pet+ehr",),
}
#: The registry family of the strategies the paper's claims are about.
PEMMA_FAMILY = "PEMMA"

#: The verdict words beside the plan's decisions (:data:`~pemma_cl.stats.sequential.HELD`, ``NOT_HELD``).
INCONCLUSIVE, NOT_TESTED = "inconclusive", "not tested here"
#: The verdict of a primary contrast that names a structure the run's data do not have (neither an error nor a verdict).
DOES_NOT_APPLY = "does not apply"
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
    #: The population the row is about (:meth:`StoredRun.scope`): cohort, preset, PEMMA's trainable share; empty
    #: where no run was weighed.
    scope: str = ""


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
    #: The registry family of each strategy known where the run is read (``PEMMA``, ``reference``, ...).
    families: dict[str, str] = field(default_factory=dict)
    #: A stored ``--decide`` run's record (its manifest's ``extra.decide``): the contrasts it decided and the family it
    #: declared stay those, whatever was declared since; None for other runs.
    decide_record: dict[str, Any] | None = None
    #: The run's population (:mod:`pemma_cl.report.scope`).
    population: RunScope = RunScope("built-in synthetic cohort (32³ phantoms)", "tiny")

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
    def decided(self) -> tuple[str, ...]:
        """The primary contrasts a ``--decide`` run decided: those its record names, else its ``--contrast``; empty:
        all of its stream's."""
        return tuple((self.decide_record or {}).get("decisions") or self.decide_contrasts)

    @property
    def recorded_family(self) -> int | None:
        """The number of primary contrasts a ``--decide`` run's record declared (None: not recorded)."""
        return (self.decide_record or {}).get("family")

    @property
    def strategies(self) -> dict[str, Any]:
        return self.summary["strategies"]

    def scope(self, strategy: str) -> str:
        """The population a row of ``strategy`` is about: the run's cohort and preset, and the trainable share
        measured for ``strategy`` if it is a PEMMA strategy, else for the run's PEMMA strategies."""
        pemma = [name for name in self.strategies if self.families.get(name) == PEMMA_FAMILY]
        return self.population.text([strategy] if strategy in pemma else pemma)

    @property
    def structures(self) -> tuple[str, ...]:
        """The structures of the run's data (:func:`pemma_cl.report.summary.run_structures`)."""
        return run_structures(self.summary)

    def has_structure(self, structure: str) -> bool:
        """Whether ``structure`` (a structure name or ``aggregated``) is scored in this run's data."""
        return structure == "aggregated" or structure in self.structures

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
