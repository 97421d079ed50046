"""`trustmh score` end to end: real SDKs and instructor against the loopback server, through the CLI."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import (
    ANTHROPIC_KEY,
    OPENAI_KEY,
    judges_arg,
    make_items,
    read_jsonl,
    trustmh_subprocess,
    write_jsonl,
)
from tests.fakeapi import FakeLLMServer, FaultPlan, ParsedRequest, Reply
from tests.fakeapi.judge_script import (
    expected_score,
    judged_response,
    score_bounds,
    scripted_answerer,
    scripted_verdict,
)

VOLATILE = {"cached", "latency_s"}


def answered(server: FakeLLMServer) -> list[Any]:
    return [r for r in server.requests if r.status == 200]


def answer_payload(record: Any) -> dict[str, Any]:
    """The verdict object the server put on the wire, for either provider."""
    body = record.answer.json
    if record.provider == "openai":
        return json.loads(body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"])
    return next(block["input"] for block in body["content"] if block["type"] == "tool_use")


def stable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]


def test_fifty_items_two_providers_verdicts_are_what_the_server_answered(
    tmp_path: Path, llm_server: FakeLLMServer, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    items = write_jsonl(tmp_path / "items.jsonl", make_items(50))
    out = tmp_path / "out"
    result = run_cli("score", items, "--judges", judges_arg(llm_server), "--rubrics", rubric_dir, "--out", out, "-q")
    assert result.code == 0, result.stderr

    rows = read_jsonl(out / "verdicts.jsonl")
    criteria = [c["id"] for c in yaml.safe_load((rubric_dir / "crisis.yaml").read_text())["criteria"]]
    assert len(rows) == 50 * 2 * len(criteria)
    assert Counter(r["provider"] for r in rows) == {"openai": 50 * len(criteria), "anthropic": 50 * len(criteria)}

    # Each row equals the answer the server sent for that (model, response).
    sent = {}
    for record in answered(llm_server):
        sent[(record.parsed.model, judged_response(record.parsed))] = answer_payload(record)
    assert len(sent) == 100 and len(answered(llm_server)) == 100
    by_id = {item["id"]: item for item in make_items(50)}
    for row in rows:
        payload = sent[(row["model"], by_id[row["item_id"]]["response"])][row["criterion"]]
        if row["criterion"] == "risk_across_turns":  # a conversation criterion on single-turn items
            assert row["status"] == "not_applicable" and row["score"] is None and row["evidence_turns"] == []
            continue
        assert row["status"] == "ok"
        assert row["score"] == payload["score"]
        assert row["rationale"] == payload["rationale"]
        assert row["evidence"] == payload["evidence"]
        assert row["error"] is None and row["cached"] is False
        assert row["target"] == by_id[row["item_id"]]["target"]

    # Tokens are the server's usage numbers, split over the criteria of each call without loss.
    tokens_per_call = Counter()
    for row in rows:
        tokens_per_call[(row["item_id"], row["judge"])] += row["input_tokens"]
    served = {(r.parsed.model, judged_response(r.parsed)): r.answer.input_tokens for r in answered(llm_server)}
    for (item_id, judge), total in tokens_per_call.items():
        model = "gpt-4.1-mini" if judge.startswith("openai") else "claude-sonnet-4-5"
        assert total == served[(model, by_id[item_id]["response"])]

    summary = json.loads((out / "summary.json").read_text())
    assert summary["calls"] == {
        "planned": 100,
        "requested": 100,
        "cache_hits": 0,
        "resumed": 0,
        "failed": 0,
        "batched": 0,
        "http_requests_this_process": 100,
    }
    assert summary["tokens_this_run"]["input"] == sum(r.answer.input_tokens for r in answered(llm_server))
    assert summary["cost_usd_this_run"] is not None and summary["cost_usd_this_run"] > 0
    run = json.loads((out / "run.json").read_text())
    assert set(run["rubric_hashes"]) == {"crisis", "safety"}

    # Nothing secret in any output or in the cache.
    for path in [*out.iterdir(), *judge_env.rglob("*")]:
        if path.is_file():
            data = path.read_bytes()
            assert OPENAI_KEY.encode() not in data and ANTHROPIC_KEY.encode() not in data, path


def test_repeat_run_sends_nothing_and_writes_the_same_verdicts(
    tmp_path: Path, llm_server: FakeLLMServer, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    items = write_jsonl(tmp_path / "items.jsonl", make_items(20))
    args = ["score", items, "--judges", judges_arg(llm_server), "--rubrics", rubric_dir, "-q"]
    assert run_cli(*args, "--out", tmp_path / "first").code == 0
    first_requests = len(llm_server.requests)
    assert first_requests == 40

    assert run_cli(*args, "--out", tmp_path / "second").code == 0
    assert len(llm_server.requests) == first_requests, "a cached run must not send any request"
    first = read_jsonl(tmp_path / "first" / "verdicts.jsonl")
    second = read_jsonl(tmp_path / "second" / "verdicts.jsonl")
    assert stable(first) == stable(second)
    assert all(row["cached"] for row in second)
    summary = json.loads((tmp_path / "second" / "summary.json").read_text())
    assert summary["calls"]["requested"] == 0 and summary["calls"]["cache_hits"] == 40

    # The cache is readable by its owner only.
    assert stat.S_IMODE(judge_env.stat().st_mode) == 0o700
    for path in judge_env.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_editing_one_anchor_reasks_only_that_pillar(
    tmp_path: Path, llm_server: FakeLLMServer, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    items = write_jsonl(tmp_path / "items.jsonl", make_items(10, ["crisis", "safety"]))
    args = ["score", items, "--judges", judges_arg(llm_server), "--rubrics", rubric_dir, "-q"]
    assert run_cli(*args, "--out", tmp_path / "before").code == 0
    assert len(llm_server.requests) == 10 * 2 * 2

    # Reformatting (re-dumped YAML, other key order, comments) changes nothing.
    crisis = yaml.safe_load((rubric_dir / "crisis.yaml").read_text())
    (rubric_dir / "crisis.yaml").write_text("# reformatted\n" + yaml.safe_dump(crisis, sort_keys=True, width=60))
    llm_server.reset()
    assert run_cli(*args, "--out", tmp_path / "reformatted").code == 0
    assert llm_server.requests == []

    safety = yaml.safe_load((rubric_dir / "safety.yaml").read_text())
    first = safety["criteria"][0]
    low = first["scale"]["min"]
    first["anchors"][low] = first["anchors"][low] + " (Edited: includes any step-by-step detail.)"
    (rubric_dir / "safety.yaml").write_text(yaml.safe_dump(safety, sort_keys=False))
    llm_server.reset()
    assert run_cli(*args, "--out", tmp_path / "after").code == 0
    assert len(llm_server.requests) == 10 * 2
    assert all("safety" in r.parsed.system.lower() for r in llm_server.requests)
    after = read_jsonl(tmp_path / "after" / "verdicts.jsonl")
    assert {r["pillar"] for r in after if not r["cached"]} == {"safety"}


def test_injected_faults_end_ok_and_correct_or_failed_with_reason(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    def too_high(req: ParsedRequest) -> Reply:
        verdict = scripted_verdict(req)
        first = next(iter(verdict))
        verdict[first]["score"] = 99
        return Reply.structured(verdict)

    faults = (
        FaultPlan.at([1, 9], Reply.rate_limited(retry_after=0))
        + FaultPlan.at([3], Reply.server_error(500))
        + FaultPlan.when(lambda r: r.provider == "anthropic", Reply.overloaded(), times=2)
        + FaultPlan.when(lambda r: _first_ask(r, "openai", 1), Reply.raw_arguments('{"risk_recognition": {"score": 3,'))
        + FaultPlan.when(lambda r: _first_ask(r, "openai", 2), too_high)
        + FaultPlan.at([11], Reply.disconnect())
        + FaultPlan.at([13], Reply.slow(3.0))
        + FaultPlan.when(lambda r: "case 4)" in r.prompt_text and r.provider == "openai", Reply.server_error(503), None)
    )
    judges_file = tmp_path / "judges.toml"
    with FakeLLMServer(answerer=scripted_answerer, faults=faults) as server:
        judges_file.write_text(
            f"""
[judges.gpt]
spec = "openai:gpt-4.1-mini@{server.openai_base_url}"
backoff_initial_s = 0.01
backoff_max_s = 0.05
timeout_s = 1.0
max_attempts = 4
[judges.claude]
spec = "anthropic:claude-sonnet-4-5@{server.anthropic_base_url}"
backoff_initial_s = 0.01
backoff_max_s = 0.05
timeout_s = 1.0
max_attempts = 4
"""
        )
        items = write_jsonl(tmp_path / "items.jsonl", make_items(12))
        out = tmp_path / "out"
        result = run_cli(
            "score",
            items,
            "--judges-file",
            judges_file,
            "--rubrics",
            rubric_dir,
            "--out",
            out,
            "--concurrency",
            "2",
            "-q",
        )
        log = list(server.requests)

    assert result.code == 3, result.stderr  # item 4 fails for the OpenAI judge on every attempt
    rows = read_jsonl(out / "verdicts.jsonl")
    calls = {(r["item_id"], r["judge"]) for r in rows}
    assert len(calls) == 24, "every planned call has verdict rows"
    for row in rows:
        if row["status"] == "failed":
            assert row["score"] is None and row["error"]
            assert row["item_id"] == "item-004" and row["judge"] == "gpt"
            assert "server_error" in row["error"] and "503" in row["error"]
        elif row["criterion"] == "risk_across_turns":  # conversation criterion, single-turn items
            assert row["status"] == "not_applicable" and row["score"] is None
        else:
            assert row["status"] == "ok"
            item = make_items(12)[int(row["item_id"].split("-")[1])]
            low, high = _bounds_from_log(log, row["criterion"])
            assert row["score"] == expected_score(row["model"], row["criterion"], item["response"], low, high)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failures_by_reason"] == {"server_error": 1}
    reasked = {judged_response(r.parsed).split(":")[0] for r in log if r.is_reask and r.provider == "openai"}
    assert {"Case 1", "Case 2"} <= reasked, "malformed and out-of-range answers are re-asked"
    assert any(r.status == 429 for r in log) and any(r.status == 529 for r in log)


def _first_ask(req: ParsedRequest, provider: str, case: int) -> bool:
    return req.provider == provider and f"(case {case})" in req.prompt_text and not req.is_reask


def _bounds_from_log(log: list[Any], criterion: str) -> tuple[int, int]:
    for record in log:
        if record.parsed and record.parsed.schema and criterion in record.parsed.schema["properties"]:
            return score_bounds(record.parsed.schema, criterion)
    raise AssertionError(criterion)


def test_killed_run_resumes_to_identical_files_without_reasking(
    tmp_path: Path, judge_env: Path, rubric_dir: Path
) -> None:
    items = write_jsonl(tmp_path / "items.jsonl", make_items(40))
    env = {"OPENAI_API_KEY": OPENAI_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY}
    # No prompt caching: the reference run would warm the provider's cache, and the resumed run's cached
    # tokens (hence costs) would differ from the reference's for that reason alone.
    with FakeLLMServer(latency_s=0.05, answerer=scripted_answerer, cache_min_tokens=10**9) as server:
        base = ["score", str(items), "--judges", judges_arg(server), "--rubrics", str(rubric_dir), "--no-cache"]
        base += ["--concurrency", "2", "-q"]
        reference = trustmh_subprocess([*base, "--out", str(tmp_path / "clean")], env)
        assert reference.wait(timeout=300) == 0, reference.stderr.read() if reference.stderr else ""
        server.reset()

        out = tmp_path / "killed"
        child = trustmh_subprocess([*base, "--out", str(out)], env)
        deadline = time.monotonic() + 120
        while len(answered(server)) < 30 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        assert not (out / "summary.json").exists(), "the run was killed before it finished"
        # A kill can cut a call's rows anywhere, even between two of its lines (a write is cut at a page
        # boundary), so a call counts as answered before the kill only when all its rows were written.
        killed_rows: Counter[str] = Counter()
        for line in (out / "verdicts.jsonl").read_text().splitlines():
            with contextlib.suppress(ValueError):  # a line cut by the kill
                killed_rows[json.loads(line)["request_key"]] += 1
        assert killed_rows
        server.reset()

        resumed = trustmh_subprocess([*base, "--out", str(out)], env)
        assert resumed.wait(timeout=300) == 0
        asked_again = {(r.provider, judged_response(r.parsed)) for r in server.requests}

    clean_rows = read_jsonl(tmp_path / "clean" / "verdicts.jsonl")
    final_rows = read_jsonl(out / "verdicts.jsonl")
    assert stable(final_rows) == stable(clean_rows)
    responses = {item["id"]: item["response"] for item in make_items(40)}
    final_counts = Counter(r["request_key"] for r in final_rows)
    journal_keys = {key for key, count in killed_rows.items() if count == final_counts[key]}
    journaled = {(r["provider"], responses[r["item_id"]]) for r in final_rows if r["request_key"] in journal_keys}
    assert journaled, "some calls were answered before the kill"
    assert not journaled & asked_again, "a call answered before the kill was asked again"
    assert len(asked_again) + len(journaled) >= 80 - 2  # at most the in-flight calls are asked twice
    summary = json.loads((out / "summary.json").read_text())
    assert summary["calls"]["resumed"] == len(journaled)
    # The summary counts the whole run, the killed process's answers included (nothing came from a cache).
    assert summary["calls"]["requested"] == 80 and summary["calls"]["cache_hits"] == 0
    clean_summary = json.loads((tmp_path / "clean" / "summary.json").read_text())
    assert summary["tokens_this_run"]["output"] >= clean_summary["tokens_this_run"]["output"]


def test_template_syntax_in_a_response_reaches_the_judge_verbatim(
    tmp_path: Path, llm_server: FakeLLMServer, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    item = make_items(1)[0]
    item["response"] = "{{ 7*7 }} {% raw %} I hear you; please call 988 if you feel unsafe.   Two  spaces."
    items = write_jsonl(tmp_path / "items.jsonl", [item])
    judge = f"openai:gpt-4.1-mini@{llm_server.openai_base_url}"
    result = run_cli("score", items, "--judges", judge, "--rubrics", rubric_dir, "--out", tmp_path / "out", "-q")
    assert result.code == 0, result.stderr
    (request,) = llm_server.requests
    assert judged_response(request.parsed) == item["response"]
    rows = read_jsonl(tmp_path / "out" / "verdicts.jsonl")
    on_response = [r for r in rows if r["criterion"] != "risk_across_turns"]  # that one: single turn, n/a
    assert on_response and all(r["status"] == "ok" and r["evidence"] == ["{{ 7*7 }}"] for r in on_response)
