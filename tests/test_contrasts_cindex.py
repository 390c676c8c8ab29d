"""The two C-index claims' primary contrasts: declared in the contrast file, valued per seed from a stored
``modalities`` run's prognosis rows, refused when their input is not their claim's."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from pemma_cl.core.errors import UserError
from pemma_cl.report.claim_rows import CINDEX_EHR_CLAIM, CINDEX_PET_CLAIM, CLAIM_INPUTS
from pemma_cl.report.contrasts import load_primary_contrasts, seed_prognosis, seed_values
from pemma_cl.report.prognosis import cindex_gain

MODALITIES = Path(__file__).resolve().parents[1] / "results" / "reference" / "modalities"


def own_cindex(seed: int, strategy: str, task: str) -> float:
    """Read by hand from the seed's prognosis.csv: the C-index on prognosis task ``task`` (its name) right after
    training on it."""
    with open(MODALITIES / "seeds" / f"seed{seed}" / "prognosis.csv", newline="") as handle:
        [row] = [r for r in csv.DictReader(handle) if r["strategy"] == strategy and r["eval_experience_name"] == task
                 and r["trained_through_name"] == task]
    return float(row["cindex"])


def test_the_cindex_contrasts_are_declared_for_the_two_claims() -> None:
    declared = {c.name: c for c in load_primary_contrasts()}
    pet, ehr = declared["cindex-gain-pet"], declared["cindex-gain-pet-ehr"]
    assert (pet.claim, pet.stream, pet.strategy, pet.reference, pet.metric, pet.input, pet.margin, pet.direction) == (
        CINDEX_PET_CLAIM, "modalities", "pemma-lora", None, "cindex_gain", "ct+pet", -0.05, "non_inferior")
    assert (ehr.claim, ehr.input, ehr.margin) == (CINDEX_EHR_CLAIM, "ct+pet+ehr", -0.115)
    # the least absolute gain each relative one implies: the claim's share of a chance model's C-index, 0.5
    assert -pet.margin == pytest.approx(0.10 * 0.5) and -ehr.margin == pytest.approx(0.23 * 0.5)
    assert pet.holds(0.051) and not pet.holds(0.049) and ehr.holds(0.116) and not ehr.holds(0.114)


def test_the_cindex_contrasts_are_valued_from_the_stored_modalities_run() -> None:
    declared = {c.name: c for c in load_primary_contrasts()}
    for name, task in (("cindex-gain-pet", "RFS-CTPET"), ("cindex-gain-pet-ehr", "RFS-EHR")):
        by_hand = {seed: own_cindex(seed, "pemma-lora", task) - own_cindex(seed, "pemma-lora", "RFS-CT")
                   for seed in (0, 1, 2)}
        assert seed_values(MODALITIES, declared[name]) == pytest.approx(by_hand, abs=1e-12)
    # seed 0, read off the file: 0.594945402101504 (CT+PET) and 0.6553121351555525 (EHR) against 0.5073140581004052
    assert seed_values(MODALITIES, declared["cindex-gain-pet"])[0] == pytest.approx(0.594945402101504
                                                                                     - 0.5073140581004052)
    assert seed_values(MODALITIES, declared["cindex-gain-pet-ehr"])[0] == pytest.approx(0.6553121351555525
                                                                                         - 0.5073140581004052)


def test_a_gain_is_undefined_without_its_two_tasks() -> None:
    rows = seed_prognosis(MODALITIES, 0)
    assert math.isnan(cindex_gain(rows, "pemma-lora", "ct+ehr", "ct"))  # the stream has no CT+EHR task
    assert math.isnan(cindex_gain(rows, "no-such-strategy", "ct+pet", "ct"))
    assert seed_prognosis(MODALITIES, 99) is None


def test_the_claims_table_weighs_the_cindex_contrasts_on_the_stored_run() -> None:
    from pemma_cl.report.claims import check_claims, load_run

    rows = check_claims([load_run(MODALITIES)], {"lora": 7.2, "dora": 7.3})
    primary = {r.contrast: r for r in rows if r.contrast.startswith("cindex")}
    assert set(primary) == {"cindex-gain-pet", "cindex-gain-pet-ehr"}
    assert primary["cindex-gain-pet"].verdict == "3 seeds: indicative"
    gains = [own_cindex(s, "pemma-lora", "RFS-CTPET") - own_cindex(s, "pemma-lora", "RFS-CT") for s in (0, 1, 2)]
    assert f"mean {sum(gains) / 3:+.3f} over 3 seeds" in primary["cindex-gain-pet"].measured
    # the secondary rows of the same claims carry the same claim text as the contrasts
    secondary = {r.claim for r in rows if not r.contrast and r.claim.startswith("C-index")}
    assert secondary == {CINDEX_PET_CLAIM, CINDEX_EHR_CLAIM}


@pytest.mark.parametrize("fields, message", [
    ("input: ct+ehr", f"its claim '{CINDEX_PET_CLAIM}' names input ct+pet, got 'ct+ehr'"),
    ("input: ctpet", "field 'input': expected one of [ct+pet, ct+ehr, ct+pet+ehr], got 'ctpet'"),
    ("input: ct+pet, reference: early-fusion", "a cindex_gain contrast compares two tasks of one strategy"),
    ("input: ct+pet, structure: GTVp", "field 'structure': expected one of [aggregated], got 'GTVp'"),
])
def test_a_cindex_contrast_with_another_input_or_shape_is_refused(tmp_path: Path, fields: str, message: str) -> None:
    entry = {"name": "g", "claim": f"'{CINDEX_PET_CLAIM}'", "stream": "modalities", "strategy": "pemma-lora",
             "reference": "null", "metric": "cindex_gain", "margin": -0.05, "direction": "non_inferior"}
    entry |= dict(field.split(": ") for field in fields.split(", "))
    path = tmp_path / "primary.yaml"
    path.write_text("- {" + ", ".join(f"{key}: {value}" for key, value in entry.items()) + "}\n")
    with pytest.raises(UserError, match="primary.yaml") as caught:
        load_primary_contrasts(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert CLAIM_INPUTS[CINDEX_PET_CLAIM] == ("ct+pet",)
