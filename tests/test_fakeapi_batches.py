"""The fake server's batch protocols, driven by the real SDKs and checked against their types: OpenAI
Files + Batch API (upload, create, status transitions, request counts, output and error files, failed
validation, cancel, expiry) and Anthropic Message Batches (create, processing status, request counts,
results stream of succeeded / errored / canceled / expired entries, cancel)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from anthropic.types.messages import MessageBatch, MessageBatchIndividualResponse
from openai.types import Batch, FileObject
from openai.types.chat import ChatCompletion

from tests.conftest import ANTHROPIC_KEY, OPENAI_KEY
from tests.fakeapi import FakeLLMServer, FaultPlan, Reply

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as fake:
        yield fake


def openai_client(server: FakeLLMServer) -> openai.OpenAI:
    return openai.OpenAI(api_key=OPENAI_KEY, base_url=server.openai_base_url, max_retries=0)


def anthropic_client(server: FakeLLMServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=ANTHROPIC_KEY, base_url=server.anthropic_base_url, max_retries=0)


def chat_line(custom_id: str, text: str, url: str = "/v1/chat/completions") -> dict[str, Any]:
    body = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": text}], "max_tokens": 50}
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def upload(client: openai.OpenAI, lines: list[dict[str, Any]]) -> FileObject:
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    return client.files.create(file=("input.jsonl", io.BytesIO(data)), purpose="batch")


def poll_openai(client: openai.OpenAI, batch_id: str, limit: int = 20) -> list[Batch]:
    seen = []
    for _ in range(limit):
        batch = client.batches.retrieve(batch_id)
        seen.append(batch)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return seen
    raise AssertionError(f"batch {batch_id} never ended: {[b.status for b in seen]}")


def file_lines(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


def test_openai_batch_runs_through_its_statuses_to_output_and_error_files(server: FakeLLMServer) -> None:
    server.faults = FaultPlan.when(lambda r: "fail me" in r.last_user_text, Reply.error(400, message="bad one"))
    client = openai_client(server)
    uploaded = upload(client, [chat_line("a", "hello"), chat_line("b", "fail me"), chat_line("c", "bye")])
    assert uploaded.purpose == "batch" and uploaded.bytes > 0 and uploaded.status == "processed"
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert batch.status == "validating" and batch.request_counts.total == 3
    history = poll_openai(client, batch.id)
    assert [b.status for b in history] == ["in_progress", "in_progress", "finalizing", "completed"]
    assert [b.request_counts.completed + b.request_counts.failed for b in history] == [0, 2, 3, 3]
    done = history[-1]
    assert done.request_counts.model_dump() == {"total": 3, "completed": 2, "failed": 1}
    assert done.completed_at and done.in_progress_at and done.finalizing_at
    output = file_lines(client, done.output_file_id)
    errors = file_lines(client, done.error_file_id)
    assert sorted(line["custom_id"] for line in output) == ["a", "c"]
    for line in output:
        assert line["response"]["status_code"] == 200 and line["error"] is None and line["id"].startswith("batch_req_")
        ChatCompletion.model_validate(line["response"]["body"])
    (error,) = errors
    assert error["custom_id"] == "b" and error["response"]["status_code"] == 400
    assert error["response"]["body"]["error"]["message"] == "bad one"
    assert len(server.batch_entries) == 3 and not [r for r in server.requests if r.path == "/v1/chat/completions"]


def test_openai_batch_with_an_invalid_input_file_fails_with_its_errors(server: FakeLLMServer) -> None:
    client = openai_client(server)
    uploaded = upload(client, [chat_line("a", "x"), chat_line("a", "y"), chat_line("b", "z", url="/v1/embeddings")])
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    (failed,) = poll_openai(client, batch.id)
    assert failed.status == "failed" and failed.failed_at and failed.errors is not None
    assert [e.line for e in failed.errors.data or []] == [2, 3]
    with pytest.raises(openai.BadRequestError):
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="1h")
    with pytest.raises(openai.BadRequestError):
        client.batches.create(input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h")
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_nope")


def test_openai_batch_cancel_and_expiry(server: FakeLLMServer) -> None:
    client = openai_client(server)
    lines = [chat_line(f"r{i}", f"text {i}") for i in range(4)]
    batch = client.batches.create(
        input_file_id=upload(client, lines).id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert client.batches.cancel(batch.id).status == "cancelling"
    assert poll_openai(client, batch.id)[-1].status == "cancelled"

    server.batches.expire_after = 1
    batch = client.batches.create(
        input_file_id=upload(client, lines).id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    ended = poll_openai(client, batch.id)[-1]
    assert ended.status == "expired" and ended.expired_at
    assert ended.request_counts.model_dump() == {"total": 4, "completed": 1, "failed": 3}
    errors = file_lines(client, ended.error_file_id)
    assert [e["error"]["code"] for e in errors] == ["batch_expired"] * 3 and all(e["response"] is None for e in errors)
    assert len(file_lines(client, ended.output_file_id)) == 1


def anthropic_request(custom_id: str, text: str) -> dict[str, Any]:
    params = {"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": text}]}
    return {"custom_id": custom_id, "params": params}


def test_anthropic_batch_processes_to_a_results_stream(server: FakeLLMServer) -> None:
    server.faults = FaultPlan.when(lambda r: "busy" in r.last_user_text, Reply.overloaded())
    client = anthropic_client(server)
    requests = [anthropic_request("a", "hello"), anthropic_request("b", "busy"), anthropic_request("c", "bye")]
    requests.append({"custom_id": "d", "params": {"model": "claude-sonnet-4-5", "messages": []}})  # no max_tokens
    batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    assert batch.processing_status == "in_progress" and batch.request_counts.processing == 4
    assert batch.results_url is None and batch.ended_at is None
    states = [client.messages.batches.retrieve(batch.id) for _ in range(2)]
    assert [s.processing_status for s in states] == ["in_progress", "ended"]
    assert states[0].request_counts.processing == 2
    ended = states[-1]
    assert ended.request_counts.model_dump() == {
        "processing": 0,
        "succeeded": 2,
        "errored": 2,
        "canceled": 0,
        "expired": 0,
    }
    assert ended.results_url and ended.ended_at
    results = {r.custom_id: r for r in client.messages.batches.results(batch.id)}
    assert results["a"].result.type == "succeeded" and results["a"].result.message.content
    assert results["b"].result.type == "errored" and results["b"].result.error.error.type == "overloaded_error"
    assert results["d"].result.type == "errored" and results["d"].result.error.error.type == "invalid_request_error"
    assert not [r for r in server.requests if r.path == "/v1/messages"]


def test_anthropic_batch_cancel_expiry_and_bad_requests(server: FakeLLMServer) -> None:
    client = anthropic_client(server)
    requests: Any = [anthropic_request(f"r{i}", f"text {i}") for i in range(3)]
    batch = client.messages.batches.create(requests=requests)
    with pytest.raises(anthropic.BadRequestError):  # not ended yet (the SDK itself checks results_url first)
        client.get(f"/v1/messages/batches/{batch.id}/results", cast_to=object)
    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.request_counts.canceled == 3
    assert {r.result.type for r in client.messages.batches.results(batch.id)} == {"canceled"}

    server.batches.expire_after = 2
    batch = client.messages.batches.create(requests=requests)
    server.batches.steps = 1
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.request_counts.succeeded == 2 and ended.request_counts.expired == 1
    assert sorted(r.result.type for r in client.messages.batches.results(batch.id)) == [
        "expired",
        "succeeded",
        "succeeded",
    ]

    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.create(requests=[anthropic_request("bad id!", "x")])  # type: ignore[list-item]
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.create(requests=[anthropic_request("a", "x"), anthropic_request("a", "y")])  # type: ignore[list-item]
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve("msgbatch_nope")


def test_batch_wire_objects_are_what_the_sdk_types_require(server: FakeLLMServer) -> None:
    """Strict validation: every field the SDK types require is present with the right type."""
    client = openai_client(server)
    batch = client.batches.create(
        input_file_id=upload(client, [chat_line("a", "x")]).id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    raw = client.batches.with_raw_response.retrieve(batch.id).http_response.json()
    Batch.model_validate(raw, strict=False)
    assert set(Batch.model_fields) >= set(raw)
    abatch = anthropic_client(server).messages.batches.create(requests=[anthropic_request("a", "x")])  # type: ignore[list-item]
    araw = anthropic_client(server).messages.batches.with_raw_response.retrieve(abatch.id).http_response.json()
    MessageBatch.model_validate(araw)
    assert set(MessageBatch.model_fields) == set(araw)
    anthropic_client(server).messages.batches.retrieve(abatch.id)
    lines = httpx.get(
        f"{server.base_url}/v1/messages/batches/{abatch.id}/results",
        headers={"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"},
    ).text
    assert lines
    for line in lines.splitlines():
        MessageBatchIndividualResponse.model_validate_json(line)
