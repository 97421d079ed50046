"""The recorded branch of `trustmh bench`: `--recorded trustmh-bench --out DIR` imports TrustMH-Bench's
published raw outputs as a run directory and writes its scorecard, offline.

`run_recorded_bench` is kept as its own function so the live bench (build → respond → score → metrics)
can call it for `--recorded` and stay independent of it. Registered in cli/main.py with
``app.command("bench")(bench_command)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from calibration.registry import DatasetError
from judge.run import UsageError
from suites.recorded import RECORDED, import_recorded
from suites.scorecard import DEFAULT_BOOTSTRAP, DEFAULT_SEED, write_scorecard


def run_recorded_bench(recorded: str, out: Path, console: Console, bootstrap: int = DEFAULT_BOOTSTRAP,
                       seed: int = DEFAULT_SEED) -> None:
    """Import the recorded run into OUT (prompts.jsonl, respond/, score/, bench.json), then write
    OUT/scorecard.json and OUT/scorecard.md. An unknown name or missing data is a usage error (exit 2)."""
    from cli.suites_cmd import print_primary_table, scorecard_for

    if recorded not in RECORDED:
        raise UsageError(f"--recorded: unknown recorded run {recorded!r}; available: {', '.join(RECORDED)}")
    try:
        import_recorded(recorded, out)
    except DatasetError as exc:
        raise UsageError(f"--recorded {recorded}: {exc}") from exc
    card = scorecard_for(out, bootstrap, seed)
    json_path, md_path = write_scorecard(out, card)
    print_primary_table(card, console, title=f"Recorded run {recorded}")
    console.print(f"wrote {out}/prompts.jsonl, respond/, score/, {json_path.name} and {md_path.name}")


def bench_command(
    recorded: Annotated[str, typer.Option(
        "--recorded", help=f"A published run to import and score offline: {', '.join(RECORDED)}.",
        show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="Run directory to write.", show_default=False)],
    bootstrap: Annotated[int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples of prompts (0: no CIs).")]
    = DEFAULT_BOOTSTRAP,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")] = DEFAULT_SEED,
) -> None:
    """Benchmark run directory with its scorecard; with --recorded, from TrustMH-Bench's published outputs
    (6 models on privacy, 12 on ethics, GPT-4.1's ethics verdicts), offline.

    Example: trustmh bench --recorded trustmh-bench --out runs/recorded
    """
    run_recorded_bench(recorded, out, Console(), bootstrap, seed)
