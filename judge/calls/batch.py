"""`--batch`: the first request of every call still to ask goes through the provider's batch API.

Before the engine runs a set of calls, `BatchRound.collect`:
1. leaves out every call already answered (journal, cache: cached calls never go into a batch), every
   call whose first answer is already in the request log, every call sitting in a batch that this
   out directory submitted earlier and has not collected yet, and (with a cache) every call another
   run sharing the cache has claimed: this run's engine waits for that run's answer;
2. submits the rest, one batch per judge or target (split at the provider's size limit), with the
   request body a live call would send and the call's content key as `custom_id`; each batch id is
   appended to OUT/batches.jsonl (and synced to disk) as soon as the provider returns it;
3. polls every open batch of this out directory, with a progress bar, until all have ended;
4. writes each answer (or per-request error) into the run's request log under the call's first
   request, and marks the batch collected in OUT/batches.jsonl.

Then the engine runs as it always does: each call's worker replays its first answer from the request
log (no request, billed at the batch rate), validates it exactly like a live answer, re-asks live when
it fails validation (bounded by `max_reasks`), and asks a target's follow-up turns live (each depends on
the previous answer, so a batch per turn would multiply the wait by the number of turns). An entry the
batch failed (errored, expired, canceled) fails its call with the reason a live request failing the same
way would get; running the command again asks it anew.

A run killed at any point resumes: open batches are polled again, never resubmitted; collected answers
are replayed from the request log. The one window left is between the provider creating a batch and
its id reaching OUT/batches.jsonl (one HTTP answer): a kill exactly there submits those calls again.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from judge.calls.cache import AnswerCache, claim_holder
from judge.calls.engine import ASK, RUN_STOP, CallKind, CallResult, Engine, Ledger, indexed
from judge.calls.request_log import RequestLog
from judge.calls.runner import CallRunFiles, RunProgress
from judge.errors import UsageError
from judge.judges import BATCH_PROVIDERS

BATCHES_NAME = "batches.jsonl"
# The providers' documented limits on requests per batch (OpenAI: 50,000 per input file; Anthropic:
# 100,000 per Message Batch); both also cap the size in bytes, which these judge prompts stay under.
MAX_REQUESTS = {"openai": 50_000, "anthropic": 100_000}
DEFAULT_POLL_S = 30.0
BATCH_CLAIM_TTL_S = 25 * 3600.0  # a batch may take the providers' whole 24-hour window


def first_request_key(request_key: str) -> str:
    """The request-log key of a call's first request (see `judge.calls.client.CallRequests`)."""
    return f"{request_key}:0"


@dataclass
class JournalledBatch:
    batch_id: str
    worker: str
    custom_ids: list[str]
    collected: bool = False


@dataclass
class BatchJournal:
    """OUT/batches.jsonl: one line per submitted batch, one more once its results are collected."""

    path: Path
    batches: dict[str, JournalledBatch] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> BatchJournal:
        journal = cls(path)
        if not path.exists():
            return journal
        for raw in path.read_bytes().splitlines():
            try:
                line = json.loads(raw)
                if line["event"] == "submitted":
                    journal.batches[line["batch_id"]] = JournalledBatch(
                        line["batch_id"], line["worker"], list(line["custom_ids"])
                    )
                elif line["event"] == "collected" and line["batch_id"] in journal.batches:
                    journal.batches[line["batch_id"]].collected = True
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a kill
        return journal

    def open_batches(self) -> list[JournalledBatch]:
        return [b for b in self.batches.values() if not b.collected]

    def in_flight(self) -> set[str]:
        return {cid for batch in self.open_batches() for cid in batch.custom_ids}

    def append(self, line: dict[str, Any]) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def submitted(self, batch: JournalledBatch, provider: str) -> None:
        self.append(
            {
                "event": "submitted",
                "batch_id": batch.batch_id,
                "worker": batch.worker,
                "provider": provider,
                "custom_ids": batch.custom_ids,
            }
        )
        self.batches[batch.batch_id] = batch

    def collected(self, batch: JournalledBatch, status: str) -> None:
        self.append({"event": "collected", "batch_id": batch.batch_id, "status": status})
        batch.collected = True


def requests_to_submit(
    calls: Sequence[Any],
    known: Sequence[CallResult | None],
    in_flight: set[str],
    log: RequestLog,
    cache: AnswerCache | None,
    holder: str = "",
) -> dict[str, list[Any]]:
    """Per worker, one call per content key still needing its first answer, in plan order. With a
    cache, each is claimed for this run first: a call another run is asking (live or in its own batch)
    is left to it, and this run's engine waits for that answer instead of paying again."""
    chosen: dict[str, list[Any]] = {}
    seen: set[str] = set()
    plan = indexed(calls)
    status = getattr(known, "status", None)  # a lazy KnownResults says what is known without rebuilding it
    for index in range(len(plan)):
        if (known[index] is not None) if status is None else status[index] != ASK:
            continue
        key = plan.request_key(index)
        if key in seen or key in in_flight:
            continue
        call = plan[index]
        seen.add(key)
        if log.get(first_request_key(key)) is not None or (cache is not None and key in cache):
            continue
        if cache is not None and not cache.claim(key, holder, BATCH_CLAIM_TTL_S):
            continue
        chosen.setdefault(call.worker_name, []).append(call)
    return chosen


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def batchable(worker: Any) -> bool:
    """Whether a worker's provider has a batch API that `BatchAPI` drives (a judge or target with replica
    base URLs is a server of one's own: its requests are spread live over the replicas)."""
    spec = getattr(worker, "spec", None)
    return spec is not None and spec.provider in BATCH_PROVIDERS and not spec.base_urls


def refuse_unbatchable(workers: dict[str, Any]) -> None:
    """`--batch` with a judge or target whose provider has no batch API here: stop before anything is sent."""
    others = sorted(name for name, worker in workers.items() if not batchable(worker))
    if others:
        raise UsageError(
            f"--batch drives OpenAI's and Anthropic's batch APIs only; {', '.join(others)} use another provider "
            "or replica base URLs: "
            "run them without --batch (in another out folder, or after this run)"
        )


class BatchRound:
    """Submits, polls and collects the provider batches of one out directory (see the module text)."""

    def __init__(
        self,
        out: Path,
        log: RequestLog,
        progress: RunProgress,
        cache: AnswerCache | None,
        poll_s: float = DEFAULT_POLL_S,
        *,
        submit: bool = True,
    ) -> None:
        self.journal = BatchJournal.read(out / BATCHES_NAME)
        self.submit = submit
        self.log = log
        self.progress = progress
        self.cache = cache
        self.poll_s = poll_s

    async def collect(self, calls: Sequence[Any], known: Sequence[CallResult | None], workers: dict[str, Any]) -> None:
        from judge.calls.client import BATCH_ANSWER, BATCH_ERROR, BatchAPI

        # A worker with no batch API (a mock, an `http:` or `python:` target) asks its calls live; an LLM
        # judge or target whose provider has none here stops the run before anything is sent.
        if self.submit:
            refuse_unbatchable({name: w for name, w in workers.items() if hasattr(w, "batch_api")})
        apis: dict[str, BatchAPI] = {name: w.batch_api() for name, w in workers.items() if batchable(w)}
        in_flight = self.journal.in_flight()
        if self.cache is not None:  # this run holds the calls of its open batches, resumed or not
            for key in in_flight:
                self.cache.claim(key, claim_holder(), BATCH_CLAIM_TTL_S)
        todo = requests_to_submit(calls, known, in_flight, self.log, self.cache, claim_holder()) if self.submit else {}
        for name, pending in todo.items():
            if name not in apis:
                continue
            api = apis[name]
            for chunk in chunks(pending, MAX_REQUESTS[api.spec.provider]):
                bodies = [(call.request_key, workers[name].first_request(call)) for call in chunk]
                batch_id = await provider_step(name, "refused the batch", api.submit(bodies))
                self.journal.submitted(JournalledBatch(batch_id, name, [cid for cid, _ in bodies]), api.spec.provider)
        # An open batch of a judge with nothing left to ask (its calls were answered since, e.g. by a run
        # sharing the cache) has no client here and is left alone: nothing in it is needed any more.
        waiting = [b for b in self.journal.open_batches() if b.worker in apis]
        if not waiting:
            return
        total = sum(len(b.custom_ids) for b in waiting)
        task = self.progress.add_stage("batch (waiting for the provider)", total)
        done: dict[str, int] = {}
        while waiting:
            still = []
            for batch in waiting:
                api = apis[batch.worker]
                state = await provider_step(
                    batch.worker, f"did not report batch {batch.batch_id}", api.poll(batch.batch_id)
                )
                done[batch.batch_id] = state.done
                if state.ended:
                    what = f"did not return the results of batch {batch.batch_id}"
                    entries = await provider_step(batch.worker, what, api.results(batch.batch_id))
                    self.log.offer(answers_for(batch, entries, state.status, BATCH_ANSWER, BATCH_ERROR))
                    self.journal.collected(batch, state.status)
                    done[batch.batch_id] = len(batch.custom_ids)
                else:
                    still.append(batch)
            self.progress.set_stage(task, sum(done.values()))
            waiting = still
            if waiting and (stop := RUN_STOP.get()) is not None:
                stop.check()  # a stopped run leaves its batches open: the same command collects them later
            if waiting:
                await asyncio.sleep(self.poll_s)


async def provider_step(worker: str, what: str, step: Awaitable[Any]) -> Any:
    """One batch-API step; a provider error (after its retries) stops the run with what to do."""
    from judge.calls.client import failure_reason

    try:
        return await step
    except Exception as exc:
        reason = failure_reason(exc)
        if reason == "error":
            raise
        status = getattr(exc, "status_code", None)
        raise UsageError(
            f"{worker}: the provider {what} ({reason}{f', HTTP {status}' if status else ''}: {exc}). "
            f"Batches already submitted are listed in {BATCHES_NAME} and are collected when the command runs "
            "again; a server without batch endpoints (most OpenAI-compatible servers) is asked live without "
            "`batch=True`."
        ) from exc


def answers_for(
    batch: JournalledBatch, entries: Sequence[Any], status: str, answer_key: str, error_key: str
) -> dict[str, dict[str, Any]]:
    """Request-log entries for every call of an ended batch: its answer, its error, or (for a request
    the provider never reports) the batch's own end: expired, canceled or failed."""
    by_id = {entry.custom_id: entry for entry in entries}
    missing_reason = {"expired": "expired", "cancelled": "canceled", "canceled": "canceled"}.get(status, "bad_request")
    logged: dict[str, dict[str, Any]] = {}
    for custom_id in batch.custom_ids:
        entry = by_id.get(custom_id)
        key = first_request_key(custom_id)
        if entry is None:
            message = f"batch {batch.batch_id} ended ({status}) without an answer to this request"
            logged[key] = {error_key: {"reason": missing_reason, "message": message}}
        elif entry.answer is not None:
            logged[key] = {answer_key: entry.answer}
        else:
            logged[key] = {error_key: {"reason": entry.reason, "message": entry.message}}
    return logged


class BatchingEngine(Engine):
    """The engine, with each set of calls' first requests collected from provider batches beforehand."""

    def __init__(self, *args: Any, batches: BatchRound, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches = batches

    async def run(self, calls: Sequence[Any], known: Sequence[CallResult | None]) -> Ledger:
        await self.batches.collect(calls, known, self.workers)
        return await super().run(calls, known)


class BatchSettings(Protocol):
    """What `make_engine` reads of a run's settings (`judge.settings.RunSettings`)."""

    batch: bool
    batch_poll_s: float


def make_engine(
    settings: BatchSettings,
    out: Path,
    files: CallRunFiles,
    progress: RunProgress,
    workers: dict[str, Any],
    cache: AnswerCache | None,
    kind: CallKind,
    on_result: Callable[[CallResult], None] | None = None,
) -> Engine:
    """The engine of a run (journal, progress): the plain one, or with `--batch` one that collects the
    first answers from provider batches before each set of calls. A run without `--batch` in an out
    directory that still has batches open (an earlier `--batch` run was killed) collects those first
    and submits nothing: their calls are paid for already."""
    if not settings.batch and not BatchJournal.read(out / BATCHES_NAME).open_batches():
        return Engine(workers, cache, files.journal, kind, on_result or progress.update)
    batches = BatchRound(out, files.log, progress, cache, settings.batch_poll_s, submit=settings.batch)
    return BatchingEngine(workers, cache, files.journal, kind, on_result or progress.update, batches=batches)
