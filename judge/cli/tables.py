"""Terminal tables of a finished run's summary."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from rich.console import Console
from rich.table import Table


def print_pillar_summary(summary: dict[str, Any], console: Console) -> None:
    """Per pillar × judge: mean score of each criterion and the critical-failure rate."""
    means: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in summary["mean_scores"]:
        if row["mean"] is not None:
            means[(row["pillar"], row["judge"])].append(f"{row['criterion']} {row['mean']:.2f}")
    rates: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in summary["critical_failure_rate"]:
        rates[(row["pillar"], row["judge"])].append(row["rate"])
    table = Table(title="Mean score per criterion (all targets pooled)")
    for column in ("pillar", "judge", "criteria", "critical-failure rate by target"):
        table.add_column(column, overflow="fold")  # a judge name is never cut to "openai:…"
    for pillar, judge in sorted(means):
        shown = ", ".join(f"{r:.0%}" for r in rates.get((pillar, judge), [])) or "-"
        table.add_row(pillar, judge, "\n".join(means[(pillar, judge)]), shown)
    console.print(table)
    calls = summary["calls"]
    console.print(
        f"{summary['items']} items, {calls['planned']} judge calls ({calls['requested']} sent, "
        f"{calls['cache_hits']} cached, {calls['failed']} failed); cost this run: "
        f"{'unknown' if summary['cost_usd_this_run'] is None else '$' + format(summary['cost_usd_this_run'], '.4f')}"
    )


def print_agreement(agreement: list[dict[str, Any]], console: Console) -> None:
    """Krippendorff's alpha among judges, pairwise kappa and self-consistency per pillar × criterion."""
    table = Table(title="Agreement among judges")
    for column in ("pillar", "criterion", "items", "alpha (ordinal)", "pairwise QWK", "self-consistency (alpha)"):
        table.add_column(column, overflow="fold")  # judge names in the last two columns are never cut
    for row in agreement:
        pairs = ", ".join(f"{'~'.join(p['judges'])} {_fmt(p['qwk'])}" for p in row["pairwise_qwk"]) or "-"
        consistency = ", ".join(f"{c['judge']} {_fmt(c['alpha_ordinal'])}" for c in row["self_consistency"]) or "-"
        table.add_row(
            row["pillar"], row["criterion"], str(row["n_items"]), _fmt(row["alpha_ordinal"]), pairs, consistency
        )
    console.print(table)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
