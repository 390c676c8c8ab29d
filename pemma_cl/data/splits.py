"""Seeded per-centre train / validation / test split of case records."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pemma_cl.data.description import CENTRE_COLUMN
from pemma_cl.data.hecktor.layout import CENTRES as HECKTOR_CENTRES
from pemma_cl.data.records import CaseRecord

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


def split_cases(cases: list[CaseRecord], seed: int, groups: Sequence[str] = (CENTRE_COLUMN,),
                with_test: bool = True) -> CaseSplit:
    """Split each group's cases into train, validation and test, reproducibly.

    A group is one combination of the values of the ``groups`` columns (one centre; with ``("centre", "tracer")``,
    one centre's cases of one tracer). Per group, a seeded permutation (:func:`group_stream`) gives the first
    ``round(TEST_FRACTION * n)`` cases (at least one when ``n >= 2``) to test, the next ``round(VAL_FRACTION * n)``
    (at least one when ``n >= 3``) to validation and the rest to train; at least one case always stays in train. The
    test part is the same as a plain 80/20 split with that seed. ``with_test=False`` (a source with test cases of its
    own) gives no case to test: validation is drawn as above and every other case trains.
    """
    by_group: dict[tuple[str, ...], list[CaseRecord]] = defaultdict(list)
    for case in cases:
        by_group[tuple(str(case.group(column)) for column in groups)].append(case)
    train, val, test = [], [], []
    for group, members in sorted(by_group.items()):
        members = sorted(members, key=lambda c: c.case_id)
        n = len(members)
        order = np.random.default_rng([seed, group_stream(group)]).permutation(n)
        n_test = min(max(1, round(TEST_FRACTION * n)), n - 1) if n >= 2 and with_test else 0
        n_val = min(max(1, round(VAL_FRACTION * n)), n - n_test - 1) if n >= 3 else 0
        test += [members[i] for i in order[:n_test]]
        val += [members[i] for i in order[n_test:n_test + n_val]]
        train += [members[i] for i in order[n_test + n_val:]]
    return CaseSplit(train=_by_id(train), val=_by_id(val), test=_by_id(test))


def group_stream(group: tuple[str, ...]) -> int:
    """The random stream of a group's split: a HECKTOR 2022 centre alone keeps its position in the challenge's list
    (the splits every stored run was made with); any other group a number from a hash of its values, so that two
    groups never share a stream."""
    if len(group) == 1 and group[0] in HECKTOR_CENTRES:
        return HECKTOR_CENTRES.index(group[0])
    digest = hashlib.sha256("\x1f".join(group).encode()).digest()
    return len(HECKTOR_CENTRES) + int.from_bytes(digest[:6], "big")


def split_counts(split: CaseSplit, groups: Sequence[str] = (CENTRE_COLUMN,)) -> dict[str, dict[str, int]]:
    """``{group: {"train": n, "val": n, "test": n}}``: how many cases each part of the split has per group (groups
    named by their values joined with ``/``)."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"train": 0, "val": 0, "test": 0})
    for part in ("train", "val", "test"):
        for case in getattr(split, part):
            counts["/".join(str(case.group(column)) for column in groups)][part] += 1
    return {group: dict(parts) for group, parts in sorted(counts.items())}


def _by_id(cases: list[CaseRecord]) -> list[CaseRecord]:
    return sorted(cases, key=lambda c: c.case_id)
