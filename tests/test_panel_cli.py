"""Panels end to end: three judges arranged to disagree on known items, through the CLI and the loopback server."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from tests.conftest import make_items, read_jsonl, write_jsonl
from tests.fakeapi import FakeLLMServer, ParsedRequest, Reply
from tests.fakeapi.judge_script import (
    SCRIPTED_READING,
    judged_response,
    resolve_ref,
    score_bounds,
    verdict_criteria,
)

DISSENT_ON = {"item-002", "item-005", "item-007"}
JUDGES = ["openai:judge-a", "openai:judge-b", "anthropic:judge-c"]


def arranged_answerer(req: ParsedRequest) -> Reply:
    """Everyone gives the top score, except judge-c which gives the bottom score on the DISSENT_ON items."""
    schema = req.schema or {}
    response = judged_response(req)
    dissent = req.model == "judge-c" and any(f"Case {item_id[-1]}:" in response for item_id in DISSENT_ON)
    verdict: dict[str, Any] = {"risk_reading": dict(SCRIPTED_READING)} if "risk_reading" in schema["properties"] else {}
    for criterion in verdict_criteria(schema):
        low, high = score_bounds(schema, criterion)
        entry: dict[str, Any] = {"rationale": f"{req.model} view", "evidence": [], "score": low if dissent else high}
        if "applicable" in resolve_ref(schema, schema["properties"][criterion])["properties"]:
            entry["applicable"] = True
        verdict[criterion] = entry
    return Reply.structured(verdict)


def judges_spec(server: FakeLLMServer) -> str:
    urls = {"openai": server.openai_base_url, "anthropic": server.anthropic_base_url}
    return ",".join(f"{j}@{urls[j.split(':')[0]]}" for j in JUDGES)


def test_three_judges_escalate_exactly_the_arranged_items_and_review_round_trips(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    items = write_jsonl(tmp_path / "items.jsonl", make_items(10))
    out = tmp_path / "run"
    with FakeLLMServer(answerer=arranged_answerer) as server:
        tiebreak = f"openai:judge-t@{server.openai_base_url}"
        result = run_cli(
            "score", items, "--judges", judges_spec(server), "--rubrics", rubric_dir, "--out", out,
            "--tiebreak", tiebreak, "-q",
        )  # fmt: skip
        assert result.code == 0, result.stderr
        tiebreak_requests = [r for r in server.requests if r.model == "judge-t"]
    assert {judged_response(r.parsed).split(":")[0] for r in tiebreak_requests} == {
        f"Case {i[-1]}" for i in DISSENT_ON
    }, "the tie-breaker is asked about the escalated items only"

    panel_rows = read_jsonl(out / "panel.jsonl")
    escalated = {row["item_id"] for row in panel_rows if row["escalate"]}
    assert escalated == DISSENT_ON
    for row in panel_rows:
        if row["criterion"] == "risk_across_turns":  # single-turn items: not applicable for every judge
            assert row["status"] == "not_applicable"
            continue
        assert set(row["judges"]) == {f"{j}@{server.base_url.removeprefix('http://')}" for j in JUDGES}
        assert row["status"] == "decided" and row["n_ok"] == 3
        if row["item_id"] in DISSENT_ON:
            assert "disagreement" in row["escalate_reasons"] and row["spread"] >= row["spread_threshold"]
            assert row["decided_by"] == "tiebreak" and row["tiebreak"]
        else:
            assert row["spread"] == 0 and row["agreement"] is True and not row["tiebreak"]

    review = read_jsonl(out / "review.jsonl")
    assert {r["item_id"] for r in review} == DISSENT_ON

    summary = json.loads((out / "summary.json").read_text())
    assert summary["panel"]["escalated"] == len([r for r in panel_rows if r["escalate"]])
    agreement = [a for a in summary["agreement"] if a["criterion"] != "risk_across_turns"]  # not applicable: no alpha
    assert agreement and all(a["alpha_ordinal"] is not None for a in agreement)

    # The clinician's round trip: export, fill in, import as human annotations.
    csv_path = tmp_path / "review.csv"
    assert run_cli("review", "export", out, "--csv", csv_path).code == 0
    with csv_path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len([r for r in panel_rows if r["escalate"]])
    for row in rows:
        row["decision_score"] = row["scale"].split("..")[0]
        row["reviewer"] = "dr-lee"
    with csv_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    annotations_path = tmp_path / "annotations.jsonl"
    assert run_cli("review", "import", csv_path, "--out", annotations_path).code == 0
    annotations = read_jsonl(annotations_path)
    assert len(annotations) == len(rows)
    assert {a["rater"] for a in annotations} == {"dr-lee"} and {a["item_id"] for a in annotations} == DISSENT_ON

    # Re-aggregation needs no judge and can demand more judges than succeeded.
    again = run_cli("panel", out, "--min-judges", "5")
    assert again.code == 0, again.stderr
    judged = [row for row in read_jsonl(out / "panel.jsonl") if row["criterion"] != "risk_across_turns"]
    assert all(row["status"] == "undecided" for row in judged)
