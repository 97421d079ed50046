"""A validation's files: summary.json (the validity table and what it rests on), validity.md, validity.html.

summary.json: {"kind": "validity", "meta", "rows" (calibration.validity.ValidityRow as dicts), "disagreements"
(the items where each judge and the humans differ most, with the judge's rationale), "datasets" (per set:
items, human raters, the mapping and the unmapped dimensions), "gate" {"set", "failures"}}.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.table import Table

from calibration.validity import Disagreement, Estimate, ValidityRow
from judge.rundir import write_text_atomic
from judge.textsafe import markdown_safe

SUMMARY = "summary.json"
MARKDOWN = "validity.md"
PAGE = "validity.html"


def _rationales(verdicts: Path, wanted: set[tuple[str, str, str]]) -> dict[tuple[str, str, str], str]:
    """The judge's rationale (sample 0) for each (item, rubric criterion, judge) asked, read line by line."""
    from calibration.validate import iter_verdicts

    found: dict[tuple[str, str, str], str] = {}
    for row in iter_verdicts(verdicts):
        key = (str(row.get("item_id")), str(row.get("criterion")), str(row.get("judge")))
        if key in wanted and not row.get("sample") and row.get("rationale"):
            found.setdefault(key, str(row["rationale"]))
    return found


def summary_document(rows: Sequence[ValidityRow], worst: Sequence[Disagreement], sets: Sequence[Any],
                     meta: dict[str, Any], failures: list[str], verdicts: Path | None) -> dict[str, Any]:
    by_set = {s.name: s for s in sets}
    wanted = {(d.item_id, by_set[d.dataset].rationale_of.get(d.criterion, d.criterion), d.judge) for d in worst}
    rationales = _rationales(verdicts, wanted) if verdicts is not None and verdicts.is_file() else {}
    return {
        "kind": "validity",
        "meta": meta,
        "rows": [r.as_dict() for r in rows],
        "disagreements": [
            {**asdict(d), "rationale_criterion": by_set[d.dataset].rationale_of.get(d.criterion, d.criterion),
             "rationale": rationales.get((d.item_id, by_set[d.dataset].rationale_of.get(d.criterion, d.criterion),
                                          d.judge))}
            for d in worst
        ],
        "datasets": [
            {"name": s.name, "pillar": s.pillar, "items": len(s.items),
             "raters": sorted({a.rater for a in s.human}),
             "mapping": [asdict(m) for m in s.mappings], "unmapped": list(s.unmapped),
             "critical": sorted(s.critical)}
            for s in sets
        ],
        "gate": {"set": bool(meta.get("gate")), "failures": failures},
    }


def _fmt(estimate: Estimate | dict[str, Any] | None) -> str:
    if estimate is None:
        return ""
    e = estimate if isinstance(estimate, dict) else asdict(estimate)
    if e["value"] is None:
        return "n/a"
    if e.get("ci_low") is None or e.get("ci_high") is None:
        return f"{e['value']:.3f}"
    return f"{e['value']:.3f} [{e['ci_low']:.3f}, {e['ci_high']:.3f}]"


def validity_table(rows: Sequence[ValidityRow], title: str | None = None) -> Table:
    """The terminal table: per dataset × criterion × judge, judge vs humans beside humans vs humans."""
    table = Table(title=title)
    for name, justify in (("dataset", "left"), ("criterion", "left"), ("judge", "left"), ("n", "right"),
                          ("metric", "left"), ("judge~humans", "right"), ("human~human", "right"),
                          ("gap", "right"), ("verdict", "left")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for r in rows:
        table.add_row(r.dataset, ("* " if r.critical else "") + r.criterion, r.judge, str(r.n_items), r.metric,
                      _fmt(r.judge_vs_humans), _fmt(r.human_vs_human), _fmt(r.gap), r.verdict_text)
    return table


def to_markdown(document: dict[str, Any]) -> str:
    meta = document["meta"]
    lines = ["# Validity of the judges", "",
             f"Judges: {', '.join(meta['judges']) or '(none)'}; tolerance {meta['tolerance']:g}; at least "
             f"{meta['min_items']} items; {meta['bootstrap']} bootstrap resamples (seed {meta['seed']}).", "",
             "| dataset | criterion | judge | n | metric | judge~humans | human~human | gap | judge~consensus | "
             "MAE judge | MAE humans | alt-test ω | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in document["rows"]:
        alt = r["alt_test"]
        lines.append(
            f"| {r['dataset']} | {'**' if r['critical'] else ''}{r['criterion']}{'**' if r['critical'] else ''} | "
            f"{r['judge']} | {r['n_items']} | {r['metric']} | {_fmt(r['judge_vs_humans'])} | "
            f"{_fmt(r['human_vs_human'])} | {_fmt(r['gap'])} | {_fmt(r['judge_vs_consensus'])} | "
            f"{_fmt(r['mae_judge'])} | {_fmt(r['mae_humans'])} | "
            f"{'n/a' if alt['winning_rate'] is None else format(alt['winning_rate'], '.2f')} | {r['verdict_text']}"
            + (f" ({r['reason']})" if r["reason"] else "") + " |")
    lines += ["", "Critical criteria in bold. A gap is judge~humans minus human~human in the metric shown; "
                  "negative: the judge is further from the humans than they are from each other.", ""]
    for d in document["datasets"]:
        lines += [f"## {d['name']}", "", f"{d['items']} items judged with the {d['pillar']} rubric; raters: "
                  f"{', '.join(d['raters'])}.", "", "Mapping:", ""]
        lines += [f"- {m['criterion']} ← {m['human_measure']}: {m['why']}" for m in d["mapping"]]
        if d["unmapped"]:
            lines += ["", "Unmapped (no criterion measures the same construct):", ""]
            lines += [f"- {u['dimension']}: {u['why']}" for u in d["unmapped"]]
        lines.append("")
    if document["disagreements"]:
        lines += ["## Largest disagreements", "", "| dataset | criterion | judge | item | judge | humans | rationale |",
                  "|---|---|---|---|---|---|---|"]
        for d in document["disagreements"]:
            humans = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                               for k, v in d["human_scores"].items())
            lines.append(f"| {d['dataset']} | {d['criterion']} | {d['judge']} | {d['item_id']} | "
                         f"{d['judge_score']} | {humans} | {(d['rationale'] or '').replace('|', '/')} |")
        lines.append("")
    gate = document["gate"]
    if gate["set"]:
        lines += ["## Gate", ""] + ([f"- failed: {f}" for f in gate["failures"]] or ["Passed."]) + [""]
    return markdown_safe("\n".join(lines))


def write_validity(out: Path, rows: Sequence[ValidityRow], worst: Sequence[Disagreement], sets: Sequence[Any],
                   meta: dict[str, Any], failures: list[str], verdicts: Path, *,
                   report: bool = True) -> tuple[Path, ...]:
    """OUT/summary.json, validity.md and (with `report`) validity.html, each owner-only and replaced atomically."""
    document = summary_document(rows, worst, sets, meta, failures, verdicts)
    summary, markdown = out / SUMMARY, out / MARKDOWN
    write_text_atomic(summary, [json.dumps(document, indent=2, allow_nan=False, ensure_ascii=False) + "\n"])
    write_text_atomic(markdown, [to_markdown(document) + "\n"])
    if not report:
        return summary, markdown
    from judge.report.validity import write_validity_page

    return summary, markdown, write_validity_page(document, out / PAGE, source=out)
