"""The async scheduler: per-judge concurrency, client-side rate limits, retries, cache and journal.

Every finished call is appended to the run's journal (its `verdicts.jsonl`) before it is cached, so a
run killed at any moment and started again re-asks only calls that had no answer yet. Transient
failures (429, 5xx, 529 overloaded, timeouts, dropped connections) are retried with exponential backoff
and jitter, honouring `retry-after`, up to a number of attempts and a per-call deadline. Invalid
answers are re-asked by instructor with the validation error; when those re-asks run out the call is
recorded as failed, with the error and without a score.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import anthropic
import instructor
import openai
from instructor.core import InstructorRetryException
from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from judge.cache import VerdictCache
from judge.judges import JudgeSpec, build_client, request_kwargs
from judge.plan import PlannedCall
from judge.verdict import JUDGED_RESPONSE, CriterionOutcome, failed_outcomes, outcomes_from_verdict

RETRY_AFTER_CAP_S = 300.0


@dataclass
class CallResult:
    call: PlannedCall
    outcomes: list[CriterionOutcome]
    input_tokens: int | None
    output_tokens: int | None
    latency_s: float | None
    cached: bool
    failure_reason: str | None = None  # a short category for summaries; the detail is in outcomes
    resumed: bool = False
    rows: list[dict[str, Any]] = field(default_factory=list)  # verdict lines, filled once by the engine

    @property
    def ok(self) -> bool:
        return self.failure_reason is None


# ---------------------------------------------------------------- errors and retry policy


def _root_error(exc: BaseException) -> BaseException:
    """The API error behind instructor's wrapper, if there is one."""
    if isinstance(exc, InstructorRetryException) and exc.__cause__ is not None:
        return exc.__cause__
    return exc


_STATUS_REASONS = {401: "auth", 403: "auth", 404: "not_found", 408: "timeout", 429: "rate_limited", 529: "overloaded"}
_STATUS_ERRORS = (openai.APIStatusError, anthropic.APIStatusError)
_TIMEOUT_ERRORS = (openai.APITimeoutError, anthropic.APITimeoutError, TimeoutError)
_CONNECTION_ERRORS = (openai.APIConnectionError, anthropic.APIConnectionError)


def failure_reason(exc: BaseException) -> str:
    root = _root_error(exc)
    if isinstance(root, _STATUS_ERRORS):
        status = root.status_code
        return _STATUS_REASONS.get(status, "server_error" if status >= 500 else "bad_request")
    if isinstance(root, _TIMEOUT_ERRORS):
        return "timeout"
    if isinstance(root, _CONNECTION_ERRORS):
        return "connection"
    if isinstance(exc, InstructorRetryException) or isinstance(root, ValidationError | json.JSONDecodeError):
        return "invalid_answer"
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


# ---------------------------------------------------------------- rate limits


class RateLimiter:
    """Client-side requests-per-minute and tokens-per-minute budgets (token buckets, one minute deep)."""

    def __init__(self, rpm: float | None, tpm: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._rpm, self._tpm, self._clock = rpm, tpm, clock
        self._requests = rpm or 0.0
        self._tokens = tpm or 0.0
        self._last = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed, self._last = now - self._last, now
        if self._rpm:
            self._requests = min(self._rpm, self._requests + elapsed * self._rpm / 60)
        if self._tpm:
            self._tokens = min(self._tpm, self._tokens + elapsed * self._tpm / 60)

    def delay_for(self, tokens: int) -> float:
        """Seconds until one request of `tokens` tokens fits; 0 means it fits now."""
        self._refill()
        waits = [0.0]
        if self._rpm and self._requests < 1:
            waits.append((1 - self._requests) * 60 / self._rpm)
        if self._tpm:
            need = min(tokens, self._tpm)  # a request larger than the budget waits for a full bucket
            if self._tokens < need:
                waits.append((need - self._tokens) * 60 / self._tpm)
        return max(waits)

    async def acquire(self, tokens: int) -> None:
        async with self._lock:
            while (delay := self.delay_for(tokens)) > 0:
                await asyncio.sleep(delay)
            if self._rpm:
                self._requests -= 1
            if self._tpm:
                self._tokens -= min(tokens, self._tpm)

    def settle(self, estimated: int, actual: int) -> None:
        """Correct the token budget once the real usage of a request is known."""
        if self._tpm:
            self._tokens -= actual - min(estimated, self._tpm)


def estimate_input_tokens(call: PlannedCall) -> int:
    """Rough prompt size (4 characters a token) plus the schema; used for TPM limits and dry runs."""
    chars = sum(len(m.content) for m in call.messages) + call.context.schema_chars
    return chars // 4 + 1


def estimate_output_tokens(call: PlannedCall) -> int:
    return min(call.judge.max_tokens, 150 * len(call.rubric.criteria))


# ---------------------------------------------------------------- one judge's calls


def _usage(model: Any, completion: Any) -> tuple[int | None, int | None]:
    usage = getattr(model, "_total_usage", None) or getattr(completion, "usage", None)
    return _usage_numbers(usage)


def _usage_numbers(usage: Any) -> tuple[int | None, int | None]:
    if usage is None:
        return None, None
    if hasattr(usage, "input_tokens"):
        return usage.input_tokens, usage.output_tokens
    return getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)


class JudgeWorker:
    """Sends one judge's calls: its client, its concurrency bound and its rate limits."""

    def __init__(self, spec: JudgeSpec, default_concurrency: int) -> None:
        self.spec = spec
        self.client: instructor.AsyncInstructor = build_client(spec)
        self.concurrency = spec.concurrency or default_concurrency
        self.limiter = RateLimiter(spec.requests_per_minute, spec.tokens_per_minute)

    async def _ask_once(self, call: PlannedCall) -> tuple[Any, int | None, int | None]:
        estimate = estimate_input_tokens(call) + estimate_output_tokens(call)
        await self.limiter.acquire(estimate)
        token = JUDGED_RESPONSE.set(call.item.response)
        try:
            model, completion = await self.client.chat.completions.create_with_completion(
                response_model=call.context.model,
                messages=[m.as_dict() for m in call.messages],
                max_retries=self.spec.max_reasks,
                **request_kwargs(self.spec),
            )
        finally:
            JUDGED_RESPONSE.reset(token)
        input_tokens, output_tokens = _usage(model, completion)
        self.limiter.settle(estimate, (input_tokens or 0) + (output_tokens or 0))
        return model, input_tokens, output_tokens

    async def ask(self, call: PlannedCall) -> CallResult:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.spec.deadline_s):
                async for attempt in retry_policy(self.spec):
                    with attempt:
                        model, input_tokens, output_tokens = await self._ask_once(call)
        except Exception as exc:
            reason = "deadline" if isinstance(exc, TimeoutError) and not _is_sdk_timeout(exc) else failure_reason(exc)
            input_tokens, output_tokens = _failed_usage(exc)
            return CallResult(
                call,
                failed_outcomes(call.rubric, _describe(exc, reason, self.spec)),
                input_tokens,
                output_tokens,
                round(time.monotonic() - started, 4),
                cached=False,
                failure_reason=reason,
            )
        return CallResult(
            call,
            outcomes_from_verdict(call.rubric, model),
            input_tokens,
            output_tokens,
            round(time.monotonic() - started, 4),
            cached=False,
        )


def _is_sdk_timeout(exc: BaseException) -> bool:
    return isinstance(_root_error(exc), openai.APITimeoutError | anthropic.APITimeoutError)


def _failed_usage(exc: BaseException) -> tuple[int | None, int | None]:
    """Tokens spent on answers that never validated still cost money; count them."""
    if isinstance(exc, InstructorRetryException):
        return _usage_numbers(getattr(exc, "total_usage", None))
    return None, None


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
        attempts = getattr(exc, "n_attempts", None) or spec.max_reasks + 1
        return f"invalid answer after {attempts} attempt(s): {_validation_detail(root)}"
    if reason == "deadline":
        return f"no answer within the per-call deadline of {spec.deadline_s:g} s (deadline_s in judges.toml)"
    status = getattr(root, "status_code", None)
    prefix = f"HTTP {status} " if status else ""
    message = str(root) or type(root).__name__
    if is_transient(exc):
        return f"{reason}: {prefix}{message} (gave up after {spec.max_attempts} attempts)"
    return f"{reason}: {prefix}{message}"


# ---------------------------------------------------------------- journal and cache records


def call_record(result: CallResult) -> dict[str, Any]:
    """The part of a call result worth caching: answers and usage, nothing run-specific."""
    return {
        "outcomes": [o.as_dict() for o in result.outcomes],
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "latency_s": result.latency_s,
    }


def result_from_record(call: PlannedCall, record: dict[str, Any], *, cached: bool, resumed: bool) -> CallResult:
    return CallResult(
        call,
        [CriterionOutcome.from_dict(o) for o in record["outcomes"]],
        record["input_tokens"],
        record["output_tokens"],
        record["latency_s"],
        cached=cached,
        resumed=resumed,
    )


def split_evenly(total: int | None, parts: int) -> list[int | None]:
    """Share a call's tokens among its criterion rows so that the rows add up to the call exactly."""
    if total is None:
        return [None] * parts
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def verdict_rows(result: CallResult, self_family: bool) -> list[dict[str, Any]]:
    call = result.call
    n = len(result.outcomes)
    inputs = split_evenly(result.input_tokens, n)
    outputs = split_evenly(result.output_tokens, n)
    rows = []
    for outcome, input_tokens, output_tokens in zip(result.outcomes, inputs, outputs, strict=True):
        criterion = call.rubric.criterion(outcome.criterion)
        rows.append(
            {
                "item_id": call.item.id,
                "pillar": call.pillar,
                "criterion": outcome.criterion,
                "judge": call.judge.name,
                "provider": call.judge.provider,
                "model": call.judge.model,
                "role": call.role,
                "sample": call.sample,
                "status": outcome.status,
                "score": outcome.score,
                "rationale": outcome.rationale,
                "evidence": list(outcome.evidence),
                "error": outcome.error,
                "rubric_hash": call.rubric.content_hash,
                "criterion_hash": criterion.content_hash,
                "prompt_hash": call.prompt_hash,
                "request_key": call.request_key,
                "cached": result.cached,
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cost_usd": call.judge.cost_usd(input_tokens, output_tokens),
                "latency_s": result.latency_s,
                "target": call.item.target,
                "self_family": self_family,
                "meta": call.item.meta,
            }
        )
    return rows


def read_journal(path: Path) -> dict[tuple[str, str, str, str, int], tuple[str, list[dict[str, Any]]]]:
    """Complete, answered calls already in an earlier run's verdicts file, keyed by call identity.

    A line cut short by a kill is ignored; failed calls are not reused, so a restart asks them again.
    """
    calls: dict[tuple[str, str, str, str, int], tuple[str, list[dict[str, Any]]]] = {}
    if not path.exists():
        return calls
    with path.open("rb") as handle:
        for raw in handle:
            try:
                row = json.loads(raw)
                call_id = (row["item_id"], row["pillar"], row["judge"], row["role"], row["sample"])
                key = row["request_key"]
            except (ValueError, KeyError, TypeError):
                continue
            if row.get("status") == "failed":
                continue
            previous = calls.get(call_id)
            if previous is None or previous[0] != key:
                calls[call_id] = (key, [row])
            elif all(r["criterion"] != row["criterion"] for r in previous[1]):
                previous[1].append(row)
    return calls


def record_from_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "outcomes": [
            {k: row[k] for k in ("criterion", "status", "score", "rationale", "evidence", "error")} for row in rows
        ],
        "input_tokens": _sum_or_none(row["input_tokens"] for row in rows),
        "output_tokens": _sum_or_none(row["output_tokens"] for row in rows),
        "latency_s": rows[0]["latency_s"],
    }


def _sum_or_none(values: Iterable[int | None]) -> int | None:
    values = list(values)
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


# ---------------------------------------------------------------- the run


Resumed = dict[tuple[str, str, str, str, int], tuple[str, list[dict[str, Any]]]]


def known_results(calls: list[PlannedCall], resumed: Resumed, cache: VerdictCache | None) -> list[CallResult | None]:
    """Results that need no request: answered earlier in this run directory, or in the cache."""
    known: list[CallResult | None] = []
    for call in calls:
        earlier = resumed.get(call.call_id)
        order = [c.id for c in call.rubric.criteria]
        if earlier and earlier[0] == call.request_key and len(earlier[1]) == len(order):
            rows = sorted(earlier[1], key=lambda r: order.index(r["criterion"]))
            known.append(result_from_record(call, record_from_rows(rows), cached=rows[0]["cached"], resumed=True))
        elif cache is not None and (record := cache.get(call.request_key)) is not None:
            known.append(result_from_record(call, record, cached=True, resumed=False))
        else:
            known.append(None)
    return known


class Engine:
    """Runs planned calls: what is known is written at once, the rest goes to the network per judge."""

    def __init__(
        self,
        workers: dict[str, JudgeWorker],
        cache: VerdictCache | None,
        journal: TextIO | None,
        self_family: Callable[[PlannedCall], bool],
        on_result: Callable[[CallResult], None] = lambda result: None,
    ) -> None:
        self.workers = workers
        self.cache = cache
        self.journal = journal
        self.self_family = self_family
        self.on_result = on_result

    def _finish(self, result: CallResult) -> None:
        result.rows = verdict_rows(result, self.self_family(result.call))
        if self.journal is not None and not result.resumed:
            self.journal.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in result.rows))
            self.journal.flush()
        if self.cache is not None and result.ok and not result.cached and not result.resumed:
            self.cache.set(result.call.request_key, call_record(result))
        self.on_result(result)

    async def run(self, calls: list[PlannedCall], known: list[CallResult | None]) -> list[CallResult]:
        results = list(known)
        queues: dict[str, asyncio.Queue[int]] = {}
        for index, result in enumerate(results):
            if result is None:
                queues.setdefault(calls[index].judge.name, asyncio.Queue()).put_nowait(index)
            else:
                self._finish(result)

        async def drain(worker: JudgeWorker, queue: asyncio.Queue[int]) -> None:
            while not queue.empty():
                index = queue.get_nowait()
                result = await worker.ask(calls[index])
                results[index] = result
                self._finish(result)

        await asyncio.gather(
            *(
                drain(self.workers[name], queue)
                for name, queue in queues.items()
                for _ in range(min(self.workers[name].concurrency, queue.qsize()))
            )
        )
        return [r for r in results if r is not None]
