"""Seeded per-centre train / validation / test split of case records."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from pemma_cl.data.records import CENTRES, CaseRecord

#: Share of each centre's cases held out as its test set (PEMMA's 80/20 split).
TEST_FRACTION = 0.2
#: Share of each centre's cases held out for validation (tuning and selection).
VAL_FRACTION = 0.15
#: What a run may report on: ``test`` (the reported numbers) or ``val`` (tuning runs).
EVAL_SPLITS: tuple[str, ...] = ("test", "val")


@dataclass(frozen=True)
class CaseSplit:
    """The three disjoint parts of a cohort, each ordered by case id.

    Attributes:
        train: cases every run trains on.
        val: validation cases: held out of training by runs that report on them (``eval_on="val"``, the
            runs that choose recipes and settings); runs that report on ``test`` train on them too.
        test: cases that only ever produce reported numbers; never trained on, never used to choose anything.
    """

    train: list[CaseRecord]
    val: list[CaseRecord]
    test: list[CaseRecord]

    def for_evaluation_on(self, eval_on: str) -> tuple[list[CaseRecord], list[CaseRecord]]:
        """``(training cases, evaluated cases)`` of a run that reports on ``eval_on`` (``test`` or ``val``)."""
        if eval_on == "test":
            return _by_id(self.train + self.val), self.test
        if eval_on == "val":
            return self.train, self.val
        raise ValueError(f"eval_on must be one of {EVAL_SPLITS}, got {eval_on!r}")


def split_cases(cases: list[CaseRecord], seed: int) -> CaseSplit:
    """Split each centre's cases into train, validation and test, reproducibly.

    Per centre, a seeded permutation gives the first ``round(TEST_FRACTION * n)`` cases (at least one when
    ``n >= 2``) to test, the next ``round(VAL_FRACTION * n)`` (at least one when ``n >= 3``) to validation
    and the rest to train; at least one case always stays in train. The test part is the same as a plain
    80/20 split with that seed.
    """
    by_centre: dict[str, list[CaseRecord]] = defaultdict(list)
    for case in cases:
        by_centre[case.centre].append(case)
    train, val, test = [], [], []
    for centre, members in sorted(by_centre.items()):
        members = sorted(members, key=lambda c: c.case_id)
        n = len(members)
        centre_index = CENTRES.index(centre) if centre in CENTRES else len(CENTRES)
        order = np.random.default_rng([seed, centre_index]).permutation(n)
        n_test = min(max(1, round(TEST_FRACTION * n)), n - 1) if n >= 2 else 0
        n_val = min(max(1, round(VAL_FRACTION * n)), n - n_test - 1) if n >= 3 else 0
        test += [members[i] for i in order[:n_test]]
        val += [members[i] for i in order[n_test:n_test + n_val]]
        train += [members[i] for i in order[n_test + n_val:]]
    return CaseSplit(train=_by_id(train), val=_by_id(val), test=_by_id(test))


def _by_id(cases: list[CaseRecord]) -> list[CaseRecord]:
    return sorted(cases, key=lambda c: c.case_id)
