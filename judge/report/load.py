"""The report's reading of a run folder: `judge.log.read_run`, whose file formats are declared once in
judge/log.py, with every error (the file, line and field at fault) raised as ReportError, before any page
is built. Only reading and validation happens here; the numbers are taken as written.
"""

from __future__ import annotations

from pathlib import Path

from judge.errors import RunDirError
from judge.log import Run, ScoreRun, read_run


class ReportError(RunDirError):
    """A directory or file the report cannot be made from; the message says which and what to do."""


def load_run(directory: Path) -> Run:
    """The run in `directory` with the tables the report shows (review.jsonl) read and checked now."""
    try:
        run = read_run(directory)
        score = run if isinstance(run, ScoreRun) else getattr(run, "score", None)
        if score is not None:
            len(score.review)  # read now, so that a bad line is the report's error, not the page's
    except RunDirError as exc:
        raise ReportError(str(exc)) from exc
    return run
