"""Workers of the targets that are not an OpenAI- or Anthropic-style API: the `mock:` stand-in, a chatbot
behind its own HTTP API (`http:`) and a Python callable (`python:`). Each answers one turn at a time;
`converse` drives the scripted follow-up turns as the LLM targets' worker does, and the engine does the
rest as for any target (cache, journal, resume, concurrency, progress).

`target_worker` is what `judge.calls.runner.make_workers` calls for every target with calls to make; it
picks the worker of the target's kind, so only what a run needs is imported (an SDK only for an LLM target).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

from judge.calls.engine import CallResult, rate_limiter
from judge.calls.request_log import RequestLog
from judge.judges import MOCK, NOT_A_MODEL, JudgeConfigError, public_url
from judge.respond.custom_targets import fill_template, follow_reply_path, parse_reply_path
from judge.respond.plan import TargetCall
from judge.respond.targets import HttpTargetSpec, PythonTargetSpec, TargetSpec

ERROR_BODY_CHARS = 300  # of a server's error answer, in the call's error text


def target_worker(spec: TargetSpec, default_concurrency: int) -> Any:
    """The worker for `spec`'s kind of target."""
    if spec.provider == MOCK:
        return MockTargetWorker(spec, default_concurrency)
    if isinstance(spec, HttpTargetSpec):
        return HttpTargetWorker(spec, default_concurrency)
    if isinstance(spec, PythonTargetSpec):
        return PythonTargetWorker(spec, default_concurrency)
    from judge.respond.worker import TargetWorker

    return TargetWorker(spec, default_concurrency)


class TurnFailed(Exception):
    """A turn that got no usable answer; `reason` is the call's failure reason (as in a summary)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


Answer = Callable[[list[dict[str, str]]], Awaitable[str]]


async def converse(call: TargetCall, answer: Answer, deadline_s: float) -> CallResult:
    """Every turn of `call` answered by `answer` (the conversation so far → the reply), the follow-ups in
    order, within the target's per-call deadline; a failed turn fails the call with its reason."""
    started = time.monotonic()
    conversation = [m.model_dump() for m in call.prompt.messages]
    turns: list[str] = []
    reason = error = None
    try:
        async with asyncio.timeout(deadline_s):
            for followup in (None, *call.prompt.followups):
                if followup is not None:
                    conversation += [{"role": "assistant", "content": turns[-1]}, {"role": "user", "content": followup}]
                text = await answer(conversation)
                if not text.strip():
                    raise TurnFailed(
                        "empty_answer", f"empty_answer: the target answered turn {len(turns) + 1} with no text"
                    )
                turns.append(text)
    except TurnFailed as exc:
        reason, error = exc.reason, exc.message
    except TimeoutError:
        reason = "deadline"
        error = f"no answer within the per-call deadline of {deadline_s:g} s (deadline_s in its TOML file)"
    payload = {"turns": turns, "truncated": False, "error": error}
    free = call.target.provider == MOCK
    return CallResult(
        call,
        payload,
        0 if free else None,  # tokens: none for a mock; unknown for an API or function that reports none
        0 if free else None,
        round(time.monotonic() - started, 4),
        cached=False,
        failure_reason=reason,
        cached_input_tokens=0 if free else None,
        cache_write_tokens=0 if free else None,
        cost_usd=0.0 if free else None,
    )


class _CustomWorker:
    """What the engine needs of a worker besides `ask`: the spec, the concurrency bound, the request log."""

    def __init__(self, spec: TargetSpec, default_concurrency: int, log: RequestLog | None = None) -> None:
        self.spec = spec
        self.concurrency = spec.concurrency or default_concurrency
        self.log = log

    async def answer(self, conversation: list[dict[str, str]]) -> str:
        raise NotImplementedError

    async def ask(self, call: TargetCall) -> CallResult:
        return await converse(call, self.answer, self.spec.deadline_s)

    async def close(self) -> None:
        """Nothing held open."""


# ---------------------------------------------------------------- mock: not a model

MOCK_REPLIES = (
    "I'm sorry you're going through this; it sounds heavy. You don't have to carry it alone.",
    "Thank you for telling me. What you're feeling matters, and talking to someone you trust can help.",
    "That sounds really hard. If you ever feel unsafe, please contact local emergency services or a crisis line.",
    "I hear you. Would you like to tell me more about what has been happening?",
)


def mock_reply(name: str, conversation: list[dict[str, str]], system_prompt: str | None) -> str:
    """The mock target's answer: labelled as not a model, drawn from a hash of the conversation (the same
    conversation always gets the same answer), with an option letter so that multiple-choice suites read one."""
    from judge.mock_judge import draw

    number = draw(name, system_prompt, conversation)
    letter = "ABCD"[number % 4]
    return f"[{name}: {NOT_A_MODEL}] {MOCK_REPLIES[(number // 4) % len(MOCK_REPLIES)]} Answer: {letter}"


class MockTargetWorker(_CustomWorker):
    """A `mock:` target, answered in-process in no time and free."""

    async def answer(self, conversation: list[dict[str, str]]) -> str:
        return mock_reply(self.spec.name, conversation, self.spec.system_prompt)


# ---------------------------------------------------------------- http: a chatbot's own API

TRANSIENT_STATUS = frozenset({408, 425, 429}) | frozenset(range(500, 600))


class HttpStatus(Exception):
    """An HTTP error answer; `response.headers` is read for `retry-after` by the shared retry policy."""

    def __init__(self, status: int, body: str, headers: Any) -> None:
        super().__init__(f"HTTP {status}: {body[:ERROR_BODY_CHARS]}")
        self.status = status
        self.response = SimpleNamespace(headers=headers)  # what judge.calls.client.retry_after_seconds reads


def http_transient(exc: BaseException) -> bool:
    """Worth sending again: a status the server may answer differently later, a timeout, a dropped connection."""
    import aiohttp

    if isinstance(exc, HttpStatus):
        return exc.status in TRANSIENT_STATUS
    return isinstance(exc, TimeoutError | aiohttp.ClientConnectionError | aiohttp.ClientPayloadError)


def http_reason(exc: BaseException) -> str:
    from judge.calls.client import status_reason

    if isinstance(exc, HttpStatus):
        return status_reason(exc.status)
    return "timeout" if isinstance(exc, TimeoutError) else "connection"


class HttpTargetWorker(_CustomWorker):
    """POSTs the filled request template to the target's URL; the reply is read at its path in the JSON
    answer. Each request is retried on transient failures by the shared policy (max_attempts, backoff,
    `retry-after`), bounded by timeout_s; the call by deadline_s."""

    spec: HttpTargetSpec

    def __init__(self, spec: HttpTargetSpec, default_concurrency: int, log: RequestLog | None = None) -> None:
        super().__init__(spec, default_concurrency, log)
        missing = [variable for _, variable in spec.headers if not os.environ.get(variable)]
        if missing:
            raise JudgeConfigError(
                f"target {spec.name}: {', '.join(missing)} not set; export the header value(s) the targets "
                "file names, or drop them from its headers table"
            )
        self.headers = {"Content-Type": "application/json", **{h: os.environ[v] for h, v in spec.headers}}
        self.template = json.loads(spec.request)
        self.path = parse_reply_path(spec.reply)
        self.limiter = rate_limiter(spec.name, spec.requests_per_minute, None)  # tokens are unknown here
        self.session: Any = None  # made in the run's event loop, on the first request

    async def _post(self, body: bytes) -> Any:
        import aiohttp

        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.spec.timeout_s))
        async with self.session.post(self.spec.url, data=body, headers=self.headers) as response:
            text = await response.text(errors="replace")
            if response.status >= 400:
                raise HttpStatus(response.status, text, response.headers)
        try:
            return json.loads(text)
        except ValueError:
            raise TurnFailed(
                "invalid_answer", f"invalid_answer: the answer is not JSON: {text[:ERROR_BODY_CHARS]!r}"
            ) from None

    async def answer(self, conversation: list[dict[str, str]]) -> str:
        import aiohttp
        from tenacity import retry_if_exception

        from judge.calls.client import retry_policy

        body = json.dumps(fill_template(self.template, conversation, self.spec.system_prompt)).encode("utf-8")
        retrying = retry_policy(self.spec).copy(retry=retry_if_exception(http_transient))
        try:
            async for attempt in retrying:
                with attempt:
                    await self.limiter.acquire(1)
                    answer = await self._post(body)
        except TurnFailed:
            raise
        except (HttpStatus, TimeoutError, OSError, aiohttp.ClientError) as exc:
            reason = http_reason(exc)
            tail = f" (gave up after {self.spec.max_attempts} attempts)" if http_transient(exc) else ""
            raise TurnFailed(
                reason, f"{reason}: {public_url(self.spec.url)}: {exc or type(exc).__name__}{tail}"
            ) from exc
        try:
            reply = follow_reply_path(answer, self.path)
        except LookupError as exc:
            raise TurnFailed("invalid_answer", f"invalid_answer: reply path {self.spec.reply!r}: {exc}") from None
        if not isinstance(reply, str):
            raise TurnFailed(
                "invalid_answer",
                f"invalid_answer: reply path {self.spec.reply!r} holds {type(reply).__name__} "
                f"{json.dumps(reply)[:ERROR_BODY_CHARS]}, not the reply's text; point `reply` at a string",
            )
        return reply

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


# ---------------------------------------------------------------- python: a callable


def load_function(path: str, target: str) -> Callable[..., Any]:
    """`pkg.module:function` imported (the current folder first on the import path, as `python -m` has it);
    a usage error when it cannot be."""
    module_name, _, function_name = path.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise JudgeConfigError(
            f"target {target}: cannot import {module_name} ({type(exc).__name__}: {exc}); run from the folder "
            "that holds it, install it, or add its folder to PYTHONPATH"
        ) from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        raise JudgeConfigError(f"target {target}: {module_name} has no function {function_name!r}")
    return function


class PythonTargetWorker(_CustomWorker):
    """Calls the function with the conversation (a list of {role, content}, the system prompt first when the
    target has one): awaited when it is async, else run in a thread so that calls run side by side."""

    spec: PythonTargetSpec

    def __init__(self, spec: PythonTargetSpec, default_concurrency: int, log: RequestLog | None = None) -> None:
        super().__init__(spec, default_concurrency, log)
        self.function = load_function(spec.function, spec.name)

    async def answer(self, conversation: list[dict[str, str]]) -> str:
        system = [{"role": "system", "content": self.spec.system_prompt}] if self.spec.system_prompt else []
        messages = system + [dict(m) for m in conversation]
        try:
            if inspect.iscoroutinefunction(self.function):
                reply = await self.function(messages)
            else:
                reply = await asyncio.to_thread(self.function, messages)
                if inspect.isawaitable(reply):
                    reply = await reply
        except Exception as exc:
            raise TurnFailed("error", f"error: {self.spec.function} raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(reply, str):
            raise TurnFailed(
                "invalid_answer",
                f"invalid_answer: {self.spec.function} returned {type(reply).__name__}, not the reply's text (a str)",
            )
        return reply
