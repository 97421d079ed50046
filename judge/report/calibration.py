"""Sections of a calibration directory: judge–human agreement with intervals, confusion matrices, gates."""

from __future__ import annotations

import re

from markupsafe import Markup

from judge.log import Calibration, CalibrationRecord, CalibrationRun
from judge.report import figures
from judge.report.page import Figure, Section, Table, fmt, n_cell, num, text

PART = "Calibration"


def _slug(*parts: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")


def _who(record: CalibrationRecord) -> str:
    return record.judge if record.judge is not None else "humans"


def _record_row(r: CalibrationRecord, with_against: bool) -> list:
    cells = [text(_who(r))]
    if with_against:
        cells.append(text(r.against))
    return [*cells, text(r.metric), num(r.value), num(r.ci_low), num(r.ci_high), n_cell(r.n, r.small_n),
            text(r.reason)]


def agreement_section(records: list[CalibrationRecord], criterion: str, level: str) -> Section:
    title = f"Agreement: {criterion} ({level} level)"
    intro = ("Agreement of each judge with the human raters, and of the humans among themselves, with bootstrap "
             "intervals over items (blank where none was computed).")
    headline = [r for r in records if r.against is None]
    per_human = [r for r in records if r.against is not None]
    tables = [Table("Metrics against the human mean or consensus (judge “humans”: among the humans)",
                    ["judge", "metric", "value", "ci low", "ci high", "n", "why null"],
                    [_record_row(r, with_against=False) for r in headline], name="calibration")]
    if per_human:
        tables.append(Table("Metrics against each human", ["judge", "against", "metric", "value", "ci low", "ci high",
                                                           "n", "why null"],
                            [_record_row(r, with_against=True) for r in per_human], name="calibration_per_human",
                            folded=True))
    metrics = list(dict.fromkeys(r.metric for r in headline))
    drawn = [m for m in metrics if any(r.value is not None for r in headline if r.metric == m)]
    section_id = _slug("calibration", criterion, level)
    if not drawn:
        return Section(section_id, title, PART, intro,
                       nothing="Nothing to show: no metric could be computed (see “why null” in the table).",
                       tables=tables)
    panels = []
    for metric in drawn:
        members = [r for r in headline if r.metric == metric]
        panels.append(figures.IntervalPanel(metric, [_who(r) for r in members], [r.value for r in members],
                                            [r.ci_low for r in members], [r.ci_high for r in members]))
    skipped = [m for m in metrics if m not in drawn]
    notes = [f"Not drawn, every value null: {', '.join(skipped)} (reasons in the table)."] if skipped else []
    svg = figures.interval_panels(panels, key=section_id)
    return Section(section_id, title, PART, intro,
                   figure=Figure(Markup(svg), f"{criterion}: each metric per judge with its interval."),
                   tables=tables, notes=notes)


def confusion_section(calibration: Calibration, criterion: str, level: str) -> Section | None:
    matrices = [c for c in calibration.confusion_matrices if (c.criterion, c.level) == (criterion, level)]
    if not matrices:
        return None
    title = f"Confusion: {criterion} ({level} level)"
    intro = "Counts of items per judge score (rows) and human score (columns)."
    tables = [Table(f"{m.judge} (rows) vs {m.against or 'human'} (columns)",
                    ["judge \\ human", *[label or "(empty)" for label in m.labels]],
                    [[text(label or "(empty)"), *[num(v) for v in row]] for label, row in zip(m.labels, m.matrix,
                                                                                           strict=True)],
                    name="confusion") for m in matrices]
    section_id = _slug("confusion", criterion, level)
    svg = figures.confusion_grid([figures.Matrix(f"{m.judge} vs {m.against or 'human'}", m.labels, m.matrix,
                                                 col_title=m.against or "human") for m in matrices], key=section_id)
    return Section(section_id, title, PART, intro, figure=Figure(Markup(svg), f"{criterion}: judge vs human counts."),
                   tables=tables)


def gate_section(calibration: Calibration) -> Section:
    title = "Gate"
    intro = "The --gate conditions of the calibration run: every criterion × judge must meet each one."
    if not calibration.gates:
        why = ("this calibration.json records no gate (it predates gate recording)" if calibration.gates is None
               else "the run set no gate")
        return Section("gate", title, PART, intro,
                       nothing=f"Nothing to show: {why}; `trustmh calibrate … --gate 'qwk>=0.6'` records one.")
    checks = [(g, c) for g in calibration.gates for c in g.checks]
    table = Table("Gate checks", ["gate", "criterion", "judge", "level", "value", "passed", "why null"],
                  [[text(g.gate), text(c.criterion), text(c.judge or "humans"), text(c.level), num(c.value),
                    num(c.passed), text(c.reason)] for g, c in checks], name="gate")
    overall = Table("Gates", ["gate", "passed"], [[text(g.gate), num(g.passed)] for g in calibration.gates],
                    name="gates")
    panels = [figures.IntervalPanel(f"{g.gate}: {'passed' if g.passed else 'FAILED'}",
                                    [f"{c.criterion} · {c.judge or 'humans'} ({c.level})" for c in g.checks],
                                    [c.value for c in g.checks], reference=float(g.threshold),
                                    passed=[c.passed for c in g.checks]) for g in calibration.gates]
    svg = figures.interval_panels(panels, key="gate", columns=1)
    passed = all(g.passed for g in calibration.gates)
    return Section("gate", title, PART, intro,
                   figure=Figure(Markup(svg), "Value per criterion × judge against each gate's threshold (dashed); "
                                              "red: fails."),
                   tables=[overall, table], notes=[f"Overall: {'passed' if passed else 'failed'}."])


def calibration_sections(run: CalibrationRun) -> list[Section]:
    calibration = run.calibration
    keys = list(dict.fromkeys((r.criterion, r.level) for r in calibration.results))
    if not keys:
        return [Section("calibration", "Agreement", PART,
                        nothing="Nothing to show: calibration.json holds no result."), gate_section(calibration)]
    sections: list[Section] = []
    for criterion, level in keys:
        records = [r for r in calibration.results if (r.criterion, r.level) == (criterion, level)]
        sections.append(agreement_section(records, criterion, level))
        confusion = confusion_section(calibration, criterion, level)
        if confusion is not None:
            sections.append(confusion)
    sections.append(gate_section(calibration))
    return sections


def calibration_facts(run: CalibrationRun) -> list[tuple[str, str]]:
    return [(str(k), fmt(v) if not isinstance(v, str) else v) for k, v in run.calibration.meta.items()]
