"""Which of PEMMA's parts an update may train, by the modalities its training data has: the one place that says so.

PEMMA's claim is that an update with one modality does not make the model forget the other. The frozen CT
base never trains. Beside it:

* **CT and PET**: every PEMMA part trains: the PET patch embedding, the token fusion, both missing-modality
  adapters and the PET skip (and LoRA/DoRA).
* **CT only**: LoRA/DoRA and the missing-PET adapter (the adapter that serves CT-only input, which the authors
  call the CT adapter). The PET embedding, the PET skip and the CT+PET token fusion stay bit-identical: they
  hold what PET taught the model and a CT-only update has nothing to teach them.
* **PET only** (the mirror case): LoRA/DoRA and the missing-CT adapter.

LoRA/DoRA always trains, as in the authors' code: it is the low-rank update of the frozen ViT that every input
goes through, so it is where a new centre is learnt. It is also shared by all inputs, so a CT-only update *can*
change CT+PET and PET-only predictions through it: that is the forgetting the suite measures rather than
rules out by construction (freezing LoRA as well would make the PET path bit-identical and its forgetting 0
by construction, and would leave a CT-only update nothing but one small adapter to learn a new centre with).

A **prognosis** update trains the same parts by its image modalities plus the survival head (its EHR branch
included); a segmentation update never trains the survival head.
"""

from __future__ import annotations

from collections.abc import Iterable

from pemma_cl.core.task_kinds import PROGNOSIS, SEGMENTATION
from pemma_cl.data.records import MODALITIES
from pemma_cl.models.pemma import PEMMA_MODULES, SURVIVAL_HEAD

#: PEMMA modules (besides LoRA/DoRA, which always trains) a segmentation update may train, by its modalities.
TRAINABLE_PEMMA_MODULES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("ct", "pet"): PEMMA_MODULES,
    ("ct",): ("missing_pet_adapter",),
    ("pet",): ("missing_ct_adapter",),
}


def trainable_pemma_modules(modalities: Iterable[str], kind: str = SEGMENTATION) -> tuple[str, ...]:
    """The PEMMA modules an update of task ``kind`` on data with ``modalities`` may train (see the module
    docstring); ``ehr`` among the modalities concerns only the survival head."""
    key = tuple(m for m in MODALITIES if m in set(modalities))
    if key not in TRAINABLE_PEMMA_MODULES:
        raise ValueError(f"modalities must be a non-empty subset of {MODALITIES}, got {tuple(modalities)}")
    return TRAINABLE_PEMMA_MODULES[key] + ((SURVIVAL_HEAD,) if kind == PROGNOSIS else ())
