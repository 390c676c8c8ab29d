"""Generate every result table of the documentation from the stored runs in ``results/reference/``.

Run ``python docs/gen_results.py`` from anywhere; it writes Markdown fragments into ``docs/_generated/``, which the
pages include (``--8<-- "docs/_generated/NAME.md"``). No result table in the docs is typed by hand: a run's tables
are what ``pemma-bench report`` prints for its folder (whole, or its ``summary.md`` tables alone), the claims what ``pemma-bench claims`` prints, the parameter
counts what ``pemma-bench params`` prints, and the tables of the measurement files (profiles, step arithmetic,
the validation searches and the ablation) are rendered here from their JSON. ``.ci/docs`` runs this script and
fails when a committed fragment changes, so re-running a reference run and this script is how the pages follow.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from pemma_cl.cli.app import app
from pemma_cl.report.claims import load_run
from pemma_cl.report.decisions import BOUND_WORDS, recorded_bounds
from pemma_cl.report.ledger import load_ledger

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = Path("results/reference")
OUT = ROOT / "docs" / "_generated"

#: Run folders under results/reference whose ``pemma-bench report`` output becomes a fragment of the same name.
RUNS = ("centers", "centers-ct", "paper-ct", "paper", "centers-all", "centers-protect", "paper-swin", "modalities",
        "centers-decide", "centers-decide-forgetting", "centers-ct-decide-pet", "centers-decide-dice", "centers-noshift")
#: How the definitions paragraph that closes a ``summary.md`` begins.
DEFINITIONS_PARAGRAPH = "Intervals: "
#: Runs weighed together by ``pemma-bench claims``.
CLAIM_RUNS = ("centers", "centers-ct", "paper", "paper-ct", "modalities", "centers-decide", "centers-decide-forgetting",
              "centers-ct-decide-pet", "centers-decide-dice")


def cli(*args: str) -> str:
    """What ``pemma-bench ARGS...`` prints on stdout (raises if the command fails)."""
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "120"})
    if result.exit_code != 0:
        raise RuntimeError(f"pemma-bench {' '.join(args)} failed ({result.exit_code}): {result.output}")
    return result.stdout.rstrip("\n")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric_from: int = 1) -> str:
    """A Markdown table; columns from ``numeric_from`` on are right-aligned."""
    align = ["---" if i < numeric_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _read_json(path: Path) -> Any:
    return json.loads((ROOT / path).read_text(encoding="utf-8"))


def _demoted(markdown: str) -> str:
    """A stored Markdown file's headings one level down, so that it sits inside a page."""
    return re.sub(r"^(#+) ", lambda m: "#" * min(len(m.group(1)) + 1, 6) + " ", markdown, flags=re.MULTILINE)


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def seed_ranges(seeds: Sequence[int]) -> str:
    """Seeds as runs of consecutive numbers (``0–2``, ``100–126``), and their count when there are more than
    three."""
    spans: list[list[int]] = []
    for seed in sorted(seeds):
        if spans and seed == spans[-1][1] + 1:
            spans[-1][1] = seed
        else:
            spans.append([seed, seed])
    text = ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in spans)
    return text if len(seeds) <= 3 else f"{text} ({len(seeds)})"


def reference_runs() -> str:
    """One row per stored run: its command, cohort, preset, seeds and strategies, and the wall time its manifest
    recorded."""
    rows = []
    for folder in sorted(p for p in (ROOT / REFERENCE).iterdir() if (p / "manifest.json").is_file()):
        manifest = _read_json(REFERENCE / folder.name / "manifest.json")
        config = _read_json(REFERENCE / folder.name / "config.json")
        command = [arg for arg in manifest["command"]]
        if "--results-dir" in command:
            at = command.index("--results-dir")
            del command[at:at + 2]
        cohort = "built-in synthetic" if config["data"] == "synthetic" else config["data"]
        if config["stream"].get("synthetic_shift") is False:
            cohort += ", no centre shift"
        rows.append((f"`{folder.name}`", f"`{' '.join(command)}`", cohort, f"`{config['preset']}`",
                     manifest["device"], seed_ranges(manifest["seeds"]), len(config["strategies"]),
                     _duration(manifest["wall_seconds"])))
    return table(("Run folder", "Command", "Cohort", "Preset", "Device", "Seeds", "Strategies",
                  "Wall time (manifest)"), rows, numeric_from=5)


def per_seed(run: str, inp: str = "ctpet", metric: str = "final_dice") -> str:
    """One row per strategy, one column per seed: a metric of one input setting, read from each seed's summary."""
    seeds = _read_json(REFERENCE / run / "summary.json")["seeds"]
    per = {seed: _read_json(REFERENCE / run / "seeds" / f"seed{seed}" / "summary.json") for seed in seeds}
    strategies = list(per[seeds[0]])
    rows = [(name, *(f"{per[seed][name]['inputs'][inp][metric]:.3f}" for seed in seeds)) for name in strategies]
    return table(("Strategy", *(f"seed {seed}" for seed in seeds)), rows)


def forgetting_per_seed(run: str) -> str:
    """Per strategy, input and seed: cross-fitted forgetting, max-based forgetting and BWT (each seed's summary)."""
    seeds = _read_json(REFERENCE / run / "summary.json")["seeds"]
    per = {seed: _read_json(REFERENCE / run / "seeds" / f"seed{seed}" / "summary.json") for seed in seeds}
    rows = []
    for name in per[seeds[0]]:
        for inp in ("ct", "pet", "ctpet"):
            for seed in seeds:
                values = per[seed][name]["inputs"][inp]
                rows.append((name, inp, seed, *(f"{values[m]:+.3f}" for m in ("forgetting", "forgetting_max", "bwt"))))
    return table(("Strategy", "Input", "Seed", "Forgetting (cross-fitted)", "Forgetting (max)", "BWT"), rows,
                 numeric_from=2)


def profile(name: str) -> str:
    """The rows of a ``pemma-bench profile`` JSON file."""
    content = _read_json(REFERENCE / name)
    rows = content["rows"]
    has_gflop = any("train_step_gflop" in row for row in rows)
    header = ["Strategy", "Preset", "Steps", "Step ms", "vs full-FT", "Eval ms/case", "Trainable %"]
    if has_gflop:
        header += ["Forward GFLOP", "Backward GFLOP", "Step GFLOP", "GFLOP vs full-FT"]
    body = []
    for row in rows:
        cells = [row["strategy"], row["preset"], row["steps"], _ms(row["train_step_ms"]),
                 _ratio(row.get("step_vs_full_finetune")), _ms(row["eval_ms_per_case"]), f"{row['trainable_pct']:.2f}"]
        if has_gflop:
            cells += [f"{row['forward_gflop']:.2f}", f"{row['backward_gflop']:.2f}", f"{row['train_step_gflop']:.2f}",
                      _ratio(row["gflop_vs_full_finetune"])]
        body.append(cells)
    precision = {row.get("precision", "fp32") for row in rows}
    note = f"`{REFERENCE / name}` ({content.get('machine', 'machine not recorded')}; precision {', '.join(sorted(precision))})"
    return note + "\n\n" + table(header, body, numeric_from=2)


def step_flops(name: str) -> str:
    """The rows of a ``benchmarks/step_flops.py`` JSON file."""
    content = _read_json(REFERENCE / name)
    rows = [(row["variant"], f"{row['forward_gflop']:.2f}", f"{row['backward_gflop']:.2f}",
             f"{row['train_step_gflop']:.2f}", f"{row['gflop_vs_full_finetune']:.3f}×", f"{row['trainable_params']:,}")
            for row in content["rows"]]
    return (f"`{REFERENCE / name}` (preset `{content['preset']}`)\n\n"
            + table(("Variant", "Forward GFLOP", "Backward GFLOP", "Step GFLOP", "vs full-FT", "Trainable"), rows))


def ablation() -> str:
    """``benchmarks/ablate_pemma.py``'s two cohorts side by side: final Dice on validation cases and its gap to full
    fine-tuning."""
    cohorts = [_read_json(REFERENCE / "ablation" / name) for name in ("centers-val-builtin.json",
                                                                      "centers-val-synth-seed7.json")]
    by_name = [{row["name"]: row for row in cohort["results"]} for cohort in cohorts]
    notes = [f"{i + 1}: data `{c['data']}`, stream `{c['stream']}`, seed {c['seed']}, cases `{c['eval_on']}`"
             for i, c in enumerate(cohorts)]
    rows = []
    for row in cohorts[0]["results"]:
        cells = [f"`{row['name']}`" + ("" if row["strategy"] == row["name"] else f" ({row['strategy']})")]
        for results in by_name:
            own = results.get(row["name"])
            full = results["full-finetune"]["final_dice_ctpet"]
            cells += ["–", "–"] if own is None else [f"{own['final_dice_ctpet']:.3f}",
                                                     f"{own['final_dice_ctpet'] - full:+.3f}"]
        rows.append([cells[0], row["what"], *cells[1:]])
    header = ("Variant", "What changes", "CT+PET Dice, cohort 1", "vs full-FT", "CT+PET Dice, cohort 2", "vs full-FT")
    return "Cohorts: " + "; ".join(notes) + ".\n\n" + table(header, rows, numeric_from=2)


def prognosis_tuning() -> str:
    """The prognosis learning-rate scale search on validation cases."""
    content = _read_json(REFERENCE / "modalities-tuning" / "prognosis_lr_scale_val.json")
    tasks = list(next(iter(content.values())))
    rows = [(name, *(f"{scores[task]:.3f}" for task in tasks)) for name, scores in content.items()]
    return table(("Strategy and scale", *(f"C-index right after {task}" for task in tasks)), rows)


def stored_markdown(path: Path) -> str:
    """A Markdown file a run or a benchmark script stored, headings one level down."""
    return _demoted((ROOT / path).read_text(encoding="utf-8").rstrip("\n"))


def summary_tables(run_dir: Path) -> str:
    """The tables of a run's ``summary.md`` without its closing definitions (a page links to them instead)."""
    paragraphs = (ROOT / run_dir / "summary.md").read_text(encoding="utf-8").rstrip("\n").split("\n\n")
    return "\n\n".join(p for p in paragraphs if not p.startswith(DEFINITIONS_PARAGRAPH))


def decide_looks(run: str, record_file: str = "manifest.json") -> str:
    """A ``run --decide`` run's looks (its manifest's ``extra.decide``, or a replay's record file): per look and open
    contrast, the mean over seeds, its repeated confidence interval, t against its bound and the decision; then why
    it stopped."""
    record = _read_json(REFERENCE / run / record_file)
    record = record["extra"]["decide"] if record_file == "manifest.json" else record
    rows = []
    for look in record["history"]:
        for row in look["contrasts"]:
            low, high = row["interval"]
            rows.append((look["look"], row["contrast"], row["n"], f"{row['mean']:+.4f}", f"{row['sd']:.4f}",
                         f"{low:+.3f} .. {high:+.3f}", f"{row['t']:+.2f}", f"±{row['t_bound']:.2f}",
                         f"{row['p']:.2g}", f"{row['p_bound']:.2g}", f"{row['local_alpha']:.3g}", row["decision"]))
    header = ("Look", "Contrast", "Seeds", "Mean", "SD", "Repeated 95% CI", "t", "t bound", "p", "p bound",
              "Local alpha", "Decision")
    decisions = ", ".join(f"{name}: **{decision}**" for name, decision in record["decisions"].items())
    stored = load_run(REFERENCE / run)  # the population every decision is about
    return (f"Looks planned at {', '.join(map(str, record['looks']))} seeds (familywise alpha {record['alpha']}, "
            f"{BOUND_WORDS[recorded_bounds(record)]}); "
            f"{record['seeds_run']} seeds run; stopped: {record['stopped']}. Decisions: {decisions}, on "
            f"{stored.scope('')}.\n\n"
            + table(header, rows, numeric_from=2))


def plan_accuracy() -> str:
    """``benchmarks/plan_accuracy.py``'s table: how often ``plan``'s seed counts from simulated pilots reach what the
    truth needs."""
    record = _read_json(REFERENCE / "plan-accuracy.json")
    rows = [(r["pilot"], f"{r['distance_sd']:.2f}", r["needed"], f"{r['point_median']:.0f}",
             f"{r['point_reaches']:.2f}", f"{r['point_power_median']:.2f}", f"{r['unbounded']:.2f}",
             f"{r['pessimistic_reaches']:.2f}") for r in record["rows"]]
    header = ("Pilot seeds", "True distance (SDs)", "Seeds needed", "Plan's count (median)", "Plan's count enough",
              "Its true power (median)", "Range: no bound", "Pessimistic end enough")
    return (f"{record['reps']} simulated pilots a row (seed {record['seed']}), level {record['alpha']:.4f} "
            f"(5 % / 6), {record['power']:.0%} power; *enough*: at least the seeds the truth needs (no bound counts as "
            "enough).\n\n" + table(header, rows, numeric_from=0))


def sequential_error() -> str:
    """``benchmarks/sequential_error.py``'s levels: the actual error of the decide bounds against their nominal level."""
    record = _read_json(Path("results/benchmarks/sequential_error.json"))
    rows = [(r["max_seeds"], f"{r['nominal']:.5f}", r["bounds"], f"{r['actual']:.5f}", f"{r['mc_se']:.5f}",
             f"{r['excess_in_se']:+.1f}") for r in record["levels"]]
    return (f"{record['paths']:,} simulated null runs per schedule (seed {record['seed']}; the bounds' calibration: "
            f"{record['calibration_paths']:,}, seed {record['calibration_seed']}).\n\n"
            + table(("Max seeds", "Nominal", "Bounds", "Actual error", "MC SE", "Actual - nominal (SEs)"), rows))


def sequential_rules() -> str:
    """``benchmarks/sequential_error.py``'s rules: the decide rule against naive seed-adding."""
    rules = _read_json(Path("results/benchmarks/sequential_error.json"))["rules"]
    rows = [(r["contrasts"], "on the margin" if r["shift_sd"] == 0 else f"{r['shift_sd']} SD past",
             "`--decide`" if r["rule"] == "sequential" else r["rule"], f"{r['any_decision']:.3f}",
             f"{r['mean_seeds']:.1f}") for r in rules["rows"]]
    return (f"{rules['reps']} simulated runs a row (seed {rules['seed']}), looks at "
            f"{', '.join(map(str, rules['looks']))} seeds, {rules['bounds']} bounds.\n\n"
            + table(("Contrasts", "True value", "Rule", "Any decision", "Mean seeds"), rows, numeric_from=3))


def ledger() -> str:
    """The alpha ledger's trials and its familywise statement."""
    found = load_ledger()
    rows = [(t.contrast, t.stream, f"{t.seeds[0]}–{t.seeds[1]}", t.looks[-1], t.bounds, f"{t.alpha:.5f}",
             f"{t.spent:.5f}", t.outcome, f"`{t.run}`" if t.run else "–") for t in found.trials]
    return (table(("Contrast", "Stream", "Seeds", "Max seeds", "Bounds", "Alpha", "Could spend", "Outcome", "Run"),
                  rows, numeric_from=3) + "\n\n" + found.statement())


def fragments() -> dict[str, Callable[[], str]]:
    """Every fragment's name and how it is made."""
    made: dict[str, Callable[[], str]] = {}
    for run in RUNS:
        made[f"report-{run}"] = lambda run=run: cli("report", str(REFERENCE / run))
        made[f"summary-{run}"] = lambda run=run: summary_tables(REFERENCE / run)
    made["report-centers-vs-full-finetune"] = lambda: cli("report", str(REFERENCE / "centers"),
                                                          "--reference", "full-finetune")
    made["summary-paper-seed0"] = lambda: summary_tables(REFERENCE / "paper" / "seeds" / "seed0")
    made["per-seed-centers"] = lambda: per_seed("centers")
    made["forgetting-centers-noshift"] = lambda: forgetting_per_seed("centers-noshift")
    made["decide-centers-as-run"] = lambda: decide_looks("centers-decide")
    made["decide-centers"] = lambda: decide_looks("centers-decide", "decide-replay.json")
    made["decide-centers-forgetting"] = lambda: decide_looks("centers-decide-forgetting")
    made["decide-centers-ct-pet"] = lambda: decide_looks("centers-ct-decide-pet")
    made["decide-centers-dice"] = lambda: decide_looks("centers-decide-dice")
    made["plan-centers-decide"] = lambda: cli("plan", str(REFERENCE / "centers-decide"))
    made["plan-centers-ct"] = lambda: cli("plan", str(REFERENCE / "centers-ct"))
    made["plan-accuracy"] = plan_accuracy
    made["sequential-error"] = sequential_error
    made["sequential-rules"] = sequential_rules
    made["ledger"] = ledger
    made["claims"] = lambda: cli("claims", *(str(REFERENCE / run) for run in CLAIM_RUNS))
    made["reference-runs"] = reference_runs
    for name in sorted(p.name for p in (ROOT / REFERENCE).glob("profile-*.json")):
        made[name.removesuffix(".json")] = lambda name=name: profile(name)
    for name in sorted(p.name for p in (ROOT / REFERENCE).glob("step-flops-*.json")):
        made[name.removesuffix(".json")] = lambda name=name: step_flops(name)
    made["ablation"] = ablation
    made["prognosis-tuning"] = prognosis_tuning
    made["tiny-lr-val"] = lambda: stored_markdown(REFERENCE / "tiny-lr-val" / "final_dice_val.md")
    made["tiny-budget-val"] = lambda: stored_markdown(REFERENCE / "tiny-budget-val" / "final_dice_val.md")
    made["params-unetr"] = lambda: "```text\n" + cli("params", "--preset", "paper", "--tasks", "3") + "\n```"
    made["params-swin-unetr"] = lambda: "```text\n" + cli("params", "--preset", "paper", "--tasks", "3",
                                                          "--backbone", "swin-unetr") + "\n```"
    return made


def main() -> None:
    """Write every fragment (and remove fragments nothing makes any more)."""
    os.chdir(ROOT)  # the commands print paths relative to the repository, as a reader would type them
    OUT.mkdir(parents=True, exist_ok=True)
    made = fragments()
    for name, make in made.items():
        text = f"<!-- Generated by docs/gen_results.py from {REFERENCE}/; do not edit by hand. -->\n\n{make()}\n"
        (OUT / f"{name}.md").write_text(text, encoding="utf-8")
        print(f"docs/_generated/{name}.md", file=sys.stderr)
    for stale in set(OUT.glob("*.md")) - {OUT / f"{name}.md" for name in made}:
        stale.unlink()


if __name__ == "__main__":
    main()
