"""The alpha ledger (``benchmarks/contrasts/ledger.yaml``, :mod:`pemma_cl.report.ledger`): it refuses trials beyond
its family level, its familywise statement is its sum, and its past trials are those of the stored decide records."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from pemma_cl.core.errors import UserError
from pemma_cl.stats.sequential import Z_MAPPED, p_bound
from pemma_cl.report.contrasts import as_recorded, load_primary_contrasts
from pemma_cl.report.ledger import load_ledger

ROOT = Path(__file__).resolve().parent.parent
SEQUENTIAL_ERROR = ROOT / "results" / "benchmarks" / "sequential_error.json"


def _trial(alpha: float, outcome: str = "planned", seeds: str = "[0, 4]", looks: str = "[3, 5]") -> str:
    bounds = "t-calibrated" if outcome == "planned" else "z-mapped"
    return (f"  - {{contrast: c, stream: s, definition: d, bounds: {bounds}, seeds: {seeds}, looks: {looks}, "
            f"alpha: {alpha}, spent: {alpha}, outcome: {outcome}, run: null}}\n")


def test_a_trial_beyond_the_family_level_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "ledger.yaml"
    path.write_text("family_alpha: 0.05\ntrials:\n" + _trial(0.03, "held") + _trial(0.02), encoding="utf-8")
    assert load_ledger(path).left == pytest.approx(0.0)  # exactly the family level: accepted
    path.write_text("family_alpha: 0.05\ntrials:\n" + _trial(0.03, "held") + _trial(0.021), encoding="utf-8")
    with pytest.raises(UserError) as caught:
        load_ledger(path)
    assert str(caught.value) == (f"{path}: its trials could spend 0.05100 (0.03000 run, 0.02100 planned), more than "
                                 "the family level 0.05")


@pytest.mark.parametrize(("trial", "message"), [
    (_trial(0.01, looks="[3, 4]"), "trial 1: field 'looks': expected [3, 5] (the looks of 5 seeds), got [3, 4]"),
    (_trial(0.01, outcome="maybe"), "trial 1: field 'outcome': expected one of [held, not held, undecided, planned]"),
    (_trial(0.01, seeds="[4, 0]"), "trial 1: field 'seeds': expected [first, last] seeds, first below last"),
    (_trial(0.01).replace("spent: 0.01", "spent: 0.02"), "trial 1: field 'spent': expected its alpha 0.01"),
])
def test_a_bad_trial_is_one_line_naming_the_field(tmp_path: Path, trial: str, message: str) -> None:
    path = tmp_path / "ledger.yaml"
    path.write_text("family_alpha: 0.05\ntrials:\n" + trial, encoding="utf-8")
    with pytest.raises(UserError) as caught:
        load_ledger(path)
    assert str(caught.value).startswith(f"{path}: {message}") and "\n" not in str(caught.value)


def test_the_familywise_statement_is_the_ledgers_sum() -> None:
    ledger = load_ledger()
    text = ledger.statement()
    run = [t for t in ledger.trials if not t.planned]
    planned = [t for t in ledger.trials if t.planned]
    spent, planned_sum = math.fsum(t.spent for t in run), math.fsum(t.spent for t in planned)
    assert f"The {len(run)} trials run so far could spend {spent:.4f} in all" in text
    assert f"the {len(planned)} planned ones {planned_sum:.4f}" in text
    [bound] = re.findall(r"is at most (\d\.\d{4}), the sum", text)
    assert float(bound) == pytest.approx(spent + planned_sum, abs=5e-5) and float(bound) <= ledger.family_alpha
    assert f"{max(ledger.family_alpha - spent - planned_sum, 0):.4f} of the family's 0.05 is left" in text


def test_every_declared_contrast_is_in_the_ledger_and_planned_trials_match_its_declaration() -> None:
    ledger = load_ledger()
    declared = {c.name: c for c in load_primary_contrasts()}
    assert set(declared) <= {t.contrast for t in ledger.trials}
    for trial in ledger.trials:
        assert trial.stream == declared[trial.contrast].stream
        if trial.planned:
            assert trial.definition == declared[trial.contrast].describe()
            assert trial.bounds == "t-calibrated" and trial.run is None


def test_every_planned_level_has_a_stored_simulation_at_or_below_nominal() -> None:
    rows = json.loads(SEQUENTIAL_ERROR.read_text(encoding="utf-8"))["levels"]
    for trial in (t for t in load_ledger().trials if t.planned):
        [row] = [r for r in rows if r["bounds"] == "t-calibrated" and r["max_seeds"] == trial.max_seeds
                 and r["nominal"] == pytest.approx(trial.alpha, rel=1e-6)]
        assert row["actual"] <= row["nominal"] + 3 * row["mc_se"], row


def _record(trial) -> dict:
    """The stored record holding a run trial's decision: the replay named in its ``run`` field, else the manifest's."""
    folder, _, rest = trial.run.partition(" (")
    if rest:
        return json.loads((ROOT / folder / rest.rstrip(")")).read_text(encoding="utf-8"))
    return json.loads((ROOT / folder / "manifest.json").read_text(encoding="utf-8"))["extra"]["decide"]


def test_the_recorded_trials_are_those_of_the_stored_decide_records() -> None:
    rows = json.loads(SEQUENTIAL_ERROR.read_text(encoding="utf-8"))["levels"]
    declared = {c.name: c for c in load_primary_contrasts()}
    done = [t for t in load_ledger().trials if not t.planned]
    assert len(done) == 5
    for trial in done:
        folder = ROOT / trial.run.partition(" (")[0]
        record, config = _record(trial), json.loads((folder / "config.json").read_text(encoding="utf-8"))
        assert config["stream"]["name"] == trial.stream and config["max_seeds"] == trial.max_seeds
        assert config["seeds"][0] == trial.seeds[0] and record["looks"] == list(trial.looks)
        assert trial.bounds == Z_MAPPED and "bounds" not in record  # stored before t-calibrated bounds
        assert trial.definition == as_recorded(declared[trial.contrast], record.get("metrics") or {}).describe()
        history = [(look, row) for look in record["history"] for row in look["contrasts"]
                   if row["contrast"] == trial.contrast]
        for look, row in history:  # every look tested it at the ledger's alpha (Holm released nothing), and the
            # bound recomputed at that alpha is the stored one
            assert row["local_alpha"] == pytest.approx(trial.alpha, rel=1e-6)
            assert row["p_bound"] == pytest.approx(p_bound(trial.looks, look["look"] - 1, row["local_alpha"], Z_MAPPED),
                                                   rel=1e-2)  # integral tolerance; tiny increments were integrated then
        look, last = history[-1]
        decided = last["p"] <= last["p_bound"]
        side = "held" if (last["t"] > 0) == (declared[trial.contrast].direction == "non_inferior") else "not held"
        assert trial.outcome == record["decisions"][trial.contrast] == (side if decided else "undecided")
        [simulated] = [r for r in rows if r["bounds"] == Z_MAPPED and r["max_seeds"] == trial.max_seeds
                       and r["nominal"] == pytest.approx(trial.alpha, rel=1e-6)]
        assert trial.spent == math.ceil((simulated["actual"] + 2 * simulated["mc_se"]) * 1e5) / 1e5


@pytest.mark.slow
def test_a_stored_trial_replayed_from_its_per_case_rows_keeps_its_decision() -> None:
    # the PET forgetting run (27 seeds, about 25 s): its looks recomputed from the seeds' rows under the rule its record
    # names (z-mapped bounds, Holm across six) give the stored statistics, bounds and decision, the ledger's outcome
    from pemma_cl.report.claims import load_run
    from pemma_cl.report.decisions import replay_record

    [trial] = [t for t in load_ledger().trials if t.run == "results/reference/centers-ct-decide-pet"]
    run = load_run(ROOT / trial.run)
    replayed = replay_record(run.folder, run.stream, list(run.strategies), run.decided, run.summary["seeds"],
                             run.max_seeds, run.decide_record)
    assert replayed["decisions"] == run.decide_record["decisions"] == {trial.contrast: trial.outcome}
    for mine, stored in zip(replayed["history"], run.decide_record["history"], strict=True):
        [row], [kept] = mine["contrasts"], stored["contrasts"]
        assert (row["n"], row["decision"], row["local_alpha"]) == (kept["n"], kept["decision"], kept["local_alpha"])
        assert row["p"] == pytest.approx(kept["p"], rel=1e-9)
        # the bounds to the integral's tolerance (the run's code integrated the early looks' tiny increments)
        assert row["p_bound"] == pytest.approx(kept["p_bound"], rel=1e-2)
