"""`trustmh report DIR [--out FILE]`: one self-contained HTML page for a bench, score, calibration or audit folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report_command(
    directory: Annotated[Path, typer.Argument(
        help="A bench run (scorecard.json), a score run (summary.json + verdicts.jsonl) or a calibration "
             "folder (calibration.json), an audit folder (audit.json) or a comparison (compare.json).",
        show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", help="HTML file to write (default: DIR/report.html).")] = None,
) -> None:
    """Write one HTML file with the run's figures and the tables of their numbers; it opens with no network.

    Example: trustmh report runs/bench1 --out bench1.html
    """
    # matplotlib loads here, not when `trustmh` starts: no other command needs it.
    from judge.report import write_report

    typer.echo(f"wrote {write_report(directory, out)}")  # a ReportError is a usage error naming the file

