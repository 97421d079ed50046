"""What every command of the CLI shares."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from judge.calls.cache import default_cache_dir
from judge.errors import TrustMHError
from judge.judges import redact_urls

SplitCriticalOption = Annotated[
    bool,
    typer.Option(
        "--split-critical",
        help="Halo check: judge each critical criterion in a call of its own (the other criteria in one more).",
    ),
]
"""`--split-critical`, shared by `score` and `bench`."""

RUNS_DIR = Path("runs")
"""Where every command writes when not told (`--out` left out): a folder of its own under runs/ (which the
project's .gitignore leaves out), never the current folder; each command prints where its files went."""

invoked_args: list[str] | None = None  # what main() was given (tests call it in process), else sys.argv


# Library arguments whose option has another name; every other argument `x_y` is the option --x-y.
OPTION_OF = {"cache_dir": "cache", "batch_poll_s": "batch-poll", "rubrics_dir": "rubrics", "n_bootstrap": "bootstrap"}
# A keyword argument a library message names, as Python spells it: `skip_invalid=True`, `judges=PROVIDER:MODEL`,
# `out=` (a record field such as `pillar` has no `=`).
ARGUMENT = re.compile(r"`([a-z][a-z_]*)=([^`]*)`")


def option_name(field: str) -> str:
    """The command-line option that sets a library argument."""
    return "--" + OPTION_OF.get(field, field).replace("_", "-")


def _as_option(match: re.Match[str]) -> str:
    value = match[2].strip("\"'")
    return option_name(match[1]) if value in ("", "True") else f"{option_name(match[1])} {value}"


def flag_message(exc: TrustMHError) -> str:
    """A library error as the command line words it: the argument at fault, and any it names, by their options."""
    message = ARGUMENT.sub(_as_option, exc.message)
    if exc.field and exc.field.isupper():  # a positional argument, named by its metavar
        return f"{exc.field}: {message}"
    return f"{option_name(exc.field)} {message}" if exc.field else message


def public_command_line() -> list[str]:
    """The command line for run.json, with credentials in any base URL removed."""
    args = sys.argv[1:] if invoked_args is None else invoked_args
    return ["trustmh", *(redact_urls(arg) for arg in args)]


def cache_option(cache: Path | None, no_cache: bool) -> Path | None:
    """`--cache DIR` / `--no-cache` as the settings' cache folder (default: $TRUSTMH_CACHE_DIR or ~/.cache)."""
    return None if no_cache else cache or default_cache_dir()


def say(console: Console, text: str) -> None:
    """One message line as is: no markup, and never wrapped, so a path or identifier is never cut in two."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def say_not_a_model(console: Console, summary: dict[str, Any] | None) -> None:
    """One line per `mock:` target or judge of a stage's summary: its results are not a model's."""
    for name, note in ((summary or {}).get("not_a_model") or {}).items():
        say(console, f"{name} is {note}")
