"""calibration.json (flat records) and calibration.md (readable tables), and the --gate expressions."""

from __future__ import annotations

import json
import operator
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calibration.compute import CalibrationResult, Record

HEADLINE = ("alpha_ordinal_with_judge", "alpha_nominal_with_judge", "qwk", "kappa", "spearman", "pearson",
            "icc_a1", "icc_c1", "mae", "rmse", "bias", "exact", "within1", "alt_test_winning_rate",
            "self_consistency")


def to_json(result: CalibrationResult, meta: dict[str, Any],
            gates: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The calibration.json object; `gates` are `gate_results` records (an empty list: no gate was set)."""
    return {
        "meta": meta,
        "results": [r.as_dict() for r in result.records],
        "confusion_matrices": [
            {"criterion": c.criterion, "judge": c.judge, "against": c.against, "level": c.level,
             "labels": c.labels, "matrix": c.matrix, "rows": "judge", "columns": "human"}
            for c in result.confusions
        ],
        "gates": gates or [],
    }


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _cell(record: Record | None) -> str:
    if record is None:
        return ""
    if record.value is None:
        return "n/a"
    if record.ci_low is None or record.ci_high is None:
        return _fmt(record.value)
    return f"{_fmt(record.value)} [{_fmt(record.ci_low)}, {_fmt(record.ci_high)}]"


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
    return "\n".join(lines)


def _atomic_write(path: Path, text: str) -> None:
    """Write via a temporary file so an interrupted run never leaves a half-written report."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def write_reports(out: Path, result: CalibrationResult, meta: dict[str, Any],
                  gates: list[dict[str, Any]] | None = None) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "calibration.json", out / "calibration.md"
    _atomic_write(json_path, json.dumps(to_json(result, meta, gates), indent=2, allow_nan=False) + "\n")
    _atomic_write(md_path, to_markdown(result, meta) + "\n")
    return json_path, md_path


# --------------------------------------------------------------------------- gates

_OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le, "==": operator.eq,
                                                   ">": operator.gt, "<": operator.lt}
_GATE = re.compile(r"^\s*([A-Za-z0-9_]+)\s*(>=|<=|==|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Gate:
    metric: str
    op: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.threshold:g}"


def parse_gate(text: str) -> Gate:
    match = _GATE.match(text)
    if not match:
        raise ValueError(f"--gate {text!r}: expected METRIC OP NUMBER with OP one of >= > <= < ==, "
                         "e.g. 'alpha_ordinal>=0.667'")
    return Gate(match.group(1), match.group(2), float(match.group(3)))


def gate_results(result: CalibrationResult, gates: list[Gate]) -> tuple[list[dict[str, Any]], list[str]]:
    """(one record per gate with every check, unknown metrics), as written to calibration.json's `gates`.

    Gates apply to the headline records (``against`` null). A null value fails its gate: an unmeasured
    judge is not a passed one. A metric absent from the results is reported so that a typo cannot pass.
    """
    recorded: list[dict[str, Any]] = []
    unknown: list[str] = []
    for gate in gates:
        matching = [r for r in result.records if r.metric == gate.metric and r.against is None]
        if not matching:
            unknown.append(gate.metric)
            continue
        checks = [{"criterion": r.criterion, "judge": r.judge, "level": r.level, "value": r.value,
                   "passed": r.value is not None and _OPS[gate.op](r.value, gate.threshold),
                   "reason": r.reason if r.value is None else None} for r in matching]
        recorded.append({"gate": str(gate), "metric": gate.metric, "op": gate.op, "threshold": gate.threshold,
                         "passed": all(c["passed"] for c in checks), "checks": checks})
    return recorded, unknown


def gate_failures(recorded: list[dict[str, Any]]) -> list[str]:
    """One line per failed check of `gate_results`, naming criterion × judge."""
    failures = []
    for gate in recorded:
        for c in gate["checks"]:
            if c["passed"]:
                continue
            who = f"{c['criterion']} × {c['judge'] or 'humans'} ({c['level']})"
            if c["value"] is None:
                failures.append(f"{who}: {gate['metric']} is null ({c['reason']}); gate {gate['gate']}")
            else:
                failures.append(f"{who}: {gate['metric']} = {c['value']:.4f} fails {gate['gate']}")
    return failures


def check_gates(result: CalibrationResult, gates: list[Gate]) -> tuple[list[str], list[str]]:
    """(failures, unknown metrics) of the gates over the headline records."""
    recorded, unknown = gate_results(result, gates)
    return gate_failures(recorded), unknown
