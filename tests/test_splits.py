"""Train / validation / test per centre, what each kind of run trains on and reports, and what a dataset withholds."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from pemma_cl.data.dataset import CaseDataset
from pemma_cl.data.records import CaseRecord
from pemma_cl.data.splits import split_cases


def cohort(sizes: dict[str, int]) -> list[CaseRecord]:
    empty = np.zeros((2, 2, 2), dtype=np.float32)
    return [CaseRecord(f"{centre}-{i:03d}", centre, empty, empty, empty.astype(np.uint8), (1.0, 1.0, 1.0))
            for centre, n in sizes.items() for i in range(n)]


SIZES = {"MDA": 36, "CHUM": 10, "HMR": 5, "HGJ": 3, "CHUV": 2, "CHUP": 1}


def test_parts_are_disjoint_cover_the_cohort_and_follow_the_fractions() -> None:
    cases = cohort(SIZES)
    split = split_cases(cases, seed=0)
    ids = [c.case_id for part in (split.train, split.val, split.test) for c in part]
    assert sorted(ids) == sorted(c.case_id for c in cases) and len(set(ids)) == len(ids)
    count = {name: Counter(c.centre for c in part) for name, part in (("train", split.train), ("val", split.val),
                                                                       ("test", split.test))}
    # (train, val, test) per centre: test round(0.2 n), val round(0.15 n), at least one train case.
    expected = {"MDA": (24, 5, 7), "CHUM": (6, 2, 2), "HMR": (3, 1, 1), "HGJ": (1, 1, 1), "CHUV": (1, 0, 1),
                "CHUP": (1, 0, 0)}
    for centre, (n_train, n_val, n_test) in expected.items():
        assert (count["train"][centre], count["val"][centre], count["test"][centre]) == (n_train, n_val, n_test), centre


def test_a_source_with_its_own_test_cases_trains_on_every_other_case() -> None:
    split = split_cases(cohort(SIZES), seed=0, with_test=False)
    assert split.test == []
    count = {name: Counter(c.centre for c in part) for name, part in (("train", split.train), ("val", split.val))}
    # val round(0.15 n) as before; the test share returns to training: MDA 36 = 31 + 5, CHUV 2 = 2 + 0.
    expected = {"MDA": (31, 5), "CHUM": (8, 2), "HMR": (4, 1), "HGJ": (2, 1), "CHUV": (2, 0), "CHUP": (1, 0)}
    for centre, (n_train, n_val) in expected.items():
        assert (count["train"][centre], count["val"][centre]) == (n_train, n_val), centre


def test_groups_of_several_columns_get_streams_of_their_own() -> None:
    cases = cohort({"north": 20})
    for i, case in enumerate(cases):
        case.groups["tracer"] = "FDG" if i % 2 else "PSMA"
    split = split_cases(cases, seed=0, groups=("centre", "tracer"))
    assert Counter(c.group("tracer") for c in split.test) == {"FDG": 2, "PSMA": 2}
    # two unknown centres no longer share one random stream: their test picks differ in position
    other = cohort({"east": 10, "west": 10})
    picks = {centre: sorted(int(c.case_id[-3:]) for c in split_cases(other, seed=3).test if c.centre == centre)
             for centre in ("east", "west")}
    assert picks["east"] != picks["west"]


def test_the_split_is_seeded() -> None:
    cases = cohort(SIZES)
    assert split_cases(cases, 0) == split_cases(list(reversed(cases)), 0)
    assert split_cases(cases, 0).test != split_cases(cases, 1).test


def test_what_a_run_trains_on_and_reports() -> None:
    split = split_cases(cohort(SIZES), seed=0)
    train, reported = split.for_evaluation_on("test")
    assert reported == split.test and sorted(train, key=lambda c: c.case_id) == train
    assert {c.case_id for c in train} == {c.case_id for c in split.train + split.val}
    train, reported = split.for_evaluation_on("val")
    assert reported == split.val and train == split.train  # a tuning run never trains on its validation cases
    with pytest.raises(ValueError, match="eval_on"):
        split.for_evaluation_on("train")


def test_a_missing_modality_is_absent_from_the_data_not_only_from_the_mask(tiny_cohort) -> None:
    cases = tiny_cohort[:2]
    both, ct_only = CaseDataset(cases, ("ct", "pet")), CaseDataset(cases, ("ct",))
    for i in range(2):
        (x, y, mask, _, _), (x_ct, y_ct, mask_ct, _, _) = both[i], ct_only[i]
        assert mask.tolist() == [True, True] and mask_ct.tolist() == [True, False]
        assert x[1].abs().max() > 0 and torch.equal(x_ct[1], torch.zeros_like(x_ct[1]))
        assert torch.equal(x_ct[0], x[0]) and torch.equal(y_ct, y)
    with pytest.raises(ValueError, match="non-empty subset"):
        CaseDataset(cases, ())
