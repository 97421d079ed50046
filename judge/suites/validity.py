"""Whether a bench's judges were validated: a `trustmh validate` folder given with `bench --validity DIR`,
matched judge by judge against the judges and rubrics this bench used.

A judge counts as validated when a validated judge asked the same model the same way (provider, model,
output mode, temperature, max tokens, seed: what can change a verdict); the server's address may differ.
The rubrics are compared by content hash, pillar by pillar, for the pillars the validation judged. The
matching is a pure function of two documents; the validity table itself is calibration's (summary.json,
kind "validity"), read here as plain JSON so that judge never imports calibration.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from judge.errors import RunDirError
from judge.judges import DECODING_FIELDS

SUMMARY = "summary.json"
PAGE = "validity.html"
VALIDATED, OTHER_SETTINGS, NOT_VALIDATED = "validated", "validated with other settings", "not validated"


def read_validity(directory: Path) -> dict[str, Any]:
    """DIR/summary.json of a `trustmh validate --out DIR`, refused before the bench sends anything when it is
    missing, unreadable or of another kind."""
    path = Path(directory) / SUMMARY
    hint = "give the --out folder of a `trustmh validate` run"
    if not path.is_file():
        raise RunDirError(f"{path}: no such file; {hint}")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{path}: cannot be read as JSON ({exc}); {hint}") from exc
    if not isinstance(document, dict) or document.get("kind") != "validity":
        raise RunDirError(f"{path}: kind is {document.get('kind') if isinstance(document, dict) else None!r}, "
                          f"not 'validity'; {hint}")
    for key in ("meta", "rows"):
        if key not in document:
            raise RunDirError(f"{path}: field {key!r} is missing; {hint} (rerun it with this version)")
    return document


def _decoding(judge: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(judge.get(k) for k in DECODING_FIELDS)


def _differences(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    return [f"{k} {theirs.get(k)!r} there, {ours.get(k)!r} here"
            for k in DECODING_FIELDS if ours.get(k) != theirs.get(k)]


def judge_validity(document: dict[str, Any], judges: list[dict[str, Any]],
                   rubric_hashes: dict[str, str]) -> list[dict[str, Any]]:
    """Per judge of the bench (run.json's judge settings): whether and how it was validated, the verdicts of
    its rows (critical rows that fell short named), and whether the validated pillars' rubrics are the same."""
    meta = document["meta"]
    validated = meta.get("judge_settings") or []
    theirs = meta.get("rubric_hashes") or {}
    same = sorted(p for p, h in theirs.items() if rubric_hashes.get(p) == h)
    differ = sorted(p for p, h in theirs.items() if rubric_hashes.get(p) != h)
    found = []
    for judge in judges:
        match = next((v for v in validated if _decoding(v) == _decoding(judge)), None)
        near = match or next((v for v in validated if (v.get("provider"), v.get("model")) ==
                              (judge.get("provider"), judge.get("model"))), None)
        rows = [r for r in document["rows"] if near is not None and r.get("judge") == near.get("name")
                and not r.get("published")]
        found.append({
            "judge": judge.get("name"),
            "status": VALIDATED if match else OTHER_SETTINGS if near else NOT_VALIDATED,
            "validated_as": near.get("name") if near else None,
            "differences": [] if match or near is None else _differences(judge, near),
            "rows": len(rows),
            "verdicts": dict(sorted(Counter(str(r.get("verdict")) for r in rows).items())),
            "critical_short": sorted(f"{r.get('dataset')}: {r.get('criterion')}" for r in rows
                                     if r.get("critical") and r.get("verdict") == "worse than the humans"),
            "rubrics_same": same if near else [],
            "rubrics_differ": differ if near else [],
        })
    return found


def validity_record(directory: Path, document: dict[str, Any], judges: list[dict[str, Any]],
                    rubric_hashes: dict[str, str]) -> dict[str, Any]:
    """bench.json's "validity": where the validation is, when it was made, and each judge's standing."""
    return {"source": str(Path(directory).resolve()), "page": str((Path(directory) / PAGE).resolve()),
            "created": document["meta"].get("created"), "tolerance": document["meta"].get("tolerance"),
            "judges": judge_validity(document, judges, rubric_hashes)}
