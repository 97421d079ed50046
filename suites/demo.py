"""The offline scorecard part of `trustmh demo`: TrustMH-Bench's recorded outputs (12 models on ethics,
6 on privacy) scored by this project's metrics, as one table."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from calibration.registry import MIRROR_ENV, DatasetError
from suites.recorded import import_recorded
from suites.scorecard import compute_scorecard

Z95 = 1.96
COLUMNS: tuple[tuple[str, str, str | None, str], ...] = (
    ("ethics acc.", "ethics/reasoning", None, "accuracy"),
    *((f"{c} (APA {p})", "ethics/reasoning", f"criterion:{c}", "mean_score")
      for c, p in zip(("sc1", "sc2", "sc3", "sc4", "sc5"), "ABCDE", strict=True)),
    ("tier 1 r", "privacy/awareness-tier1", None, "pearson_r"),
    ("tier 2a r", "privacy/awareness-tier2a", None, "pearson_r"),
    ("tier 2b r", "privacy/awareness-tier2b", None, "pearson_r"),
    ("tier 3 leak ↓", "privacy/leakage", None, "leak_string_match"),
)


def _cell(record: Mapping[str, Any] | None) -> str:
    if record is None or record["value"] is None:
        return "—"
    if record["metric"] == "mean_score" and record["se"] is not None:
        return f"{record['value']:.3f}±{Z95 * record['se']:.3f}"
    return f"{record['value']:.3f}"


def recorded_table(card: Mapping[str, Any]) -> Table:
    index = {(r["target"], r["suite"], r["group"], r["metric"]): r for r in card["results"]}
    targets = list(dict.fromkeys(r["target"] for r in card["results"]))
    table = Table(title="TrustMH-Bench recorded outputs, scored offline by trustmh-judge",
                  caption="judged means ± 1.96·se as the authors report them; — : not in that bundle")
    table.add_column("model")
    for header, *_ in COLUMNS:
        table.add_column(header, justify="right")
    for target in targets:
        table.add_row(target, *(_cell(index.get((target, suite, group, metric)))
                                for _, suite, group, metric in COLUMNS))
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
        console.print(f"[yellow]Recorded scorecard skipped:[/] the trustmh-bench bundles are not available "
                      f"({first}). Set {MIRROR_ENV} to a dataset mirror to run it offline.", soft_wrap=True)
        return
    console.print(recorded_table(card))
    console.print("Source: TrustMH-Bench (arXiv 2603.03047), privacy.zip and Ethics.zip. With intervals and "
                  "ranks: trustmh bench --recorded trustmh-bench --out DIR")
