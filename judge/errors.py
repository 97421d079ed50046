"""What can go wrong, as types: one root (`TrustMHError`) for every error the project raises on purpose,
and the exit codes of the command line, defined once.

A library caller catches `TrustMHError` (or one of its kinds); the command line prints the message and
exits with the error's `exit_code`. A message names the file, line and field at fault and what to do;
where a value came from a keyword argument, `field` names it, and the command line shows the option
that sets it instead.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """How a `trustmh` command ends."""

    OK = 0  # every verdict is ok, every gate met
    INTERNAL = 1  # a bug: a message, not a traceback (TRUSTMH_DEBUG=1 shows it)
    USAGE = 2  # bad input or usage: nothing was judged or written
    FAILED_VERDICTS = 3  # the run finished, some verdicts failed (they are in the files, with reasons)
    GATE = 4  # the run finished, a --gate condition was not met
    INTERRUPTED = 130  # stopped by SIGINT (Ctrl-C); 143 after SIGTERM (128 + the signal's number, as shells say)


class TrustMHError(Exception):
    """Every error raised on purpose; `field` names the argument at fault, when one is."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class UsageError(TrustMHError):
    """Bad input or arguments: reported as is, nothing sent, nothing written."""


class ConfigError(UsageError):
    """A rubric, judges or targets file, families table or resource list that cannot be used."""


class InputFileError(UsageError):
    """Items, prompts, annotations or a review sheet with bad records (FILE:LINE: field: problem)."""


class RunDirError(UsageError):
    """A run folder or one of its files that cannot be read or written."""


class DatasetError(UsageError):
    """A registered dataset that is missing, or whose bytes are not the registered ones."""


class Interrupted(TrustMHError):
    """A run stopped by SIGINT or SIGTERM after the calls in flight were kept: the same command resumes it."""

    def __init__(self, signal_number: int) -> None:
        super().__init__("interrupted; run the same command again to resume")
        self.exit_code = 128 + signal_number  # type: ignore[assignment]


class FramesMissingError(UsageError):
    """Data frames, csv or parquet asked for without the optional `frames` extra (pandas, pyarrow) installed."""


class Note(UserWarning):
    """Something a finished step wants the user to know (what a --limit sample left out): a warning the
    command line prints as `note: …`, and a library caller can catch or filter like any warning."""
