"""The synthetic patients behind the phantoms: latent characteristics, clinical record, survival.

Recurrence-free survival follows a proportional-hazards (Weibull) model whose risk rises with total
tumour volume, true primary SUVmax, performance status and age, and falls when HPV+. The draws are
made from the case's generator in :func:`pemma_cl.data.synthetic.cohort.generate_cohort`'s order.
"""

from __future__ import annotations

import numpy as np

#: Clinical fields that can be missing (``None``), in the order their missingness is drawn.
MISSABLE_FIELDS = ("weight", "tobacco", "alcohol", "performance_status", "hpv_status")


def draw_patient(rng: np.random.Generator, hpv_rate: float) -> dict:
    """Latent (complete) patient characteristics before any missingness."""
    hpv = int(rng.random() < hpv_rate)
    gender = int(rng.random() < 0.8)
    age = int(np.clip(round(rng.normal(61.0 - 3.0 * hpv, 9.0)), 30, 90))
    weight = float(np.clip(round(rng.normal(82.0 if gender else 68.0, 15.0), 1), 40.0, 150.0))
    tobacco = int(rng.random() < (0.45 if hpv else 0.80))
    alcohol = int(rng.random() < (0.40 if hpv else 0.65))
    ps = int(rng.choice(5, p=[0.50, 0.32, 0.12, 0.045, 0.015]))
    return {"hpv_status": hpv, "gender": gender, "age": age, "weight": weight,
            "tobacco": tobacco, "alcohol": alcohol, "performance_status": ps}


def clinical_record(rng: np.random.Generator, missing: dict[str, float], latent: dict) -> dict:
    """HECKTOR-style clinical fields with treatment and centre-dependent missingness.

    Each field of ``MISSABLE_FIELDS`` is ``None`` with the centre's probability ``missing[field]``.
    """
    advanced = latent["n_nodes"] > 0 or latent["volume_ml"] > 20.0
    record = {key: latent[key] for key in ("age", "gender", "weight", "tobacco", "alcohol",
                                           "performance_status", "hpv_status")}
    record["surgery"] = int(rng.random() < 0.25)
    record["chemotherapy"] = int(rng.random() < (0.85 if advanced else 0.45))
    for key in MISSABLE_FIELDS:
        if rng.random() < missing[key]:
            record[key] = None
    return record


def latent_risk(latent: dict) -> float:
    """The true log-hazard of a patient: rises with total tumour volume, true primary SUVmax, performance status
    and age, falls with HPV+ (the prognosis ceilings read it through :attr:`CaseRecord.truth`)."""
    return float(0.8 * (np.log(latent["volume_ml"]) - np.log(12.0)) / 0.7
                 + 0.35 * (latent["suv_max"] - 11.0) / 3.0
                 - 0.9 * latent["hpv_status"]
                 + 0.25 * latent["performance_status"]
                 + 0.15 * (latent["age"] - 60.0) / 10.0)


def draw_survival(rng: np.random.Generator, latent: dict) -> tuple[float, int]:
    """Recurrence-free survival (days) and relapse flag from a Weibull proportional-hazards model.

    The hazard is :func:`latent_risk`; administrative censoring is uniform over 0.5-6 years of follow-up.
    """
    risk = latent_risk(latent)
    shape_k, scale_days = 1.3, 2200.0
    event_days = scale_days * (-np.log(rng.random()) * np.exp(-risk)) ** (1.0 / shape_k)
    censor_days = rng.uniform(180.0, 2200.0)
    return float(round(min(event_days, censor_days))), int(event_days <= censor_days)
