"""Wire formats of the fake OpenAI / Anthropic APIs: request parsing, replies, envelopes, fault plans.

Everything here is pure (no sockets) so the HTTP layer in ``server.py`` stays thin and the formats can be
unit-checked against the SDKs' own pydantic types.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .schema import count_tokens, schema_answer

__all__ = [
    "Answer",
    "FaultPlan",
    "Message",
    "ParsedRequest",
    "Reply",
    "default_answerer",
    "error_answer",
    "parse_request",
    "render_reply",
]

Provider = Literal["openai", "anthropic"]
OutputMode = Literal["tools", "json_schema", "json_object", "text"]
# instructor's corrections: "Validation Error(s) found" (tools fallback, Anthropic JSON), "Correct your JSON".
_REASK_HINT = re.compile(r"validation errors? found|correct your json|fix the errors", re.IGNORECASE)
_RESPONSE_TAG = re.compile(
    r"<(response|judged_response|candidate_response|assistant_response)>(.*?)</\1>", re.IGNORECASE | re.DOTALL
)


def _compact(obj: Any) -> str:
    """JSON the way the real APIs emit tool arguments: compact, non-ASCII kept."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Message:
    """One conversation turn with its content flattened to text (tool calls/results included as text)."""

    role: str
    text: str
    tool_call: bool = False  # an assistant turn that called a tool (OpenAI tool_calls / Anthropic tool_use)
    tool_result: bool = False  # a tool turn (OpenAI role=tool / Anthropic tool_result block)
    is_error: bool = False  # Anthropic tool_result with is_error=true


@dataclass(frozen=True)
class ParsedRequest:
    """What an answerer needs to know about a request, provider differences smoothed over."""

    provider: Provider
    path: str
    model: str
    system: str
    messages: tuple[Message, ...]
    mode: OutputMode  # how a structured answer must be returned
    schema: dict[str, Any] | None  # tool parameters / input_schema / json_schema.schema
    tool_name: str | None  # tool (OpenAI function) name the answer must call; json_schema name otherwise
    tool_choice: Any
    strict: bool | None
    body: dict[str, Any]
    headers: Mapping[str, str]
    ordinal: int  # 1-based arrival number since the last reset()
    cache_prefix: str | None = None  # the prompt prefix the provider may cache (see PromptCacheLedger)

    @property
    def prompt_text(self) -> str:
        """All request text that counts as input tokens: system + every message, newline-joined."""
        return "\n".join(p for p in (self.system, *(m.text for m in self.messages)) if p)

    @property
    def input_tokens(self) -> int:
        return count_tokens(self.prompt_text)

    @property
    def seed(self) -> str:
        """Same model + conversation -> same answer; another model -> another answer."""
        payload = _compact([self.model, self.system, [[m.role, m.text] for m in self.messages]])
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    @property
    def is_reask(self) -> bool:
        """True when the conversation holds a previous answer plus error feedback (instructor retry)."""
        if any(m.tool_result for m in self.messages):
            return True
        # A correction follows an earlier turn: the previous answer (OpenAI JSON) or, in Anthropic's JSON
        # mode, directly the first question (instructor appends only the correction there).
        return any(m.role == "user" and _REASK_HINT.search(m.text) for m in self.messages[1:])

    @property
    def reask_feedback(self) -> str | None:
        """Text of the last error feedback message (tool result or user correction), if this is a re-ask."""
        if not self.is_reask:
            return None
        for m in reversed(self.messages):
            if m.tool_result or (m.role == "user" and _REASK_HINT.search(m.text)):
                return m.text
        return None

    @property
    def embedded_schema(self) -> dict[str, Any] | None:
        """A JSON schema pasted into the prompt text (instructor's JSON / MD_JSON modes do this)."""
        decoder = json.JSONDecoder()
        text = self.prompt_text
        for match in re.finditer(r"\{", text):
            try:
                obj, _ = decoder.raw_decode(text, match.start())
            except ValueError:
                continue
            if isinstance(obj, dict) and isinstance(obj.get("properties"), dict):
                return obj
        return None

    @property
    def last_user_text(self) -> str:
        return next((m.text for m in reversed(self.messages) if m.role == "user" and not m.tool_result), "")

    @property
    def response_text(self) -> str:
        """The judged response, for verbatim evidence quotes: last ``<response>…</response>`` block in
        the user turns (also judged_response/candidate_response/assistant_response), else the first user turn.
        """
        for m in reversed(self.messages):
            if m.role != "user":
                continue
            found = _RESPONSE_TAG.findall(m.text)
            if found:
                return str(found[-1][1]).strip()
        return next((m.text for m in self.messages if m.role == "user" and not m.tool_result), "")


def _openai_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") in ("text", None)
        )
    return str(content)


def _anthropic_text(content: Any) -> tuple[str, bool, bool, bool]:
    """Flatten Anthropic content -> (text, has_tool_use, has_tool_result, is_error)."""
    if isinstance(content, str):
        return content, False, False, False
    parts: list[str] = []
    tool_use = tool_result = is_error = False
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            parts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            tool_use = True
            parts.append(_compact(block.get("input", {})))
        elif kind == "tool_result":
            tool_result = True
            is_error = is_error or bool(block.get("is_error"))
            inner, *_ = _anthropic_text(block.get("content", ""))
            parts.append(inner)
    return "\n".join(parts), tool_use, tool_result, is_error


class RequestError(Exception):
    """A request the real API would reject with 400 (missing field, bad type)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def parse_request(provider: Provider, path: str, body: Any, headers: Mapping[str, str], ordinal: int) -> ParsedRequest:
    """Turn a decoded JSON body into a ParsedRequest; raises RequestError for what the API would 400."""
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.")
    if provider == "openai":
        return _parse_openai(path, body, headers, ordinal)
    return _parse_anthropic(path, body, headers, ordinal)


def _parse_openai(path: str, body: dict[str, Any], headers: Mapping[str, str], ordinal: int) -> ParsedRequest:
    if body.get("stream"):
        raise RequestError("fakeapi: stream=true is not implemented by the fake server.", "stream")
    for key in ("model", "messages"):
        if key not in body:
            raise RequestError(f"Missing required parameter: '{key}'.", key)
    if not isinstance(body["messages"], list) or not body["messages"]:
        raise RequestError("Invalid 'messages': empty array. Expected an array with minimum length 1.", "messages")
    system_parts: list[str] = []
    messages: list[Message] = []
    for raw in body["messages"]:
        if not isinstance(raw, dict) or "role" not in raw:
            raise RequestError("Missing required parameter: 'messages[].role'.", "messages")
        role = str(raw["role"])
        text = _openai_text(raw.get("content"))
        if role in ("system", "developer"):
            system_parts.append(text)
            continue
        calls = raw.get("tool_calls") or []
        if calls:
            args = [str(c.get("function", {}).get("arguments", "")) for c in calls if isinstance(c, dict)]
            text = "\n".join(p for p in (text, *args) if p)
        messages.append(Message(role=role, text=text, tool_call=bool(calls), tool_result=role == "tool"))

    mode: OutputMode = "text"
    schema: dict[str, Any] | None = None
    tool_name: str | None = None
    strict: bool | None = None
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type", "function") == "function"]
    tool_choice = body.get("tool_choice")
    fmt = body.get("response_format")
    if tools and tool_choice != "none":
        chosen = None
        if isinstance(tool_choice, dict):
            wanted = (tool_choice.get("function") or {}).get("name")
            chosen = next((t for t in tools if t.get("function", {}).get("name") == wanted), None)
        fn = (chosen or tools[0]).get("function", {})
        mode, schema, tool_name, strict = (
            "tools",
            fn.get("parameters") or {},
            fn.get("name"),
            fn.get("strict"),
        )
    elif isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        mode, schema, tool_name, strict = (
            "json_schema",
            spec.get("schema") or {},
            spec.get("name"),
            spec.get("strict"),
        )
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        mode = "json_object"
    return ParsedRequest(
        provider="openai",
        path=path,
        model=str(body["model"]),
        cache_prefix="\n".join(system_parts) or None,
        system="\n".join(system_parts),
        messages=tuple(messages),
        mode=mode,
        schema=schema,
        tool_name=tool_name,
        tool_choice=tool_choice,
        strict=strict,
        body=body,
        headers=headers,
        ordinal=ordinal,
    )


def _anthropic_cache_prefix(system_raw: Any) -> str | None:
    """The system text up to and including the last block marked with `cache_control`: Anthropic caches
    the prompt prefix up to a marker, and only when there is one (a plain-string system has none)."""
    if not isinstance(system_raw, list):
        return None
    marked = [i for i, block in enumerate(system_raw) if isinstance(block, dict) and block.get("cache_control")]
    if not marked:
        return None
    return _anthropic_text(system_raw[: marked[-1] + 1])[0]


def _parse_anthropic(path: str, body: dict[str, Any], headers: Mapping[str, str], ordinal: int) -> ParsedRequest:
    if body.get("stream"):
        raise RequestError("fakeapi: stream=true is not implemented by the fake server.", "stream")
    for key in ("model", "messages", "max_tokens"):
        if key not in body:
            raise RequestError(f"{key}: Field required", key)
    if not isinstance(body["messages"], list):
        raise RequestError("messages: Input should be a valid list", "messages")
    system_raw = body.get("system", "")
    system = system_raw if isinstance(system_raw, str) else _anthropic_text(system_raw)[0]
    cache_prefix = _anthropic_cache_prefix(system_raw)
    messages: list[Message] = []
    for raw in body["messages"]:
        if not isinstance(raw, dict) or raw.get("role") not in ("user", "assistant"):
            raise RequestError("messages: roles must be 'user' or 'assistant'", "messages")
        text, tool_use, tool_result, is_error = _anthropic_text(raw.get("content", ""))
        messages.append(
            Message(role=raw["role"], text=text, tool_call=tool_use, tool_result=tool_result, is_error=is_error)
        )

    mode: OutputMode = "text"
    schema: dict[str, Any] | None = None
    tool_name: str | None = None
    strict: bool | None = None
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and "input_schema" in t]
    tool_choice = body.get("tool_choice")
    fmt = body.get("output_format") or (body.get("output_config") or {}).get("format")
    none_choice = isinstance(tool_choice, dict) and tool_choice.get("type") == "none"
    if tools and not none_choice:
        chosen = None
        if isinstance(tool_choice, dict) and tool_choice.get("type") == "tool":
            chosen = next((t for t in tools if t.get("name") == tool_choice.get("name")), None)
        tool = chosen or tools[0]
        mode, schema, tool_name, strict = (
            "tools",
            tool.get("input_schema") or {},
            tool.get("name"),
            tool.get("strict"),
        )
    elif isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        mode, schema = "json_schema", fmt.get("schema") or {}
    return ParsedRequest(
        provider="anthropic",
        path=path,
        model=str(body["model"]),
        cache_prefix=cache_prefix,
        system=system,
        messages=tuple(messages),
        mode=mode,
        schema=schema,
        tool_name=tool_name,
        tool_choice=tool_choice,
        strict=strict,
        body=body,
        headers=headers,
        ordinal=ordinal,
    )


# ---------------------------------------------------------------------------------------------------
# Replies
# ---------------------------------------------------------------------------------------------------
ReplyKind = Literal["structured", "raw_arguments", "error", "slow", "disconnect", "text"]


@dataclass(frozen=True)
class Reply:
    """What the server should do for one request; rendered per provider by ``render_reply``."""

    kind: ReplyKind
    obj: Any = None
    content: str | None = None  # raw arguments / plain text
    status: int = 200
    error_kind: str | None = None
    message: str | None = None
    code: str | None = None
    retry_after: float | None = None
    seconds: float = 0.0
    then: Reply | None = None
    partial: bool = False
    input_tokens: int | None = None
    output_tokens: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    truncated: bool = False  # output stopped by max_tokens: finish_reason "length" / stop_reason "max_tokens"

    @classmethod
    def structured(cls, obj: Any, input_tokens: int | None = None, output_tokens: int | None = None) -> Reply:
        """Answer with ``obj`` in the success envelope of the request's mode (tool call / JSON content)."""
        return cls("structured", obj=obj, input_tokens=input_tokens, output_tokens=output_tokens)

    @classmethod
    def raw_arguments(cls, text: str, input_tokens: int | None = None, output_tokens: int | None = None) -> Reply:
        """Tool arguments / JSON content that is sent verbatim (may be broken JSON). Anthropic's ``input``
        must be an object: there a text that is not a JSON object becomes ``{}`` (schema-violating)."""
        return cls("raw_arguments", content=text, input_tokens=input_tokens, output_tokens=output_tokens)

    @classmethod
    def cut_off(cls, obj: Any) -> Reply:
        """``obj`` cut off by max_tokens, as the APIs send it: OpenAI stops mid-arguments with finish_reason
        "length"; Anthropic ends with stop_reason "max_tokens", a tool_use block with an unfinished (empty)
        input or half a text. Output tokens are the request's max_tokens."""
        return cls("structured", obj=obj, truncated=True)

    @classmethod
    def text(cls, text: str, input_tokens: int | None = None, output_tokens: int | None = None) -> Reply:
        """A plain assistant message with no tool call."""
        return cls("text", content=text, input_tokens=input_tokens, output_tokens=output_tokens)

    @classmethod
    def error(
        cls,
        status: int,
        kind: str | None = None,
        message: str | None = None,
        retry_after: float | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """The provider's real error body. ``kind`` is the error ``type`` (default per provider/status);
        a 429 without ``retry_after`` gets ``retry-after: 1``."""
        return cls(
            "error",
            status=status,
            error_kind=kind,
            message=message,
            retry_after=retry_after,
            code=code,
            headers=dict(headers or {}),
        )

    @classmethod
    def rate_limited(cls, retry_after: float = 1, message: str | None = None) -> Reply:
        return cls.error(429, retry_after=retry_after, message=message)

    @classmethod
    def overloaded(cls, message: str | None = None) -> Reply:
        """Anthropic 529 overloaded_error; OpenAI has no 529, so there it is a 503."""
        return cls("error", status=529, error_kind="overloaded", message=message)

    @classmethod
    def server_error(cls, status: int = 500, message: str | None = None) -> Reply:
        return cls.error(status, message=message)

    @classmethod
    def slow(cls, seconds: float, then: Reply | None = None) -> Reply:
        """Wait ``seconds`` (on top of the server latency) and then send ``then`` (default answer if None)."""
        return cls("slow", seconds=seconds, then=then)

    @classmethod
    def disconnect(cls, partial: bool = False) -> Reply:
        """Close the socket without a complete response (``partial``: send headers + half the body first)."""
        return cls("disconnect", partial=partial)


@dataclass
class Answer:
    """What was (or would be) put on the wire: status, JSON body, headers."""

    status: int
    json: Any
    headers: dict[str, str]
    input_tokens: int = 0  # every prompt token billed, cache reads and writes included
    output_tokens: int = 0
    disconnected: bool = False
    partial: bool = False
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    raw: bytes | None = None  # a body that is not JSON (a file's content, a JSONL results stream)
    content_type: str = "application/json"


def _rand_id(prefix: str, n: int) -> str:
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    raw = uuid.uuid4().int
    chars = []
    for _ in range(n):
        raw, r = divmod(raw, 62)
        chars.append(alphabet[r])
    return prefix + "".join(chars)


def request_id(provider: Provider) -> str:
    return f"req_{uuid.uuid4().hex}" if provider == "openai" else _rand_id("req_011C", 20)


_OPENAI_DEFAULT_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported.",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model does not exist or you do not have access to it.",
    ),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again shortly."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
_ANTHROPIC_DEFAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit. Please try again later."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def error_answer(
    provider: Provider,
    status: int,
    kind: str | None = None,
    message: str | None = None,
    *,
    code: str | None = None,
    param: str | None = None,
    retry_after: float | None = None,
    req_id: str | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> Answer:
    """Build a provider-faithful error response."""
    req_id = req_id or request_id(provider)
    headers: dict[str, str] = {}
    if status == 429 and retry_after is None:
        retry_after = 1
    if retry_after is not None:
        headers["retry-after"] = str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
    if provider == "openai":
        if status == 529 or kind == "overloaded":
            status = 503 if status == 529 else status
            kind = "server_error"
        d_kind, d_code, d_msg = _OPENAI_DEFAULT_ERRORS.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None, "Error.")
        )
        kind = kind or d_kind
        code = code if code is not None else (d_code if kind == d_kind else None)
        body: dict[str, Any] = {"error": {"message": message or d_msg, "type": kind, "param": param, "code": code}}
        headers["x-request-id"] = req_id
        headers.update(_openai_ratelimit_headers(exhausted=status == 429))
    else:
        if kind == "overloaded":
            kind = "overloaded_error"
        a_kind, a_msg = _ANTHROPIC_DEFAULT_ERRORS.get(
            status, ("api_error" if status >= 500 else "invalid_request_error", "Error.")
        )
        kind = kind or a_kind
        body = {"type": "error", "error": {"type": kind, "message": message or a_msg}, "request_id": req_id}
        headers["request-id"] = req_id
        if status == 429:
            headers.update(_anthropic_ratelimit_headers(exhausted=True))
    headers.update(extra_headers or {})
    return Answer(status=status, json=body, headers=headers)


def _openai_ratelimit_headers(exhausted: bool) -> dict[str, str]:
    return {
        "x-ratelimit-limit-requests": "10000",
        "x-ratelimit-limit-tokens": "2000000",
        "x-ratelimit-remaining-requests": "0" if exhausted else "9999",
        "x-ratelimit-remaining-tokens": "0" if exhausted else "1999000",
        "x-ratelimit-reset-requests": "1s" if exhausted else "6ms",
        "x-ratelimit-reset-tokens": "1s" if exhausted else "30ms",
    }


def _anthropic_ratelimit_headers(exhausted: bool) -> dict[str, str]:
    reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    return {
        "anthropic-ratelimit-requests-limit": "4000",
        "anthropic-ratelimit-requests-remaining": "0" if exhausted else "3999",
        "anthropic-ratelimit-requests-reset": reset,
        "anthropic-ratelimit-tokens-limit": "400000",
        "anthropic-ratelimit-tokens-remaining": "0" if exhausted else "399000",
        "anthropic-ratelimit-tokens-reset": reset,
    }


def render_reply(req: ParsedRequest, reply: Reply, cache: tuple[int, int] = (0, 0)) -> Answer:
    """Wrap a structured/raw/text/error Reply in the provider's envelope for the request's mode.

    ``cache`` is (tokens read from, tokens written to) the prompt cache, from a ``PromptCacheLedger``;
    ``slow`` and ``disconnect`` are transport behaviours handled by the server, not here.
    """
    if reply.kind == "error":
        return error_answer(
            req.provider,
            reply.status,
            reply.error_kind,
            reply.message,
            code=reply.code,
            retry_after=reply.retry_after,
            extra_headers=reply.headers,
        )
    if reply.kind not in ("structured", "raw_arguments", "text"):
        raise ValueError(f"render_reply cannot render a {reply.kind!r} reply")
    if reply.input_tokens is not None:
        cache = (0, 0)  # a scripted token count is reported as it is
    if req.provider == "openai":
        return _render_openai(req, reply, cache[0])
    return _render_anthropic(req, reply, cache)


def _output_tokens(req: ParsedRequest, reply: Reply, out_text: str) -> int:
    if reply.output_tokens is not None:
        return reply.output_tokens
    limit = req.body.get("max_completion_tokens") or req.body.get("max_tokens")
    if reply.truncated and isinstance(limit, int):
        return limit
    return count_tokens(out_text)


def _render_openai(req: ParsedRequest, reply: Reply, cached: int) -> Answer:
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
    if reply.kind == "text":
        out_text = reply.content or ""
        message["content"] = out_text
        finish = "stop"
    else:
        out_text = reply.content if reply.kind == "raw_arguments" else _compact(reply.obj)
        out_text = out_text or ""
        if reply.truncated:
            out_text = out_text[: len(out_text) // 2]
        if req.mode == "tools":
            message["tool_calls"] = [
                {
                    "id": _rand_id("call_", 24),
                    "type": "function",
                    "function": {"name": req.tool_name or "function", "arguments": out_text},
                }
            ]
            finish = "tool_calls"
        else:
            message["content"] = out_text
            finish = "stop"
    if reply.truncated:
        finish = "length"
    prompt = reply.input_tokens if reply.input_tokens is not None else req.input_tokens
    completion = _output_tokens(req, reply, out_text)
    body = {
        "id": _rand_id("chatcmpl-", 29),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_" + hashlib.sha256(req.model.encode()).hexdigest()[:10],
    }
    headers = {"x-request-id": request_id("openai"), "openai-version": "2020-10-01"}
    headers.update(_openai_ratelimit_headers(exhausted=False))
    headers.update(reply.headers)
    return Answer(200, body, headers, input_tokens=prompt, output_tokens=completion, cached_input_tokens=cached)


def _render_anthropic(req: ParsedRequest, reply: Reply, cache: tuple[int, int]) -> Answer:
    content: list[dict[str, Any]]
    if reply.kind == "text" or req.mode != "tools":
        out_text = (reply.content or "") if reply.kind in ("text", "raw_arguments") else _compact(reply.obj)
        if reply.truncated:
            out_text = out_text[: len(out_text) // 2]
        content = [{"type": "text", "text": out_text}]
        stop = "end_turn"
    elif reply.truncated:
        out_text = ""
        content = [{"type": "tool_use", "id": _rand_id("toolu_01", 22), "name": req.tool_name or "tool", "input": {}}]
        stop = "max_tokens"
    else:
        obj: Any = reply.obj
        if reply.kind == "raw_arguments":
            try:
                obj = json.loads(reply.content or "")
            except ValueError:
                obj = {}
            if not isinstance(obj, dict):
                obj = {}
        out_text = _compact(obj)
        content = [
            {
                "type": "tool_use",
                "id": _rand_id("toolu_01", 22),
                "name": req.tool_name or "tool",
                "input": obj,
            }
        ]
        stop = "tool_use"
    if reply.truncated:
        stop = "max_tokens"
    prompt = reply.input_tokens if reply.input_tokens is not None else req.input_tokens
    completion = _output_tokens(req, reply, out_text)
    read, write = cache
    body = {
        "id": _rand_id("msg_01", 22),
        "type": "message",
        "role": "assistant",
        "model": req.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": prompt - read - write,  # Anthropic counts cache reads and writes apart
            "output_tokens": completion,
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
            "service_tier": "standard",
        },
    }
    headers = {"request-id": request_id("anthropic")}
    headers.update(_anthropic_ratelimit_headers(exhausted=False))
    headers.update(reply.headers)
    return Answer(
        200,
        body,
        headers,
        input_tokens=prompt,
        output_tokens=completion,
        cached_input_tokens=read,
        cache_write_tokens=write,
    )


def default_answerer(req: ParsedRequest) -> Reply:
    """Schema-driven valid answer seeded by model + conversation; plain text when no schema was asked.

    The schema is the tool / response_format one, else one embedded in the prompt (instructor JSON modes).
    """
    schema = req.schema if req.schema is not None else req.embedded_schema
    if schema is not None:
        return Reply.structured(schema_answer(schema, req.seed, quote_source=req.response_text))
    if req.mode == "json_object":
        return Reply.structured({"answer": f"fake {req.seed[:8]}"})
    return Reply.text(f"Fake answer {req.seed[:8]} from {req.model}.")


# ---------------------------------------------------------------------------------------------------
# Fault plans
# ---------------------------------------------------------------------------------------------------
ReplySource = Reply | Callable[[ParsedRequest], Reply]
_Matcher = Callable[[ParsedRequest], bool]


@dataclass
class _Rule:
    match: _Matcher
    reply: ReplySource
    times: int | None  # remaining firings; None = unlimited


class FaultPlan:
    """Faults injected before the answerer, by ordinal, predicate or seeded rate; first matching rule wins.

    Ordinals are 1-based arrival numbers (``ParsedRequest.ordinal``), counted from the last ``reset()``.
    Plans combine with ``+``.
    """

    def __init__(self, rules: Iterable[_Rule] = ()) -> None:
        self._rules = list(rules)
        self._lock = threading.Lock()

    def __add__(self, other: FaultPlan) -> FaultPlan:
        return FaultPlan([*self._rules, *other._rules])

    @staticmethod
    def at(ordinals: Iterable[int], reply: ReplySource) -> FaultPlan:
        """Fault exactly the given 1-based request ordinals (e.g. ``at([3, 7], ...)``)."""
        wanted = frozenset(ordinals)
        return FaultPlan([_Rule(lambda r: r.ordinal in wanted, reply, None)])

    @staticmethod
    def every(n: int, reply: ReplySource) -> FaultPlan:
        """Fault requests n, 2n, 3n, …"""
        return FaultPlan([_Rule(lambda r: r.ordinal % n == 0, reply, None)])

    @staticmethod
    def first(k: int, reply: ReplySource) -> FaultPlan:
        """Fault the first k requests."""
        return FaultPlan([_Rule(lambda r: r.ordinal <= k, reply, None)])

    @staticmethod
    def when(predicate: _Matcher, reply: ReplySource, times: int | None = 1) -> FaultPlan:
        """Fault requests matching ``predicate``, at most ``times`` times (None = always)."""
        return FaultPlan([_Rule(predicate, reply, times)])

    @staticmethod
    def rate(p: float, reply: ReplySource, seed: int = 0) -> FaultPlan:
        """Fault each request with probability p, decided per ordinal (independent of thread timing)."""
        return FaultPlan([_Rule(lambda r: random.Random(f"{seed}:{r.ordinal}").random() < p, reply, None)])

    def pick(self, req: ParsedRequest) -> Reply | None:
        """The fault for this request, or None; consumes one firing of a ``times``-limited rule."""
        with self._lock:
            for rule in self._rules:
                if rule.times is not None and rule.times <= 0:
                    continue
                if rule.match(req):
                    if rule.times is not None:
                        rule.times -= 1
                    return rule.reply(req) if callable(rule.reply) else rule.reply
        return None


# ---------------------------------------------------------------------------------------------------
# Prompt caching
# ---------------------------------------------------------------------------------------------------
OPENAI_CACHE_STEP = 128


class PromptCacheLedger:
    """Which prompt prefixes the fake provider has seen, per model, to report cache usage deterministically.

    OpenAI caches by itself: a prompt whose prefix (here: its system text) was seen before and is at
    least ``min_tokens`` long reads ``min_tokens`` plus whole 128-token steps of it from the cache.
    Anthropic caches only up to a ``cache_control`` marker: the first request with a prefix at least
    ``min_tokens`` long writes it, later ones read it. Shorter prefixes are never cached, as with the
    real APIs (1024 tokens is their documented minimum for most models). Arrival order decides who
    writes, so concurrent requests are accounted in a fixed order.
    """

    def __init__(self, min_tokens: int = 1024) -> None:
        self.min_tokens = min_tokens
        self._seen: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def account(self, req: ParsedRequest) -> tuple[int, int]:
        """(tokens read from the cache, tokens written to it) for this request."""
        if req.cache_prefix is None:
            return 0, 0
        tokens = count_tokens(req.cache_prefix)
        if tokens < self.min_tokens:
            return 0, 0
        key = (req.provider, req.model, hashlib.sha256(req.cache_prefix.encode("utf-8")).hexdigest())
        with self._lock:
            seen = key in self._seen
            self._seen.add(key)
        if req.provider == "openai":
            cached = self.min_tokens + (tokens - self.min_tokens) // OPENAI_CACHE_STEP * OPENAI_CACHE_STEP
            return (cached, 0) if seen else (0, 0)
        return (tokens, 0) if seen else (0, tokens)
