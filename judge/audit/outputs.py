"""audit.json (flat records, easy to load into a data frame) and audit.md (readable tables)."""

from __future__ import annotations

import json
from typing import Any

from judge.audit.effects import ALL_CRITERIA, Effects, Record
from judge.audit.probes import PROBES
from judge.log import Audit, document
from judge.stats.bootstrap import is_small_n
from judge.textsafe import markdown_safe

WHAT_GOOD_LOOKS_LIKE = {
    "invariance": "a good judge's scores do not move: shifts near 0, no flips",
    "sensitivity": "a good judge's scores fall: negative shifts, critical criteria flip to fail, detection near 1",
    "judges": "a good judge gives its own model family no more than other judges give the same responses",
    "halo": "a judge free of halo scores each critical criterion the same alone as with the whole pillar: "
    "shifts and changed share near 0, no flips",
}


def to_json(effects: Effects, meta: dict[str, Any]) -> dict[str, Any]:
    """The audit.json object (`judge.log.Audit`)."""
    return document(Audit(meta=meta, results=[r.as_dict() for r in effects.records], coverage=effects.coverage))


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:+.3f}" if value < 0 else f"{value:.3f}"


def _cell(record: Record | None) -> str:
    if record is None:
        return ""
    if record.value is None:
        return "n/a"
    interval = (
        "" if record.ci_low is None or record.ci_high is None else f" [{_fmt(record.ci_low)}, {_fmt(record.ci_high)}]"
        + (" small n" if is_small_n(record.n) else "")
    )
    return f"{_fmt(record.value)}{interval}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
    ]


def _probe_section(probe: str, records: list[Record], coverage: list[dict[str, Any]]) -> list[str]:
    spec = PROBES[probe]
    lines = [f"## {probe}", "", f"Expected: {WHAT_GOOD_LOOKS_LIKE[spec.purpose]}.", ""]
    for row in coverage:
        counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in row.items() if k not in ("probe", "judge"))
        lines.append(f"- {row['judge']}: {counts}")
    lines.append("")
    rows_by_criterion: dict[tuple[str, str, str], dict[str, Record]] = {}
    for r in records:
        if r.variant is None:
            rows_by_criterion.setdefault((r.judge, r.pillar, r.criterion), {})[r.metric] = r
    metrics = [m for m in spec.metrics if any(m in row for row in rows_by_criterion.values())]
    if rows_by_criterion:
        rows = [
            # n: pairs behind the row (self-preference: items of both groups; see each record in audit.json)
            [judge, f"{pillar}/{criterion}", str(max(r.n for r in row.values())), *(_cell(row.get(m)) for m in metrics)]
            for (judge, pillar, criterion), row in rows_by_criterion.items()
        ]
        lines += _table(["judge", "criterion", "n", *metrics], rows)
    per_variant = [r for r in records if r.variant is not None]
    headline = "detection_rate" if probe == "degrade" else "mean_shift"
    for metric in dict.fromkeys(m for m in ("mean_shift", headline) if any(r.metric == m for r in per_variant)):
        chosen = [r for r in per_variant if r.metric == metric]
        variants = list(dict.fromkeys(r.variant or "" for r in chosen))
        index = {(r.judge, r.pillar, r.criterion, r.variant): r for r in chosen}
        rows = [
            [judge, f"{pillar}/{criterion}", *(_cell(index.get((judge, pillar, criterion, v))) for v in variants)]
            for judge, pillar, criterion in dict.fromkeys((r.judge, r.pillar, r.criterion) for r in chosen)
        ]
        lines += [f"{metric} by variant:", "", *_table(["judge", "criterion", *variants], rows)]
    missing = [r for r in records if r.value is None]
    if missing:
        lines += ["Not computable:", ""]
        lines += [f"- {r.judge} {r.pillar}/{r.criterion} {r.metric}: {r.reason}" for r in missing]
        lines.append("")
    return lines


def to_markdown(effects: Effects, meta: dict[str, Any], gate_failures: list[str]) -> str:
    lines = ["# Judge audit", ""]
    lines += [
        f"- {key}: {', '.join(map(str, value)) if isinstance(value, list) else value}"
        for key, value in meta.items()
        if not isinstance(value, dict) and value != []
    ]
    for folder, calls in (meta.get("calls") or {}).items():
        lines.append(
            f"- calls ({folder}/): {calls.get('planned', 0)} planned, {calls.get('requested', 0)} requested, "
            f"{calls.get('cache_hits', 0)} from cache, {calls.get('resumed', 0)} resumed, "
            f"{calls.get('failed', 0)} failed"
        )
    lines += [
        "",
        "Shifts are variant score − original score in the criterion's scale points; intervals are 95 % "
        "percentile bootstrap intervals over original items. "
        f"Criterion `{ALL_CRITERIA}` is a whole pillar (degrade detection). See docs/audit.md.",
        "",
    ]
    if gate_failures:
        lines += ["**Gates failed:**", "", *(f"- {f}" for f in gate_failures), ""]
    elif meta.get("gates"):
        lines += [f"Gates passed: {', '.join(meta['gates'])}", ""]
    for probe in meta["probes"]:
        records = [r for r in effects.records if r.probe == probe]
        lines += _probe_section(probe, records, [c for c in effects.coverage if c["probe"] == probe])
    return markdown_safe("\n".join(lines))


def render(effects: Effects, meta: dict[str, Any], gate_failures: list[str]) -> tuple[str, str]:
    """(audit.json text, audit.md text)."""
    data = to_json(effects, {**meta, "gate_failures": gate_failures})
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n", to_markdown(
        effects, meta, gate_failures
    ) + "\n"
