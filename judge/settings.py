"""How a run sends its calls and keeps its files: the one set of settings `score`, `respond` and `bench` share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from judge.calls.batch import DEFAULT_POLL_S
from judge.calls.cache import DB_NAME, AnswerCache
from judge.errors import UsageError
from judge.items import DEFAULT_MAX_RESPONSE_CHARS


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """The settings every calling stage reads; a bench hands the same object to each of its stages."""

    cache_dir: Path | None = None  # None: neither read nor write a cache
    concurrency: int = 8  # concurrent calls per judge or target (1 for a single-slot local server)
    dry_run: bool = False  # plan and price, send nothing, write nothing
    quiet: bool = False  # no progress bar
    overwrite: bool = False  # replace a different run already in the out folder
    batch: bool = False  # first requests through the providers' batch APIs (judge.calls.batch)
    batch_poll_s: float = DEFAULT_POLL_S
    max_response_chars: int = DEFAULT_MAX_RESPONSE_CHARS  # longer responses are rejected
    command_line: tuple[str, ...] = ()  # what run.json records as the command that started the run

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise UsageError(f"{self.concurrency}: must be at least 1", field="concurrency")
        if self.batch_poll_s < 0:
            raise UsageError(f"{self.batch_poll_s}: must be 0 or more seconds", field="batch_poll_s")
        if self.max_response_chars < 1:
            raise UsageError(f"{self.max_response_chars}: must be at least 1", field="max_response_chars")

    def open_cache(self) -> AnswerCache | None:
        """The cache to read and write; a dry run reads an existing cache but never creates one."""
        directory = self.cache_dir
        if directory is None or (self.dry_run and not directory.is_file() and not (directory / DB_NAME).exists()):
            return None
        return AnswerCache(directory)
