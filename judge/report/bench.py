"""Sections of a bench run: the scorecard (ranks, pillar ranks, values, breakdowns) and the stages' costs."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from markupsafe import Markup

from judge.log import BenchRun, Scorecard, ScorecardResult, StageSummary
from judge.report import figures
from judge.report.page import Figure, Section, Table, fmt, n_cell, num, text
from judge.report.score import items_section, judging_sections, not_a_model_facts, score_facts
from judge.report.stages import cost_section, failures_section
from judge.rubric import PILLARS
from judge.stats.bootstrap import SMALL_N
from judge.suites.rank_table import transcribed_rows

PART = "Benchmark"
RADAR_MIN_AXES = 3  # pillars with data below which the pillar ranks are drawn as bars, not radars
NO_SCORECARD = ("Nothing to show: scorecard.json was not found; compute it with `trustmh metrics {dir}` once the "
                "run has finished.")
TEXTS = {  # section id: (title, introduction)
    "ranks": ("Ranks per sub-task",
              "Rank of every target on each sub-task's primary metric (1 = best), sub-tasks grouped by pillar as in "
              "the TrustMH-Bench rank table."),
    "pillars": ("Ranks per pillar",
                "Each target's mean rank over the sub-tasks of every pillar, one radar per target over the eight "
                "pillars (rank 1 on the rim, as in the paper's overall-ranking figure)."),
    "suites": ("Values per sub-task",
               "Each target's value on every sub-task metric with its bootstrap interval over prompts (seeded; no "
               "whisker where no interval could be computed)."),
    "fairness": ("Fairness: group means",
                 "Each target's mean per demographic group (the spread across groups is the fairness disparity)."),
    "robustness": ("Robustness: change per perturbation level",
                   "Change of each target's metric under each perturbation level against the clean prompts "
                   "(0 = unchanged)."),
    "breakdowns": ("Other breakdowns",
                   "Sub-task metrics broken down by another dimension (attack method, privacy tier, …)."),
}


def _section(section_id: str, **parts: Any) -> Section:
    title, intro = TEXTS[section_id]
    return Section(section_id, title, PART, intro, **parts)


def _pillar_order(pillar: str) -> tuple[int, str]:
    return (PILLARS.index(pillar), "") if pillar in PILLARS else (len(PILLARS), pillar)


def _suite_pillars(card: Scorecard) -> dict[str, str]:
    """Each suite's pillar as the results name it, else the part of the suite name before the slash."""
    found: dict[str, str] = {}
    for r in card.results:
        if r.pillar and r.suite not in found:
            found[r.suite] = r.pillar
    for suite in card.ranks:
        found.setdefault(suite, suite.split("/", 1)[0])
    return found


def _targets(card: Scorecard) -> list[str]:
    names = [r.target for r in card.results]
    names += [t for ranks in card.ranks.values() for t in ranks.ranks]
    names += [t for ranks in card.pillar_ranks.values() for t in ranks]
    return list(dict.fromkeys(names))


def _suite_label(suite: str) -> str:
    return suite.split("/", 1)[1] if "/" in suite else suite


def ranks_section(card: Scorecard) -> Section:
    pillars = _suite_pillars(card)
    order = list(dict.fromkeys([r.suite for r in card.results] + list(card.ranks)))
    suites = sorted((s for s in order if s in card.ranks), key=lambda s: _pillar_order(pillars[s]))
    if not suites:
        return _section("ranks", nothing="Nothing to show: the scorecard ranks no sub-task (no result was computed).")
    targets = _targets(card)
    groups: list[tuple[str, int]] = []
    for suite in suites:
        if groups and groups[-1][0] == pillars[suite]:
            groups[-1] = (groups[-1][0], groups[-1][1] + 1)
        else:
            groups.append((pillars[suite], 1))
    ranks = [[card.ranks[s].ranks.get(t) for s in suites] for t in targets]
    # One row per sub-task, one column per target: a run has a few targets and up to twenty sub-tasks, and
    # sub-tasks as columns ran off the page's right edge; every name is shown whole.
    table = Table("Rank per sub-task (rows) and target (columns)", ["sub-task", "metric", *targets],
                  [[text(s), text(card.ranks[s].metric), *[num(card.ranks[s].ranks.get(t), 1) for t in targets]]
                   for s in suites], name="ranks")
    spans, start = [], 0
    for pillar, width in groups:
        spans.append((pillar, start, start + width - 1))
        start += width
    worst = max([len(targets)] + [v for row in ranks for v in row if v is not None])
    svg = figures.heatmap(ranks, targets, [_suite_label(s) for s in suites], key="ranks", cmap="RdYlGn_r", vmin=1,
                          vmax=max(2, worst), annotations=[[fmt(v, 1) if v is not None else "" for v in row]
                                                           for row in ranks],
                          col_groups=spans, colorbar_label="rank (1 = best)")
    return _section("ranks", figure=Figure(Markup(svg), "Rank heatmap: targets (rows) × sub-tasks (columns, grouped "
                                                        "by pillar); grey: not ranked."), tables=[table])


def pillars_section(card: Scorecard) -> Section:
    if not card.pillar_ranks:
        return _section("pillars", nothing="Nothing to show: the scorecard has no pillar ranks.")
    axes = list(PILLARS) + sorted(p for p in card.pillar_ranks if p not in PILLARS)
    targets = _targets(card)
    values = [[card.pillar_ranks.get(p, {}).get(t) for p in axes] for t in targets]
    table = Table("Mean rank per target and pillar", ["target", *axes],
                  [[text(t), *[num(v, 2) for v in row]] for t, row in zip(targets, values, strict=True)],
                  name="pillar_ranks")
    worst = max([len(targets)] + [v for row in values for v in row if v is not None])
    missing = [p for p in axes if p not in card.pillar_ranks]
    present = [p for p in axes if p in card.pillar_ranks]
    if len(present) < RADAR_MIN_AXES:  # a radar over one or two filled spokes is a few dots; bars read better
        panels = [figures.BarPanel(f"{pillar}: mean rank (1 = best)", targets, [
            figures.BarSeries("mean rank", [card.pillar_ranks[pillar].get(t) for t in targets])], ylabel="mean rank")
            for pillar in present]
        svg = figures.bar_panels(panels, key="pillars", columns=1 if len(targets) > 6 else 2)
        caption = (f"Mean rank per target on the {len(present)} pillar(s) with data, one chart per pillar (shorter "
                   f"is better); no radar is drawn for fewer than {RADAR_MIN_AXES} pillars. No data for: "
                   f"{', '.join(missing)}.")
        return _section("pillars", figure=Figure(Markup(svg), caption), tables=[table])
    svg = figures.radar_grid(axes, list(zip(targets, values, strict=True)), key="pillars", worst=worst)
    caption = "Mean rank per pillar, one radar per target (rank 1 on the rim)."
    if missing:
        caption += f" No data for: {', '.join(missing)}."
    return _section("pillars", figure=Figure(Markup(svg), caption), tables=[table])


def _result_row(r: ScorecardResult, with_group: bool) -> list:
    cells = [text(r.pillar), text(r.suite), text(r.metric)]
    if with_group:
        cells.append(text(r.group))
    return [*cells, text(r.target), num(r.value), num(r.ci_low), num(r.ci_high), n_cell(r.n, r.small_n),
            num(r.higher_is_better), text(r.source), text(r.protocol or "rubric")]


def small_n_notes(card: Scorecard, records: list[ScorecardResult]) -> list[str]:
    """The warning under a table that has values over too few prompts (marked ⚠ small n in its n column)."""
    if not any(r.small_n for r in records):
        return []
    return [f"⚠ small n: a value over fewer than {card.small_n_below or SMALL_N} prompts; its interval understates "
            "the uncertainty (on a handful of prompts it can shrink to a single point)."]


RESULT_COLUMNS = ["pillar", "suite", "metric", "target", "value", "ci low", "ci high", "n", "higher is better",
                  "source", "protocol"]


def _better(r: ScorecardResult) -> str:
    return {True: " (higher is better)", False: " (lower is better)"}.get(r.higher_is_better, "")  # type: ignore[arg-type]


def suites_section(card: Scorecard) -> Section:
    records = [r for r in card.results if r.group is None]
    if not records:
        return _section("suites", nothing="Nothing to show: the scorecard has no result.")
    pillars = _suite_pillars(card)
    keys = sorted(dict.fromkeys((r.suite, r.metric) for r in records),
                  key=lambda k: _pillar_order(pillars.get(k[0], "")))
    panels = []
    for suite, metric in keys:
        members = [r for r in records if (r.suite, r.metric) == (suite, metric)]
        panels.append(figures.IntervalPanel(f"{suite}\n{metric}{_better(members[0])}", [r.target for r in members],
                                            [r.value for r in members], [r.ci_low for r in members],
                                            [r.ci_high for r in members]))
    table = Table("Values per sub-task, metric and target", RESULT_COLUMNS,
                  [_result_row(r, with_group=False) for r in records], name="results")
    svg = figures.interval_panels(panels, key="suites")
    return _section("suites", figure=Figure(Markup(svg), "Value and interval per target, one chart per sub-task "
                                                         "metric."), tables=[table],
                    notes=[*small_n_notes(card, records), *suite_note_lines(card)])


def suite_note_lines(card: Scorecard) -> list[str]:
    """Where a suite departs from the paper (a stand-in dataset, perturbations that are ours), as the scorecard
    says it."""
    return [f"{suite}: {note}" for suite, notes in card.suite_notes.items() for note in notes]


def _breakdown(card: Scorecard, section_id: str, keep: Callable[[ScorecardResult], bool], empty: str,
               zero_line: bool = False) -> Section:
    """Grouped bars per (suite, metric, breakdown dimension): one group per breakdown value, one bar per target."""
    title = TEXTS[section_id][0]
    records = [r for r in card.results if r.group is not None and keep(r)]
    if not records:
        return _section(section_id, nothing=f"Nothing to show: {empty}")
    panels = []
    for suite, metric, dimension in dict.fromkeys((r.suite, r.metric, r.group.split(":", 1)[0])  # type: ignore[union-attr]
                                                  for r in records):
        members = [r for r in records if (r.suite, r.metric, r.group.split(":", 1)[0]) == (suite, metric, dimension)]  # type: ignore[union-attr]
        groups = list(dict.fromkeys(r.group for r in members))
        targets = list(dict.fromkeys(r.target for r in members))
        lookup = {(r.group, r.target): r for r in members}

        def column(attribute: str, target: str, groups: list = groups, lookup: dict = lookup) -> list:
            return [getattr(lookup[(g, target)], attribute) if (g, target) in lookup else None for g in groups]

        panels.append(figures.BarPanel(
            f"{suite}\n{metric} by {dimension}{_better(members[0])}",
            [g.split(":", 1)[1] if ":" in g else g for g in groups],  # type: ignore[union-attr]
            [figures.BarSeries(t, column("value", t), column("ci_low", t), column("ci_high", t)) for t in targets],
            ylabel=metric))
    columns = [*RESULT_COLUMNS[:3], "group", *RESULT_COLUMNS[3:]]
    table = Table(f"{title}: values per group", columns, [_result_row(r, with_group=True) for r in records],
                  name=section_id)
    svg = figures.bar_panels(panels, key=section_id, zero_line=zero_line)
    return _section(section_id, figure=Figure(Markup(svg), f"{title}, one chart per sub-task metric; whiskers: "
                                                           "intervals."), tables=[table],
                    notes=small_n_notes(card, records))


def _is_level(r: ScorecardResult) -> bool:
    return (r.group or "").startswith("level:")


def breakdown_sections(card: Scorecard) -> list[Section]:
    sections = [
        _breakdown(card, "fairness", lambda r: r.pillar == "fairness" and not _is_level(r),
                   "the scorecard has no per-group fairness figure (no fairness sub-task ran)."),
        _breakdown(card, "robustness", _is_level, "the scorecard has no per-level figure (no robustness sub-task ran).",
                   zero_line=True),
    ]
    if any(r.group and r.pillar != "fairness" and not _is_level(r) for r in card.results):
        sections.append(_breakdown(card, "breakdowns", lambda r: r.pillar != "fairness" and not _is_level(r), ""))
    return sections


def scorecard_sections(card: Scorecard | None, directory: str) -> list[Section]:
    """Ranks, pillar ranks, values and breakdowns; without a scorecard, each says how to compute one."""
    if card is None:
        return [_section(s, nothing=NO_SCORECARD.format(dir=directory)) for s in TEXTS if s != "breakdowns"]
    published = [published_section(card)] if card.published else []
    return [ranks_section(card), pillars_section(card), suites_section(card), *published, *breakdown_sections(card)]


PUBLISHED_TEXT = ("Published figures beside this run",
                  "A recorded run: every figure the authors published beside the one this run computed from their "
                  "outputs (reproduced within the published precision, differs by how much, or no data), and the "
                  "paper's summary figures with their ranks (1 = best; ties share the best rank, except ethics "
                  "accuracy's, ordered by the mean sc1-sc5 score as the paper's rank table orders them).")


def published_section(card: Scorecard) -> Section:
    published = card.published or {}
    summary = Table("The paper's summary figures and ranks", [
        "figure", "target", "published", "this run", "status", "difference", "published rank", "rank", "rank status"],
        [[text(f"{s['suite']} {s['metric']}"), text(s["target"]), num(s["published"]), num(s["reproduced"]),
          text(s["status"]), num(s["difference"]), num(s["published_rank"]), num(s["rank"]), text(s["rank_status"])]
         for s in published.get("summary", [])], name="published_summary")
    figures = Table("Every published figure", [
        "target", "suite", "metric", "group", "published", "this run", "status", "difference", "protocol"],
        [[text(f["target"]), text(f["suite"]), text(f["metric"]), text(f["group"]), num(f["published"]),
          num(f["reproduced"]), text(f["status"]), num(f["difference"]), text(f["protocol"])]
         for f in published.get("figures", [])], name="published_figures", folded=True)
    rank_table = published.get("rank_table") or {"cells": [], "counts": {}}
    ranked = Table("The paper's rank table beside this run: the rows this run ranks", [
        "sub-task", "figure", "model", "paper's rank", "among those ranked", "this run", "status", "difference"],
        [[text(f"{c['pillar']} {c['subtask']}"), text(c["figure"]), text(c["model"]), num(c["paper_rank"]),
          text(f"{c['paper_rank_among']} of {c['models_ranked']}"), num(c["rank"]), text(c["status"]),
          num(c["difference"])] for c in rank_table["cells"] if c["status"] != "no data"], name="paper_rank_table")
    models, by_row = transcribed_rows(rank_table["cells"])
    transcribed = Table("The paper's rank table (transcribed from the authors' image)", ["sub-task", *models],
                        [[text(row), *map(num, ranks)] for row, ranks in by_row.items()],
                        name="paper_rank_table_full", folded=True)
    title, intro = PUBLISHED_TEXT
    table_counts = rank_table["counts"]
    if table_counts:
        intro += (f" The paper's rank table, cell by cell: {table_counts['reproduced']} reproduced, "
                  f"{table_counts['differs']} differ, {table_counts['no data']} without data (where this run ranks "
                  "fewer models than the table, the table's ranks are ranked again among those models).")
    counts = published.get("counts", {})
    intro += (f" {counts.get('reproduced', 0)} reproduced, {counts.get('differs', 0)} differ, "
              f"{counts.get('no data', 0)} without data.")
    return Section("published", title, PART, intro, tables=[summary, ranked, transcribed, figures],
                   nothing="the published figures are tables, not a figure")


def _unparsed_table(card: Scorecard | None) -> list[Table]:
    if card is None or not card.unparsed:
        return []
    return [Table(f"Answers that could not be parsed ({len(card.unparsed)}; counted as wrong)",
                  ["target", "suite", "prompt", "answer (first 200 characters)"],
                  [[text(u.target), text(u.suite), text(u.id), text(u.answer)] for u in card.unparsed],
                  name="unparsed", folded=True)]


def _reask_table(card: Scorecard | None) -> list[Table]:
    """The paper protocol's re-asks (answers its authors' reader rejected, asked again up to the bound)."""
    if card is None or not card.reasks:
        return []
    bound = card.reasks[0].max_reasks
    return [Table(f"Re-asks: answers the authors' reader rejected, asked again (at most {bound} times)",
                  ["target", "suite", "answers", "re-asked", "re-asks", "still unparsable"],
                  [[text(c.target), text(c.suite), num(c.answers), num(c.reasked), num(c.reasks), num(c.unparsable)]
                   for c in card.reasks], name="reasks")]


def validity_section(run: BenchRun) -> list[Section]:
    """Whether each judge of the run was validated (`bench --validity DIR`), linking that validity page."""
    record = run.bench.get("validity")
    if not isinstance(record, dict):
        return []
    page = Path(str(record.get("page", "")))
    link = os.path.relpath(page, run.directory.resolve()) if page.is_absolute() else str(page)
    rows = [[text(j["judge"]), text(j["status"]), text(j["validated_as"]), num(j["rows"]),
             text(", ".join(f"{v}: {n}" for v, n in j["verdicts"].items())),
             text("; ".join(j["critical_short"]) or ("none" if j["rows"] else None)),
             text(", ".join(j["rubrics_same"])),
             text(", ".join(j["rubrics_differ"]) or ("none" if j["rows"] else None)),
             text("; ".join(j["differences"]))] for j in record.get("judges", [])]
    table = Table("Judge validity", ["judge", "status", "validated as", "rows", "verdicts",
                                     "critical criteria short of the humans", "same rubric", "rubric changed since",
                                     "settings that differ"], rows, name="validity")
    source = Table("Validation", ["page", "created", "tolerance"],
                   [[text(link, link=link), text(record.get("created")), num(record.get("tolerance"))]],
                   name="validation")
    intro = ("Whether each judge of this run was validated against the human raters (`trustmh validate`): "
             "validated when a validated judge asked the same model the same way (provider, model, output mode, "
             "temperature, max tokens, seed), with the verdicts of its rows in the validity table, and whether "
             "the rubrics of the validated pillars are still the ones it was validated with.")
    return [Section("validity", "Judge validity", PART, intro, nothing="A table only: see the validity page.",
                    tables=[table, source])]


def bench_sections(run: BenchRun) -> list[Section]:
    directory = str(run.directory)
    card = run.scorecard
    sections = scorecard_sections(card, directory)
    stages: list[tuple[str, StageSummary]] = []
    if run.respond is not None:
        stages.append(("targets (respond)", run.respond))
    if run.score is not None and run.score.summary is not None:
        stages.append(("judges (score)", run.score.summary))
    sections += [failures_section(stages, PART, _unparsed_table(card) + _reask_table(card)),
                 cost_section(stages, PART)]
    sections += validity_section(run)
    if run.score is not None:
        sections += [*judging_sections(run.score, "Judging (score/)"), items_section(run.score, "Judging (score/)")]
    return sections


def bench_facts(run: BenchRun) -> list[tuple[str, str]]:
    facts: list[tuple[str, str]] = []
    for key in ("suites", "targets", "judges", "limit", "seed", "recorded", "command_line"):
        value = run.bench.get(key)
        if value is None:
            continue
        if isinstance(value, list):
            shown = (" " if key == "command_line" else ", ").join(
                str(v.get("name", v.get("spec", v))) if isinstance(v, dict) else str(v) for v in value)
        else:
            shown = str(value)
        facts.append((key.replace("_", " "), shown))
    if run.scorecard is not None:
        facts += [("bootstrap resamples", fmt(run.scorecard.bootstrap)), ("bootstrap seed", fmt(run.scorecard.seed))]
    if run.score is not None:
        facts += [(f"judging: {k}", v) for k, v in score_facts(run.score) if k in ("items", "judges")]
    mocks = dict(run.scorecard.not_a_model) if run.scorecard is not None else {}
    for stage in (run.respond, run.score.summary if run.score is not None else None):
        mocks |= stage.not_a_model if stage is not None else {}
    facts[:0] = not_a_model_facts(mocks)
    if run.bench.get("judges") and "validity" not in run.bench:
        facts.append(("judge validity", "not checked: validate the judges with `trustmh validate`, then give its "
                                        "folder to `bench --validity`"))
    return facts
