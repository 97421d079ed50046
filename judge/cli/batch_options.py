"""The `--batch` options shared by `score`, `respond` and `bench`."""

from __future__ import annotations

from typing import Annotated

import typer

from judge.calls.batch import DEFAULT_POLL_S

BatchOption = Annotated[
    bool,
    typer.Option(
        "--batch",
        help="Send first requests through the providers' batch APIs (half price, answers within 24 h); "
        "a killed run resumes polling the same batches. Re-asks and follow-up turns are asked live.",
    ),
]
BatchPollOption = Annotated[
    float, typer.Option("--batch-poll", min=0.0, help="Seconds between polls of a running batch.")
]
__all__ = ["DEFAULT_POLL_S", "BatchOption", "BatchPollOption"]
