"""`trustmh respond` end to end against the loopback server: answers are what the server said, the cache
and the journal make re-runs free, a killed run resumes to the same files without re-sending answered
requests, faults end answered or failed with a reason, and follow-up turns are answered in order."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from tests.conftest import ANTHROPIC_KEY, OPENAI_KEY, read_jsonl, trustmh_subprocess, write_jsonl
from tests.fakeapi import FakeLLMServer, FaultPlan, Reply
from tests.fakeapi.protocol import default_answerer

pytestmark = pytest.mark.timeout(240)

VOLATILE = {"latency_s", "cached"}


def prompts(n: int, followups: int = 0) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        row: dict[str, Any] = {
            "id": f"p-{i:03d}",
            "pillar": "safety",
            "prompt": f"I have been feeling low for weeks; what should I do? (case {i})",
            "meta": {"suite": "test/suite", "case": i},
        }
        if followups:
            row["followups"] = [f"Are you sure? (case {i}, push {k})" for k in range(followups)]
        rows.append(row)
    return rows


def targets_arg(server: FakeLLMServer) -> str:
    return f"openai:gpt-4o-mini@{server.openai_base_url},anthropic:claude-haiku-4-5@{server.anthropic_base_url}"


def answer_text(record: Any) -> str:
    """The text the server put on the wire for a plain chat request, either provider."""
    body = record.answer.json
    if record.provider == "openai":
        return body["choices"][0]["message"]["content"]
    return "".join(block["text"] for block in body["content"] if block["type"] == "text")


def conversation(record: Any) -> str:
    """A request's conversation as sent (system prompt included), to find the same request again."""
    body = record.body
    return json.dumps([body.get("system"), body["messages"]], sort_keys=True)


def stable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]


@pytest.fixture
def text_server() -> Any:
    with FakeLLMServer(answerer=default_answerer) as server:
        yield server


def test_forty_prompts_two_providers_answers_are_what_the_server_said_and_a_rerun_sends_nothing(
    tmp_path: Path, text_server: FakeLLMServer, judge_env: Path, run_cli: Any
) -> None:
    file = write_jsonl(tmp_path / "prompts.jsonl", prompts(40))
    out = tmp_path / "out"
    result = run_cli("respond", file, "--targets", targets_arg(text_server), "--out", out, "-q")
    assert result.code == 0, result.stderr
    assert len(text_server.requests) == 80
    said = {(r.provider, conversation(r)): answer_text(r) for r in text_server.requests}
    responses = read_jsonl(out / "responses.jsonl")
    calls = read_jsonl(out / "calls.jsonl")
    assert len(responses) == len(calls) == 80
    for call, item in zip(calls, responses, strict=True):
        provider = call["provider"]
        body_messages = item["messages"]
        system = None
        key = (provider, json.dumps([system, body_messages], sort_keys=True))
        assert item["response"] == said[key] == call["response"]
        assert item["id"] == call["id"] == f"{call['prompt_id']}@{call['target']}"
        assert item["meta"]["case"] == call["meta"]["case"] and item["meta"]["prompt_id"] == call["prompt_id"]
        assert call["status"] == "ok" and call["input_tokens"] and call["output_tokens"]
    assert [c["prompt_id"] for c in calls[:4]] == ["p-000", "p-000", "p-001", "p-001"], "plan order"
    text_server.reset()

    again = run_cli("respond", file, "--targets", targets_arg(text_server), "--out", tmp_path / "again", "-q")
    assert again.code == 0
    assert text_server.requests == [], "every answer came from the cache"
    assert (tmp_path / "again" / "responses.jsonl").read_text() == (out / "responses.jsonl").read_text()
    summary = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert summary["calls"]["cache_hits"] == 80 and summary["calls"]["requested"] == 0

    scored = run_cli("score", out / "responses.jsonl", "--judges", "openai:j@http://127.0.0.1:9/v1", "--dry-run")
    assert scored.code == 0, scored.stderr
    for secret in (OPENAI_KEY, ANTHROPIC_KEY):
        assert all(secret not in p.read_text() for p in out.iterdir() if p.is_file())


def test_follow_up_turns_are_answered_in_order_with_the_servers_answers(
    tmp_path: Path, text_server: FakeLLMServer, judge_env: Path, run_cli: Any
) -> None:
    file = write_jsonl(tmp_path / "prompts.jsonl", prompts(3, followups=2))
    out = tmp_path / "out"
    assert run_cli("respond", file, "--targets", targets_arg(text_server), "--out", out, "-q").code == 0
    assert len(text_server.requests) == 3 * 2 * 3
    said = {(r.provider, conversation(r)): answer_text(r) for r in text_server.requests}
    for call, item in zip(read_jsonl(out / "calls.jsonl"), read_jsonl(out / "responses.jsonl"), strict=True):
        messages = item["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
        case = call["meta"]["case"]
        assert [m["content"] for m in messages if m["role"] == "user"][1:] == [
            f"Are you sure? (case {case}, push 0)",
            f"Are you sure? (case {case}, push 1)",
        ]
        for turn in range(3):
            asked = messages[: 2 * turn + 1]
            expected = said[(call["provider"], json.dumps([None, asked], sort_keys=True))]
            assert call["turns"][turn] == expected
            if turn < 2:
                assert messages[2 * turn + 1]["content"] == expected
        assert item["response"] == call["turns"][-1]


def test_a_target_system_prompt_reaches_each_provider_where_it_belongs(
    tmp_path: Path, text_server: FakeLLMServer, judge_env: Path, run_cli: Any
) -> None:
    targets = tmp_path / "targets.toml"
    targets.write_text(
        f'[targets.oa]\nspec = "openai:gpt-4o-mini@{text_server.openai_base_url}"\nsystem_prompt = "Be kind."\n'
        f'[targets.an]\nspec = "anthropic:claude-haiku-4-5@{text_server.anthropic_base_url}"\n'
        'system_prompt = "Be kind."\ntemperature = 0.3\nmax_tokens = 300\n',
        encoding="utf-8",
    )
    file = write_jsonl(tmp_path / "prompts.jsonl", prompts(1))
    assert run_cli("respond", file, "--targets-file", targets, "--out", tmp_path / "out", "-q").code == 0
    bodies = {r.provider: r.body for r in text_server.requests}
    assert bodies["openai"]["messages"][0] == {"role": "system", "content": "Be kind."}
    assert bodies["anthropic"]["system"] == "Be kind." and bodies["anthropic"]["messages"][0]["role"] == "user"
    assert bodies["anthropic"]["temperature"] == 0.3 and bodies["anthropic"]["max_tokens"] == 300
    ids = [c["id"] for c in read_jsonl(tmp_path / "out" / "calls.jsonl")]
    assert ids == ["p-000@oa", "p-000@an"]


def test_under_faults_every_prompt_ends_answered_or_failed_with_a_reason(
    tmp_path: Path, text_server: FakeLLMServer, judge_env: Path, run_cli: Any
) -> None:
    targets = tmp_path / "targets.toml"
    settings = "max_attempts = 3\nbackoff_initial_s = 0.01\nbackoff_max_s = 0.02\ntimeout_s = 5\n"
    targets.write_text(
        f'[targets.oa]\nspec = "openai:gpt-4o-mini@{text_server.openai_base_url}"\n{settings}'
        f'[targets.an]\nspec = "anthropic:claude-haiku-4-5@{text_server.anthropic_base_url}"\n{settings}',
        encoding="utf-8",
    )
    text_server.faults = (
        FaultPlan.rate(0.15, Reply.rate_limited(retry_after=0), seed=1)
        + FaultPlan.rate(0.15, Reply.server_error(500), seed=2)
        + FaultPlan.rate(0.15, Reply.overloaded(), seed=3)
        + FaultPlan.rate(0.15, Reply.disconnect(), seed=4)
    )
    file = write_jsonl(tmp_path / "prompts.jsonl", prompts(30, followups=1))
    out = tmp_path / "out"
    result = run_cli("respond", file, "--targets-file", targets, "--out", out, "-q")
    assert result.code in (0, 3)
    calls = read_jsonl(out / "calls.jsonl")
    assert len(calls) == 60
    failed = [c for c in calls if c["status"] == "failed"]
    assert all(c["failure_reason"] and c["error"] and c["response"] is None for c in failed)
    assert all(c["status"] == "ok" and len(c["turns"]) == 2 for c in calls if c not in failed)
    responses = read_jsonl(out / "responses.jsonl")
    assert len(responses) == 60 - len(failed)
    assert (result.code == 3) == bool(failed)
    faulted = [r for r in text_server.requests if r.status != 200]
    assert faulted, "the fault plan fired"
    summary = json.loads((out / "summary.json").read_text())
    assert sum(summary["failures_by_reason"].values()) == len(failed)


def test_killed_run_resumes_to_identical_files_without_resending_answered_requests(
    tmp_path: Path, judge_env: Path
) -> None:
    file = write_jsonl(tmp_path / "prompts.jsonl", prompts(20, followups=2))
    env = {"OPENAI_API_KEY": OPENAI_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY}
    with FakeLLMServer(latency_s=0.05, answerer=default_answerer) as server:
        base = ["respond", str(file), "--targets", targets_arg(server), "--no-cache", "--concurrency", "2", "-q"]
        reference = trustmh_subprocess([*base, "--out", str(tmp_path / "clean")], env)
        assert reference.wait(timeout=200) == 0, reference.stderr.read() if reference.stderr else ""
        server.reset()

        out = tmp_path / "killed"
        child = trustmh_subprocess([*base, "--out", str(out)], env)
        deadline = time.monotonic() + 120
        while sum(r.status == 200 for r in server.requests) < 50 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        assert not (out / "summary.json").exists(), "the run was killed before it finished"
        answered_before = {(r.provider, conversation(r)) for r in server.requests if r.status == 200}
        journaled = 0
        for line in (out / "calls.jsonl").read_text().splitlines():
            with contextlib.suppress(ValueError):
                journaled += json.loads(line)["status"] == "ok"
        assert journaled, "some calls were journalled before the kill"
        assert (out / "inflight.jsonl").stat().st_size > 0, "mid-call answers were logged"
        server.reset()

        resumed = trustmh_subprocess([*base, "--out", str(out)], env)
        assert resumed.wait(timeout=200) == 0, resumed.stderr.read() if resumed.stderr else ""
        sent_again = {(r.provider, conversation(r)) for r in server.requests} & answered_before

    for name in ("calls.jsonl",):
        assert stable(read_jsonl(out / name)) == stable(read_jsonl(tmp_path / "clean" / name))
    assert (out / "responses.jsonl").read_text() == (tmp_path / "clean" / "responses.jsonl").read_text()
    # At most the answers on the wire at the moment of the kill (2 per target) were never received.
    assert len(sent_again) <= 4, sent_again
    assert not (out / "inflight.jsonl").exists(), "the request log is removed once every call is journalled"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"id": "a", "prompt": "hi", "response": "already answered"}, "prompts.jsonl:1: field `response`"),
        (
            {"id": "a", "prompt": "hi", "followups": ["ok", 3]},
            "prompts.jsonl:1: field `followups[1]`: must be a string",
        ),
        ({"id": "a", "prompt": "hi", "followups": "insist"}, "prompts.jsonl:1: field `followups`"),
        ({"id": "a", "prompt": "hi", "pillar": "nope"}, "prompts.jsonl:1: unknown pillar 'nope'"),
    ],
)
def test_bad_prompts_exit_2_naming_the_line_and_send_nothing(
    tmp_path: Path, text_server: FakeLLMServer, judge_env: Path, run_cli: Any, record: dict[str, Any], message: str
) -> None:
    file = write_jsonl(tmp_path / "prompts.jsonl", [record])
    result = run_cli("respond", file, "--targets", targets_arg(text_server), "--out", tmp_path / "out")
    assert result.code == 2
    assert message in result.stderr.replace("\n", " ")
    assert text_server.requests == [] and not (tmp_path / "out").exists()


def test_a_targets_file_with_an_unknown_key_exits_2_naming_file_and_table(
    tmp_path: Path, text_server: FakeLLMServer, judge_env: Path, run_cli: Any
) -> None:
    targets = tmp_path / "targets.toml"
    targets.write_text('[targets.bot]\nspec = "openai:gpt-4o-mini"\nsystem_promt = "typo"\n', encoding="utf-8")
    file = write_jsonl(tmp_path / "prompts.jsonl", prompts(1))
    result = run_cli("respond", file, "--targets-file", targets, "--out", tmp_path / "out")
    assert result.code == 2
    assert "[targets.bot]" in result.stderr and "system_promt" in result.stderr
    assert text_server.requests == []


def test_dry_run_prices_target_calls_and_sends_nothing(
    tmp_path: Path, text_server: FakeLLMServer, judge_env: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import judge.cli.respond_cmd

    monkeypatch.setattr(judge.cli.respond_cmd, "out_console", Console(width=300))
    file = write_jsonl(tmp_path / "prompts.jsonl", prompts(5, followups=1))
    result = run_cli("respond", file, "--targets", "openai:gpt-4o-mini", "--out", tmp_path / "out", "--dry-run")
    assert result.code == 0, result.stderr
    (row,) = [line for line in result.stdout.splitlines() if "openai:gpt-4o-mini" in line]
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[1:5] == ["5", "0", "0", "5"], cells
    assert int(cells[6]) == 5 * 2 * 400, "two turns of about 400 output tokens each"
    assert float(cells[7]) > 0
    assert text_server.requests == [] and not (tmp_path / "out").exists()


def test_a_second_run_on_the_same_out_dir_is_refused_while_the_first_holds_it(
    tmp_path: Path, text_server: FakeLLMServer, judge_env: Path, run_cli: Any
) -> None:
    from judge.rundir import OutDirLock, make_private_dir

    out = tmp_path / "out"
    make_private_dir(out)
    file = write_jsonl(tmp_path / "prompts.jsonl", prompts(1))
    with OutDirLock(out):
        result = run_cli("respond", file, "--targets", targets_arg(text_server), "--out", out)
    assert result.code == 2 and "another run is using this out directory" in result.stderr
    assert f"pid {os.getpid()}" in result.stderr.replace("\n", " ")
    assert text_server.requests == []


def test_reusing_an_out_dir_for_other_prompts_needs_overwrite(
    tmp_path: Path, text_server: FakeLLMServer, judge_env: Path, run_cli: Any
) -> None:
    out = tmp_path / "out"
    first = write_jsonl(tmp_path / "first.jsonl", prompts(2))
    assert run_cli("respond", first, "--targets", targets_arg(text_server), "--out", out, "-q").code == 0
    other = write_jsonl(tmp_path / "other.jsonl", prompts(3))
    refused = run_cli("respond", other, "--targets", targets_arg(text_server), "--out", out, "-q")
    assert refused.code == 2 and "--overwrite" in refused.stderr
    assert len(read_jsonl(out / "responses.jsonl")) == 4, "the earlier results are untouched"
    replaced = run_cli("respond", other, "--targets", targets_arg(text_server), "--out", out, "-q", "--overwrite")
    assert replaced.code == 0
    assert len(read_jsonl(out / "responses.jsonl")) == 6
