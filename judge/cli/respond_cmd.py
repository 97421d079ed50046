"""`trustmh respond`: the chatbots under test answer a prompts file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from judge.bundled import bundled_path
from judge.calls.runner import print_plan_table
from judge.cli.batch_options import DEFAULT_POLL_S, BatchOption, BatchPollOption
from judge.cli.common import cache_dir_for, public_command_line
from judge.errors import UsageError
from judge.judges import JudgeConfigError
from judge.respond.pipeline import RespondOptions, execute_responses, prepare_responses, respond_dry_run
from judge.respond.targets import TargetSpec, load_targets_file, resolve_targets
from judge.rubric import RubricError, load_rubric_dir

out_console = Console()
err_console = Console(stderr=True)

TargetsOption = Annotated[
    str | None,
    typer.Option("--targets", help="Comma-separated PROVIDER:MODEL[@BASE_URL] or names from --targets-file."),
]
TargetsFileOption = Annotated[
    Path | None,
    typer.Option("--targets-file", help="targets.toml: per-target system prompt, decoding, limits and prices."),
]


def resolve_target_options(targets: str | None, targets_file: Path | None) -> list[TargetSpec]:
    try:
        loaded = load_targets_file(targets_file) if targets_file else None
        return resolve_targets(targets, loaded)
    except JudgeConfigError as exc:
        raise UsageError(str(exc)) from exc


def known_pillars(rubrics: Path | None) -> set[str]:
    """Pillar names a prompt may carry: those the rubrics used for scoring define."""
    try:
        return set(load_rubric_dir(rubrics or bundled_path("rubrics")))
    except RubricError as exc:
        raise UsageError(str(exc)) from exc


def print_respond_summary(summary: dict, out: Path) -> None:
    calls = summary["calls"]
    reasons = ", ".join(f"{k} {v}" for k, v in summary["failures_by_reason"].items())
    err_console.print(
        f"{calls['planned']} target calls: {calls['requested']} requested, {calls['cache_hits']} from cache, "
        f"{calls['resumed']} resumed, {calls['failed']} failed{f' ({reasons})' if reasons else ''} "
        f"→ {out}/responses.jsonl",
        markup=False,
        highlight=False,
    )


def respond(
    prompts: Annotated[list[Path], typer.Argument(help="Prompts: JSONL or CSV (`trustmh suites build` writes them).")],
    targets: TargetsOption = None,
    targets_file: TargetsFileOption = None,
    out: Annotated[Path, typer.Option("--out", help="Output folder; re-running resumes it.")] = Path("trustmh-respond"),
    samples: Annotated[int, typer.Option("--samples", min=1, help="Answers per target (use temperature > 0).")] = 1,
    cache: Annotated[Path | None, typer.Option("--cache", help="Cache folder (default: $TRUSTMH_CACHE_DIR).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the cache.")] = False,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Concurrent calls per target.")] = 8,
    rubrics: Annotated[Path | None, typer.Option("--rubrics", help="Rubrics whose pillars prompts may name.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show calls, cache hits, tokens and cost; send nothing.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the results of a different run already in --out.")
    ] = False,
    batch: BatchOption = False,
    batch_poll: BatchPollOption = DEFAULT_POLL_S,
) -> None:
    """Send every prompt to every target and write OUT/responses.jsonl (items `trustmh score` accepts).

    Example: trustmh respond prompts.jsonl --targets openai:gpt-4o-mini,anthropic:claude-haiku-4-5 --out runs/answers

    Exit codes: 0 every prompt answered, 3 some target calls failed (listed in OUT/calls.jsonl with the
    reason), 2 bad input (nothing sent), 1 internal error.
    """
    options = RespondOptions(
        prompts=prompts,
        targets=resolve_target_options(targets, targets_file),
        out=out,
        cache_dir=None if no_cache else cache_dir_for(cache, dry_run),
        known_pillars=known_pillars(rubrics),
        samples=samples,
        concurrency=concurrency,
        dry_run=dry_run,
        quiet=quiet,
        overwrite=overwrite,
        batch=batch,
        batch_poll_s=batch_poll,
        command_line=public_command_line(),
    )
    prepared = prepare_responses(options)
    if dry_run:
        print_plan_table(respond_dry_run(prepared), "target", "Dry run: nothing was sent", out_console, batch=batch)
        return
    code, summary = execute_responses(prepared)
    print_respond_summary(summary, out)
    raise typer.Exit(code)
