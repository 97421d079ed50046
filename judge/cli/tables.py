"""Terminal tables of a finished run's summary."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from judge.cli.common import say


def print_score_summary(summary: dict[str, Any], console: Console, calls_line: bool = True) -> None:
    """What a score run found, compactly: the mean of each criterion per target and judge, the critical-failure
    rate per pillar, target and judge, and the judge calls with the failed ones by reason. Judges are columns
    named `judge 1`, `judge 2`… and spelled out in a legend, so no name is cut however narrow the terminal."""
    judges = list(dict.fromkeys([*summary.get("judges", []), *(r["judge"] for r in summary["mean_scores"]),
                                 *(r["judge"] for r in summary["critical_failure_rate"])]))
    columns = _judge_columns(judges)
    means: dict[tuple[str, str, str], dict[str, str]] = defaultdict(dict)
    for row in summary["mean_scores"]:
        shown = "n/a" if row["mean"] is None else f"{row['mean']:.2f}"
        extra = [f"n={row['n']}"] + [f"{row[k]} {label}" for k, label in (("failed", "failed"),
                                                                           ("not_applicable", "n/a")) if row.get(k)]
        means[(row["pillar"], _target(row["target"]), row["criterion"])][row["judge"]] = f"{shown} ({', '.join(extra)})"
    table = _table("Mean score per criterion and target (n: successful verdicts)", ["pillar", "target", "criterion"],
                   columns)
    for (pillar, target, criterion), by_judge in means.items():
        table.add_row(pillar, target, criterion, *(by_judge.get(j, "-") for j in judges))
    console.print(table)
    rates: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for row in summary["critical_failure_rate"]:
        rates[(row["pillar"], _target(row["target"]))][row["judge"]] = f"{row['rate']:.0%} of {row['n']}"
    if rates:
        table = _table("Critical-failure rate (share of judged responses failing a critical criterion)",
                       ["pillar", "target"], columns)
        for (pillar, target), by_judge in rates.items():
            table.add_row(pillar, target, *(by_judge.get(j, "-") for j in judges))
        console.print(table)
    print_legend(judges, console)
    if not calls_line:  # `score` says it on standard error with the path of its verdicts
        return
    calls = summary["calls"]
    cost = summary.get("cost_usd_this_run")
    say(console, f"{summary['items']} items; judge calls: {calls['planned']} planned, {calls['requested']} sent, "
                 f"{calls['cache_hits']} from cache, {calls['failed']} failed{failure_reasons(summary)}; cost this "
                 f"run: {'unknown' if cost is None else '$' + format(cost, '.4f')}")


def failure_reasons(summary: dict[str, Any]) -> str:
    """` (timeout 2, auth 1)`: the failed calls by reason, or nothing when none failed."""
    reasons = ", ".join(f"{reason} {count}" for reason, count in (summary.get("failures_by_reason") or {}).items())
    return f" ({reasons})" if reasons else ""


def _target(target: str | None) -> str:
    return "(no target)" if target is None else target


def _judge_columns(judges: list[str]) -> list[str]:
    return ["judge"] if len(judges) == 1 else [f"judge {k}" for k in range(1, len(judges) + 1)]


def print_legend(judges: list[str], console: Console) -> None:
    """The judge names behind the `judge N` columns, one a line, never wrapped (they can be pasted)."""
    for column, judge in zip(_judge_columns(judges), judges, strict=True):
        say(console, f"  {column}: {judge}")


def wrapping_table(title: str, columns: list[str], numeric: Sequence[str] = ()) -> Table:
    """A table whose cells wrap and are never cut with an ellipsis, however narrow the terminal: target, suite
    and judge names are shown whole. `numeric` columns are right-aligned."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=False, min_width=min(len(column), 12),
                         justify="right" if column in numeric else "left")
    return table


def _table(title: str, keys: list[str], columns: list[str]) -> Table:
    return wrapping_table(title, [*keys, *columns], numeric=columns)


HEADLINE = {"degrade": "detection_rate", "self-preference": "self_preference", "halo": "mean_shift"}


def print_audit_summary(audit: dict[str, Any], console: Console) -> None:
    """Per probe × judge: the probe's headline effect on the criterion that moved most (with its interval) and the
    highest flip rate of a critical criterion, so a glance shows which judge a probe moves; audit.md has every
    criterion and variant."""
    records = [r for r in audit.get("results", []) if r.get("variant") is None]
    judges = list(dict.fromkeys(r["judge"] for r in records))
    if not judges:
        return
    table = _table("Audit: effect per probe × judge (all variants pooled; the criterion that moved most)",
                   ["probe", "metric"], _judge_columns(judges))
    probes = list(dict.fromkeys(r["probe"] for r in records))
    for probe in probes:
        metric = HEADLINE.get(probe, "mean_shift")
        cells = [_effect(r for r in records if (r["probe"], r["judge"], r["metric"]) == (probe, judge, metric))
                 for judge in judges]
        if any(c != "-" for c in cells):
            table.add_row(probe, metric, *cells)
        flips = [_highest(r for r in records if (r["probe"], r["judge"], r["metric"]) == (probe, judge, "flip_rate"))
                 for judge in judges]
        if any(f != "-" for f in flips):
            table.add_row(probe, "flip_rate", *flips)
    console.print(table)
    print_legend(judges, console)


def _effect(found: Any) -> str:
    """The criterion that moved most: its value, interval and name (the others are in audit.md)."""
    rows = [r for r in found if r.get("value") is not None]
    if not rows:
        return "-"
    top = max(rows, key=lambda r: abs(r["value"]))
    interval = (f" [{top['ci_low']:+.2f}, {top['ci_high']:+.2f}]"
                if top.get("ci_low") is not None and top.get("ci_high") is not None else "")
    return f"{top['value']:+.2f}{interval}\n{top['criterion']}" + (f" (of {len(rows)})" if len(rows) > 1 else "")


def _highest(found: Any) -> str:
    rows = [r for r in found if r.get("value") is not None]
    if not rows:
        return "-"
    top = max(rows, key=lambda r: r["value"])
    return f"{top['value']:.0%} of {top.get('n')}\n{top['criterion']}"


def _value(value: float | None) -> str:
    return "null" if value is None else format(value, ".3g")


def gate_lines(gate_results: list[dict[str, Any]], shown: int = 2) -> list[str]:
    """One line per gate: passed, or failed with how many checks failed, naming every failing judge once with
    its first `shown` failing criteria (audit.md lists them all)."""
    lines = []
    for result in gate_results:
        checks = result.get("checks", [])
        if result.get("passed"):
            lines.append(f"gate passed: {result['gate']} ({len(checks)} checks)")
            continue
        if not checks:
            lines.append(f"gate failed: {result['gate']}: nothing was measured (no pair of verdicts for this probe "
                         "and metric)")
            continue
        failed: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for check in checks:
            if not check.get("passed"):
                failed[check["judge"]].append(check)
        named = []
        for judge, misses in failed.items():
            cells = ", ".join(f"{c['pillar']}/{c['criterion']} = {_value(c.get('value'))}" for c in misses[:shown])
            more = f" (+{len(misses) - shown} more)" if len(misses) > shown else ""
            named.append(f"{result['probe']} × {judge} × {cells}{more}")
        count = sum(len(m) for m in failed.values())
        lines.append(f"gate failed: {result['gate']}: {count} of {len(checks)} checks: {'; '.join(named)}")
    return lines


def print_agreement(agreement: list[dict[str, Any]], console: Console) -> None:
    """Krippendorff's alpha among judges, pairwise kappa and self-consistency per pillar × criterion."""
    table = _table("Agreement among judges", ["pillar", "criterion", "items", "alpha (ordinal)", "pairwise QWK",
                                               "self-consistency (alpha)"], [])
    for row in agreement:
        pairs = ", ".join(f"{'~'.join(p['judges'])} {_fmt(p['qwk'])}" for p in row["pairwise_qwk"]) or "-"
        consistency = ", ".join(f"{c['judge']} {_fmt(c['alpha_ordinal'])}" for c in row["self_consistency"]) or "-"
        table.add_row(
            row["pillar"], row["criterion"], str(row["n_items"]), _fmt(row["alpha_ordinal"]), pairs, consistency
        )
    console.print(table)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
