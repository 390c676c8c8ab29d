"""Resolve a run's ``--data`` string to case records."""

from __future__ import annotations

from pemma_cl.data.records import CaseRecord
from pemma_cl.data.synthetic import generate_cohort
from pemma_cl.errors import UserError

#: Share of HECKTOR 2022's per-centre case counts the built-in synthetic cohort has (about 106 cases).
SYNTHETIC_CASE_SCALE = 0.2


def load_cases(data: str, img_size: int, seed: int) -> tuple[list[CaseRecord], str]:
    """Case records of a data source, and a key that identifies them (for caches).

    Args:
        data: ``synthetic`` (built-in phantoms; volumes of ``img_size`` cubed).
        img_size: the preset's crop side.
        seed: seed of the synthetic cohort.
    """
    if data == "synthetic":
        key = f"synthetic-v1:size{img_size}:scale{SYNTHETIC_CASE_SCALE}:seed{seed}"
        return generate_cohort(seed=seed, shape=(img_size,) * 3, case_scale=SYNTHETIC_CASE_SCALE), key
    raise UserError(f"--data: unsupported data source '{data}'; expected 'synthetic'")
