"""Resolve a run's ``--data`` string to case records."""

from __future__ import annotations

from pathlib import Path

from pemma_cl.core.errors import UserError
from pemma_cl.data.description import HEAD_AND_NECK_STRUCTURES, DatasetDescription
from pemma_cl.data.hecktor.load import load_hecktor
from pemma_cl.data.records import LoadedData
from pemma_cl.data.synthetic.cohort import generate_cohort, generate_test_cohort

#: The built-in cohort: head-and-neck phantoms labelled as HECKTOR 2022 is, grouped by centre.
SYNTHETIC_DESCRIPTION = DatasetDescription("synthetic", HEAD_AND_NECK_STRUCTURES)
#: Share of HECKTOR 2022's per-centre case counts the built-in synthetic cohort has (97 cases).
SYNTHETIC_CASE_SCALE = 0.18
#: Test cases per centre of the built-in cohort, generated apart from its training cohort (a stream's
#: ``test_cases_per_centre`` overrides it); see docs/forgetting.md for how it was chosen.
SYNTHETIC_TEST_CASES_PER_CENTRE = 25


def load_cases(data: str, img_size: int, seed: int, on_bad_case: str = "refuse",
               cache: Path | None = None, synthetic_scale: float | None = None, synthetic_shift: bool = True,
               test_cases_per_centre: int | None = None) -> LoadedData:
    """Case records of a data source.

    Args:
        data: ``synthetic`` (built-in phantoms; volumes of ``img_size`` cubed) or ``hecktor:DIR`` (the official
            HECKTOR 2022 folder, prepared for ``img_size`` by ``pemma-bench prepare``).
        img_size: the preset's crop side.
        seed: seed of the synthetic cohort.
        on_bad_case: ``refuse`` or ``skip`` the bad cases of a HECKTOR folder.
        cache: the HECKTOR folder's prepared cache; ``None``: its default cache.
        synthetic_scale: the synthetic cohort's size as a multiple of HECKTOR 2022's per-centre counts (a stream's
            ``synthetic_scale``); None: :data:`SYNTHETIC_CASE_SCALE`. Case k of a centre is the same at every scale.
        synthetic_shift: the synthetic centres differ (False: a cohort without centre differences).
        test_cases_per_centre: the synthetic cohort's test cases per centre, drawn apart from its training cohort;
            None: :data:`SYNTHETIC_TEST_CASES_PER_CENTRE`. Real data keep their own test cases.
    """
    if data == "synthetic":
        scale = synthetic_scale or SYNTHETIC_CASE_SCALE
        n_test = test_cases_per_centre or SYNTHETIC_TEST_CASES_PER_CENTRE
        shape = (img_size,) * 3
        # The training cohort's key (and so the bases' cache keys) is the same whatever the test set.
        key = f"synthetic-v1:size{img_size}:scale{scale}:seed{seed}" + ("" if synthetic_shift else ":noshift")
        return LoadedData(generate_cohort(seed=seed, shape=shape, case_scale=scale, shift=synthetic_shift), key,
                          SYNTHETIC_DESCRIPTION,
                          test=generate_test_cohort(seed=seed, shape=shape, per_centre=n_test, shift=synthetic_shift))
    kind, colon, folder = data.partition(":")
    if kind == "hecktor" and colon and folder:
        return load_hecktor(Path(folder), img_size, on_bad_case, cache)
    raise UserError(f"--data: unsupported data source '{data}'; expected 'synthetic' or 'hecktor:DIR'")
