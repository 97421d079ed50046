"""The async scheduler: per-judge queues and concurrency, client-side rate limits, cache and journal.

Every finished call is appended to the run's journal (its `verdicts.jsonl`) before it is cached, so a
run killed at any moment and started again re-asks only calls that had no answer yet. Sending a call,
retrying it and re-asking an invalid answer is the judge worker's business (`client.py`); this module
imports no SDK, so a run whose every call is known starts without loading them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from judge.cache import VerdictCache
from judge.plan import PlannedCall
from judge.verdict import CriterionOutcome

if TYPE_CHECKING:
    from judge.client import JudgeWorker


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
    lines: str = ""  # the same rows as JSONL text, for the journal and the final verdicts.jsonl

    @property
    def ok(self) -> bool:
        return self.failure_reason is None


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
        result.lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in result.rows)
        if self.journal is not None and not result.resumed:
            self.journal.write(result.lines)
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

    async def close(self) -> None:
        """Close every judge's HTTP client inside the loop that used it."""
        await asyncio.gather(*(worker.client.close() for worker in self.workers.values()))
