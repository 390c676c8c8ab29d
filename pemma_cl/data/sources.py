"""Resolve a run's ``--data`` string to case records."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pemma_cl.core.errors import UserError
from pemma_cl.data.description import CENTRE_COLUMN, DatasetDescription
from pemma_cl.data.hecktor.layout import HEAD_AND_NECK_CLINICAL, HEAD_AND_NECK_STRUCTURES
from pemma_cl.data.hecktor.load import load_hecktor
from pemma_cl.data.nnunet.layout import NnunetSettings
from pemma_cl.data.nnunet.load import load_nnunet
from pemma_cl.data.records import LoadedData
from pemma_cl.data.synthetic.cohort import generate_cohort, generate_test_cohort
from pemma_cl.data.synthetic.tracers import DEFAULT_TRACERS, TRACER_COLUMN, check_tracers

#: The built-in cohort: head-and-neck phantoms labelled as HECKTOR 2022 is, grouped by centre and tracer.
SYNTHETIC_DESCRIPTION = DatasetDescription("synthetic", HEAD_AND_NECK_STRUCTURES, (CENTRE_COLUMN, TRACER_COLUMN),
                                           clinical=HEAD_AND_NECK_CLINICAL)
#: Share of HECKTOR 2022's per-centre case counts the built-in synthetic cohort has (97 cases).
SYNTHETIC_CASE_SCALE = 0.18
#: Test cases per centre of the built-in cohort, generated apart from its training cohort (a stream's
#: ``test_cases_per_centre`` overrides it); see docs/forgetting.md for how it was chosen.
SYNTHETIC_TEST_CASES_PER_CENTRE = 25


def load_cases(data: str, img_size: int, seed: int, on_bad_case: str = "refuse",
               cache: Path | None = None, synthetic_scale: float | None = None, synthetic_shift: bool = True,
               test_cases_per_centre: int | None = None,
               synthetic_tracers: Sequence[str] = DEFAULT_TRACERS,
               nnunet: NnunetSettings = NnunetSettings()) -> LoadedData:
    """Case records of a data source.

    Args:
        data: ``synthetic`` (built-in phantoms; volumes of ``img_size`` cubed), ``hecktor:DIR`` (the official
            HECKTOR 2022 folder, prepared for ``img_size`` by ``pemma-bench prepare``) or ``nnunet:DIR`` (a dataset
            in nnU-Net's raw layout with a case table, prepared by ``pemma-bench prepare --data nnunet:DIR``; whole
            volumes at one spacing).
        img_size: the preset's crop side.
        seed: seed of the synthetic cohort.
        on_bad_case: ``refuse`` or ``skip`` the bad cases of a HECKTOR folder or nnU-Net dataset.
        cache: the HECKTOR folder's or nnU-Net dataset's prepared cache; ``None``: its default cache.
        synthetic_scale: the synthetic cohort's size as a multiple of HECKTOR 2022's per-centre counts (a stream's
            ``synthetic_scale``); None: :data:`SYNTHETIC_CASE_SCALE`. Case k of a centre is the same at every scale.
        synthetic_shift: the synthetic centres differ (False: a cohort without centre differences).
        test_cases_per_centre: the synthetic cohort's test cases per centre, drawn apart from its training cohort;
            None: :data:`SYNTHETIC_TEST_CASES_PER_CENTRE`. Real data keep their own test cases.
        synthetic_tracers: the synthetic cohort's tracers (a stream's ``synthetic_tracers``); part of its key only
            when other than FDG alone, so the built-in cohort keeps its key.
        nnunet: an nnU-Net dataset's case table, its survival and clinical columns, and its target spacing.
    """
    if data == "synthetic":
        scale = synthetic_scale or SYNTHETIC_CASE_SCALE
        n_test = test_cases_per_centre or SYNTHETIC_TEST_CASES_PER_CENTRE
        shape = (img_size,) * 3
        # The training cohort's key (and so the bases' cache keys) is the same whatever the test set.
        key = f"synthetic-v1:size{img_size}:scale{scale}:seed{seed}" + ("" if synthetic_shift else ":noshift")
        tracers = check_tracers(synthetic_tracers, "synthetic_tracers")
        key += "" if tracers == DEFAULT_TRACERS else f":tracers-{'+'.join(tracers)}"
        return LoadedData(generate_cohort(seed=seed, shape=shape, case_scale=scale, shift=synthetic_shift,
                                          tracers=tracers), key, SYNTHETIC_DESCRIPTION,
                          test=generate_test_cohort(seed=seed, shape=shape, per_centre=n_test, shift=synthetic_shift,
                                                    tracers=tracers), drops_test_share=True)
    kind, colon, folder = data.partition(":")
    if kind == "hecktor" and colon and folder:
        return load_hecktor(Path(folder), img_size, on_bad_case, cache)
    if kind == "nnunet" and colon and folder:
        return load_nnunet(Path(folder), on_bad_case, nnunet, cache)
    raise UserError(f"--data: unsupported data source '{data}'; expected 'synthetic', 'hecktor:DIR' or 'nnunet:DIR'")
