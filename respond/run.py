"""`trustmh respond`: read prompts, plan target calls, let the targets answer, write the responses.

The same engine as `trustmh score` sends the calls (content-keyed cache, limits, retries, journal,
resume, progress), with target calls as its second kind of call. Nothing is sent before the prompts
have been read whole and found valid.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from judge.batch import make_engine
from judge.cache import VerdictCache
from judge.engine import CallResult, known_results, read_journal
from judge.items import PROMPT_SHAPE, Prompt, format_rejections, read_items
from judge.judges import JudgeConfigError, check_samples
from judge.report import failure_counts
from judge.review import write_jsonl_atomic, write_text_atomic
from judge.runner import (
    CallRunFiles,
    RunProgress,
    UsageError,
    call_counts,
    common_record,
    locked_run,
    run_calls,
    spend,
    write_json_atomic,
)
from respond.calls import TargetCalls, response_item
from respond.plan import TargetCall, plan_target_calls
from respond.targets import TargetSpec

if TYPE_CHECKING:
    from judge.client import TargetWorker

JOURNAL = "calls.jsonl"
RESPONSES = "responses.jsonl"
RESPOND_OUTPUTS = (JOURNAL, RESPONSES, "summary.json")


@dataclass
class RespondOptions:
    prompts: list[Path]
    targets: list[TargetSpec]
    out: Path
    cache_dir: Path | None
    known_pillars: set[str]
    samples: int = 1
    concurrency: int = 8
    dry_run: bool = False
    quiet: bool = False
    overwrite: bool = False
    batch: bool = False  # first turns through the providers' batch APIs (judge.batch)
    batch_poll_s: float = 30.0
    command_line: list[str] = field(default_factory=list)


@dataclass
class PreparedResponses:
    options: RespondOptions
    prompts: list[Prompt]
    calls: list[TargetCall]
    known: list[CallResult | None]
    cache: VerdictCache | None
    workers: dict[str, TargetWorker]


KIND = TargetCalls()


def prepare_responses(options: RespondOptions) -> PreparedResponses:
    if options.samples < 1:
        raise UsageError("--samples must be at least 1")
    try:
        check_samples(options.targets, options.samples)
    except JudgeConfigError as exc:
        raise UsageError(str(exc).replace("judge(s)", "target(s)").replace("--judges-file", "--targets-file")) from exc
    read = read_items(options.prompts, options.known_pillars, shape=PROMPT_SHAPE)
    if read.rejections:
        raise UsageError(
            format_rejections(read.rejections)
            + f"\n{len(read.rejections)} invalid prompt record(s); nothing was sent. Fix them and run again."
        )
    prompts: list[Prompt] = read.items  # type: ignore[assignment]
    if not prompts:
        raise UsageError("no prompts in " + ", ".join(map(str, options.prompts)))
    calls = plan_target_calls(prompts, options.targets, options.samples)
    cache = VerdictCache(options.cache_dir) if options.cache_dir else None
    resumed = {} if options.dry_run else read_journal(options.out / JOURNAL, KIND)
    known = known_results(calls, resumed, cache, KIND)
    pending = [call for call, result in zip(calls, known, strict=True) if result is None]
    workers = {} if options.dry_run else _workers(pending, options.concurrency)
    return PreparedResponses(options, prompts, calls, known, cache, workers)


def _workers(calls: list[TargetCall], concurrency: int) -> dict[str, TargetWorker]:
    """Clients for the targets that still have calls to make (the SDKs load only now)."""
    pending = {c.target.name: c.target for c in calls}
    if not pending:
        return {}
    from judge.client import TargetWorker

    try:
        return {name: TargetWorker(spec, concurrency) for name, spec in pending.items()}
    except JudgeConfigError as exc:
        raise UsageError(str(exc)) from exc


# ---------------------------------------------------------------- dry run


def respond_dry_run(prepared: PreparedResponses) -> list[dict[str, Any]]:
    rows = []
    for target in prepared.options.targets:
        mine = [(c, r) for c, r in zip(prepared.calls, prepared.known, strict=True) if c.target.name == target.name]
        usage = [c.estimated_usage() for c, r in mine if r is None]
        tokens_in, tokens_out = sum(u[0] for u in usage), sum(u[1] for u in usage)
        rows.append(
            {
                "target": target.name,
                "calls": len(mine),
                "cached": sum(r is not None and r.cached for _, r in mine),
                "resumed": sum(r is not None and r.resumed for _, r in mine),
                "to_ask": len(usage),
                "est_input_tokens": tokens_in,
                "est_output_tokens": tokens_out,
                "est_cost_usd": target.cost_usd(tokens_in, tokens_out),
            }
        )
    return rows


# ---------------------------------------------------------------- the run


def execute_responses(prepared: PreparedResponses) -> tuple[int, dict[str, Any]]:
    """Ask what is not known yet and write every output; returns (exit code, summary)."""
    options = prepared.options
    started_at, started = datetime.now(UTC), time.monotonic()
    with locked_run(options.out, prepared.calls, RESPOND_OUTPUTS, options.overwrite) as identity:
        if options.overwrite:
            prepared.known = known_results(prepared.calls, {}, prepared.cache, KIND)
        write_json_atomic(options.out / "run.json", _run_record(prepared, started_at, identity, ended=False))
        progress = RunProgress("answering", len(prepared.calls), options.quiet)

        async def body(files: CallRunFiles) -> list[CallResult]:
            engine = make_engine(options, files, progress, dict(prepared.workers), prepared.cache, KIND)
            try:
                return await engine.run(prepared.calls, prepared.known)
            finally:
                await engine.close()

        results: list[CallResult] = run_calls(options.out, JOURNAL, progress, prepared.workers, body)
        write_text_atomic(options.out / JOURNAL, (r.lines for r in results))
        write_jsonl_atomic(options.out / RESPONSES, (response_item(r) for r in results if r.ok))
        summary = respond_summary(prepared, results, time.monotonic() - started)
        write_json_atomic(options.out / "summary.json", summary)
        write_json_atomic(options.out / "run.json", _run_record(prepared, started_at, identity, ended=True))
    if prepared.cache is not None:
        prepared.cache.close()
    return (3 if summary["calls"]["failed"] else 0), summary


def respond_summary(prepared: PreparedResponses, results: list[CallResult], wall_time_s: float) -> dict[str, Any]:
    paid = spend(results)
    per_target: dict[str, Counter[str]] = {t.name: Counter() for t in prepared.options.targets}
    for result in results:
        tally = per_target[result.call.target.name]
        tally["ok" if result.ok else "failed"] += 1
        tally["truncated"] += bool(result.payload["truncated"])
    return {
        "prompts": len(prepared.prompts),
        "targets": [t.name for t in prepared.options.targets],
        "calls": call_counts(results, len(results)),
        "failures_by_reason": failure_counts(r.failure_reason for r in results),
        "per_target": {
            name: {"ok": t["ok"], "failed": t["failed"], "truncated": t["truncated"]} for name, t in per_target.items()
        },
        "tokens_this_run": paid["tokens"],
        "cost_usd_this_run": paid["cost_usd"],
        "wall_time_s": round(wall_time_s, 3),
    }


def _run_record(prepared: PreparedResponses, started_at: datetime, identity: str, *, ended: bool) -> dict[str, Any]:
    options = prepared.options
    return {
        **common_record(options.command_line, started_at, ended),
        "identity": identity,
        "prompts": [str(p) for p in options.prompts],
        "targets": [t.public_dict() for t in options.targets],
        "samples": options.samples,
        "concurrency": options.concurrency,
        "cache_dir": str(options.cache_dir) if options.cache_dir else None,
    }
