"""The clinical record (EHR) as the vector a model reads: scaled values plus one missingness indicator per field.

A missing field is carried as missing, never filled with a value that looks real: its value slot is 0 and its
indicator is 1, so a model (or a Cox model) can tell "not recorded" from any recorded value. An experience
without EHR gives every case the all-missing vector. The scaling constants are fixed (not fitted on any data),
so no statistic of the evaluated cases leaks into the vector.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

#: HECKTOR 2022's clinical fields, as :class:`~pemma_cl.data.records.CaseRecord.clinical` names them, with the
#: (centre, scale) each recorded value is mapped through.
EHR_FIELDS: dict[str, tuple[float, float]] = {
    "age": (60.0, 10.0),
    "gender": (0.0, 1.0),
    "weight": (75.0, 15.0),
    "tobacco": (0.0, 1.0),
    "alcohol": (0.0, 1.0),
    "performance_status": (0.0, 1.0),
    "hpv_status": (0.0, 1.0),
    "surgery": (0.0, 1.0),
    "chemotherapy": (0.0, 1.0),
}
#: Length of the EHR vector: a value and a missingness indicator per field.
EHR_SIZE = 2 * len(EHR_FIELDS)
#: Names of the vector's entries, in order (for tables and Cox models).
EHR_COLUMNS: tuple[str, ...] = (*EHR_FIELDS, *(f"{name}_missing" for name in EHR_FIELDS))


def ehr_vector(clinical: Mapping[str, float | int | None], available: bool = True) -> np.ndarray:
    """The float32 EHR vector of one case (see the module docstring).

    Args:
        clinical: the case's clinical fields; a field that is absent or None is missing.
        available: False when the experience has no EHR: every field is then missing.
    """
    values = np.zeros(len(EHR_FIELDS), dtype=np.float32)
    missing = np.ones(len(EHR_FIELDS), dtype=np.float32)
    if available:
        for index, (name, (centre, scale)) in enumerate(EHR_FIELDS.items()):
            value = clinical.get(name)
            if value is not None:
                values[index] = (float(value) - centre) / scale
                missing[index] = 0.0
    return np.concatenate([values, missing])
