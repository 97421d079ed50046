"""`trustmh audit`: how a run's judges react to controlled changes of the responses they judged.

Registered in judge/cli/main.py with ``app.command("audit")(audit_command)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from judge import api
from judge.cli.common import cache_option, public_command_line, say
from judge.cli.tables import gate_lines, print_audit_summary
from judge.log import read_json
from judge.settings import RunSettings

err_console = Console(stderr=True)
out_console = Console()


def audit_command(
    run_dir: Annotated[
        Path, typer.Argument(help="The --out folder of a finished `trustmh score` run.", show_default=False)
    ],
    probes: Annotated[
        str,
        typer.Option(
            "--probes",
            help="Comma-separated: verbosity, injection, format, surface-noise, degrade, self-preference, halo "
            "(or all).",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Folder for variants, their verdicts, audit.json, audit.md and report.html; re-running resumes it.",
            show_default=False,
        ),
    ],
    judges: Annotated[
        str | None,
        typer.Option(
            "--judges",
            help="Judges to audit (default: the run's): PROVIDER:MODEL\\[@URL] or names from --judges-file.",
        ),
    ] = None,
    judges_file: Annotated[
        Path | None, typer.Option("--judges-file", help="judges.toml with per-judge settings.")
    ] = None,
    gate: Annotated[
        list[str] | None,
        typer.Option(
            "--gate",
            help="PROBE.METRIC OP NUMBER, e.g. 'format.flip_rate<=0' (repeatable). Exit 4 naming "
            "each probe × judge × criterion that fails.",
            show_default=False,
        ),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option("--cache", help="Cache folder (default: $TRUSTMH_CACHE_DIR, else trustmh-judge in ~/.cache)."),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the cache.")] = False,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Concurrent calls per judge.")] = 8,
    max_items: Annotated[
        int | None,
        typer.Option(
            "--max-items",
            min=1,
            help="Audit a seeded sample of this many of the run's items (cost grows with items × variants × judges).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the variants, the item sample and the bootstrap.")] = 0,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples of items (0: no CIs).")
    ] = 1000,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary table (gate verdicts "
                                                             "are still printed).")] = False,
) -> None:
    """Probe the judges of a finished run with controlled variants of the responses they judged.

    The same judges grade the variants with the same rubrics (cached and resumable like any score run).

    Each judge's paired score change is reported per criterion, with bootstrap intervals.

    verbosity, injection, format, surface-noise should not move scores; degrade should lower them.

    self-preference compares a judge on its own model family's responses with the other judges.

    halo judges the responses again with each critical criterion in a call of its own (--split-critical)
    and reports how far scores move from one call per pillar.

    Example: trustmh audit runs/r1 --probes verbosity,injection,degrade --out runs/r1-audit

    Exit codes: 0 done, 4 a gate failed, 3 some verdicts failed, 2 bad input (nothing judged), 1 internal error.
    """
    settings = RunSettings(
        cache_dir=cache_option(cache, no_cache),
        concurrency=concurrency,
        quiet=quiet,
        command_line=tuple(public_command_line()),
    )
    result = api.audit(
        run_dir,
        probes=probes,
        out=out,
        judges=judges,
        judges_file=judges_file,
        gates=gate or [],
        max_items=max_items,
        seed=seed,
        bootstrap=bootstrap,
        settings=settings,
    )
    for name, calls in result.calls.items():
        say(
            err_console,
            f"{name}: {calls.get('planned', 0)} calls, {calls.get('requested', 0)} requested, "
            f"{calls.get('cache_hits', 0)} from cache, {calls.get('resumed', 0)} resumed, "
            f"{calls.get('failed', 0)} failed → {out / name}/verdicts.jsonl",
        )
    audit = read_json(result.json_path)
    if not quiet:
        print_audit_summary(audit, out_console)
    say(out_console, f"wrote {result.json_path}, {result.markdown_path} and {result.report}")
    for line in gate_lines(audit.get("meta", {}).get("gate_results") or []):  # the verdicts, also with -q
        say(err_console, line)
    raise typer.Exit(result.exit_code)
