"""The fake server's batch endpoints: OpenAI's Files + Batch API and Anthropic's Message Batches API.

OpenAI: `POST /v1/files` (multipart, purpose "batch") stores a JSONL input file; `POST /v1/batches`
creates a batch over it (`endpoint`, `completion_window` "24h"); `GET /v1/batches/{id}` reports it
(`validating` → `in_progress` → `finalizing` → `completed`, or `failed` when the input file is invalid,
`expired`, `cancelling` → `cancelled`) with `request_counts` {total, completed, failed}; a finished batch
names an `output_file_id` (answers with status 200) and an `error_file_id` (other statuses, and requests
that expired), read with `GET /v1/files/{id}/content`. Each line is {id, custom_id, response:
{status_code, request_id, body}, error}.

Anthropic: `POST /v1/messages/batches` with `requests: [{custom_id, params}]`; `GET
/v1/messages/batches/{id}` reports `processing_status` (`in_progress` → `ended`, `canceling` after a
cancel) and `request_counts` {processing, succeeded, errored, canceled, expired}; once ended,
`results_url` streams JSONL lines {custom_id, result: {type: succeeded|errored|canceled|expired, …}}
in no particular order (here: reversed, so a client cannot rely on order).

Progress is driven by polling, not by the clock, so tests are deterministic: each retrieve of a batch in
progress answers a share of its requests (all of them after `steps` polls), through the server's own
fault plan, answerer and prompt-cache ledger, exactly as live requests are answered. `hold` keeps
batches in progress (a run can be killed while it polls); `expire_after` answers only that many
requests of a batch and lets the rest expire.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .protocol import Answer, Provider, error_answer, request_id

_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_OPENAI_ENDPOINTS = ("/v1/chat/completions",)
_EXPIRED = {
    "code": "batch_expired",
    "message": "This request could not be executed before the completion window expired.",
}

EntryAnswerer = Callable[[Provider, str, dict[str, Any], Mapping[str, str]], Answer]


def _hex_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
            "expires_at": None,
        }


@dataclass
class Entry:
    custom_id: str
    body: Any
    answer: Answer | None = None
    outcome: str = "pending"  # pending | succeeded | errored | expired | canceled


@dataclass
class FakeBatch:
    id: str
    provider: Provider
    entries: list[Entry]
    headers: dict[str, str]
    created_at: float
    status: str
    input_file_id: str | None = None
    endpoint: str | None = None
    metadata: dict[str, Any] | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    polls: int = 0
    cancel_requested: bool = False
    times: dict[str, float] = field(default_factory=dict)
    output_file_id: str | None = None
    error_file_id: str | None = None

    def count(self, *outcomes: str) -> int:
        return sum(e.outcome in outcomes for e in self.entries)


class BatchStore:
    """Files and batches of one fake server; `answer_entry` answers one request inside a batch."""

    def __init__(self, answer_entry: EntryAnswerer, base_url: Callable[[], str]) -> None:
        self.answer_entry = answer_entry
        self.base_url = base_url
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, FakeBatch] = {}
        self.created: list[FakeBatch] = []  # in creation order
        self.steps = 2
        self.hold = False
        self.expire_after: int | None = None
        self.enabled = True  # False: a server without batch endpoints (most OpenAI-compatible servers)
        self._lock = threading.RLock()

    # -- routing ---------------------------------------------------------------------------------
    def handles(self, path: str) -> bool:
        return self.enabled and path.startswith(("/v1/files", "/v1/batches", "/v1/messages/batches"))

    def handle(self, provider: Provider, method: str, path: str, headers: Mapping[str, str], raw: bytes) -> Answer:
        parts = path.strip("/").split("/")
        with self._lock:
            if provider == "openai":
                return self._openai(method, parts, headers, raw)
            return self._anthropic(method, parts, headers, raw)

    # -- OpenAI ----------------------------------------------------------------------------------
    def _openai(self, method: str, parts: list[str], headers: Mapping[str, str], raw: bytes) -> Answer:
        if parts == ["v1", "files"] and method == "POST":
            return self._upload(headers, raw)
        if len(parts) >= 3 and parts[:2] == ["v1", "files"] and method == "GET":
            stored = self.files.get(parts[2])
            if stored is None:
                return _openai_missing(f"No such File object: {parts[2]}")
            if parts[3:] == ["content"]:
                return Answer(200, None, {}, raw=stored.content, content_type="application/octet-stream")
            return Answer(200, stored.as_json(), {})
        if parts == ["v1", "batches"] and method == "POST":
            return self._create_openai(_json(raw), headers)
        if len(parts) >= 3 and parts[:2] == ["v1", "batches"]:
            batch = self.batches.get(parts[2])
            if batch is None or batch.provider != "openai":
                return _openai_missing(f"No batch found with id '{parts[2]}'.")
            if parts[3:] == ["cancel"] and method == "POST":
                if batch.status in ("validating", "in_progress", "finalizing"):
                    batch.cancel_requested = True
                    batch.status = "cancelling"
                    batch.times["cancelling_at"] = time.time()
                return Answer(200, self._openai_json(batch), {})
            if not parts[3:] and method == "GET":
                self._advance_openai(batch)
                return Answer(200, self._openai_json(batch), {})
        return error_answer("openai", 404, "invalid_request_error", f"Invalid URL ({method} /{'/'.join(parts)})")

    def _upload(self, headers: Mapping[str, str], raw: bytes) -> Answer:
        content_type = headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return error_answer("openai", 400, "invalid_request_error", "Expected multipart/form-data", param="file")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw
        )
        fields: dict[str, tuple[str | None, bytes]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[str(name)] = (part.get_filename(), part.get_payload(decode=True) or b"")
        if "file" not in fields:
            return error_answer(
                "openai", 400, "invalid_request_error", "Missing required parameter: 'file'.", param="file"
            )
        purpose = fields.get("purpose", (None, b""))[1].decode()
        if purpose not in ("batch", "assistants", "fine-tune", "vision", "user_data", "evals"):
            return error_answer(
                "openai", 400, "invalid_request_error", f"Invalid purpose: {purpose!r}", param="purpose"
            )
        stored = StoredFile(
            _hex_id("file-"), fields["file"][0] or "upload", purpose, fields["file"][1], int(time.time())
        )
        self.files[stored.id] = stored
        return Answer(200, stored.as_json(), {})

    def _create_openai(self, body: Any, headers: Mapping[str, str]) -> Answer:
        if not isinstance(body, dict):
            return error_answer("openai", 400, "invalid_request_error", "The request body must be a JSON object.")
        for key in ("input_file_id", "endpoint", "completion_window"):
            if key not in body:
                return error_answer(
                    "openai", 400, "invalid_request_error", f"Missing required parameter: '{key}'.", param=key
                )
        if body["endpoint"] not in _OPENAI_ENDPOINTS:
            message = f"Invalid value for 'endpoint': {body['endpoint']!r}."
            return error_answer("openai", 400, "invalid_request_error", message, param="endpoint")
        if body["completion_window"] != "24h":
            message = "Invalid value for 'completion_window': only '24h' is supported."
            return error_answer("openai", 400, "invalid_request_error", message, param="completion_window")
        stored = self.files.get(body["input_file_id"])
        if stored is None or stored.purpose != "batch":
            message = f"Invalid 'input_file_id': {body['input_file_id']!r}: no file with purpose 'batch'."
            return error_answer("openai", 400, "invalid_request_error", message, param="input_file_id")
        batch = FakeBatch(
            _hex_id("batch_"),
            "openai",
            [],
            dict(headers),
            time.time(),
            "validating",
            input_file_id=stored.id,
            endpoint=body["endpoint"],
            metadata=body.get("metadata"),
        )
        self._read_input(batch, stored.content)
        self._register(batch)
        return Answer(200, self._openai_json(batch), {})

    def _read_input(self, batch: FakeBatch, content: bytes) -> None:
        """Validate an input file as OpenAI does while `validating`; problems fail the whole batch."""
        seen: set[str] = set()
        for number, line in enumerate(content.decode("utf-8", "replace").splitlines(), start=1):
            problem = None
            try:
                row = json.loads(line)
            except ValueError:
                row, problem = None, "This line is not parseable as valid JSON."
            if problem is None and not isinstance(row, dict):
                problem = "Each line must be a JSON object."
            elif problem is None:
                assert isinstance(row, dict)
                if not isinstance(row.get("custom_id"), str):
                    problem = "Missing required parameter: 'custom_id'."
                elif row["custom_id"] in seen:
                    problem = f"The custom_id {row['custom_id']!r} is not unique within the batch."
                elif row.get("method") != "POST":
                    problem = "Invalid value for 'method': only POST is supported."
                elif row.get("url") != batch.endpoint:
                    problem = f"The url {row.get('url')!r} does not match the batch endpoint {batch.endpoint!r}."
                elif not isinstance(row.get("body"), dict):
                    problem = "Missing required parameter: 'body'."
            if problem is not None:
                batch.errors.append({"code": "invalid_request", "message": problem, "param": None, "line": number})
                continue
            assert isinstance(row, dict)
            seen.add(row["custom_id"])
            batch.entries.append(Entry(row["custom_id"], row["body"]))
        if not batch.entries and not batch.errors:
            batch.errors.append(
                {"code": "empty_file", "message": "The input file is empty.", "param": None, "line": None}
            )

    def _advance_openai(self, batch: FakeBatch) -> None:
        if batch.status == "validating":
            if batch.errors:
                batch.status = "failed"
                batch.times["failed_at"] = time.time()
                return
            batch.status = "in_progress"
            batch.times["in_progress_at"] = time.time()
            return
        if batch.status == "cancelling":
            self._finish_openai(batch, "cancelled")
            return
        if batch.status == "in_progress":
            if self._process(batch):
                if batch.count("expired"):
                    self._finish_openai(batch, "expired")
                else:
                    batch.status = "finalizing"
                    batch.times["finalizing_at"] = time.time()
            return
        if batch.status == "finalizing":
            self._finish_openai(batch, "completed")

    def _finish_openai(self, batch: FakeBatch, status: str) -> None:
        batch.status = status
        batch.times[f"{status}_at"] = time.time()
        output, errors = [], []
        for entry in batch.entries:
            line: dict[str, Any] = {
                "id": _hex_id("batch_req_"),
                "custom_id": entry.custom_id,
                "response": None,
                "error": None,
            }
            if entry.outcome == "expired":
                line["error"] = dict(_EXPIRED)
                errors.append(line)
            elif entry.answer is not None:
                line["response"] = {
                    "status_code": entry.answer.status,
                    "request_id": entry.answer.headers.get("x-request-id") or request_id("openai"),
                    "body": entry.answer.json,
                }
                (output if entry.answer.status == 200 else errors).append(line)
        batch.output_file_id = self._result_file(batch, "output", output)
        batch.error_file_id = self._result_file(batch, "error", errors)

    def _result_file(self, batch: FakeBatch, kind: str, lines: list[dict[str, Any]]) -> str | None:
        if not lines:
            return None
        content = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode("utf-8")
        stored = StoredFile(_hex_id("file-"), f"{batch.id}_{kind}.jsonl", f"batch_{kind}", content, int(time.time()))
        self.files[stored.id] = stored
        return stored.id

    def _openai_json(self, batch: FakeBatch) -> dict[str, Any]:
        stamps = {
            f"{name}_at": (int(batch.times[f"{name}_at"]) if f"{name}_at" in batch.times else None)
            for name in ("in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled")
        }
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "errors": {"object": "list", "data": batch.errors} if batch.errors else None,
            "input_file_id": batch.input_file_id,
            "completion_window": "24h",
            "status": batch.status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": int(batch.created_at),
            "expires_at": int(batch.created_at + 86400),
            **stamps,
            "request_counts": {
                "total": len(batch.entries),
                "completed": sum(e.outcome == "succeeded" for e in batch.entries),
                "failed": batch.count("errored", "expired"),
            },
            "metadata": batch.metadata,
        }

    # -- Anthropic -------------------------------------------------------------------------------
    def _anthropic(self, method: str, parts: list[str], headers: Mapping[str, str], raw: bytes) -> Answer:
        if parts == ["v1", "messages", "batches"] and method == "POST":
            return self._create_anthropic(_json(raw), headers)
        if len(parts) >= 4 and parts[:3] == ["v1", "messages", "batches"]:
            batch = self.batches.get(parts[3])
            if batch is None or batch.provider != "anthropic":
                return error_answer("anthropic", 404, "not_found_error", f"No batch with id {parts[3]!r}.")
            rest = parts[4:]
            if rest == ["cancel"] and method == "POST":
                if batch.status == "in_progress":
                    batch.status = "canceling"
                    batch.times["cancel_initiated_at"] = time.time()
                return Answer(200, self._anthropic_json(batch), {})
            if rest == ["results"] and method == "GET":
                if batch.status != "ended":
                    message = f"Message Batch {batch.id} has not ended; its results are not available yet."
                    return error_answer("anthropic", 400, "invalid_request_error", message)
                lines = [self._anthropic_result(e) for e in reversed(batch.entries)]
                content = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode("utf-8")
                return Answer(200, None, {}, raw=content, content_type="application/binary")
            if not rest and method == "GET":
                self._advance_anthropic(batch)
                return Answer(200, self._anthropic_json(batch), {})
        return error_answer("anthropic", 404, "not_found_error", "Not Found")

    def _create_anthropic(self, body: Any, headers: Mapping[str, str]) -> Answer:
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return error_answer("anthropic", 400, "invalid_request_error", "requests: Field required")
        seen: set[str] = set()
        entries = []
        for index, request in enumerate(requests):
            custom_id = request.get("custom_id") if isinstance(request, dict) else None
            if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
                message = f"requests.{index}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
                return error_answer("anthropic", 400, "invalid_request_error", message)
            if custom_id in seen:
                message = f"requests.{index}: duplicate custom_id {custom_id!r}; custom_id values must be unique"
                return error_answer("anthropic", 400, "invalid_request_error", message)
            if not isinstance(request.get("params"), dict):
                return error_answer(
                    "anthropic", 400, "invalid_request_error", f"requests.{index}.params: Field required"
                )
            seen.add(custom_id)
            entries.append(Entry(custom_id, request["params"]))  # params are validated while processing
        batch = FakeBatch(_hex_id("msgbatch_01"), "anthropic", entries, dict(headers), time.time(), "in_progress")
        self._register(batch)
        return Answer(200, self._anthropic_json(batch), {})

    def _advance_anthropic(self, batch: FakeBatch) -> None:
        if batch.status == "canceling":
            for entry in batch.entries:
                if entry.outcome == "pending":
                    entry.outcome = "canceled"
            self._end(batch)
        elif batch.status == "in_progress" and self._process(batch):
            self._end(batch)

    def _end(self, batch: FakeBatch) -> None:
        batch.status = "ended"
        batch.times["ended_at"] = time.time()

    @staticmethod
    def _anthropic_result(entry: Entry) -> dict[str, Any]:
        if entry.outcome in ("canceled", "expired"):
            return {"custom_id": entry.custom_id, "result": {"type": entry.outcome}}
        assert entry.answer is not None
        if entry.outcome == "succeeded":
            return {"custom_id": entry.custom_id, "result": {"type": "succeeded", "message": entry.answer.json}}
        return {"custom_id": entry.custom_id, "result": {"type": "errored", "error": entry.answer.json}}

    def _anthropic_json(self, batch: FakeBatch) -> dict[str, Any]:
        ended = "ended_at" in batch.times
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": batch.status,
            "request_counts": {
                "processing": batch.count("pending"),
                "succeeded": batch.count("succeeded"),
                "errored": batch.count("errored"),
                "canceled": batch.count("canceled"),
                "expired": batch.count("expired"),
            },
            "ended_at": _iso(batch.times["ended_at"]) if ended else None,
            "created_at": _iso(batch.created_at),
            "expires_at": _iso(batch.created_at + timedelta(hours=24).total_seconds()),
            "archived_at": None,
            "cancel_initiated_at": _iso(batch.times["cancel_initiated_at"])
            if "cancel_initiated_at" in batch.times
            else None,
            "results_url": f"{self.base_url()}/v1/messages/batches/{batch.id}/results" if ended else None,
        }

    # -- shared ----------------------------------------------------------------------------------
    def _register(self, batch: FakeBatch) -> None:
        self.batches[batch.id] = batch
        self.created.append(batch)

    def _process(self, batch: FakeBatch) -> bool:
        """Answer the next share of a batch's requests; True once none is left."""
        if self.hold:
            return False
        batch.polls += 1
        pending = [e for e in batch.entries if e.outcome == "pending"]
        share = math.ceil(len(batch.entries) / max(1, self.steps))
        path = "/v1/chat/completions" if batch.provider == "openai" else "/v1/messages"
        for entry in pending[:share]:
            answered = sum(e.outcome in ("succeeded", "errored") for e in batch.entries)
            if self.expire_after is not None and answered >= self.expire_after:
                entry.outcome = "expired"
                continue
            entry.answer = self.answer_entry(batch.provider, path, entry.body, batch.headers)
            entry.outcome = "succeeded" if entry.answer.status == 200 else "errored"
        return all(e.outcome != "pending" for e in batch.entries)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def _openai_missing(message: str) -> Answer:
    return error_answer("openai", 404, "invalid_request_error", message)
