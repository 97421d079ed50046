"""`--batch` through the CLI against the loopback server's batch protocols: the batch holds exactly the
requests a live run sends, answers are validated like live ones (an invalid one is re-asked live), batch
entries that fail map to live failure reasons, costs are half the live price, cached calls never go into
a batch, a killed run resumes polling the same batches without resubmitting, `respond` asks follow-up
turns live, and a dry run shows both prices."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import judge.cli.main
import judge.cli.respond_cmd
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
from tests.fakeapi.judge_script import scripted_answerer, scripted_verdict
from tests.test_client import blank_ids
from tests.test_panel_cli import DISSENT_ON, arranged_answerer, judges_spec

pytestmark = pytest.mark.timeout(240)

VOLATILE = {"latency_s", "cached", "cost_usd", "batch"}
CHAT_PATHS = ("/v1/chat/completions", "/v1/messages")


def live_requests(server: FakeLLMServer) -> list[Any]:
    return [r for r in server.requests if r.path in CHAT_PATHS]


def stable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]


def score(run_cli: Any, server: FakeLLMServer, items: Path, out: Path, rubrics: Path, *extra: Any) -> Any:
    args = ["score", items, "--judges", judges_arg(server), "--rubrics", rubrics, "--out", out, "-q"]
    return run_cli(*args, "--batch-poll", "0", *extra)


def uncached_server() -> FakeLLMServer:
    """Prompt caching off: a live and a batch run then bill the same tokens, and costs compare exactly."""
    return FakeLLMServer(answerer=scripted_answerer, cache_min_tokens=10**9)


def test_score_batch_sends_what_live_sends_and_costs_half(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    items = write_jsonl(tmp_path / "items.jsonl", make_items(6))
    with uncached_server() as server:
        live = score(run_cli, server, items, tmp_path / "live", rubric_dir, "--no-cache")
        assert live.code == 0, live.stderr
        live_bodies = sorted(json.dumps(blank_ids(r.body), sort_keys=True) for r in live_requests(server))
        server.reset()
        batch = score(run_cli, server, items, tmp_path / "batch", rubric_dir, "--no-cache", "--batch")
        assert batch.code == 0, batch.stderr
        assert live_requests(server) == []  # every answer came from a batch
        created = server.batches.created
        assert sorted(b.provider for b in created) == ["anthropic", "openai"]
        batch_bodies = sorted(json.dumps(blank_ids(e.body), sort_keys=True) for b in created for e in b.entries)
        assert batch_bodies == live_bodies
        posts = sorted(r.path for r in server.requests if r.method == "POST")
        assert posts == ["/v1/batches", "/v1/files", "/v1/messages/batches"]  # one batch per judge

    live_rows, batch_rows = (
        read_jsonl(tmp_path / "live" / "verdicts.jsonl"),
        read_jsonl(tmp_path / "batch" / "verdicts.jsonl"),
    )
    assert stable(batch_rows) == stable(live_rows)
    assert all(row["batch"] for row in batch_rows) and not any(row["batch"] for row in live_rows)
    for live_row, batch_row in zip(live_rows, batch_rows, strict=True):
        assert batch_row["cost_usd"] == pytest.approx(live_row["cost_usd"] / 2, abs=1e-12)
    live_summary = json.loads((tmp_path / "live" / "summary.json").read_text())
    summary = json.loads((tmp_path / "batch" / "summary.json").read_text())
    assert summary["calls"]["batched"] == summary["calls"]["planned"] == 12
    assert summary["calls"]["http_requests_this_process"] == 0
    assert summary["tokens_this_run"] == live_summary["tokens_this_run"]
    assert summary["cost_usd_this_run"] == pytest.approx(live_summary["cost_usd_this_run"] / 2, abs=1e-6)
    journal = read_jsonl(tmp_path / "batch" / "batches.jsonl")
    assert [line["event"] for line in journal].count("submitted") == 2
    assert [line["event"] for line in journal].count("collected") == 2
    assert not (tmp_path / "batch" / "inflight.jsonl").exists()


def _about(case: int) -> Any:
    return lambda req: f"(case {case})" in req.prompt_text and not req.is_reask


def test_invalid_batch_answers_are_reasked_live_and_batch_errors_fail_with_live_reasons(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    def out_of_range(req: ParsedRequest) -> Reply:
        verdict = scripted_verdict(req)
        verdict["escalation_and_resources"]["score"] = 99
        return Reply.structured(verdict)

    items = write_jsonl(tmp_path / "items.jsonl", make_items(5))
    with uncached_server() as server:
        server.faults = (
            FaultPlan.when(_about(0), out_of_range, times=2)  # the batch answer of both judges: re-asked live
            + FaultPlan.when(_about(1), Reply.rate_limited(), times=2)
            + FaultPlan.when(_about(2), Reply.error(400, message="prompt is too long"), times=2)
            + FaultPlan.when(_about(3), Reply.server_error(500), times=2)
        )
        result = score(run_cli, server, items, tmp_path / "out", rubric_dir, "--no-cache", "--batch")
        reasks = live_requests(server)
        rows = read_jsonl(tmp_path / "out" / "verdicts.jsonl")
        summary = json.loads((tmp_path / "out" / "summary.json").read_text())

        server.faults = None
        server.batches.created.clear()  # run again: only the failed calls are asked, in a new batch
        again = score(run_cli, server, items, tmp_path / "out", rubric_dir, "--no-cache", "--batch")
        assert again.code == 0, again.stderr
        assert sum(len(b.entries) for b in server.batches.created) == 6
    assert result.code == 3
    assert len(reasks) == 2 and all(r.parsed.is_reask for r in reasks)
    assert all("escalation_and_resources" in (r.parsed.reask_feedback or "") for r in reasks)
    # single-turn items: the conversation criterion is not applicable to them, whatever happened to the call
    status = {(r["item_id"], r["provider"]): r for r in rows if r["criterion"] != "risk_across_turns"}
    for provider in ("openai", "anthropic"):
        assert status[("item-000", provider)]["status"] == "ok"
        assert status[("item-004", provider)]["status"] == "ok"
        for item, reason in (("item-001", "rate_limited"), ("item-002", "bad_request"), ("item-003", "server_error")):
            row = status[(item, provider)]
            assert row["status"] == "failed" and row["error"].startswith(reason), row["error"]
    assert summary["failures_by_reason"] == {"bad_request": 2, "rate_limited": 2, "server_error": 2}
    assert summary["calls"]["http_requests_this_process"] == 2  # the two re-asks
    assert all(r["batch"] for r in rows if r["item_id"] == "item-000")


def test_expired_and_canceled_batch_entries_fail_as_such(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    items = write_jsonl(tmp_path / "items.jsonl", make_items(4))
    with uncached_server() as server:
        server.batches.expire_after = 3
        result = score(run_cli, server, items, tmp_path / "out", rubric_dir, "--no-cache", "--batch")
    assert result.code == 3
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["failures_by_reason"] == {"expired": 2}
    failed = [r for r in read_jsonl(tmp_path / "out" / "verdicts.jsonl") if r["status"] == "failed"]
    assert failed and all(r["error"].startswith("expired") for r in failed)


def test_cached_calls_never_go_into_a_batch(tmp_path: Path, judge_env: Path, rubric_dir: Path, run_cli: Any) -> None:
    with uncached_server() as server:
        first = score(run_cli, server, write_jsonl(tmp_path / "a.jsonl", make_items(3)), tmp_path / "a", rubric_dir)
        assert first.code == 0, first.stderr
        server.reset()
        items = write_jsonl(tmp_path / "b.jsonl", make_items(5))
        result = score(run_cli, server, items, tmp_path / "b", rubric_dir, "--batch")
        assert result.code == 0, result.stderr
        assert sum(len(b.entries) for b in server.batches.created) == 4  # items 3 and 4, two judges
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["calls"]["cache_hits"] == 6 and summary["calls"]["batched"] == 4


@pytest.mark.parametrize("resume_flags", [["--batch"], []], ids=["resumed-with-batch", "resumed-without"])
def test_a_killed_batch_run_resumes_polling_the_same_batches(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, run_cli: Any, resume_flags: list[str]
) -> None:
    """Without --batch too: the open batches' calls are paid for already, so they are collected."""
    items = write_jsonl(tmp_path / "items.jsonl", make_items(4))
    out = tmp_path / "out"
    env = {"OPENAI_API_KEY": OPENAI_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY}
    with uncached_server() as server:
        server.batches.hold = True  # the provider takes its time: the run polls until killed
        args = ["score", str(items), "--judges", judges_arg(server), "--rubrics", str(rubric_dir), "--out", str(out)]
        child = trustmh_subprocess([*args, "--no-cache", "--batch", "--batch-poll", "0.05", "-q"], env)
        journal = out / "batches.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not journal.exists() or journal.read_text().count('"submitted"') < 2):
            time.sleep(0.02)
        polls_before = sum(r.method == "GET" for r in server.requests)
        while time.monotonic() < deadline and sum(r.method == "GET" for r in server.requests) == polls_before:
            time.sleep(0.02)  # it is polling
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        assert len(server.batches.created) == 2
        submitted = {b.id for b in server.batches.created}

        server.batches.hold = False
        resumed = score(run_cli, server, items, out, rubric_dir, "--no-cache", *resume_flags)
        assert resumed.code == 0, resumed.stderr
        assert {b.id for b in server.batches.created} == submitted  # nothing resubmitted
        assert live_requests(server) == []
    summary = json.loads((out / "summary.json").read_text())
    assert summary["calls"]["batched"] == 8 and summary["calls"]["failed"] == 0
    journal_lines = read_jsonl(out / "batches.jsonl")
    assert {line["batch_id"] for line in journal_lines if line["event"] == "collected"} == submitted


def test_dry_run_with_batch_shows_both_prices(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(judge.cli.main, "out_console", Console(width=400))  # one line per judge
    items = write_jsonl(tmp_path / "items.jsonl", make_items(3))
    with uncached_server() as server:
        result = run_cli(
            "score",
            items,
            "--judges",
            judges_arg(server),
            "--rubrics",
            rubric_dir,
            "--out",
            tmp_path / "o",
            "--dry-run",
            "--batch",
        )
        assert server.requests == []
    assert result.code == 0, result.stderr
    assert "est. batch cost" in result.stdout and "est. cost" in result.stdout
    figures = []
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in line.split("│") if c.strip()]
        if cells and cells[0].startswith(("openai", "anthropic")) and len(cells) >= 9:
            figures.append((float(cells[-2]), float(cells[-1])))
    assert figures and all(batch == pytest.approx(live / 2, abs=1e-4) for live, batch in figures)


def test_respond_batch_answers_first_turns_from_a_batch_and_follow_ups_live(
    tmp_path: Path, judge_env: Path, run_cli: Any
) -> None:
    prompts = [
        {"id": f"p-{i}", "pillar": "safety", "prompt": f"I feel low (case {i})", "followups": [f"Really? ({i})"]}
        for i in range(3)
    ]
    path = write_jsonl(tmp_path / "prompts.jsonl", prompts)
    with FakeLLMServer(cache_min_tokens=10**9) as server:
        targets = f"openai:gpt-4o-mini@{server.openai_base_url},anthropic:claude-haiku-4-5@{server.anthropic_base_url}"
        result = run_cli(
            "respond",
            path,
            "--targets",
            targets,
            "--out",
            tmp_path / "out",
            "--no-cache",
            "--batch",
            "--batch-poll",
            "0",
            "-q",
        )
        assert result.code == 0, result.stderr
        first_turns = [e for b in server.batches.created for e in b.entries]
        follow_ups = live_requests(server)
    assert len(first_turns) == 6 and len(follow_ups) == 6
    assert all(len(r.body["messages"]) == 3 for r in follow_ups)  # prompt, batch answer, follow-up
    rows = read_jsonl(tmp_path / "out" / "calls.jsonl")
    assert all(r["status"] == "ok" and len(r["turns"]) == 2 and r["batch"] for r in rows)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["calls"]["batched"] == 6


def test_tiebreak_calls_go_into_a_second_batch_round(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    items = write_jsonl(tmp_path / "items.jsonl", make_items(10))
    out = tmp_path / "run"
    with FakeLLMServer(answerer=arranged_answerer) as server:
        tiebreak = f"openai:judge-t@{server.openai_base_url}"
        result = run_cli(
            "score", items, "--judges", judges_spec(server), "--rubrics", rubric_dir, "--out", out,
            "--tiebreak", tiebreak, "--batch", "--batch-poll", "0", "-q",
        )  # fmt: skip
        assert result.code == 0, result.stderr
        assert live_requests(server) == []
        rounds = [(b.entries[0].body["model"], len(b.entries)) for b in server.batches.created]
    assert sorted(rounds) == [("judge-a", 10), ("judge-b", 10), ("judge-c", 10), ("judge-t", len(DISSENT_ON))]
    decided = {row["item_id"] for row in read_jsonl(out / "panel.jsonl") if row["decided_by"] == "tiebreak"}
    assert decided == DISSENT_ON


def test_a_server_without_batch_endpoints_is_a_clear_error(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    items = write_jsonl(tmp_path / "items.jsonl", make_items(2))
    with uncached_server() as server:
        server.batches.enabled = False
        judge = f"openai:qwen2.5@{server.openai_base_url}"
        result = run_cli(
            "score", items, "--judges", judge, "--rubrics", rubric_dir, "--out", tmp_path / "o", "--batch", "-q"
        )
        assert live_requests(server) == []
    assert result.code == 2
    assert "refused the batch (not_found, HTTP 404" in result.stderr and "without --batch" in result.stderr


def test_respond_dry_run_with_batch_shows_both_prices(
    tmp_path: Path, judge_env: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(judge.cli.respond_cmd, "out_console", Console(width=400))
    path = write_jsonl(tmp_path / "p.jsonl", [{"id": "p", "pillar": "safety", "prompt": "I feel low"}])
    result = run_cli("respond", path, "--targets", "openai:gpt-4o-mini@http://127.0.0.1:9/v1", "--dry-run", "--batch")
    assert result.code == 0, result.stderr
    (row,) = [line for line in result.stdout.splitlines() if "gpt-4o-mini" in line]
    live, batch = (float(cell) for cell in [c.strip() for c in row.split("│") if c.strip()][-2:])
    assert batch == pytest.approx(live / 2, abs=1e-4) and live > 0
