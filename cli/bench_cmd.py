"""The recorded branch of `trustmh bench`: `--recorded trustmh-bench --out DIR` imports TrustMH-Bench's
published raw outputs as a run directory and writes its scorecard, offline.

Kept as its own function so the live bench (build → respond → score → metrics) can call it for
`--recorded` and stay independent of it.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from calibration.registry import DatasetError
from judge.run import UsageError
from suites.recorded import RECORDED, import_recorded
from suites.scorecard import DEFAULT_BOOTSTRAP, DEFAULT_SEED, write_scorecard


def run_recorded_bench(recorded: str, out: Path, console: Console, bootstrap: int = DEFAULT_BOOTSTRAP,
                       seed: int = DEFAULT_SEED) -> None:
    """Import the recorded run into OUT (prompts.jsonl, respond/, score/, bench.json), then write
    OUT/scorecard.json and OUT/scorecard.md. An unknown name or missing data is a usage error (exit 2)."""
    from cli.suites_cmd import print_primary_table, scorecard_for

    if recorded not in RECORDED:
        raise UsageError(f"--recorded: unknown recorded run {recorded!r}; available: {', '.join(RECORDED)}")
    try:
        import_recorded(recorded, out)
    except DatasetError as exc:
        raise UsageError(f"--recorded {recorded}: {exc}") from exc
    card = scorecard_for(out, bootstrap, seed)
    json_path, md_path = write_scorecard(out, card)
    print_primary_table(card, console, title=f"Recorded run {recorded}")
    console.print(f"wrote {out}/prompts.jsonl, respond/, score/, {json_path.name} and {md_path.name}")
