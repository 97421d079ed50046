"""The offline scorecard part of `trustmh demo`: TrustMH-Bench's recorded outputs (12 models on ethics,
6 on privacy) scored by this project's metrics, as two tables that fit an 80-column terminal."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from judge.datasets import MIRROR_ENV, DatasetError
from judge.suites.published import import_recorded
from judge.suites.scorecard import compute_scorecard

Column = tuple[str, str, str | None, str]  # header, suite, group, metric
ETHICS_COLUMNS: tuple[Column, ...] = (
    ("accuracy", "ethics/reasoning", None, "accuracy"),
    *(
        (f"{c} ({p})", "ethics/reasoning", f"criterion:{c}", "mean_score")
        for c, p in zip(("sc1", "sc2", "sc3", "sc4", "sc5"), "ABCDE", strict=True)
    ),
)
PRIVACY_COLUMNS: tuple[Column, ...] = (
    ("tier 1 r", "privacy/awareness-tier1", None, "pearson_r"),
    ("tier 2a r", "privacy/awareness-tier2a", None, "pearson_r"),
    ("tier 2b r", "privacy/awareness-tier2b", None, "pearson_r"),
    ("tier 3 leak rate (lower is better)", "privacy/leakage", None, "leak_string_match"),
)


def _cell(record: Mapping[str, Any] | None) -> str:
    if record is None or record["value"] is None:
        return "—"
    if record["metric"] == "mean_score":
        return f"{record['value']:.2f}"
    return f"{record['value']:.3f}"


def recorded_table(card: Mapping[str, Any], columns: tuple[Column, ...], title: str, caption: str) -> Table:
    """Models × columns, for the models that have a value in at least one of the columns."""
    index = {(r["target"], r["suite"], r["group"], r["metric"]): r for r in card["results"]}
    suites = {suite for _, suite, _, _ in columns}
    targets = list(dict.fromkeys(r["target"] for r in card["results"] if r["suite"] in suites))
    table = Table(title=title, caption=caption)
    table.add_column("model", overflow="fold")
    for header, *_ in columns:
        table.add_column(header, justify="right", overflow="fold")
    for target in targets:
        table.add_row(
            target, *(_cell(index.get((target, suite, group, metric))) for _, suite, group, metric in columns)
        )
    return table


def print_recorded_scorecard(console: Console) -> None:
    """Import the recorded run into a temporary folder, score it (no bootstrap: values only), print it.

    Never raises for missing data: it says how to provide the mirror instead.
    """
    try:
        with tempfile.TemporaryDirectory(prefix="trustmh-recorded-") as tmp:
            import_recorded("trustmh-bench", Path(tmp))
            card = compute_scorecard(Path(tmp), n_bootstrap=0)
    except (DatasetError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        console.print(
            f"[yellow]Recorded scorecard skipped:[/] the trustmh-bench bundles are not available "
            f"({first}). Set {MIRROR_ENV} to a dataset mirror to run it offline.",
            soft_wrap=True,
        )
        return
    console.print(
        recorded_table(
            card,
            ETHICS_COLUMNS,
            "TrustMH-Bench ethics (EthicMH), 12 recorded models",
            "GPT-4.1's mean sc1–sc5 (APA principles A–E); intervals: trustmh bench --recorded",
        )
    )
    console.print(
        recorded_table(
            card,
            PRIVACY_COLUMNS,
            "TrustMH-Bench privacy (ConfAIde, PsyLeak), 6 recorded models",
            "Pearson r against the human labels; tier 3: string-match leak rate",
        )
    )
    console.print(
        "Source: TrustMH-Bench (arXiv 2603.03047), privacy.zip and Ethics.zip. With intervals and "
        "ranks: trustmh bench --recorded trustmh-bench --out DIR"
    )
