"""What llama.cpp's OpenAI-compatible server was seen to do (`make test-llm`), replayed on the loopback
server so the client's handling of it is covered offline: a request it cannot accept comes back as an
HTTP 500 whose body says so (not worth a retry), and an answer cut off at max_tokens comes back with
finish_reason "tool_calls" rather than "length" (not worth a re-ask)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from judge.judges import JudgeSpec
from tests.fakeapi import FakeLLMServer, FaultPlan, Reply
from tests.fakeapi.judge_script import scripted_verdict
from tests.test_client import ask_worker, judge, planned_call

pytestmark = pytest.mark.timeout(60)

# The body llama-cpp-python 0.3.36 sends for `response_format: {"type": "json_schema", ...}`, with status 500.
LLAMA_CPP_VALIDATION_ERROR = (
    "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
    "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema', "
    "'ctx': {'expected': \"'text' or 'json_object'\"}}\n\n"
    '  File ".../llama_cpp/server/app.py", line 376, in create_chat_completion\n    POST /v1/chat/completions'
)


def fast_retries(server: FakeLLMServer, provider: str) -> JudgeSpec:
    return replace(judge(server, provider), max_attempts=3, backoff_initial_s=0.01, backoff_max_s=0.01)


@pytest.mark.parametrize(
    ("provider", "reply"),
    [
        ("openai", Reply.error(500, kind="internal_server_error", message=LLAMA_CPP_VALIDATION_ERROR)),
        ("openai", Reply.error(500, kind="invalid_request_error", message="response_format is not supported")),
        ("anthropic", Reply.error(500, kind="invalid_request_error", message="tools: not supported here")),
    ],
)
def test_a_server_error_whose_body_blames_the_request_fails_at_once_as_bad_request(
    llm_server: FakeLLMServer, judge_env: Path, provider: str, reply: Reply
) -> None:
    spec = fast_retries(llm_server, provider)
    llm_server.faults = FaultPlan.every(1, reply)
    result = asyncio.run(ask_worker(spec, planned_call(spec)))
    assert result.failure_reason == "bad_request"
    assert len(llm_server.requests) == 1
    error = result.payload[0].error or ""
    assert error.startswith("bad_request: HTTP 500") and "gave up" not in error


def test_a_plain_server_error_is_still_retried(llm_server: FakeLLMServer, judge_env: Path) -> None:
    spec = fast_retries(llm_server, "openai")
    llm_server.faults = FaultPlan.every(1, Reply.error(500, message="The server had an error processing your request."))
    result = asyncio.run(ask_worker(spec, planned_call(spec)))
    assert result.failure_reason == "server_error"
    assert len(llm_server.requests) == 3


def test_an_invalid_answer_that_used_every_token_fails_as_truncated_without_a_reask(
    llm_server: FakeLLMServer, judge_env: Path
) -> None:
    """llama.cpp's answer at the limit: half a tool call, finish_reason "tool_calls", completion_tokens = max_tokens."""
    spec = judge(llm_server, "openai", max_tokens=300)
    llm_server.faults = FaultPlan.first(
        1, Reply.raw_arguments('{"escalation_and_resources": {"rationale": "The', 40, 300)
    )
    result = asyncio.run(ask_worker(spec, planned_call(spec)))
    assert llm_server.requests[0].answer.json["choices"][0]["finish_reason"] == "tool_calls"
    assert result.failure_reason == "truncated"
    assert len(llm_server.requests) == 1
    assert "max_tokens=300" in (result.payload[0].error or "")


def test_a_complete_answer_that_used_every_token_is_accepted(llm_server: FakeLLMServer, judge_env: Path) -> None:
    spec = judge(llm_server, "openai", max_tokens=300)
    llm_server.faults = FaultPlan.first(1, lambda req: Reply.structured(scripted_verdict(req), 40, 300))
    result = asyncio.run(ask_worker(spec, planned_call(spec)))
    assert result.ok and len(llm_server.requests) == 1


def test_an_invalid_answer_under_the_limit_is_still_reasked(llm_server: FakeLLMServer, judge_env: Path) -> None:
    spec = judge(llm_server, "openai", max_tokens=300)
    llm_server.faults = FaultPlan.first(1, Reply.raw_arguments('{"not": "a verdict"}', 40, 299))
    result = asyncio.run(ask_worker(spec, planned_call(spec)))
    assert result.ok
    assert len(llm_server.requests) == 2 and llm_server.requests[1].parsed.is_reask
