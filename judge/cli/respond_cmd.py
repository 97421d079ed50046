"""`trustmh respond`: the chatbots under test answer a prompts file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from judge import api
from judge.calls.runner import print_plan_table
from judge.cli.batch_options import DEFAULT_POLL_S, BatchOption, BatchPollOption
from judge.cli.common import RUNS_DIR, cache_option, public_command_line, say, say_not_a_model
from judge.settings import RunSettings

out_console = Console()
err_console = Console(stderr=True)

TargetsOption = Annotated[
    str | None,
    typer.Option("--targets", help="Comma-separated PROVIDER:MODEL\\[@URL] or names from --targets-file."),
]
TargetsFileOption = Annotated[
    Path | None,
    typer.Option("--targets-file", help="targets.toml: per-target system prompt, decoding, limits and prices."),
]


def print_respond_summary(summary: dict, out: Path) -> None:
    calls = summary["calls"]
    reasons = ", ".join(f"{k} {v}" for k, v in summary["failures_by_reason"].items())
    say(
        err_console,
        f"{calls['planned']} target calls: {calls['requested']} requested, {calls['cache_hits']} from cache, "
        f"{calls['resumed']} resumed, {calls['failed']} failed{f' ({reasons})' if reasons else ''} "
        f"→ {out}/responses.jsonl",
    )
    say_not_a_model(err_console, summary)


def respond(
    prompts: Annotated[list[Path], typer.Argument(help="Prompts: JSONL or CSV (`trustmh suites build` writes them).")],
    targets: TargetsOption = None,
    targets_file: TargetsFileOption = None,
    out: Annotated[Path, typer.Option("--out", help="Output folder; re-running resumes it.")] = RUNS_DIR / "respond",
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
    settings = RunSettings(
        cache_dir=cache_option(cache, no_cache),
        concurrency=concurrency,
        dry_run=dry_run,
        quiet=quiet,
        overwrite=overwrite,
        batch=batch,
        batch_poll_s=batch_poll,
        command_line=tuple(public_command_line()),
    )
    result = api.respond(
        prompts, targets=targets, targets_file=targets_file, out=out, rubrics=rubrics, samples=samples,
        settings=settings,
    )
    if result.summary is None:
        print_plan_table(result.plan or [], "target", "Dry run: nothing was sent", out_console, batch=batch)
        return
    print_respond_summary(result.summary, out)
    raise typer.Exit(result.exit_code)
