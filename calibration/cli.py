"""`trustmh calibrate`: agreement of judges with human annotations (long format, see calibration.annotations).

Registered in judge/cli/main.py with ``app.command("calibrate")(calibrate_command)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from judge.cli.common import RUNS_DIR, flag_message
from judge.errors import TrustMHError


def calibrate_command(
    human: Annotated[Path | None, typer.Option(
        "--human", help="Human annotations, long JSONL/CSV: item_id, criterion, rater, score [, pillar, target].",
        show_default=False)] = None,
    judged: Annotated[Path | None, typer.Option(
        "--judged", help="A `trustmh score` run directory (its verdicts.jsonl) or a long JSONL/CSV file: "
        "item_id, criterion, judge, score [, sample, target].", show_default=False)] = None,
    dataset: Annotated[str | None, typer.Option(
        "--dataset", help="Calibrate a registered dataset instead: llms-mental-health-crisis or "
        "empathic-communication (human and judge scores), or elephant-oeq (human labels; give --judged, a "
        "`trustmh score` run over its --write-items). Read from $TRUSTMH_DATA_MIRROR or downloaded.",
        show_default=False)] = None,
    write_items: Annotated[Path | None, typer.Option(
        "--write-items", help="With --dataset elephant-oeq: write the items to judge (JSONL) and stop.",
        show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for calibration.json and calibration.md.")] = RUNS_DIR
    / "calibration",
    level: Annotated[str, typer.Option(
        "--level", help="item: agreement on each item; target: agreement of per-system means.")] = "item",
    gate: Annotated[list[str] | None, typer.Option(
        "--gate", help="METRIC OP NUMBER, e.g. 'qwk>=0.6' (repeatable; OP: >= > <= < ==). "
        "Exit 4 naming each criterion × judge that fails.", show_default=False)] = None,
    bootstrap: Annotated[int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples of items (0: no CIs).")]
    = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")] = 0,
    epsilon: Annotated[float, typer.Option(
        "--epsilon", help="Cost-benefit margin of the alternative-annotator test (0.2 experts, 0.1 crowd).")] = 0.2,
) -> None:
    """Measure how well judges agree with human annotations.

    Reports Krippendorff's alpha (humans alone, with the judge added, with the judge in each human's
    place), quadratic-weighted kappa, Spearman/Pearson/Kendall, ICC(A,1)/ICC(C,1), MAE, RMSE, bias,
    exact and within-one agreement, confusion matrices, the alternative-annotator test (three or more
    humans) and the judge's self-consistency — with bootstrap confidence intervals.

    Examples:

        trustmh calibrate --human human.jsonl --judged runs/2025-01-01 --out calib --gate 'qwk>=0.6'

        TRUSTMH_DATA_MIRROR=../shared/datasets trustmh calibrate --dataset llms-mental-health-crisis --level target
    """
    # numpy/scipy/krippendorff load with calibration.compute, when a calibration runs: `trustmh score` never needs them.
    from calibration.api import calibrate, write_dataset_items
    from calibration.outputs import results_table

    try:
        if write_items is not None:
            count = write_dataset_items(dataset, write_items)
            typer.echo(f"wrote {count} items to {write_items}; judge them with `trustmh score {write_items} "
                       f"--out RUN`, then run `trustmh calibrate --dataset {dataset} --judged RUN`")
            return
        done = calibrate(out=out, human=human, judged=judged, dataset=dataset, level=level,  # type: ignore[arg-type]
                         gates=gate or [], bootstrap=bootstrap, seed=seed, epsilon=epsilon)
    except TrustMHError as exc:  # this command also runs outside `trustmh` (in its own typer app)
        typer.echo(flag_message(exc), err=True)
        raise typer.Exit(exc.exit_code) from None
    Console(soft_wrap=False).print(results_table(done.result, f"Judges vs humans ({level} level)"))
    typer.echo(f"wrote {done.json_path} and {done.markdown_path}")
    for failure in done.gate_failures:
        typer.echo(f"gate failed: {failure}", err=True)
    raise typer.Exit(done.exit_code)
