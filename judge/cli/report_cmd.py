"""`trustmh report DIR [--out FILE]`: one self-contained HTML page for a bench, score, calibration or audit folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from judge.errors import UsageError


def report_command(
    directory: Annotated[Path, typer.Argument(
        help="A bench run (scorecard.json), a score run (summary.json + verdicts.jsonl) or a calibration "
             "folder (calibration.json) or an audit folder (audit.json).", show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", help="HTML file to write (default: DIR/report.html).")] = None,
) -> None:
    """Write one HTML file with the run's figures and the tables of their numbers; it opens with no network.

    Example: trustmh report runs/bench1 --out bench1.html
    """
    # matplotlib loads here, not when `trustmh` starts: no other command needs it.
    from judge.report import ReportError, write_report

    try:
        path = write_report(directory, out)
    except ReportError as exc:
        raise UsageError(str(exc)) from exc
    typer.echo(f"wrote {path}")


def write_run_report(out: Path) -> Path:
    """OUT/report.html at the end of a command that has just written OUT (matplotlib loads only now)."""
    from judge.report import ReportError, write_report

    try:
        return write_report(out)
    except ReportError as exc:
        raise UsageError(f"{out}: the report could not be written: {exc}") from exc
