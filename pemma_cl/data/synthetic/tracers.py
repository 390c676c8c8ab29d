"""The PET tracers of the built-in cohort: each one's physiological uptake in the head and neck, and its cases.

The anatomy, the tumours, the clinical record and the survival of a case do not depend on its tracer; only the PET
uptake of its tissues does (:func:`pemma_cl.data.synthetic.cohort.generate_cohort` draws the same random numbers for
every tracer, so a generator key gives the same patient whatever the tracer).

* **FDG** (glucose metabolism; the built-in cohort's only tracer until it had two, and its default): high brain
  uptake, moderate salivary glands, lymphoid tonsils, active brown fat in some patients; lacrimal glands no hotter
  than soft tissue; a tumour's uptake varies smoothly within it.
* **PSMA** (a PSMA ligand such as [68Ga]Ga-PSMA-11): very high uptake in the salivary (parotid, submandibular) and
  lacrimal glands, almost none in the brain (behind the blood-brain barrier), little in the tonsils and none in
  brown fat; a tumour expresses PSMA on its new vessels, so its rim is hotter than its core.

A PSMA cohort is smaller than its FDG one (PSMA PET of head-and-neck tumours is rarer): half as many cases per
centre, in training and in test (:func:`tracer_count`).
"""

from __future__ import annotations

from dataclasses import dataclass

from pemma_cl.core.errors import UserError


@dataclass(frozen=True)
class Tracer:
    """One tracer's physiological uptake (SUV ranges, each drawn uniformly per patient) and its cases.

    Attributes:
        name: the value of the cases' ``tracer`` grouping column.
        parotid: SUV range of each parotid gland.
        submandibular: SUV range of each submandibular gland.
        tonsil: SUV range of each palatine tonsil.
        brain: SUV range of the brain.
        brown_fat: SUV range of active brown fat (whether a patient's brown fat is active does not depend on the
            tracer).
        lacrimal: each lacrimal gland's SUV as a share of the parotid's on its side; 0: not above soft tissue.
        rim: how much cooler a tumour's core is than its rim (0: no difference; 0.6: 40% of the rim's uptake).
        share: the tracer's cases per centre as a share of the FDG cohort's (see :func:`tracer_count`).
        id_tag: the tag of its case ids after the centre (``MDA-P001``; ``MDA-PT001`` for a test case).
        train_key: the generator key's entries after ``[seed, centre, case]`` of a training case.
        test_key: the same for a test case.
    """

    name: str
    parotid: tuple[float, float]
    submandibular: tuple[float, float]
    tonsil: tuple[float, float]
    brain: tuple[float, float]
    brown_fat: tuple[float, float]
    lacrimal: float
    rim: float
    share: float
    id_tag: str
    train_key: tuple[int, ...]
    test_key: tuple[int, ...]


#: The tracers, by name. FDG keeps the generator keys and case ids the built-in cohort always had.
TRACER_PARAMS: dict[str, Tracer] = {
    "FDG": Tracer("FDG", parotid=(3.0, 5.0), submandibular=(3.5, 6.5), tonsil=(4.0, 8.0), brain=(6.0, 10.0),
                  brown_fat=(3.0, 8.0), lacrimal=0.0, rim=0.0, share=1.0, id_tag="", train_key=(), test_key=(1,)),
    "PSMA": Tracer("PSMA", parotid=(10.0, 16.0), submandibular=(11.0, 18.0), tonsil=(1.0, 2.0), brain=(0.1, 0.4),
                   brown_fat=(0.3, 0.5), lacrimal=0.6, rim=0.6, share=0.5, id_tag="P", train_key=(2,),
                   test_key=(3,)),
}
#: The tracers' names; the built-in cohort has FDG only unless a stream asks for more (``synthetic_tracers``).
TRACERS: tuple[str, ...] = tuple(TRACER_PARAMS)
DEFAULT_TRACERS: tuple[str, ...] = ("FDG",)
#: The grouping column that holds a case's tracer.
TRACER_COLUMN = "tracer"


def tracer_count(tracer: Tracer, fdg_count: int) -> int:
    """A centre's cases of ``tracer`` when its FDG cohort (training or test) has ``fdg_count``: ``share`` of them,
    rounded, at least 5 (or all of them when there are fewer)."""
    return max(min(fdg_count, 5), int(tracer.share * fdg_count + 0.5))


def check_tracers(tracers: tuple[str, ...] | list[str], field: str = "tracers") -> tuple[str, ...]:
    """``tracers`` in :data:`TRACERS` order.

    Raises:
        UserError: If one is unknown or named twice, or none is given (``field`` names the setting).
    """
    unknown = [t for t in tracers if t not in TRACER_PARAMS]
    if unknown:
        raise UserError(f"{field}: unknown tracer {unknown[0]!r}; valid tracers: {', '.join(TRACERS)}")
    if not tracers or len(set(tracers)) != len(tracers):
        raise UserError(f"{field}: expected distinct tracers from [{', '.join(TRACERS)}], got {list(tracers)!r}")
    return tuple(t for t in TRACERS if t in tracers)
