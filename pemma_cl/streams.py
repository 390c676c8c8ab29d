"""A stream spec plus case records -> the Avalanche benchmark (train/test streams) and the pre-training data."""

from __future__ import annotations

from dataclasses import dataclass

from avalanche.benchmarks import benchmark_from_datasets, with_task_labels
from avalanche.benchmarks.scenarios.generic_scenario import CLScenario

from pemma_cl.config import StreamSpec
from pemma_cl.data.dataset import avalanche_dataset
from pemma_cl.data.records import MODALITIES, CaseRecord
from pemma_cl.errors import UserError


@dataclass
class StreamData:
    """Everything a run trains and evaluates on.

    Attributes:
        benchmark: Avalanche scenario with ``train_stream`` and ``test_stream``, one experience per stream step;
            the ``test_stream`` holds the evaluated cases (test or validation, see :class:`CaseSplit`).
        pretrain_cases: the base's pre-training cases (training cases of the pre-training centres).
        pretrain_modalities: the modalities the pre-training cases have (the others are zeroed).
        names: experience names in stream order.
        centres: per experience, its centres joined with ``+``.
        modalities: per experience, the modalities its training cases have.
        spacings: per experience, the voxel spacing (mm) of its evaluated cases (for HD95).
        train_sizes: per experience, its number of training cases.
    """

    benchmark: CLScenario
    pretrain_cases: list[CaseRecord]
    pretrain_modalities: tuple[str, ...]
    names: list[str]
    centres: list[str]
    modalities: list[tuple[str, ...]]
    spacings: list[tuple[float, float, float]]
    train_sizes: list[int]


def _spacing(cases: list[CaseRecord], where: str) -> tuple[float, float, float]:
    """The one voxel spacing of ``cases`` (every data source resamples a cohort to one grid)."""
    spacings = sorted({tuple(c.spacing) for c in cases})
    if len(spacings) > 1:
        raise UserError(f"{where}: evaluated cases have different voxel spacings {spacings}; expected one grid")
    return spacings[0]


def _cases_of(cases: list[CaseRecord], centres: tuple[str, ...], where: str, split: str) -> list[CaseRecord]:
    chosen = [c for c in cases if c.centre in centres]
    if not chosen:
        raise UserError(f"{where}: no {split} cases for centre(s) {', '.join(centres)} in the data")
    return chosen


def build_stream(spec: StreamSpec, train: list[CaseRecord], evaluated: list[CaseRecord],
                 evaluated_split: str = "test") -> StreamData:
    """Build the Avalanche benchmark of a stream: each experience's centres, modalities and task label.

    Training data carry only the modalities the stream file declares for them; evaluation data carry both
    (every strategy is then scored under CT-only, PET-only and CT+PET input).

    Args:
        spec: the stream.
        train: the training cases of every centre.
        evaluated: the cases every experience is scored on (test or validation cases).
        evaluated_split: what ``evaluated`` is, for error messages.
    """
    train_sets, test_sets, spacings = [], [], []
    for i, exp in enumerate(spec.experiences):
        where = f"stream '{spec.name}' experience {i} ({exp.name})"
        train_sets.append(avalanche_dataset(_cases_of(train, exp.centres, where, "training"), exp.modalities, exp.task))
        scored = _cases_of(evaluated, exp.centres, where, evaluated_split)
        test_sets.append(avalanche_dataset(scored, MODALITIES, exp.task))
        spacings.append(_spacing(scored, where))
    pretrain_cases = _cases_of(train, spec.pretrain.centres, f"stream '{spec.name}' pretrain", "training")
    return StreamData(
        benchmark=with_task_labels(benchmark_from_datasets(train=train_sets, test=test_sets)),
        pretrain_cases=pretrain_cases,
        pretrain_modalities=spec.pretrain.modalities,
        names=[exp.name for exp in spec.experiences],
        centres=["+".join(exp.centres) for exp in spec.experiences],
        modalities=[exp.modalities for exp in spec.experiences],
        spacings=spacings,
        train_sizes=[len(data) for data in train_sets],
    )
