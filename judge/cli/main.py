"""The `trustmh` command line: a thin typer layer over judge.score, judge.rubric and calibration."""

from __future__ import annotations

import errno
import functools
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

import judge.cli.common
from judge import api
from judge.bundled import bundled_path
from judge.calls.cache import clear_cache, default_cache_dir, read_stats
from judge.calls.runner import print_plan_table
from judge.cli.batch_options import DEFAULT_POLL_S, BatchOption, BatchPollOption
from judge.cli.common import (
    RUNS_DIR,
    SplitCriticalOption,
    cache_option,
    flag_message,
    public_command_line,
    say,
    say_not_a_model,
)
from judge.cli.tables import failure_reasons, print_agreement, print_score_summary, wrapping_table
from judge.errors import ExitCode, Interrupted, Note, TrustMHError, UsageError
from judge.items import DEFAULT_MAX_RESPONSE_CHARS
from judge.panel import PanelOptions, judge_agreement
from judge.review import export_review_csv, import_review_csv, load_run_rubrics, reaggregate_run
from judge.rubric import Rubric, diff_rubrics, load_rubric_dir
from judge.rundir import read_jsonl, write_jsonl_atomic
from judge.settings import RunSettings
from judge.version import __version__

# Commands whose modules are imported only when they run (or for --help): `trustmh score` then starts
# without the suites, numpy, the report's templates or the audit. name -> (module, command function);
# LAZY_GROUPS: name -> (module, typer app of subcommands), listed after the groups defined here.
LAZY_COMMANDS = {
    "calibrate": ("calibration.cli", "calibrate_command"),
    "validate": ("calibration.cli", "validate_command"),
    "respond": ("judge.cli.respond_cmd", "respond"),
    "bench": ("judge.cli.bench_cmd", "bench"),
    "metrics": ("judge.cli.suites_cmd", "metrics_command"),
    "audit": ("judge.cli.audit_cmd", "audit_command"),
    "report": ("judge.cli.report_cmd", "report_command"),
    "export": ("judge.cli.export_cmd", "export_command"),
    "compare": ("judge.cli.compare_cmd", "compare_command"),
}
LAZY_GROUPS = {"suites": ("judge.cli.suites_cmd", "suites_app"), "data": ("judge.cli.data_cmd", "data_app")}


class LazyCommands(TyperGroup):
    """The top-level group: the commands defined here and those of LAZY_COMMANDS and LAZY_GROUPS, which are
    loaded when asked for by name."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return [*LAZY_COMMANDS, *super().list_commands(ctx), *LAZY_GROUPS]

    def get_command(self, ctx: typer.Context, cmd_name: str) -> TyperCommand | TyperGroup | None:
        lazy = LAZY_COMMANDS.get(cmd_name) or LAZY_GROUPS.get(cmd_name)
        if lazy is None:
            return super().get_command(ctx, cmd_name)
        module, attribute = lazy
        return _click_command(cmd_name, getattr(importlib.import_module(module), attribute))


@functools.cache
def _click_command(name: str, target: Any) -> TyperCommand | TyperGroup:
    """A typer app (a group of commands) or a command function as the click command typer makes of it."""
    if isinstance(target, typer.Typer):
        command = typer.main.get_group(target)
    else:
        single = typer.Typer()
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


app = typer.Typer(
    name="trustmh",
    cls=LazyCommands,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="Score chatbot responses to mental-health conversations with LLM judges, and audit the judges.",
)
rubrics_app = typer.Typer(no_args_is_help=True, help="Inspect, validate and compare rubrics.")
review_app = typer.Typer(no_args_is_help=True, help="Export escalated items for clinicians and import their decisions.")
cache_app = typer.Typer(no_args_is_help=True, help="Inspect or clear the verdict cache.")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", is_eager=True, callback=_print_version)
    ] = False,
) -> None:
    """Score chatbot responses to mental-health conversations with LLM judges, and audit the judges."""


app.add_typer(rubrics_app, name="rubrics")
app.add_typer(cache_app, name="cache")
app.add_typer(review_app, name="review")

out_console = Console()
err_console = Console(stderr=True)

RubricsOption = Annotated[
    Path | None, typer.Option("--rubrics", help="Folder of rubric YAML files (default: the bundled rubrics).")
]
CacheOption = Annotated[
    Path | None,
    typer.Option("--cache", help="Cache folder (default: $TRUSTMH_CACHE_DIR, else trustmh-judge in ~/.cache)."),
]
# The judge options `score` and `demo` share.
JudgesOption = Annotated[
    str | None,
    typer.Option("--judges", help="Comma-separated PROVIDER:MODEL\\[@URL] or names from --judges-file."),
]
JudgesFileOption = Annotated[Path | None, typer.Option("--judges-file", help="judges.toml with per-judge settings.")]
SamplesOption = Annotated[int, typer.Option("--samples", min=1, help="Samples per judge (use temperature > 0).")]
NoCacheOption = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the cache.")]
ConcurrencyOption = Annotated[
    int, typer.Option("--concurrency", min=1, help="Concurrent calls per judge (1 for a single-slot local server).")
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bar and no result tables (a dry run still shows its plan).")
]


def _rubrics_dir(path: Path | None) -> Path:
    return path or bundled_path("rubrics")


@app.command()
def score(
    items: Annotated[
        list[Path],
        typer.Argument(help="Items to judge: JSONL, CSV or TSV files; - reads standard input.", show_default=False),
    ],
    judges: JudgesOption = None,
    judges_file: JudgesFileOption = None,
    pillars: Annotated[str | None, typer.Option("--pillars", help="Comma-separated pillars to judge.")] = None,
    rubrics: RubricsOption = None,
    samples: SamplesOption = 1,
    out: Annotated[Path, typer.Option("--out", help="Output folder; re-running resumes it.")] = RUNS_DIR / "score",
    cache: CacheOption = None,
    no_cache: NoCacheOption = False,
    concurrency: ConcurrencyOption = 8,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show calls, cache hits, tokens and cost; send nothing.")
    ] = False,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Judge the valid items; list the bad ones in OUT/rejected.jsonl.")
    ] = False,
    max_response_chars: Annotated[
        int, typer.Option("--max-response-chars", min=1, help="Longer responses are rejected.")
    ] = DEFAULT_MAX_RESPONSE_CHARS,
    method: Annotated[
        str, typer.Option("--method", help="Panel aggregate: median, mean, majority or trimmed_mean.")
    ] = "median",
    min_judges: Annotated[
        int, typer.Option("--min-judges", min=1, help="Fewer successful judges leave a criterion undecided.")
    ] = 1,
    tiebreak: Annotated[
        str | None, typer.Option("--tiebreak", help="Judge asked only about escalated items (PROVIDER:MODEL or name).")
    ] = None,
    exclude_self: Annotated[
        bool, typer.Option("--exclude-self", help="Leave a judge out of the panel on targets of its own family.")
    ] = False,
    split_critical: SplitCriticalOption = False,
    quiet: QuietOption = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the results of a different run already in --out.")
    ] = False,
    batch: BatchOption = False,
    batch_poll: BatchPollOption = DEFAULT_POLL_S,
    engine: Annotated[
        str,
        typer.Option(
            "--engine", help="local, or ray: shards judged on a Ray cluster (pip install 'trustmh-judge[ray]')."
        ),
    ] = "local",
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="The Ray cluster to join (default: start a local one).")
    ] = None,
    ray_shard_items: Annotated[
        int, typer.Option("--ray-shard-items", min=1, help="Items per shard with --engine ray.")
    ] = 1000,
) -> None:
    """Judge responses against the pillar rubrics with one or more LLM judges.

    Example: trustmh score responses.jsonl --judges openai:gpt-4.1-mini,anthropic:claude-sonnet-4-5 --out runs/r1

    Exit codes: 0 all verdicts ok, 3 some verdicts failed (see verdicts.jsonl), 2 bad input (nothing judged),
    1 internal error.
    """
    settings = RunSettings(
        cache_dir=cache_option(cache, no_cache),
        concurrency=concurrency,
        dry_run=dry_run,
        quiet=quiet,
        overwrite=overwrite,
        batch=batch,
        batch_poll_s=batch_poll,
        max_response_chars=max_response_chars,
        command_line=tuple(public_command_line()),
    )
    result = api.score(
        items,
        judges=judges,
        judges_file=judges_file,
        out=out,
        rubrics=rubrics,
        pillars=[p.strip() for p in pillars.split(",") if p.strip()] if pillars else None,
        samples=samples,
        skip_invalid=skip_invalid,
        panel=PanelOptions(method=method, min_judges=min_judges, exclude_self=exclude_self),  # type: ignore[arg-type]
        tiebreak=tiebreak,
        split_critical=split_critical,
        settings=settings,
        engine=engine,  # type: ignore[arg-type]  # checked by api.score
        ray_address=ray_address,
        ray_shard_items=ray_shard_items,
    )
    if result.summary is None:
        print_score_plan(result, tiebreak is not None, settings)
        return
    summary = result.summary
    if not quiet:
        print_score_summary(summary, out_console, calls_line=False)
    if summary["agreement"] and not quiet:
        print_agreement(summary["agreement"], err_console)
    if summary["panel"]:
        panel = summary["panel"]
        say(
            err_console,
            f"panel: {panel['decided']} decided, {panel['undecided']} undecided, {panel['escalated']} escalated "
            f"for review ({out}/review.jsonl), {panel['critical_fail']} critical failures",
        )
    calls = summary["calls"]
    say(
        err_console,
        f"{calls['planned']} calls: {calls['requested']} requested, {calls['cache_hits']} from cache, "
        f"{calls['resumed']} resumed, {calls['failed']} failed{failure_reasons(summary)} → {out}/verdicts.jsonl",
    )
    say_not_a_model(err_console, summary)
    raise typer.Exit(result.exit_code)


def print_score_plan(result: api.ScoreResult, tiebreak: bool, settings: RunSettings) -> None:
    """A dry run's plan per judge (its output, so shown with --quiet too) and what its figures mean."""
    print_plan_table(result.plan or [], "judge", "Dry run: nothing was sent", out_console, batch=settings.batch)
    say(
        out_console,
        f"{result.items} item(s), {result.rejected} rejected; "
        "token figures are estimates (4 characters a token; outputs about 150 tokens a criterion)."
        + (" The tie-breaker row is an upper bound: it is asked only about escalated items." if tiebreak else ""),
    )


@app.command()
def panel(
    run_dir: Annotated[Path, typer.Argument(help="The --out folder of a finished `trustmh score` run.")],
    method: Annotated[str, typer.Option("--method", help="median, mean, majority or trimmed_mean.")] = "median",
    min_judges: Annotated[int, typer.Option("--min-judges", min=1)] = 1,
    exclude_self: Annotated[bool, typer.Option("--exclude-self")] = False,
) -> None:
    """Re-aggregate a finished run's verdicts into panel.jsonl and review.jsonl, with no judge call.

    Example: trustmh panel runs/r1 --method mean --min-judges 2
    """
    options = PanelOptions(method=method, min_judges=min_judges, exclude_self=exclude_self)  # type: ignore[arg-type]
    rubrics = load_run_rubrics(run_dir)
    panel_rows, review_rows = reaggregate_run(run_dir, rubrics, options)
    verdicts = [v for _, v in read_jsonl(run_dir / "verdicts.jsonl")]
    print_agreement(judge_agreement(verdicts, rubrics), out_console)
    decided = sum(r["status"] == "decided" for r in panel_rows)
    say(
        out_console,
        f"{len(panel_rows)} panel rows ({decided} decided), {len(review_rows)} escalated → {run_dir}/review.jsonl",
    )


@review_app.command("export")
def review_export(
    run_dir: Annotated[Path, typer.Argument(help="Run folder (with review.jsonl) or a review.jsonl file.")],
    csv_path: Annotated[Path | None, typer.Option(
        "--csv", help="CSV to write for the clinician (default: review.csv beside review.jsonl).",
        show_default=False)] = None,
) -> None:
    """Write the escalation queue as a CSV a clinician fills in (decision_score, reviewer, comment).

    Example: trustmh review export runs/r1 --csv review.csv
    """
    source = run_dir / "review.jsonl" if run_dir.is_dir() else run_dir
    csv_path = csv_path if csv_path is not None else source.parent / "review.csv"
    count = export_review_csv(source, csv_path)
    say(out_console, f"{count} rows to review → {csv_path}")


@review_app.command("import")
def review_import(
    csv_path: Annotated[Path, typer.Argument(help="The filled review CSV.")],
    out: Annotated[
        Path, typer.Option("--out", help="Human annotations (JSONL) to pass to `trustmh calibrate --human`.")
    ] = RUNS_DIR / "review-annotations.jsonl",
) -> None:
    """Read a filled review CSV back as human annotations usable by `trustmh calibrate --human`.

    Example: trustmh review import review.csv --out annotations.jsonl
    """
    annotations = import_review_csv(csv_path)
    write_jsonl_atomic(out, annotations)
    say(out_console, f"{len(annotations)} decisions → {out}")


# ---------------------------------------------------------------- rubrics


def _load_rubrics(directory: Path) -> dict[str, Rubric]:
    return load_rubric_dir(directory)  # a RubricError is a usage error naming file, line and field


@rubrics_app.command("list")
def rubrics_list(rubrics: RubricsOption = None) -> None:
    """List the rubrics with their content hash.  Example: trustmh rubrics list --rubrics my-rubrics/"""
    table = wrapping_table("", ["pillar", "version", "title", "criteria", "critical", "hash"], ["criteria", "critical"])
    for pillar, rubric in sorted(_load_rubrics(_rubrics_dir(rubrics)).items()):
        critical = sum(c.severity == "critical" for c in rubric.criteria)
        table.add_row(
            pillar, rubric.version, rubric.title, str(len(rubric.criteria)), str(critical), rubric.content_hash[:12]
        )
    out_console.print(table)


@rubrics_app.command("show")
def rubrics_show(
    pillar: Annotated[str, typer.Argument(help="Pillar name, e.g. crisis.")], rubrics: RubricsOption = None
) -> None:
    """Show one rubric's criteria and anchors.  Example: trustmh rubrics show crisis"""
    loaded = _load_rubrics(_rubrics_dir(rubrics))
    if pillar not in loaded:
        raise UsageError(f"no rubric for pillar {pillar!r}; available: {', '.join(sorted(loaded))}")
    rubric = loaded[pillar]
    show = functools.partial(out_console.print, markup=False, highlight=False)
    show(f"{rubric.title} ({rubric.pillar} v{rubric.version}, hash {rubric.content_hash[:12]})")
    show(rubric.summary)
    for reference in rubric.references:
        show(f"  • {reference}")
    for criterion in rubric.criteria:
        threshold = f", fails below {criterion.fail_below}" if criterion.fail_below is not None else ""
        show(f"\n{criterion.id} [{criterion.severity}{threshold}] {criterion.question}")
        if criterion.applies_when:
            show(f"  applies when: {criterion.applies_when}")
        for point in criterion.scale.points:
            show(f"  {point}: {criterion.anchors[point]}")


@rubrics_app.command("validate")
def rubrics_validate(
    directory: Annotated[Path | None, typer.Argument(help="Folder of rubrics (default: bundled).")] = None,
) -> None:
    """Check every rubric file; exit 2 naming file, line and field of each problem.

    Example: trustmh rubrics validate rubrics/
    """
    loaded = _load_rubrics(_rubrics_dir(directory))
    for pillar, rubric in sorted(loaded.items()):
        out_console.print(f"ok  {pillar:<12} {len(rubric.criteria)} criteria  {rubric.content_hash[:12]}")


@rubrics_app.command("diff")
def rubrics_diff(
    old: Annotated[Path, typer.Argument(help="Folder of the old rubrics.")],
    new: Annotated[Path, typer.Argument(help="Folder of the new rubrics.")],
) -> None:
    """Criterion-level changes between two rubric folders (what a re-grade will re-ask); after the re-grade,
    `trustmh compare OLD_RUN NEW_RUN` shows which scores moved.

    Example: trustmh rubrics diff rubrics-v1/ rubrics/
    """
    changes = [c for c in diff_rubrics(_load_rubrics(old), _load_rubrics(new)) if c.change != "unchanged"]
    if not changes:
        out_console.print("no criterion changed")
        return
    table = wrapping_table("", ["pillar", "criterion", "change", "fields"])
    for change in changes:
        table.add_row(change.pillar, change.criterion, change.change, ", ".join(change.fields))
    out_console.print(table)
    pillars = sorted({c.pillar for c in changes})
    say(out_console, f"re-grading re-asks the calls of: {', '.join(pillars)}")
    say(out_console, "to see which scores move: score the same items with the new rubrics into a new --out, then "
                     "`trustmh compare OLD_RUN NEW_RUN`")


# ---------------------------------------------------------------- cache


@cache_app.command("stats")
def cache_stats(cache: CacheOption = None) -> None:
    """Entries and size of the verdict cache (read only: creates nothing).  Example: trustmh cache stats --cache c/"""
    stats = read_stats(cache or default_cache_dir())
    if not stats["exists"]:
        say(out_console, f"{stats['directory']}: no cache yet (0 cached judge calls)")
        return
    say(out_console, f"{stats['directory']}: {stats['entries']} cached judge calls, {stats['size_bytes']:,} bytes")


@cache_app.command("clear")
def cache_clear(
    cache: CacheOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove every cached judge call.  Example: trustmh cache clear --yes"""
    directory = cache or default_cache_dir()
    if not yes and not typer.confirm(f"Remove all cached verdicts in {directory}?"):
        raise typer.Exit(ExitCode.USAGE)  # declined: nothing removed
    removed, damaged = clear_cache(directory)
    if damaged:
        say(out_console, f"the cache database in {directory} was damaged; removed its files (a fresh cache starts)")
    else:
        say(out_console, f"removed {removed} cached judge calls from {directory}")


# ---------------------------------------------------------------- demo


def _judges_from_keys() -> str | None:
    found = []
    if os.environ.get("OPENAI_API_KEY"):
        found.append("openai:gpt-4.1-mini")
    if os.environ.get("ANTHROPIC_API_KEY"):
        found.append("anthropic:claude-sonnet-4-5")
    return ",".join(found) or None


DEMO_HELP = """No judge is available, so nothing was sent. To score the worked examples, give the demo a judge:
  • OpenAI:     export OPENAI_API_KEY=sk-...            then  make demo
  • Anthropic:  export ANTHROPIC_API_KEY=sk-ant-...     then  make demo
  • Local (vLLM, Ollama, llama.cpp, LiteLLM):  start an OpenAI-compatible server, then
      .venv/bin/trustmh demo --judges openai:qwen2.5-7b-instruct@http://localhost:8000/v1
    (Ollama: --judges openai:llama3.1@http://localhost:11434/v1). A server that answers one request at a
    time (llama-cpp-python's; llama-server or Ollama set to one slot) needs --concurrency 1, and a judges
    file (--judges-file) sets its mode, timeout_s and deadline_s (see the README, "Local servers").
Here is what that run would cost:"""


@app.command()
def demo(
    judges: Annotated[
        str | None, typer.Option("--judges", help="Judges to use (default: --judges-file's, else from API keys).")
    ] = None,
    judges_file: JudgesFileOption = None,
    samples: SamplesOption = 1,
    out: Annotated[Path, typer.Option("--out", help="Where the demo run is written.")] = RUNS_DIR / "demo",
    cache: CacheOption = None,
    no_cache: NoCacheOption = False,
    concurrency: ConcurrencyOption = 8,
    quiet: QuietOption = False,
) -> None:
    """Score the project's worked examples (or show the plan when no judge is set up), then calibrate the
    recorded judges of the crisis dataset against its human raters.

    Example: trustmh demo --judges-file judges.toml --judges local --concurrency 1
    """
    from judge.suites.demo import print_recorded_scorecard

    examples = sorted(bundled_path("examples").glob("*.jsonl"))
    examples = [p for p in examples if not p.name.endswith(".expected.jsonl")]
    chosen = judges if judges or judges_file else _judges_from_keys()
    have_judge = chosen is not None or judges_file is not None
    settings = RunSettings(
        cache_dir=cache_option(cache, no_cache),
        concurrency=concurrency,
        dry_run=not have_judge,
        quiet=quiet,
        command_line=tuple(public_command_line()),
    )
    out_console.rule("Worked examples")
    result = api.score(
        examples,
        judges=chosen if have_judge else "openai:gpt-4.1-mini",
        judges_file=judges_file,
        out=out,
        samples=samples,
        settings=settings,
    )
    if result.summary is None:
        say(out_console, DEMO_HELP)
        print_score_plan(result, False, settings)
    else:
        if not quiet:
            print_score_summary(result.summary, out_console)
        say(out_console, f"verdicts in {out}/verdicts.jsonl (exit code would be {result.exit_code})")
        from judge.report import write_report

        say(out_console, f"report (open in a browser): {write_report(out)}")
    if quiet:  # the offline sections are tables only
        return
    out_console.rule("Calibration of recorded judges (offline)")
    # calibration sits above the command line and plugs into it by name, as `calibrate` does.
    importlib.import_module("calibration.demo").print_crisis_calibration(out_console)
    out_console.rule("TrustMH-Bench recorded scorecard (offline)")
    print_recorded_scorecard(out_console)


def describe_os_error(exc: OSError) -> str:
    """An environment fault (full disk, no permission, a file in the way) as: path, what happened, what to do."""
    where = exc.filename or "(a file)"
    if exc.errno == errno.ENOSPC:
        return (
            f"{where}: no space left on the device; free space (or choose another --out / --cache) and run the "
            "same command again: answers already received are kept in OUT/verdicts.jsonl and the cache"
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{where}: {exc.strerror}; choose a folder you can write, or fix its permissions"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        return f"{where}: {exc.strerror}; a file and a folder are in each other's way, choose another path"
    return f"{where}: {exc.strerror or exc}"


def _notes_shown_plainly(show: Callable[..., None]) -> Callable[..., None]:
    """warnings.showwarning that prints a `Note` as `note: …` (no file, line or class name)."""

    def shown(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, Note):
            say(err_console, f"note: {message}")
        else:
            show(message, category, *args, **kwargs)

    return shown


def main(argv: list[str] | None = None) -> None:
    """Entry point: usage errors exit 2 with their message, unexpected ones exit 1 without a traceback."""
    judge.cli.common.invoked_args = None if argv is None else list(argv)
    logging.getLogger("instructor").setLevel(logging.CRITICAL)  # failures are reported in verdicts instead
    # Outputs hold mental-health conversations: every file and folder this process creates is owner-only.
    old_umask = os.umask(0o077)
    show_warning = warnings.showwarning
    warnings.showwarning = _notes_shown_plainly(show_warning)
    try:
        app(args=argv, prog_name="trustmh")
    except Interrupted as exc:  # SIGINT or SIGTERM during a run: the calls in flight were kept
        say(err_console, str(exc))
        sys.exit(exc.exit_code)
    except TrustMHError as exc:
        say(err_console, f"error: {flag_message(exc)}")
        sys.exit(exc.exit_code)
    except OSError as exc:
        say(err_console, f"error: {describe_os_error(exc)}")
        sys.exit(ExitCode.USAGE)
    except KeyboardInterrupt:
        say(err_console, "interrupted; run the same command again to resume")
        sys.exit(ExitCode.INTERRUPTED)
    except Exception as exc:
        if os.environ.get("TRUSTMH_DEBUG"):
            raise
        say(
            err_console,
            f"internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in trustmh-judge; set TRUSTMH_DEBUG=1 to see the traceback and please report it.",
        )
        sys.exit(ExitCode.INTERNAL)
    finally:
        warnings.showwarning = show_warning
        os.umask(old_umask)


if __name__ == "__main__":
    main()
