"""The validity page of `trustmh validate`: the validity table, a forest plot per criterion (each judge's
agreement with the humans beside the humans' agreement with each other) and the items where the judge and
the humans differ most, with the judge's rationale. It reads the numbers of OUT/summary.json (a plain
dict, written by calibration.validity_outputs) and computes none."""

from __future__ import annotations

import os
import re
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup

from judge.report import figures
from judge.report.page import Figure, Page, Section, Table, fmt, num, text
from judge.rundir import write_text_atomic

PART = "Validity"
HUMANS = "humans ~ each other"


def _slug(*parts: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")


def _value(estimate: dict[str, Any] | None, key: str = "value") -> Any:
    return None if estimate is None else estimate.get(key)


def table_section(document: dict[str, Any]) -> Section:
    rows = document["rows"]
    columns = ["dataset", "criterion", "judge", "n", "metric", "judge ~ humans", "human ~ human", "gap",
               "gap ci low", "gap ci high", "verdict", "why"]
    cells = [[text(r["dataset"]), text(r["criterion"]), text(r["judge"]), num(r["n_items"]), text(r["metric"]),
              num(_value(r["judge_vs_humans"])), num(_value(r["human_vs_human"])), num(_value(r["gap"])),
              num(_value(r["gap"], "ci_low")), num(_value(r["gap"], "ci_high")), text(r["verdict_text"]),
              text(r["reason"] or r["gap"].get("reason") or r["alt_test"].get("reason"))] for r in rows]
    # the rest of each row in a second table: twenty columns in one do not fit a page
    detail_columns = ["dataset", "criterion", "judge", "critical", "published", "judge ~ humans ci low",
                      "judge ~ humans ci high", "judge ~ consensus", "MAE judge", "MAE humans", "alt-test ω"]
    detail = [[text(r["dataset"]), text(r["criterion"]), text(r["judge"]), num(r["critical"]), num(r["published"]),
               num(_value(r["judge_vs_humans"], "ci_low")), num(_value(r["judge_vs_humans"], "ci_high")),
               num(_value(r["judge_vs_consensus"])), num(_value(r["mae_judge"])), num(_value(r["mae_humans"])),
               num(r["alt_test"]["winning_rate"])] for r in rows]
    intro = ("Per dataset × criterion × judge: the judge's agreement with each human, averaged (judge ~ humans), "
             "beside the humans' agreement with each other on the same items (quadratic-weighted kappa for "
             "ordinal criteria, Cohen's kappa for categories), the gap between them with a paired bootstrap "
             f"interval, and the verdict (tolerance {fmt(document['meta']['tolerance'])}). The second table holds "
             "the rest of each row: whether the criterion is critical (gated), the judge's interval, its agreement "
             "with the humans' consensus, the mean absolute errors and the alternative-annotator test's winning "
             "rate. Published judges are the ones the dataset records: reference points, never gated.")
    table = Table("Validity table", columns, cells, name="validity")
    tables = [table, Table("Validity table, the rest of each row", detail_columns, detail, name="validity-detail")]
    panels = []
    for dataset, criterion in dict.fromkeys((r["dataset"], r["criterion"]) for r in rows):
        members = [r for r in rows if (r["dataset"], r["criterion"]) == (dataset, criterion)]
        first = members[0]
        labels = [HUMANS, *[r["judge"] for r in members]]
        estimates = [first["human_vs_human"], *[r["judge_vs_humans"] for r in members]]
        panels.append(figures.IntervalPanel(
            f"{dataset}: {criterion} ({first['metric']})", labels, [_value(e) for e in estimates],
            [_value(e, "ci_low") for e in estimates], [_value(e, "ci_high") for e in estimates],
            reference=_value(first["human_vs_human"]),
            passed=[True, *[r["verdict"] != "worse than the humans" for r in members]]))
    if not panels:
        return Section("validity", "Validity table", PART, intro, nothing="Nothing to show: no criterion was "
                       "scored by a judge and rated by the humans.", tables=tables)
    svg = figures.interval_panels(panels, key="validity", columns=2)
    return Section("validity", "Validity table", PART, intro,
                   figure=Figure(Markup(svg), "Forest plot: the humans' agreement with each other (first row, and the "
                                              "dashed line) and each judge's agreement with the humans, with 95 % "
                                              "bootstrap intervals; red: worse than the humans beyond the tolerance."),
                   tables=tables)


def disagreement_section(document: dict[str, Any]) -> Section:
    found = document["disagreements"]
    intro = ("The items where each judge and the humans differ most (ordinal: the distance from the humans' mean; "
             "categories: the share of humans who chose another label), with the judge's rationale.")
    table = Table("Largest disagreements", ["dataset", "criterion", "judge", "item", "judge score", "humans",
                                            "distance", "rationale of", "rationale"],
                  [[text(d["dataset"]), text(d["criterion"]), text(d["judge"]), text(d["item_id"]),
                    num(d["judge_score"]) if isinstance(d["judge_score"], float) else text(d["judge_score"]),
                    text(", ".join(f"{k} {fmt(v)}" for k, v in d["human_scores"].items())),
                    num(d["distance"]), text(d["rationale_criterion"]), text(d["rationale"])] for d in found],
                  name="disagreements")
    return Section("disagreements", "Where the judge and the humans differ most", PART, intro,
                   nothing="A table only: the items are read, not drawn." if found else
                   "Nothing to show: the judges agree with the humans on every item.", tables=[table])


def mapping_section(document: dict[str, Any]) -> Section:
    mapped = Table("Mapping", ["dataset", "criterion", "rubric criterion", "human measure", "why"],
                   [[text(d["name"]), text(m["criterion"]), text(m["rubric_criterion"]), text(m["human_measure"]),
                     text(m["why"])] for d in document["datasets"] for m in d["mapping"]], name="mapping")
    unmapped = Table("Unmapped human dimensions", ["dataset", "dimension", "why"],
                     [[text(d["name"]), text(u["dimension"]), text(u["why"])] for d in document["datasets"]
                      for u in d["unmapped"]], name="unmapped")
    return Section("mapping", "What was compared", PART,
                   "Each human measure and the rubric criterion that measures the same construct; dimensions with "
                   "no counterpart are listed, never forced.", nothing="A table only.", tables=[mapped, unmapped])


def gate_section(document: dict[str, Any]) -> Section:
    gate = document["gate"]
    if not gate["set"]:
        return Section("gate", "Gate", PART, nothing="No gate was set (`trustmh validate … --gate`).")
    table = Table("Gate failures", ["failure"], [[text(f)] for f in gate["failures"]], name="gate")
    return Section("gate", "Gate", PART, "Every critical criterion of the judges this run asked must be as close "
                   "to the humans as they are to each other.",
                   nothing="Passed." if not gate["failures"] else f"Failed: {len(gate['failures'])} row(s).",
                   tables=[table])


def validity_page(document: dict[str, Any], source: Path) -> Page:
    meta = document["meta"]
    shown = {k: v for k, v in meta.items() if k != "judge_settings"}  # the judges' names are listed already
    facts = [(str(k), v if isinstance(v, str) else fmt(v)) for k, v in shown.items()
             if not isinstance(v, list | dict)]
    facts += [(str(k), ", ".join(map(str, v))) for k, v in shown.items() if isinstance(v, list)]
    facts += [("rubric", f"{pillar} {digest[:12]}") for pillar, digest in shown.get("rubric_hashes", {}).items()]
    sections = [table_section(document), disagreement_section(document), mapping_section(document),
                gate_section(document)]
    return Page(title=f"Judge validity: {source.resolve().name}", kind="validity", source=str(source.resolve()),
                facts=facts, sections=sections, generated=datetime.now(UTC).isoformat(timespec="seconds"))


def write_validity_page(document: dict[str, Any], target: Path, source: Path) -> Path:
    """OUT/validity.html, owner-only (matplotlib and the templates load only now)."""
    from judge.report.render import render_page

    html = render_page(validity_page(document, source))
    old_umask = os.umask(0o077)
    try:
        write_text_atomic(target, [html])
        os.chmod(target, stat.S_IRUSR | stat.S_IWUSR)
    finally:
        os.umask(old_umask)
    return target
