"""`--gate 'PROBE.METRIC OP NUMBER'`: calibration's gate expressions, addressed to one probe.

The METRIC OP NUMBER part is parsed by calibration's parser; this module adds the probe in front and
checks, before anything is judged, that the probe is one of those run and defines that metric.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from audit.effects import Record
from audit.probes import PROBES
from calibration.report import Gate, parse_gate

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


def check_audit_gates(records: list[Record], gates: list[AuditGate]) -> list[str]:
    """One message per probe × judge × criterion that fails a gate (on the probe's pooled records).

    A null value fails, and so does a gate with nothing measured: an unmeasured judge has not passed.
    """
    failures = []
    for audit_gate in gates:
        gate = audit_gate.gate
        matching = [r for r in records if r.probe == audit_gate.probe and r.metric == gate.metric and r.variant is None]
        if not matching:
            failures.append(f"{audit_gate}: nothing was measured (no pair of verdicts for this probe and metric)")
        for r in matching:
            who = f"{r.probe} × {r.judge} × {r.pillar}/{r.criterion} (n={r.n})"
            if failure := gate.failure(who, r.value, r.reason, label=str(audit_gate)):
                failures.append(failure)
    return failures
