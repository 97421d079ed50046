"""`trustmh score`: read, plan, judge, write — the one place that ties the judging stages together.

Nothing is written before the input has been read whole and found valid (or `--skip-invalid` says what
to leave out). Verdicts are appended to OUT/verdicts.jsonl as they arrive; when the run ends the file is
rewritten in plan order, so an interrupted-and-resumed run ends with the same file as an uninterrupted one
(the out-directory lock, reuse check and journal handling are `judge.calls.runner`'s, shared with `respond`).
"""

from __future__ import annotations

import functools
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from judge.calls.batch import make_engine
from judge.calls.cache import AnswerCache
from judge.calls.engine import (
    ASK,
    CACHED,
    RESUMED,
    CallResult,
    Engine,
    Journal,
    JournalIndex,
    KnownResults,
    Ledger,
    journal_rows,
    known_results,
    read_journal,
)
from judge.calls.runner import (
    CallRunFiles,
    RunProgress,
    RunTally,
    common_record,
    locked_run,
    make_workers,
    replica_use,
    run_calls,
    write_in_plan_order,
)
from judge.errors import ExitCode, UsageError
from judge.families import Families, same_family
from judge.item_store import StoredRead, read_into_store
from judge.items import Item, format_rejections
from judge.judge_calls import JudgeCalls, input_token_estimate
from judge.judges import NOT_A_MODEL, JudgeSpec, not_a_model_names
from judge.log import LabelAgreementRecord, ScoreSummary, document
from judge.panel import AgreementTable, PanelCounts, PanelOptions, SelfPreference, build_panel, review_entries
from judge.plan import CallPlan, PlannedCall, build_plan, pillar_contexts
from judge.prompts import PromptRenderer
from judge.rubric import Rubric, Scope, load_rubric_dir, of_scope
from judge.rundir import write_json_atomic, write_jsonl_atomic, write_text_atomic
from judge.settings import RunSettings
from judge.summary import CriticalFailures, LabelAgreement, ScoreMeans

if TYPE_CHECKING:
    from judge.judge_worker import JudgeWorker

JUDGE_WORKER = ("judge.judge_workers", "judge_worker")  # loaded only when a judge has calls to make

SCORE_OUTPUTS = ("verdicts.jsonl", "items.jsonl", "panel.jsonl", "review.jsonl", "summary.json", "rejected.jsonl")


@dataclass(kw_only=True)
class ScoreOptions:
    items: list[Path]
    judges: list[JudgeSpec]
    rubrics_dir: Path
    out: Path
    settings: RunSettings = field(default_factory=RunSettings)
    pillars: list[str] | None = None
    samples: int = 1
    skip_invalid: bool = False
    families: Families | None = None
    panel: PanelOptions = field(default_factory=PanelOptions)
    tiebreak: JudgeSpec | None = None
    split_critical: bool = False  # the halo check: each critical criterion judged in a call of its own
    scope: Scope | None = None  # only the criteria of this scope (whole conversations: `conversation`)

    @property
    def uses_panel(self) -> bool:
        return len(self.judges) > 1 or self.samples > 1 or self.tiebreak is not None


@dataclass
class Prepared:
    """Everything known before any request: valid items, rubrics, the plan and what is already answered."""

    options: ScoreOptions
    rubrics: dict[str, Rubric]
    read: StoredRead  # valid items on disk (see judge.item_store), rejections in memory
    renderer: PromptRenderer
    calls: CallPlan
    known: KnownResults
    cache: AnswerCache | None
    resumed: JournalIndex
    kind: JudgeCalls
    workers: dict[str, JudgeWorker]  # clients of the judges with calls to make; none for a dry run
    tally: RunTally | None = None  # the run's counts, once `execute` has run (a cluster's shards add theirs up)


def prepare(options: ScoreOptions) -> Prepared:
    """Read, check and plan; a bad argument raises a UsageError naming its field before anything is written."""
    settings = options.settings
    rubrics = load_rubric_dir(options.rubrics_dir)  # a RubricError is a usage error naming file and field
    if options.scope is not None:
        rubrics = of_scope(rubrics, options.scope)
    if options.pillars:
        unknown = [p for p in options.pillars if p not in rubrics]
        if unknown:
            raise UsageError(
                f"{unknown}: unknown pillar(s); rubrics in {options.rubrics_dir} define {sorted(rubrics)}",
                field="pillars",
            )
    if options.samples < 1:
        raise UsageError(f"{options.samples}: must be at least 1", field="samples")
    _check_tiebreak(options)
    read = read_into_store(options.items, set(rubrics), max_response_chars=settings.max_response_chars)
    if read.rejections and not options.skip_invalid:
        raise UsageError(
            format_rejections(read.rejections)
            + f"\n{len(read.rejections)} invalid record(s); nothing was judged. Fix them, or pass `skip_invalid=True`"
            " to judge the rest and list these in OUT/rejected.jsonl."
        )
    if not read.items:
        raise UsageError("no valid items to judge in " + ", ".join(map(str, options.items)))
    renderer = PromptRenderer()
    calls = build_plan(
        read.items,
        pillar_contexts(rubrics, split_critical=options.split_critical),
        options.judges,
        renderer,
        requested_pillars=options.pillars,
        samples=options.samples,
    )
    cache = settings.open_cache()
    kind = JudgeCalls(_self_family(options.families))
    resumed = JournalIndex() if settings.dry_run else read_journal(options.out / "verdicts.jsonl", kind)
    known = known_results(calls, resumed, cache, kind)
    pending = _pending_judges(calls, known)
    workers = {} if settings.dry_run else make_workers(pending, settings.concurrency, *JUDGE_WORKER)
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
            f"{tiebreak.name}: that model is already on the panel ({', '.join(same)}); its answer would "
            "repeat its own panel verdict. Name a judge that is not on the panel.",
            field="tiebreak",
        )


def _self_family(families: Families | None) -> Callable[[PlannedCall], bool]:
    @functools.cache
    def judge_and_target_related(judge_model: str, target: str | None) -> bool:  # a few pairs, many calls
        return same_family(judge_model, target, families)

    return lambda call: judge_and_target_related(call.judge.model, call.item.target)


# ---------------------------------------------------------------- dry run


def _pending_judges(calls: CallPlan, known: KnownResults) -> list[JudgeSpec]:
    """Judges with at least one call that nothing answers yet."""
    status, per_group, samples = known.status, calls.per_group, calls.samples
    asked = {(index % per_group) // samples for index in range(len(calls)) if status[index] == ASK}
    return [calls.judges[j] for j in sorted(asked)]


def dry_run_plan(prepared: Prepared) -> list[dict[str, Any]]:
    """Per judge: calls planned, already answered, to ask, estimated tokens and cost of what is left."""
    calls, status = prepared.calls, prepared.known.status
    tally = {
        judge.name: dict.fromkeys(("calls", "cached", "resumed", "to_ask", "in", "out"), 0) for judge in calls.judges
    }
    for index in range(len(calls)):
        judge = calls.judge_of(index)
        counts = tally[judge.name]
        counts["calls"] += 1
        if status[index] == ASK:
            counts["to_ask"] += 1
            counts["in"] += input_token_estimate(calls.input_chars(index))
            criteria = len(calls.context_of_group(index // calls.per_group).rubric.criteria)
            counts["out"] += min(judge.max_tokens, 150 * criteria)
        counts["cached"] += status[index] == CACHED
        counts["resumed"] += status[index] == RESUMED
    rows = [
        {
            "judge": judge.name,
            **{k: tally[judge.name][k] for k in ("calls", "cached", "resumed", "to_ask")},
            "est_input_tokens": tally[judge.name]["in"],
            "est_output_tokens": tally[judge.name]["out"],
            "est_cost_usd": judge.cost_usd(tally[judge.name]["in"], tally[judge.name]["out"]),
        }
        for judge in calls.judges
    ]
    if prepared.options.tiebreak is not None:
        rows.append(_tiebreak_estimate(prepared, prepared.options.tiebreak))
    return rows


def _tiebreak_estimate(prepared: Prepared, tiebreak: JudgeSpec) -> dict[str, Any]:
    """At most one tie-breaker call per item × pillar (only escalated ones are asked): an upper bound."""
    calls = prepared.calls
    tokens_in = tokens_out = 0
    for group in range(calls.groups):
        tokens_in += input_token_estimate(calls.input_chars(group * calls.per_group))
        criteria = len(calls.context_of_group(group).rubric.criteria)
        tokens_out += min(tiebreak.max_tokens, 150 * criteria)
    return {
        "judge": f"{tiebreak.name} (tie-breaker, at most)",
        "calls": calls.groups,
        "cached": 0,
        "resumed": 0,
        "to_ask": calls.groups,
        "est_input_tokens": tokens_in,
        "est_output_tokens": tokens_out,
        "est_cost_usd": tiebreak.cost_usd(tokens_in, tokens_out),
    }


# ---------------------------------------------------------------- the run


def _item_record(item: Item) -> dict[str, Any]:
    return item.model_dump(mode="json", exclude={"source"})


def _item_line(item: Item) -> str:
    """`_item_record` as a line of items.jsonl, serialised by pydantic in one step."""
    return item.model_dump_json(exclude={"source"}) + "\n"


@dataclass
class Judged:
    """Where a finished run's verdicts lie in the journal: the panel's calls, then the tie-breaker's."""

    journal: Journal
    panel: Ledger
    tiebreak_plan: CallPlan | None = None
    tiebreak: Ledger | None = None
    tiebreak_of_group: dict[int, int] = field(default_factory=dict)  # panel group → tie-breaker call

    def call_rows(self, ledger: Ledger, index: int) -> list[dict[str, Any]]:
        span = ledger.span(index)
        assert span is not None, "every planned call is journalled before the outputs are written"
        return journal_rows(self.journal.read(span))

    def group_rows(self, plan: CallPlan, group: int) -> list[dict[str, Any]]:
        """Every verdict of one item × pillar: each panel judge's samples, then the tie-breaker's."""
        start = group * plan.per_group
        rows = [row for index in range(start, start + plan.per_group) for row in self.call_rows(self.panel, index)]
        if self.tiebreak is not None and (extra := self.tiebreak_of_group.get(group)) is not None:
            rows += self.call_rows(self.tiebreak, extra)
        return rows


def _judge_all(prepared: Prepared, progress: RunProgress, on_result: Callable[[CallResult], None]) -> Callable:
    """The panel's calls, then (with a tie-breaker) one more call per escalated item × pillar."""

    async def body(files: CallRunFiles) -> Judged:
        options = prepared.options
        engine = make_engine(
            options.settings, options.out, files, progress, dict(prepared.workers), prepared.cache, prepared.kind,
            on_result,
        )
        try:
            return await _judge_panel_then_tiebreak(prepared, engine, progress, files)
        finally:
            await engine.close()

    return body


def tiebreak_plan(prepared: Prepared, judged: Judged) -> CallPlan | None:
    """The tie-breaker's calls once the panel's are journalled: one per escalated item × pillar (it answers
    every criterion), by pillar then item id, noted in `judged.tiebreak_of_group`; None when none is asked."""
    options, calls, tiebreak = prepared.options, prepared.calls, prepared.options.tiebreak
    if tiebreak is None:
        return None
    escalated = [
        group
        for group in range(calls.groups)
        if any(row["escalate"] for row in build_panel(judged.group_rows(calls, group), prepared.rubrics, options.panel))
    ]
    if not escalated:
        return None
    escalated.sort(key=lambda group: (calls.pillar_of_group(group), calls.item_id_of_group(group)))
    extra = CallPlan(calls.items, calls.contexts, [tiebreak], prepared.renderer, role="tiebreak")
    for number, group in enumerate(escalated):
        extra.add_group(calls.group_item[group], calls.pillar_of_group(group), parts=[calls.group_part[group]])
        judged.tiebreak_of_group[group] = number
    return extra


async def _judge_panel_then_tiebreak(
    prepared: Prepared, engine: Engine, progress: RunProgress, files: CallRunFiles
) -> Judged:
    options = prepared.options
    judged = Judged(files.journal, await engine.run(prepared.calls, prepared.known))
    tiebreak = options.tiebreak
    extra = tiebreak_plan(prepared, judged)
    if tiebreak is None or extra is None:
        return judged
    known = known_results(extra, prepared.resumed, prepared.cache, prepared.kind)
    if known.count(ASK) and tiebreak.name not in engine.workers:
        for name, worker in make_workers([tiebreak], options.settings.concurrency, *JUDGE_WORKER).items():
            worker.log = files.log
            engine.workers[name] = prepared.workers[name] = worker  # in prepared too: its replicas' counts
    progress.grow(len(extra))
    judged.tiebreak_plan, judged.tiebreak = extra, await engine.run(extra, known)
    return judged


def execute(prepared: Prepared) -> tuple[ExitCode, dict[str, Any]]:
    """Judge what is not known yet and write every output; returns (exit code, summary)."""
    options = prepared.options
    started_at, started = datetime.now(UTC), time.monotonic()
    try:
        with locked_run(options.out, prepared.calls, SCORE_OUTPUTS, options.settings.overwrite) as identity:
            if options.settings.overwrite:  # what the journal held belongs to the replaced run
                prepared.known = known_results(prepared.calls, {}, prepared.cache, prepared.kind)
            write_json_atomic(options.out / "run.json", run_record(prepared, started_at, identity, ended=False))
            return _execute_locked(prepared, started_at, started, identity)
    finally:
        prepared.resumed.close()
        if prepared.cache is not None:
            prepared.cache.close()


def _execute_locked(
    prepared: Prepared, started_at: datetime, started: float, identity: str
) -> tuple[ExitCode, dict[str, Any]]:
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
    progress = RunProgress("judging", len(prepared.calls), options.settings.quiet)
    tally = prepared.tally = RunTally()
    contexts = prepared.calls.contexts
    stats = VerdictStats(prepared.rubrics, lambda pillar: contexts[pillar][0].part)

    def on_result(result: CallResult) -> None:  # counts and statistics need no second reading of the rows
        tally.add(result)
        stats.add_call(result.rows)
        progress.update(result)

    with Journal(verdicts_path) as journal:
        judged: Judged = run_calls(
            options.out, journal, progress, prepared.workers, _judge_all(prepared, progress, on_result)
        )
        ledgers = [judged.panel] if judged.tiebreak is None else [judged.panel, judged.tiebreak]
        write_in_plan_order(verdicts_path, journal, ledgers)
        write_text_atomic(options.out / "items.jsonl", map(_item_line, prepared.read.items))
        panel = _write_panel_outputs(prepared, judged) if options.uses_panel else None
    summary = build_summary(prepared, tally, stats, panel, time.monotonic() - started)
    write_json_atomic(options.out / "summary.json", summary)
    write_json_atomic(options.out / "run.json", run_record(prepared, started_at, identity, ended=True))
    return (ExitCode.FAILED_VERDICTS if summary["calls"]["failed"] else ExitCode.OK), summary


class VerdictStats:
    """The verdict part of `summary.json`, fed each call's rows as the call finishes (any order will do)."""

    def __init__(self, rubrics: dict[str, Rubric], first_part: Callable[[str], str] | None = None) -> None:
        self.counts = dict.fromkeys(("rows", "ok", "not_applicable", "failed"), 0)
        self.means = ScoreMeans()
        self.critical = CriticalFailures(rubrics)
        self.preference = SelfPreference(rubrics)
        self.labels = LabelAgreement(first_part)

    def add_call(self, rows: list[dict[str, Any]]) -> None:
        self.critical.add_call(rows)
        self.labels.add_call(rows)
        for row in rows:
            self.counts["rows"] += 1
            if row["status"] in self.counts:
                self.counts[row["status"]] += 1
            self.means.add(row)
            self.preference.add(row)


@dataclass
class PanelOutputs:
    counts: PanelCounts
    agreement: AgreementTable


def _groups_by_item_id(calls: CallPlan) -> Iterable[int]:
    """Item × pillar groups in the panel's order (item id, then pillar); plan order when it already is."""

    def key(group: int) -> tuple[str, str]:
        return calls.item_id_of_group(group), calls.pillar_of_group(group)

    if all(key(group - 1) < key(group) for group in range(1, calls.groups)):
        return range(calls.groups)
    return sorted(range(calls.groups), key=key)


def _write_panel_outputs(prepared: Prepared, judged: Judged) -> PanelOutputs:
    """panel.jsonl, then review.jsonl, each one streaming pass over the groups; counts and agreement."""
    calls, rubrics, options = prepared.calls, prepared.rubrics, prepared.options.panel
    outputs = PanelOutputs(PanelCounts(), AgreementTable(rubrics))
    escalated = array("q")

    def panel_lines() -> Iterator[dict[str, Any]]:
        for group in _groups_by_item_id(calls):
            verdicts = judged.group_rows(calls, group)
            rows = build_panel(verdicts, rubrics, options)
            for verdict in sorted(verdicts, key=lambda v: v["criterion"]):
                outputs.agreement.add(verdict)
            if any(row["escalate"] for row in rows):
                escalated.append(group)
            for row in rows:
                outputs.counts.add(row)
                yield row

    def review_lines() -> Iterator[dict[str, Any]]:
        for group in escalated:
            verdicts = judged.group_rows(calls, group)
            item = _item_record(calls.items[calls.group_item[group]])
            yield from review_entries(build_panel(verdicts, rubrics, options), verdicts, {item["id"]: item}, rubrics)

    write_jsonl_atomic(prepared.options.out / "panel.jsonl", panel_lines())
    write_jsonl_atomic(prepared.options.out / "review.jsonl", review_lines())
    return outputs


def build_summary(
    prepared: Prepared, tally: RunTally, stats: VerdictStats, panel: PanelOutputs | None, wall_time_s: float
) -> dict[str, Any]:
    """summary.json (`judge.log.ScoreSummary`)."""
    paid = tally.spend()
    summary = ScoreSummary(
        items=len(prepared.read.items),
        rejected=len(prepared.read.rejections),
        pillars=sorted({prepared.calls.pillar_of_group(g) for g in range(prepared.calls.groups)}),
        judges=[j.name for j in prepared.options.judges],
        calls=tally.counts,
        failures_by_reason=tally.failures_by_reason(),
        verdicts=stats.counts,
        tokens_this_run=paid["tokens"],
        cost_usd_this_run=paid["cost_usd"],
        calls_without_cost=paid["calls_without_cost"],
        wall_time_s=round(wall_time_s, 3),
        mean_scores=stats.means.table(),
        critical_failure_rate=stats.critical.table(),
        panel=panel.counts.counts if panel is not None else None,
        agreement=panel.agreement.results() if panel is not None else [],
        self_preference=stats.preference.report(),
    )
    if labels := stats.labels.table():  # set only when there is something to say: older summaries stay as they were
        summary.label_agreement = [LabelAgreementRecord.model_validate(r) for r in labels]
    if prepared.options.split_critical:
        summary.split_critical = True
    if mocks := not_a_model_names(prepared.options.judges):
        summary.not_a_model = dict.fromkeys(mocks, NOT_A_MODEL)
    summary.set_replicas(replica_use(prepared.workers))
    return document(summary)


def run_record(prepared: Prepared, started_at: datetime, identity: str, *, ended: bool) -> dict[str, Any]:
    options, settings = prepared.options, prepared.options.settings
    return {
        **common_record(list(settings.command_line), started_at, ended),
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
        **({"scope": options.scope} if options.scope is not None else {}),
        "concurrency": settings.concurrency,
        "cache_dir": str(settings.cache_dir) if settings.cache_dir else None,
        "max_response_chars": settings.max_response_chars,
        **({"split_critical": True} if options.split_critical else {}),
    }
