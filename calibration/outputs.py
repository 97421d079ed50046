"""calibration.json (flat records) and calibration.md (readable tables)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from calibration.compute import CalibrationResult, Record
from judge.log import Calibration, ConfusionMatrix, document
from judge.rundir import write_text_atomic
from judge.stats.bootstrap import is_small_n
from judge.textsafe import markdown_safe

HEADLINE = ("alpha_ordinal_with_judge", "alpha_nominal_with_judge", "qwk", "kappa", "spearman", "pearson",
            "icc_a1", "icc_c1", "mae", "rmse", "bias", "exact", "within1", "alt_test_winning_rate",
            "self_consistency")


# (header, metric for ordinal criteria, metric for nominal ones); the full set is in calibration.json / .md
TABLE_COLUMNS = (
    ("QWK/κ", "qwk", "kappa"),
    ("ρ", "spearman", None),
    ("MAE", "mae", None),
    ("α +judge", "alpha_ordinal_with_judge", "alpha_nominal_with_judge"),
    ("α humans", "alpha_ordinal", "alpha_nominal"),
    ("self α", "self_consistency", "self_consistency"),
)


def results_table(result: CalibrationResult, title: str | None = None) -> Table:
    """The headline of each criterion × judge (against the humans' consensus) as a terminal table.

    ρ is Spearman's correlation with the humans' mean. Ordinal criteria show QWK and ordinal alpha,
    nominal ones Cohen's kappa and nominal alpha; the humans' own alpha sits beside the judge-added one
    for comparison. An empty cell does not apply to the criterion's scale; "—" could not be computed
    (calibration.json gives the reason).
    """
    records = [r for r in result.records if r.against is None]
    index = {(r.criterion, r.level, r.judge, r.metric): r for r in records}
    table = Table(title=title)
    table.add_column("criterion", overflow="fold", min_width=6)
    table.add_column("judge", overflow="fold", min_width=6)
    table.add_column("n", justify="right", min_width=3)
    for header, _, _ in TABLE_COLUMNS:
        table.add_column(header, justify="right", min_width=5)
    for criterion, level, judge in sorted({(r.criterion, r.level, r.judge) for r in records if r.judge}):
        nominal = (criterion, level, judge, "kappa") in index
        cells = []
        for _, ordinal_metric, nominal_metric in TABLE_COLUMNS:
            metric = nominal_metric if nominal else ordinal_metric
            owner = None if metric in ("alpha_ordinal", "alpha_nominal") else judge
            record = index.get((criterion, level, owner, metric)) if metric else None
            cells.append("" if metric is None else _fmt(record.value if record else None))
        paired = index.get((criterion, level, judge, "exact"))  # items scored by the judge and the humans
        label = criterion if level == "item" else f"{criterion} ({level})"
        table.add_row(label, judge, str(paired.n) if paired else "", *cells)
    return table


def to_json(result: CalibrationResult, meta: dict[str, Any],
            gates: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The calibration.json object (`judge.log.Calibration`); `gates` are `gate_results` records (an empty list:
    no gate was set)."""
    calibration = Calibration(
        meta=meta,
        results=[r.as_dict() for r in result.records],
        confusion_matrices=[
            ConfusionMatrix(criterion=c.criterion, judge=c.judge, against=c.against, level=c.level, labels=c.labels,
                            matrix=c.matrix, rows="judge", columns="human")
            for c in result.confusions
        ],
        gates=gates or [],
    )
    return document(calibration)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _cell(record: Record | None) -> str:
    if record is None:
        return ""
    if record.value is None:
        return "n/a"
    if record.ci_low is None or record.ci_high is None:
        return _fmt(record.value)
    small = " small n" if is_small_n(record.n) else ""
    return f"{_fmt(record.value)} [{_fmt(record.ci_low)}, {_fmt(record.ci_high)}]{small}"


def to_markdown(result: CalibrationResult, meta: dict[str, Any]) -> str:
    lines = ["# Calibration report", ""]
    lines += [f"- {key}: {value}" for key, value in meta.items()]
    lines.append("")
    criteria = sorted({r.criterion for r in result.records})
    for criterion in criteria:
        records = [r for r in result.records if r.criterion == criterion]
        for level in sorted({r.level for r in records}):
            at = [r for r in records if r.level == level]
            lines += [f"## {criterion} ({level} level)", ""]
            human = [r for r in at if r.judge is None]
            if human:
                lines += ["Among the humans: " + ", ".join(f"{r.metric} = {_cell(r)} (n={r.n})" for r in human), ""]
            judges = sorted({r.judge for r in at if r.judge is not None})
            metrics = [m for m in HEADLINE if any(r.metric == m and r.against is None for r in at)]
            if judges and metrics:
                lines.append("| judge | " + " | ".join(metrics) + " |")
                lines.append("|---|" + "---|" * len(metrics))
                for judge in judges:
                    cells = [_cell(next((r for r in at if r.judge == judge and r.metric == m and r.against is None),
                                        None)) for m in metrics]
                    lines.append(f"| {judge} | " + " | ".join(cells) + " |")
                lines.append("")
            per_human = [r for r in at if r.against is not None]
            if per_human:
                lines += ["Against each human:", "", "| judge | metric | " +
                          " | ".join(sorted({r.against for r in per_human if r.against})) + " |"]
                raters = sorted({r.against for r in per_human if r.against})
                lines.append("|---|---|" + "---|" * len(raters))
                for judge in judges:
                    for metric in dict.fromkeys(r.metric for r in per_human if r.judge == judge):
                        cells = [_cell(next((r for r in per_human if r.judge == judge and r.metric == metric
                                             and r.against == h), None)) for h in raters]
                        lines.append(f"| {judge} | {metric} | " + " | ".join(cells) + " |")
                lines.append("")
            missing = [r for r in at if r.value is None]
            if missing:
                lines += ["Not computable:", ""]
                reasons: dict[str, list[str]] = {}
                for r in missing:
                    reasons.setdefault(r.reason or "", []).append(f"{r.metric}" + (f" ({r.judge})" if r.judge else ""))
                lines += [f"- {reason}: {', '.join(dict.fromkeys(names))}" for reason, names in reasons.items()]
                lines.append("")
    for c in result.confusions:
        lines += [f"### Confusion: {c.criterion}, {c.judge} (rows) vs {c.against} (columns)", "",
                  "| | " + " | ".join(c.labels or ["(empty)"]) + " |", "|---|" + "---|" * len(c.labels)]
        lines += [f"| {label or '(empty)'} | " + " | ".join(str(v) for v in row) + " |"
                  for label, row in zip(c.labels, c.matrix, strict=True)]
        lines.append("")
    return markdown_safe("\n".join(lines))


def write_reports(out: Path, result: CalibrationResult, meta: dict[str, Any],
                  gates: list[dict[str, Any]] | None = None) -> tuple[Path, Path]:
    """calibration.json and calibration.md, each replaced atomically and readable by its owner only."""
    json_path, md_path = out / "calibration.json", out / "calibration.md"
    write_text_atomic(json_path, [json.dumps(to_json(result, meta, gates), indent=2, allow_nan=False) + "\n"])
    write_text_atomic(md_path, [to_markdown(result, meta) + "\n"])
    return json_path, md_path


# --------------------------------------------------------------------------- gates
