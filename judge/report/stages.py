"""Sections shared by bench and score reports: failures by reason and tokens / cost, per stage."""

from __future__ import annotations

from markupsafe import Markup

from judge.log import StageSummary
from judge.report import figures
from judge.report.page import Figure, Section, Table, num, text

CALL_COUNTS = ("planned", "requested", "cache_hits", "resumed", "failed")


def failures_section(stages: list[tuple[str, StageSummary]], part: str, extra: list[Table] | None = None) -> Section:
    """Failed calls by reason for each stage (target calls, judge calls), with each stage's call counts."""
    title = "Failures by reason"
    intro = ("Calls that ended without an answer, by the reason recorded in each stage's summary.json. A failed "
             "target call is not judged and counts as a failure in the metrics; a failed judge call gives no score.")
    if not stages:
        return Section("failures", title, part, intro,
                       nothing="Nothing to show: no stage summary (respond/summary.json, score/summary.json) "
                               "was found in this run.", tables=extra or [])
    present = [k for _, s in stages for k in s.calls]  # a count both stages keep is one column, not two
    keys = list(dict.fromkeys([k for k in CALL_COUNTS if k in present] + present))
    calls = Table("Calls per stage", ["stage", *keys],
                  [[text(name), *[num(s.calls.get(k)) for k in keys]] for name, s in stages], name="calls")
    reasons = [(name, reason, count) for name, s in stages for reason, count in s.failures_by_reason.items()]
    table = Table("Failed calls by reason", ["stage", "reason", "calls"],
                  [[text(name), text(reason), num(count)] for name, reason, count in reasons], name="failures")
    tables = [table, calls, *(extra or [])]
    if not reasons:
        return Section("failures", title, part, intro, nothing="Nothing to show: no call failed.", tables=tables)
    svg = figures.horizontal_bars([f"{name}: {reason}" for name, reason, _ in reasons],
                                  [count for _, _, count in reasons], key="failures", xlabel="failed calls")
    return Section("failures", title, part, intro, figure=Figure(Markup(svg), "Failed calls per stage and reason."),
                   tables=tables)


def _uncosted(stages: list[tuple[str, StageSummary]]) -> str:
    """Which calls each cost leaves out, and why: failed with no answer, or answered by a model without a price."""
    notes = []
    for name, s in stages:
        failed, unpriced = s.calls_without_cost.get("failed", 0), s.calls_without_cost.get("unpriced", 0)
        why = []
        if failed:
            why.append(f"{failed} failed call(s) with no known cost")
        if unpriced:
            why.append(f"{unpriced} answered call(s) of a model with no price set")
        if why:
            notes.append(f"{name}: the cost leaves out {' and '.join(why)}")
    if not notes:
        return "A cost is unknown (—) when no call of the stage has a known price."
    return "; ".join(notes) + ". A cost is unknown (—) when no call of the stage has a known price."


def cost_section(stages: list[tuple[str, StageSummary]], part: str) -> Section:
    """Tokens and cost of the calls each stage made in this run (cache hits and resumed calls cost nothing)."""
    title = "Tokens and cost by stage"
    intro = ("Tokens sent and received, and their cost, for the calls made in this run, as recorded in each stage's "
             "summary.json. " + _uncosted(stages))
    rows = [[text(name), num(s.tokens.input if s.tokens else None), num(s.tokens.output if s.tokens else None),
             num(s.cost_usd, 4), num(s.wall_time_s, 1)] for name, s in stages]
    columns = ["stage", "input tokens", "output tokens", "cost (USD)", "wall time (s)"]
    table = Table("Tokens and cost per stage", columns, rows, name="costs")
    recorded = [(name, s) for name, s in stages if s.tokens and (s.tokens.input or s.tokens.output)]
    if not recorded:
        reason = ("no stage summary was found" if not stages else
                  "no tokens were recorded (a recorded run imports answers and makes no calls; a run served "
                  "entirely from the cache sends nothing)")
        return Section("costs", title, part, intro, nothing=f"Nothing to show: {reason}.",
                       tables=[table] if stages else [])
    panels = [figures.BarPanel("Tokens this run", [name for name, _ in recorded], [
        figures.BarSeries("input", [s.tokens.input for _, s in recorded]),  # type: ignore[union-attr]
        figures.BarSeries("output", [s.tokens.output for _, s in recorded]),  # type: ignore[union-attr]
    ], ylabel="tokens")]
    costs = [(name, s.cost_usd) for name, s in stages if s.cost_usd is not None]
    if costs:
        panels.append(figures.BarPanel("Cost this run", [n for n, _ in costs],
                                       [figures.BarSeries("cost (USD)", [c for _, c in costs])], ylabel="USD"))
    svg = figures.bar_panels(panels, key="costs")
    return Section("costs", title, part, intro, figure=Figure(Markup(svg), "Tokens and cost per stage."),
                   tables=[table])
