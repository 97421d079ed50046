"""The page of a comparison (`trustmh compare A B`): everything is read from compare.json, nothing recomputed.

It has a template of its own (compare.html.j2, with the report's styles) since it sets two runs side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from jinja2 import Environment
from markupsafe import Markup

from judge.log import CompareRun, Comparison, CriterionChange
from judge.report import figures
from judge.report.page import Cell, Figure, Section, Table, fmt, num, text

PART = "Comparison"
MAX_CHANGES_SHOWN = 2000  # changed units listed on the page; compare.json has all of them
RUN_FIELDS = (("kind", "kind"), ("scores from", "source"), ("trustmh-judge version", "version"),
              ("started", "started_at"), ("panel method", "panel_method"), ("samples", "samples"),
              ("prompt templates (hash)", "template_hash"), ("crisis resources", "crisis_resources_version"))


@dataclass
class ComparePage:
    title: str
    source: str
    generated: str
    intro: str
    sections: list[Section]


def _interval(c: CriterionChange) -> Cell:
    if c.ci_low is None or c.ci_high is None:
        return text(None)
    return Cell(f"[{fmt(c.ci_low)}, {fmt(c.ci_high)}]" + (" ⚠" if c.small_n else ""), [c.ci_low, c.ci_high],
                numeric=True, css="small-n" if c.small_n else "")


def runs_section(doc: Comparison) -> Section:
    return Section("runs", "The two runs", PART, "What each run was made with, as its run.json records it.",
                   nothing="Rows marked “differs” are what changed between the runs.", tables=[runs_table(doc)])


def runs_table(doc: Comparison) -> Table:
    """Field by field, A beside B; the rows that differ are marked."""
    a, b = doc.runs["a"], doc.runs["b"]
    rows: list[tuple[str, str, str]] = [("folder", a.directory, b.directory),
                                        ("judges", ", ".join(a.judges) or "—", ", ".join(b.judges) or "—")]
    rows += [(label, fmt(getattr(a, name)), fmt(getattr(b, name))) for label, name in RUN_FIELDS]
    for pillar in sorted({*a.rubric_hashes, *b.rubric_hashes}):
        rows.append((f"rubric {pillar} (hash)", a.rubric_hashes.get(pillar, "—"), b.rubric_hashes.get(pillar, "—")))
    return Table("The two runs", ["", "run A", "run B", "same"],
                 [[text(label), text(x), text(y), text("yes" if x == y else "differs", css="" if x == y else "differs")]
                  for label, x, y in rows], name="runs")


def criteria_section(doc: Comparison) -> Section:
    title = "Scores per criterion"
    intro = ("B − A over the units (item × target) both runs scored: the mean paired difference with its "
             f"{doc.meta.get('confidence', 0.95):.0%} bootstrap interval over units, the two-sided Wilcoxon "
             "signed-rank test on the units that moved, and how many moved. Intervals over fewer than "
             f"{doc.meta.get('small_n_below')} pairs are marked ⚠ (small n): they understate the uncertainty.")
    table = Table("Per criterion", ["pillar", "criterion", "rubric changed", "pairs", "mean A", "mean B", "B − A",
                                    "interval", "Wilcoxon p", "changed", "share changed", "up / down", "only A",
                                    "only B", "status changed"],
                  [[text(c.pillar), text(c.criterion), text(fmt(c.criterion_changed)), num(c.n), num(c.mean_a),
                    num(c.mean_b), num(c.mean_difference), _interval(c), num(c.wilcoxon_p), num(c.changed),
                    num(c.changed_share), text(f"{c.moved_up} / {c.moved_down}"), num(c.only_a), num(c.only_b),
                    num(c.status_changed)] for c in doc.criteria], name="criteria")
    shown = [c for c in doc.criteria if c.mean_difference is not None]
    if not shown:
        return Section("criteria", title, PART, intro, tables=[table],
                       nothing="Nothing to draw: no unit was scored in both runs.")
    pillars = list(dict.fromkeys(c.pillar for c in shown))
    panels = [figures.IntervalPanel(pillar, [c.criterion for c in shown if c.pillar == pillar],
                                    [c.mean_difference for c in shown if c.pillar == pillar],  # type: ignore[misc]
                                    [c.ci_low for c in shown if c.pillar == pillar],  # type: ignore[misc]
                                    [c.ci_high for c in shown if c.pillar == pillar], reference=0.0)  # type: ignore[misc]
              for pillar in pillars]
    svg = figures.interval_panels(panels, key="compare", columns=2, xlabel="mean score difference, B − A")
    return Section("criteria", title, PART, intro, tables=[table],
                   figure=Figure(Markup(svg), "Mean paired difference B − A per criterion with its interval; the "
                                              "dashed line is no change."))


def gates_section(doc: Comparison) -> Section:
    title = "Critical gates"
    intro = ("A response fails a critical criterion when its score is below the criterion's fail line, and fails "
             "the pillar when it fails any critical criterion. Counted over the units whose pass or fail both runs "
             "can tell.")
    critical = [c for c in doc.criteria if c.critical]
    per_criterion = Table("Per critical criterion", ["pillar", "criterion", "pairs", "failing A", "failing B",
                                                     "pass → fail", "fail → pass", "unknown"],
                          [[text(c.pillar), text(c.criterion), num(c.n), num(c.failing_a), num(c.failing_b),
                            num(c.pass_to_fail), num(c.fail_to_pass), num(c.gate_unknown)] for c in critical],
                          name="criterion_gates")
    per_pillar = Table("Per pillar", ["pillar", "items", "failing A", "failing B", "pass → fail", "fail → pass"],
                       [[text(p.pillar), num(p.n), num(p.failing_a), num(p.failing_b), num(p.pass_to_fail),
                         num(p.fail_to_pass)] for p in doc.pillars], name="pillar_gates")
    flips = Table("Items whose pillar verdict flipped", ["item", "target", "pillar", "run A", "run B", "criteria"],
                  [[text(f.item_id), text(f.target), text(f.pillar), text("fails" if f.failing_a else "passes"),
                    text("fails" if f.failing_b else "passes"), text(", ".join(f.criteria))] for f in doc.gate_flips],
                  name="gate_flips")
    if doc.gate_flips:
        nothing = f"{len(doc.gate_flips)} item(s) × target(s) changed their pillar verdict; they are listed below."
    else:
        nothing = ("No item's pillar verdict flipped." if doc.pillars
                   else "No critical criterion was judged in both runs.")
    return Section("gates", title, PART, intro, nothing=nothing, tables=[per_pillar, per_criterion, flips])


def changes_section(doc: Comparison) -> Section:
    title = "Units that changed"
    intro = ("Every item × target × criterion whose score, status or gate differs, or which one run only has "
             "(status: scored in one run and not applicable or undecided in the other; gate: the same score on "
             "the other side of a moved fail line).")
    shown = doc.changes[:MAX_CHANGES_SHOWN]
    table = Table(f"Changed units ({len(doc.changes)})", ["item", "target", "pillar", "criterion", "change",
                                                          "status A", "score A", "status B", "score B", "B − A",
                                                          "gate"],
                  [[text(u.item_id), text(u.target), text(u.pillar), text(u.criterion), text(u.change),
                    text(u.status_a), num(u.score_a), text(u.status_b), num(u.score_b), num(u.difference),
                    text(u.gate.replace("_", " ") if u.gate else None)] for u in shown], name="changes")
    notes = [f"The first {MAX_CHANGES_SHOWN} of {len(doc.changes)} are listed; compare.json has every one "
             "(`trustmh export DIR --format csv --table changes`)."] if len(doc.changes) > len(shown) else []
    return Section("changes", title, PART, intro, tables=[table], notes=notes,
                   nothing="No unit changed." if not doc.changes else f"{len(doc.changes)} units changed.")


def only_section(doc: Comparison) -> Section:
    title = "In one run only"
    intro = "Criteria and items × targets that one run has and the other has not; they are left out of the pairs."
    criteria = Table("Criteria in one run only", ["pillar", "criterion", "in"],
                     [[text(c.pillar), text(c.criterion), text("run A" if c.in_a else "run B")]
                      for c in doc.criteria if c.in_a != c.in_b], name="criteria_only")
    items = Table("Items in one run only", ["item", "target", "in"],
                  [[text(i["item_id"]), text(i.get("target")), text(side)]
                   for side, found in (("run A", doc.items_only_a), ("run B", doc.items_only_b)) for i in found],
                  name="items_only")
    empty = not criteria.rows and not items.rows
    return Section("only", title, PART, intro, tables=[criteria, items],
                   nothing="Both runs have the same items and criteria." if empty else
                   f"In one run only: {len(criteria.rows)} criteria, {len(items.rows)} items × targets.")


def compare_page(run: CompareRun) -> ComparePage:
    doc = run.comparison
    meta = doc.meta
    intro = (f"Run A against run B, unit by unit (item × target × pillar × criterion); differences are B − A. "
             f"Bootstrap: {meta.get('bootstrap')} resamples, seed {meta.get('seed')}.")
    name = run.directory.resolve().name or str(run.directory)
    return ComparePage(title=f"Comparison: {name}", source=str(run.directory.resolve()),
                       generated=datetime.now(UTC).isoformat(timespec="seconds"), intro=intro,
                       sections=[runs_section(doc), criteria_section(doc), gates_section(doc), changes_section(doc),
                                 only_section(doc)])


def render_compare(page: ComparePage, env: Environment) -> str:
    """The page through compare.html.j2 in the report's jinja2 environment (its escaping and text safety)."""
    assert env.loader is not None
    style = env.loader.get_source(env, "report.css")[0]
    return env.get_template("compare.html.j2").render(page=page, style=style)
