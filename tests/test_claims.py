"""The claims table from hand-made stored runs: each secondary row's reading and why, and bad run folders (the
primary rows' verdicts: tests/test_verdicts.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pemma_cl.core.errors import UserError
from rich.console import Console

from pemma_cl.report.claim_rows import MEETS, MISSES, NOT_TESTED, SECONDARY, STRADDLES
from pemma_cl.report.claims import check_claims, claims_console_table, claims_json, load_run, render_claims
from pemma_cl.report.scope import cohort_text
from pemma_cl.report.seeds import aggregate

SHARES = {"lora": 7.2, "dora": 7.3}
AWARE, AGNOSTIC = "task-aware (task label given)", "task-agnostic"
CTPET_STREAM = [["ct", "pet"], ["ct", "pet"], ["ct", "pet"]]
SINGLE_STREAM = [["ct", "pet"], ["ct"], ["ct"]]


def write_run(folder: Path, stream: str, modalities: list[list[str]], strategies: dict[str, tuple]) -> Path:
    """A one-seed run folder with config.json and summary.json; ``strategies``: name -> (evaluation, {input: (dice,
    forgetting)})."""
    assert folder.name == stream
    return write_seeds(folder, modalities, [strategies])


def inputs(ct: float, pet: float, ctpet: float, forgetting: float = 0.0) -> dict:
    return {"ct": (ct, forgetting), "pet": (pet, forgetting), "ctpet": (ctpet, forgetting)}


@pytest.fixture
def ctpet_run(tmp_path: Path) -> Path:
    return write_run(tmp_path / "paper", "paper", CTPET_STREAM, {
        "pemma-lora": (AWARE, inputs(0.3, 0.4, 0.60)),
        "pemma-lora-shared": (AGNOSTIC, inputs(0.3, 0.4, 0.50, forgetting=0.02)),
        "early-fusion": (AGNOSTIC, inputs(0.0, 0.3, 0.61, forgetting=0.1)),
    })


@pytest.fixture
def single_run(tmp_path: Path) -> Path:
    return write_run(tmp_path / "paper-ct", "paper-ct", SINGLE_STREAM, {
        "pemma-lora-shared": (AGNOSTIC, {"ct": (0.3, 0.01), "pet": (0.4, 0.05), "ctpet": (0.64, 0.01)}),
        "pemma-dora-shared": (AGNOSTIC, {"ct": (0.3, 0.0), "pet": (0.4, 0.0), "ctpet": (0.60, 0.0)}),
        "early-fusion": (AGNOSTIC, inputs(0.0, 0.3, 0.50, forgetting=0.2)),
    })


def verdicts(rows, claim_start: str) -> dict[str, str]:
    """Secondary rows of a claim: strategy -> reading (or ``not tested here``)."""
    return {r.strategy: r.reading or r.verdict for r in rows if r.claim.startswith(claim_start) and not r.contrast}


def test_dice_against_early_fusion(ctpet_run: Path) -> None:
    rows = check_claims([load_run(ctpet_run)], SHARES)
    assert verdicts(rows, "Dice comparable") == {"pemma-lora": MEETS, "pemma-lora-shared": MISSES}
    meets = next(r for r in rows
                 if not r.contrast and r.strategy == "pemma-lora" and r.claim.startswith("Dice comparable"))
    assert "0.600 vs early-fusion 0.610 (-0.010)" in meets.measured and "7.2% trainable" in meets.measured
    too_big = check_claims([load_run(ctpet_run)], {"lora": 25.0, "dora": 25.0})
    assert verdicts(too_big, "Dice comparable")["pemma-lora"] == MISSES


def test_forgetting_claims_need_a_task_agnostic_pemma(ctpet_run: Path) -> None:
    rows = check_claims([load_run(ctpet_run)], SHARES)
    assert verdicts(rows, "Continual learning of new centres with CT+PET") == {
        "pemma-lora": NOT_TESTED, "pemma-lora-shared": MEETS}
    aware = next(r for r in rows
                 if not r.contrast and r.strategy == "pemma-lora" and r.claim.startswith("Continual learning"))
    assert "by construction" in aware.why


def test_single_modality_claims(single_run: Path) -> None:
    rows = check_claims([load_run(single_run)], SHARES)
    # 0.64 / 0.50 = +28%: meets; 0.60 / 0.50 = +20%: misses.
    assert verdicts(rows, "+28% PET Dice") == {"pemma-lora-shared": MEETS, "pemma-dora-shared": MISSES}
    assert "+28%" in next(r.measured for r in rows if r.claim.startswith("+28%") and r.strategy == "pemma-lora-shared"
                          and not r.contrast)
    # PET forgetting 0.05 is beyond the 0.03 spread; DoRA forgot nothing.
    assert verdicts(rows, "No forgetting of PET") == {"pemma-lora-shared": MISSES, "pemma-dora-shared": MEETS}
    assert verdicts(rows, "Continual learning of new centres with CT only") == {
        "pemma-lora-shared": MEETS, "pemma-dora-shared": MEETS}


def test_claims_without_evidence_say_what_run_they_need(ctpet_run: Path, single_run: Path) -> None:
    only_ctpet = check_claims([load_run(ctpet_run)], SHARES)
    missing = [r for r in only_ctpet if r.claim.startswith(("+28%", "No forgetting of PET")) and not r.contrast]
    assert missing and all(r.verdict == NOT_TESTED and "paper-ct" in r.why for r in missing)
    both = check_claims([load_run(ctpet_run), load_run(single_run)], SHARES)
    assert {r.reading for r in both if r.claim.startswith("+28%") and not r.contrast} == {MEETS, MISSES}
    c_index = [r for r in both if r.claim.startswith("C-index")]
    assert len(c_index) == 4 and all(r.verdict == NOT_TESTED for r in c_index)  # each claim's contrast and its row
    assert all(("needs a run of stream modalities" if r.contrast else "prognosis") in r.why for r in c_index)
    text = render_claims(both)
    assert text.count("\n| ") == len(both) + 2 and "secondary (meets the threshold)" in text
    assert "**not tested here**" in text and "held" not in text.replace("not tested here", "")
    # The console shows the primary rows only and counts the secondary ones.
    console = Console(record=True, width=120)
    console.print(claims_console_table(both, "claims.md"))
    shown = console.export_text()
    others = sum(not r.contrast for r in both)
    assert others and f"{others} other rows (secondary: descriptive, not adjusted, no verdict)" in shown
    assert "threshold" not in shown and shown.count("not tested here") == sum(bool(r.contrast) for r in both)


def test_bad_run_folders_are_one_line_errors(tmp_path: Path, ctpet_run: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_run(tmp_path / "nope")
    (ctpet_run / "summary.json").write_text("{not json")
    with pytest.raises(UserError, match=r"summary.json: cannot read it as JSON"):
        load_run(ctpet_run)
    (ctpet_run / "summary.json").unlink()
    with pytest.raises(UserError, match=r"summary.json: not found"):
        load_run(ctpet_run)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    (empty / "summary.json").write_text("{}")
    with pytest.raises(UserError, match="no stream with experiences"):
        load_run(empty)
    (empty / "config.json").write_text((ctpet_run / "config.json").read_text())
    (empty / "summary.json").write_text(json.dumps({"pemma-lora": {"inputs": {}}}))  # a summary before seeds existed
    with pytest.raises(UserError, match="no 'strategies' in it"):
        load_run(empty)


def write_seeds(folder: Path, modalities: list[list[str]], seeds: list[dict[str, tuple]]) -> Path:
    """A run of several seeds; each seed: name -> (evaluation, {input: (dice, forgetting)})."""
    folder.mkdir(parents=True)
    config = {"stream": {"name": folder.name, "experiences": [{"name": f"E{i}", "modalities": m}
                                                              for i, m in enumerate(modalities)]}}
    per_seed = {k: {name: {"evaluation": evaluation, "costs": {},
                           "inputs": {s: {"final_dice": d, "forgetting": f, "bwt": -f} for s, (d, f) in inputs.items()}}
                    for name, (evaluation, inputs) in seed.items()}
                for k, seed in enumerate(seeds)}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "summary.json").write_text(json.dumps(aggregate(per_seed, "early-fusion")))
    return folder


def test_several_seeds_judge_by_the_interval(tmp_path: Path) -> None:
    """Means alone would say held for all three; the interval over seeds says held, not held, inconclusive."""
    def seed(gap_a: float, gap_b: float, gap_c: float) -> dict[str, tuple]:
        return {"pemma-lora": (AWARE, inputs(0.3, 0.4, 0.60 + gap_a)),
                "pemma-dora": (AWARE, inputs(0.3, 0.4, 0.60 + gap_b)),
                "pemma-lora-shared": (AGNOSTIC, inputs(0.3, 0.4, 0.60 + gap_c, forgetting=0.02 + gap_c)),
                "early-fusion": (AGNOSTIC, inputs(0.0, 0.3, 0.60))}

    run = load_run(write_seeds(tmp_path / "paper", CTPET_STREAM,
                               [seed(0.00, -0.05, -0.10), seed(0.01, -0.06, 0.10), seed(0.02, -0.07, 0.00)]))
    rows = check_claims([run], SHARES)
    # paired gaps: lora [0.00, 0.02] (held), dora [-0.07, -0.05] (not held), lora-shared [-0.1, 0.1] (straddles -0.03)
    assert verdicts(rows, "Dice comparable") == {"pemma-lora": MEETS, "pemma-dora": MISSES,
                                                 "pemma-lora-shared": STRADDLES}
    assert "paired 95% interval [" in [r for r in rows if r.strategy == "pemma-dora" and not r.contrast][0].measured
    # forgetting of the shared set: 0.02 + [-0.1, 0.1, 0.0]: mean 0.02 <= 0.03, but the interval reaches far above
    assert verdicts(rows, "Continual learning of new centres with CT+PET") == {
        "pemma-lora": NOT_TESTED, "pemma-dora": NOT_TESTED, "pemma-lora-shared": STRADDLES}


def test_the_claims_test_the_strategies_registered_in_the_pemma_family_whatever_their_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pemma_cl.strategy_api import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # the plugin's strategies stay in this test
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        "from pemma_cl.strategy_api.registry import register_strategy\n"
        "register_strategy('my-adapters', 'PEMMA by another name', family='PEMMA')(lambda ctx: None)\n"
        "register_strategy('pemma-lookalike', 'not PEMMA', family='regularisation')(lambda ctx: None)\n")
    folder = write_run(tmp_path / "paper", "paper", CTPET_STREAM, {
        "my-adapters": (AWARE, inputs(0.3, 0.4, 0.60)),
        "pemma-lookalike": (AGNOSTIC, inputs(0.3, 0.4, 0.20)),
        "early-fusion": (AGNOSTIC, inputs(0.0, 0.3, 0.61, forgetting=0.1)),
    })
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "plugin_files": [str(plugin)]}))
    run = load_run(folder)
    assert run.families["my-adapters"] == "PEMMA" and run.families["pemma-lora"] == "PEMMA"
    assert verdicts(check_claims([run], SHARES), "Dice comparable") == {"my-adapters": MEETS}


def test_every_verdict_line_names_its_population(tmp_path: Path) -> None:
    """Cohort, preset and PEMMA's trainable share as measured in the run, on every verdict of the markdown table, the
    console table and claims.json; a run without a manifest is the built-in cohort at its configuration's preset."""
    folder = write_run(tmp_path / "centers", "centers", CTPET_STREAM, {
        "pemma-lora": (AWARE, inputs(0.3, 0.4, 0.60)),
        "early-fusion": (AGNOSTIC, inputs(0.0, 0.3, 0.61, forgetting=0.1)),
    })
    summary = json.loads((folder / "summary.json").read_text())
    summary["strategies"]["pemma-lora"]["costs"] = {"trainable_pct": 19.37}
    (folder / "summary.json").write_text(json.dumps(summary))
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "data": "synthetic", "preset": "tiny"}))
    rows = check_claims([load_run(folder)], SHARES)
    scope = "built-in synthetic cohort (32³ phantoms), preset tiny, pemma-lora trains 19.4% of its parameters"
    judged = [r for r in rows if r.evidence != "–"]
    assert any(r.contrast == "dice-vs-early-fusion" and r.verdict == "one seed: indicative" for r in judged)
    assert judged and all(r.scope == scope for r in judged if r.strategy == "pemma-lora")
    assert all(r.scope.startswith("built-in synthetic cohort (32³ phantoms), preset tiny") for r in judged)
    table = render_claims(rows)
    assert table.startswith("Scope: ")
    body = table.splitlines()[table.splitlines().index("|" + "|".join([" --- "] * 6) + "|") + 1:]
    lines = [line for line in body if line.split("|")[3].strip() != "–"]
    assert len(lines) == len(judged) and all(f"— on {scope} |" in line for line in lines if "| pemma-lora |" in line)
    assert all("— on built-in synthetic cohort (32³ phantoms), preset tiny" in line for line in lines)
    console = Console(record=True, width=400)
    console.print(claims_console_table(rows, "claims.md"))
    assert "one seed: indicative — on built-in synthetic cohort (32³ phantoms), preset tiny" in console.export_text()
    assert all(entry["scope"] for entry in claims_json(rows) if entry["evidence"] != "–")


@pytest.mark.parametrize(("data", "facts", "expected"), [
    ("synthetic", None, "built-in synthetic cohort (32³ phantoms)"),
    ("synthetic", {"data": "synthetic-v1:size96:scale0.18:seed0:noshift"},
     "built-in synthetic cohort (96³ phantoms, no centre shift)"),
    ("hecktor:/data/hecktor", {"data": "hecktor"}, "HECKTOR 2022"),
    ("nnunet:/data/Dataset042", {"description": {"name": "Dataset042_Liver"}}, "nnU-Net dataset Dataset042_Liver"),
])
def test_the_cohort_is_named_from_the_data_facts(data: str, facts: dict | None, expected: str) -> None:
    assert cohort_text(data, 32, facts) == expected
