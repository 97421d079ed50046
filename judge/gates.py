"""`--gate` conditions, in one place: `METRIC OP NUMBER` for calibration (every criterion × judge must
meet it) and `PROBE.METRIC OP NUMBER` for an audit (every judge × criterion of the probe's pooled records).

A gate is checked against records that carry `metric`, `value` and `reason`; a null value fails its check
(an unmeasured judge has not passed), and so does a gate with nothing to check.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from judge.errors import UsageError

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

    def failure(self, who: str, value: float | None, reason: str | None, label: str | None = None) -> str | None:
        """Why ``value`` fails this gate, or None when it holds. A null value fails: an unmeasured judge is
        not a passed one. ``label`` names the gate in the message (default: the gate itself)."""
        label = label or str(self)
        if value is None:
            return f"{who}: {self.metric} is null ({reason}); gate {label}"
        if not _OPS[self.op](value, self.threshold):
            return f"{who}: {self.metric} = {value:.4f} fails {label}"
        return None


def parse_gate(text: str) -> Gate:
    match = _GATE.match(text)
    if not match:
        raise UsageError(f"{text!r}: expected METRIC OP NUMBER with OP one of >= > <= < ==, "
                         "e.g. 'alpha_ordinal_with_judge>=0.667' or 'qwk>=0.6'", field="gate")
    return Gate(match.group(1), match.group(2), float(match.group(3)))


def gate_results(records: Iterable[Any], gates: list[Gate]) -> tuple[list[dict[str, Any]], list[str]]:
    """(one record per gate with every check, unknown metrics), as written to calibration.json's `gates`.

    Gates apply to the headline records (``against`` null). A null value fails its gate: an unmeasured
    judge is not a passed one. A metric absent from the results is reported so that a typo cannot pass.
    """
    recorded: list[dict[str, Any]] = []
    unknown: list[str] = []
    for gate in gates:
        records = list(records)
        matching = [r for r in records if r.metric == gate.metric and r.against is None]
        if not matching:
            unknown.append(gate.metric)
            continue
        checks = [{"criterion": r.criterion, "judge": r.judge, "level": r.level, "value": r.value,
                   "passed": gate.failure("", r.value, r.reason) is None,
                   "reason": r.reason if r.value is None else None} for r in matching]
        recorded.append({"gate": str(gate), "metric": gate.metric, "op": gate.op, "threshold": gate.threshold,
                         "passed": all(c["passed"] for c in checks), "checks": checks})
    return recorded, unknown


def failed_checks(gate: dict[str, Any], who: Callable[[dict[str, Any], dict[str, Any]], str]) -> list[str]:
    """One line per failed check of one recorded gate (calibration.json's `gates`, audit.json's
    `gate_results`); `who(gate, check)` names what was checked."""
    rule = Gate(gate["metric"], gate["op"], gate["threshold"])
    return [
        rule.failure(who(gate, c), c["value"], c["reason"], label=gate["gate"]) or ""
        for c in gate["checks"]
        if not c["passed"]
    ]


def gate_failures(recorded: list[dict[str, Any]]) -> list[str]:
    """One line per failed check of `gate_results`, naming criterion × judge."""
    return [
        line
        for gate in recorded
        for line in failed_checks(gate, lambda _, c: f"{c['criterion']} × {c['judge'] or 'humans'} ({c['level']})")
    ]


# ---------------------------------------------------------------- audit gates: one probe each

_PROBE_PART = re.compile(r"^\s*(?P<probe>[A-Za-z][A-Za-z0-9_-]*)\s*\.\s*(?P<rest>.*)$", re.S)
EXAMPLE = "'injection.max_abs_shift<=0.25'"


@dataclass(frozen=True)
class AuditGate:
    probe: str
    gate: Gate

    def __str__(self) -> str:
        return f"{self.probe}.{self.gate}"


def parse_probe_gate(text: str, probes: Iterable[str], metrics: Mapping[str, Iterable[str]]) -> AuditGate:
    """One gate of a probe among `probes` (those run); `metrics` are every probe's metrics. The
    UsageError says what is wrong with it and what the probe offers."""
    expected = f"{text!r}: expected PROBE.METRIC OP NUMBER with OP one of >= > <= < ==, e.g. {EXAMPLE}"
    match = _PROBE_PART.match(text)
    if not match:
        raise UsageError(expected, field="gate")
    probe = match["probe"]
    if probe not in metrics:
        raise UsageError(f"{text!r}: unknown probe {probe!r}; probes: {', '.join(metrics)}", field="gate")
    chosen = list(probes)
    if probe not in chosen:
        raise UsageError(f"{text!r}: probe {probe!r} is not run; add it to the probes ({','.join(chosen)})",
                         field="gate")
    try:
        gate = parse_gate(match["rest"])
    except UsageError:
        raise UsageError(expected, field="gate") from None
    offered = list(metrics[probe])
    if gate.metric not in offered:
        raise UsageError(
            f"{text!r}: probe {probe!r} has no metric {gate.metric!r}; its metrics: {', '.join(offered)}", field="gate"
        )
    return AuditGate(probe, gate)


def audit_gate_results(records: Iterable[Any], gates: list[AuditGate]) -> list[dict[str, Any]]:
    """One record per gate with a check per judge × criterion of the probe's pooled records, as written
    to audit.json's `gate_results`. A null value fails its check, and a gate with no check fails:
    an unmeasured judge has not passed."""
    results = []
    for audit_gate in gates:
        gate = audit_gate.gate
        matching = [r for r in records if r.probe == audit_gate.probe and r.metric == gate.metric and r.variant is None]
        checks = [
            {"judge": r.judge, "pillar": r.pillar, "criterion": r.criterion, "n": r.n, "value": r.value,
             "passed": gate.failure("", r.value, r.reason) is None, "reason": r.reason if r.value is None else None}
            for r in matching
        ]  # fmt: skip
        results.append(
            {"gate": str(audit_gate), "probe": audit_gate.probe, "metric": gate.metric, "op": gate.op,
             "threshold": gate.threshold, "passed": bool(checks) and all(c["passed"] for c in checks),
             "checks": checks}
        )  # fmt: skip
    return results


def audit_gate_failures(results: list[dict[str, Any]]) -> list[str]:
    """One message per failed check of `audit_gate_results`, naming probe × judge × criterion."""
    failures = []
    for result in results:
        if not result["checks"]:
            failures.append(f"{result['gate']}: nothing was measured (no pair of verdicts for this probe and metric)")
        failures += failed_checks(result, _checked)
    return failures


def _checked(result: dict[str, Any], check: dict[str, Any]) -> str:
    return f"{result['probe']} × {check['judge']} × {check['pillar']}/{check['criterion']} (n={check['n']})"


# ---------------------------------------------------------------- the pillar gate on one judged item


def pillar_gate_fails(critical: Iterable[tuple[float | None, int]]) -> bool | None:
    """The pillar gate on one item (a whole conversation included): it fails when any critical criterion
    scored below its fail_below (on the conversation rubric: any High potential for harm dimension), and
    passes only when every applicable critical criterion scored at or above it. `critical` holds (score,
    fail_below) of each applicable critical criterion, score None when the judges left it undecided.
    None: nothing to decide, or an undecided criterion and no failure."""
    outcomes = [(score, line) for score, line in critical]
    if any(score is not None and score < line for score, line in outcomes):
        return True
    if outcomes and all(score is not None for score, _ in outcomes):
        return False
    return None
