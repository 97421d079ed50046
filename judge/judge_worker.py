"""A judge's calls on the wire: instructor prepares each request for the judge's mode (tools,
`response_format` or a JSON instruction), parses the answer into the verdict model and writes the re-ask
that carries a validation error back. Its `create` wrapper is not used: on every call it re-scans and
re-wraps the response model, which cost more client CPU than the SDK request itself.

Loaded only when a run has judge calls to make (`judge.calls.runner.make_workers`), so that a run
answered from the cache never imports instructor or an SDK.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from typing import Any

import instructor
from instructor.core.exceptions import AsyncValidationError, IncompleteOutputException, ResponseParsingError
from instructor.v2.core.registry import mode_registry
from pydantic import BaseModel, ValidationError

from judge.calls.client import (
    BatchAPI,
    CallRequests,
    Connection,
    InvalidAnswerError,
    call_failure_reason,
    call_result,
    describe_failure,
    mark_cacheable,
    request_kwargs,
    usage_of,
)
from judge.calls.engine import CallResult
from judge.calls.request_log import RequestLog
from judge.judge_calls import estimate_input_tokens, estimate_output_tokens
from judge.judges import MODES_BY_PROVIDER, JudgeConfigError, JudgeSpec
from judge.plan import PlannedCall
from judge.verdict import JUDGED_RESPONSE, JUDGED_TURNS, failed_outcomes, is_multi_turn, outcomes_from_verdict

# Answers worth a re-ask: the judge can fix these when shown the error (as instructor's own retry does).
REASKABLE_ERRORS = (ValidationError, json.JSONDecodeError, AsyncValidationError, ResponseParsingError)

# Which modes each provider offers is judges.MODES_BY_PROVIDER; this is only their instructor names. A
# provider's handlers are those of the API it speaks (JudgeSpec.wire).
_MODES = {"tools": instructor.Mode.TOOLS, "json_schema": instructor.Mode.JSON_SCHEMA, "json": instructor.Mode.JSON}
_PROVIDERS = {"openai": instructor.Provider.OPENAI, "anthropic": instructor.Provider.ANTHROPIC}


@functools.cache
def instructor_model(model: type[BaseModel]) -> type[BaseModel]:
    """The verdict model as instructor's schema class, made once per pillar so its schema is cached."""
    return instructor.openai_schema(model)


RequestParts = tuple[type[BaseModel], dict[str, Any]]  # instructor's response model, the request minus messages
_PROBES = (
    [{"role": "system", "content": "probe one"}, {"role": "user", "content": "probe two"}],
    [{"role": "user", "content": "probe three"}],
)


class JudgeClient:
    """One judge's connection and instructor's mode handlers for it."""

    def __init__(self, spec: JudgeSpec) -> None:
        if spec.mode not in MODES_BY_PROVIDER[spec.provider]:
            raise JudgeConfigError(f"judge {spec.name}: mode {spec.mode!r} is not available for {spec.provider}")
        self.spec = spec
        self.connection = Connection(spec)  # first: it imports the SDK while its TLS context is built
        self.handlers = mode_registry.get_handlers(_PROVIDERS[spec.wire], _MODES[spec.mode])
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
        if rests[0] != rests[1]:
            return None
        self.connection.bodies.share(rests[0])  # the same tools or schema in every request for this model
        return prepared[0][0], rests[0]

    async def ask(
        self, model: type[BaseModel], messages: list[dict[str, str]], requests: CallRequests, estimate: int = 1
    ) -> BaseModel:
        """The validated verdict, after at most `max_reasks` re-asks; every answer's tokens are counted.

        API errors propagate once the request's retries are spent; an answer cut off at max_tokens
        raises instructor's IncompleteOutputException, since re-asking would cut it off again.
        """
        response_model, kwargs = self._request(model, mark_cacheable(self.spec, messages))
        attempt = 1
        while True:
            response = await requests.send(kwargs, estimate)
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
        await self.connection.close()


def reached_max_tokens(response: Any, max_tokens: int) -> bool:
    """Whether an answer used its whole token budget. Some servers (llama.cpp's) report an answer cut off
    at max_tokens as finish_reason "tool_calls" or "stop"; an invalid answer that used every token is
    taken as cut off, since a re-ask would be cut off again."""
    output_tokens = usage_of(getattr(response, "usage", None)).output
    return output_tokens is not None and output_tokens >= max_tokens


class JudgeWorker:
    """Sends one judge's calls: its client, its concurrency bound; rate limits live in the connection."""

    def __init__(self, spec: JudgeSpec, default_concurrency: int, log: RequestLog | None = None) -> None:
        self.spec = spec
        self.client = JudgeClient(spec)
        self.concurrency = spec.concurrency or default_concurrency
        self.log = log

    async def ask(self, call: PlannedCall) -> CallResult:
        started = time.monotonic()
        requests = CallRequests(self.client.connection, self.log, call.request_key)
        estimate = estimate_input_tokens(call) + estimate_output_tokens(call)
        token = JUDGED_RESPONSE.set(call.judged_response)
        turns_token = JUDGED_TURNS.set(call.judged_turns or None)
        try:
            async with asyncio.timeout(self.spec.deadline_s):
                verdict = await self.client.ask(
                    call.context.model, [m.as_dict() for m in call.messages], requests, estimate
                )
        except Exception as exc:
            reason = call_failure_reason(exc)
            outcomes = failed_outcomes(call.rubric, describe_failure(exc, reason, self.spec))
            return call_result(call, outcomes, requests, started, reason)
        finally:
            JUDGED_TURNS.reset(turns_token)
            JUDGED_RESPONSE.reset(token)
        outcomes = outcomes_from_verdict(call.rubric, verdict, multi_turn=is_multi_turn(call.item.messages))
        return call_result(call, outcomes, requests, started, None)

    @property
    def connection(self) -> Connection:
        return self.client.connection

    def first_request(self, call: PlannedCall) -> dict[str, Any]:
        """The body of the call's first request exactly as `ask` sends it (what goes into a batch)."""
        messages = mark_cacheable(self.spec, [m.as_dict() for m in call.messages])
        return self.client._request(call.context.model, messages)[1]

    def batch_api(self) -> BatchAPI:
        return BatchAPI(self.client.connection)

    async def close(self) -> None:
        await self.client.close()
