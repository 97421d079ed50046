"""`trustmh compare RUN_A RUN_B`: which scores moved between two runs (judge.compare, via judge.api.compare), with
a compact summary on the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from judge import api
from judge.cli.common import say
from judge.compare import DEFAULT_BOOTSTRAP, DEFAULT_SEED, default_out
from judge.log import CompareRunFacts, Comparison

out_console = Console()
LISTED = 5  # items named on the terminal per list; compare.md and compare.json have all


def _number(value: float | int | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _text(value: object) -> str:
    return "—" if value is None else str(value)


def _differing_facts(a: CompareRunFacts, b: CompareRunFacts) -> list[tuple[str, str, str]]:
    """The run facts that differ (rubric hashes shortened), as (field, A, B)."""
    rows = [("judges", ", ".join(a.judges), ", ".join(b.judges)), ("scores from", a.source, b.source),
            ("version", _text(a.version), _text(b.version)),
            ("panel method", _text(a.panel_method), _text(b.panel_method)),
            ("samples", _text(a.samples), _text(b.samples)),
            ("prompt templates", (a.template_hash or "—")[:12], (b.template_hash or "—")[:12]),
            ("crisis resources", _text(a.crisis_resources_version), _text(b.crisis_resources_version))]
    rows += [(f"rubric {p}", (a.rubric_hashes.get(p) or "—")[:12], (b.rubric_hashes.get(p) or "—")[:12])
             for p in sorted({*a.rubric_hashes, *b.rubric_hashes})]
    return [row for row in rows if row[1] != row[2]]


def _listed(items: list[str]) -> str:
    more = len(items) - LISTED
    return ", ".join(items[:LISTED]) + (f" and {more} more" if more > 0 else "")


def print_comparison(doc: Comparison, out: Path, console: Console) -> None:
    """What changed between the runs, the per-criterion table, the gate flips and what one run only has."""
    a, b = doc.runs["a"], doc.runs["b"]
    say(console, f"A: {a.directory}\nB: {b.directory}")
    differing = _differing_facts(a, b)
    if differing:
        facts = Table(title="What differs between the runs", title_justify="left")
        for column in ("", "A", "B"):
            facts.add_column(column, overflow="fold")
        for row in differing:
            facts.add_row(*row)
        console.print(facts)
    else:
        say(console, "the runs were made with the same judges, rubrics and prompt templates")
    for pillar in dict.fromkeys(c.pillar for c in doc.criteria):
        rows = []
        for c in (c for c in doc.criteria if c.pillar == pillar):
            shift = "—" if c.mean_difference is None else f"{c.mean_difference:+.2f}"
            interval = "—" if c.ci_low is None or c.ci_high is None else (
                f"[{c.ci_low:+.2f},{c.ci_high:+.2f}]" + ("*" if c.small_n else ""))
            pairs = str(c.n) if c.in_a and c.in_b else ("A only" if c.in_a else "B only")
            rows.append([c.criterion + (" †" if c.criterion_changed else ""), pairs, shift, interval,
                         _number(c.wilcoxon_p, 2), str(c.changed), _number(c.pass_to_fail), _number(c.fail_to_pass)])
        table = Table(title=f"{pillar}: B − A per criterion", title_justify="left", box=box.SIMPLE_HEAD,
                      padding=(0, 1, 0, 0), show_edge=False)
        table.add_column("criterion", overflow="fold")  # a long name wraps; the numbers are never cut
        for index, column in enumerate(("n", "B − A", "interval", "p", "moved", "→fail", "→pass"), start=1):
            width = max(len(column), *(len(row[index]) for row in rows))
            table.add_column(column, justify="right", no_wrap=True, min_width=width)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    if any(c.criterion_changed for c in doc.criteria):
        say(console, "† the criterion's rubric changed between the runs (its hash differs)")
    if any(c.small_n and c.ci_low is not None for c in doc.criteria):
        say(console, f"* small n: an interval over fewer than {doc.meta['small_n_below']} pairs, which "
                     "understates the uncertainty")
    for p in doc.pillars:
        say(console, f"{p.pillar}: {p.failing_a} of {p.n} items fail in A, {p.failing_b} in B "
                     f"({p.pass_to_fail} pass→fail, {p.fail_to_pass} fail→pass)")
    if doc.gate_flips:
        say(console, "pillar verdict flipped: " + _listed([f"{f.item_id} ({f.target}, {f.pillar})"
                                                           for f in doc.gate_flips]))
    for side, criteria, items in (
        ("A", [c for c in doc.criteria if c.in_a and not c.in_b], doc.items_only_a),
        ("B", [c for c in doc.criteria if c.in_b and not c.in_a], doc.items_only_b),
    ):
        if criteria:
            say(console, f"criteria in run {side} only: " + _listed([f"{c.pillar}/{c.criterion}" for c in criteria]))
        if items:
            say(console, f"{len(items)} item(s) in run {side} only: "
                         + _listed([f"{i['item_id']} ({i['target']})" for i in items]))
    say(console, f"B − A over n pairs; p: Wilcoxon signed-rank; moved: pairs whose score changed; →fail, →pass: "
                 f"pairs of a critical criterion that newly fail or pass. {len(doc.changes)} changed units are "
                 f"listed in {out / 'compare.json'}")


def compare_command(
    run_a: Annotated[Path, typer.Argument(
        help="The earlier run: the --out folder of `trustmh score` or `trustmh bench`.", show_default=False,
        metavar="RUN_A")],
    run_b: Annotated[Path, typer.Argument(help="The later run, over the same items (e.g. after a rubric or judge "
                                               "change).", show_default=False, metavar="RUN_B")],
    out: Annotated[Path | None, typer.Option(
        "--out", help="Folder for compare.json, compare.md and report.html (default: runs/compare-A-vs-B).",
        show_default=False)] = None,
    bootstrap: Annotated[int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples of units (0: no "
                                                                      "intervals).")] = DEFAULT_BOOTSTRAP,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")] = DEFAULT_SEED,
    no_report: Annotated[bool, typer.Option("--no-report", help="Write no report.html.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the line saying where the files went.")] = False,
) -> None:
    """Which scores moved from RUN_A to RUN_B, per criterion and item: paired differences with intervals, the
    Wilcoxon test, gate flips, and what only one run has.

    Example: trustmh compare runs/rubric-v1 runs/rubric-v2
    """
    chosen = out if out is not None else default_out(run_a, run_b)
    result = api.compare(run_a, run_b, out=chosen, bootstrap=bootstrap, seed=seed, report=not no_report)
    if not quiet:
        print_comparison(result.comparison, result.out, out_console)
    say(out_console, "wrote " + ", ".join(map(str, result.files)))
