"""Pure summaries of verdict rows: mean scores and critical-failure rates per pillar × target.

Only successful verdicts carry scores; failed ones are counted, never averaged in.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from statistics import fmean
from typing import Any

from judge.rubric import Rubric


def score_means(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean score per pillar × target × criterion × judge, with counts of what was left out."""
    groups: dict[tuple[str, str | None, str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["pillar"], row["target"], row["criterion"], row["judge"])].append(row)
    table = []
    for (pillar, target, criterion, judge), members in sorted(groups.items(), key=lambda kv: _sort_key(kv[0])):
        scores = [r["score"] for r in members if r["status"] == "ok"]
        table.append(
            {
                "pillar": pillar,
                "target": target,
                "criterion": criterion,
                "judge": judge,
                "mean": round(fmean(scores), 4) if scores else None,
                "n": len(scores),
                "not_applicable": sum(r["status"] == "not_applicable" for r in members),
                "failed": sum(r["status"] == "failed" for r in members),
            }
        )
    return table


def critical_failure_rates(rows: Iterable[dict[str, Any]], rubrics: dict[str, Rubric]) -> list[dict[str, Any]]:
    """Share of judged responses (per pillar × target × judge) failing any critical criterion.

    A response counts once per judge call; calls whose critical criteria all failed to parse are left
    out of the denominator rather than counted as passes.
    """
    calls: dict[tuple[str, str | None, str, str, int, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        calls[(row["pillar"], row["target"], row["judge"], row["item_id"], row["sample"], row["role"])].append(row)
    tallies: dict[tuple[str, str | None, str], Counter[str]] = defaultdict(Counter)
    for (pillar, target, judge, _item, _sample, _role), members in calls.items():
        rubric = rubrics[pillar]
        critical = {c.id: c.fail_below for c in rubric.criteria if c.severity == "critical"}
        judged = [r for r in members if r["criterion"] in critical and r["status"] == "ok"]
        if not critical or not judged:
            continue
        failed = any(r["score"] < critical[r["criterion"]] for r in judged)
        tallies[(pillar, target, judge)]["failed" if failed else "passed"] += 1
    return [
        {
            "pillar": pillar,
            "target": target,
            "judge": judge,
            "rate": round(t["failed"] / (t["failed"] + t["passed"]), 4),
            "n": t["failed"] + t["passed"],
        }
        for (pillar, target, judge), t in sorted(tallies.items(), key=lambda kv: _sort_key(kv[0]))
    ]


def failure_counts(reasons: Iterable[str | None]) -> dict[str, int]:
    return dict(sorted(Counter(r for r in reasons if r).items()))


def _sort_key(key: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("" if part is None else str(part) for part in key)
