"""Tests of the synthetic HECKTOR-like phantom cohort."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from pemma_cl.core.errors import UserError
from pemma_cl.data.synthetic.centres import CENTRES
from pemma_cl.data.sources import load_cases
from pemma_cl.data.synthetic.centres import CENTRE_PARAMS
from pemma_cl.data.synthetic.cohort import generate_cohort, generate_test_cohort

SHAPE = (24, 24, 24)
CLINICAL_KEYS = {"age", "gender", "weight", "tobacco", "alcohol", "performance_status",
                 "hpv_status", "surgery", "chemotherapy"}


@pytest.fixture(scope="module")
def cohort():
    """Every centre at 24^3, about a fifth of HECKTOR's size (106 cases)."""
    return generate_cohort(seed=0, shape=SHAPE, case_scale=0.2)


@pytest.fixture(scope="module")
def survival_cohort():
    """HECKTOR-sized cohort (524 cases) on a coarse grid, for the survival model."""
    return generate_cohort(seed=0, shape=(16, 16, 16), case_scale=1.0)


def _corner_air(ct: np.ndarray) -> np.ndarray:
    """CT voxels in the eight 3^3 corners of the grid, always air outside the body."""
    return np.concatenate([ct[z, y, x].ravel() for z in (slice(0, 3), slice(-3, None))
                           for y in (slice(0, 3), slice(-3, None))
                           for x in (slice(0, 3), slice(-3, None))])


def _concordance(risk: np.ndarray, time: np.ndarray, event: np.ndarray) -> float:
    """Harrell's C: among comparable pairs, how often the earlier relapse has the higher risk."""
    comparable = (time[:, None] < time[None, :]) & (event[:, None] == 1)
    higher = risk[:, None] > risk[None, :]
    ties = risk[:, None] == risk[None, :]
    return float((higher + 0.5 * ties)[comparable].mean())


def _assert_same(a, b):
    assert (a.case_id, a.centre, a.spacing) == (b.case_id, b.centre, b.spacing)
    for key in ("ct", "pet", "label"):
        assert np.array_equal(getattr(a, key), getattr(b, key)), key
    assert (a.clinical, a.rfs_days, a.relapse) == (b.clinical, b.rfs_days, b.relapse)


def test_same_seed_is_bit_identical_and_another_seed_differs():
    first = generate_cohort(seed=7, shape=SHAPE, case_scale=0.05, centres=["HMR", "CHUV"])
    again = generate_cohort(seed=7, shape=SHAPE, case_scale=0.05, centres=["HMR", "CHUV"])
    other = generate_cohort(seed=8, shape=SHAPE, case_scale=0.05, centres=["HMR", "CHUV"])
    for a, b in zip(first, again):
        _assert_same(a, b)
    assert all(not np.array_equal(a.label, c.label) for a, c in zip(first, other))
    assert all(not np.array_equal(a.pet, c.pet) for a, c in zip(first, other))


def test_case_does_not_depend_on_other_centres(cohort):
    alone = generate_cohort(seed=0, shape=SHAPE, case_scale=0.2, centres=["HMR"])
    in_cohort = [c for c in cohort if c.centre == "HMR"]
    assert len(alone) == len(in_cohort) == 5
    for a, b in zip(alone, in_cohort):
        _assert_same(a, b)


def test_arrays_labels_and_records(cohort):
    for case in cohort:
        assert case.ct.shape == case.pet.shape == case.label.shape == SHAPE
        assert (case.ct.dtype, case.pet.dtype, case.label.dtype) == (np.float32, np.float32,
                                                                    np.uint8)
        assert set(np.unique(case.label)) <= {0, 1, 2}
        assert np.count_nonzero(case.label == 1) > 0, case.case_id
        assert case.pet.min() >= 0.0
        assert case.spacing == (4.0, 4.0, 4.0)
        assert case.case_id.startswith(f"{case.centre}-") and len(case.case_id.split("-")[1]) == 3
        assert set(case.clinical) == CLINICAL_KEYS
    assert any((case.label == 2).any() for case in cohort)
    assert any(not (case.label == 2).any() for case in cohort)


def test_case_counts_follow_hecktor_proportions_with_a_minimum():
    counts = {}
    for case in generate_cohort(shape=(8, 8, 8), case_scale=0.2):
        counts[case.centre] = counts.get(case.centre, 0) + 1
    assert counts == {"CHUM": 11, "CHUP": 14, "CHUS": 14, "CHUV": 11, "MDA": 40, "HGJ": 11,
                      "HMR": 5}
    small = generate_cohort(shape=(8, 8, 8), case_scale=0.01)
    assert [c.case_id for c in small if c.centre == "MDA"] == [f"MDA-00{k}" for k in range(1, 6)]
    assert len(small) == 5 * len(CENTRES)


def test_tumour_is_hot_on_pet_but_faint_on_ct(cohort):
    pet_ratios, ct_contrasts = [], []
    for case in cohort:
        tumour = case.label > 0
        body = case.ct > -500
        background = body & ~ndimage.binary_dilation(tumour, iterations=3)
        pet_ratios.append(case.pet[case.label == 1].mean() / np.median(case.pet[background]))
        ring = ndimage.binary_dilation(tumour, iterations=2) & ~tumour
        soft = (case.ct > -50) & (case.ct < 150)
        contrast = np.median(case.ct[tumour & soft]) - np.median(case.ct[ring & soft])
        ct_contrasts.append(contrast / _corner_air(case.ct).std())
    assert np.median(pet_ratios) > 4.0 and np.percentile(pet_ratios, 5) > 2.0
    # Visible on CT, but within a few noise sigmas (far less conspicuous than on PET).
    assert 0.5 < np.mean(ct_contrasts) < 4.0
    assert np.percentile(ct_contrasts, 90) < 5.0


def test_physiological_uptake_outside_tumours(cohort):
    neck_hot = hot_fat = 0
    for case in cohort:
        outside = ~ndimage.binary_dilation(case.label > 0, iterations=3)
        assert case.pet[outside].max() > 5.0  # brain
        neck = outside.copy()
        neck[int(0.7 * SHAPE[0]):] = False  # below the cranium
        neck_hot += case.pet[neck].max() > 3.0  # glands, tonsils
        fat = (case.ct > -250) & (case.ct < -60)
        hot_fat += np.count_nonzero(neck & fat & (case.pet > 2.5)) >= 10  # brown fat
    assert neck_hot >= 0.8 * len(cohort)
    assert 0.1 * len(cohort) <= hot_fat <= 0.6 * len(cohort)


def test_centres_shift_the_distribution(cohort):
    def stats(centre):
        cases = [c for c in cohort if c.centre == centre]
        noise = np.mean([_corner_air(c.ct).std() for c in cases])
        air = np.mean([_corner_air(c.ct).mean() for c in cases])
        brain_suv = np.mean([np.percentile(c.pet[-3:], 90) for c in cases])
        return noise, air, brain_suv

    mda, hmr = stats("MDA"), stats("HMR")
    assert hmr[0] > mda[0] * 1.5  # noisier CT
    assert hmr[1] > mda[1] + 10.0  # CT calibration offset
    assert hmr[2] < mda[2] * 0.9  # lower PET calibration
    assert CENTRE_PARAMS["MDA"].tumour_scale > CENTRE_PARAMS["HMR"].tumour_scale


def test_anatomy_scales_with_the_grid():
    coarse = generate_cohort(seed=2, shape=(24, 24, 24), case_scale=0.01, centres=["CHUS"])
    fine = generate_cohort(seed=2, shape=(48, 48, 48), case_scale=0.01, centres=["CHUS"])
    for a, b in zip(coarse, fine):
        fraction_a, fraction_b = (np.mean(c.label == 1) for c in (a, b))
        assert 0.6 < fraction_a / fraction_b < 1.6
        centroid_a = (np.argwhere(a.label == 1).mean(0) + 0.5) / 24
        centroid_b = (np.argwhere(b.label == 1).mean(0) + 0.5) / 48
        assert np.abs(centroid_a - centroid_b).max() < 0.06
        assert (a.clinical, a.relapse) == (b.clinical, b.relapse)


def test_clinical_fields_have_centre_dependent_missingness(survival_cohort):
    def missing_rate(centre, key):
        cases = [c for c in survival_cohort if c.centre == centre]
        return np.mean([c.clinical[key] is None for c in cases])

    assert missing_rate("MDA", "tobacco") > 0.7 > missing_rate("CHUM", "tobacco")
    assert missing_rate("MDA", "hpv_status") < 0.2 < missing_rate("CHUP", "hpv_status")
    for case in survival_cohort:
        clinical = case.clinical
        assert 30 <= clinical["age"] <= 90 and clinical["gender"] in (0, 1)
        assert clinical["surgery"] in (0, 1) and clinical["chemotherapy"] in (0, 1)
        assert clinical["hpv_status"] in (0, 1, None)
        assert clinical["performance_status"] in (0, 1, 2, 3, 4, None)


def test_survival_risk_rises_with_tumour_burden_and_falls_with_hpv(survival_cohort):
    volume = np.array([np.count_nonzero(c.label) for c in survival_cohort])
    relapse = np.array([c.relapse for c in survival_cohort])
    rfs = np.array([c.rfs_days for c in survival_cohort])
    assert set(relapse) == {0, 1} and 0.15 < relapse.mean() < 0.6 and rfs.min() > 0
    large = volume > np.median(volume)
    assert relapse[large].mean() > relapse[~large].mean() + 0.1
    assert _concordance(volume, rfs, relapse) > 0.6
    hpv = np.array([c.clinical["hpv_status"] for c in survival_cohort], dtype=object)
    assert relapse[hpv == 1].mean() < relapse[hpv == 0].mean() - 0.05


def test_unknown_centre_is_a_one_line_user_error():
    with pytest.raises(UserError) as info:
        generate_cohort(centres=["CHUM", "XYZ"])
    message = str(info.value)
    assert "XYZ" in message and all(c in message for c in CENTRES) and "\n" not in message


def test_test_cohort_is_drawn_apart_from_the_training_cohort():
    train = generate_cohort(seed=3, shape=(16,) * 3, case_scale=0.05, centres=["HMR", "CHUV"])
    test = generate_test_cohort(seed=3, shape=(16,) * 3, per_centre=4, centres=["HMR", "CHUV"])
    assert [c.case_id for c in test] == [f"{centre}-T{k:03d}" for centre in ("HMR", "CHUV") for k in range(1, 5)]
    assert all(not np.array_equal(a.ct, b.ct) for a in test for b in train)  # other generators, other patients
    for a, b in zip(test, generate_test_cohort(seed=3, shape=(16,) * 3, per_centre=4, centres=["HMR", "CHUV"])):
        _assert_same(a, b)
    with pytest.raises(UserError, match="per_centre must be a positive integer, got 0"):
        generate_test_cohort(per_centre=0)


def test_without_shift_every_centre_has_one_acquisition():
    def corner_stats(cases):
        air = [_corner_air(c.ct) for c in cases]
        return np.mean([a.mean() for a in air]), np.mean([a.std() for a in air])

    shifted = generate_test_cohort(seed=0, shape=SHAPE, per_centre=6, centres=["HMR"])
    same = generate_test_cohort(seed=0, shape=SHAPE, per_centre=6, centres=["HMR"], shift=False)
    chum = generate_test_cohort(seed=0, shape=SHAPE, per_centre=6, centres=["CHUM"])
    (air_hmr, noise_hmr), (air_same, noise_same), (air_chum, noise_chum) = map(corner_stats, (shifted, same, chum))
    assert air_hmr > air_chum + 10.0 and noise_hmr > noise_chum * 1.4  # HMR's offset and noise by default
    assert abs(air_same - air_chum) < 3.0 and abs(noise_same - noise_chum) < 0.15 * noise_chum  # CHUM's without


def test_load_cases_gives_the_built_in_test_cohort_and_keys_the_no_shift_cohort_apart():
    data = load_cases("synthetic", 16, seed=0, synthetic_scale=0.01, test_cases_per_centre=3)
    assert data.test is not None and len(data.test) == 3 * len(CENTRES)
    assert {c.case_id for c in data.test}.isdisjoint(c.case_id for c in data.cases)
    noshift = load_cases("synthetic", 16, seed=0, synthetic_scale=0.01, synthetic_shift=False,
                         test_cases_per_centre=3)
    assert noshift.key == data.key + ":noshift"
