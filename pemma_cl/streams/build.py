"""A stream spec plus case records -> the Avalanche benchmark (train/test streams) and the pre-training data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from avalanche.benchmarks import benchmark_from_datasets, with_task_labels
from avalanche.benchmarks.scenarios.generic_scenario import CLScenario

from pemma_cl.core.errors import UserError
from pemma_cl.core.task_kinds import PROGNOSIS, SEGMENTATION
from pemma_cl.data.dataset import avalanche_dataset
from pemma_cl.data.description import ClinicalField
from pemma_cl.data.patches import CENTRED, RANDOM, WHOLE, say_padding
from pemma_cl.data.records import MODALITIES, CaseRecord
from pemma_cl.data.splits import TEST_FRACTION
from pemma_cl.streams.selection import case_groups, check_selection, selection_text
from pemma_cl.streams.spec import StreamSpec, Where


@dataclass
class StreamData:
    """Everything a run trains and evaluates on.

    Attributes:
        benchmark: Avalanche scenario with ``train_stream``, ``test_stream`` and ``tracked_stream``, one experience
            per stream step; the ``test_stream`` holds the evaluated cases (test or validation, see
            :class:`CaseSplit`), the ``tracked_stream`` the tracked ones (the first ``tracked_cases_per_centre`` of
            each centre of a segmentation experience; every one of a prognosis experience).
        pretrain_cases: the base's pre-training cases (training cases of the pre-training centres).
        pretrain_modalities: the modalities the pre-training cases have (the others are zeroed).
        names: experience names in stream order.
        centres: per experience, its centres joined with ``+``.
        modalities: per experience, the modalities its training cases have.
        spacings: per experience, the voxel spacing (mm) of its evaluated cases (for HD95).
        eval_cases: per experience, ``(case_id, centre)`` of each evaluated case, in the order of its test dataset
            (the order its evaluation mini-batches come in; the per-case rows name each case with it).
        tracked_cases: the same for the ``tracked_stream``.
        train_sizes: per experience, its number of training cases.
        kinds: per experience, its task kind (``segmentation`` or ``prognosis``).
        left_out: ``{case_id: reason}`` of cases a prognosis experience could not use (no RFS endpoint).
        prognosis_cases: ``(training, evaluated)`` cases of the last prognosis experience (the prognosis references
            are fitted and scored on them), or None for a stream without prognosis.
    """

    benchmark: CLScenario
    pretrain_cases: list[CaseRecord]
    pretrain_modalities: tuple[str, ...]
    names: list[str]
    centres: list[str]
    modalities: list[tuple[str, ...]]
    spacings: list[tuple[float, float, float]]
    eval_cases: list[list[tuple[str, str]]]
    tracked_cases: list[list[tuple[str, str]]]
    train_sizes: list[int]
    kinds: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)
    prognosis_cases: tuple[list[CaseRecord], list[CaseRecord]] | None = None


def _spacing(cases: list[CaseRecord], where: str) -> tuple[float, float, float]:
    """The one voxel spacing of ``cases`` (every data source resamples a cohort to one grid)."""
    spacings = sorted({tuple(c.spacing) for c in cases})
    if len(spacings) > 1:
        raise UserError(f"{where}: evaluated cases have different voxel spacings {spacings}; expected one grid")
    return spacings[0]


def first_cases(cases: list[CaseRecord], per_centre: int | None) -> list[CaseRecord]:
    """The first ``per_centre`` cases by case id of each centre (all cases when None), in case-id order."""
    kept: dict[str, list[CaseRecord]] = {}
    for case in sorted(cases, key=lambda c: c.case_id):
        kept.setdefault(case.centre, []).append(case)
    return sorted((c for members in kept.values() for c in members[:per_centre]), key=lambda c: c.case_id)


def limited_split(train: list[CaseRecord], evaluated: list[CaseRecord], per_centre: int | None
                  ) -> tuple[list[CaseRecord], list[CaseRecord]]:
    """``cases_per_centre``: per centre, the first ``round(TEST_FRACTION * N)`` evaluated cases (at least one) and the
    first rest-of-N training cases, by case id; the split itself is the run's, so a case keeps its part."""
    if per_centre is None:
        return train, evaluated
    n_evaluated = max(1, round(TEST_FRACTION * per_centre))
    return first_cases(train, per_centre - n_evaluated), first_cases(evaluated, n_evaluated)


def _cases_of(cases: list[CaseRecord], centres: tuple[str, ...], where: Where, label: str,
              split: str) -> list[CaseRecord]:
    """The cases of ``centres`` (every centre when empty) whose grouping columns hold one of ``where``'s values."""
    chosen = [c for c in cases if (not centres or c.centre in centres)
              and all(c.group(column) in values for column, values in where)]
    if not chosen:
        raise UserError(f"{label}: no {split} cases with {selection_text(centres, where)} in the data")
    return chosen


def _with_endpoint(cases: list[CaseRecord], where: str, split: str, left_out: dict[str, str]) -> list[CaseRecord]:
    """The cases a prognosis experience can use; the others are recorded in ``left_out`` with the reason."""
    for case in cases:
        if not case.has_endpoint:
            left_out[case.case_id] = "no recurrence-free survival endpoint (left out of prognosis experiences)"
    usable = [c for c in cases if c.has_endpoint]
    if sum(c.relapse for c in usable) < 2:
        raise UserError(f"{where}: its {split} cases have fewer than 2 relapses; a prognosis experience needs "
                        "events to learn from and to score")
    return usable


def build_stream(spec: StreamSpec, train: list[CaseRecord], evaluated: list[CaseRecord],
                 evaluated_split: str = "test", patch: int | None = None,
                 clinical_fields: Mapping[str, ClinicalField] | None = None) -> StreamData:
    """Build the Avalanche benchmark of a stream: each experience's centres, modalities and task label.

    Training data carry only the modalities the stream file declares for them; the evaluation data of a
    segmentation experience carry both images (every strategy is then scored under CT-only, PET-only and CT+PET
    input), those of a prognosis experience its declared modalities. A prognosis experience uses only cases with
    an RFS endpoint; ``cases_per_centre`` keeps N cases of each centre (:func:`limited_split`; for the pre-training:
    its first N training cases); the tracked cases are the first ``spec.tracked_cases_per_centre`` evaluated cases
    of each centre (:func:`first_cases`; all when None).

    Args:
        spec: the stream.
        train: the training cases of every centre.
        evaluated: the cases every experience is scored on (test or validation cases).
        evaluated_split: what ``evaluated`` is, for error messages.
        patch: the network's cubic patch side: segmentation trains on random patches of larger volumes and is
            evaluated on whole volumes, prognosis reads the patch centred on the foreground
            (:mod:`pemma_cl.data.patches`); a volume smaller than the patch is padded, and said so once. None: every
            volume is served whole.
        clinical_fields: the data's clinical fields, the EHR vector's entries (none: an empty vector).
    """
    check_selection(spec, *case_groups(train + evaluated))
    if patch is not None:
        say_padding([case.label.shape for case in {c.case_id: c for c in train + evaluated}.values()], patch)
    train_sets, test_sets, tracked_sets, spacings, left_out, prognosis_cases = [], [], [], [], {}, None
    eval_cases, tracked_cases, centre_labels = [], [], []
    tensors: dict = {}  # each case's tensors once, whichever experiences use it
    for i, exp in enumerate(spec.experiences):
        where = f"stream '{spec.name}' experience {i} ({exp.name})"
        limited_train, limited_evaluated = limited_split(train, evaluated, exp.cases_per_centre)
        trained = _cases_of(limited_train, exp.centres, exp.where, where, "training")
        scored = _cases_of(limited_evaluated, exp.centres, exp.where, where, evaluated_split)
        if exp.kind == PROGNOSIS:
            trained = _with_endpoint(trained, where, "training", left_out)
            scored = _with_endpoint(scored, where, evaluated_split, left_out)
            prognosis_cases = (trained, scored)
        train_sampling, scored_sampling = (CENTRED, CENTRED) if exp.kind == PROGNOSIS else (RANDOM, WHOLE)
        train_sets.append(avalanche_dataset(trained, exp.modalities, exp.task, tensors, patch, train_sampling,
                                            clinical_fields))
        # Segmentation is scored under every input setting (the data carry both images); prognosis under the
        # modalities its experience declares (the template runs it once, with the data's own mask).
        scored_modalities = MODALITIES if exp.kind == SEGMENTATION else exp.modalities
        tracked = first_cases(scored, spec.tracked_cases_per_centre) if exp.kind == SEGMENTATION else scored
        test_sets.append(avalanche_dataset(scored, scored_modalities, exp.task, tensors, patch, scored_sampling,
                                           clinical_fields))
        tracked_sets.append(avalanche_dataset(tracked, scored_modalities, exp.task, tensors, patch, scored_sampling,
                                              clinical_fields))
        spacings.append(_spacing(scored, where))
        eval_cases.append([(case.case_id, case.centre) for case in scored])
        centre_labels.append("+".join(exp.centres or sorted({case.centre for case in trained})))
        tracked_cases.append([(case.case_id, case.centre) for case in tracked])
    pretrain_cases = _cases_of(first_cases(train, spec.pretrain.cases_per_centre), spec.pretrain.centres,
                               spec.pretrain.where, f"stream '{spec.name}' pretrain", "training")
    return StreamData(
        benchmark=with_task_labels(benchmark_from_datasets(train=train_sets, test=test_sets,
                                                                     tracked=tracked_sets)),
        pretrain_cases=pretrain_cases,
        pretrain_modalities=spec.pretrain.modalities,
        names=[exp.name for exp in spec.experiences],
        centres=centre_labels,
        modalities=[exp.modalities for exp in spec.experiences],
        spacings=spacings,
        eval_cases=eval_cases,
        tracked_cases=tracked_cases,
        train_sizes=[len(data) for data in train_sets],
        kinds=list(spec.kinds),
        left_out=left_out,
        prognosis_cases=prognosis_cases,
    )
