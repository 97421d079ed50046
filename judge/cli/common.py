"""What every command of the CLI shares."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from judge.calls.cache import DB_NAME, default_cache_dir
from judge.errors import TrustMHError, UsageError
from judge.families import DEFAULT_FAMILIES, Families, FamilyError, families_from_toml
from judge.judges import JudgeConfigError, JudgesFile, JudgeSpec, load_judges_file, redact_urls, resolve_judges

invoked_args: list[str] | None = None  # what main() was given (tests call it in process), else sys.argv


# Library arguments whose option has another name; every other argument `x_y` is the option --x-y.
OPTION_OF = {"cache_dir": "cache", "batch_poll_s": "batch-poll", "rubrics_dir": "rubrics", "n_bootstrap": "bootstrap"}
# An argument a library message names, in backticks: `skip_invalid` (a record field such as `pillar` is no argument).
ARGUMENT = re.compile(r"`(out|overwrite|cache_dir|skip_invalid|batch|judges|judges_file|targets|targets_file|pillars"
                      r"|samples|tiebreak|suites|recorded|limit|probes|gate|level|dataset|human|judged|write_items|max_response_chars)`")


def option_name(field: str) -> str:
    """The command-line option that sets a library argument."""
    return "--" + OPTION_OF.get(field, field).replace("_", "-")


def flag_message(exc: TrustMHError) -> str:
    """A library error as the command line words it: the argument at fault, and any it names, by their options."""
    message = ARGUMENT.sub(lambda match: option_name(match[1]), exc.message)
    if exc.field and exc.field.isupper():  # a positional argument, named by its metavar
        return f"{exc.field}: {message}"
    return f"{option_name(exc.field)} {message}" if exc.field else message


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


def judge_options(judges: str | None, judges_file: Path | None) -> tuple[list[JudgeSpec], JudgesFile | None]:
    """`--judges` and `--judges-file` as judge specs (and the file's content); a bad one is a usage error."""
    try:
        loaded = load_judges_file(judges_file) if judges_file else None
        return resolve_judges(judges, loaded), loaded
    except JudgeConfigError as exc:
        raise UsageError(str(exc)) from exc


def families_for(loaded: JudgesFile | None, judges_file: Path | None) -> Families:
    """The model families of the judges file's `[families]`, else the built-in ones."""
    try:
        return families_from_toml(loaded.families) if loaded and loaded.families else DEFAULT_FAMILIES
    except FamilyError as exc:
        raise UsageError(f"{judges_file}: {exc}") from exc
