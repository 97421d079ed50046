"""The one engine for every kind of call: per-worker queues and concurrency, cache and journal.

A judge verdict and a target's answer are both "a request with a content-derived key that may be
cached, rate-limited, retried and journalled". The engine knows only that much, through two small
protocols: a `CallKind` says how a finished call becomes journal rows and a cache record (and back),
and a `Worker` sends one call (the network side, in `client.py`). Every finished call is appended to
the run's journal before it is cached, so a run killed at any moment and started again asks only
the calls that had no answer yet. Runs sharing one cache claim each call in it before asking, so a
call is paid for once however many runs need it. This module imports no SDK.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from judge.cache import VerdictCache, claim_holder

CLAIM_TTL_S = 600.0  # a claim's life when the worker names no per-call deadline
CLAIM_WAIT_S = 0.05  # how soon a run waiting on another's claim first looks for the answer again
CLAIM_WAIT_MAX_S = 2.0  # and how seldom at most (another run's batch may take hours)


class Call(Protocol):
    """What the engine needs of a planned call."""

    @property
    def call_id(self) -> Hashable:
        """Identity within a run, independent of content (which item, which worker, which sample)."""

    @property
    def request_key(self) -> str:
        """The content-derived cache key."""

    @property
    def worker_name(self) -> str:
        """Which worker (judge or target) sends it."""


@dataclass
class CallResult:
    """A finished call. `payload` is the kind's answer (criterion outcomes, or a target's turns)."""

    call: Any
    payload: Any
    input_tokens: int | None
    output_tokens: int | None
    latency_s: float | None
    cached: bool
    failure_reason: str | None = None  # a short category for summaries; the detail is in the payload
    resumed: bool = False
    requests: int = 0  # HTTP requests this process sent for the call (0 when known or replayed)
    cached_input_tokens: int | None = 0  # part of input_tokens read from the provider's prompt cache
    cache_write_tokens: int | None = 0  # part of input_tokens written to it (Anthropic)
    cost_usd: float | None = None  # at the rates each request was billed (live, batch, cache reads/writes)
    batched: bool = False  # the first answer came from a provider batch
    rows: list[dict[str, Any]] = field(default_factory=list)  # journal rows, filled once by the engine
    lines: str = ""  # the same rows as JSONL text, for the journal and the final output file

    @property
    def ok(self) -> bool:
        return self.failure_reason is None


class CallKind(Protocol):
    """How one kind of call is journalled and cached."""

    def rows(self, result: CallResult) -> list[dict[str, Any]]:
        """The journal lines of a finished call."""

    def cache_record(self, result: CallResult) -> dict[str, Any]:
        """The part worth caching: answers and usage, nothing run-specific."""

    def from_record(self, call: Any, record: dict[str, Any], *, cached: bool, resumed: bool) -> CallResult:
        """A result rebuilt from a cache record (or a journal's rows turned into one)."""

    def journal_identity(self, row: dict[str, Any]) -> tuple[Hashable, str] | None:
        """(call id, request key) of an answered journal row; None for a failed or unreadable row."""

    def record_from_rows(self, call: Any, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
        """A cache-shaped record from a call's journal rows; None when the rows are incomplete."""


class Worker(Protocol):
    concurrency: int

    async def ask(self, call: Any) -> CallResult: ...

    async def close(self) -> None: ...


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


# ---------------------------------------------------------------- token arithmetic shared by the kinds


def split_evenly(total: int | None, parts: int) -> list[int | None]:
    """Share a call's tokens among its rows so that the rows add up to the call exactly."""
    if total is None:
        return [None] * parts
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def sum_or_none(values: Iterable[int | None]) -> int | None:
    """The sum, or None (unknown) as soon as one value is unknown: a partial sum would understate cost."""
    values = list(values)
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


# ---------------------------------------------------------------- journal


Resumed = dict[Hashable, tuple[str, list[dict[str, Any]]]]


def read_journal(path: Path, kind: CallKind) -> Resumed:
    """Answered calls already in an earlier run's journal, keyed by call identity.

    A line cut short by a kill is ignored; failed calls are not reused, so a restart asks them again.
    Rows of one call under an older request key give way to the newest key.
    """
    calls: Resumed = {}
    if not path.exists():
        return calls
    with path.open("rb") as handle:
        for raw in handle:
            try:
                row = json.loads(raw)
                identity = kind.journal_identity(row) if isinstance(row, dict) else None
            except (ValueError, KeyError, TypeError):
                continue
            if identity is None:
                continue
            call_id, key = identity
            previous = calls.get(call_id)
            if previous is None or previous[0] != key:
                calls[call_id] = (key, [row])
            else:
                previous[1].append(row)
    return calls


def known_results(
    calls: Sequence[Any], resumed: Resumed, cache: VerdictCache | None, kind: CallKind
) -> list[CallResult | None]:
    """Results that need no request: answered earlier in this run directory, or in the cache."""
    known: list[CallResult | None] = []
    for call in calls:
        earlier = resumed.get(call.call_id)
        record = None
        if earlier and earlier[0] == call.request_key:
            record = kind.record_from_rows(call, earlier[1])
        if record is not None:
            assert earlier is not None
            known.append(kind.from_record(call, record, cached=bool(earlier[1][0]["cached"]), resumed=True))
        elif cache is not None and (record := cache.get(call.request_key)) is not None:
            known.append(kind.from_record(call, record, cached=True, resumed=False))
        else:
            known.append(None)
    return known


# ---------------------------------------------------------------- the engine


class Engine:
    """Runs planned calls: what is known is written at once, the rest goes to the network per worker."""

    def __init__(
        self,
        workers: dict[str, Worker],
        cache: VerdictCache | None,
        journal: TextIO | None,
        kind: CallKind,
        on_result: Callable[[CallResult], None] = lambda result: None,
    ) -> None:
        self.workers = workers
        self.cache = cache
        self.journal = journal
        self.kind = kind
        self.on_result = on_result
        self._holder = claim_holder()
        self._asking: set[str] = set()

    def _finish(self, result: CallResult) -> None:
        result.rows = self.kind.rows(result)
        result.lines = "".join(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n" for row in result.rows)
        if self.journal is not None and not result.resumed:
            self.journal.write(result.lines)
            self.journal.flush()
        if self.cache is not None and result.ok and not result.cached and not result.resumed:
            self.cache.set(result.call.request_key, self.kind.cache_record(result))
        self.on_result(result)

    def _answered_elsewhere(self, call: Any) -> CallResult | None:
        """Another run sharing the cache may have answered this call since the plan was made."""
        if self.cache is None or (record := self.cache.get(call.request_key)) is None:
            return None
        return self.kind.from_record(call, record, cached=True, resumed=False)

    async def _ask_once(self, worker: Worker, call: Any) -> tuple[CallResult, bool]:
        """(the call's result, whether this run claimed it): runs sharing a cache claim a call before
        asking it, so that while one asks, the others wait for its answer instead of paying again."""
        wait = CLAIM_WAIT_S
        while True:
            if (answered := self._answered_elsewhere(call)) is not None:
                return answered, False
            if self.cache is None:
                return await worker.ask(call), False
            ttl = getattr(getattr(worker, "spec", None), "deadline_s", CLAIM_TTL_S) + 60
            key = call.request_key
            if key not in self._asking and self.cache.claim(key, self._holder, ttl):
                if (answered := self._answered_elsewhere(call)) is not None:  # its holder just finished
                    self.cache.release(key, self._holder)
                    return answered, False
                self._asking.add(key)  # an identical call of this run waits for this one's answer too
                try:
                    return await worker.ask(call), True
                except BaseException:
                    self._release(key)
                    raise
            await asyncio.sleep(wait)
            wait = min(CLAIM_WAIT_MAX_S, wait * 1.5)

    def _release(self, key: str) -> None:
        assert self.cache is not None
        self._asking.discard(key)
        self.cache.release(key, self._holder)

    async def run(self, calls: Sequence[Any], known: Sequence[CallResult | None]) -> list[CallResult]:
        results = list(known)
        queues: dict[str, asyncio.Queue[int]] = {}
        for index, result in enumerate(results):
            if result is None:
                queues.setdefault(calls[index].worker_name, asyncio.Queue()).put_nowait(index)
            else:
                self._finish(result)

        async def drain(worker: Worker, queue: asyncio.Queue[int]) -> None:
            while not queue.empty():
                index = queue.get_nowait()
                result, claimed = await self._ask_once(worker, calls[index])
                results[index] = result
                self._finish(result)  # cached before the claim goes: a waiting run finds the answer
                if claimed:
                    self._release(calls[index].request_key)

        await asyncio.gather(
            *(
                drain(self.workers[name], queue)
                for name, queue in queues.items()
                for _ in range(min(self.workers[name].concurrency, queue.qsize()))
            )
        )
        return [r for r in results if r is not None]

    async def close(self) -> None:
        """Close every worker's HTTP client inside the loop that used it."""
        await asyncio.gather(*(worker.close() for worker in self.workers.values()))
