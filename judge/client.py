"""The one place that talks to LLM APIs: each judge's SDK client, its retries and its re-asks.

instructor prepares each request (tools, `response_format` or a JSON instruction), parses the answer
into the verdict model and writes the re-ask that carries a validation error back to the judge. Its
`create` wrapper is not used: on every call it re-scans and re-wraps the response model, which cost
more client CPU than the SDK request itself and capped throughput well below what the API allows.

Transient failures (429, 5xx, 529 overloaded, timeouts, dropped connections) are retried with
exponential backoff and jitter, honouring `retry-after`, up to a number of attempts and a per-call
deadline. When the re-asks of an invalid answer run out, the call is recorded as failed, with the
error and without a score.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import re
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import anthropic
import instructor
import openai
from anthropic.types import Message as AnthropicMessage
from instructor.core.exceptions import (
    AsyncValidationError,
    IncompleteOutputException,
    ResponseParsingError,
)
from instructor.v2.core.registry import mode_registry
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from judge.engine import CallResult, RateLimiter, estimate_input_tokens, estimate_output_tokens
from judge.judges import MODES_BY_PROVIDER, JudgeConfigError, JudgeSpec, api_key_for
from judge.plan import PlannedCall
from judge.verdict import JUDGED_RESPONSE, failed_outcomes, outcomes_from_verdict

RETRY_AFTER_CAP_S = 300.0

# Answers worth a re-ask: the judge can fix these when shown the error (as instructor's own retry does).
REASKABLE_ERRORS = (ValidationError, json.JSONDecodeError, AsyncValidationError, ResponseParsingError)

# Which modes each provider offers is judges.MODES_BY_PROVIDER; this is only their instructor names.
_MODES = {"tools": instructor.Mode.TOOLS, "json_schema": instructor.Mode.JSON_SCHEMA, "json": instructor.Mode.JSON}
_PROVIDERS = {"openai": instructor.Provider.OPENAI, "anthropic": instructor.Provider.ANTHROPIC}


@functools.cache
def instructor_model(model: type[BaseModel]) -> type[BaseModel]:
    """The verdict model as instructor's schema class, made once per pillar so its schema is cached."""
    return instructor.openai_schema(model)


@dataclass
class TokenTally:
    """Tokens billed across every attempt of one call, re-asks and retried requests included.

    A count becomes None (unknown) as soon as one answered request reports no usage: a partial sum
    would understate the cost.
    """

    input_tokens: int | None = 0
    output_tokens: int | None = 0
    requests: int = 0

    def add(self, response: Any) -> None:
        self.requests += 1
        input_tokens, output_tokens = usage_numbers(getattr(response, "usage", None))
        self.input_tokens = _add_known(self.input_tokens, input_tokens)
        self.output_tokens = _add_known(self.output_tokens, output_tokens)

    def counts(self) -> tuple[int | None, int | None]:
        """(input, output); both None when no request was answered."""
        if self.requests == 0:
            return None, None
        return self.input_tokens, self.output_tokens


def _add_known(total: int | None, more: int | None) -> int | None:
    return None if total is None or more is None else total + more


def usage_numbers(usage: Any) -> tuple[int | None, int | None]:
    if usage is None:
        return None, None
    if hasattr(usage, "input_tokens"):  # Anthropic
        return usage.input_tokens, usage.output_tokens
    return getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)


class InvalidAnswerError(Exception):
    """Every allowed attempt produced an answer that failed validation; `__cause__` is the last error."""

    def __init__(self, error: Exception, attempts: int) -> None:
        super().__init__(f"invalid answer after {attempts} attempt(s): {error}")
        self.error = error
        self.attempts = attempts


# Endpoints and answer types, posted through each SDK's own client (see JudgeClient.ask).
_ENDPOINTS: dict[str, tuple[str, type]] = {
    "openai": ("/chat/completions", ChatCompletion),
    "anthropic": ("/v1/messages", AnthropicMessage),
}
_PROBES = (
    [{"role": "system", "content": "probe one"}, {"role": "user", "content": "probe two"}],
    [{"role": "user", "content": "probe three"}],
)

RequestParts = tuple[type[BaseModel], dict[str, Any]]  # instructor's response model, the request minus messages


class JudgeClient:
    """One judge's SDK client (its own retries off: the engine owns retry policy) and mode handlers."""

    def __init__(self, spec: JudgeSpec) -> None:
        if spec.mode not in MODES_BY_PROVIDER[spec.provider]:
            raise JudgeConfigError(f"judge {spec.name}: mode {spec.mode!r} is not available for {spec.provider}")
        self.spec = spec
        self.handlers = mode_registry.get_handlers(_PROVIDERS[spec.provider], _MODES[spec.mode])
        key = api_key_for(spec)
        self.sdk: openai.AsyncOpenAI | anthropic.AsyncAnthropic
        if spec.provider == "openai":
            self.sdk = openai.AsyncOpenAI(
                api_key=key,
                base_url=spec.effective_base_url(),
                max_retries=0,
                timeout=spec.timeout_s,
                # The SDK's aiohttp transport: less CPU per request than its default under many connections.
                http_client=openai.DefaultAioHttpClient(timeout=spec.timeout_s),
            )
        else:
            self.sdk = anthropic.AsyncAnthropic(
                api_key=key, base_url=spec.effective_base_url(), max_retries=0, timeout=spec.timeout_s
            )
        self.path, self.answer_type = _ENDPOINTS[spec.provider]
        self.decoding = request_kwargs(spec)
        self._fixed_parts: dict[type[BaseModel], RequestParts | None] = {}

    def _request(self, model: type[BaseModel], messages: list[dict[str, str]]) -> RequestParts:
        """instructor's request for these messages. Where its handler leaves messages alone and adds the
        same keys whatever they say (tools, json_schema), those keys are worked out once per verdict model;
        a mode that rewrites messages (a JSON instruction, Anthropic's `system`) is prepared per call."""
        if model not in self._fixed_parts:
            self._fixed_parts[model] = self._message_independent_parts(model)
        fixed = self._fixed_parts[model]
        if fixed is None:
            return self.handlers.request_handler(instructor_model(model), {"messages": messages, **self.decoding})
        response_model, rest = fixed
        return response_model, {**rest, "messages": messages}

    def _message_independent_parts(self, model: type[BaseModel]) -> RequestParts | None:
        prepared = [
            self.handlers.request_handler(instructor_model(model), {"messages": list(probe), **self.decoding})
            for probe in _PROBES
        ]
        rests = []
        for probe, (_, kwargs) in zip(_PROBES, prepared, strict=True):
            if kwargs.get("messages") != probe:
                return None
            rests.append({k: v for k, v in kwargs.items() if k != "messages"})
        return (prepared[0][0], rests[0]) if rests[0] == rests[1] else None

    async def ask(self, model: type[BaseModel], messages: list[dict[str, str]], tally: TokenTally) -> BaseModel:
        """The validated verdict, after at most `max_reasks` re-asks; every answer's tokens go to `tally`.

        The request is posted with the SDK client's own `post` (its auth, headers, error types and typed
        answer) rather than through `create`, whose parameter transform walks every message against
        each message type on every call and does nothing for plain-text chat messages and a JSON schema.

        API errors propagate unchanged (the worker decides whether to retry them); an answer cut off at
        max_tokens raises instructor's IncompleteOutputException, since re-asking would cut it off again.
        """
        response_model, kwargs = self._request(model, messages)
        attempt = 1
        while True:
            response = await self.sdk.post(self.path, cast_to=self.answer_type, body=kwargs)
            tally.add(response)
            try:
                return self.handlers.response_parser(
                    response=response, response_model=response_model, strict=True, is_async=True
                )
            except IncompleteOutputException:
                raise
            except REASKABLE_ERRORS as error:
                if reached_max_tokens(response, self.spec.max_tokens):
                    raise IncompleteOutputException(last_completion=response) from error
                if attempt > self.spec.max_reasks:
                    raise InvalidAnswerError(error, attempt) from error
                kwargs = self.handlers.reask_handler(kwargs=kwargs, response=response, exception=error)
            attempt += 1

    async def close(self) -> None:
        await self.sdk.close()


def reached_max_tokens(response: Any, max_tokens: int) -> bool:
    """Whether an answer used its whole token budget. Some servers (llama.cpp's) report an answer cut off
    at max_tokens as finish_reason "tool_calls" or "stop"; an invalid answer that used every token is
    taken as cut off, since a re-ask would be cut off again."""
    output_tokens = usage_numbers(getattr(response, "usage", None))[1]
    return output_tokens is not None and output_tokens >= max_tokens


def request_kwargs(spec: JudgeSpec) -> dict[str, Any]:
    """Decoding parameters in the form each SDK expects."""
    kwargs: dict[str, Any] = {"model": spec.model, "temperature": spec.temperature, "max_tokens": spec.max_tokens}
    if spec.seed is not None and spec.provider == "openai":
        kwargs["seed"] = spec.seed
    return kwargs


# ---------------------------------------------------------------- errors and retry policy


def _root_error(exc: BaseException) -> BaseException:
    """The validation error behind an invalid answer; any other error as it is."""
    return exc.error if isinstance(exc, InvalidAnswerError) else exc


_STATUS_REASONS = {401: "auth", 403: "auth", 404: "not_found", 408: "timeout", 429: "rate_limited", 529: "overloaded"}
_STATUS_ERRORS = (openai.APIStatusError, anthropic.APIStatusError)
_TIMEOUT_ERRORS = (openai.APITimeoutError, anthropic.APITimeoutError, TimeoutError)
_CONNECTION_ERRORS = (openai.APIConnectionError, anthropic.APIConnectionError)


def _dropped_connection_underneath(exc: BaseException) -> bool:
    """The OpenAI SDK's aiohttp transport reports every aiohttp connection error, a server that closed
    the connection included, as a connect timeout; the aiohttp error it was raised from tells them apart."""
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        if isinstance(cause, aiohttp.ClientConnectionError) and not isinstance(cause, TimeoutError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


# How a server says the request itself is malformed, whatever status it sends with it: the error type of
# OpenAI- and Anthropic-style bodies, and FastAPI's request-validation text (llama-cpp-python's server
# sends "1 validation error: {... 'loc': ('body', 'response_format', 'type') ...}" as an HTTP 500).
_INVALID_REQUEST_TYPES = frozenset({"invalid_request_error"})
_REQUEST_VALIDATION_TEXT = re.compile(r"validation errors?\b.*'loc': \('body'", re.S)


def says_request_invalid(error: openai.APIStatusError | anthropic.APIStatusError) -> bool:
    """Whether an error body blames the request: sending the same request again cannot succeed."""
    body = error.body
    detail = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(detail, dict):
        if detail.get("type") in _INVALID_REQUEST_TYPES:
            return True
        text = str(detail.get("message", ""))
    else:
        text = str(detail if detail is not None else error.message)
    return _REQUEST_VALIDATION_TEXT.search(text) is not None


def failure_reason(exc: BaseException) -> str:
    root = _root_error(exc)
    if isinstance(root, _STATUS_ERRORS):
        status = root.status_code
        if status >= 500 and says_request_invalid(root):
            return "bad_request"
        return _STATUS_REASONS.get(status, "server_error" if status >= 500 else "bad_request")
    if isinstance(root, _TIMEOUT_ERRORS):
        return "connection" if _dropped_connection_underneath(root) else "timeout"
    if isinstance(root, _CONNECTION_ERRORS):
        return "connection"
    if isinstance(exc, InvalidAnswerError) or isinstance(root, ValidationError | json.JSONDecodeError):
        return "invalid_answer"
    if isinstance(exc, IncompleteOutputException):
        return "truncated"
    return "error"


def is_transient(exc: BaseException) -> bool:
    return failure_reason(exc) in {"rate_limited", "overloaded", "server_error", "timeout", "connection"}


def retry_after_seconds(exc: BaseException) -> float | None:
    """Delay the server asked for (`retry-after-ms`, `retry-after` in seconds or as an HTTP date)."""
    root = _root_error(exc)
    response = getattr(root, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # unreadable: fall back to our own backoff
    return max(0.0, parsed.timestamp() - time.time())


class WaitRetryAfter:
    """Tenacity wait: the server's `retry-after` when given (capped), else exponential backoff with jitter."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self._fallback = wait_random_exponential(multiplier=initial_s, max=max_s)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None and (asked := retry_after_seconds(exc)) is not None:
            return min(asked, RETRY_AFTER_CAP_S)
        return float(self._fallback(state))


def retry_policy(spec: JudgeSpec) -> AsyncRetrying:
    return AsyncRetrying(
        retry=retry_if_exception(is_transient),
        wait=WaitRetryAfter(spec.backoff_initial_s, spec.backoff_max_s),
        stop=stop_after_attempt(spec.max_attempts),
        reraise=True,
    )


# ---------------------------------------------------------------- one judge's calls


class JudgeWorker:
    """Sends one judge's calls: its client, its concurrency bound and its rate limits."""

    def __init__(self, spec: JudgeSpec, default_concurrency: int) -> None:
        self.spec = spec
        self.client = JudgeClient(spec)
        self.concurrency = spec.concurrency or default_concurrency
        self.limiter = RateLimiter(spec.requests_per_minute, spec.tokens_per_minute)

    async def _ask_once(self, call: PlannedCall, tally: TokenTally) -> BaseModel:
        estimate = estimate_input_tokens(call) + estimate_output_tokens(call)
        await self.limiter.acquire(estimate)
        spent_before = (tally.input_tokens or 0) + (tally.output_tokens or 0)
        token = JUDGED_RESPONSE.set(call.item.response)
        try:
            return await self.client.ask(call.context.model, [m.as_dict() for m in call.messages], tally)
        finally:
            JUDGED_RESPONSE.reset(token)
            spent = (tally.input_tokens or 0) + (tally.output_tokens or 0) - spent_before
            self.limiter.settle(estimate, spent)

    async def ask(self, call: PlannedCall) -> CallResult:
        started = time.monotonic()
        tally = TokenTally()
        try:
            async with asyncio.timeout(self.spec.deadline_s):
                async for attempt in retry_policy(self.spec):
                    with attempt:
                        verdict = await self._ask_once(call, tally)
        except Exception as exc:
            reason = "deadline" if isinstance(exc, TimeoutError) and not _is_sdk_timeout(exc) else failure_reason(exc)
            input_tokens, output_tokens = tally.counts()
            return CallResult(
                call,
                failed_outcomes(call.rubric, _describe(exc, reason, self.spec)),
                input_tokens,
                output_tokens,
                round(time.monotonic() - started, 4),
                cached=False,
                failure_reason=reason,
            )
        input_tokens, output_tokens = tally.counts()
        return CallResult(
            call,
            outcomes_from_verdict(call.rubric, verdict),
            input_tokens,
            output_tokens,
            round(time.monotonic() - started, 4),
            cached=False,
        )


def _is_sdk_timeout(exc: BaseException) -> bool:
    return isinstance(_root_error(exc), openai.APITimeoutError | anthropic.APITimeoutError)


def _validation_detail(error: BaseException) -> str:
    """One line per problem, without pydantic's documentation links."""
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        )
    return str(error)


def _describe(exc: BaseException, reason: str, spec: JudgeSpec) -> str:
    root = _root_error(exc)
    if reason == "invalid_answer":
        attempts = exc.attempts if isinstance(exc, InvalidAnswerError) else 1
        return f"invalid answer after {attempts} attempt(s): {_validation_detail(root)}"
    if reason == "truncated":
        return (
            f"truncated: the answer hit max_tokens={spec.max_tokens} before it was complete; "
            "raise max_tokens in judges.toml"
        )
    if reason == "deadline":
        return f"no answer within the per-call deadline of {spec.deadline_s:g} s (deadline_s in judges.toml)"
    status = getattr(root, "status_code", None)
    prefix = f"HTTP {status} " if status else ""
    message = str(root) or type(root).__name__
    if is_transient(exc):
        return f"{reason}: {prefix}{message} (gave up after {spec.max_attempts} attempts)"
    return f"{reason}: {prefix}{message}"
