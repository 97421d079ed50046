"""`trustmh respond`: read prompts, plan target calls, let the targets answer, write the responses.

The same engine as `trustmh score` sends the calls (content-keyed cache, limits, retries, journal,
resume, progress), with target calls as its second kind of call. Nothing is sent before the prompts
have been read whole and found valid.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from judge.calls import runner
from judge.calls.batch import make_engine
from judge.calls.cache import AnswerCache
from judge.calls.engine import (
    ASK,
    CACHED,
    RESUMED,
    CallResult,
    Journal,
    JournalIndex,
    KnownResults,
    Ledger,
    journal_rows,
    known_results,
    read_journal,
)
from judge.errors import ExitCode, UsageError
from judge.item_store import ItemStore, read_into_store
from judge.items import PROMPT_SHAPE, Prompt, format_rejections
from judge.judges import NOT_A_MODEL, JudgeConfigError, check_samples, not_a_model_names
from judge.log import RespondSummary, document
from judge.respond.calls import TargetCalls, response_item
from judge.respond.plan import TargetPlan
from judge.respond.targets import TargetSpec
from judge.rundir import write_json_atomic, write_jsonl_atomic
from judge.settings import RunSettings

if TYPE_CHECKING:
    from judge.respond.worker import TargetWorker

TARGET_WORKER = ("judge.respond.custom_workers", "target_worker")  # loaded only when a target has calls to make

JOURNAL = "calls.jsonl"
RESPONSES = "responses.jsonl"
RESPOND_OUTPUTS = (JOURNAL, RESPONSES, "summary.json")


@dataclass(kw_only=True)
class RespondOptions:
    prompts: list[Path]
    targets: list[TargetSpec]
    out: Path
    known_pillars: set[str]
    samples: int = 1
    settings: RunSettings = field(default_factory=RunSettings)
    only: dict[str, set[str]] | None = None  # prompt id -> the targets to ask (re-asks); None: every target
    attempt: int = 0  # > 0: a re-ask of the same prompts, with keys of its own (judge.respond.plan)


@dataclass
class PreparedResponses:
    options: RespondOptions
    prompts: ItemStore[Prompt]  # on disk, see judge.item_store
    calls: TargetPlan
    known: KnownResults
    cache: AnswerCache | None
    workers: dict[str, TargetWorker]


KIND = TargetCalls()


def prepare_responses(options: RespondOptions) -> PreparedResponses:
    """Read and check the prompts and plan the calls; a bad argument raises a UsageError naming its field."""
    settings = options.settings
    if options.samples < 1:
        raise UsageError(f"{options.samples}: must be at least 1", field="samples")
    try:
        check_samples(options.targets, options.samples, noun="target")
    except JudgeConfigError as exc:
        raise UsageError(exc.message, field=exc.field) from exc
    read = read_into_store(options.prompts, options.known_pillars, shape=PROMPT_SHAPE)
    if read.rejections:
        raise UsageError(
            format_rejections(read.rejections)
            + f"\n{len(read.rejections)} invalid prompt record(s); nothing was sent. Fix them and run again."
        )
    prompts: ItemStore[Prompt] = read.items
    if not prompts:
        raise UsageError("no prompts in " + ", ".join(map(str, options.prompts)))
    calls = TargetPlan(prompts, options.targets, options.samples, only=options.only, attempt=options.attempt)
    cache = settings.open_cache()
    resumed = {} if settings.dry_run else read_journal(options.out / JOURNAL, KIND)
    known = known_results(calls, resumed, cache, KIND)
    pending = {calls.worker_name(i): calls.target_of(i) for i in range(len(calls)) if known.status[i] == ASK}
    targets = list(pending.values())
    workers = {} if settings.dry_run else runner.make_workers(targets, settings.concurrency, *TARGET_WORKER)
    return PreparedResponses(options, prompts, calls, known, cache, workers)


# ---------------------------------------------------------------- dry run


def respond_dry_run(prepared: PreparedResponses) -> list[dict[str, Any]]:
    calls, status = prepared.calls, prepared.known.status
    tally = {t.name: dict.fromkeys(("calls", "cached", "resumed", "to_ask", "in", "out"), 0) for t in calls.targets}
    for index in range(len(calls)):
        counts = tally[calls.worker_name(index)]
        counts["calls"] += 1
        counts["cached"] += status[index] == CACHED
        counts["resumed"] += status[index] == RESUMED
        if status[index] == ASK:
            tokens_in, tokens_out = calls[index].estimated_usage()
            counts["to_ask"] += 1
            counts["in"] += tokens_in
            counts["out"] += tokens_out
    return [
        {
            "target": target.name,
            **{k: tally[target.name][k] for k in ("calls", "cached", "resumed", "to_ask")},
            "est_input_tokens": tally[target.name]["in"],
            "est_output_tokens": tally[target.name]["out"],
            "est_cost_usd": target.cost_usd(tally[target.name]["in"], tally[target.name]["out"]),
        }
        for target in calls.targets
    ]


# ---------------------------------------------------------------- the run


def execute_responses(prepared: PreparedResponses) -> tuple[ExitCode, dict[str, Any]]:
    """Ask what is not known yet and write every output; returns (exit code, summary)."""
    options, settings = prepared.options, prepared.options.settings
    started_at, started = datetime.now(UTC), time.monotonic()
    earlier = prepared.known.resumed  # the journal index of an earlier run (its file is read as needed)
    try:
        with runner.locked_run(options.out, prepared.calls, RESPOND_OUTPUTS, settings.overwrite) as identity:
            if settings.overwrite:
                prepared.known = known_results(prepared.calls, {}, prepared.cache, KIND)
            write_json_atomic(options.out / "run.json", _run_record(prepared, started_at, identity, ended=False))
            progress = runner.RunProgress("answering", len(prepared.calls), settings.quiet)
            tally = TargetTally(prepared.options.targets)

            def on_result(result: CallResult) -> None:
                tally.add(result)
                progress.update(result)

            async def body(files: runner.CallRunFiles) -> Ledger:
                engine = make_engine(
                    settings, options.out, files, progress, dict(prepared.workers), prepared.cache, KIND, on_result
                )
                try:
                    return await engine.run(prepared.calls, prepared.known)
                finally:
                    await engine.close()

            with Journal(options.out / JOURNAL) as journal:
                ledger: Ledger = runner.run_calls(options.out, journal, progress, prepared.workers, body)
                runner.write_in_plan_order(options.out / JOURNAL, journal, [ledger])
                write_jsonl_atomic(options.out / RESPONSES, _response_items(prepared.calls, journal, ledger))
            summary = respond_summary(prepared, tally, time.monotonic() - started)
            write_json_atomic(options.out / "summary.json", summary)
            write_json_atomic(options.out / "run.json", _run_record(prepared, started_at, identity, ended=True))
    finally:
        if isinstance(earlier, JournalIndex):
            earlier.close()
        if prepared.cache is not None:
            prepared.cache.close()
    return (ExitCode.FAILED_VERDICTS if summary["calls"]["failed"] else ExitCode.OK), summary


def _response_items(calls: TargetPlan, journal: Journal, ledger: Ledger) -> Iterator[dict[str, Any]]:
    """responses.jsonl, in plan order: one streaming pass over the journal's answered calls."""
    for index in range(len(ledger)):
        span = ledger.span(index)
        assert span is not None, "every planned call is journalled before the outputs are written"
        (row,) = journal_rows(journal.read(span))
        if row["status"] == "ok":
            yield response_item(calls[index], row["turns"])


class TargetTally(runner.RunTally):
    """The run's counts, plus per target how many calls were answered, failed or cut by max_tokens."""

    def __init__(self, targets: list[TargetSpec]) -> None:
        super().__init__()
        self.per_target: dict[str, Counter[str]] = {t.name: Counter() for t in targets}

    def add(self, result: CallResult) -> None:
        super().add(result)
        tally = self.per_target[result.call.target.name]
        tally["ok" if result.ok else "failed"] += 1
        tally["truncated"] += bool(result.payload["truncated"])


def respond_summary(prepared: PreparedResponses, tally: TargetTally, wall_time_s: float) -> dict[str, Any]:
    """respond/summary.json (`judge.log.RespondSummary`)."""
    paid = tally.spend()
    summary = RespondSummary(
        prompts=len(prepared.prompts),
        targets=[t.name for t in prepared.options.targets],
        calls=tally.counts,
        failures_by_reason=tally.failures_by_reason(),
        per_target={
            name: {"ok": t["ok"], "failed": t["failed"], "truncated": t["truncated"]}
            for name, t in tally.per_target.items()
        },
        tokens_this_run=paid["tokens"],
        cost_usd_this_run=paid["cost_usd"],
        calls_without_cost=paid["calls_without_cost"],
        wall_time_s=round(wall_time_s, 3),
    )
    if mocks := not_a_model_names(prepared.options.targets):  # set only for mocks: other summaries keep their shape
        summary.not_a_model = dict.fromkeys(mocks, NOT_A_MODEL)
    summary.set_replicas(runner.replica_use(prepared.workers))
    return document(summary)


def _run_record(prepared: PreparedResponses, started_at: datetime, identity: str, *, ended: bool) -> dict[str, Any]:
    options, settings = prepared.options, prepared.options.settings
    return {
        **runner.common_record(list(settings.command_line), started_at, ended),
        "identity": identity,
        "prompts": [str(p) for p in options.prompts],
        "targets": [t.public_dict() for t in options.targets],
        "samples": options.samples,
        "concurrency": settings.concurrency,
        "cache_dir": str(settings.cache_dir) if settings.cache_dir else None,
    }
