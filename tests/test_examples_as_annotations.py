"""The worked examples' expected scores serve as a small human-annotated set (rater "project-authors")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from judge.bundled import bundled_path
from tests.conftest import read_jsonl, write_jsonl

EXPECTED = sorted(bundled_path("examples").glob("*.expected.jsonl"))


@pytest.mark.parametrize("expected", EXPECTED, ids=lambda p: p.name.split(".")[0])
def test_expected_scores_calibrate_a_judge_that_copies_them(tmp_path: Path, run_cli: Any, expected: Path) -> None:
    rows = read_jsonl(expected)
    assert {r["rater"] for r in rows} == {"project-authors"}
    if expected.name.startswith("crisis"):
        assert [r for r in rows if r["score"] is None], "not-applicable criteria carry a null score"
    copy = [
        {"item_id": r["item_id"], "criterion": r["criterion"], "judge": "copycat", "score": r["score"]}
        for r in rows
        if r["score"] is not None
    ]
    judged = write_jsonl(tmp_path / "judged.jsonl", copy)
    result = run_cli(
        "calibrate", "--human", expected, "--judged", judged, "--out", tmp_path / "cal", "--bootstrap", "20"
    )
    assert result.code == 0, result.stderr
    records = json.loads((tmp_path / "cal" / "calibration.json").read_text())["results"]
    mae = [r for r in records if r["metric"] == "mae" and r["judge"] == "copycat" and r.get("against") is None]
    assert {r["criterion"] for r in mae} == {r["criterion"] for r in copy}
    assert all(r["value"] == 0 for r in mae)
    assert sum(r["n"] for r in mae) == len(copy)
