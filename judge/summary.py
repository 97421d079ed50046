"""Pure summaries of verdict rows: mean scores and critical-failure rates per pillar × target.

Only successful verdicts carry scores; failed ones are counted, never averaged in. Each summary is an
accumulator fed one row (or one call's rows) at a time, so a run of any size is summarised in one pass
over its verdicts file holding only the per-group tallies; the list functions feed them a whole list.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from judge.labels import risk_label
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

    Fed one judge call's rows at a time. A response counts once per judge and sample, even when its
    critical criteria were judged in several calls (`--split-critical`, masked parts): those calls' rows
    are held until every critical criterion has arrived. Responses whose critical criteria all failed to
    parse are left out of the denominator rather than counted as passes.
    """

    def __init__(self, rubrics: Mapping[str, Rubric]) -> None:
        self._critical = {
            pillar: {c.id: c.fail_below for c in rubric.criteria if c.severity == "critical"}
            for pillar, rubric in rubrics.items()
        }
        self._tallies: dict[tuple[str, str | None, str], Counter[str]] = defaultdict(Counter)
        self._pending: dict[tuple[Any, ...], dict[str, tuple[str, Any]]] = {}

    def add_call(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        first = rows[0]
        critical = self._critical[first["pillar"]]
        mine = {r["criterion"]: (r["status"], r["score"]) for r in rows if r["criterion"] in critical}
        if not mine:
            return
        key = (first["pillar"], first["target"], first["judge"], first["item_id"], first["role"], first["sample"])
        if len(mine) < len(critical):  # one part of the response's critical criteria: wait for the rest
            mine = self._pending.setdefault(key, {}) | mine
            if len(mine) < len(critical):
                self._pending[key] = mine
                return
            self._pending.pop(key, None)
        self._decide(key, mine)

    def _decide(self, key: tuple[Any, ...], verdicts: Mapping[str, tuple[str, Any]]) -> None:
        pillar, target, judge = key[:3]
        critical = self._critical[pillar]
        judged = [(c, score) for c, (status, score) in verdicts.items() if status == "ok"]
        if not judged:
            return
        failed = any(score < critical[c] for c, score in judged)
        self._tallies[(pillar, target, judge)]["failed" if failed else "passed"] += 1

    def table(self) -> list[dict[str, Any]]:
        for key, verdicts in list(self._pending.items()):  # parts never asked (a tie-breaker's own parts)
            self._decide(key, verdicts)
        self._pending.clear()
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


class LabelAgreement:
    """How often each judge's reading of the risk (category, level) differs from the item's risk label,
    per pillar × judge: a judge-audit signal. One reading per judged response (judge × sample): with
    several calls per response only the pillar's first part is counted, so that no response counts twice."""

    def __init__(self, first_part: Callable[[str], str] | None = None) -> None:
        self.first_part = first_part or (lambda pillar: "")
        self._tallies: dict[tuple[str, str], dict[str, Counter[tuple[str, str]]]] = {}

    def add_call(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        first = rows[0]
        reading = first.get("reading")
        if reading is None or first.get("part", "") != self.first_part(first["pillar"]):
            return
        label = risk_label(first.get("meta") or {})
        if label is None:
            return
        tally = self._tallies.setdefault((first["pillar"], first["judge"]), {"category": Counter(), "level": Counter()})
        if label.category is not None:
            tally["category"][(label.category, reading["category"])] += 1
        if label.level is not None:
            tally["level"][(label.level, reading["risk_level"])] += 1

    def table(self) -> list[dict[str, Any]]:
        out = []
        for (pillar, judge), tally in sorted(self._tallies.items()):
            record: dict[str, Any] = {"pillar": pillar, "judge": judge}
            confusions = []
            for name, pairs in tally.items():
                n = sum(pairs.values())
                wrong = sum(count for (label, read), count in pairs.items() if label != read)
                record[f"{name}_n"] = n
                record[f"{name}_disagree"] = wrong
                record[f"{name}_share"] = round(wrong / n, 4) if n else None
                confusions += [
                    {"field": name, "label": label, "read": read, "n": count}
                    for (label, read), count in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
                    if label != read
                ]
            record["confusions"] = confusions
            out.append(record)
        return out


def _sort_key(key: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("" if part is None else str(part) for part in key)
