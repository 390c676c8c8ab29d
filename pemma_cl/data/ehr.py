"""The clinical record (EHR) as the vector a model reads: scaled values plus one missingness indicator per field.

The fields and their maps are the data's (:attr:`pemma_cl.data.description.DatasetDescription.clinical`). A
missing field is carried as missing, never filled with a value that looks real: its value slot is 0 and its
indicator is 1, so a model (or a Cox model) can tell "not recorded" from any recorded value. An experience
without EHR gives every case the all-missing vector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from pemma_cl.data.description import ClinicalField

#: The interquartile range of a normal law in standard deviations (1 / 1.349).
IQR_TO_SD = 1 / 1.349


def ehr_columns(fields: Mapping[str, ClinicalField]) -> tuple[str, ...]:
    """Names of the vector's entries, in order (for tables and Cox models)."""
    return (*fields, *(f"{name}_missing" for name in fields))


def ehr_vector(clinical: Mapping[str, float | int | None], fields: Mapping[str, ClinicalField],
               available: bool = True) -> np.ndarray:
    """The float32 EHR vector of one case (see the module docstring), of length ``2 * len(fields)``.

    Args:
        clinical: the case's clinical fields; a field that is absent or None is missing.
        fields: the data's clinical fields, in the vector's order, with their maps.
        available: False when the experience has no EHR: every field is then missing.
    """
    values = np.zeros(len(fields), dtype=np.float32)
    missing = np.ones(len(fields), dtype=np.float32)
    if available:
        for index, (name, field) in enumerate(fields.items()):
            value = clinical.get(name)
            if value is not None:
                values[index] = (float(value) - field.centre) / field.scale
                missing[index] = 0.0
    return np.concatenate([values, missing])


def fit_clinical_fields(names: Sequence[str], cases: Sequence[Mapping[str, float | int | None]]
                        ) -> dict[str, ClinicalField]:
    """Maps for a cohort's own clinical columns: each centred on its median and scaled by its interquartile range
    over ``cases`` (the standard deviation where the quartiles coincide, 1 where the values do not vary or none is
    recorded). Only the covariates are read, never an outcome.

    Args:
        names: the clinical columns, in the vector's order.
        cases: each case's clinical values (``CaseRecord.clinical``) of the cases the maps are fitted on.
    """
    fields = {}
    for name in names:
        values = np.asarray([c[name] for c in cases if c.get(name) is not None], dtype=float)
        centre, scale = (float(np.median(values)), IQR_TO_SD * float(np.subtract(*np.percentile(values, [75, 25])))
                         ) if len(values) else (0.0, 0.0)
        if scale <= 0 and len(values) > 1:
            scale = float(values.std(ddof=1))
        fields[name] = ClinicalField(centre, scale if scale > 0 else 1.0)
    return fields
