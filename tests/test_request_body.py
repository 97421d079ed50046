"""Request bodies are the bytes the SDK's own encoder writes, for every provider and mode, with shared
parts encoded once and nothing stale reused."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest
from anthropic._utils._json import openapi_dumps as anthropic_dumps
from openai._utils._json import openapi_dumps as openai_dumps

from judge.calls.request_body import REMEMBERED_TEXTS, BodyEncoder
from judge.judge_worker import JudgeClient
from judge.judges import JudgeSpec
from tests.conftest import ANTHROPIC_KEY, OPENAI_KEY
from tests.test_client import MODES, planned_call

SDK_DUMPS = {"openai": openai_dumps, "anthropic": anthropic_dumps}


@pytest.mark.parametrize(("provider", "mode"), MODES)
def test_every_mode_s_bodies_are_the_sdk_s_own_bytes(monkeypatch: pytest.MonkeyPatch, provider: str, mode: str) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    model = "gpt-4.1-mini" if provider == "openai" else "claude-sonnet-4-5"
    spec = JudgeSpec(name=provider, provider=provider, model=model, base_url="http://127.0.0.1:9/v1", mode=mode)  # type: ignore[arg-type]
    client = JudgeClient(spec)
    try:
        bodies = []
        for n in range(3):  # later calls reuse the parts shared per verdict model
            call = planned_call(spec, n)
            bodies.append(client._request(call.context.model, [m.as_dict() for m in call.messages])[1])
        encoder = client.connection.bodies
        for body in bodies:
            assert encoder.encode(body) == SDK_DUMPS[provider](body)
    finally:
        asyncio.run(client.close())


def test_plain_values_are_written_as_json_dumps_writes_them() -> None:
    encoder = BodyEncoder()
    long_text = "Rubric — critère " * 200
    bodies: list[dict[str, Any]] = [
        {
            "model": "m",
            "messages": [{"role": "system", "content": long_text}, {"role": "user", "content": "ça va ? 🙂"}],
        },
        {"messages": [{"role": "user", "content": [{"type": "text", "text": long_text, "cache_control": {"t": 1}}]}]},
        {"messages": "not a list", "n": None, "flag": True, "ratio": 0.25},
        {"system": long_text, "messages": []},
        {"system": [{"type": "text", "text": long_text, "cache_control": {"type": "ephemeral"}}, "odd"]},
        {"messages": [["odd"], {1: "numeric key"}], "extra": {2: "x", "y": [1, 2.5, None]}},
        {1: "a numeric key at the top"},
        {},
    ]
    for body in bodies:
        assert encoder.encode(body) == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def test_what_json_cannot_hold_is_refused_as_json_dumps_refuses_it() -> None:
    encoder = BodyEncoder()
    with pytest.raises(ValueError):
        encoder.encode({"temperature": math.nan})
    with pytest.raises(TypeError):
        encoder.encode({"seed": object()})


def test_a_shared_part_is_recognised_by_identity_and_an_equal_copy_is_encoded_afresh() -> None:
    encoder = BodyEncoder()
    tools = [{"name": "Verdict", "parameters": {"type": "object"}}]
    encoder.share({"tools": tools})
    assert encoder.encode({"tools": tools}) == b'{"tools":[{"name":"Verdict","parameters":{"type":"object"}}]}'
    other = [{"name": "Other"}]
    assert encoder.encode({"tools": other}) == b'{"tools":[{"name":"Other"}]}'


def test_remembered_texts_are_bounded() -> None:
    encoder = BodyEncoder()
    texts = [f"{n:04d}" + "x" * 2000 for n in range(REMEMBERED_TEXTS * 3)]
    for text in texts:
        body = {"messages": [{"role": "system", "content": text}]}
        assert encoder.encode(body) == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    assert len(encoder._texts) <= REMEMBERED_TEXTS


def test_an_answer_that_does_not_fit_the_sdk_type_exactly_is_built_as_the_sdk_builds_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from judge.calls.client import Connection

    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    spec = JudgeSpec(name="local", provider="openai", model="m", base_url="http://127.0.0.1:9/v1")
    connection = Connection(spec)
    message = {"role": "assistant", "content": "hello"}
    exact = {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
    }
    loose = {
        "id": "x",
        "object": "chat.completion",
        "model": "m",  # no `created`, an unknown finish reason
        "choices": [{"index": 0, "finish_reason": "eos", "message": message}],
    }
    for body in (exact, loose):
        for answer in (connection.typed(json.dumps(body).encode()), connection.typed(body)):  # live; batch or log
            assert type(answer).__name__ == "ChatCompletion"
            assert answer.choices[0].message.content == "hello"
            assert answer.choices[0].finish_reason == body["choices"][0]["finish_reason"]
    for broken in (b"<html>busy</html>", b"[1, 2]"):
        with pytest.raises((json.JSONDecodeError, ValueError)):
            connection.typed(broken)
    asyncio.run(connection.close())
