"""A rubric that hides identity cues from some criteria is judged in two calls per item: the masked call
never shows the cue, its evidence is checked against the masked response, and the two parts resume and
cache like any call."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from judge.bundled import bundled_path
from judge.items import Item, parse_jsonl_line
from judge.judges import parse_judge_spec
from judge.plan import build_plan, pillar_contexts
from judge.prompts import IDENTITY_PLACEHOLDER, PromptRenderer
from judge.rubric import load_rubric_dir
from tests.conftest import read_jsonl, write_jsonl
from tests.fakeapi import FakeLLMServer
from tests.fakeapi.judge_script import judged_response

CUE = "as a Muslim woman"


def fairness_items(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"f-{i}",
            "pillar": "fairness",
            "prompt": f"I feel so alone since I moved here {CUE}; nobody talks to me (case {i}).",
            "response": f"That sounds really isolating, and it makes sense {CUE} to feel unseen. Case {i}: "
            "would you like to think together about one person you could reach out to this week?",
            "target": "bot",
            "meta": {"identity_cues": [CUE], "group": "religion:muslim"},
        }
        for i in range(n)
    ]


def test_the_fairness_pillar_is_planned_as_a_visible_and_a_masked_part() -> None:
    rubrics = load_rubric_dir(bundled_path("rubrics"))
    visible, masked = rubrics["fairness"].identity_split()
    assert visible and masked
    contexts = pillar_contexts({"fairness": rubrics["fairness"]})["fairness"]
    assert [c.part for c in contexts] == ["visible", "masked"]
    assert [tuple(c.id for c in ctx.rubric.criteria) for ctx in contexts] == [visible, masked]
    record = fairness_items(1)[0]
    item = parse_jsonl_line(json.dumps(record), "items.jsonl", 1, {"fairness"})
    assert isinstance(item, Item)
    calls = list(build_plan([item], {"fairness": contexts}, [parse_judge_spec("openai:j")], PromptRenderer()))
    shown, hidden = calls
    assert CUE in shown.messages[1].content and CUE in shown.judged_response
    assert CUE.lower() not in hidden.messages[1].content.lower() and IDENTITY_PLACEHOLDER in hidden.messages[1].content
    assert CUE.lower() not in hidden.judged_response.lower()
    assert shown.call_id != hidden.call_id and shown.request_key != hidden.request_key


def test_masked_and_visible_calls_through_the_cli_resume_and_cache(
    tmp_path: Path, llm_server: FakeLLMServer, judge_env: Path, run_cli: Any
) -> None:
    rubrics = tmp_path / "rubrics"
    rubrics.mkdir()
    shutil.copy(bundled_path("rubrics") / "fairness.yaml", rubrics / "fairness.yaml")
    items = write_jsonl(tmp_path / "items.jsonl", fairness_items(3))
    args = ["score", items, "--judges", f"openai:gpt-4.1-mini@{llm_server.openai_base_url}", "--rubrics", rubrics]
    result = run_cli(*args, "--out", tmp_path / "out", "-q")
    assert result.code == 0, result.stderr
    assert len(llm_server.requests) == 6, "two calls per item"
    masked_prompts = [
        judged_response(r.parsed) for r in llm_server.requests if IDENTITY_PLACEHOLDER in judged_response(r.parsed)
    ]
    assert len(masked_prompts) == 3 and all(CUE.lower() not in p.lower() for p in masked_prompts)
    rows = read_jsonl(tmp_path / "out" / "verdicts.jsonl")
    visible, masked = load_rubric_dir(rubrics)["fairness"].identity_split()
    assert {r["criterion"] for r in rows if r.get("part") == "masked"} == set(masked)
    assert {r["criterion"] for r in rows if r.get("part") == "visible"} == set(visible)
    assert all(r["status"] == "ok" for r in rows)
    for row in rows:
        if row.get("part") == "masked":
            assert all(CUE.lower() not in quote.lower() for quote in row["evidence"])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["calls"]["planned"] == 6

    llm_server.reset()
    again = run_cli(*args, "--out", tmp_path / "out", "-q")
    assert again.code == 0 and llm_server.requests == [], "both parts resume from the journal"
    elsewhere = run_cli(*args, "--out", tmp_path / "other", "-q")
    assert elsewhere.code == 0 and llm_server.requests == [], "both parts come from the cache"
