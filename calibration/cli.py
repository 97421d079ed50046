"""`trustmh calibrate`: agreement of judges with human annotations (long format, see calibration.annotations).

Registered in judge/cli/main.py with ``app.command("calibrate")(calibrate_command)``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console

from calibration.annotations import (
    JUDGED_DATASETS,
    CalibrationData,
    InputError,
    elephant_oeq_items,
    load_dataset,
    read_human,
    read_judged,
)
from judge.cli.common import flag_message
from judge.datasets import DatasetError
from judge.errors import UsageError
from judge.rundir import write_jsonl_atomic

if TYPE_CHECKING:
    from judge.gates import Gate

EXIT_USAGE = 2
EXIT_GATE = 4


def _fail(messages: list[str]) -> typer.Exit:
    for message in messages:
        typer.echo(message, err=True)
    return typer.Exit(EXIT_USAGE)


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
    out: Annotated[Path, typer.Option("--out", help="Folder for calibration.json and calibration.md.")] = Path(
        "calibration-out"),
    level: Annotated[str, typer.Option(
        "--level", help="item: agreement on each item; target: agreement of per-system means.")] = "item",
    gate: Annotated[list[str] | None, typer.Option(
        "--gate", help="METRIC OP NUMBER, e.g. 'alpha_ordinal_with_judge>=0.667' (repeatable; OP: >= > <= < ==). "
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
    # numpy/scipy/krippendorff load here, not when `trustmh` starts: `trustmh score` never needs them.
    from calibration.compute import calibrate
    from calibration.outputs import results_table, write_reports
    from judge.gates import gate_failures, gate_results, parse_gate

    if level not in ("item", "target"):
        raise _fail([f"--level {level!r}: choose item or target"])
    try:
        gates: list[Gate] = [parse_gate(g) for g in gate or []]
    except UsageError as exc:
        raise _fail([flag_message(exc)]) from None
    if write_items is not None:
        if dataset not in JUDGED_DATASETS:
            raise _fail([f"--write-items goes with --dataset {', '.join(JUDGED_DATASETS)}"])
        try:
            items = elephant_oeq_items()
        except (InputError, DatasetError, ValueError) as exc:
            raise _fail(exc.problems if isinstance(exc, InputError) else [str(exc)]) from None
        write_jsonl_atomic(write_items, items)  # owner-only, like every output
        typer.echo(f"wrote {len(items)} items to {write_items}; judge them with `trustmh score {write_items} "
                   f"--out RUN`, then run `trustmh calibrate --dataset {dataset} --judged RUN`")
        return
    if dataset and human:
        raise _fail(["--dataset replaces --human: give one or the other"])
    if dataset and judged and dataset not in JUDGED_DATASETS:
        raise _fail([f"--dataset {dataset} brings its own judge scores; --judged goes with --human, or with "
                     f"--dataset {', '.join(JUDGED_DATASETS)}"])
    if not dataset and not (human and judged):
        raise _fail(["give --human FILE and --judged FILE_OR_RUN_DIR, or --dataset NAME (see --help)"])
    try:
        if dataset:
            if judged is not None and not judged.exists():
                raise InputError([f"{judged}: no such file or directory"])
            data = load_dataset(dataset, judged)
            source = {"dataset": dataset} | ({"judged": str(judged)} if judged else {})
        else:
            assert human is not None and judged is not None
            problems: list[str] = []
            human_records, judged_records = [], []
            for reader, path, sink in ((read_human, human, human_records), (read_judged, judged, judged_records)):
                if not path.exists():
                    problems.append(f"{path}: no such file or directory")
                    continue
                try:
                    sink.extend(reader(path))
                except InputError as exc:
                    problems.extend(exc.problems)
            if problems:
                raise InputError(problems)
            data = CalibrationData(human_records, judged_records)
            source = {"human": str(human), "judged": str(judged)}
    except (InputError, DatasetError) as exc:
        raise _fail(exc.problems if isinstance(exc, InputError) else [str(exc)]) from None
    shared = {s.criterion for s in data.judged} & {a.criterion for a in data.human}
    if not shared:
        raise _fail([f"{judged or dataset}: no criterion is both judged and human-annotated; check the "
                     "criterion names on both sides"])
    chosen: Literal["item", "target"] = "target" if level == "target" else "item"
    result = calibrate(data, level=chosen, n_bootstrap=bootstrap, seed=seed, epsilon=epsilon)
    if not result.records:
        raise _fail([f"{human or dataset}: --level target needs a `target` on the items (which system answered)"])
    meta = {**source, "level": level, "bootstrap": bootstrap, "seed": seed, "epsilon": epsilon,
            "created": datetime.now(UTC).isoformat(timespec="seconds")}
    recorded_gates, unknown = gate_results(result.records, gates)
    if unknown:
        raise _fail([f"--gate: no metric named {name!r} in the results" for name in unknown])
    json_path, md_path = write_reports(out, result, meta, recorded_gates)
    Console(soft_wrap=False).print(results_table(result, f"Judges vs humans ({level} level)"))
    typer.echo(f"wrote {json_path} and {md_path}")
    failures = gate_failures(recorded_gates)
    if failures:
        for failure in failures:
            typer.echo(f"gate failed: {failure}", err=True)
        raise typer.Exit(EXIT_GATE)
