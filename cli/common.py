"""What every command of the CLI shares."""

from __future__ import annotations

import sys
from pathlib import Path

from judge.cache import DB_NAME, default_cache_dir
from judge.judges import redact_urls

invoked_args: list[str] | None = None  # what main() was given (tests call it in process), else sys.argv


def public_command_line() -> list[str]:
    """The command line for run.json, with credentials in any base URL removed."""
    args = sys.argv[1:] if invoked_args is None else invoked_args
    return ["trustmh", *(redact_urls(arg) for arg in args)]


def cache_dir_for(cache: Path | None, dry_run: bool) -> Path | None:
    """The cache folder; a dry run reads an existing cache but never creates one (None: nothing cached yet)."""
    directory = cache or default_cache_dir()
    if dry_run and not directory.is_file() and not (directory / DB_NAME).exists():
        return None
    return directory
