"""Pure summaries of verdict rows: mean scores and critical-failure rates per pillar × target.

Only successful verdicts carry scores; failed ones are counted, never averaged in. Each summary is an
accumulator fed one row (or one call's rows) at a time, so a run of any size is summarised in one pass
over its verdicts file holding only the per-group tallies; the list functions feed them a whole list.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from judge.rubric import Rubric


class ScoreMeans:
    """Mean score per pillar × target × criterion × judge: per group the integer sum and three counts."""

    def __init__(self) -> None:
        self._groups: dict[tuple[str, str | None, str, str], list[int]] = {}

    def add(self, row: Mapping[str, Any]) -> None:
        tally = self._groups.setdefault((row["pillar"], row["target"], row["criterion"], row["judge"]), [0, 0, 0, 0])
        status = row["status"]
        if status == "ok":
            tally[0] += row["score"]
            tally[1] += 1
        elif status == "not_applicable":
            tally[2] += 1
        elif status == "failed":
            tally[3] += 1

    def table(self) -> list[dict[str, Any]]:
        return [
            {
                "pillar": pillar,
                "target": target,
                "criterion": criterion,
                "judge": judge,
                "mean": round(total / n, 4) if n else None,
                "n": n,
                "not_applicable": not_applicable,
                "failed": failed,
            }
            for (pillar, target, criterion, judge), (total, n, not_applicable, failed) in sorted(
                self._groups.items(), key=lambda kv: _sort_key(kv[0])
            )
        ]


class CriticalFailures:
    """Share of judged responses (per pillar × target × judge) failing any critical criterion.

    Fed one judge call's rows at a time. A response counts once per judge call; calls whose critical
    criteria all failed to parse are left out of the denominator rather than counted as passes.
    """

    def __init__(self, rubrics: Mapping[str, Rubric]) -> None:
        self._critical = {
            pillar: {c.id: c.fail_below for c in rubric.criteria if c.severity == "critical"}
            for pillar, rubric in rubrics.items()
        }
        self._tallies: dict[tuple[str, str | None, str], Counter[str]] = defaultdict(Counter)

    def add_call(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        first = rows[0]
        critical = self._critical[first["pillar"]]
        judged = [r for r in rows if r["criterion"] in critical and r["status"] == "ok"]
        if not critical or not judged:
            return
        failed = any(r["score"] < critical[r["criterion"]] for r in judged)
        self._tallies[(first["pillar"], first["target"], first["judge"])]["failed" if failed else "passed"] += 1

    def table(self) -> list[dict[str, Any]]:
        return [
            {
                "pillar": pillar,
                "target": target,
                "judge": judge,
                "rate": round(t["failed"] / (t["failed"] + t["passed"]), 4),
                "n": t["failed"] + t["passed"],
            }
            for (pillar, target, judge), t in sorted(self._tallies.items(), key=lambda kv: _sort_key(kv[0]))
        ]


def _sort_key(key: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("" if part is None else str(part) for part in key)
