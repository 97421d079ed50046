"""A bench: suites → prompts → the targets answer → the judges judge → the scorecard, in one out directory.

The live bench chains the stages, each with its own resumable out directory under OUT (respond/ and
score/), so a bench killed at any point and started again with the same arguments finishes with the
files of an uninterrupted run and repeats no answered call: the prompts are rebuilt identically
(seeded sampling), and each stage resumes from its journal and the cache. Nothing here prints or
writes the HTML report (judge.api does, a layer up).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from judge.errors import ExitCode, UsageError
from judge.families import Families
from judge.judges import JudgeSpec, check_samples
from judge.respond.calls import response_item
from judge.respond.pipeline import PreparedResponses, RespondOptions, execute_responses, prepare_responses
from judge.respond.pipeline import respond_dry_run as target_plan
from judge.respond.plan import TargetCall
from judge.respond.targets import TargetSpec
from judge.rubric import load_rubric_dir
from judge.rundir import OutDirLock, make_private_dir, write_json_atomic, write_jsonl_atomic
from judge.score import ScoreOptions, dry_run_plan, execute, prepare
from judge.settings import RunSettings
from judge.suites.answers import check_answers, import_answers
from judge.suites.catalogue import build_prompts
from judge.suites.paper import (
    DEFAULT_MAX_REASKS,
    DEFAULT_PROTOCOL,
    PAPER,
    PAPER_JUDGE_DIR,
    PAPER_VERDICTS,
    PROTOCOLS,
    decoding_manifest,
    judge_prompts,
    with_paper_decoding,
)
from judge.suites.paper import verdict_rows as paper_verdicts
from judge.suites.provenance import suite_notes
from judge.suites.published import RECORDED, import_recorded, published_comparison, published_figures
from judge.suites.reask import reask_dry_run, run_reasks
from judge.suites.scorecard import DEFAULT_BOOTSTRAP, DEFAULT_SEED, iter_jsonl, scorecard_for, write_scorecard
from judge.suites.validity import read_validity, validity_record

JUDGED_ITEMS = "judged-items.jsonl"  # the answers of suites that need a judge, as score items


@dataclass(kw_only=True)
class BenchOptions:
    suites: list[str]
    targets: list[TargetSpec]
    judges: list[JudgeSpec]
    out: Path
    rubrics_dir: Path
    limit: int | None = None
    seed: int = DEFAULT_SEED
    samples: int = 1
    bootstrap: int = DEFAULT_BOOTSTRAP
    families: Families | None = None  # a judges file's [families] over the built-in ones; None: built-in
    split_critical: bool = False  # the halo check: each critical criterion judged in a call of its own
    answers: Path | None = None  # answers gathered elsewhere (judge.suites.answers) instead of asking targets
    settings: RunSettings = field(default_factory=RunSettings)
    protocol: str = DEFAULT_PROTOCOL  # "paper": the authors' readers, judge prompts and decoding where published
    first: int | None = None  # the first N prompts of each suite in the dataset's order (instead of --limit)
    paper_decoding: bool = True  # under paper: the authors' per-suite temperature / max_tokens for the targets
    validity: Path | None = None  # a `trustmh validate --out` folder: whether this bench's judges were validated
    max_reasks: int = DEFAULT_MAX_REASKS  # under paper: how often an answer the authors' reader rejects is asked again


@dataclass(frozen=True)
class BenchResult:
    """What a bench did: its exit code, each stage's summary, the scorecard and the files written.

    A dry run has the plans (per target, per judge; `judge_plan` None when no chosen suite is judged) and
    no summaries, scorecard or files."""

    out: Path
    exit_code: ExitCode
    prompts: int
    respond_summary: dict[str, Any] | None = None
    score_summary: dict[str, Any] | None = None  # None: no chosen suite is judged
    scorecard: dict[str, Any] | None = None
    files: tuple[Path, ...] = ()  # scorecard.json, scorecard.md (and report.html, added by judge.api)
    target_plan: list[dict[str, Any]] | None = None
    judge_plan: list[dict[str, Any]] | None = None
    reask_plan: list[dict[str, Any]] | None = None  # paper protocol: the re-asks at most (per target)
    paper_judge_plan: list[dict[str, Any]] | None = None  # paper protocol: the authors' judge prompts (per judge)
    reask_summary: dict[str, Any] | None = None  # paper protocol: the bound and each re-ask round's calls


def run_recorded_bench(
    recorded: str, out: Path, bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = DEFAULT_SEED, *,
    protocol: str = DEFAULT_PROTOCOL, reparse: bool = False,
) -> BenchResult:
    """Import the recorded run into OUT (prompts.jsonl, respond/, score/, bench.json), then write
    OUT/scorecard.json and OUT/scorecard.md, each published figure beside ours (`published`). An
    unknown name or missing data is a usage error."""
    if recorded not in RECORDED:
        raise UsageError(f"{recorded!r}: unknown recorded run; available: {', '.join(RECORDED)}", field="recorded")
    check_protocol(protocol)
    import_recorded(recorded, out, protocol=protocol, reparse=reparse)  # a DatasetError names the missing file
    card = scorecard_for(out, bootstrap, seed)
    card["published"] = published_comparison(card, published_figures())
    files = write_scorecard(out, card)
    prompts = sum(1 for _ in iter_jsonl(out / "prompts.jsonl"))
    return BenchResult(out, ExitCode.OK, prompts, scorecard=card, files=files)


def check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise UsageError(f"--protocol {protocol!r}: choose one of {', '.join(PROTOCOLS)}", field="protocol")


TRUNCATION_NOTE = "\n[trustmh cut the rest of this answer, {cut:,} characters, to fit max_response_chars]"


def judged_copy(item: dict[str, Any], max_chars: int) -> dict[str, Any]:
    """A target's answer as the judge sees it: whole, or, when it is longer than `max_chars`, cut to fit
    with a note saying so, and `meta.response_truncated` recording its length. An answer is the system
    under test, not the user's input: one overlong answer must not stop the bench."""
    response = item["response"]
    if len(response) <= max_chars:
        return item
    note = TRUNCATION_NOTE.format(cut=len(response))
    keep = max(0, max_chars - len(note))
    note = TRUNCATION_NOTE.format(cut=len(response) - keep)
    meta = {**(item.get("meta") or {}), "response_truncated": {"chars": len(response), "judged_chars": keep}}
    return {**item, "response": (response[:keep] + note)[:max_chars], "meta": meta}


def _write_judged_items(responses: Path, path: Path, max_chars: int, protocol: str = DEFAULT_PROTOCOL) -> int:
    """The answers whose suite needs a rubric judge (a pillar), as score items (overlong ones cut to fit),
    in one streaming pass over responses.jsonl (memory does not grow with the run); no file when there is
    none. Under the paper protocol, suites judged by the authors' own prompt are left to that stage."""
    count = 0

    def judged() -> Iterator[dict[str, Any]]:
        nonlocal count
        for _, item in iter_jsonl(responses):
            if item.get("pillar") and not (protocol == "paper" and paper_judged((item.get("meta") or {}).get("suite"))):
                count += 1
                yield judged_copy(item, max_chars)

    write_jsonl_atomic(path, judged())
    if not count:
        path.unlink()
    return count


def _stand_in_answers(prepared: PreparedResponses, wanted: Callable[[TargetCall], bool]) -> Iterator[dict[str, Any]]:
    """The response items of the `wanted` target calls: the answer already known (cache, earlier run) or a
    stand-in of the estimated length, every turn."""
    target_calls, known = prepared.calls, prepared.known
    for index in range(len(target_calls)):
        call = target_calls[index]
        if not wanted(call):
            continue
        result = known[index]
        if result is not None and result.ok:
            turns = result.payload["turns"]
        else:
            turns = ["x" * (4 * call.answer_tokens())] * (1 + len(call.prompt.followups))
        yield response_item(call, turns)


def _estimated_judge_plan(
    options: BenchOptions, prepared_responses: PreparedResponses, scratch: Path
) -> list[dict[str, Any]] | None:
    """Judge calls a bench would make, priced by score's own dry run: on the answers already known (cache,
    earlier run) and, for the rest, on a stand-in answer of the estimated length. None when no chosen
    suite is judged by a rubric (under paper, the suites the authors' own prompt judges are not)."""

    def rubric_judged(call: TargetCall) -> bool:
        return bool(call.prompt.pillars) and not (options.protocol == "paper"
                                                  and paper_judged(call.prompt.meta.get("suite")))

    items = scratch / JUDGED_ITEMS
    write_jsonl_atomic(items, _stand_in_answers(prepared_responses, rubric_judged))
    if items.stat().st_size == 0:
        return None
    return dry_run_plan(prepare(_score_options(options, items, scratch / "score")))


def _estimated_paper_judge_plan(
    options: BenchOptions, answers: Iterator[dict[str, Any]], scratch: Path
) -> list[dict[str, Any]] | None:
    """Under paper: the authors' judge prompts (ethics sc1-sc5, the tier-3 proxy question) the bench would
    send on these answers (known, imported or stand-ins), priced per judge as the calls they are (plain chat
    calls through the engine, see `_paper_judge_stage`); None when no chosen suite has such a judge."""
    if options.protocol != "paper":
        return None
    stage = scratch / PAPER_JUDGE_DIR
    make_private_dir(stage)
    write_jsonl_atomic(stage / "prompts.jsonl", judge_prompts(answers))
    if (stage / "prompts.jsonl").stat().st_size == 0:
        return None
    prepared = prepare_responses(RespondOptions(
        prompts=[stage / "prompts.jsonl"], targets=[_as_target(j) for j in options.judges],
        out=options.out / PAPER_JUDGE_DIR / "respond", known_pillars=set(), settings=options.settings))
    return [{"judge": row.pop("target"), **row} for row in target_plan(prepared)]


def _score_options(options: BenchOptions, items: Path, out: Path) -> ScoreOptions:
    """The score stage of a bench: its judges, rubrics, samples and families, with the bench's settings."""
    return ScoreOptions(
        items=[items],
        judges=options.judges,
        rubrics_dir=options.rubrics_dir,
        out=out,
        settings=options.settings,
        samples=options.samples,
        families=options.families,
        split_critical=options.split_critical,
    )


def run_bench(options: BenchOptions) -> BenchResult:
    """The whole loop (or, with `dry_run`, its price); every argument is checked before anything is sent."""
    check_samples(options.judges, options.samples)
    check_protocol(options.protocol)
    if options.max_reasks < 0:
        raise UsageError(f"--max-reasks {options.max_reasks}: must be 0 (ask once) or more", field="max_reasks")
    rubrics = load_rubric_dir(options.rubrics_dir)  # a broken rubric folder is a usage error before anything runs
    validation = read_validity(options.validity) if options.validity is not None else None
    prompts = build_prompts(options.suites, options.limit, options.seed, first=options.first)
    if options.protocol == "paper" and options.paper_decoding:
        prompts = with_paper_decoding(prompts)
    if not prompts:
        raise UsageError("the chosen suites have no prompts (check `limit=`)", field="suites")
    respond_options = RespondOptions(
        prompts=[options.out / "prompts.jsonl"],
        targets=options.targets,
        out=options.out / "respond",
        known_pillars=set(rubrics),
        settings=options.settings,
    )
    if options.answers is not None:
        options = replace(options, targets=[])  # the answers file names the targets
        answer_targets = check_answers(options.answers, prompts)  # every problem listed before anything is written
    if options.settings.dry_run:
        if options.answers is not None:
            return _answers_dry_run(options, prompts, answer_targets)
        return _dry_run(options, respond_options, prompts)
    make_private_dir(options.out)
    with OutDirLock(options.out):
        started_at, started = datetime.now(UTC), time.monotonic()
        write_jsonl_atomic(options.out / "prompts.jsonl", prompts)
        if options.answers is not None:
            respond_summary = import_answers(options.answers, prompts, respond_options.out)
            respond_code = ExitCode.FAILED_VERDICTS if respond_summary["calls"]["failed"] else ExitCode.OK
        else:
            respond_code, respond_summary = execute_responses(prepare_responses(respond_options))
        reask_summary = None
        if reasking(options):
            reask_code, reask_summary = run_reasks(respond_options, options.out, options.max_reasks)
            respond_code = ExitCode.FAILED_VERDICTS if ExitCode.FAILED_VERDICTS in (respond_code, reask_code) \
                else respond_code
        score_code, score_summary = ExitCode.OK, None
        judged = _write_judged_items(respond_options.out / "responses.jsonl", options.out / JUDGED_ITEMS,
                                     options.settings.max_response_chars, options.protocol)
        if judged:
            score_options = _score_options(options, options.out / JUDGED_ITEMS, options.out / "score")
            score_code, score_summary = execute(prepare(score_options))
        if options.protocol == "paper":
            paper_code, paper_summary = _paper_judge_stage(options, respond_options.out / "responses.jsonl")
            if paper_summary is not None:
                score_code = ExitCode.FAILED_VERDICTS if ExitCode.FAILED_VERDICTS in (score_code, paper_code) \
                    else score_code
                score_summary = _merged_summary(score_summary, paper_summary)
        card = scorecard_for(options.out, options.bootstrap, options.seed, options.protocol)
        files = write_scorecard(options.out, card)
        record = _bench_record(options, started_at, time.monotonic() - started)
        if options.answers is not None:
            record["targets"] = respond_summary["targets"]
        if validation is not None:
            record["validity"] = validity_record(options.validity, validation,
                                                 [j.public_dict() for j in options.judges],
                                                 {p: r.content_hash for p, r in rubrics.items()})
        write_json_atomic(options.out / "bench.json", record)
    code = ExitCode.FAILED_VERDICTS if ExitCode.FAILED_VERDICTS in (respond_code, score_code) else ExitCode.OK
    return BenchResult(options.out, code, len(prompts), respond_summary, score_summary, card, files,
                       reask_summary=reask_summary)


def reasking(options: BenchOptions) -> bool:
    """Whether this bench re-asks rejected answers: under paper, when it asks the targets itself."""
    return options.protocol == "paper" and options.answers is None


def paper_judged(suite: str | None) -> bool:
    """Whether a suite's answers are judged by the authors' own prompt under the paper protocol."""
    return suite in PAPER and PAPER[suite].judge is not None


def _as_target(judge: JudgeSpec) -> TargetSpec:
    """A judge asked the authors' prompt as a plain chat message: through the engine as a target call
    (cache, journal/resume, retries, concurrency, batch), its free-text answer read by the authors' parser."""
    return TargetSpec(**{f.name: getattr(judge, f.name) for f in fields(JudgeSpec)})


def _paper_judge_stage(options: BenchOptions, responses: Path) -> tuple[ExitCode, dict[str, Any] | None]:
    """The authors' judge prompts (ethics sc1-sc5, the tier-3 proxy question) for every answered item of
    a paper-judged suite, asked of every judge in OUT/paper-judge/, then read into verdict rows
    (OUT/paper-judge/verdicts.jsonl) for the scorecard. (OK, None) when no chosen suite has such a judge."""
    stage = options.out / PAPER_JUDGE_DIR
    ok_items = (item for _, item in iter_jsonl(responses) if item.get("response") is not None)
    prompts = list(judge_prompts(ok_items))
    if not prompts:
        return ExitCode.OK, None
    make_private_dir(stage)
    write_jsonl_atomic(stage / "prompts.jsonl", prompts)
    code, summary = execute_responses(prepare_responses(RespondOptions(
        prompts=[stage / "prompts.jsonl"], targets=[_as_target(j) for j in options.judges], out=stage / "respond",
        known_pillars=set(), settings=options.settings)))
    calls = stage / "respond" / "calls.jsonl"
    write_jsonl_atomic(stage / PAPER_VERDICTS, (row for _, call in iter_jsonl(calls) for row in paper_verdicts(call)))
    return code, summary


def _merged_summary(score: dict[str, Any] | None, paper: dict[str, Any]) -> dict[str, Any]:
    """The judge calls of both judging stages, counted together for the terminal line."""
    counts = {k: paper["calls"].get(k, 0) for k in ("planned", "requested", "cache_hits", "failed")}
    if score is not None:
        counts = {k: counts[k] + score["calls"].get(k, 0) for k in counts}
    return {**(score or {}), "calls": counts, "paper_judge": paper}


def _dry_run(options: BenchOptions, respond_options: RespondOptions, prompts: list[dict[str, Any]]) -> BenchResult:
    """Price target and judge calls separately; nothing is written under OUT, nothing is sent."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "prompts.jsonl"
        write_jsonl_atomic(path, prompts)
        prepared = prepare_responses(replace(respond_options, prompts=[path]))
        targets, judges = target_plan(prepared), _estimated_judge_plan(options, prepared, Path(scratch))
        paper_judges = _estimated_paper_judge_plan(options, _stand_in_answers(
            prepared, lambda call: paper_judged(call.prompt.meta.get("suite"))), Path(scratch))
        reasks = reask_dry_run(respond_options, path, Path(scratch), options.max_reasks) \
            if reasking(options) else None
    return BenchResult(options.out, ExitCode.OK, len(prompts), target_plan=targets, judge_plan=judges,
                       reask_plan=reasks, paper_judge_plan=paper_judges)


def _answers_dry_run(options: BenchOptions, prompts: list[dict[str, Any]], targets: list[str]) -> BenchResult:
    """Price the judge calls on the answers file's own answers; nothing is written under OUT, nothing is sent."""
    with tempfile.TemporaryDirectory() as scratch:
        respond = Path(scratch) / "respond"
        assert options.answers is not None
        import_answers(options.answers, prompts, respond)
        items = Path(scratch) / JUDGED_ITEMS
        judged = _write_judged_items(respond / "responses.jsonl", items, options.settings.max_response_chars,
                                     options.protocol)
        plan = dry_run_plan(prepare(_score_options(options, items, Path(scratch) / "score"))) if judged else None
        answered = (item for _, item in iter_jsonl(respond / "responses.jsonl"))
        paper_judges = _estimated_paper_judge_plan(options, answered, Path(scratch))
    rows = [{"target": t, "calls": 0, "cached": 0, "resumed": 0, "to_ask": 0, "est_input_tokens": 0,
             "est_output_tokens": 0, "est_cost_usd": 0.0} for t in targets]  # fmt: skip
    return BenchResult(options.out, ExitCode.OK, len(prompts), target_plan=rows, judge_plan=plan,
                       paper_judge_plan=paper_judges)


def _bench_record(options: BenchOptions, started_at: datetime, wall_time_s: float) -> dict[str, Any]:
    return {
        "suites": options.suites,
        "targets": [t.public_dict() for t in options.targets],
        "judges": [j.public_dict() for j in options.judges],
        "limit": options.limit,
        "seed": options.seed,
        "samples": options.samples,
        "bootstrap": options.bootstrap,
        "command_line": list(options.settings.command_line),
        "started_at": started_at.isoformat(),
        "ended_at": datetime.now(UTC).isoformat(),
        "wall_time_s": round(wall_time_s, 3),
        **({"split_critical": True} if options.split_critical else {}),
        **({"answers": str(options.answers)} if options.answers is not None else {}),
        "protocol": options.protocol,
        **({"first": options.first} if options.first is not None else {}),
        **({"max_reasks": options.max_reasks} if reasking(options) else {}),
        **({"decoding": decoding_manifest(options.suites)}
           if options.protocol == "paper" and options.paper_decoding else {}),
        **({"suite_notes": notes} if (notes := {s: list(suite_notes(s)) for s in options.suites if suite_notes(s)})
           else {}),
    }
