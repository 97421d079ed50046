"""Sections of a score run (`trustmh score --out DIR`): everything is read from summary.json and review.jsonl."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from markupsafe import Markup

from judge.log import ReviewRow, ScoreRun, ScoreSummary
from judge.report import figures
from judge.report.items import PAGE_SIZE, item_browser
from judge.report.page import Figure, Section, Table, cell_list, fmt, num, text
from judge.report.stages import cost_section, failures_section
from judge.rubric import Rubric, RubricError, load_rubric_dir

MAX_REVIEW_SHOWN = 300
PANEL_COUNTS = (("rows", "panel rows"), ("decided", "decided"), ("undecided", "undecided"),
                ("not_applicable", "not applicable"), ("critical_fail", "critical failures"),
                ("escalated", "escalated for review"), ("decided_by_tiebreak", "decided by the tie-breaker"))


def _target(value: str | None) -> str:
    return value if value is not None else "(no target)"


def _run_rubrics(run: dict[str, Any]) -> dict[str, Rubric]:
    """The run's rubrics when still loadable, used only to colour means on their own scale."""
    directory = run.get("rubrics_dir")
    if not isinstance(directory, str):
        return {}
    try:
        return load_rubric_dir(Path(directory))
    except (RubricError, OSError):
        return {}


def means_section(summary: ScoreSummary, run: dict[str, Any], part: str) -> Section:
    title = "Mean score per pillar × target × criterion"
    intro = ("Mean of the successful verdicts of each judge. Failed and not-applicable verdicts are counted apart "
             "and never averaged in.")
    rows = summary.mean_scores
    table = Table("Mean scores", ["pillar", "target", "criterion", "judge", "mean", "n", "not applicable", "failed"],
                  [[text(r.pillar), text(_target(r.target)), text(r.criterion), text(r.judge), num(r.mean), num(r.n),
                    num(r.not_applicable), num(r.failed)] for r in rows], name="mean_scores")
    if not any(r.mean is not None for r in rows):
        why = "no verdict succeeded, so there is no mean" if rows else "no verdict in this run"
        return Section("means", title, part, intro, nothing=f"Nothing to show: {why}.", tables=[table] if rows else [])
    several_judges = len({r.judge for r in rows}) > 1
    row_keys = list(dict.fromkeys((r.pillar, r.criterion) for r in rows))
    col_keys = list(dict.fromkeys((r.target, r.judge) for r in rows))
    lookup = {(r.pillar, r.criterion, r.target, r.judge): r.mean for r in rows}
    values = [[lookup.get((p, c, t, j)) for t, j in col_keys] for p, c in row_keys]
    rubrics = _run_rubrics(run)
    scales = {}
    for pillar, criterion in row_keys:
        rubric = rubrics.get(pillar)
        found = next((c for c in rubric.criteria if c.id == criterion), None) if rubric else None
        if found is not None:
            scales[(pillar, criterion)] = (found.scale.min, found.scale.max)
    on_scale = len(scales) == len(row_keys)
    colours = ([[None if v is None else (v - scales[key][0]) / (scales[key][1] - scales[key][0]) for v in row]
                for key, row in zip(row_keys, values, strict=True)] if on_scale else None)
    svg = figures.heatmap(
        values, [f"{p} · {c}" for p, c in row_keys],
        [f"{_target(t)}\n{j}" if several_judges else _target(t) for t, j in col_keys],
        key="means", cmap="RdYlGn", vmin=0 if on_scale else None, vmax=1 if on_scale else None,
        annotations=[[f"{v:.2f}" if v is not None else "" for v in row] for row in values],
        colour_values=colours,
        colorbar_label="place on the scale (0 lowest, 1 highest)" if on_scale else "mean score")
    return Section("means", title, part, intro,
                   figure=Figure(Markup(svg), "Mean score per criterion (rows) and target (columns)"
                                 + (" and judge" if several_judges else "") + "; grey: no successful verdict."),
                   tables=[table])


def critical_section(summary: ScoreSummary, part: str) -> Section:
    title = "Critical-failure rates"
    intro = ("Share of judged responses that fail any critical criterion of the pillar (a score below its fail line), "
             "per pillar, target and judge.")
    rows = summary.critical_failure_rate
    table = Table("Critical-failure rates", ["pillar", "target", "judge", "rate", "n"],
                  [[text(r.pillar), text(_target(r.target)), text(r.judge), num(r.rate), num(r.n)] for r in rows],
                  name="critical_failure_rate")
    if not rows:
        return Section("critical", title, part, intro,
                       nothing="Nothing to show: no response was judged on a critical criterion.")
    several_judges = len({r.judge for r in rows}) > 1
    pillars = list(dict.fromkeys(r.pillar for r in rows))
    cols = list(dict.fromkeys((r.target, r.judge) for r in rows))
    lookup = {(r.pillar, r.target, r.judge): r for r in rows}
    values = [[lookup[(p, t, j)].rate if (p, t, j) in lookup else None for t, j in cols] for p in pillars]
    notes = [[f"{lookup[(p, t, j)].rate:.2f}\nn={lookup[(p, t, j)].n}" if (p, t, j) in lookup else "" for t, j in cols]
             for p in pillars]
    svg = figures.heatmap(values, pillars, [f"{_target(t)}\n{j}" if several_judges else _target(t) for t, j in cols],
                          key="critical", cmap="Reds", vmin=0, vmax=1, annotations=notes,
                          colorbar_label="critical-failure rate")
    return Section("critical", title, part, intro,
                   figure=Figure(Markup(svg), "Critical-failure rate per pillar (rows) and target (columns)."),
                   tables=[table])


def label_section(summary: ScoreSummary, part: str) -> Section:
    """How often each judge's reading of the risk differed from the items' risk labels (a judge-audit signal)."""
    title = "Judge reading against the risk labels"
    intro = ("Items with a risk label (the crisis dataset's human category, a persona's or suite's risk level) "
             "decide which criteria apply and the least urgency; the judge still records its own reading of "
             "the category and the risk level. Per judge: how often that reading differed from the label, and "
             "which categories were confused.")
    rows = summary.label_agreement
    table = Table("Disagreement with the label per pillar × judge",
                  ["pillar", "judge", "category: compared", "category: disagreed", "category: share",
                   "level: compared", "level: disagreed", "level: share"],
                  [[text(r.pillar), text(r.judge), num(r.category_n), num(r.category_disagree),
                    num(r.category_share), num(r.level_n), num(r.level_disagree), num(r.level_share)]
                   for r in rows], name="label_agreement")
    confusions = Table("Confusions (label → the judge's reading)",
                       ["pillar", "judge", "field", "label", "judge read", "n"],
                       [[text(r.pillar), text(r.judge), text(c.field), text(c.label), text(c.read), num(c.n)]
                        for r in rows for c in r.confusions], name="label_confusions")
    shares = [(f"{r.pillar} · {r.judge}", r.category_share if r.category_n else r.level_share) for r in rows]
    shown = [(label, share) for label, share in shares if share is not None]
    if not shown:
        return Section("labels", title, part, intro, nothing="Nothing to show: no labelled item was read.",
                       tables=[table, confusions])
    svg = figures.horizontal_bars([label for label, _ in shown], [share for _, share in shown], key="labels",
                                  xlabel="share of readings that disagree with the label")
    return Section("labels", title, part, intro,
                   figure=Figure(Markup(svg), "Share of the judge's readings (category, else level) that disagree "
                                              "with the item's label, per pillar and judge."),
                   tables=[table, confusions])


def agreement_section(summary: ScoreSummary, part: str) -> Section:
    title = "Panel agreement"
    intro = ("Quadratic-weighted kappa between each pair of judges per criterion (each judge's first successful "
             "sample), Krippendorff's ordinal alpha over all judges, and each judge's consistency across its own "
             "samples.")
    pairs = [(a, p) for a in summary.agreement for p in a.pairwise_qwk]
    pair_table = Table("Quadratic-weighted kappa per judge pair",
                       ["pillar", "criterion", "judge A", "judge B", "qwk", "n"],
                       [[text(a.pillar), text(a.criterion), text(p.judges[0]), text(p.judges[-1]), num(p.qwk),
                         num(p.n)] for a, p in pairs], name="pairwise_qwk")
    alpha_table = Table("Krippendorff's alpha (ordinal) among the judges",
                        ["pillar", "criterion", "judges", "items", "items with ≥2 judges", "alpha (ordinal)"],
                        [[text(a.pillar), text(a.criterion), cell_list(a.judges), num(a.n_items), num(a.n_units),
                          num(a.alpha_ordinal)] for a in summary.agreement], name="alpha")
    consistency = [(a, s) for a in summary.agreement for s in a.self_consistency if s.n_samples > 1]
    tables = [pair_table, alpha_table]
    if consistency:
        tables.append(Table("Self-consistency across samples",
                            ["pillar", "criterion", "judge", "samples", "items", "alpha (ordinal)", "all agree"],
                            [[text(a.pillar), text(a.criterion), text(s.judge), num(s.n_samples), num(s.n_items),
                              num(s.alpha_ordinal), num(s.all_agree_share)] for a, s in consistency],
                            name="self_consistency"))
    if not any(p.qwk is not None for _, p in pairs):
        judges = len(summary.judges)
        why = (f"agreement needs at least two judges and this run had {judges}" if judges < 2 and not pairs else
               "no pair of judges scored the same items with any variation, so no kappa is defined")
        return Section("agreement", title, part, intro, nothing=f"Nothing to show: {why}.",
                       tables=tables if summary.agreement else [])
    rows = list(dict.fromkeys((a.pillar, a.criterion) for a, _ in pairs))
    cols = list(dict.fromkeys(tuple(p.judges) for _, p in pairs))
    lookup = {(a.pillar, a.criterion, tuple(p.judges)): p.qwk for a, p in pairs}
    values = [[lookup.get((pillar, criterion, c)) for c in cols] for pillar, criterion in rows]
    svg = figures.heatmap(values, [f"{p} · {c}" for p, c in rows], ["\n× ".join(c) for c in cols], key="agreement",
                          cmap="RdYlGn", vmin=-1, vmax=1,
                          annotations=[[f"{v:.2f}" if v is not None else "n/a" for v in row] for row in values],
                          colorbar_label="quadratic-weighted kappa")
    return Section("agreement", title, part, intro,
                   figure=Figure(Markup(svg), "Kappa per criterion (rows) and judge pair (columns); n/a: undefined."),
                   tables=tables)


JUDGMENT_DEFAULTS = {"judge": "?", "role": "panel", "sample": 0, "status": None, "score": None, "rationale": None,
                     "error": None}


def _review_view(entry: ReviewRow, line: int) -> dict[str, Any]:
    """What the page shows of one review.jsonl line, with every field the template reads present."""
    return {"anchor": f"review-{line}", "line": line, "entry": entry,
            "messages": [{"role": m.get("role", "?"), "content": m.get("content", "")} for m in entry.messages],
            "judgments": [{**JUDGMENT_DEFAULTS, **j, "evidence": j.get("evidence") or []} for j in entry.judgments]}


def escalation_section(run: ScoreRun, part: str) -> Section:
    summary = run.summary
    assert summary is not None
    title = "Escalation queue"
    intro = ("Panel rows a human should look at (disagreement, undecided, unstable samples, a critical split), with "
             "every judge's score, rationale and evidence; the same entries are in review.jsonl for "
             "`trustmh review export`.")
    if summary.panel is None:
        return Section("escalation", title, part, intro,
                       nothing="Nothing to show: this run had one judge and one sample per item, so there was no "
                               "panel and nothing to escalate.")
    counts = [(label, getattr(summary.panel, key)) for key, label in PANEL_COUNTS]
    count_table = Table("Panel outcomes", ["outcome", "rows"], [[text(label), num(v)] for label, v in counts],
                        name="panel")
    shown = list(zip(run.review.rows, run.review.lines, strict=True))[:MAX_REVIEW_SHOWN]
    views = [_review_view(entry, line) for entry, line in shown]
    queue = Table("Escalated rows (links open the entry below)",
                  ["review.jsonl line", "item", "pillar", "criterion", "target", "panel score", "reasons"],
                  [[text(f"line {v['line']}", link=f"#{v['anchor']}"), text(v["entry"].item_id),
                    text(v["entry"].pillar), text(v["entry"].criterion), text(_target(v["entry"].target)),
                    num(v["entry"].panel.get("score")), cell_list(v["entry"].escalate_reasons)] for v in views],
                  name="review")
    notes = []
    if len(run.review) > MAX_REVIEW_SHOWN:
        notes.append(f"The first {MAX_REVIEW_SHOWN} of {len(run.review)} escalated rows are shown; all are in "
                     f"{run.directory / 'review.jsonl'}.")
    if summary.panel.escalated and not run.review:
        notes.append(f"{run.directory / 'review.jsonl'} is missing: re-create it with `trustmh panel "
                     f"{run.directory}`.")
    svg = figures.horizontal_bars([label for label, _ in counts], [v for _, v in counts], key="escalation",
                                  xlabel="panel rows")
    tables = [count_table, queue] if views else [count_table]
    return Section("escalation", title, part, intro,
                   figure=Figure(Markup(svg),
                                 f"Panel outcomes; {summary.panel.escalated} row(s) escalated for review."),
                   tables=tables, notes=notes, review=views)


def self_preference_section(summary: ScoreSummary, part: str) -> Section:
    title = "Self-preference"
    intro = ("Each judge's mean score (rescaled to 0–1 per criterion when marked so) on targets of its own model "
             "family against other targets: a judge that favours its own family shows a positive difference.")
    rows = summary.self_preference
    table = Table("Self-preference per judge",
                  ["judge", "model", "family", "rescaled 0–1", "n own", "mean own", "n other", "mean other",
                   "difference"],
                  [[text(r.judge), text(r.model), text(r.family), num(r.normalized), num(r.n_own), num(r.mean_own),
                    num(r.n_other), num(r.mean_other), num(r.difference)] for r in rows], name="self_preference")
    if not any(r.mean_own is not None or r.mean_other is not None for r in rows):
        return Section("self-preference", title, part, intro,
                       nothing="Nothing to show: no verdict on a named target succeeded.",
                       tables=[table] if rows else [])
    svg = figures.bar_panels([figures.BarPanel("Mean score by target family", [r.judge for r in rows], [
        figures.BarSeries("own family", [r.mean_own for r in rows]),
        figures.BarSeries("other targets", [r.mean_other for r in rows]),
    ], ylabel="mean score")], key="self-preference", columns=1)
    return Section("self-preference", title, part, intro,
                   figure=Figure(Markup(svg), "Mean score on own-family targets and on other targets, per judge; "
                                              "n/a: the judge saw no such target."),
                   tables=[table])


def items_section(run: ScoreRun, part: str) -> Section:
    """Every judged item, not only the escalated ones, drawn a page at a time by the report's script."""
    title = "Items and verdicts"
    intro = (f"Every judged item with its conversation, the judged response, each judge's verdict (score, rationale "
             f"and the evidence it quoted) and, where there was a panel, its decision; filter by pillar, target, "
             f"judge or verdict. {PAGE_SIZE} items are shown at a time (printing shows the current page); the rows "
             f"are those of {run.directory / 'items.jsonl'}, verdicts.jsonl and panel.jsonl.")
    browser = item_browser(run.directory, "items")
    if browser is None:
        return Section("items", title, part, intro,
                       nothing=f"Nothing to show: {run.directory / 'items.jsonl'} was not found (runs older than "
                               "this file keep only the verdicts; score the items again to browse them).")
    return Section("items", title, part, intro, browser=browser)


def judging_sections(run: ScoreRun, part: str) -> list[Section]:
    """Means, critical failures, agreement, escalation and self-preference of one score run."""
    summary = run.summary
    if summary is None:
        return [Section("means", "Judging", part,
                        nothing=f"Nothing to show: {run.directory / 'summary.json'} was not found; the judging "
                                "figures come from the summary `trustmh score` writes when it finishes.")]
    labels = [label_section(summary, part)] if summary.label_agreement else []  # only runs with labelled items
    return [means_section(summary, run.run, part), critical_section(summary, part), *labels,
            agreement_section(summary, part), escalation_section(run, part), self_preference_section(summary, part)]


def score_sections(run: ScoreRun) -> list[Section]:
    part = "Judging"
    sections = judging_sections(run, part)
    if run.summary is not None:
        stages = [("judges", run.summary)]
        sections += [failures_section(stages, part), cost_section(stages, part)]
    return [*sections, items_section(run, part)]


def score_facts(run: ScoreRun) -> list[tuple[str, str]]:
    summary = run.summary
    if summary is None:
        return []
    facts = [("items", fmt(summary.items)), ("rejected lines", fmt(summary.rejected)),
             ("pillars", ", ".join(summary.pillars) or "—"), ("judges", ", ".join(summary.judges) or "—")]
    facts += [(f"verdicts {k.replace('_', ' ')}", fmt(v)) for k, v in summary.verdicts.items()]
    facts[:0] = not_a_model_facts(summary.not_a_model)
    command = run.run.get("command_line")
    if isinstance(command, list):
        facts.append(("command", " ".join(str(c) for c in command)))
    return facts


def not_a_model_facts(mocks: dict[str, str]) -> list[tuple[str, str]]:
    """The first fact of a page whose run used `mock:` targets or judges: they are not models."""
    return [("NOT A MODEL", f"{', '.join(mocks)}: {next(iter(mocks.values()))}")] if mocks else []
