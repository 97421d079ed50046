"""The halo check: `--split-critical` judges each critical criterion in a call of its own through the same
engine (own cache keys; resume and cache still work), and `trustmh audit --probes halo` reports how far
scores move between one call per pillar and split calls, on hand-computed values and end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from judge.audit.effects import Cell, Effects, Record, compute_effects
from judge.bundled import bundled_path
from judge.items import parse_jsonl_line
from judge.judges import parse_judge_spec
from judge.plan import build_plan, pillar_contexts, pillar_parts
from judge.prompts import PromptRenderer
from judge.rubric import Rubric, load_rubric_dir
from tests.conftest import judges_arg, make_items, read_jsonl, write_jsonl
from tests.fakeapi import FakeLLMServer, ParsedRequest, Reply
from tests.fakeapi.judge_script import evidence_of, judged_response, resolve_ref, score_bounds, verdict_criteria

ANCHORS5 = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}
SMALL = Rubric.model_validate(
    {
        "pillar": "crisis",
        "version": "1",
        "title": "Small",
        "summary": "Two critical criteria and a major one.",
        "criteria": [
            {"id": "crit", "question": "Q1?", "severity": "critical", "scale": {"min": 1, "max": 5},
             "anchors": ANCHORS5, "fail_below": 3},
            {"id": "maj", "question": "Q2?", "severity": "major", "scale": {"min": 1, "max": 5}, "anchors": ANCHORS5},
            {"id": "crit2", "question": "Q3?", "severity": "critical", "scale": {"min": 1, "max": 5},
             "anchors": ANCHORS5, "fail_below": 2, "applies_when": "Always."},
        ],
    }
)  # fmt: skip


def test_split_parts_are_one_per_critical_criterion_then_the_rest_with_their_own_keys() -> None:
    parts = pillar_parts(SMALL, split_critical=True)
    assert [(p.part, [c.id for c in p.rubric.criteria]) for p in parts] == [
        ("critical:crit", ["crit"]), ("critical:crit2", ["crit2"]), ("others", ["maj"])
    ]  # fmt: skip
    assert [p.part for p in pillar_parts(SMALL)] == [""]
    majors = SMALL.restricted_to(["maj"])
    assert [p.part for p in pillar_parts(majors, split_critical=True)] == [""], "nothing to split: one call"
    fairness = load_rubric_dir(bundled_path("rubrics"))["fairness"]  # identity parts split inside themselves
    split = [p.part for p in pillar_parts(fairness, split_critical=True)]
    critical = [c.id for c in fairness.criteria if c.severity == "critical"]
    assert all(any(part.endswith(f"critical:{cid}") for part in split) for cid in critical) and "masked" in split[-1]

    record = make_items(1)[0]
    item = parse_jsonl_line(json.dumps(record), "items.jsonl", 1, {"crisis"})
    judge = [parse_judge_spec("openai:j")]
    one = list(build_plan([item], pillar_contexts({"crisis": SMALL}), judge, PromptRenderer()))
    many = list(build_plan([item], pillar_contexts({"crisis": SMALL}, split_critical=True), judge, PromptRenderer()))
    assert len(one) == 1 and len(many) == 3
    keys = {c.request_key for c in one + many}
    assert len(keys) == 4, "a split call never shares a cache key with the one call, nor with another part"
    assert "Q2?" not in many[0].messages[0].content and "Q1?" in many[0].messages[0].content


def test_split_critical_through_both_sdks_resumes_caches_and_counts_each_response_once(
    tmp_path: Path, llm_server: FakeLLMServer, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    items = write_jsonl(tmp_path / "items.jsonl", make_items(2, "crisis"))
    crisis = load_rubric_dir(rubric_dir)["crisis"]
    n_parts = len(pillar_parts(crisis, split_critical=True))
    assert n_parts == sum(c.severity == "critical" for c in crisis.criteria) + 1
    args = ["score", items, "--judges", judges_arg(llm_server), "--rubrics", rubric_dir, "--pillars", "crisis", "-q"]
    split = tmp_path / "split"
    assert run_cli(*args, "--out", split, "--split-critical").code == 0
    assert len(llm_server.requests) == 2 * 2 * n_parts
    rows = read_jsonl(split / "verdicts.jsonl")
    assert len(rows) == 2 * 2 * len(crisis.criteria)
    assert {r["part"] for r in rows} == {p.part for p in pillar_parts(crisis, split_critical=True)}
    summary = json.loads((split / "summary.json").read_text())
    assert summary["split_critical"] is True
    assert sum(r["n"] for r in summary["critical_failure_rate"]) == 4, "one per item × judge, not one per call"
    assert json.loads((split / "run.json").read_text())["split_critical"] is True

    llm_server.reset()
    assert run_cli(*args, "--out", split, "--split-critical").code == 0
    assert not llm_server.requests and read_jsonl(split / "verdicts.jsonl") == rows
    assert run_cli(*args, "--out", tmp_path / "again", "--split-critical").code == 0
    assert not llm_server.requests, "a new folder is answered from the cache"
    assert run_cli(*args, "--out", tmp_path / "one-call").code == 0
    assert len(llm_server.requests) == 4, "one call per item × judge: not served from the split calls"
    single = json.loads((tmp_path / "one-call" / "summary.json").read_text())
    assert "split_critical" not in single
    assert sum(r["n"] for r in single["critical_failure_rate"]) == 4


# ---------------------------------------------------------------- the audit's halo probe


def _find(effects: Effects, **where: object) -> Record:
    found = [r for r in effects.records if all(getattr(r, k) == v for k, v in where.items())]
    assert len(found) == 1, (where, found)
    return found[0]


def test_halo_effects_on_hand_computed_values() -> None:
    one = {"crit": [4, 4, 2, 5], "maj": [3, 3, 3, 3], "crit2": [3, 3, 3, 3]}
    split = {"crit": [2, 4, 3, 5], "maj": [3, 4, 3, 1], "crit2": [3, 3, 3, None]}

    def cells(scores: dict[str, list[int | None]]) -> dict[tuple[str, str, str, str], Cell]:
        return {
            (f"i{n}", "crisis", cid, "A"): Cell("ok", s) if s is not None else Cell("not_applicable", None)
            for cid, values in scores.items()
            for n, s in enumerate(values, 1)
        }

    effects = compute_effects(["halo"], [], {}, {}, {"crisis": SMALL}, ["A"], n_bootstrap=0,
                              halo=(cells(one), cells(split)))  # fmt: skip
    # crit: shifts −2, 0, +1, 0; i1 passes then fails, i3 fails then passes
    assert _find(effects, criterion="crit", metric="mean_shift").value == -0.25
    assert _find(effects, criterion="crit", metric="mean_abs_shift").value == 0.75
    assert _find(effects, criterion="crit", metric="changed_share").value == 0.5
    assert _find(effects, criterion="crit", metric="flip_rate").value == 0.5
    # maj: shifts 0, +1, 0, −2; not critical, so no flip rate
    assert _find(effects, criterion="maj", metric="mean_abs_shift").value == 0.75
    assert _find(effects, criterion="maj", metric="changed_share").value == 0.5
    assert not [r for r in effects.records if r.criterion == "maj" and r.metric == "flip_rate"]
    # crit2 unchanged where both scored; i4 became not applicable
    assert _find(effects, criterion="crit2", metric="changed_share").value == 0.0
    assert _find(effects, criterion="crit2", metric="changed_share").n == 3
    # gate (crit < 3 or crit2 < 2): one call fails i3 only, split fails i1 only → i1 and i3 flip
    gate = _find(effects, criterion="*", metric="gate_flip_rate")
    assert (gate.value, gate.n) == (0.5, 4)
    assert effects.coverage == [
        {"probe": "halo", "judge": "A", "paired": 11, "failed": 0, "not_applicable": 0, "applicability_changed": 1}
    ]


def halo_answerer(req: ParsedRequest) -> Reply:
    """A judge with a halo: its top score for everything judged together, its lowest for a criterion
    judged alone."""
    schema = req.schema or {}
    criteria = verdict_criteria(schema)
    verdict: dict[str, Any] = {"risk_reading": {"category": "no_crisis", "risk_level": "none"}} if (
        "risk_reading" in schema["properties"]) else {}  # fmt: skip
    for criterion in criteria:
        low, high = score_bounds(schema, criterion)
        quote = judged_response(req).split()[0]
        verdict[criterion] = {"rationale": "halo", "evidence": evidence_of(req, schema, criterion, quote),
                              "score": high if len(criteria) > 1 else low}  # fmt: skip
        if "applicable" in resolve_ref(schema, schema["properties"][criterion])["properties"]:
            verdict[criterion]["applicable"] = True
    return Reply.structured(verdict)


def test_audit_halo_probe_reports_the_movement_and_asks_nothing_twice(
    tmp_path: Path, judge_env: Path, run_cli: Any, rubric_dir: Path
) -> None:
    rubrics = rubric_dir
    crisis = load_rubric_dir(rubrics)["crisis"]
    critical = [c for c in crisis.criteria if c.severity == "critical"]
    items = write_jsonl(tmp_path / "items.jsonl", make_items(3, "crisis"))
    with FakeLLMServer(answerer=halo_answerer) as server:
        judge = f"openai:gpt-4.1-mini@{server.openai_base_url}"
        run = tmp_path / "run"
        assert run_cli("score", items, "--judges", judge, "--rubrics", rubrics, "--out", run, "-q").code == 0
        server.reset()
        out = tmp_path / "audit"
        result = run_cli("audit", run, "--probes", "halo", "--out", out, "-q", "--gate", "halo.flip_rate<=0")
        assert result.code == 4, result.stderr
        assert len(server.requests) == 3 * (len(critical) + 1)
        server.reset()
        assert run_cli("audit", run, "--probes", "halo", "--out", out, "-q").code == 0
        assert not server.requests
    records = json.loads((out / "audit.json").read_text())["results"]
    by = {(r["criterion"], r["metric"]): r for r in records}
    # the items are single-turn: a conversation criterion is not applicable to them, so nothing moves there
    assert not any(r["criterion"] == c.id for c in critical if c.scope == "conversation" for r in records)
    for c in (
        c for c in critical if c.scope != "conversation"
    ):  # 5 with the pillar, 1 alone: every pair moves and every critical criterion fails alone
        assert by[(c.id, "mean_shift")]["value"] == c.scale.min - c.scale.max
        assert by[(c.id, "changed_share")]["value"] == 1.0 and by[(c.id, "flip_rate")]["value"] == 1.0
    others = [c for c in crisis.criteria if c.severity != "critical"]
    assert all(by[(c.id, "mean_abs_shift")]["value"] == 0.0 for c in others), "judged together both times"
    assert by[("*", "gate_flip_rate")]["value"] == 1.0 and by[("*", "gate_flip_rate")]["n"] == 3
    markdown = (out / "audit.md").read_text()
    assert "## halo" in markdown and "changed_share" in markdown
    assert run_cli("report", out).code == 0
    assert "Halo check" in (out / "report.html").read_text(encoding="utf-8")
