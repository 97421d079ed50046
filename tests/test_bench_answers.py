"""`trustmh bench --answers FILE`: the round trip `suites build` → the user's own harness → `bench --answers`
gives the scorecard a live bench gives for the same answers; every bad record is reported (FILE:LINE) and
nothing is judged or written."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import read_jsonl, write_jsonl

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("mirror")]

SUITES = "crisis/escalation,ethics/reasoning,sycophancy/push-back"
BUILD = ("--limit", "3", "--seed", "4")


@pytest.fixture
def mirror() -> None:
    import os

    mirror = os.environ.get("TRUSTMH_DATA_MIRROR")
    if not mirror or not Path(mirror).is_dir():
        pytest.skip("no dataset mirror: set TRUSTMH_DATA_MIRROR to a folder (the suites read the public datasets)")


def built_prompts(tmp_path: Path, run_cli: Any) -> list[dict[str, Any]]:
    result = run_cli("suites", "build", *SUITES.split(","), "--out", tmp_path / "prompts.jsonl", *BUILD)
    assert result.code == 0, result.stderr
    return read_jsonl(tmp_path / "prompts.jsonl")


def harness(prompt: dict[str, Any], target: str) -> dict[str, Any]:
    """What a user's harness writes: one answer per turn of the prompt."""
    count = 1 + len(prompt.get("followups", []))
    turns = [f"{target} says: that sounds hard (turn {n}). Answer: B" for n in range(count)]
    answer = {"turns": turns} if len(turns) > 1 else {"response": turns[0]}
    return {"prompt_id": prompt["id"], "target": target, **answer}


def bench(run_cli: Any, answers: Path, out: Path, *extra: str) -> Any:
    return run_cli("bench", "--suites", SUITES, *BUILD, "--answers", answers, "--judges", "mock:j", "--out", out,
                   "--bootstrap", "20", "-q", *extra)  # fmt: skip


def test_answers_from_a_harness_get_the_scorecard_a_live_bench_gives_the_same_answers(
    tmp_path: Path, judge_env: Path, run_cli: Any
) -> None:
    live = tmp_path / "live"
    result = run_cli("bench", "--suites", SUITES, *BUILD, "--targets", "mock:a", "--judges", "mock:j", "--out", live,
                     "--bootstrap", "20", "-q")  # fmt: skip
    assert result.code == 0, result.stderr
    # The harness here replays the live answers: the same answers must give the same scorecard.
    answers = write_jsonl(tmp_path / "answers.jsonl", [
        {"prompt_id": c["prompt_id"], "target": c["target"],
         **({"turns": c["turns"]} if len(c["turns"]) > 1 else {"response": c["response"]})}
        for c in read_jsonl(live / "respond" / "calls.jsonl")
    ])  # fmt: skip
    assert any("turns" in row for row in read_jsonl(answers)), "the push-back prompts have a follow-up turn"
    out = tmp_path / "answered"
    result = bench(run_cli, answers, out)
    assert result.code == 0, result.stderr
    live_card, card = (json.loads((d / "scorecard.json").read_text()) for d in (live, out))
    assert card["results"] == live_card["results"] and card["ranks"] == live_card["ranks"]
    assert set(card["not_a_model"]) == {"mock:j"}, "the harness's target is not a mock; the judge is"
    assert read_jsonl(out / "judged-items.jsonl") == read_jsonl(live / "judged-items.jsonl")
    calls = read_jsonl(out / "respond" / "calls.jsonl")
    assert {c["provider"] for c in calls} == {"answers"} and all(c["status"] == "ok" for c in calls)
    assert json.loads((out / "bench.json").read_text())["answers"] == str(answers)
    assert "<html" in (out / "report.html").read_text()
    assert all((p.stat().st_mode & 0o077) == 0 for p in (out / "respond").iterdir())


def test_a_csv_of_two_targets_with_a_failed_call_counts_the_failure_and_exits_3(
    tmp_path: Path, judge_env: Path, run_cli: Any
) -> None:
    prompts = built_prompts(tmp_path, run_cli)
    rows = [harness(p, t) for p in prompts for t in ("bot-a", "bot-b")]
    rows[1] = {"prompt_id": rows[1]["prompt_id"], "target": "bot-b", "error": "my harness timed out"}
    answers = tmp_path / "answers.csv"
    with answers.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["prompt_id", "target", "response", "turns", "error"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, **({"turns": json.dumps(row["turns"])} if "turns" in row else {})})
    out = tmp_path / "out"
    result = bench(run_cli, answers, out)
    assert result.code == 3, result.stderr
    summary = json.loads((out / "respond" / "summary.json").read_text())
    assert summary["calls"]["planned"] == 2 * len(prompts) and summary["calls"]["failed"] == 1
    assert summary["per_target"]["bot-b"] == {"ok": len(prompts) - 1, "failed": 1, "truncated": 0}
    failed = [c for c in read_jsonl(out / "respond" / "calls.jsonl") if c["status"] == "failed"]
    assert failed[0]["error"] == "answered elsewhere: my harness timed out"
    card = json.loads((out / "scorecard.json").read_text())
    assert {r["target"] for r in card["results"]} == {"bot-a", "bot-b"}
    push_back = [i for i in read_jsonl(out / "respond" / "responses.jsonl") if "push-back" in i["id"]]
    assert push_back and all(len(i["messages"]) == 3 for i in push_back), "the follow-up turn is in the exchange"


def test_every_bad_answer_record_is_reported_with_its_line_and_nothing_is_written(
    tmp_path: Path, judge_env: Path, run_cli: Any
) -> None:
    prompts = built_prompts(tmp_path, run_cli)
    good = [harness(p, "bot") for p in prompts]
    push_back = next(p for p in prompts if p.get("followups"))
    rows = [
        *good,
        {"prompt_id": "crisis/escalation:999999", "target": "bot", "response": "x"},  # line 10: unknown prompt
        good[0],  # line 11: duplicate
        {"prompt_id": prompts[1]["id"], "target": "other", "response": "x", "score": 3},  # 12: unknown field
        {"prompt_id": push_back["id"], "target": "third", "response": "only one turn"},  # 13: turns missing
        {"prompt_id": prompts[0]["id"], "response": "x"},  # 14: no target
        {"prompt_id": prompts[2]["id"], "target": "fourth", "error": "down", "response": "x"},  # 15
    ]
    answers = write_jsonl(tmp_path / "answers.jsonl", rows)
    with answers.open("a") as handle:
        handle.write("{not json\n")  # line 16
    out = tmp_path / "out"
    result = bench(run_cli, answers, out)
    assert result.code == 2
    err = " ".join(result.stderr.split())
    assert f"{answers}:10: field `prompt_id`: 'crisis/escalation:999999' is not one of the bench's prompts" in err
    assert f"{answers}:11: duplicate answer of target 'bot' to prompt {prompts[0]['id']!r}: first at line 1" in err
    assert f"{answers}:12: unknown field `score`" in err
    assert f"{answers}:13: prompt {push_back['id']!r} has 2 turn(s) (1 scripted follow-up(s)): give `turns`" in err
    assert f"{answers}:14: field `target`: missing or empty" in err
    assert f"{answers}:15: a record with `error` holds no `response` or `turns`" in err
    assert f"{answers}:16: not valid JSON" in err
    assert "same suites, --limit and --seed" in err
    assert not out.exists(), "nothing was written"

    incomplete = write_jsonl(tmp_path / "incomplete.jsonl", good[:-2])
    result = bench(run_cli, incomplete, out)
    assert result.code == 2 and not out.exists()
    assert f"target 'bot' answered {len(prompts) - 2} of the {len(prompts)} prompts; missing" in " ".join(
        result.stderr.split()
    )
    both = run_cli("bench", "--suites", SUITES, "--answers", incomplete, "--targets", "mock:a", "--judges", "mock:j",
                   "--out", out)  # fmt: skip
    assert both.code == 2 and "give --answers without --targets" in " ".join(both.stderr.split())


def test_the_dry_run_of_answers_prices_the_judges_and_writes_nothing(
    tmp_path: Path, judge_env: Path, run_cli: Any
) -> None:
    prompts = built_prompts(tmp_path, run_cli)
    answers = write_jsonl(tmp_path / "answers.jsonl", [harness(p, "bot") for p in prompts])
    out = tmp_path / "out"
    result = run_cli("bench", "--suites", SUITES, *BUILD, "--answers", answers, "--judges",
                     "openai:gpt-4.1@http://127.0.0.1:9/v1", "--out", out, "--dry-run")  # fmt: skip
    assert result.code == 0, result.stderr
    assert "Dry run, judges (estimated)" in result.stdout
    judged = sum(1 for p in prompts if p.get("pillar") and "push-back" not in p["id"])  # push-back reads no judge
    assert re.search(rf"│\s+{judged} │\s+0 │\s+0 │\s+{judged} │", result.stdout), "every judged answer priced"
    assert not out.exists()
