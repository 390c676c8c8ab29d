"""Seeded per-centre train/test split of case records."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from pemma_cl.data.records import CENTRES, CaseRecord


def split_cases(cases: list[CaseRecord], seed: int, test_fraction: float = 0.2) -> tuple[list[CaseRecord], list[CaseRecord]]:
    """Split each centre's cases into train and held-out test (PEMMA's 80/20), reproducibly.

    Every centre with at least two cases keeps at least one case on each side.

    Returns:
        (train, test), each ordered by case id.
    """
    by_centre: dict[str, list[CaseRecord]] = defaultdict(list)
    for case in cases:
        by_centre[case.centre].append(case)
    train, test = [], []
    for centre, members in sorted(by_centre.items()):
        members = sorted(members, key=lambda c: c.case_id)
        centre_index = CENTRES.index(centre) if centre in CENTRES else len(CENTRES)
        order = np.random.default_rng([seed, centre_index]).permutation(len(members))
        n_test = min(max(1, round(test_fraction * len(members))), len(members) - 1) if len(members) > 1 else 0
        test += [members[i] for i in order[:n_test]]
        train += [members[i] for i in order[n_test:]]
    return sorted(train, key=lambda c: c.case_id), sorted(test, key=lambda c: c.case_id)
