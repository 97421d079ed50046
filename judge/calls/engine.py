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
import os
import time
from array import array
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, overload

from judge.calls.cache import AnswerCache, claim_holder
from judge.errors import Interrupted
from judge.rundir import json_line, parse_jsonl

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

    call: Call
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
    lines: str = ""  # the same rows as JSONL text, for the journal
    span: tuple[int, int] | None = None  # where a resumed call's lines already lie in the journal

    @property
    def ok(self) -> bool:
        return self.failure_reason is None


class CallKind(Protocol):
    """How one kind of call is journalled and cached."""

    def rows(self, result: CallResult) -> list[dict[str, Any]]:
        """The journal lines of a finished call."""

    def cache_record(self, result: CallResult) -> dict[str, Any]:
        """The part worth caching: answers and usage, nothing run-specific."""

    def from_record(self, call: Call, record: dict[str, Any], *, cached: bool, resumed: bool) -> CallResult:
        """A result rebuilt from a cache record (or a journal's rows turned into one)."""

    def journal_identity(self, row: dict[str, Any]) -> tuple[Hashable, str] | None:
        """(call id, request key) of an answered journal row; None for a failed or unreadable row."""

    def record_from_rows(self, call: Call, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
        """A cache-shaped record from a call's journal rows; None when the rows are incomplete."""


class Worker(Protocol):
    concurrency: int

    async def ask(self, call: Call) -> CallResult: ...

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


class Budget(Protocol):
    """Where a worker takes its request and token budget from: its own `RateLimiter`, or a budget shared by
    every process of a cluster (`judge.distributed`: one Ray actor holds the limiters and hands out budget)."""

    async def acquire(self, tokens: int) -> None: ...

    def settle(self, estimated: int, actual: int) -> None: ...


SharedBudgets = Callable[[str, float | None, float | None], Budget]  # (worker name, rpm, tpm) → its budget
_shared_budgets: SharedBudgets | None = None


def share_budgets(source: SharedBudgets | None) -> None:
    """Make the limiters of workers built after this draw from `source` (None: each process its own again).
    A process-wide setting: a process of a cluster runs one shard at a time, and its workers are built for it."""
    global _shared_budgets
    _shared_budgets = source


def rate_limiter(name: str, rpm: float | None, tpm: float | None) -> Budget:
    """The budget of worker `name` (a judge or target) with its per-minute limits: a shared one when
    `share_budgets` named a source and the worker has limits, else a `RateLimiter` of this process."""
    if _shared_budgets is not None and (rpm or tpm):
        return _shared_budgets(name, rpm, tpm)
    return RateLimiter(rpm, tpm)


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


Span = tuple[int, int]  # (byte offset, byte length) of a call's lines in a journal


class Journal:
    """A run's journal file: each finished call's lines appended at once, and where they went returned.

    Calls finish in any order; the final file is written in plan order by reading each call's span back
    (see `Ledger`), so no row needs to stay in memory. Writes go straight to the file (no buffer to lose
    in a kill). A line an earlier process left unfinished is closed with a newline first, so the next
    call's lines never run into it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        self.size = os.fstat(self._fd).st_size
        if self.size and os.pread(self._fd, 1, self.size - 1) != b"\n":
            self._append(b"\n")

    def _append(self, data: bytes) -> Span:
        start, view = self.size, memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self.size += len(data)
        return start, len(data)

    def append(self, text: str) -> Span:
        return self._append(text.encode("utf-8"))

    def write(self, text: str) -> int:
        """Text-file style append, for code that only needs to add lines."""
        self.append(text)
        return len(text)

    def flush(self) -> None:
        """Nothing is buffered; kept so the journal can stand where a text file did."""

    def read(self, span: Span) -> bytes:
        return os.pread(self._fd, span[1], span[0])

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Ledger:
    """Where each planned call's lines lie in the journal, by plan index: 16 bytes a call."""

    def __init__(self, calls: int) -> None:
        self.starts = array("q", [-1]) * calls
        self.lengths = array("q", [0]) * calls

    def __len__(self) -> int:
        return len(self.starts)

    def record(self, index: int, span: Span) -> None:
        self.starts[index], self.lengths[index] = span

    def span(self, index: int) -> Span | None:
        start = self.starts[index]
        return None if start < 0 else (start, self.lengths[index])


def journal_rows(data: bytes, where: str = "the journal") -> list[dict[str, Any]]:
    """The rows of one call's journal lines (a JsonlError, a ValueError, for a line that is not an object)."""
    return [row for _, row in parse_jsonl(data, where)]


class JournalIndex(dict[Hashable, tuple[str, list[Span]]]):
    """Answered calls of an earlier run's journal: call identity → (request key, spans of its rows).

    Only positions are kept; a call's rows are read back from the file when the call is needed.
    """

    def __init__(self, path: Path | None = None) -> None:
        super().__init__()
        self.path = path
        self._fd = -1

    def rows(self, spans: Sequence[Span]) -> list[dict[str, Any]]:
        if self._fd < 0:
            assert self.path is not None
            self._fd = os.open(self.path, os.O_RDONLY)
        return [row for start, length in spans for row in journal_rows(os.pread(self._fd, length, start))]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def read_journal(path: Path, kind: CallKind) -> JournalIndex:
    """Answered calls already in an earlier run's journal, keyed by call identity.

    A line cut short by a kill is ignored; failed calls are not reused, so a restart asks them again.
    Rows of one call under an older request key give way to the newest key. Adjacent rows of a call
    share one span, so an index entry is a few numbers however many rows the call has.
    """
    calls = JournalIndex(path)
    if not path.exists():
        return calls
    interned: dict[Any, Any] = {}
    offset = 0
    with path.open("rb") as handle:
        for raw in handle:
            start, offset = offset, offset + len(raw)
            try:
                row = json.loads(raw)
                identity = kind.journal_identity(row) if isinstance(row, dict) else None
            except (ValueError, KeyError, TypeError):
                continue
            if identity is None:
                continue
            call_id, key = identity
            if isinstance(call_id, tuple):  # pillar, judge and role names repeat on every row: keep one copy
                call_id = tuple(interned.setdefault(part, part) for part in call_id)
            previous = calls.get(call_id)
            if previous is None or previous[0] != key:
                calls[call_id] = (key, [(start, len(raw))])
            elif (last := previous[1][-1])[0] + last[1] == start:
                previous[1][-1] = (last[0], last[1] + len(raw))
            else:
                previous[1].append((start, len(raw)))
    return calls


Built = TypeVar("Built")


class BuiltOnAccess(Sequence[Built]):
    """A sequence whose elements are built when asked for (from compact state) and not kept: subclasses
    give `__len__` and `_build(index)` for 0 <= index < len; negative indices and slices work as on a list."""

    def _build(self, index: int) -> Built:
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> Built: ...
    @overload
    def __getitem__(self, index: slice) -> list[Built]: ...
    def __getitem__(self, index: int | slice) -> Built | list[Built]:
        if isinstance(index, slice):
            return [self._build(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._build(index)


class IndexedCalls(Protocol):
    """A plan that answers questions about call `i` without building it (see `judge.plan.CallPlan`)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Call: ...

    def call_id(self, index: int) -> Hashable: ...

    def request_key(self, index: int) -> str: ...

    def worker_name(self, index: int) -> str: ...


class CallList:
    """A list of built calls seen as `IndexedCalls`."""

    def __init__(self, calls: Sequence[Call]) -> None:
        self.calls = calls

    def __len__(self) -> int:
        return len(self.calls)

    def __getitem__(self, index: int) -> Call:
        return self.calls[index]

    def call_id(self, index: int) -> Hashable:
        return self.calls[index].call_id

    def request_key(self, index: int) -> str:
        return self.calls[index].request_key

    def worker_name(self, index: int) -> str:
        return self.calls[index].worker_name


def indexed(calls: Sequence[Call] | IndexedCalls) -> IndexedCalls:
    return calls if hasattr(calls, "request_key") and hasattr(calls, "call_id") else CallList(calls)  # type: ignore[return-value]


ASK, RESUMED, CACHED = 0, 1, 2


class KnownResults(Sequence[CallResult | None]):
    """Results that need no request, one status byte a call; a result is rebuilt only when asked for
    (from the journal's rows, or from the cache), so a fully cached run holds none of them at once."""

    def __init__(
        self,
        calls: Sequence[Call] | IndexedCalls,
        resumed: JournalIndex | dict,
        cache: AnswerCache | None,
        kind: CallKind,
    ) -> None:
        self.calls, self.resumed, self.cache, self.kind = indexed(calls), resumed, cache, kind
        self.status = bytearray(len(self.calls))
        for index in range(len(self.calls)):
            key = self.calls.request_key(index)
            earlier = resumed.get(self.calls.call_id(index)) if resumed else None
            if earlier and earlier[0] == key and self._record_from_journal(index, earlier[1]) is not None:
                self.status[index] = RESUMED
            elif cache is not None and key in cache:
                self.status[index] = CACHED

    def _record_from_journal(self, index: int, spans: list[Span]) -> tuple[dict[str, Any], bool] | None:
        rows = self.resumed.rows(spans)  # type: ignore[union-attr]
        record = self.kind.record_from_rows(self.calls[index], rows)
        return None if record is None else (record, bool(rows[0]["cached"]))

    def __len__(self) -> int:
        return len(self.status)

    def count(self, status: int) -> int:  # type: ignore[override]
        return self.status.count(status)

    def __getitem__(self, index: int) -> CallResult | None:  # type: ignore[override]
        status = self.status[index]
        if status == ASK:
            return None
        call = self.calls[index]
        if status == RESUMED:
            spans = self.resumed[self.calls.call_id(index)][1]
            found = self._record_from_journal(index, spans)
            assert found is not None
            result = self.kind.from_record(call, found[0], cached=found[1], resumed=True)
            result.span = spans[0] if len(spans) == 1 else None
            return result
        record = self.cache.get(self.calls.request_key(index)) if self.cache is not None else None
        if record is None:
            raise RuntimeError(
                f"cache entry {self.calls.request_key(index)} disappeared during the run (was the cache cleared?); "
                "run the same command again: what was answered is kept in the out directory"
            )
        return self.kind.from_record(call, record, cached=True, resumed=False)


def known_results(
    calls: Sequence[Call] | IndexedCalls, resumed: JournalIndex | dict, cache: AnswerCache | None, kind: CallKind
) -> KnownResults:
    """Results that need no request: answered earlier in this run directory, or in the cache."""
    return KnownResults(calls, resumed, cache, kind)


# ---------------------------------------------------------------- the engine


STOP_GRACE_S = 30.0  # how long a stopped run waits for the calls in flight before it cancels them


class StopRequest:
    """A request to end a run early (SIGINT, SIGTERM; see `judge.calls.runner.run_calls`): no call starts
    after it, and the calls in flight finish and are journalled, so a resumed run pays for none of them
    again. After `grace_s`, or at a second request, the run's task is cancelled instead: an answer still
    on its way is then lost."""

    def __init__(self, task: asyncio.Task[Any], grace_s: float = STOP_GRACE_S) -> None:
        self.task = task
        self.grace_s = grace_s
        self.signal_number: int | None = None

    def request(self, signal_number: int) -> None:
        if self.signal_number is not None:
            self.task.cancel()
            return
        self.signal_number = signal_number
        asyncio.get_running_loop().call_later(self.grace_s, self.task.cancel)

    def check(self) -> None:
        """Raise Interrupted once a stop was requested."""
        if self.signal_number is not None:
            raise Interrupted(self.signal_number)


RUN_STOP: ContextVar[StopRequest | None] = ContextVar("run_stop", default=None)  # the run's, set by run_calls


class Engine:
    """Runs planned calls: what is known is written at once, the rest goes to the network per worker.

    Results are not kept: each is journalled (its span noted in the `Ledger` that `run` returns),
    cached, and handed to `on_result` for counts and progress, then dropped.
    """

    def __init__(
        self,
        workers: dict[str, Worker],
        cache: AnswerCache | None,
        journal: Journal | None,
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
        self._slots: dict[str, asyncio.Semaphore] = {}

    def _finish(self, result: CallResult, index: int, ledger: Ledger) -> None:
        """Journal and cache a finished call. Each is tried even when the other fails (a full disk under the
        out folder, or under the cache): an answer kept in either is not paid for again on resume."""
        result.rows = self.kind.rows(result)
        result.lines = "".join(map(json_line, result.rows))
        failures: list[Exception] = []
        if self.journal is not None:
            try:
                span = result.span if result.resumed else None
                if span is None or self.journal.read(span) != result.lines.encode("utf-8"):
                    span = self.journal.append(result.lines)  # a resumed call whose lines moved or differ
                ledger.record(index, span)
            except OSError as exc:
                failures.append(exc)
        if self.cache is not None and result.ok and not result.cached and not result.resumed:
            try:
                self.cache.set(result.call.request_key, self.kind.cache_record(result))
            except Exception as exc:  # CacheError, naming the cache folder
                failures.append(exc)
        if failures:
            raise failures[0]
        self.on_result(result)

    def _answered_elsewhere(self, call: Call) -> CallResult | None:
        """Another run sharing the cache may have answered this call since the plan was made."""
        if self.cache is None or (record := self.cache.get(call.request_key)) is None:
            return None
        return self.kind.from_record(call, record, cached=True, resumed=False)

    async def _ask_once(self, worker: Worker, call: Call) -> tuple[CallResult, bool]:
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

    async def run(self, calls: Sequence[Call] | IndexedCalls, known: Sequence[CallResult | None]) -> Ledger:
        plan = indexed(calls)
        ledger = Ledger(len(plan))
        pending: dict[str, array[int]] = {}
        for index in range(len(plan)):
            result = known[index]
            if result is None:
                pending.setdefault(plan.worker_name(index), array("q")).append(index)
            else:
                self._finish(result, index, ledger)

        stopped: list[Exception] = []  # what stopped the run (a full disk, a damaged cache): no call starts after it
        stop = RUN_STOP.get()

        async def drain(worker: Worker, indices: Iterator[int]) -> None:
            for index in indices:  # one iterator shared by the worker's tasks: each index is taken once
                if stopped or (stop is not None and stop.signal_number is not None):
                    return
                call = plan[index]
                result, claimed = await self._ask_once(worker, call)
                try:
                    self._finish(result, index, ledger)  # cached before the claim goes: a waiting run finds it
                    if claimed:
                        self._release(call.request_key)
                except Exception as exc:  # the calls in flight still finish and are kept where they can be
                    stopped.append(exc)
                    return

        tasks = []
        for name, indices in pending.items():
            shared = iter(indices)
            tasks += [
                drain(self.workers[name], shared) for _ in range(min(self.workers[name].concurrency, len(indices)))
            ]
        await asyncio.gather(*tasks)
        if stopped:
            raise stopped[0]  # the first failure; the others are its echoes (the same full disk)
        if stop is not None:
            stop.check()
        return ledger

    async def run_one(self, call: Call, index: int, ledger: Ledger, known: CallResult | None) -> CallResult:
        """One call of a plan that grows as answers come (a conversation's next turn depends on the last
        answer): a known result is journalled at once, otherwise the call is asked within its worker's
        concurrency, claimed, journalled and cached exactly as `run` does. Returns the result."""
        if known is not None:
            self._finish(known, index, ledger)
            return known
        worker = self.workers[call.worker_name]
        slot = self._slots.setdefault(call.worker_name, asyncio.Semaphore(worker.concurrency))
        async with slot:
            if (stop := RUN_STOP.get()) is not None:
                stop.check()  # no call starts after a stop request
            result, claimed = await self._ask_once(worker, call)
            self._finish(result, index, ledger)
            if claimed:
                self._release(call.request_key)
        return result

    async def close(self) -> None:
        """Close every worker's HTTP client inside the loop that used it."""
        await asyncio.gather(*(worker.close() for worker in self.workers.values()))
