"""`trustmh bench`: build → respond → score → metrics in one out directory, or a recorded run imported.

The live bench chains the stages, each with its own resumable out directory under OUT (respond/ and
score/), so a bench killed at any point and started again with the same arguments finishes with the
files of an uninterrupted run and repeats no answered call: the prompts are rebuilt identically
(seeded sampling), and each stage resumes from its journal and the cache.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from judge.bundled import bundled_path
from judge.calls.runner import print_plan_table
from judge.cli.batch_options import DEFAULT_POLL_S, BatchOption, BatchPollOption
from judge.cli.common import cache_dir_for, families_for, judge_options, public_command_line
from judge.cli.report_cmd import write_run_report
from judge.cli.respond_cmd import (
    TargetsFileOption,
    TargetsOption,
    known_pillars,
    print_respond_summary,
    resolve_target_options,
)
from judge.cli.suites_cmd import build_prompts, print_primary_table, scorecard_for
from judge.datasets import DatasetError
from judge.errors import UsageError
from judge.families import Families
from judge.judges import JudgeConfigError, JudgeSpec, check_samples
from judge.respond.calls import response_item
from judge.respond.pipeline import (
    PreparedResponses,
    RespondOptions,
    execute_responses,
    prepare_responses,
    respond_dry_run,
)
from judge.respond.targets import TargetSpec
from judge.rubric import load_rubric_dir
from judge.rundir import OutDirLock, make_private_dir, write_json_atomic, write_jsonl_atomic
from judge.score import ScoreOptions, dry_run_plan, execute, prepare
from judge.suites.published import RECORDED, import_recorded
from judge.suites.scorecard import DEFAULT_BOOTSTRAP, DEFAULT_SEED, iter_jsonl, write_scorecard

out_console = Console()
err_console = Console(stderr=True)

JUDGED_ITEMS = "judged-items.jsonl"  # the answers of suites that need a judge, as score items


@dataclass
class BenchOptions:
    suites: list[str]
    targets: list[TargetSpec]
    judges: list[JudgeSpec]
    out: Path
    cache_dir: Path | None
    rubrics_dir: Path
    limit: int | None
    seed: int
    samples: int
    concurrency: int
    bootstrap: int
    dry_run: bool
    quiet: bool
    overwrite: bool
    command_line: list[str]
    batch: bool = False
    batch_poll_s: float = DEFAULT_POLL_S
    families: Families | None = None  # a judges file's [families] over the built-in ones; None: built-in


def run_recorded_bench(
    recorded: str, out: Path, console: Console, bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = DEFAULT_SEED
) -> None:
    """Import the recorded run into OUT (prompts.jsonl, respond/, score/, bench.json), then write
    OUT/scorecard.json and OUT/scorecard.md. An unknown name or missing data is a usage error (exit 2)."""
    if recorded not in RECORDED:
        raise UsageError(f"--recorded: unknown recorded run {recorded!r}; available: {', '.join(RECORDED)}")
    try:
        import_recorded(recorded, out)
    except DatasetError as exc:
        raise UsageError(f"--recorded {recorded}: {exc}") from exc
    card = scorecard_for(out, bootstrap, seed)
    json_path, md_path = write_scorecard(out, card)
    report_path = write_run_report(out)
    print_primary_table(card, console, title=f"Recorded run {recorded}")
    console.print(
        f"wrote {out}/prompts.jsonl, respond/, score/, {json_path.name}, {md_path.name} and {report_path.name}"
    )


def _write_judged_items(responses: Path, path: Path) -> int:
    """The answers whose suite needs a judge (a pillar), as score items, in one streaming pass over
    responses.jsonl (memory does not grow with the run); no file when there is none."""
    count = 0

    def judged() -> Iterator[dict[str, Any]]:
        nonlocal count
        for _, item in iter_jsonl(responses):
            if item.get("pillar"):
                count += 1
                yield item

    write_jsonl_atomic(path, judged())
    if not count:
        path.unlink()
    return count


def _estimated_judge_plan(
    options: BenchOptions, prepared_responses: PreparedResponses, scratch: Path
) -> list[dict[str, Any]] | None:
    """Judge calls a bench would make, priced by score's own dry run: on the answers already known (cache,
    earlier run) and, for the rest, on a stand-in answer of the estimated length. None when no chosen
    suite is judged."""

    def stand_ins() -> Iterator[dict[str, Any]]:
        target_calls, known = prepared_responses.calls, prepared_responses.known
        for index in range(len(target_calls)):
            call = target_calls[index]
            if not call.prompt.pillars:
                continue
            result = known[index]
            if result is not None and result.ok:
                turns = result.payload["turns"]
            else:  # a stand-in answer of the estimated length, every turn
                turns = ["x" * (4 * call.answer_tokens())] * (1 + len(call.prompt.followups))
            yield response_item(call, turns)

    items = scratch / JUDGED_ITEMS
    write_jsonl_atomic(items, stand_ins())
    if items.stat().st_size == 0:
        return None
    return dry_run_plan(prepare(_score_options(options, items, scratch / "score", dry_run=True)))


def _score_options(options: BenchOptions, items: Path, out: Path, *, dry_run: bool = False) -> ScoreOptions:
    """The score stage of a bench: its judges, rubrics, cache, samples, families and batch settings."""
    return ScoreOptions(
        items=[items],
        judges=options.judges,
        rubrics_dir=options.rubrics_dir,
        out=out,
        cache_dir=options.cache_dir,
        samples=options.samples,
        concurrency=options.concurrency,
        dry_run=dry_run,
        quiet=options.quiet or dry_run,
        families=options.families,
        overwrite=options.overwrite,
        command_line=options.command_line,
        batch=options.batch,
        batch_poll_s=options.batch_poll_s,
    )


def run_bench(options: BenchOptions) -> int:
    """The whole loop; returns the exit code (0 all answered and judged, 3 some calls failed)."""
    prompts = build_prompts(options.suites, options.limit, options.seed, option="--suites")
    if not prompts:
        raise UsageError("the chosen suites have no prompts (check --limit)")
    respond_options = RespondOptions(
        prompts=[options.out / "prompts.jsonl"],
        targets=options.targets,
        out=options.out / "respond",
        cache_dir=options.cache_dir,
        known_pillars=set(load_rubric_dir(options.rubrics_dir)),
        samples=1,
        concurrency=options.concurrency,
        dry_run=options.dry_run,
        quiet=options.quiet,
        overwrite=options.overwrite,
        command_line=options.command_line,
        batch=options.batch,
        batch_poll_s=options.batch_poll_s,
    )
    if options.dry_run:
        return _dry_run(options, respond_options, prompts)
    make_private_dir(options.out)
    with OutDirLock(options.out):
        started_at, started = datetime.now(UTC), time.monotonic()
        write_jsonl_atomic(options.out / "prompts.jsonl", prompts)
        prepared = prepare_responses(respond_options)
        respond_code, respond_summary = execute_responses(prepared)
        print_respond_summary(respond_summary, respond_options.out)
        score_code = 0
        if _write_judged_items(respond_options.out / "responses.jsonl", options.out / JUDGED_ITEMS):
            score_options = _score_options(options, options.out / JUDGED_ITEMS, options.out / "score")
            score_code, score_summary = execute(prepare(score_options))
            calls = score_summary["calls"]
            err_console.print(
                f"{calls['planned']} judge calls: {calls['requested']} requested, {calls['cache_hits']} from cache, "
                f"{calls['failed']} failed → {options.out}/score/verdicts.jsonl",
                markup=False,
                highlight=False,
            )
        card = scorecard_for(options.out, options.bootstrap, options.seed)
        json_path, md_path = write_scorecard(options.out, card)
        write_json_atomic(options.out / "bench.json", _bench_record(options, started_at, time.monotonic() - started))
        report_path = write_run_report(options.out)
    print_primary_table(card, out_console)
    out_console.print(f"wrote {json_path}, {md_path} and {report_path}")
    return 3 if 3 in (respond_code, score_code) else 0


def _dry_run(options: BenchOptions, respond_options: RespondOptions, prompts: list[dict[str, Any]]) -> int:
    """Price target and judge calls separately; nothing is written under --out, nothing is sent."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "prompts.jsonl"
        write_jsonl_atomic(path, prompts)
        respond_options.prompts = [path]
        prepared = prepare_responses(respond_options)
        title = "Dry run, targets: nothing was sent"
        print_plan_table(respond_dry_run(prepared), "target", title, out_console, batch=options.batch)
        judge_rows = _estimated_judge_plan(options, prepared, Path(scratch))
        if judge_rows is None:
            out_console.print("Dry run, judges: none of the chosen suites is judged")
        else:
            title = "Dry run, judges (estimated)"
            print_plan_table(judge_rows, "judge", title, out_console, batch=options.batch)
    out_console.print(
        f"{len(prompts)} prompt(s) from {len(options.suites)} suite(s). Judge calls are estimated on answers "
        "of about 400 tokens where the answer is not known yet; token figures are estimates."
    )
    return 0


def _bench_record(options: BenchOptions, started_at: datetime, wall_time_s: float) -> dict[str, Any]:
    return {
        "suites": options.suites,
        "targets": [t.public_dict() for t in options.targets],
        "judges": [j.public_dict() for j in options.judges],
        "limit": options.limit,
        "seed": options.seed,
        "samples": options.samples,
        "bootstrap": options.bootstrap,
        "command_line": options.command_line,
        "started_at": started_at.isoformat(),
        "ended_at": datetime.now(UTC).isoformat(),
        "wall_time_s": round(wall_time_s, 3),
    }


def bench(
    out: Annotated[Path, typer.Option("--out", help="The bench's out directory; re-running resumes it.")],
    suites: Annotated[
        str | None, typer.Option("--suites", help="Comma-separated suites (see `trustmh suites list`).")
    ] = None,
    targets: TargetsOption = None,
    targets_file: TargetsFileOption = None,
    judges: Annotated[
        str | None,
        typer.Option("--judges", help="Comma-separated PROVIDER:MODEL[@BASE_URL] or names from --judges-file."),
    ] = None,
    judges_file: Annotated[
        Path | None, typer.Option("--judges-file", help="judges.toml with per-judge settings.")
    ] = None,
    recorded: Annotated[
        str | None, typer.Option("--recorded", help="Import a published run instead (trustmh-bench), offline.")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N prompts per suite (seeded).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the prompt sample and of the bootstrap.")] = DEFAULT_SEED,
    samples: Annotated[int, typer.Option("--samples", min=1, help="Samples per judge (use temperature > 0).")] = 1,
    rubrics: Annotated[Path | None, typer.Option("--rubrics", help="Folder of rubric YAML files.")] = None,
    cache: Annotated[Path | None, typer.Option("--cache", help="Cache folder (default: $TRUSTMH_CACHE_DIR).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the cache.")] = False,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="Concurrent calls per target and judge.")
    ] = 8,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples of prompts.")
    ] = DEFAULT_BOOTSTRAP,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Price target and judge calls; send nothing.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a different run already in --out.")] = False,
    batch: BatchOption = False,
    batch_poll: BatchPollOption = DEFAULT_POLL_S,
) -> None:
    """Run TrustMH-Bench suites on chatbots: build prompts, the targets answer, the judges judge, metrics;
    with --recorded, score TrustMH-Bench's published outputs (6 models on privacy, 12 on ethics) offline.

    Example: trustmh bench --suites safety/jailbreak,ethics/reasoning --targets openai:gpt-4o-mini
    --judges openai:gpt-4.1 --out runs/bench1 --limit 50

    Example: trustmh bench --recorded trustmh-bench --out runs/published   (offline: the paper's own outputs)

    Exit codes: 0 everything answered and judged, 3 some target or judge calls failed (they count as failures
    in the metrics), 2 bad input or usage (nothing sent), 1 internal error.
    """
    if recorded is not None:
        if suites or targets or targets_file or judges or judges_file:
            raise UsageError("--recorded imports a published run: give it only --out (and --bootstrap, --seed)")
        run_recorded_bench(recorded, out, out_console, bootstrap, seed)
        return
    if not suites:
        raise UsageError("--suites: name the suites to run (see `trustmh suites list`), or use --recorded")
    judge_specs, loaded = judge_options(judges, judges_file)
    try:
        check_samples(judge_specs, samples)
    except JudgeConfigError as exc:
        raise UsageError(str(exc)) from exc
    options = BenchOptions(
        suites=[s.strip() for s in suites.split(",") if s.strip()],
        targets=resolve_target_options(targets, targets_file),
        judges=judge_specs,
        out=out,
        cache_dir=None if no_cache else cache_dir_for(cache, dry_run),
        rubrics_dir=rubrics or bundled_path("rubrics"),
        limit=limit,
        seed=seed,
        samples=samples,
        concurrency=concurrency,
        bootstrap=bootstrap,
        dry_run=dry_run,
        quiet=quiet,
        overwrite=overwrite,
        command_line=public_command_line(),
        batch=batch,
        batch_poll_s=batch_poll,
        families=families_for(loaded, judges_file),
    )
    known_pillars(options.rubrics_dir)  # a broken rubric folder is a usage error before anything runs
    raise typer.Exit(run_bench(options))
