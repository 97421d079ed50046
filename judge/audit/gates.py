"""`--gate 'PROBE.METRIC OP NUMBER'`: calibration's gate expressions, addressed to one probe.

The METRIC OP NUMBER part is parsed by calibration's parser; this module adds the probe in front and
checks, before anything is judged, that the probe is one of those run and defines that metric.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from calibration.outputs import Gate, failed_checks, parse_gate
from judge.audit.effects import Record
from judge.audit.probes import PROBES

_PROBE_PART = re.compile(r"^\s*(?P<probe>[A-Za-z][A-Za-z0-9_-]*)\s*\.\s*(?P<rest>.*)$", re.S)
EXAMPLE = "'injection.max_abs_shift<=0.25'"


@dataclass(frozen=True)
class AuditGate:
    probe: str
    gate: Gate

    def __str__(self) -> str:
        return f"{self.probe}.{self.gate}"


def parse_audit_gate(text: str, probes: Iterable[str]) -> AuditGate:
    """One gate; ValueError says what is wrong with it and what the probe offers."""
    expected = f"--gate {text!r}: expected PROBE.METRIC OP NUMBER with OP one of >= > <= < ==, e.g. {EXAMPLE}"
    match = _PROBE_PART.match(text)
    if not match:
        raise ValueError(expected)
    probe = match["probe"]
    if probe not in PROBES:
        raise ValueError(f"--gate {text!r}: unknown probe {probe!r}; probes: {', '.join(PROBES)}")
    chosen = list(probes)
    if probe not in chosen:
        raise ValueError(f"--gate {text!r}: probe {probe!r} is not run; add it to --probes ({','.join(chosen)})")
    try:
        gate = parse_gate(match["rest"])
    except ValueError:
        raise ValueError(expected) from None
    metrics = PROBES[probe].metrics
    if gate.metric not in metrics:
        raise ValueError(
            f"--gate {text!r}: probe {probe!r} has no metric {gate.metric!r}; its metrics: {', '.join(metrics)}"
        )
    return AuditGate(probe, gate)


def audit_gate_results(records: list[Record], gates: list[AuditGate]) -> list[dict[str, Any]]:
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
