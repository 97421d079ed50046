"""`trustmh compare A B`: which scores moved from run A to run B (the same items judged again after a rubric or
judge change), per criterion and per item, with paired statistics and the critical gates that flipped.

The unit compared is one item × target × pillar × criterion. A run's score of a unit is its panel's decision
(panel.jsonl) when it judged with a panel, else its judge's verdict (verdicts.jsonl; several published verdicts
of one unit, `bench --recorded`, are reduced by their median, the panel's default). `compare_outcomes` is the
pure computation; `compare_runs` reads two run folders and writes compare.json and compare.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from judge.errors import RunDirError, UsageError
from judge.log import (
    BenchRun,
    CompareRunFacts,
    Comparison,
    CriterionChange,
    GateFlip,
    PillarGates,
    ScoreRun,
    UnitChange,
    detect_kind,
    document,
    read_run,
)
from judge.panel import aggregate_scores
from judge.rubric import RubricError, load_rubric_dir
from judge.rundir import write_json_atomic, write_text_atomic
from judge.stats.bootstrap import SMALL_N
from judge.stats.paired import paired_difference
from judge.version import __version__

Key = tuple[str, str | None, str, str]  # item_id, target, pillar, criterion
Status = Literal["scored", "not_applicable", "undecided"]
DEFAULT_BOOTSTRAP = 1000
DEFAULT_SEED = 0
CONFIDENCE = 0.95
RUN_FILES = ("summary.json", "scorecard.json", "bench.json", "calibration.json", "audit.json", "compare.json")


@dataclass(frozen=True)
class Outcome:
    """A run's result on one unit: `critical_fail` is None for a criterion with no fail line, or when the run
    cannot tell (not scored, or a judge-only run whose rubric is no longer the one it used)."""

    status: Status
    score: float | None = None
    critical_fail: bool | None = None
    critical: bool = False


# ----------------------------------------------------------------------------- the computation


def compare_outcomes(
    a: Mapping[Key, Outcome],
    b: Mapping[Key, Outcome],
    *,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
    changed_criteria: Mapping[tuple[str, str], bool | None] | None = None,
) -> Comparison:
    """Every unit of either run, paired by key; B − A. `changed_criteria`: (pillar, criterion) → whether its
    rubric hash differs between the runs."""
    by_criterion: dict[tuple[str, str], list[Key]] = defaultdict(list)
    for key in sorted({*a, *b}, key=_sort_key):
        by_criterion[(key[2], key[3])].append(key)
    criteria, changes = [], []
    for (pillar, criterion), keys in sorted(by_criterion.items()):
        pairs = [(a[k], b[k]) for k in keys
                 if k in a and k in b and a[k].score is not None and b[k].score is not None]
        stats = paired_difference([x.score for x, _ in pairs], [y.score for _, y in pairs],  # type: ignore[misc]
                                  n_bootstrap=n_bootstrap, seed=seed, key=f"{pillar}/{criterion}",
                                  confidence=CONFIDENCE)
        critical = any(o.critical for k in keys for o in (a.get(k), b.get(k)) if o is not None)
        known = [(x.critical_fail, y.critical_fail) for x, y in pairs
                 if x.critical_fail is not None and y.critical_fail is not None]
        gates: dict[str, Any] = {}
        if critical:
            gates = {"failing_a": sum(x for x, _ in known), "failing_b": sum(y for _, y in known),
                     "pass_to_fail": sum(not x and y for x, y in known),
                     "fail_to_pass": sum(x and not y for x, y in known), "gate_unknown": len(pairs) - len(known)}
        in_a, in_b = [k for k in keys if k in a], [k for k in keys if k in b]
        both = [k for k in keys if k in a and k in b]
        criteria.append(CriterionChange(
            pillar=pillar, criterion=criterion, in_a=bool(in_a), in_b=bool(in_b),
            criterion_changed=(changed_criteria or {}).get((pillar, criterion)),
            units_a=len(in_a), units_b=len(in_b), only_a=len(in_a) - len(both), only_b=len(in_b) - len(both),
            status_changed=sum(a[k].status != b[k].status for k in both), critical=critical,
            **asdict(stats), **gates))
        changes += [change for k in keys if (change := _unit_change(k, a.get(k), b.get(k))) is not None]
    flips, pillars = _pillar_gates(a, b)
    items_a, items_b = {k[:2] for k in a}, {k[:2] for k in b}
    return Comparison(
        criteria=criteria, changes=changes, gate_flips=flips, pillars=pillars,
        items_only_a=[{"item_id": i, "target": t} for i, t in sorted(items_a - items_b, key=_sort_key)],
        items_only_b=[{"item_id": i, "target": t} for i, t in sorted(items_b - items_a, key=_sort_key)],
    )


def _sort_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple("" if part is None else part for part in key)


def _unit_change(key: Key, x: Outcome | None, y: Outcome | None) -> UnitChange | None:
    """The unit as a change record, or None when both runs agree on it."""
    gate = None
    if x is None or y is None:
        change = "only_b" if x is None else "only_a"
    elif x.status != y.status:
        change = "status"
    elif x.score != y.score:
        change = "moved"
    elif x.critical_fail != y.critical_fail and x.critical_fail is not None and y.critical_fail is not None:
        change = "gate"  # the same score against a fail line the rubric change moved
    else:
        return None
    if x is not None and y is not None and x.critical_fail is not None and y.critical_fail is not None:
        gate = "pass_to_fail" if y.critical_fail and not x.critical_fail else (
            "fail_to_pass" if x.critical_fail and not y.critical_fail else None)
    difference = y.score - x.score if x and y and x.score is not None and y.score is not None else None
    return UnitChange(
        item_id=key[0], target=key[1], pillar=key[2], criterion=key[3], change=change,  # type: ignore[arg-type]
        status_a=x.status if x else None, score_a=x.score if x else None,
        critical_fail_a=x.critical_fail if x else None,
        status_b=y.status if y else None, score_b=y.score if y else None,
        critical_fail_b=y.critical_fail if y else None,
        difference=difference, gate=gate)  # type: ignore[arg-type]


def _pillar_verdicts(outcomes: Mapping[Key, Outcome]) -> dict[tuple[str, str | None, str], dict[str, bool | None]]:
    """item × target × pillar → each applicable critical criterion's pass/fail (None: unknown). A criterion that
    does not apply to the item cannot fail it."""
    verdicts: dict[tuple[str, str | None, str], dict[str, bool | None]] = defaultdict(dict)
    for (item, target, pillar, criterion), outcome in outcomes.items():
        if outcome.critical and outcome.status != "not_applicable":
            verdicts[(item, target, pillar)][criterion] = outcome.critical_fail
    return verdicts


def _failing(criteria: Mapping[str, bool | None]) -> bool | None:
    """The pillar verdict: fails when any critical criterion fails; passes only when every one is known to pass."""
    if any(value is True for value in criteria.values()):
        return True
    return False if criteria and all(value is False for value in criteria.values()) else None


def _pillar_gates(a: Mapping[Key, Outcome], b: Mapping[Key, Outcome]) -> tuple[list[GateFlip], list[PillarGates]]:
    first, second = _pillar_verdicts(a), _pillar_verdicts(b)
    flips: list[GateFlip] = []
    tallies: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for key in sorted(first.keys() & second.keys(), key=_sort_key):
        x, y = _failing(first[key]), _failing(second[key])
        if x is None or y is None:
            continue
        tally = tallies[key[2]]
        tally[0] += 1
        tally[1] += x
        tally[2] += y
        tally[3] += not x and y
        tally[4] += x and not y
        if x != y:
            flipped = sorted(c for c in first[key].keys() & second[key].keys()
                             if None not in (first[key][c], second[key][c]) and first[key][c] != second[key][c])
            flips.append(GateFlip(item_id=key[0], target=key[1], pillar=key[2], failing_a=x, failing_b=y,
                                  criteria=flipped))
    pillars = [PillarGates(pillar=p, n=t[0], failing_a=t[1], failing_b=t[2], pass_to_fail=t[3], fail_to_pass=t[4])
               for p, t in sorted(tallies.items())]
    return flips, pillars


# ----------------------------------------------------------------------------- reading a run


def compared_stage(directory: Path) -> tuple[ScoreRun, str]:
    """The judged stage of a score or bench run folder, and the kind of folder; RunDirError (exit 2) otherwise."""
    directory = Path(directory)
    if not directory.exists():
        raise RunDirError(f"{directory}: no such folder; give the --out folder of a finished `trustmh score` or "
                          "`trustmh bench` run")
    if not directory.is_dir():
        raise RunDirError(f"{directory}: is a file; give the --out folder of a `trustmh score` or `trustmh bench` run")
    if not any((directory / name).is_file() for name in RUN_FILES):
        raise RunDirError(f"{directory}: not a run folder (no summary.json, scorecard.json or bench.json); give the "
                          "--out folder of a finished `trustmh score` or `trustmh bench` run")
    kind = detect_kind(directory)
    if kind not in ("score", "bench"):
        raise RunDirError(f"{directory}: a {kind} folder; compare takes the --out folders of two `trustmh score` "
                          "or `trustmh bench` runs")
    run = read_run(directory)
    if isinstance(run, BenchRun):
        if run.score is None:
            raise RunDirError(f"{directory}: a bench run with no judged stage ({directory / 'score'} is missing); "
                              "its suites are scored without judges, so there are no judge scores to compare")
        return run.score, kind
    assert isinstance(run, ScoreRun)
    return run, kind


def _rubric_lines(run: ScoreRun) -> dict[tuple[str, str], int | None]:
    """(pillar, criterion) → fail line, from the run's rubric folder for each pillar whose rubric is still the one
    the run used (same hash); a changed or missing rubric tells nothing."""
    directory, hashes = run.run.get("rubrics_dir"), run.run.get("rubric_hashes") or {}
    if not isinstance(directory, str):
        return {}
    try:
        rubrics = load_rubric_dir(Path(directory))
    except (RubricError, OSError):
        return {}
    return {(pillar, c.id): c.fail_below for pillar, rubric in rubrics.items()
            if hashes.get(pillar) == rubric.content_hash for c in rubric.criteria}


def run_outcomes(run: ScoreRun) -> tuple[dict[Key, Outcome], str]:
    """Each unit's outcome in a score run, and the file it was read from."""
    if len(run.panel):
        outcomes = {}
        for row in run.panel:
            status: Status = "scored" if row["status"] == "decided" else row["status"]  # type: ignore[assignment]
            critical = row["fail_below"] is not None
            outcomes[(row["item_id"], row["target"], row["pillar"], row["criterion"])] = Outcome(
                status, row["score"] if status == "scored" else None, row["critical_fail"] if critical else None,
                critical)
        return outcomes, "panel.jsonl"
    return verdict_outcomes(run.verdicts, _rubric_lines(run)), "verdicts.jsonl"


def verdict_outcomes(verdicts: Iterable[Mapping[str, Any]],
                     fail_lines: Mapping[tuple[str, str], int | None]) -> dict[Key, Outcome]:
    """Units of a run judged without a panel: the ok score (the median of several), else n/a or undecided.
    Tie-breaker verdicts take no part (they are only asked with a panel)."""
    scores: dict[Key, list[float]] = defaultdict(list)
    statuses: dict[Key, set[str]] = defaultdict(set)
    for v in verdicts:
        if v["role"] == "tiebreak":
            continue
        key = (v["item_id"], v["target"], v["pillar"], v["criterion"])
        statuses[key].add(v["status"])
        if v["status"] == "ok" and v["score"] is not None:
            scores[key].append(v["score"])
    outcomes = {}
    for key, seen in statuses.items():
        line = fail_lines.get((key[2], key[3]))
        if scores[key]:
            score = aggregate_scores(scores[key], "median")
            score = int(score) if float(score).is_integer() else score
            outcomes[key] = Outcome("scored", score, None if line is None else score < line, line is not None)
        else:
            outcomes[key] = Outcome("not_applicable" if "not_applicable" in seen else "undecided",
                                    critical=line is not None)
    return outcomes


def run_facts(run: ScoreRun, kind: str, source: str, directory: Path) -> CompareRunFacts:
    record = run.run
    judges = [j for j in record.get("judges") or [] if isinstance(j, dict)]
    names = [str(j.get("name")) for j in judges] or (run.summary.judges if run.summary else [])
    panel = record.get("panel") if isinstance(record.get("panel"), dict) else {}
    return CompareRunFacts(
        directory=str(directory), kind=kind, source=source, version=record.get("version"),
        started_at=record.get("started_at"), judges=names,
        models=[str(j.get("model")) for j in judges if j.get("model")],
        panel_method=panel.get("method") if source == "panel.jsonl" else None, samples=record.get("samples"),
        rubric_hashes=record.get("rubric_hashes") or {}, criterion_hashes=record.get("criterion_hashes") or {},
        template_hash=record.get("template_hash"), crisis_resources_version=record.get("crisis_resources_version"))


def _changed_criteria(a: CompareRunFacts, b: CompareRunFacts) -> dict[tuple[str, str], bool | None]:
    found = {}
    for pillar in a.criterion_hashes.keys() & b.criterion_hashes.keys():
        first, second = a.criterion_hashes[pillar], b.criterion_hashes[pillar]
        for criterion in first.keys() & second.keys():
            found[(pillar, criterion)] = first[criterion] != second[criterion]
    return found


# ----------------------------------------------------------------------------- the command's work


def default_out(run_a: Path, run_b: Path) -> Path:
    """Where `trustmh compare` writes when not told: runs/compare-A-vs-B (runs/ is where every output defaults)."""
    name_a, name_b = (Path(p).resolve().name for p in (run_a, run_b))
    return Path("runs") / f"compare-{name_a}-vs-{name_b}"


def check_out(out: Path, runs: Iterable[Path]) -> None:
    """Refuse an out folder that is one of the compared runs or another command's run (its files would mix)."""
    for run in runs:
        if out.resolve() == Path(run).resolve():
            raise UsageError(f"{out}: is one of the compared runs; choose another folder", field="out")
    if out.is_file():
        raise UsageError(f"{out}: is a file; give a folder", field="out")
    if out.is_dir() and any(out.iterdir()):
        try:
            kind = detect_kind(out)
        except RunDirError:
            kind = None
        if kind is not None and kind != "compare":
            raise UsageError(f"{out}: holds a {kind} run; choose another folder for the comparison", field="out")


def compare_runs(run_a: Path, run_b: Path, out: Path, *, n_bootstrap: int = DEFAULT_BOOTSTRAP,
                 seed: int = DEFAULT_SEED) -> Comparison:
    """Read two run folders, compare them and write OUT/compare.json and OUT/compare.md (owner-only)."""
    if n_bootstrap < 0:
        raise UsageError(f"{n_bootstrap}: the number of resamples cannot be negative", field="bootstrap")
    check_out(out, (run_a, run_b))
    stages = [compared_stage(Path(p)) for p in (run_a, run_b)]
    (first, kind_a), (second, kind_b) = stages
    outcomes_a, source_a = run_outcomes(first)
    outcomes_b, source_b = run_outcomes(second)
    facts_a, facts_b = run_facts(first, kind_a, source_a, Path(run_a)), run_facts(second, kind_b, source_b, Path(run_b))
    comparison = compare_outcomes(outcomes_a, outcomes_b, n_bootstrap=n_bootstrap, seed=seed,
                                  changed_criteria=_changed_criteria(facts_a, facts_b))
    comparison.runs = {"a": facts_a, "b": facts_b}
    comparison.meta = {"version": __version__, "difference": "B - A", "bootstrap": n_bootstrap, "seed": seed,
                       "confidence": CONFIDENCE, "small_n_below": SMALL_N}
    write_json_atomic(out / "compare.json", document(comparison))
    write_text_atomic(out / "compare.md", [compare_markdown(comparison)])
    return comparison


# ----------------------------------------------------------------------------- compare.md


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _md_table(header: list[str], rows: Iterable[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_f(v).replace("|", "\\|") for v in row) + " |" for row in rows]
    return lines


def interval_text(low: Any, high: Any, small_n: bool) -> str:
    """`[low, high]`, marked `small n` below the threshold (the terminal and compare.md write intervals so)."""
    if low is None or high is None:
        return "—"
    return f"[{_f(low)}, {_f(high)}]" + (" small n" if small_n else "")


def compare_markdown(comparison: Comparison) -> str:
    """compare.md: the runs side by side, the criteria, the gate flips and the units in one run only."""
    a, b = comparison.runs["a"], comparison.runs["b"]
    meta = comparison.meta
    lines = ["# Comparison of two runs", "", f"A: `{a.directory}`  ", f"B: `{b.directory}`", "",
             f"Differences are B − A over the units (item × target × criterion) scored in both runs; intervals are "
             f"{meta['confidence']:.0%} percentile bootstraps over units ({meta['bootstrap']} resamples, seed "
             f"{meta['seed']}), marked *small n* below {meta['small_n_below']} pairs; p is the two-sided Wilcoxon "
             "signed-rank test on the units that moved.", "", "## Runs", ""]
    pillars = sorted({*a.rubric_hashes, *b.rubric_hashes})
    lines += _md_table(["", "A", "B"], [
        ["kind", a.kind, b.kind], ["scores from", a.source, b.source], ["version", a.version, b.version],
        ["started", a.started_at, b.started_at], ["judges", ", ".join(a.judges), ", ".join(b.judges)],
        ["panel method", a.panel_method, b.panel_method], ["samples", a.samples, b.samples],
        *[[f"rubric {p}", (a.rubric_hashes.get(p) or "—")[:12], (b.rubric_hashes.get(p) or "—")[:12]] for p in pillars],
        ["prompt templates", (a.template_hash or "—")[:12], (b.template_hash or "—")[:12]],
        ["crisis resources", a.crisis_resources_version, b.crisis_resources_version]])
    lines += ["", "## Criteria", ""]
    lines += _md_table(
        ["pillar", "criterion", "rubric changed", "pairs", "mean A", "mean B", "B − A", "interval", "p", "changed",
         "up", "down", "pass→fail", "fail→pass", "only A", "only B", "status changed"],
        [[c.pillar, c.criterion, c.criterion_changed, c.n, c.mean_a, c.mean_b, c.mean_difference,
          interval_text(c.ci_low, c.ci_high, c.small_n), c.wilcoxon_p, c.changed, c.moved_up, c.moved_down,
          c.pass_to_fail, c.fail_to_pass, c.only_a, c.only_b, c.status_changed] for c in comparison.criteria])
    if comparison.pillars:
        lines += ["", "## Critical gates per pillar", "", "An item fails a pillar when it fails any of its critical "
                  "criteria.", ""]
        lines += _md_table(["pillar", "items", "failing A", "failing B", "pass→fail", "fail→pass"],
                           [[p.pillar, p.n, p.failing_a, p.failing_b, p.pass_to_fail, p.fail_to_pass]
                            for p in comparison.pillars])
    if comparison.gate_flips:
        lines += ["", "## Items whose pillar verdict flipped", ""]
        lines += _md_table(["item", "target", "pillar", "A", "B", "criteria"],
                           [[f.item_id, f.target, f.pillar, "fails" if f.failing_a else "passes",
                             "fails" if f.failing_b else "passes", ", ".join(f.criteria)]
                            for f in comparison.gate_flips])
    for side, items in (("A", comparison.items_only_a), ("B", comparison.items_only_b)):
        if items:
            lines += ["", f"## Items in run {side} only ({len(items)})", ""]
            lines += _md_table(["item", "target"], [[i["item_id"], i["target"]] for i in items])
    lines += ["", f"Every changed unit ({len(comparison.changes)}) is listed in compare.json (`changes`).", ""]
    return "\n".join(lines)
