"""`trustmh calibrate`: agreement of judges with human annotations (long format, see calibration.annotations).

`trustmh validate`: judges against the human-rated sets (calibration.api.validate).

Both are loaded on demand through judge/cli/main.py's LAZY_COMMANDS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from judge.cli.batch_options import DEFAULT_POLL_S, BatchOption, BatchPollOption
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


def validate_command(
    judges: Annotated[list[str] | None, typer.Option(
        "--judges", help="PROVIDER:MODEL\\[@URL] or a name from --judges-file (repeatable, or comma-separated).",
        show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for summary.json, validity.md, validity.html and the "
                                                    "score run (judged/); re-running resumes it.")] = Path(
        "validity-out"),
    datasets: Annotated[str | None, typer.Option(
        "--datasets", help="Comma-separated human-rated sets of the mirror: crisis, empathic, elephant "
        "(default: all of them, or none with --annotations).", show_default=False)] = None,
    annotations: Annotated[Path | None, typer.Option(
        "--annotations", help="Your own long annotation file (JSONL/CSV): item_id, criterion, rater, score, "
        "prompt (or messages), response; goes with --rubric.", show_default=False)] = None,
    rubric: Annotated[str | None, typer.Option(
        "--rubric", help="The pillar whose rubric criteria --annotations names.", show_default=False)] = None,
    judges_file: Annotated[Path | None, typer.Option("--judges-file", help="judges.toml with per-judge settings.")]
    = None,
    rubrics: Annotated[Path | None, typer.Option(
        "--rubrics", help="Folder of rubric YAML files (default: the bundled rubrics).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N items per set (the first N).")]
    = None,
    samples: Annotated[int, typer.Option("--samples", min=1, help="Samples per judge (use temperature > 0).")] = 1,
    gate: Annotated[bool, typer.Option(
        "--gate", help="Exit 4 when a judge is not as close to the humans as they are to each other (beyond "
        "--tolerance) on a critical criterion.")] = False,
    tolerance: Annotated[float, typer.Option(
        "--tolerance", min=0, help="How far (in kappa) a judge may fall below the humans' own agreement.")] = 0.1,
    min_items: Annotated[int, typer.Option(
        "--min-items", min=1, help="Fewer items rated by the judge and two humans: not enough data.")] = 10,
    bootstrap: Annotated[int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples of items (0: no CIs).")]
    = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")] = 0,
    epsilon: Annotated[float, typer.Option(
        "--epsilon", help="Cost-benefit margin of the alternative-annotator test (0.2 experts, 0.1 crowd).")] = 0.2,
    cache: Annotated[Path | None, typer.Option(
        "--cache", help="Cache folder (default: $TRUSTMH_CACHE_DIR, else trustmh-judge in ~/.cache).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the cache.")] = False,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Concurrent calls per judge.")] = 8,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the calls and their cost; send nothing.")] = False,
    batch: BatchOption = False,
    batch_poll: BatchPollOption = DEFAULT_POLL_S,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    no_report: Annotated[bool, typer.Option("--no-report", help="Write no validity.html.")] = False,
) -> None:
    """Is this judge, with these rubrics, as close to the human raters as they are to each other?

    Judges every human-rated set of the mirror (LLMs-Mental-Health-Crisis, empathic-communication,
    ELEPHANT) or your own annotations with the rubrics, through the usual engine (cache, resume, batch,
    dry run), and writes the validity table: per dataset × criterion × judge the agreement with each
    human and with their consensus, the humans' agreement with each other, the judges the dataset
    records, bootstrap intervals, the alternative-annotator test and a verdict.

    Examples:

        trustmh validate --judges openai:gpt-4.1-mini --out validity --dry-run

        trustmh validate --judges openai:gpt-4.1-mini --out validity --gate

        trustmh validate --judges openai:gpt-4.1-mini --annotations ours.csv --rubric support --out ours
    """
    from calibration.api import validate
    from calibration.validity_outputs import validity_table
    from judge.calls.runner import print_plan_table
    from judge.cli.common import cache_option, public_command_line, say
    from judge.judges import split_spec_list
    from judge.settings import RunSettings

    out_console = Console(soft_wrap=False)
    try:
        settings = RunSettings(cache_dir=cache_option(cache, no_cache), concurrency=concurrency, dry_run=dry_run,
                               quiet=quiet, batch=batch, batch_poll_s=batch_poll,
                               command_line=tuple(public_command_line()))
        done = validate(judges=[j for entry in judges or [] for j in split_spec_list(entry)] or None,
                        out=out, datasets=[d.strip() for d in datasets.split(",") if d.strip()] if datasets else None,
                        annotations=annotations, rubric=rubric, judges_file=judges_file, rubrics=rubrics,
                        limit=limit, samples=samples, gate=gate, tolerance=tolerance, min_items=min_items,
                        bootstrap=bootstrap, seed=seed, epsilon=epsilon, report=not no_report, settings=settings)
    except TrustMHError as exc:  # this command also runs outside `trustmh` (in its own typer app)
        typer.echo(flag_message(exc), err=True)
        raise typer.Exit(exc.exit_code) from None
    if done.plan is not None:
        print_plan_table(done.plan, "judge", "Dry run of the validation: nothing was sent", out_console, batch=batch)
        say(out_console, f"{done.items} item(s) to judge; token figures are estimates (4 characters a token; "
                         "outputs about 150 tokens a criterion).")
        return
    out_console.print(validity_table(done.rows, "Judges vs humans, humans vs humans"))
    typer.echo(f"wrote {', '.join(str(f) for f in done.files)}")
    for failure in done.gate_failures:
        typer.echo(f"gate failed: {failure}", err=True)
    raise typer.Exit(done.exit_code)
