"""`trustmh score`: read, plan, judge, write — the one place that ties the judging stages together.

Nothing is written before the input has been read whole and found valid (or `--skip-invalid` says what
to leave out). Verdicts are appended to OUT/verdicts.jsonl as they arrive; when the run ends the file is
rewritten in plan order, so an interrupted-and-resumed run ends with the same file as an uninterrupted one
(the out-directory lock, reuse check and journal handling are `judge.runner`'s, shared with `respond`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from judge.batch import make_engine
from judge.cache import VerdictCache
from judge.engine import CallResult, Engine, Resumed, known_results, read_journal
from judge.families import Families, same_family
from judge.items import Item, ItemReadResult, format_rejections, read_items
from judge.judge_calls import JudgeCalls, estimate_input_tokens, estimate_output_tokens
from judge.judges import JudgeConfigError, JudgeSpec
from judge.panel import PanelOptions, build_panel, judge_agreement, review_entries, self_preference_report
from judge.plan import PlanError, PlannedCall, pillar_contexts, plan_calls
from judge.prompts import PromptRenderer
from judge.report import critical_failure_rates, failure_counts, score_means
from judge.review import write_jsonl_atomic, write_text_atomic
from judge.rubric import Rubric, RubricError, load_rubric_dir
from judge.runner import (
    CallRunFiles,
    RunProgress,
    UsageError,
    call_counts,
    common_record,
    locked_run,
    print_plan_table,
    run_calls,
    spend,
    write_json_atomic,
)

if TYPE_CHECKING:
    from judge.client import JudgeWorker

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_FAILED_VERDICTS = 0, 1, 2, 3
SCORE_OUTPUTS = ("verdicts.jsonl", "items.jsonl", "panel.jsonl", "review.jsonl", "summary.json", "rejected.jsonl")
__all__ = ["EXIT_FAILED_VERDICTS", "EXIT_OK", "EXIT_USAGE", "ScoreOptions", "UsageError", "execute", "prepare"]


@dataclass
class ScoreOptions:
    items: list[Path]
    judges: list[JudgeSpec]
    rubrics_dir: Path
    out: Path
    cache_dir: Path | None
    pillars: list[str] | None = None
    samples: int = 1
    concurrency: int = 8
    dry_run: bool = False
    skip_invalid: bool = False
    quiet: bool = False
    max_response_chars: int = 100_000
    families: Families | None = None
    panel: PanelOptions = field(default_factory=PanelOptions)
    tiebreak: JudgeSpec | None = None
    overwrite: bool = False
    batch: bool = False  # first requests through the providers' batch APIs (judge.batch)
    batch_poll_s: float = 30.0
    command_line: list[str] = field(default_factory=list)

    @property
    def uses_panel(self) -> bool:
        return len(self.judges) > 1 or self.samples > 1 or self.tiebreak is not None


@dataclass
class Prepared:
    """Everything known before any request: valid items, rubrics, the plan and what is already answered."""

    options: ScoreOptions
    rubrics: dict[str, Rubric]
    read: ItemReadResult
    renderer: PromptRenderer
    calls: list[PlannedCall]
    known: list[CallResult | None]
    cache: VerdictCache | None
    resumed: Resumed
    kind: JudgeCalls
    workers: dict[str, JudgeWorker]  # clients of the judges with calls to make; none for a dry run


def prepare(options: ScoreOptions) -> Prepared:
    try:
        rubrics = load_rubric_dir(options.rubrics_dir)
    except RubricError as exc:
        raise UsageError(str(exc)) from exc
    if options.pillars:
        unknown = [p for p in options.pillars if p not in rubrics]
        if unknown:
            raise UsageError(
                f"--pillars: unknown pillar(s) {unknown}; rubrics in {options.rubrics_dir} define {sorted(rubrics)}"
            )
    if options.samples < 1:
        raise UsageError("--samples must be at least 1")
    _check_tiebreak(options)
    read = read_items(options.items, set(rubrics), max_response_chars=options.max_response_chars)
    if read.rejections and not options.skip_invalid:
        raise UsageError(
            format_rejections(read.rejections)
            + f"\n{len(read.rejections)} invalid record(s); nothing was judged. Fix them, or pass --skip-invalid"
            " to judge the rest and list these in OUT/rejected.jsonl."
        )
    if not read.items:
        raise UsageError("no valid items to judge in " + ", ".join(map(str, options.items)))
    renderer = PromptRenderer()
    try:
        calls = plan_calls(
            read.items,
            pillar_contexts(rubrics),
            options.judges,
            renderer,
            requested_pillars=options.pillars,
            samples=options.samples,
        )
    except PlanError as exc:
        raise UsageError(str(exc)) from exc
    cache = VerdictCache(options.cache_dir) if options.cache_dir else None
    kind = JudgeCalls(_self_family(options.families))
    resumed = {} if options.dry_run else read_journal(options.out / "verdicts.jsonl", kind)
    known = known_results(calls, resumed, cache, kind)
    pending = [call for call, result in zip(calls, known, strict=True) if result is None]
    workers = {} if options.dry_run else _workers(pending, options.concurrency)
    return Prepared(options, rubrics, read, renderer, calls, known, cache, resumed, kind, workers)


def _check_tiebreak(options: ScoreOptions) -> None:
    """A tie-breaker already on the panel would repeat its own panel answer and decide nothing new."""
    tiebreak = options.tiebreak
    if tiebreak is None:
        return
    same = [
        j.name
        for j in options.judges
        if j.name == tiebreak.name or (j.provider, j.model) == (tiebreak.provider, tiebreak.model)
    ]
    if same:
        raise UsageError(
            f"--tiebreak {tiebreak.name}: that model is already on the panel ({', '.join(same)}); its answer would "
            "repeat its own panel verdict. Name a judge that is not on the panel."
        )


def _self_family(families: Families | None) -> Callable[[PlannedCall], bool]:
    @functools.cache
    def judge_and_target_related(judge_model: str, target: str | None) -> bool:  # a few pairs, many calls
        return same_family(judge_model, target, families)

    return lambda call: judge_and_target_related(call.judge.model, call.item.target)


# ---------------------------------------------------------------- dry run


def dry_run_plan(prepared: Prepared) -> list[dict[str, Any]]:
    """Per judge: calls planned, already answered, to ask, estimated tokens and cost of what is left."""
    rows = []
    for judge in prepared.options.judges:
        mine = [(c, r) for c, r in zip(prepared.calls, prepared.known, strict=True) if c.judge.name == judge.name]
        todo = [c for c, r in mine if r is None]
        tokens_in = sum(estimate_input_tokens(c) for c in todo)
        tokens_out = sum(estimate_output_tokens(c) for c in todo)
        rows.append(
            {
                "judge": judge.name,
                "calls": len(mine),
                "cached": sum(r is not None and r.cached for _, r in mine),
                "resumed": sum(r is not None and r.resumed for _, r in mine),
                "to_ask": len(todo),
                "est_input_tokens": tokens_in,
                "est_output_tokens": tokens_out,
                "est_cost_usd": judge.cost_usd(tokens_in, tokens_out),
            }
        )
    if prepared.options.tiebreak is not None:
        rows.append(_tiebreak_estimate(prepared, prepared.options.tiebreak))
    return rows


def _tiebreak_estimate(prepared: Prepared, tiebreak: JudgeSpec) -> dict[str, Any]:
    """At most one tie-breaker call per item × pillar (only escalated ones are asked): an upper bound."""
    first_judge = prepared.options.judges[0].name
    shapes = [c for c in prepared.calls if c.judge.name == first_judge and c.sample == 0]
    tokens_in = sum(estimate_input_tokens(c) for c in shapes)
    tokens_out = sum(min(tiebreak.max_tokens, 150 * len(c.rubric.criteria)) for c in shapes)
    return {
        "judge": f"{tiebreak.name} (tie-breaker, at most)",
        "calls": len(shapes),
        "cached": 0,
        "resumed": 0,
        "to_ask": len(shapes),
        "est_input_tokens": tokens_in,
        "est_output_tokens": tokens_out,
        "est_cost_usd": tiebreak.cost_usd(tokens_in, tokens_out),
    }


def print_dry_run(prepared: Prepared, console: Console) -> None:
    print_plan_table(
        dry_run_plan(prepared), "judge", "Dry run: nothing was sent", console, batch=prepared.options.batch
    )
    console.print(
        f"{len(prepared.read.items)} item(s), {len(prepared.read.rejections)} rejected; "
        "token figures are estimates (4 characters a token; outputs about 150 tokens a criterion)."
        + (
            " The tie-breaker row is an upper bound: it is asked only about escalated items."
            if prepared.options.tiebreak
            else ""
        )
    )


# ---------------------------------------------------------------- the run


def _item_record(item: Item) -> dict[str, Any]:
    return item.model_dump(mode="json", exclude={"source"})


def _workers(calls: list[PlannedCall], concurrency: int) -> dict[str, JudgeWorker]:
    """Clients for the judges that still have calls to make; a missing key is a usage error.

    The SDKs are imported here, not at start-up: a run whose every call is known never loads them.
    """
    pending = {c.judge.name: c.judge for c in calls}
    if not pending:
        return {}
    from judge.client import JudgeWorker

    try:
        return {name: JudgeWorker(spec, concurrency) for name, spec in pending.items()}
    except JudgeConfigError as exc:
        raise UsageError(str(exc)) from exc


def _tiebreak_calls(prepared: Prepared, panel_rows: list[dict[str, Any]]) -> list[PlannedCall]:
    """One tie-breaker call per escalated item × pillar (it answers every criterion of the pillar)."""
    tiebreak = prepared.options.tiebreak
    assert tiebreak is not None
    escalated = {(row["item_id"], row["pillar"]) for row in panel_rows if row["escalate"]}
    items = {item.id: item for item in prepared.read.items}
    contexts = pillar_contexts(prepared.rubrics)
    calls: list[PlannedCall] = []
    for pillar in sorted({p for _, p in escalated}):
        chosen = [items[i] for i, p in sorted(escalated) if p == pillar]
        calls += plan_calls(
            chosen, contexts, [tiebreak], prepared.renderer, requested_pillars=[pillar], role="tiebreak"
        )
    return calls


def _judge_all(prepared: Prepared, progress: RunProgress) -> Callable[[CallRunFiles], Any]:
    """The panel's calls, then (with --tiebreak) one more call per escalated item × pillar."""

    async def body(files: CallRunFiles) -> tuple[list[CallResult], list[dict[str, Any]], list[dict[str, Any]]]:
        options = prepared.options
        engine = make_engine(options, files, progress, dict(prepared.workers), prepared.cache, prepared.kind)
        try:
            return await _judge_panel_then_tiebreak(prepared, engine, progress, files)
        finally:
            await engine.close()

    return body


async def _judge_panel_then_tiebreak(
    prepared: Prepared, engine: Engine, progress: RunProgress, files: CallRunFiles
) -> tuple[list[CallResult], list[dict[str, Any]], list[dict[str, Any]]]:
    options = prepared.options
    results = await engine.run(prepared.calls, prepared.known)
    rows = [row for result in results for row in result.rows]
    panel_rows = build_panel(rows, prepared.rubrics, options.panel) if options.uses_panel else []
    if options.tiebreak is not None and (extra := _tiebreak_calls(prepared, panel_rows)):
        known = known_results(extra, prepared.resumed, prepared.cache, prepared.kind)
        pending = [call for call, result in zip(extra, known, strict=True) if result is None]
        new_workers = _workers([call for call in pending if call.judge.name not in engine.workers], options.concurrency)
        for worker in new_workers.values():
            worker.log = files.log
        engine.workers.update(new_workers)
        progress.grow(len(extra))
        extra_results = await engine.run(extra, known)
        results += extra_results
        rows += [row for result in extra_results for row in result.rows]
        panel_rows = build_panel(rows, prepared.rubrics, options.panel)
    return results, rows, panel_rows


def execute(prepared: Prepared) -> tuple[int, dict[str, Any]]:
    """Judge what is not known yet and write every output; returns (exit code, summary)."""
    options = prepared.options
    started_at, started = datetime.now(UTC), time.monotonic()
    with locked_run(options.out, prepared.calls, SCORE_OUTPUTS, options.overwrite) as identity:
        if options.overwrite:  # what the journal held belongs to the replaced run
            prepared.known = known_results(prepared.calls, {}, prepared.cache, prepared.kind)
        write_json_atomic(options.out / "run.json", run_record(prepared, started_at, identity, ended=False))
        return _execute_locked(prepared, started_at, started, identity)


def _execute_locked(
    prepared: Prepared, started_at: datetime, started: float, identity: str
) -> tuple[int, dict[str, Any]]:
    options = prepared.options
    if prepared.read.rejections:
        write_jsonl_atomic(
            options.out / "rejected.jsonl",
            [
                {"file": r.file, "line": r.line, "item_id": r.item_id, "reason": r.reason}
                for r in prepared.read.rejections
            ],
        )
    verdicts_path = options.out / "verdicts.jsonl"
    progress = RunProgress("judging", len(prepared.calls), options.quiet)
    results, rows, panel_rows = run_calls(
        options.out, "verdicts.jsonl", progress, prepared.workers, _judge_all(prepared, progress)
    )
    write_text_atomic(verdicts_path, (result.lines for result in results))
    write_jsonl_atomic(options.out / "items.jsonl", [_item_record(item) for item in prepared.read.items])
    if options.uses_panel:
        items = {item.id: _item_record(item) for item in prepared.read.items}
        write_jsonl_atomic(options.out / "panel.jsonl", panel_rows)
        write_jsonl_atomic(options.out / "review.jsonl", review_entries(panel_rows, rows, items, prepared.rubrics))
    summary = build_summary(prepared, results, rows, panel_rows, time.monotonic() - started)
    write_json_atomic(options.out / "summary.json", summary)
    write_json_atomic(options.out / "run.json", run_record(prepared, started_at, identity, ended=True))
    if prepared.cache is not None:
        prepared.cache.close()
    return (EXIT_FAILED_VERDICTS if summary["calls"]["failed"] else EXIT_OK), summary


def panel_summary(panel_rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "rows": len(panel_rows),
        "decided": sum(r["status"] == "decided" for r in panel_rows),
        "undecided": sum(r["status"] == "undecided" for r in panel_rows),
        "not_applicable": sum(r["status"] == "not_applicable" for r in panel_rows),
        "critical_fail": sum(bool(r["critical_fail"]) for r in panel_rows),
        "escalated": sum(bool(r["escalate"]) for r in panel_rows),
        "decided_by_tiebreak": sum(r["decided_by"] == "tiebreak" for r in panel_rows),
    }


def build_summary(
    prepared: Prepared,
    results: list[CallResult],
    rows: list[dict[str, Any]],
    panel_rows: list[dict[str, Any]],
    wall_time_s: float,
) -> dict[str, Any]:
    paid = spend(results)
    return {
        "items": len(prepared.read.items),
        "rejected": len(prepared.read.rejections),
        "pillars": sorted({c.pillar for c in prepared.calls}),
        "judges": [j.name for j in prepared.options.judges],
        "calls": call_counts(results, len(results)),
        "failures_by_reason": failure_counts(r.failure_reason for r in results),
        "verdicts": {
            "rows": len(rows),
            "ok": sum(r["status"] == "ok" for r in rows),
            "not_applicable": sum(r["status"] == "not_applicable" for r in rows),
            "failed": sum(r["status"] == "failed" for r in rows),
        },
        "tokens_this_run": paid["tokens"],
        "cost_usd_this_run": paid["cost_usd"],
        "wall_time_s": round(wall_time_s, 3),
        "mean_scores": score_means(rows),
        "critical_failure_rate": critical_failure_rates(rows, prepared.rubrics),
        "panel": panel_summary(panel_rows) if prepared.options.uses_panel else None,
        "agreement": judge_agreement(rows, prepared.rubrics) if prepared.options.uses_panel else [],
        "self_preference": self_preference_report(rows, prepared.rubrics),
    }


def run_record(prepared: Prepared, started_at: datetime, identity: str, *, ended: bool) -> dict[str, Any]:
    options = prepared.options
    return {
        **common_record(options.command_line, started_at, ended),
        "identity": identity,
        "items": [str(p) for p in options.items],
        "rubrics_dir": str(options.rubrics_dir.resolve()),
        "rubric_hashes": {p: r.content_hash for p, r in sorted(prepared.rubrics.items())},
        "criterion_hashes": {
            p: {c.id: c.content_hash for c in r.criteria} for p, r in sorted(prepared.rubrics.items())
        },
        "template_dir": str(prepared.renderer.template_dir),
        "template_hash": prepared.renderer.template_hash,
        "crisis_resources_version": prepared.renderer.resource_list.version,
        "judges": [j.public_dict() for j in options.judges],
        "tiebreak": options.tiebreak.public_dict() if options.tiebreak else None,
        "panel": asdict(options.panel),
        "samples": options.samples,
        "pillars": options.pillars,
        "concurrency": options.concurrency,
        "cache_dir": str(options.cache_dir) if options.cache_dir else None,
        "max_response_chars": options.max_response_chars,
    }
