"""The fake OpenAI/Anthropic server, exercised through the real SDKs and instructor (nothing patched).

If these pass, the rest of the suite can trust that what the pipeline sees from the fake server is what it
would see from the real APIs (envelopes, usage, errors, retries, re-asks).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any, Literal

import anthropic
import instructor
import openai
import pytest
from anthropic.types import ErrorResponse as AnthropicErrorResponse
from anthropic.types import Message as AnthropicMessage
from instructor.core.exceptions import InstructorRetryException
from openai.types import ErrorObject as OpenAIErrorObject
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, Field

from tests.fakeapi import (
    FakeLLMServer,
    FaultPlan,
    ParsedRequest,
    Reply,
    count_tokens,
    schema_answer,
)

pytestmark = [
    pytest.mark.timeout(60),
    # instructor 1.17 deprecates Mode.ANTHROPIC_TOOLS (from_anthropic + Mode.TOOLS is the new spelling).
    pytest.mark.filterwarnings("ignore:Mode.ANTHROPIC_TOOLS is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning"),
]

RESPONSE = "I hear how heavy this feels. You are not alone; would you like to talk about what happened?"
USER_PROMPT = f"Judge the response.\n<response>{RESPONSE}</response>"


class Criterion(BaseModel):
    id: Literal["empathy", "safety"]
    score: int = Field(ge=1, le=5)
    evidence: list[str] = Field(min_length=1, max_length=3)


class Verdict(BaseModel):
    criteria: list[Criterion] = Field(min_length=1)
    rationale: str
    not_applicable: bool | None = None


class Score(BaseModel):
    score: int = Field(ge=1, le=5)
    reason: str


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as srv:
        yield srv


def _openai(server: FakeLLMServer, **kw: Any) -> openai.OpenAI:
    kw.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=server.openai_base_url, api_key="sk-test", **kw)


def _anthropic(server: FakeLLMServer, **kw: Any) -> anthropic.Anthropic:
    kw.setdefault("max_retries", 0)
    return anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="sk-ant-test", **kw)


def _messages() -> list[dict[str, Any]]:
    return [{"role": "system", "content": "You are a strict judge."}, {"role": "user", "content": USER_PROMPT}]


def _raw_post(server: FakeLLMServer, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any, Any]:
    """Bypass the SDKs to send what they never would (no key, broken JSON, unknown path)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read()), resp.headers
    finally:
        conn.close()


# --- success paths -------------------------------------------------------------------------------


def test_openai_tools_mode_returns_validated_object_and_served_usage(server: FakeLLMServer) -> None:
    client = instructor.from_openai(_openai(server), mode=instructor.Mode.TOOLS)
    verdict, completion = client.chat.completions.create_with_completion(
        model="gpt-4.1-mini", response_model=Verdict, messages=_messages()
    )
    assert isinstance(verdict, Verdict)
    assert all(" ".join(q.split()) in RESPONSE for c in verdict.criteria for q in c.evidence)
    (rec,) = server.requests
    parsed = rec.parsed
    assert parsed is not None and parsed.mode == "tools" and parsed.tool_name == "Verdict"
    assert parsed.system == "You are a strict judge." and not parsed.is_reask
    call = completion.choices[0].message.tool_calls[0]
    assert completion.choices[0].finish_reason == "tool_calls" and call.function.name == "Verdict"
    assert json.loads(call.function.arguments) == verdict.model_dump(mode="json")
    assert completion.usage.prompt_tokens == count_tokens(parsed.prompt_text) == rec.input_tokens
    assert completion.usage.completion_tokens == count_tokens(call.function.arguments) == rec.output_tokens
    assert completion.usage.total_tokens == rec.input_tokens + rec.output_tokens
    ChatCompletion.model_validate(rec.answer.json if rec.answer else None)
    assert rec.answer and rec.answer.headers["x-request-id"].startswith("req_")


def test_openai_json_schema_mode_async(server: FakeLLMServer) -> None:
    async def run() -> tuple[Verdict, Any]:
        aclient = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0)
        client = instructor.from_openai(aclient, mode=instructor.Mode.JSON_SCHEMA)
        return await client.chat.completions.create_with_completion(
            model="gpt-4.1-mini", response_model=Verdict, messages=_messages()
        )

    verdict, completion = asyncio.run(run())
    (rec,) = server.requests
    assert rec.body["response_format"]["type"] == "json_schema"
    assert rec.parsed and rec.parsed.mode == "json_schema"
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "stop" and message.tool_calls is None
    assert Verdict.model_validate_json(message.content).model_dump() == verdict.model_dump()
    assert completion.usage.completion_tokens == count_tokens(message.content)


@pytest.mark.parametrize("mode", [instructor.Mode.ANTHROPIC_TOOLS, instructor.Mode.TOOLS])
def test_anthropic_tools_mode_returns_validated_object_and_served_usage(
    server: FakeLLMServer, mode: instructor.Mode
) -> None:
    client = instructor.from_anthropic(_anthropic(server), mode=mode)
    verdict, message = client.messages.create_with_completion(
        model="claude-sonnet-4-5",
        max_tokens=512,
        system="You are a strict judge.",
        response_model=Verdict,
        messages=[{"role": "user", "content": USER_PROMPT}],
    )
    assert isinstance(verdict, Verdict)
    (rec,) = server.requests
    assert rec.provider == "anthropic" and rec.parsed and rec.parsed.tool_name == "Verdict"
    # anthropic 2.x sends the key as a bearer token; 0.x sent x-api-key. The server accepts both.
    key = rec.headers.get("x-api-key") or rec.headers["authorization"].removeprefix("Bearer ")
    assert key == "sk-ant-test" and "anthropic-version" in rec.headers
    block = message.content[0]
    assert message.stop_reason == "tool_use" and block.type == "tool_use" and block.name == "Verdict"
    assert block.input == verdict.model_dump(mode="json")
    assert message.usage.input_tokens == count_tokens(rec.parsed.prompt_text) == rec.input_tokens
    assert message.usage.output_tokens == count_tokens(json.dumps(block.input, separators=(",", ":")))
    assert message.usage.cache_read_input_tokens == 0
    AnthropicMessage.model_validate(rec.answer.json if rec.answer else None)
    assert rec.answer and rec.answer.headers["request-id"].startswith("req_")


def test_answers_are_deterministic_per_model_and_conversation(server: FakeLLMServer) -> None:
    client = instructor.from_openai(_openai(server), mode=instructor.Mode.TOOLS)

    def ask(model: str) -> Verdict:
        return client.chat.completions.create(model=model, response_model=Verdict, messages=_messages())

    assert ask("judge-a").model_dump() == ask("judge-a").model_dump()
    answers = {ask(f"judge-{i}").model_dump_json() for i in range(4)}
    assert len(answers) > 1


def test_reply_override_of_usage_and_plain_text_reply(server: FakeLLMServer) -> None:
    server.answerer = lambda req: Reply.structured({"score": 3, "reason": "ok"}, input_tokens=7, output_tokens=11)
    client = instructor.from_openai(_openai(server), mode=instructor.Mode.TOOLS)
    score, completion = client.chat.completions.create_with_completion(
        model="m", response_model=Score, messages=_messages()
    )
    assert score.score == 3 and completion.usage.prompt_tokens == 7 and completion.usage.completion_tokens == 11

    server.answerer = lambda req: Reply.text("Just words.")
    raw = _openai(server).chat.completions.create(model="m", messages=_messages())
    assert raw.choices[0].message.content == "Just words." and raw.choices[0].finish_reason == "stop"
    msg = _anthropic(server).messages.create(model="c", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert msg.content[0].type == "text" and msg.content[0].text == "Just words."
    assert msg.stop_reason == "end_turn"


# --- schema_answer -------------------------------------------------------------------------------


class Inner(BaseModel):
    label: Literal["low", "mid", "high"]
    weight: float = Field(gt=0, lt=1)


class Kitchen(BaseModel):
    count: int = Field(ge=-3, le=3)
    odd: int = Field(gt=10, lt=13, multiple_of=2)
    inner: Inner
    maybe: Inner | None
    many: list[Inner] = Field(min_length=2, max_length=4)
    tags: list[str] = Field(default_factory=list, max_length=0)
    flag: bool
    mapping: dict[str, int]
    choice: int | str
    name: str = Field(min_length=5, max_length=8)


def test_schema_answer_is_valid_and_deterministic() -> None:
    schema = Kitchen.model_json_schema()
    for i in range(40):
        Kitchen.model_validate(schema_answer(schema, f"seed-{i}"))
    assert schema_answer(schema, "x") == schema_answer(schema, "x")
    assert schema_answer(schema, "x") != schema_answer(schema, "y")


def test_schema_answer_quotes_come_from_the_source() -> None:
    out = schema_answer(Verdict.model_json_schema(), "s", quote_source=RESPONSE)
    assert all(q in RESPONSE for c in out["criteria"] for q in c["evidence"])


# --- re-asks and malformed answers ---------------------------------------------------------------


def _too_high_then_valid(req: ParsedRequest) -> Reply:
    return Reply.structured({"score": 4 if req.is_reask else 9, "reason": "r"})


@pytest.mark.parametrize("mode", [instructor.Mode.TOOLS, instructor.Mode.JSON_SCHEMA])
def test_openai_schema_violation_triggers_reask(server: FakeLLMServer, mode: instructor.Mode) -> None:
    server.answerer = _too_high_then_valid
    client = instructor.from_openai(_openai(server), mode=mode)
    score = client.chat.completions.create(model="m", response_model=Score, messages=_messages(), max_retries=2)
    assert score.score == 4
    first, second = server.requests
    assert not first.is_reask and second.is_reask
    assert second.parsed and "less than or equal to 5" in (second.parsed.reask_feedback or "")
    roles = [m["role"] for m in second.body["messages"]]
    assert roles[:2] == ["system", "user"] and roles[2] == "assistant"
    if mode == instructor.Mode.TOOLS:
        assert roles[3] == "tool"


def test_anthropic_schema_violation_triggers_reask(server: FakeLLMServer) -> None:
    server.answerer = _too_high_then_valid
    client = instructor.from_anthropic(_anthropic(server), mode=instructor.Mode.ANTHROPIC_TOOLS)
    score = client.messages.create(
        model="c", max_tokens=100, response_model=Score, messages=[{"role": "user", "content": "x"}], max_retries=2
    )
    assert score.score == 4
    first, second = server.requests
    assert second.is_reask and not first.is_reask
    assert second.parsed and any(m.tool_result and m.is_error for m in second.parsed.messages)
    assert "less than or equal to 5" in (second.parsed.reask_feedback or "")


def test_malformed_openai_arguments_go_through_instructor_retry(server: FakeLLMServer) -> None:
    server.faults = FaultPlan.first(1, Reply.raw_arguments('{"score": 3, "reason": "unterminated'))
    client = instructor.from_openai(_openai(server), mode=instructor.Mode.TOOLS)
    score = client.chat.completions.create(model="m", response_model=Score, messages=_messages(), max_retries=2)
    assert 1 <= score.score <= 5
    first, second = server.requests
    assert first.faulted and first.status == 200 and not second.faulted and second.is_reask
    assert first.answer and first.answer.json["choices"][0]["message"]["tool_calls"][0]["function"][
        "arguments"
    ].endswith("unterminated")

    server.reset()
    server.faults = FaultPlan.first(5, Reply.raw_arguments("not json"))
    with pytest.raises(InstructorRetryException):
        client.chat.completions.create(model="m", response_model=Score, messages=_messages(), max_retries=2)
    assert [r.ordinal for r in server.requests] == [1, 2, 3]  # max_retries=2 -> 3 attempts


def test_malformed_anthropic_input_is_a_schema_violating_object(server: FakeLLMServer) -> None:
    server.faults = FaultPlan.first(1, Reply.raw_arguments("{broken"))
    client = instructor.from_anthropic(_anthropic(server), mode=instructor.Mode.ANTHROPIC_TOOLS)
    score = client.messages.create(
        model="c", max_tokens=100, response_model=Score, messages=[{"role": "user", "content": "x"}], max_retries=2
    )
    assert 1 <= score.score <= 5
    first, second = server.requests
    assert first.answer and first.answer.json["content"][0]["input"] == {}
    assert second.is_reask


# --- HTTP errors through the SDKs ------------------------------------------------------------------


def test_openai_429_retry_after_is_honoured_by_sdk_retry(server: FakeLLMServer) -> None:
    server.faults = FaultPlan.first(1, Reply.rate_limited(retry_after=0.3))
    client = instructor.from_openai(_openai(server, max_retries=1), mode=instructor.Mode.TOOLS)
    t0 = time.monotonic()
    client.chat.completions.create(model="m", response_model=Score, messages=_messages())
    assert time.monotonic() - t0 >= 0.3
    first, second = server.requests
    assert first.status == 429 and second.status == 200
    assert first.answer and first.answer.headers["retry-after"] == "0.3"
    assert first.answer.headers["x-ratelimit-remaining-requests"] == "0"
    err = first.answer.json["error"]
    OpenAIErrorObject.model_validate(err)
    assert err["code"] == "rate_limit_exceeded" and err["param"] is None


def test_anthropic_429_then_success_and_529_surface(server: FakeLLMServer) -> None:
    server.faults = FaultPlan.first(1, Reply.rate_limited(retry_after=0.2))
    client = _anthropic(server, max_retries=1)
    client.messages.create(model="c", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert [r.status for r in server.requests] == [429, 200]

    server.faults = FaultPlan.when(lambda req: True, Reply.overloaded())
    # NB: in anthropic 2.x OverloadedError derives from APIStatusError, *not* InternalServerError.
    with pytest.raises(anthropic.APIStatusError) as info:
        _anthropic(server).messages.create(model="c", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert isinstance(info.value, anthropic.OverloadedError) and info.value.status_code == 529
    body = server.requests[-1].answer.json  # type: ignore[union-attr]
    AnthropicErrorResponse.model_validate(body)
    assert body["error"]["type"] == "overloaded_error" and info.value.request_id == body["request_id"]


def test_openai_500_503_and_auth_errors(server: FakeLLMServer) -> None:
    server.faults = FaultPlan.at([1], Reply.server_error(500)) + FaultPlan.at([2], Reply.error(503))
    client = _openai(server)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="m", messages=_messages())
    assert info.value.status_code == 500 and info.value.request_id == server.requests[0].answer.headers["x-request-id"]  # type: ignore[union-attr]
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="m", messages=_messages())
    assert info.value.status_code == 503

    strict = FakeLLMServer(api_key="sk-right").start()
    try:
        with pytest.raises(openai.AuthenticationError):
            _openai(strict).chat.completions.create(model="m", messages=_messages())
        with pytest.raises(anthropic.AuthenticationError):
            _anthropic(strict).messages.create(model="c", max_tokens=5, messages=[{"role": "user", "content": "x"}])
        assert [r.status for r in strict.requests] == [401, 401]
        assert strict.requests[0].answer.json["error"]["code"] == "invalid_api_key"  # type: ignore[union-attr]
    finally:
        strict.stop()


def test_missing_credentials_headers_bad_json_and_unknown_paths(server: FakeLLMServer) -> None:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 5}).encode()
    status, data, headers = _raw_post(server, "/v1/chat/completions", body, {})
    assert status == 401 and data["error"]["type"] == "invalid_request_error" and headers["x-request-id"]
    status, data, _ = _raw_post(server, "/v1/messages", body, {"anthropic-version": "2023-06-01"})
    assert status == 401 and data["error"]["type"] == "authentication_error" and data["type"] == "error"
    status, data, _ = _raw_post(server, "/v1/messages", body, {"x-api-key": "k"})
    assert status == 400 and "anthropic-version" in data["error"]["message"]
    status, data, _ = _raw_post(server, "/v1/chat/completions", b"{nope", {"Authorization": "Bearer k"})
    assert status == 400 and "could not parse the JSON body" in data["error"]["message"]
    status, data, _ = _raw_post(server, "/v1/embeddingz", body, {"Authorization": "Bearer k"})
    assert status == 404 and data["error"]["message"] == "Invalid URL (POST /v1/embeddingz)"
    status, data, _ = _raw_post(server, "/v1/nope", body, {"x-api-key": "k", "anthropic-version": "2023-06-01"})
    assert status == 404 and data["error"]["type"] == "not_found_error"
    status, data, _ = _raw_post(server, "/v1/chat/completions", b'{"model": "m"}', {"Authorization": "Bearer k"})
    assert status == 400 and data["error"]["param"] == "messages"
    with pytest.raises(openai.NotFoundError):
        _openai(server).post("/nothing-here", cast_to=object, body={})


def test_auth_can_be_disabled() -> None:
    with FakeLLMServer(require_auth=False) as srv:
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]}).encode()
        status, data, _ = _raw_post(srv, "/v1/chat/completions", body, {})
        assert status == 200 and data["object"] == "chat.completion"


# --- transport faults ----------------------------------------------------------------------------


@pytest.mark.parametrize("partial", [False, True])
def test_disconnect_surfaces_as_connection_error(server: FakeLLMServer, partial: bool) -> None:
    server.faults = FaultPlan.when(lambda req: True, Reply.disconnect(partial=partial), times=None)
    with pytest.raises(openai.APIConnectionError):
        _openai(server).chat.completions.create(model="m", messages=_messages())
    with pytest.raises(anthropic.APIConnectionError):
        _anthropic(server).messages.create(model="c", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert all(r.faulted for r in server.requests) and len(server.requests) == 2


def test_slow_reply_beyond_client_timeout_is_api_timeout(server: FakeLLMServer) -> None:
    server.faults = FaultPlan.first(1, Reply.slow(3.0))
    with pytest.raises(openai.APITimeoutError):
        _openai(server, timeout=0.3).chat.completions.create(model="m", messages=_messages())
    server.faults = FaultPlan.when(lambda req: True, Reply.slow(0.05, then=Reply.text("late but fine")))
    out = _openai(server, timeout=5).chat.completions.create(model="m", messages=_messages())
    assert out.choices[0].message.content == "late but fine"
    server.faults = FaultPlan.when(lambda req: True, Reply.slow(3.0))
    with pytest.raises(anthropic.APITimeoutError):
        _anthropic(server, timeout=0.3).messages.create(
            model="c", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert [r.faulted for r in server.requests] == [True, True, True]


# --- fault plans ---------------------------------------------------------------------------------


def test_fault_plan_ordinals_predicates_and_rate(server: FakeLLMServer) -> None:
    calls: list[int] = []

    def answerer(req: ParsedRequest) -> Reply:
        calls.append(req.ordinal)
        return Reply.text("ok")

    server.answerer = answerer
    server.faults = (
        FaultPlan.at([3, 7], Reply.error(500))
        + FaultPlan.when(lambda r: r.model == "flaky", Reply.error(400, message="flaky"), times=1)
        + FaultPlan.every(5, Reply.error(429, retry_after=0))
    )
    client = _openai(server)
    statuses = []
    for i in range(1, 11):
        try:
            client.chat.completions.create(model="flaky" if i in (1, 2) else "m", messages=_messages())
            statuses.append(200)
        except openai.APIStatusError as exc:
            statuses.append(exc.status_code)
    assert statuses == [400, 200, 500, 200, 429, 200, 500, 200, 200, 429]
    assert calls == [2, 4, 6, 8, 9]  # the answerer never sees a faulted request
    assert [r.faulted for r in server.requests] == [s != 200 for s in statuses]

    rate = FaultPlan.rate(0.5, Reply.error(500), seed=3)
    fake = [ParsedRequest("openai", "/", "m", "", (), "text", None, None, None, None, {}, {}, i) for i in range(200)]
    hits = [rate.pick(r) is not None for r in fake]
    assert hits == [FaultPlan.rate(0.5, Reply.error(500), seed=3).pick(r) is not None for r in fake]
    assert 60 < sum(hits) < 140

    server.reset()
    assert server.requests == []
    client.chat.completions.create(model="m", messages=_messages())
    assert server.requests[0].ordinal == 1


# --- concurrency and the standalone entry point --------------------------------------------------


def test_sixty_concurrent_requests_are_not_queued() -> None:
    async def run(srv: FakeLLMServer) -> None:
        oa = openai.AsyncOpenAI(base_url=srv.openai_base_url, api_key="k", max_retries=0)
        an = anthropic.AsyncAnthropic(base_url=srv.anthropic_base_url, api_key="k", max_retries=0)
        jobs = [oa.chat.completions.create(model="m", messages=_messages()) for _ in range(40)]
        jobs += [
            an.messages.create(model="c", max_tokens=5, messages=[{"role": "user", "content": f"x{i}"}])
            for i in range(24)
        ]
        await asyncio.gather(*jobs)

    with FakeLLMServer(latency_s=0.25) as srv:
        t0 = time.monotonic()
        asyncio.run(run(srv))
        elapsed = time.monotonic() - t0
        assert len(srv.requests) == 64 and all(r.status == 200 for r in srv.requests)
    assert elapsed < 5.0  # serial would be 64 * 0.25 = 16 s


def test_standalone_entry_point_prints_urls_and_serves() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakeapi.server", "--port", "0", "--no-auth"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        openai_url = proc.stdout.readline().strip().split("=", 1)[1]
        anthropic_url = proc.stdout.readline().strip().split("=", 1)[1]
        assert openai_url == anthropic_url + "/v1"
        out = openai.OpenAI(base_url=openai_url, api_key="k", max_retries=0).chat.completions.create(
            model="m", messages=_messages()
        )
        assert out.choices[0].message.content
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "RuntimeWarning" not in err


@pytest.mark.parametrize("mode", [instructor.Mode.JSON, instructor.Mode.MD_JSON])
def test_openai_prompt_embedded_schema_modes(server: FakeLLMServer, mode: instructor.Mode) -> None:
    client = instructor.from_openai(_openai(server), mode=mode)
    verdict = client.chat.completions.create(model="m", response_model=Verdict, messages=_messages())
    assert isinstance(verdict, Verdict)
    (rec,) = server.requests
    assert rec.parsed and rec.parsed.schema is None and rec.parsed.embedded_schema is not None


def test_anthropic_json_mode_uses_embedded_schema(server: FakeLLMServer) -> None:
    client = instructor.from_anthropic(_anthropic(server), mode=instructor.Mode.JSON)
    verdict = client.messages.create(
        model="c", max_tokens=100, response_model=Verdict, messages=[{"role": "user", "content": USER_PROMPT}]
    )
    assert isinstance(verdict, Verdict)
    (rec,) = server.requests
    assert rec.answer and rec.answer.json["content"][0]["type"] == "text"


def test_streaming_is_rejected_loudly(server: FakeLLMServer) -> None:
    with pytest.raises(openai.BadRequestError, match="stream=true is not implemented"):
        _openai(server).chat.completions.create(model="m", messages=_messages(), stream=True)
