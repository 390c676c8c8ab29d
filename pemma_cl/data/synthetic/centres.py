"""Population and acquisition parameters of each centre of the built-in synthetic cohort
(:mod:`pemma_cl.data.synthetic.cohort` draws its cases from them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CentreParams:
    """Population and acquisition parameters of one centre.

    Attributes:
        n_train: Number of training cases the centre has in HECKTOR 2022.
        ct_noise_hu: Standard deviation of the CT Gaussian noise (HU).
        ct_offset_hu: CT calibration offset added to every voxel (HU).
        pet_scale: Multiplicative SUV calibration of the PET.
        pet_fwhm_mm: Full width at half maximum of the PET point-spread function (mm).
        pet_noise: Poisson-like PET noise gain: the noise variance is ``pet_noise * SUV``.
        tumour_scale: Multiplier on primary-tumour and node radii.
        node_probs: Probabilities of 0, 1, 2 and 3 lymph nodes.
        shift: Patient-position shift ``(dz, dy, dx)`` in grid-relative units (1.0 = half the
            field of view).
        hpv_rate: Probability that a patient is HPV positive.
        missing: Probability that each clinical field in ``MISSABLE_FIELDS`` is recorded as ``None``.
    """

    n_train: int
    ct_noise_hu: float
    ct_offset_hu: float
    pet_scale: float
    pet_fwhm_mm: float
    pet_noise: float
    tumour_scale: float
    node_probs: tuple[float, float, float, float]
    shift: tuple[float, float, float]
    hpv_rate: float
    missing: dict[str, float]


#: Per-centre parameters. MDA: large, HPV+-rich, node-rich cohort on clean scanners; HMR: small
#: cohort, smaller tumours, noisy low-resolution PET with low SUV calibration and poorly recorded
#: HPV status; CHUP/CHUV: sharp, high-calibrated PET; HGJ/CHUS: blurrier PET.
CENTRE_PARAMS: dict[str, CentreParams] = {
    "CHUM": CentreParams(
        56, 16.0, 0.0, 1.00, 8.0, 0.12, 1.00, (0.30, 0.35, 0.25, 0.10), (0.00, 0.00, 0.00), 0.65,
        {"weight": 0.00, "tobacco": 0.10, "alcohol": 0.10, "performance_status": 0.10,
         "hpv_status": 0.30},
    ),
    "CHUP": CentreParams(
        72, 20.0, 8.0, 1.15, 7.0, 0.10, 0.95, (0.40, 0.30, 0.20, 0.10), (0.05, 0.03, 0.00), 0.50,
        {"weight": 0.05, "tobacco": 0.70, "alcohol": 0.70, "performance_status": 0.20,
         "hpv_status": 0.60},
    ),
    "CHUS": CentreParams(
        72, 14.0, -6.0, 0.90, 9.0, 0.15, 1.00, (0.35, 0.35, 0.20, 0.10), (-0.04, 0.00, 0.03), 0.55,
        {"weight": 0.00, "tobacco": 0.20, "alcohol": 0.20, "performance_status": 0.15,
         "hpv_status": 0.40},
    ),
    "CHUV": CentreParams(
        53, 18.0, 12.0, 1.25, 7.5, 0.10, 1.05, (0.30, 0.35, 0.25, 0.10), (0.03, -0.04, -0.02), 0.50,
        {"weight": 0.00, "tobacco": 0.50, "alcohol": 0.50, "performance_status": 0.30,
         "hpv_status": 0.20},
    ),
    "MDA": CentreParams(
        198, 12.0, 0.0, 1.00, 8.0, 0.12, 1.12, (0.15, 0.35, 0.30, 0.20), (0.08, 0.05, 0.00), 0.85,
        {"weight": 0.05, "tobacco": 0.90, "alcohol": 0.95, "performance_status": 0.40,
         "hpv_status": 0.05},
    ),
    "HGJ": CentreParams(
        55, 22.0, -10.0, 0.85, 10.0, 0.18, 0.95, (0.35, 0.35, 0.20, 0.10), (-0.06, -0.03, 0.03), 0.60,
        {"weight": 0.00, "tobacco": 0.10, "alcohol": 0.10, "performance_status": 0.10,
         "hpv_status": 0.30},
    ),
    "HMR": CentreParams(
        18, 28.0, 18.0, 0.75, 11.0, 0.25, 0.85, (0.50, 0.30, 0.15, 0.05), (-0.10, 0.07, -0.05), 0.35,
        {"weight": 0.10, "tobacco": 0.30, "alcohol": 0.30, "performance_status": 0.30,
         "hpv_status": 0.80},
    ),
}

#: The one population and acquisition of every centre of a cohort without centre differences (``shift=False``):
#: CHUM's, the reference centre (no calibration offset, no position shift).
NO_SHIFT_PARAMS: CentreParams = CENTRE_PARAMS["CHUM"]

#: The built-in cohort's centres (HECKTOR 2022's, in the challenge's order); a centre's position seeds its cases.
CENTRES: tuple[str, ...] = tuple(CENTRE_PARAMS)
