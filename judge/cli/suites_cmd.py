"""`trustmh suites list | show | build` and `trustmh metrics RUN_DIR`.

Registered in judge/cli/main.py with ``app.add_typer(suites_app, name="suites")`` and
``app.command("metrics")(metrics_command)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from judge.cli.common import say
from judge.cli.tables import wrapping_table
from judge.datasets import get_dataset, load_published, published_for
from judge.errors import UsageError
from judge.stats.bootstrap import SMALL_N
from judge.suites.catalogue import SUBTASKS, SUITES, Suite, build_prompts
from judge.suites.paper import PAPER, protocol_text
from judge.suites.provenance import paper_definitions, suite_notes
from judge.suites.scorecard import DEFAULT_BOOTSTRAP, DEFAULT_SEED, scorecard_for, write_private, write_scorecard

suites_app = typer.Typer(
    no_args_is_help=True,
    help="TrustMH-Bench suites: list the sub-tasks, inspect one, build prompts for `trustmh respond`.",
)
console = Console()


def _metrics_text(suite: Suite) -> str:
    return ", ".join(m.name for m in suite.metrics)


WIDE_LIST = 140  # columns needed for the table layout of `suites list`


def _prompts_text(suite: Suite) -> str:
    return "—" if suite.n_prompts is None else str(suite.n_prompts)


@suites_app.command("list")
def list_suites() -> None:
    """Every sub-task of TrustMH-Bench's rank table, the suite that builds it, and whether it can run.

    Example: trustmh suites list
    """
    if console.width >= WIDE_LIST:
        table = Table(title="TrustMH-Bench suites")
        table.add_column("suite", no_wrap=True)  # the name to type: never cut
        for header in ("pillar", "paper sub-task", "dataset", "prompts", "metrics", "judge", "protocols", "status"):
            table.add_column(header, justify="right" if header == "prompts" else "left", overflow="fold")
        for suite in SUITES.values():
            table.add_row(suite.id, suite.pillar, ", ".join(suite.subtasks) or "(extra)", suite.dataset,
                          _prompts_text(suite), _metrics_text(suite), "yes" if suite.judge else "no",
                          protocol_text(suite.id), _status_with_notes(suite))
        console.print(table)
    else:  # a terminal too narrow for eight columns: one short block per suite
        for suite in SUITES.values():
            console.print(f"[bold]{suite.id}[/bold]  {suite.status_text}", highlight=False)
            console.print(f"    pillar {suite.pillar} · paper sub-task: {', '.join(suite.subtasks) or '(extra)'}"
                          f" · data: {suite.dataset} · prompts: {_prompts_text(suite)}"
                          f" · metrics: {_metrics_text(suite)} · judge: {'yes' if suite.judge else 'no'}"
                          f" · protocols: {protocol_text(suite.id)}",
                          highlight=False, markup=False)
            for line in _extra_lines(suite):
                console.print(f"    {line}", highlight=False, markup=False)
    print_published_data(console)
    covered = {(s.pillar, t) for s in SUITES.values() for t in s.subtasks}
    console.print(
        f"{len(covered)} of the paper's {len(SUBTASKS)} sub-tasks are listed; "
        f"{sum(s.status == 'available' for s in SUITES.values())} suites can be built now."
    )


def _extra_lines(suite: Suite) -> list[str]:
    """A suite's notes (stand-in data, our perturbations, fairness dimensions) and the data it would read that
    is published elsewhere, by registry name (`trustmh data fetch NAME`)."""
    lines = list(suite_notes(suite.id))
    published = published_for(suite.id)
    if published:
        lines.append("not in the dataset mirror: " + ", ".join(p.name for p in published)
                     + " (listed below; `trustmh data fetch NAME`)")
    return lines


def _status_with_notes(suite: Suite) -> str:
    return "\n".join([suite.status_text, *_extra_lines(suite)])


def print_published_data(out: Console) -> None:
    """The registry's data that is not in the mirror: where it is published, and whether `data fetch` can get it."""
    table = wrapping_table(escape("Data not in the dataset mirror (data/registry.toml [published])"),
                           ["name", "what", "published at", "named by", "suites", "trustmh data fetch"])
    for entry in load_published().values():
        table.add_row(entry.name, entry.title, entry.page, entry.named_by, ", ".join(entry.suites) or "—",
                      fetch_text(entry.url, entry.sha256))
    out.print(table)


def fetch_text(url: str | None, sha256: str | None) -> str:
    if url and sha256:
        return "yes (sha256-checked)"
    lacking = " and no ".join(f for f, v in (("file URL", url), ("sha256", sha256)) if not v)
    return f"no: no {lacking} known; fetch it by hand"


def _suite_or_usage(name: str) -> Suite:
    if name not in SUITES:
        raise UsageError(f"SUITE: unknown suite {name!r}; `trustmh suites list` shows them: {', '.join(SUITES)}")
    return SUITES[name]


@suites_app.command("show")
def show_suite(
    name: Annotated[str, typer.Argument(metavar="SUITE", help="A suite id, e.g. safety/jailbreak.")],
) -> None:
    """What one suite sends, from which data, and what decides its metrics.

    Example: trustmh suites show privacy/leakage
    """
    suite = _suite_or_usage(name)
    console.print(f"[bold]{suite.id}[/]  ({suite.pillar}; paper sub-task: {', '.join(suite.subtasks) or 'extra'})")
    console.print(f"status: {suite.status_text}")
    console.print(f"dataset: {suite.dataset}" + ("" if suite.n_prompts is None else f", {suite.n_prompts} prompts"))
    if suite.target_sees:
        console.print(f"the target sees: {suite.target_sees}")
    rubrics = " and ".join(suite.judged_by) + (" rubrics" if len(suite.judged_by) > 1 else " rubric")
    console.print(f"judge needed: {'yes, with the ' + rubrics if suite.judge else 'no'}")
    paper = PAPER.get(suite.id)
    console.print(f"paper protocol: the authors' {paper.authors}" if paper else
                  "paper protocol: none published; runs under rubric only", markup=False)
    if paper and paper.differs:
        console.print(f"  differs here: {paper.differs}", markup=False)
    for note in suite_notes(suite.id):
        console.print(f"note: {note}", markup=False, highlight=False)
    for definition in paper_definitions(suite.id):
        console.print(f"the paper's {definition.what}: {definition.status}: {definition.why}", markup=False,
                      highlight=False)
    for i, metric in enumerate(suite.metrics):
        arrow = "higher is better" if metric.higher_is_better else "lower is better"
        primary = " (ranked)" if i == 0 else ""
        console.print(f"  • {metric.name}{primary} ({metric.source}; {arrow}): {metric.description}", markup=False)
    for dataset in suite.sources:
        entry = get_dataset(dataset)
        console.print(f"source: {entry.repository}@{entry.commit[:12]} ({entry.licence}); cite {entry.citation}")
    for published in published_for(suite.id):
        console.print(f"not in the mirror: {published.name}: {published.where}", markup=False, highlight=False)


@suites_app.command("build")
def build_suites(
    names: Annotated[
        list[str], typer.Argument(metavar="SUITE...", help="Suite ids to build, in order.", show_default=False)
    ],
    out: Annotated[Path, typer.Option("--out", help="Prompts file to write (JSONL).", show_default=False)],
    limit: Annotated[
        int | None, typer.Option("--limit", min=0, help="A seeded sample of N prompts per suite.", show_default=False)
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the --limit sample.")] = 0,
) -> None:
    """Write the prompts of one or more suites (items without a response) for `trustmh respond`.

    Example: trustmh suites build safety/jailbreak privacy/leakage --out prompts.jsonl --limit 20 --seed 1
    """
    prompts = build_prompts(names, limit, seed, field="SUITE")
    write_private(out, "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in prompts))
    counts = {name: sum(p["meta"]["suite"] == name for p in prompts) for name in dict.fromkeys(names)}
    console.print(f"wrote {len(prompts)} prompts to {out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def metrics_command(
    run_dir: Annotated[
        Path, typer.Argument(metavar="RUN_DIR", help="A bench run directory (respond/ and score/).", show_default=False)
    ],
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples of prompts (0: no CIs).")
    ] = DEFAULT_BOOTSTRAP,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")] = DEFAULT_SEED,
) -> None:
    """Compute the TrustMH-Bench numbers of a run: RUN_DIR/scorecard.json and RUN_DIR/scorecard.md.

    Example: trustmh metrics runs/bench1
    """
    card = scorecard_for(run_dir, bootstrap, seed)
    json_path, md_path = write_scorecard(run_dir, card)
    print_primary_table(card, console)
    console.print(
        f"{len(card['results'])} records, {len(card['unparsed'])} unreadable answers; wrote {json_path} and {md_path}"
    )


def print_primary_table(card: dict[str, Any], out: Console, title: str = "Ranked metric per suite") -> None:
    """Each suite's ranked metric per target, with its rank: one row per suite (there are up to twenty) and one
    column per target (a few), so neither a suite nor a target name is ever cut; cells wrap instead."""
    targets = list(dict.fromkeys(r["target"] for r in card["results"]))
    table = wrapping_table(title, ["suite", "metric", *targets], numeric=targets)
    index = {(r["target"], r["suite"], r["metric"]): r for r in card["results"] if r["group"] is None}
    for suite_id, entry in card["ranks"].items():
        cells = []
        for target in targets:
            record = index.get((target, suite_id, entry["metric"]))
            if record is None or record["value"] is None:
                cells.append("—")
            else:
                mark = "*" if record.get("small_n") else ""
                cells.append(f"{record['value']:.3f}{mark} (#{entry['ranks'].get(target, '—')})")
        table.add_row(suite_id, entry["metric"], *cells)
    table.columns[0].min_width = max((len(s) for s in card["ranks"]), default=5)  # the name to type: kept whole
    out.print(table)
    if any(r.get("small_n") for r in card["results"] if r["group"] is None):
        say(out, f"* small n: a value over fewer than {card.get('small_n_below') or SMALL_N} prompts; its interval "
                 "(in scorecard.md) understates the uncertainty")


def print_published_table(published: dict[str, Any], out: Console) -> None:
    """The paper's summary figures, published beside this run's, with both ranks; the count of every
    published figure reproduced / differing / without data (all of them are in scorecard.json and .md)."""
    table = Table(title="The paper's summary figures: published beside this run (rank 1 = best)")
    for header in ("figure", "target", "published", "this run", "status", "rank (published)", "rank"):
        table.add_column(header, justify="right" if header in ("published", "this run") else "left",
                         overflow="fold")
    for row in published["summary"]:
        value = "—" if row["reproduced"] is None else f"{row['reproduced']:.4f}"
        status = row["status"] if row["difference"] is None else f"{row['status']} ({row['difference']:+.4f})"
        table.add_row(f"{row['suite']} {row['metric']}", row["target"], f"{row['published']:.4f}", value, status,
                      str(row["published_rank"] or "—"), f"{row['rank'] or '—'} ({row['rank_status']})")
    out.print(table)
    counts = published["counts"]
    out.print(f"published figures: {counts['reproduced']} reproduced, {counts['differs']} differ, "
              f"{counts['no data']} without data (every one in scorecard.json `published` and scorecard.md)",
              highlight=False)
    if rank_table := published.get("rank_table"):
        cells = rank_table["counts"]
        out.print(f"the paper's rank table, cell by cell: {cells['reproduced']} reproduced, {cells['differs']} differ, "
                  f"{cells['no data']} without data (scorecard.md)", highlight=False)
