"""Deterministic HECKTOR-2022-like phantom cohort (CT, PET, GTVp/GTVn labels, clinical data, RFS).

Each case is a crude but plausible head-and-neck field of view on one ``[z, y, x]`` grid, with
``z`` running inferior -> superior, ``y`` anterior -> posterior and ``x`` right -> left:

* **Anatomy (CT, HU).** Air (-1000) around an elliptical neck that widens into the head; soft
  tissue (~40) with a faint smooth texture; a subcutaneous fat rim and intermuscular fat patches
  (~-100); bone (~700): the cervical spine posteriorly (vertebral body, arch, spinal canal), a
  U-shaped mandible anteriorly and the skull with the brain (~35) in the top slab; an air-filled
  airway anterior to the spine; parotid and submandibular glands (slightly hypodense) and palatine
  tonsils beside the oropharynx.
* **Tumours (label).** A primary tumour GTVp (label 1, union of 2-3 rotated ellipsoids) against the
  airway at an oropharynx, base-of-tongue, larynx/hypopharynx or nasopharynx subsite, and 0-3
  lymph nodes GTVn (label 2, small ellipsoids in lateral neck levels II-IV, mostly on the side of
  the primary; nodes never overwrite the primary). Tumours are faint on CT (25-45 HU above
  soft tissue, like a mildly enhancing lesion: two to three CT noise sigmas) and hot on PET
  (SUV 6-16 for the primary, 4-12 for nodes).
* **Physiological PET uptake (not tumour), FDG's.** Brain (SUV 6-10) at the top; symmetric salivary
  glands (SUV 3-6.5) and tonsils (SUV 4-8; about 3-6 after blur) that resemble nodes or a small
  primary on PET; in some patients (more often lean ones) active brown fat (SUV 3-8) in lower-neck
  fat patches. Their position and CT appearance (skull, hypodense glands, fixed tonsil site, fat
  density) tell them apart from tumour, so CT + PET is better than PET alone. Another tracer
  (:mod:`pemma_cl.data.synthetic.tracers`: PSMA) gives these tissues, the lacrimal glands and the
  tumours its own uptake; nothing else about a case depends on its tracer.
* **Acquisition.** PET is blurred with a Gaussian of the centre's FWHM, scaled by the centre's SUV
  calibration and given Poisson-like noise (variance proportional to uptake); CT gets a slight
  partial-volume blur, the centre's calibration offset and Gaussian noise.

The anatomy is laid out in grid-relative coordinates, so the neck fills the field of view whatever
``shape`` is; millimetre quantities (tumour sizes, PET FWHM, volumes) refer to a nominal
``NOMINAL_FOV_MM`` field of view, which the default 32 voxels x 4 mm reproduces. ``spacing_mm`` is
only recorded on the cases. Every random draw that shapes the anatomy, the clinical data and the
survival comes before the per-voxel noise, so a case keeps its anatomy across grid sizes.

Centres differ (:mod:`pemma_cl.data.synthetic.centres`) in CT noise and calibration, PET calibration, blur and noise,
tumour size, nodal prevalence, patient position, HPV prevalence and which clinical fields are
missing; with ``shift=False`` every centre draws from :data:`NO_SHIFT_PARAMS` instead (only the case
counts differ), a cohort in which nothing changes from centre to centre. :func:`generate_test_cohort`
draws a centre's test cases apart from its training cohort (other generators, ids like ``CHUM-T001``).
Each case records its tracer in ``CaseRecord.groups["tracer"]``; the cohort is FDG's unless ``tracers`` says
otherwise, a PSMA case having its own generator and an id like ``CHUM-P001`` (``CHUM-PT001`` in test).
The patient, clinical-record and survival model is :mod:`pemma_cl.data.synthetic.patient`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from pemma_cl.core.errors import UserError
from pemma_cl.data.records import CaseRecord
from pemma_cl.data.synthetic.centres import CENTRE_PARAMS, CENTRES, NO_SHIFT_PARAMS, CentreParams
from pemma_cl.data.synthetic.patient import clinical_record, draw_patient, draw_survival, latent_risk
from pemma_cl.data.synthetic.tracers import (DEFAULT_TRACERS, TRACER_COLUMN, TRACER_PARAMS, Tracer, check_tracers,
                                            tracer_count)

#: Nominal physical extent (mm) of every grid axis; mm parameters are converted with it.
NOMINAL_FOV_MM = 128.0


_HU = {"air": -1000.0, "soft": 40.0, "fat": -100.0, "bone": 700.0, "brain": 35.0, "csf": 10.0,
       "parotid": -15.0, "submandibular": 15.0, "tonsil": 45.0}

#: Primary subsites (name, probability) around the airway.
_SUBSITES = (("oropharynx", 0.45), ("base_of_tongue", 0.25), ("larynx", 0.20),
             ("nasopharynx", 0.10))
#: Nodal levels (z range relative to the patient's centre, probability).
_NODE_LEVELS = (((0.0, 0.3), 0.50), ((-0.3, 0.0), 0.35), ((-0.6, -0.3), 0.15))
#: Depth below a tumour's surface (grid units; 0.1 is about 6 mm) from which a tracer with a ``rim`` (PSMA) has
#: its coolest core.
_CORE_DEPTH = 0.1


def generate_cohort(
    seed: int = 0,
    shape: tuple[int, int, int] = (32, 32, 32),
    spacing_mm: float = 4.0,
    case_scale: float = 0.2,
    centres: Sequence[str] = CENTRES,
    shift: bool = True,
    tracers: Sequence[str] = DEFAULT_TRACERS,
) -> list[CaseRecord]:
    """Generate the synthetic HECKTOR-like cohort, centre by centre.

    Args:
        seed: Cohort seed; FDG case ``k`` (1-based) of centre ``c`` uses
            ``np.random.default_rng([seed, CENTRES.index(c), k])`` (a PSMA case ``[seed, CENTRES.index(c), k, 2]``),
            so a case does not depend on which other cases are generated.
        shape: Grid ``(z, y, x)`` in voxels (each at least 8).
        spacing_mm: Isotropic voxel spacing recorded on the cases (mm).
        case_scale: Multiplier on HECKTOR 2022 training counts per centre (rounded, minimum 5).
        centres: Centres to generate, from ``CENTRES``.
        shift: Centres differ as in ``CENTRE_PARAMS``; False: every centre is :data:`NO_SHIFT_PARAMS`.
        tracers: The tracers of the cohort (:data:`~pemma_cl.data.synthetic.tracers.TRACERS`); a centre has
            :func:`~pemma_cl.data.synthetic.tracers.tracer_count` cases of each.

    Returns:
        The cases, grouped by centre in the order of ``centres``, then by tracer (FDG first), ids like ``CHUM-001``
        (FDG) and ``CHUM-P001`` (PSMA).

    Raises:
        UserError: On an unknown or repeated centre or tracer, or a non-positive size parameter.
    """
    shape = _check_args(shape, spacing_mm, case_scale, centres)
    chosen = [TRACER_PARAMS[name] for name in check_tracers(tracers)]
    return [_generate_case([seed, CENTRES.index(centre), number, *tracer.train_key],
                           f"{centre}-{tracer.id_tag}{number:03d}", centre, tracer, shape, float(spacing_mm), shift)
            for centre in centres for tracer in chosen
            for number in range(1, tracer_count(tracer, cohort_size(centre, case_scale)) + 1)]


def generate_test_cohort(
    seed: int = 0,
    shape: tuple[int, int, int] = (32, 32, 32),
    spacing_mm: float = 4.0,
    per_centre: int = 25,
    centres: Sequence[str] = CENTRES,
    shift: bool = True,
    tracers: Sequence[str] = DEFAULT_TRACERS,
) -> list[CaseRecord]:
    """``per_centre`` FDG test cases of each centre (and as many of each other tracer as
    :func:`~pemma_cl.data.synthetic.tracers.tracer_count` says), drawn apart from :func:`generate_cohort`'s cases.

    FDG case ``k`` of centre ``c`` uses ``np.random.default_rng([seed, CENTRES.index(c), k, 1])`` and is
    ``CHUM-T001``-like; a PSMA case ``[seed, CENTRES.index(c), k, 3]``, ``CHUM-PT001``-like (no training case uses
    these generators); otherwise as :func:`generate_cohort`.
    """
    shape = _check_args(shape, spacing_mm, 1.0, centres)
    if int(per_centre) != per_centre or per_centre < 1:
        raise UserError(f"per_centre must be a positive integer, got {per_centre!r}")
    chosen = [TRACER_PARAMS[name] for name in check_tracers(tracers)]
    return [_generate_case([seed, CENTRES.index(centre), number, *tracer.test_key],
                           f"{centre}-{tracer.id_tag}T{number:03d}", centre, tracer, shape, float(spacing_mm), shift)
            for centre in centres for tracer in chosen
            for number in range(1, tracer_count(tracer, int(per_centre)) + 1)]


def cohort_size(centre: str, case_scale: float) -> int:
    """Number of cases generated for ``centre``: HECKTOR count x ``case_scale``, rounded, min 5."""
    return max(5, int(np.floor(CENTRE_PARAMS[centre].n_train * case_scale + 0.5)))


def _check_args(
    shape: Sequence[int], spacing_mm: float, case_scale: float, centres: Sequence[str]
) -> tuple[int, int, int]:
    """Validate ``generate_cohort``'s arguments; return ``shape`` as a tuple of ints."""
    unknown = [c for c in centres if c not in CENTRE_PARAMS]
    if unknown:
        raise UserError(f"unknown centre {unknown[0]!r}; valid centres: {', '.join(CENTRES)}")
    if len(set(centres)) != len(centres):
        raise UserError(f"centres listed more than once: {', '.join(centres)}")
    if len(shape) != 3 or any(int(n) != n or n < 8 for n in shape):
        raise UserError(f"shape must be three integers >= 8, got {tuple(shape)}")
    if not 0 < spacing_mm < math.inf or not 0 < case_scale < math.inf:
        raise UserError(
            f"spacing_mm and case_scale must be finite numbers > 0, got {spacing_mm} and {case_scale}"
        )
    return tuple(int(n) for n in shape)  # type: ignore[return-value]


def _generate_case(
    key: list[int], case_id: str, centre: str, tracer: Tracer, shape: tuple[int, int, int], spacing_mm: float,
    shift: bool,
) -> CaseRecord:
    """One case (generator seeded with ``key``): clinical draws, anatomy, tumours, survival, then images."""
    p = CENTRE_PARAMS[centre] if shift else NO_SHIFT_PARAMS
    rng = np.random.default_rng(key)
    latent = draw_patient(rng, p.hpv_rate)
    grid = _grid(shape)
    hu, suv, label, burden = _draw_anatomy(rng, grid, p, latent, tracer)
    latent.update(burden)
    clinical = clinical_record(rng, p.missing, latent)
    rfs_days, relapse = draw_survival(rng, latent)
    ct, pet = _acquire(rng, hu, suv, p, shape)
    return CaseRecord(
        case_id=case_id,
        centre=centre,
        ct=ct,
        pet=pet,
        label=label,
        spacing=(spacing_mm,) * 3,
        clinical=clinical,
        rfs_days=rfs_days,
        relapse=relapse,
        truth={"volume_ml": float(latent["volume_ml"]), "suv_max": float(latent["suv_max"]),
               "risk": latent_risk(latent)},
        groups={TRACER_COLUMN: tracer.name},
    )


def _grid(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Open voxel-centre coordinates in [-1, 1] along z, y, x (broadcastable)."""
    axes = [(np.arange(n) + 0.5) / n * 2.0 - 1.0 for n in shape]
    return axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]


def _ellipsoid(
    grid: tuple[np.ndarray, ...],
    centre: Sequence[float],
    radii: Sequence[float],
    rotation: np.ndarray | None = None,
) -> np.ndarray:
    """Boolean mask of an (optionally rotated) ellipsoid; an infinite radius makes a cylinder."""
    d = [g - c for g, c in zip(grid, centre)]
    if rotation is not None:
        d = [sum(rotation[j, i] * d[j] for j in range(3)) for i in range(3)]
    q = sum((di / r) ** 2 for di, r in zip(d, radii))
    return np.broadcast_to(q <= 1.0, tuple(g.size for g in grid)).copy()


def _rotation(rng: np.random.Generator) -> np.ndarray:
    """A random 3-D rotation matrix."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return q * np.sign(np.diag(r))


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int, int], cells: int) -> np.ndarray:
    """Smooth Gaussian random field with zero mean and unit variance at every voxel.

    White noise on ``cells + 2`` control points per axis (one beyond each edge) is interpolated
    with separable Gaussian weights. The draws do not depend on ``shape``, so the field is the same
    continuous function at any grid size.
    """
    field = rng.standard_normal((cells + 2,) * 3)
    knots = (np.arange(cells + 2) - 0.5) / cells * 2.0 - 1.0
    for axis, n in enumerate(shape):
        u = (np.arange(n) + 0.5) / n * 2.0 - 1.0
        weights = np.exp(-0.5 * ((u[:, None] - knots[None, :]) * cells / 2.0) ** 2)
        weights /= np.sqrt((weights**2).sum(axis=1, keepdims=True))
        field = np.moveaxis(np.tensordot(weights, field, axes=([1], [axis])), 0, axis)
    return field


def _smoothstep(t: np.ndarray) -> np.ndarray:
    """Cubic ramp from 0 (t <= 0) to 1 (t >= 1)."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _draw_anatomy(
    rng: np.random.Generator, grid: tuple[np.ndarray, ...], p: CentreParams, latent: dict, tracer: Tracer
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Noise-free HU and SUV maps (the SUV of ``tracer``), the label and the tumour burden of one patient.

    The random draws do not depend on the tracer: only the SUV ranges they are scaled to do.
    """
    z, y, x = grid
    shape = tuple(g.size for g in grid)
    z0, y0, x0 = (s + rng.normal(0.0, 0.03) for s in p.shift)
    size = float(np.clip(0.86 + 0.0025 * (latent["weight"] - 50.0), 0.88, 1.06))
    size *= rng.uniform(0.96, 1.04)
    bg = rng.uniform(0.8, 1.2)  # soft-tissue SUV

    # Body: elliptical neck widening into the head above the skull base.
    head = _smoothstep((z - z0 - 0.35) / 0.4)
    ax, ay = (0.66 + 0.12 * head) * size, (0.58 + 0.14 * head) * size
    q_body = ((x - x0) / ax) ** 2 + ((y - y0) / ay) ** 2
    body = q_body <= 1.0

    # Fat: a subcutaneous rim of patient-dependent thickness plus intermuscular patches.
    fat_thickness = 0.06 + 0.0015 * (latent["weight"] - 40.0)
    rim = _smooth_field(rng, shape, 6)
    fat = body & (q_body >= (1.0 - fat_thickness * (1.0 + 0.5 * rim)) ** 2)
    fat |= body & (q_body < 0.6) & (_smooth_field(rng, shape, 8) > 1.4)
    # Brown fat: lower-neck fat patches, metabolically active (hot on PET) in some patients.
    brown = body & (q_body > 0.3) & (q_body < 0.85) & (z < z0 + 0.1)
    brown &= _smooth_field(rng, shape, 8) > 1.2
    fat |= brown
    brown_active = rng.random() < (0.5 if latent["weight"] < 75.0 else 0.25)
    brown_suv = rng.uniform(*tracer.brown_fat) if brown_active else 0.35 * bg

    # Bones, cranium, airway.
    z_base = z0 + 0.62
    y_spine = y0 + 0.12 * size
    canal = _ellipsoid(grid, (0, y_spine + 0.19, x0), (np.inf, 0.06, 0.06))
    spine = _ellipsoid(grid, (0, y_spine, x0), (np.inf, 0.14, 0.17))
    spine = (spine | _ellipsoid(grid, (0, y_spine + 0.21, x0), (np.inf, 0.12, 0.10))) & ~canal
    spine &= z < z_base
    canal &= z < z_base
    arc = ((x - x0) / (0.56 * size)) ** 2 + ((y - y0 - 0.05) / (0.50 * size)) ** 2
    mandible = (arc >= 0.72) & (arc <= 1.0) & (y < y0) & (z >= z0 - 0.02) & (z <= z0 + 0.32)
    cranium = body & (z >= z_base) & (q_body < 0.86**2)
    brain = cranium & (z >= z_base + 0.07)
    skull = body & (z >= z_base) & ~brain & (q_body < 0.96**2)
    bone = spine | mandible | skull
    y_air = y0 - 0.22 * size
    r_air = 0.075 + 0.035 * np.exp(-(((z - z0 - 0.18) / 0.15) ** 2))
    airway = ((x - x0) ** 2 + (y - y_air) ** 2 <= r_air**2) & (z < z0 + 0.5)

    # Glands and tonsils (symmetric pairs), physiologically hot on PET.
    organs = []  # (mask, HU, SUV)
    lacrimal = []  # (mask, SUV): PET only (at this resolution CT shows the glands as the soft tissue around them)
    for side in (-1.0, 1.0):
        parotid_suv = rng.uniform(*tracer.parotid)
        organs.append((_ellipsoid(grid, (z0 + 0.42, y0 + 0.02, x0 + side * 0.52 * size),
                                  (0.15, 0.17, 0.10)), _HU["parotid"], parotid_suv))
        organs.append((_ellipsoid(grid, (z0 - 0.12, y0 - 0.30 * size, x0 + side * 0.36 * size),
                                  (0.10, 0.11, 0.11)), _HU["submandibular"], rng.uniform(*tracer.submandibular)))
        organs.append((_ellipsoid(grid, (z0 + 0.18, y_air + 0.02, x0 + side * 0.21),
                                  (0.12, 0.10, 0.09)), _HU["tonsil"], rng.uniform(*tracer.tonsil)))
        if tracer.lacrimal:  # superolateral to the eye, in front of and above the parotid
            lacrimal.append((_ellipsoid(grid, (z0 + 0.52, y0 - 0.42 * size, x0 + side * 0.32 * size),
                                        (0.06, 0.08, 0.10)), tracer.lacrimal * parotid_suv))

    # Tumours.
    side = 1.0 if rng.random() < 0.5 else -1.0
    primary, centre, suv_max = _draw_primary(rng, grid, p, (z0, y_air, x0), side)
    tumour_bed = body & ~airway & ~bone & ~cranium
    primary &= tumour_bed
    if not primary.any():  # coarse grids: keep at least the voxel nearest the tumour centre
        primary[_nearest_voxel(grid, centre)] = True
    nodes, node_suvs = _draw_nodes(rng, grid, p, latent, (z0, y0, x0), side, size)
    nodes = [node & tumour_bed & ~primary for node in nodes]
    heterogeneity = np.clip(0.5 + 0.35 * _smooth_field(rng, shape, 6), 0.0, 1.0)

    layers = [(body, _HU["soft"], bg), (fat, _HU["fat"], 0.35 * bg),
              (brown, _HU["fat"], brown_suv), *organs,
              (brain, _HU["brain"], rng.uniform(*tracer.brain)), (canal, _HU["csf"], 0.3 * bg),
              (bone, _HU["bone"], 0.8 * bg), (airway, _HU["air"], 0.0)]
    hu = np.full(shape, _HU["air"])
    suv = np.zeros(shape)
    for mask, value, uptake in layers:
        hu[mask], suv[mask] = value, uptake
    for mask, uptake in lacrimal:
        suv[mask & (hu == _HU["soft"])] = uptake
    texture = 6.0 * _smooth_field(rng, shape, 10)
    hu += np.where(body & ~bone & ~airway & ~fat, texture, 0.0)
    hu[primary] = _HU["soft"] + rng.uniform(25.0, 45.0) + texture[primary]
    suv[primary] = _tumour_uptake(suv_max, heterogeneity, primary, tracer.rim)
    label = primary.astype(np.uint8)
    for node, node_suv in zip(nodes, node_suvs):
        hu[node] = _HU["soft"] + rng.uniform(25.0, 45.0) + texture[node]
        suv[node] = _tumour_uptake(node_suv, heterogeneity, node, tracer.rim)
        label[node] = 2
    volume_ml = np.count_nonzero(label) / label.size * NOMINAL_FOV_MM**3 / 1000.0
    return hu, suv, label, {"volume_ml": volume_ml, "suv_max": suv_max, "n_nodes": len(nodes)}


def _tumour_uptake(peak: float, heterogeneity: np.ndarray, mask: np.ndarray, rim: float) -> np.ndarray:
    """SUV of a tumour's voxels: ``peak`` times a smooth heterogeneity in [0.75, 1]; with a ``rim`` (PSMA), lowered
    by up to that share with the depth below the tumour's surface (fully from :data:`_CORE_DEPTH` on)."""
    uptake = peak * (0.75 + 0.25 * heterogeneity[mask])
    if rim:
        voxel = 2.0 / np.array(mask.shape)
        depth = ndimage.distance_transform_edt(mask, sampling=voxel)[mask] - voxel.min() / 2.0
        uptake = uptake * (1.0 - rim * np.clip(depth / _CORE_DEPTH, 0.0, 1.0))
    return uptake


def _draw_primary(
    rng: np.random.Generator,
    grid: tuple[np.ndarray, ...],
    p: CentreParams,
    airway: tuple[float, float, float],
    side: float,
) -> tuple[np.ndarray, tuple[float, float, float], float]:
    """Primary tumour mask (2-3 rotated ellipsoids against the airway), centre and true SUVmax."""
    z0, y_air, x0 = airway
    names, probs = zip(*_SUBSITES)
    subsite = names[rng.choice(len(names), p=probs)]
    radius = p.tumour_scale * float(np.clip(np.exp(rng.normal(np.log(0.18), 0.3)), 0.11, 0.28))
    lateral = x0 + side * (0.11 + 0.5 * radius)
    u, v = rng.uniform(size=2)
    if subsite == "oropharynx":
        centre = (z0 + 0.05 + 0.25 * u, y_air - 0.05 + 0.13 * v, lateral)
    elif subsite == "base_of_tongue":
        centre = (z0 + 0.2 * u, y_air - 0.11 - 0.5 * radius, x0 + side * 0.08 * v)
    elif subsite == "larynx":
        centre = (z0 - 0.45 + 0.3 * u, y_air - 0.04 + 0.08 * v, x0 + side * (0.08 + 0.5 * radius))
    else:
        centre = (z0 + 0.38 + 0.1 * u, y_air + 0.06 + 0.3 * radius, x0 + side * 0.08 * v)
    mask = _ellipsoid(grid, centre, radius * rng.uniform(0.8, 1.2, 3), _rotation(rng))
    for _ in range(rng.integers(1, 3)):
        direction = rng.standard_normal(3)
        offset = direction / np.linalg.norm(direction) * radius * rng.uniform(0.4, 0.8)
        mask |= _ellipsoid(grid, np.add(centre, offset), radius * rng.uniform(0.45, 0.8, 3),
                           _rotation(rng))
    return mask, centre, float(rng.uniform(6.0, 16.0))


def _draw_nodes(
    rng: np.random.Generator,
    grid: tuple[np.ndarray, ...],
    p: CentreParams,
    latent: dict,
    origin: tuple[float, float, float],
    side: float,
    size: float,
) -> tuple[list[np.ndarray], list[float]]:
    """0-3 lymph-node masks in lateral neck levels II-IV and their peak SUVs."""
    z0, y0, x0 = origin
    levels, level_probs = zip(*_NODE_LEVELS)
    scale = p.tumour_scale * (1.15 if latent["hpv_status"] else 1.0)
    masks, suvs = [], []
    for _ in range(rng.choice(4, p=p.node_probs)):
        lo, hi = levels[rng.choice(len(levels), p=level_probs)]
        node_side = side if rng.random() < 0.75 else -side
        centre = (z0 + rng.uniform(lo, hi), y0 + rng.uniform(-0.15, 0.08) * size,
                  x0 + node_side * rng.uniform(0.30, 0.42) * size)
        radius = scale * rng.uniform(0.10, 0.19)
        masks.append(_ellipsoid(grid, centre, radius * rng.uniform(0.8, 1.2, 3), _rotation(rng)))
        suvs.append(float(rng.uniform(4.0, 12.0)))
    return masks, suvs


def _nearest_voxel(grid: tuple[np.ndarray, ...], point: Sequence[float]) -> tuple[int, ...]:
    """Index of the voxel whose centre is nearest to ``point``."""
    return tuple(int(np.argmin(np.abs(g.ravel() - c))) for g, c in zip(grid, point))


def _acquire(
    rng: np.random.Generator,
    hu: np.ndarray,
    suv: np.ndarray,
    p: CentreParams,
    shape: tuple[int, int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Scanner simulation: PET blur, calibration, Poisson-like noise; CT blur, offset, noise."""
    voxel_mm = np.array([NOMINAL_FOV_MM / n for n in shape])
    pet = p.pet_scale * ndimage.gaussian_filter(suv, p.pet_fwhm_mm / 2.3548 / voxel_mm)
    pet_noise = ndimage.gaussian_filter(rng.standard_normal(shape), 2.0 / voxel_mm)
    pet_noise /= pet_noise.std()
    pet = np.clip(pet + np.sqrt(p.pet_noise * pet) * pet_noise, 0.0, None)
    ct = ndimage.gaussian_filter(hu, 1.8 / voxel_mm) + p.ct_offset_hu
    ct += rng.normal(0.0, p.ct_noise_hu, shape)
    return ct.astype(np.float32), pet.astype(np.float32)
