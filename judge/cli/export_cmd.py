"""`trustmh export RUN --format csv|parquet|jsonl [--table NAME] --out PATH`: one table of a run folder as a file
for a spreadsheet or a data frame, checked against its declaration in judge.log on the way."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from judge.errors import UsageError
from judge.log import read_run


def export_command(
    run_dir: Annotated[Path, typer.Argument(
        help="A score, bench, calibration, audit or comparison folder (the --out of the command that wrote it).",
        show_default=False, metavar="RUN")],
    fmt: Annotated[Literal["csv", "parquet", "jsonl"], typer.Option(
        "--format", help="csv and parquet need the frames extra: pip install 'trustmh-judge[frames]'.",
        show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="File to write (owner-only).", show_default=False)],
    table: Annotated[str | None, typer.Option(
        "--table", help="verdicts, panel or review (score runs; bench runs also scorecard); calibration and "
                        "confusion (calibration folders); audit, coverage, score_verdicts, originals_verdicts "
                        "(audit folders); criteria, changes, gate_flips (comparison folders). Default: the first "
                        "of these the run has.")] = None,
) -> None:
    """Write one table of RUN as csv, parquet or JSON Lines; nested fields are JSON text in csv and parquet.

    Example: trustmh export runs/score1 --format csv --table panel --out panel.csv
    """
    run = read_run(run_dir)
    tables = run.tables()
    name = table or next(iter(tables))
    if name not in tables:
        raise UsageError(f"{run_dir}: no table {name!r} in this {run.kind} run; it has "
                         f"{', '.join(tables)}", field="table")
    if out.is_dir():
        raise UsageError(f"{out}: is a folder; give a file name such as {out / f'{name}.{fmt}'}", field="out")
    chosen = tables[name]
    chosen.export(out, fmt)
    typer.echo(f"wrote {out} ({len(chosen)} {name} rows)")
