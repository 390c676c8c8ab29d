"""The built-in cohort's PET tracers (FDG, PSMA) and the tracer-arrival stream."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import ndimage

from pemma_cl.core.errors import UserError
from pemma_cl.data.sources import SYNTHETIC_DESCRIPTION, load_cases
from pemma_cl.data.splits import split_cases
from pemma_cl.data.synthetic.cohort import _generate_case, generate_cohort, generate_test_cohort
from pemma_cl.data.synthetic.tracers import TRACER_PARAMS, tracer_count
from pemma_cl.streams.selection import case_groups, check_selection
from pemma_cl.streams.spec import StreamSpec, benchmarks_dir, load_stream

#: FDG cases of the generator as committed before it had tracers (main 76511be), at 16^3: the id, the label's
#: SHA-256 (first 16 hex digits), the float64 sums of CT and PET, CT[8, 8, 8], PET[12, 8, 8], the clinical record,
#: RFS days and relapse. The tracers must leave every FDG case as it was.
BEFORE_TRACERS = [
    ("HMR-001", "9b7b0e8d3b3c0b97", -2428769.6332574487, 2336.796096899152, 673.3701782226562, 1.5370477437973022,
     {"age": 65, "gender": 1, "weight": 116.7, "tobacco": 1, "alcohol": 1, "performance_status": 0,
      "hpv_status": None, "surgery": 0, "chemotherapy": 1}, 694.0, 0),
    ("HMR-005", "a036be2af95ccd31", -2544685.6252765134, 2441.049152501487, 39.22745132446289, 0.8099192976951599,
     {"age": 58, "gender": 0, "weight": None, "tobacco": 0, "alcohol": 0, "performance_status": 2,
      "hpv_status": None, "surgery": 0, "chemotherapy": 1}, 935.0, 0),
    ("MDA-004", "d18e7dde2641d439", -2932806.498079926, 2362.323050928409, 717.108154296875, 1.2586596012115479,
     {"age": 66, "gender": 0, "weight": 40.0, "tobacco": None, "alcohol": None, "performance_status": None,
      "hpv_status": 1, "surgery": 0, "chemotherapy": 1}, 1884.0, 0),
    ("CHUV-T001", "a03fc8654491596e", -2763104.56804657, 3434.3856294387415, 729.5951538085938, 1.3739365339279175,
     {"age": 60, "gender": 0, "weight": 62.0, "tobacco": None, "alcohol": None, "performance_status": 0,
      "hpv_status": 1, "surgery": 0, "chemotherapy": 0}, 1477.0, 0),
]


@pytest.fixture(scope="module")
def pairs():
    """Twelve patients (the same generator key) imaged with FDG and with PSMA: 32^3, no centre shift."""
    return [tuple(_generate_case([5, 0, k], f"CHUM-{k:03d}", "CHUM", TRACER_PARAMS[name], (32,) * 3, 4.0, False)
                  for name in ("FDG", "PSMA")) for k in range(1, 13)]


def _box(pet: np.ndarray, point: tuple[float, float, float]) -> np.ndarray:
    """The 3^3 voxels of a 32^3 volume around a point in grid coordinates ([-1, 1] along z, y, x)."""
    z, y, x = (int(round((c + 1) / 2 * 32 - 0.5)) for c in point)
    return pet[z - 1:z + 2, y - 1:y + 2, x - 1:x + 2]


def _mean_of_pair(pet: np.ndarray, point: tuple[float, float, float]) -> float:
    """Mean PET of the left and right boxes of a symmetric pair of organs (``point`` on the left), NaNs left out."""
    z, y, x = point
    return float(np.nanmean([_box(pet, (z, y, side * x)) for side in (-1.0, 1.0)]))


def test_fdg_cases_are_those_of_the_generator_before_tracers() -> None:
    cases = generate_cohort(seed=0, shape=(16,) * 3, case_scale=0.01, centres=["HMR", "MDA"])[::4]
    cases += generate_test_cohort(seed=0, shape=(16,) * 3, per_centre=1, centres=["CHUV"])
    assert [c.case_id for c in cases] == [row[0] for row in BEFORE_TRACERS]
    for case, (_, label, ct_sum, pet_sum, ct_voxel, pet_voxel, clinical, rfs, relapse) in zip(cases, BEFORE_TRACERS):
        assert hashlib.sha256(case.label.tobytes()).hexdigest()[:16] == label
        assert (case.clinical, case.rfs_days, case.relapse) == (clinical, rfs, relapse)
        # Sums and voxels to float32 precision: any extra random draw would change them by far more.
        assert case.ct.astype(np.float64).sum() == pytest.approx(ct_sum, rel=1e-6)
        assert case.pet.astype(np.float64).sum() == pytest.approx(pet_sum, rel=1e-6)
        assert (case.ct[8, 8, 8], case.pet[12, 8, 8]) == pytest.approx((ct_voxel, pet_voxel), rel=1e-6)
        assert case.groups == {"tracer": "FDG"} and case.group("tracer") == "FDG"


def test_a_tracer_changes_only_the_pet(pairs) -> None:
    for fdg, psma in pairs:
        for field in ("ct", "label"):
            assert np.array_equal(getattr(fdg, field), getattr(psma, field))
        assert (fdg.clinical, fdg.rfs_days, fdg.relapse, fdg.truth) == (
            psma.clinical, psma.rfs_days, psma.relapse, psma.truth)
        assert not np.array_equal(fdg.pet, psma.pet)
        assert psma.groups == {"tracer": "PSMA"}


def test_psma_has_its_own_physiological_uptake(pairs) -> None:
    def uptake(case) -> dict[str, float]:
        outside = ~ndimage.binary_dilation(case.label > 0, iterations=2)
        pet = np.where(outside, case.pet, np.nan)  # tumours left out
        return {"brain": np.nanmean(pet[-3:][case.ct[-3:] > -500]),
                "parotid": _mean_of_pair(pet, (0.42, 0.02, -0.50)),
                "submandibular": _mean_of_pair(pet, (-0.12, -0.28, -0.34)),
                "lacrimal": _mean_of_pair(pet, (0.52, -0.40, -0.31)),
                "tonsil": _mean_of_pair(pet, (0.18, -0.19, -0.21))}

    for fdg, psma in pairs:
        f, p = uptake(fdg), uptake(psma)
        assert f["brain"] > 4.0 and p["brain"] < 0.6  # FDG's brain is hot, PSMA's almost cold
        assert p["parotid"] > max(5.0, 2.0 * f["parotid"])  # PSMA's salivary glands are its hottest organs
        assert p["submandibular"] > max(4.0, 1.25 * f["submandibular"])
        assert p["lacrimal"] > 1.25 * f["lacrimal"]  # small glands, blurred: hot, not as hot
        assert f["tonsil"] > 1.5 * p["tonsil"] and p["tonsil"] < 1.5  # FDG's lymphoid tonsils, hardly any PSMA


def test_psma_tumours_are_as_hot_but_cooler_in_the_core(pairs) -> None:
    ratios, cores = [], []
    for fdg, psma in pairs:
        tumour = fdg.label == 1
        ratios.append(psma.pet[tumour].mean() / fdg.pet[tumour].mean())
        core = ndimage.binary_erosion(tumour)
        if core.any():
            rim = tumour & ~core
            cores.append([case.pet[core].mean() / case.pet[rim].mean() for case in (fdg, psma)])
    assert 0.6 < np.mean(ratios) < 0.9  # lower, but of the same order
    assert len(cores) >= 6 and all(psma < fdg for fdg, psma in cores)


def test_psma_cases_have_their_own_generators_ids_and_counts() -> None:
    both = generate_cohort(seed=0, shape=(16,) * 3, case_scale=0.18, centres=["HMR", "MDA"], tracers=["PSMA", "FDG"])
    fdg = generate_cohort(seed=0, shape=(16,) * 3, case_scale=0.18, centres=["HMR", "MDA"])
    ids = [c.case_id for c in both]
    assert ids == ([f"HMR-{k:03d}" for k in range(1, 6)] + [f"HMR-P{k:03d}" for k in range(1, 6)]
                   + [f"MDA-{k:03d}" for k in range(1, 37)] + [f"MDA-P{k:03d}" for k in range(1, 19)])
    assert [c.group("tracer") for c in both] == ["FDG"] * 5 + ["PSMA"] * 5 + ["FDG"] * 36 + ["PSMA"] * 18
    for a, b in zip([c for c in both if c.group("tracer") == "FDG"], fdg):  # the FDG cases are unchanged
        assert a.case_id == b.case_id and np.array_equal(a.pet, b.pet) and np.array_equal(a.ct, b.ct)
    psma = {c.case_id: c for c in both if c.group("tracer") == "PSMA"}
    expected = _generate_case([0, 4, 3, 2], "MDA-P003", "MDA", TRACER_PARAMS["PSMA"], (16,) * 3, 4.0, True)
    assert np.array_equal(psma["MDA-P003"].pet, expected.pet)  # generator [seed, centre, case, 2]
    assert not any(np.array_equal(c.ct, p.ct) for c in fdg for p in psma.values())  # other patients

    test = generate_test_cohort(seed=0, shape=(16,) * 3, per_centre=25, centres=["HMR"], tracers=["FDG", "PSMA"])
    assert [c.case_id for c in test] == [f"HMR-T{k:03d}" for k in range(1, 26)] + [f"HMR-PT{k:03d}"
                                                                                   for k in range(1, 14)]
    expected = _generate_case([0, 6, 13, 3], "HMR-PT013", "HMR", TRACER_PARAMS["PSMA"], (16,) * 3, 4.0, True)
    assert np.array_equal(test[-1].pet, expected.pet)  # generator [seed, centre, case, 3]


def test_a_tracer_has_its_share_of_a_centres_cases() -> None:
    psma, fdg = TRACER_PARAMS["PSMA"], TRACER_PARAMS["FDG"]
    assert [tracer_count(psma, n) for n in (36, 25, 13, 10, 5, 3, 1)] == [18, 13, 7, 5, 5, 3, 1]
    assert [tracer_count(fdg, n) for n in (36, 25, 5, 3, 1)] == [36, 25, 5, 3, 1]


@pytest.mark.parametrize(("tracers", "message"), [
    (["FDG", "XYZ"], "tracers: unknown tracer 'XYZ'; valid tracers: FDG, PSMA"),
    (["PSMA", "PSMA"], "tracers: expected distinct tracers from [FDG, PSMA], got ['PSMA', 'PSMA']"),
    ([], "tracers: expected distinct tracers from [FDG, PSMA], got []"),
])
def test_unknown_or_repeated_tracers_are_one_line_errors(tracers, message) -> None:
    with pytest.raises(UserError) as info:
        generate_cohort(shape=(8,) * 3, centres=["HMR"], tracers=tracers)
    assert str(info.value) == message


def test_load_cases_keys_the_tracers_only_when_not_fdg_alone() -> None:
    fdg = load_cases("synthetic", 8, seed=0, synthetic_scale=0.01, test_cases_per_centre=2)
    assert fdg.key == "synthetic-v1:size8:scale0.01:seed0"  # the built-in cohort keeps its key
    assert SYNTHETIC_DESCRIPTION.groups == ("centre", "tracer")
    both = load_cases("synthetic", 8, seed=0, synthetic_scale=0.01, test_cases_per_centre=2,
                      synthetic_tracers=("PSMA", "FDG"))
    assert both.key == fdg.key + ":tracers-FDG+PSMA"
    assert {c.group("tracer") for c in both.cases} == {c.group("tracer") for c in both.test} == {"FDG", "PSMA"}
    assert len(both.test) == 2 * 7 * 2  # two test cases of each tracer at each centre (fewer than 5 FDG: as many)


def test_tracers_stream_selects_fdg_then_psma() -> None:
    stream = load_stream("tracers")
    assert stream.synthetic_tracers == ("FDG", "PSMA")
    assert stream.selection_columns == ("centre", "tracer")
    assert stream.pretrain.where == (("tracer", ("FDG",)),) and stream.pretrain.modalities == ("ct",)
    assert [(e.name, e.centres, e.where) for e in stream.experiences] == [
        ("MDA-FDG", ("MDA",), (("tracer", ("FDG",)),)), ("HGJ-FDG", ("HGJ",), (("tracer", ("FDG",)),)),
        ("HMR-FDG", ("HMR",), (("tracer", ("FDG",)),)), ("MDA-PSMA", ("MDA",), (("tracer", ("PSMA",)),)),
        ("CHUM-PSMA", ("CHUM",), (("tracer", ("PSMA",)),))]
    assert load_stream("centers").synthetic_tracers == ("FDG",)
    # The stream's selections exist in its cohort (and its PSMA cases are absent from the default cohort).
    data = load_cases("synthetic", 8, seed=0, synthetic_scale=0.01, test_cases_per_centre=2,
                      synthetic_tracers=stream.synthetic_tracers)
    split = split_cases(data.cases, 0, stream.selection_columns)
    check_selection(stream, *case_groups(split.train + data.test))
    default = load_cases("synthetic", 8, seed=0, synthetic_scale=0.01, test_cases_per_centre=2)
    with pytest.raises(UserError, match=r"experiences\[3\]\.where\.tracer: 'PSMA' is not a value of column 'tracer'"):
        check_selection(stream, *case_groups(default.cases))


def test_synthetic_tracers_round_trip_and_bad_values(tmp_path: Path) -> None:
    stream = load_stream("tracers")
    stored = {**stream.__dict__, "pretrain": stream.pretrain.__dict__,
              "experiences": [e.__dict__ for e in stream.experiences], "path": str(stream.path)}
    assert StreamSpec.from_dict(stored).synthetic_tracers == ("FDG", "PSMA")
    assert StreamSpec.from_dict({k: v for k, v in stored.items() if k != "synthetic_tracers"}).synthetic_tracers == (
        "FDG",)  # a run stored before the key
    raw = yaml.safe_load((benchmarks_dir() / "tracers.yaml").read_text())
    for value, message in (("PSMA", "synthetic_tracers: expected a non-empty list of distinct values, got 'PSMA'"),
                           (["FDG", "F18"], "synthetic_tracers: unknown tracer 'F18'; valid tracers: FDG, PSMA")):
        path = tmp_path / "tracers.yaml"
        path.write_text(yaml.safe_dump({**raw, "synthetic_tracers": value}))
        with pytest.raises(UserError) as info:
            load_stream(str(path))
        assert str(info.value) == f"{path}: {message}"
