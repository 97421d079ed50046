"""What every run of calls into an out directory shares, judge runs (`score`) and target runs (`respond`).

- one run at a time per out directory (a lock file naming the holder);
- an out directory keeps one run: reusing it for other inputs is refused unless `overwrite`;
- the journal is appended as calls finish and rewritten in plan order at the end, so a resumed run ends
  with the same file as an uninterrupted one; the request log keeps mid-call answers until then;
- a progress bar on stderr; call counts, tokens and cost of the whole run (earlier processes of a
  resumed run included).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import importlib
import json
import signal
import sys
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from judge.calls.engine import RUN_STOP, CallResult, IndexedCalls, Journal, Ledger, StopRequest, indexed
from judge.calls.long_lived import first_import_of
from judge.calls.pricing import BATCH_DISCOUNT
from judge.calls.request_log import RequestLog
from judge.errors import Interrupted, UsageError
from judge.judges import JudgeConfigError, JudgeSpec
from judge.rundir import OutDirLock, make_private_dir, write_text_atomic
from judge.version import __version__

REQUEST_LOG_NAME = "inflight.jsonl"


def replica_use(workers: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per judge or target with replica base URLs, each replica's requests and failures in this process
    (for the run's summary); empty when no worker has replicas."""
    used: dict[str, list[dict[str, Any]]] = {}
    for name, worker in workers.items():
        connection = getattr(worker, "connection", None)
        counts = connection.replica_counts() if connection is not None else []
        if counts:
            used[name] = [asdict(count) for count in counts]
    return used


def make_workers(specs: Sequence[JudgeSpec], concurrency: int, worker_module: str, worker_class: str) -> dict[str, Any]:
    """Workers (`worker_class` of `worker_module`) for the judges or targets that still have calls to
    make; a missing key is a usage error.

    The worker's module, the SDKs and instructor's handlers are imported here, not at start-up: a run whose
    every call is known never loads them. While the module or a spec's SDK is not loaded yet, the clients
    are built with the garbage collector paused (judge.calls.long_lived).
    """
    if not specs:
        return {}
    with first_import_of(worker_module, *{spec.wire for spec in specs if spec.wire}):  # the SDKs' module names
        worker = getattr(importlib.import_module(worker_module), worker_class)
        try:
            return {spec.name: worker(spec, concurrency) for spec in specs}
        except JudgeConfigError as exc:
            raise UsageError(str(exc)) from exc


@contextmanager
def locked_run(out: Path, calls: Sequence[Any], outputs: Iterable[str], overwrite: bool) -> Iterator[str]:
    """The out directory made private and locked for one run, its reuse checked; yields the run identity."""
    make_private_dir(out)
    with OutDirLock(out):
        identity = run_identity(calls)
        check_reuse(out, identity, outputs, overwrite)
        yield identity


def check_reuse(out: Path, identity: str, outputs: Iterable[str], overwrite: bool) -> None:
    """Refuse to mix two different runs in one out directory; `overwrite` starts it afresh."""
    run_json = out / "run.json"
    earlier: str | None = None
    if run_json.exists():
        try:
            earlier = json.loads(run_json.read_text(encoding="utf-8")).get("identity")
        except (OSError, ValueError, AttributeError):
            earlier = "unreadable"
    present = [name for name in outputs if (out / name).exists()]
    if not present or earlier == identity:
        return
    if not overwrite:
        raise UsageError(
            f"{out}: holds the results of a different run (other items, targets, judges, rubrics or "
            "settings); pass `overwrite=True` to replace them, or choose another folder (`out=`). Calls answered "
            "before are still served from the cache.",
            field="out",
        )
    for name in [*present, REQUEST_LOG_NAME]:
        (out / name).unlink(missing_ok=True)


class RunProgress:
    """Rich progress on stderr: done / cached / failed, tokens, cost so far, ETA."""

    def __init__(self, label: str, total: int, quiet: bool) -> None:
        self.console = Console(stderr=True)
        enabled = not quiet and self.console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.completed}/{task.total} · cached {task.fields[cached]} · failed {task.fields[failed]}"),
            TextColumn("· {task.fields[tokens]} tokens ({task.fields[cached_input]} cached) · ${task.fields[cost]}"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not enabled,
            transient=False,
        )
        self.task = self.progress.add_task(
            label, total=total, cached=0, failed=0, tokens=0, cached_input=0, cost="0.0000"
        )
        self.cached = self.failed = self.tokens = self.cached_input = 0
        self.spent = 0.0

    def add_stage(self, description: str, total: int) -> Any:
        """Another bar under the calls' (a provider batch being waited for)."""
        return self.progress.add_task(
            description, total=total, cached=0, failed=0, tokens=0, cached_input=0, cost=f"{self.spent:.4f}"
        )

    def set_stage(self, task: Any, completed: int) -> None:
        self.progress.update(task, completed=completed)

    def grow(self, more: int) -> None:
        task = self.progress.tasks[0]
        self.progress.update(self.task, total=(task.total or 0) + more)

    def update(self, result: CallResult) -> None:
        self.cached += result.cached or result.resumed
        self.failed += not result.ok
        if not result.cached and not result.resumed:
            self.tokens += (result.input_tokens or 0) + (result.output_tokens or 0)
            self.cached_input += result.cached_input_tokens or 0
            self.spent += result.cost_usd or 0.0
        self.progress.update(
            self.task,
            advance=1,
            cached=self.cached,
            failed=self.failed,
            tokens=self.tokens,
            cached_input=self.cached_input,
            cost=f"{self.spent:.4f}",
        )


@dataclass
class CallRunFiles:
    """The open files of a run in progress: its journal and its request log."""

    journal: Journal
    log: RequestLog


YOUNG_COLLECTION_EVERY = 10_000  # allocations between collections of the youngest generation during a run


def run_calls(
    out: Path,
    journal: Journal,
    progress: RunProgress,
    workers: dict[str, Any],
    body: Callable[[CallRunFiles], Coroutine[Any, Any, Any]],
) -> Any:
    """Hand the request log to the workers and run `body` in an event loop.

    What was prepared before the run (rubrics, the compact plan, loaded modules) lives for the whole
    run: frozen, the garbage collector stops re-scanning it, which otherwise stalls the event loop for
    100 ms or more. Each call allocates a few hundred short-lived containers (the SDK's request and
    answer objects), so the youngest generation is collected every YOUNG_COLLECTION_EVERY allocations
    rather than every 700: most of those objects are freed by reference counting before a collection
    would look at them, and the collector's time in a run of 600 calls falls from 17 ms to 6 ms. The
    thresholds are restored when the run ends. The request log is deleted only when `body` returns,
    i.e. every call was journalled.
    """
    log = RequestLog(out / REQUEST_LOG_NAME)
    finished = False
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(thresholds[0], YOUNG_COLLECTION_EVERY), *thresholds[1:])
    try:
        with progress.progress:
            for worker in workers.values():
                worker.log = log
            files = CallRunFiles(journal, log)
            outcome = _run_stoppable(body(files))
            finished = True
            return outcome
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
        log.close(finished=finished)


def _run_stoppable(main: Coroutine[Any, Any, Any]) -> Any:
    """Run `main` in a new event loop where SIGINT and SIGTERM request a graceful stop (`StopRequest`):
    the calls in flight are kept, then Interrupted is raised (and the out-directory lock released on the
    way out). Without a main thread to receive signals, it runs as asyncio.run would."""

    async def stoppable() -> Any:
        task = asyncio.current_task()
        assert task is not None
        stop = StopRequest(task)
        RUN_STOP.set(stop)
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)
        try:
            for number in signals:
                loop.add_signal_handler(number, stop.request, number)
        except (RuntimeError, ValueError):  # not the main thread: signals stay as they were
            signals = ()
        try:
            return await main
        except asyncio.CancelledError:
            if stop.signal_number is None:
                raise
            raise Interrupted(stop.signal_number) from None
        finally:
            for number in signals:
                loop.remove_signal_handler(number)

    return asyncio.run(stoppable())


class RunTally:
    """Counts, tokens and cost of the whole run, added up as calls finish (nothing per call is kept).

    A call answered by an earlier, interrupted process of the run counts as requested, and its tokens
    and cost as paid by this run; cache hits cost nothing. `cached_input` and `cache_write` are the parts
    of `input` read from and written to the providers' prompt caches (billed at their own rates).
    """

    def __init__(self) -> None:
        self.counts = dict.fromkeys(
            ("planned", "requested", "cache_hits", "resumed", "failed", "batched", "http_requests_this_process"), 0
        )
        self.reasons: Counter[str] = Counter()
        self.input_tokens = self.output_tokens = self.cached_input_tokens = self.cache_write_tokens = 0
        self.cost_usd = 0.0  # of the calls this run paid for whose cost is known
        self.priced = 0
        self.without_cost = {"failed": 0, "unpriced": 0}  # failed with no known cost; answered, model unpriced

    def add(self, result: CallResult) -> None:
        counts = self.counts
        counts["planned"] += 1
        counts["requested"] += not result.cached
        counts["cache_hits"] += result.cached
        counts["resumed"] += result.resumed
        counts["failed"] += not result.ok
        counts["batched"] += result.batched and not result.cached
        counts["http_requests_this_process"] += result.requests
        if result.failure_reason:
            self.reasons[result.failure_reason] += 1
        if not result.cached:
            self.input_tokens += result.input_tokens or 0
            self.output_tokens += result.output_tokens or 0
            self.cached_input_tokens += result.cached_input_tokens or 0
            self.cache_write_tokens += result.cache_write_tokens or 0
            cost = result.cost_usd  # priced per request: live, batch, prompt-cache reads and writes
            if cost is None:
                self.without_cost["unpriced" if result.ok else "failed"] += 1
            else:
                self.cost_usd += cost
                self.priced += 1

    def merge(self, other: RunTally) -> None:
        """Add another part's counts (a shard of a run spread over a cluster, judge.distributed)."""
        for name, count in other.counts.items():
            self.counts[name] += count
        self.reasons.update(other.reasons)
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cached_input_tokens += other.cached_input_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.cost_usd += other.cost_usd
        self.priced += other.priced
        for name, count in other.without_cost.items():
            self.without_cost[name] += count

    def spend(self) -> dict[str, Any]:
        return {
            "tokens": {
                "input": self.input_tokens,
                "output": self.output_tokens,
                "cached_input": self.cached_input_tokens,
                "cache_write": self.cache_write_tokens,
            },
            # Unknown only when calls were paid for and none of them has a known cost.
            "cost_usd": None if not self.priced and any(self.without_cost.values()) else round(self.cost_usd, 6),
            "calls_without_cost": dict(self.without_cost),
        }

    def failures_by_reason(self) -> dict[str, int]:
        return dict(sorted(self.reasons.items()))


def write_in_plan_order(path: Path, journal: Journal, ledgers: Iterable[Ledger]) -> None:
    """The final journal: every call's lines in plan order, read back from where they were appended."""

    def chunks() -> Iterator[str]:
        for ledger in ledgers:
            for index in range(len(ledger)):
                span = ledger.span(index)
                if span is None:
                    raise RuntimeError(f"{path}: call {index} of the plan has no journal lines")
                yield journal.read(span).decode("utf-8")

    write_text_atomic(path, chunks())


def run_identity(calls: Sequence[Any] | IndexedCalls) -> str:
    """What a run's results depend on: every call's identity and content key, in plan order.

    The same digest as `sha256_of` of the list [[call id, key], ...], computed without building it.
    """
    plan = indexed(calls)
    digest = hashlib.sha256(b"[")
    for index in range(len(plan)):
        if index:
            digest.update(b",")
        entry = [list(plan.call_id(index)), plan.request_key(index)]  # type: ignore[call-overload]
        digest.update(json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    digest.update(b"]")
    return digest.hexdigest()


def common_record(command_line: list[str], started_at: datetime, ended: bool) -> dict[str, Any]:
    return {
        "package": "trustmh-judge",
        "version": __version__,
        "python": sys.version.split()[0],
        "command_line": command_line,
        "started_at": started_at.isoformat(),
        "ended_at": datetime.now(UTC).isoformat() if ended else None,
    }


def print_plan_table(
    rows: list[dict[str, Any]], who: str, title: str, console: Console, *, batch: bool = False
) -> None:
    """The dry-run table of one stage: per judge or target, calls, what is known, estimated tokens and cost
    (with `batch`, also the cost at the providers' batch rate)."""
    table = Table(title=title)
    for column in (who, "calls", "cached", "resumed", "to ask", "est. input tokens", "est. output tokens"):
        table.add_column(column, justify="left" if column == who else "right", overflow="fold")
    table.add_column("est. cost (USD)", justify="right", overflow="fold")  # wrapped, never cut with "…"
    if batch:
        table.add_column("est. batch cost (USD)", justify="right", overflow="fold")
    for row in rows:
        costs = [row["est_cost_usd"]] + ([batch_price(row["est_cost_usd"])] if batch else [])
        table.add_row(
            row[who],
            *(str(row[k]) for k in ("calls", "cached", "resumed", "to_ask", "est_input_tokens", "est_output_tokens")),
            *("unknown price" if cost is None else f"{cost:.4f}" for cost in costs),
        )
    console.print(table)


def batch_price(list_price: float | None) -> float | None:
    """A live estimate at the batch rate (both providers bill batches at half the live price)."""
    return None if list_price is None else list_price * BATCH_DISCOUNT
