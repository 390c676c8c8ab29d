"""Resolve a run's ``--data`` string to case records."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pemma_cl.core.errors import UserError
from pemma_cl.data.records import CaseRecord
from pemma_cl.data.synthetic.cohort import generate_cohort

#: Share of HECKTOR 2022's per-centre case counts the built-in synthetic cohort has (97 cases).
SYNTHETIC_CASE_SCALE = 0.18


@dataclass
class LoadedData:
    """The cases of a data source.

    Attributes:
        cases: the usable case records.
        key: identifies the data (part of cache keys and of the manifest).
        skipped: ``{case_id: reason}`` of cases left out (``--on-bad-case skip``); recorded in the manifest.
    """

    cases: list[CaseRecord]
    key: str
    skipped: dict[str, str] = field(default_factory=dict)


def load_cases(data: str, img_size: int, seed: int, on_bad_case: str = "refuse",
               cache: Path | None = None, synthetic_scale: float | None = None) -> LoadedData:
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
    """
    if data == "synthetic":
        scale = synthetic_scale or SYNTHETIC_CASE_SCALE
        key = f"synthetic-v1:size{img_size}:scale{scale}:seed{seed}"
        return LoadedData(generate_cohort(seed=seed, shape=(img_size,) * 3, case_scale=scale), key)
    kind, colon, folder = data.partition(":")
    if kind == "hecktor" and colon and folder:
        from pemma_cl.data.hecktor.load import load_hecktor  # imports this module (LoadedData)

        return load_hecktor(Path(folder), img_size, on_bad_case, cache)
    raise UserError(f"--data: unsupported data source '{data}'; expected 'synthetic' or 'hecktor:DIR'")
