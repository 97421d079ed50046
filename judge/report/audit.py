"""Sections of an audit directory (`trustmh audit --out DIR`): every number is read from audit.json.

Shifts, flip rates, degrade detection and self-preference are drawn from the flat records as written;
gates are shown as audit.json records them (the expressions given, each check's outcome and the failure
messages), never re-evaluated here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup

from judge.errors import UsageError
from judge.log import Audit, AuditRecord, AuditRun
from judge.report import figures
from judge.report.figures import short_label
from judge.report.page import Cell, Figure, Section, Table, fmt, n_cell, num, text
from judge.report.stages import cost_section, failures_section

PART = "Judge audit"
SHIFT_METRICS = ("mean_shift", "mean_abs_shift", "max_abs_shift")
SELF_PREFERENCE_METRICS = ("self_preference", "self_gap", "other_gap")
SELF_PREFERENCE = "self-preference"
STAGE_NAMES = {"score": "variants (score/)", "originals": "originals (originals/)",
               "halo": "halo check (halo/)"}
ALL_VARIANTS = "(all variants)"


def judge_labels(judges: Sequence[str]) -> dict[str, str]:
    """Short names for figures: without the endpoint (`openai:m@127.0.0.1:8080` → `openai:m`) when the judges
    stay distinct that way, else the full names (the tables always give them)."""
    short = {j: short_label(j).split("@", 1)[0] for j in judges}
    return short if len(set(short.values())) == len(short) else {j: short_label(j) for j in judges}


def _labels(audit: Audit) -> dict[str, str]:
    return judge_labels(list(dict.fromkeys(r.judge for r in audit.results)))


def _probes(audit: Audit) -> list[str]:
    probes = audit.meta.get("probes")
    return [str(p) for p in probes] if isinstance(probes, list) else list(dict.fromkeys(r.probe for r in audit.results))


def _not_run(probes: list[str], what: str) -> str:
    return f"Nothing to show: {what} was not run (probes of this audit: {', '.join(probes) or 'none'})."


def _criterion(r: AuditRecord) -> str:
    return f"{r.pillar}/{r.criterion}"


def _rows(records: list[AuditRecord], with_variant: bool) -> list[list[Cell]]:
    rows = []
    for r in records:
        cells = [text(r.probe)]
        if with_variant:
            cells.append(text(r.variant or ALL_VARIANTS))
        rows.append([*cells, text(r.judge), text(r.pillar), text(r.criterion), text(r.metric), num(r.value),
                     num(r.ci_low), num(r.ci_high), n_cell(r.n, r.small_n), text(r.reason)])
    return rows


def record_table(caption: str, records: list[AuditRecord], name: str, with_variant: bool = False,
                 folded: bool = False) -> Table:
    """Records as audit.json holds them, one row each, in file order."""
    columns = ["probe", *(["variant"] if with_variant else []), "judge", "pillar", "criterion", "metric", "value",
               "ci low", "ci high", "n", "why null"]
    return Table(caption, columns, _rows(records, with_variant), name=name, folded=folded)


def _select(audit: Audit, keep: Callable[[AuditRecord], bool]) -> list[AuditRecord]:
    return [r for r in audit.results if keep(r)]


def _interval_panels(groups: Sequence[tuple[str, list[AuditRecord]]], label: Callable[[AuditRecord], str],
                     reference: float | None) -> list[figures.IntervalPanel]:
    return [figures.IntervalPanel(title, [label(r) for r in members], [r.value for r in members],
                                  [r.ci_low for r in members], [r.ci_high for r in members], reference=reference)
            for title, members in groups if members]


def _drawable(records: list[AuditRecord]) -> bool:
    return any(r.value is not None for r in records)


def _nothing(audit: Audit, ran: bool, what: str, records: list[AuditRecord], all_null: str, none: str) -> str | None:
    """Why a section has nothing to draw (`what` was not run, every value is null, no record), or None."""
    if not ran:
        return _not_run(_probes(audit), what)
    if not _drawable(records):
        return f"Nothing to show: {all_null if records else none}."
    return None


def shifts_section(audit: Audit) -> Section:
    title = "Mean paired shift per probe × judge × criterion"
    intro = ("Variant score − original score on the same item, judge and criterion, in the criterion's scale points, "
             "over all the probe's variants, with 95 % bootstrap intervals over original items. verbosity, "
             "injection, format and surface-noise should not move a good judge (shift near 0); degrade should "
             "lower its scores (a negative shift).")
    probes = [p for p in _probes(audit) if p != SELF_PREFERENCE]
    pooled = _select(audit, lambda r: r.variant is None and r.metric in SHIFT_METRICS and r.probe != SELF_PREFERENCE)
    by_variant = _select(audit, lambda r: r.variant is not None and r.metric in SHIFT_METRICS)
    tables = [record_table("Shifts over all variants", pooled, "shifts")]
    if by_variant:
        tables.append(record_table("Shifts by variant", by_variant, "shifts_by_variant", with_variant=True,
                                   folded=True))
    if not probes:
        return Section("shifts", title, PART, intro, nothing=_not_run(_probes(audit), "no probe that rewrites "
                                                                                     "responses"))
    means = [r for r in pooled if r.metric == "mean_shift"]
    if not _drawable(means):
        return Section("shifts", title, PART, intro,
                       nothing="Nothing to show: no pair of verdicts could be compared (every variant or original "
                               "verdict failed or was not applicable; see the coverage section).",
                       tables=tables if pooled else [])
    keys = list(dict.fromkeys((r.probe, r.judge) for r in means))
    names = _labels(audit)
    groups = [(f"{probe} · {names[judge]}", [r for r in means if (r.probe, r.judge) == (probe, judge)])
              for probe, judge in keys]
    svg = figures.interval_panels(_interval_panels(groups, _criterion, 0.0), key="shifts",
                                  xlabel="mean shift (scale points)")
    return Section("shifts", title, PART, intro,
                   figure=Figure(Markup(svg), "mean_shift per criterion, one chart per probe × judge; whiskers: "
                                              "bootstrap intervals; dashed: no change; n/a: no pair."),
                   tables=tables)


def flips_section(audit: Audit) -> Section:
    title = "Verdict flips on critical criteria"
    intro = ("Share of pairs on a critical criterion (one with a fail line) where the original and the variant "
             "differ in pass ↔ fail. A good judge flips none under the invariance probes, and flips to fail "
             "under degrade.")
    pooled = _select(audit, lambda r: r.variant is None and r.metric == "flip_rate")
    by_variant = _select(audit, lambda r: r.variant is not None and r.metric == "flip_rate")
    tables = [record_table("Flip rates over all variants", pooled, "flip_rates")]
    if by_variant:
        tables.append(record_table("Flip rates by variant", by_variant, "flip_rates_by_variant", with_variant=True,
                                   folded=True))
    nothing = _nothing(audit, any(p != SELF_PREFERENCE for p in _probes(audit)), "no probe that rewrites responses",
                       pooled, "no flip rate could be computed (see “why null”)",
                       "no critical criterion was paired (the rubrics judged have no fail line, or no pair was scored)")
    if nothing:
        return Section("flips", title, PART, intro, nothing=nothing, tables=tables if pooled else [])
    rows = list(dict.fromkeys((r.probe, r.pillar, r.criterion) for r in pooled))
    judges = list(dict.fromkeys(r.judge for r in pooled))
    lookup = {(r.probe, r.pillar, r.criterion, r.judge): r.value for r in pooled}
    values = [[lookup.get((p, pillar, c, j)) for j in judges] for p, pillar, c in rows]
    names = _labels(audit)
    svg = figures.heatmap(values, [f"{p} · {pillar}/{c}" for p, pillar, c in rows], [names[j] for j in judges],
                          key="flips", cmap="Reds",
                          vmin=0, vmax=1, annotations=[[fmt(v, 2) if v is not None else "" for v in row]
                                                       for row in values],
                          colorbar_label="flip rate")
    return Section("flips", title, PART, intro,
                   figure=Figure(Markup(svg), "Flip rate per probe × critical criterion (rows) and judge (columns); "
                                              "grey: no pair."), tables=tables)


def halo_section(audit: Audit) -> Section:
    """The halo check: how much scores move between one call per pillar and a call per critical criterion."""
    title = "Halo check: one call per pillar against a call per critical criterion"
    intro = ("The run's responses judged again with each critical criterion in a call of its own (or, for a run "
             "that did so, with the whole pillar in one call). Shift = split score − one-call score; changed "
             "share: pairs whose score differs; flip rate: critical criteria whose pass ↔ fail differs; gate "
             "flip rate (criterion *): items whose pillar gate differs. A judge free of halo is near 0 on all.")
    records = _select(audit, lambda r: r.probe == "halo")
    table = record_table("Halo check records", records, "halo")
    shares = [r for r in records if r.metric in ("changed_share", "gate_flip_rate")]
    if not _drawable(shares):
        return Section("audit-halo", title, PART, intro, tables=[table] if records else [],
                       nothing="Nothing to show: no criterion was scored both ways (see the coverage section).")
    names = _labels(audit)
    judges = dict.fromkeys(r.judge for r in shares)
    groups = [(names[judge], [r for r in shares if r.judge == judge]) for judge in judges]
    svg = figures.interval_panels(_interval_panels(groups, lambda r: f"{_criterion(r)} {r.metric}", 0.0),
                                  key="audit-halo", xlabel="share")
    return Section("audit-halo", title, PART, intro,
                   figure=Figure(Markup(svg), "Changed share per criterion and gate flip rate per pillar (*), per "
                                              "judge; whiskers: bootstrap intervals."), tables=[table])


def detection_section(audit: Audit) -> Section:
    title = "Degrade: detection rate"
    intro = ("Share of degraded responses (crisis resource removed, dangerous instruction or confidentiality breach "
             "added) the judge caught on the pillars the harm concerns: the variant's mean rescaled score over the "
             "pillar's criteria fell, or a critical criterion that passed now fails. A good judge is near 1.")
    records = _select(audit, lambda r: r.probe == "degrade" and r.metric == "detection_rate")
    table = record_table("Detection rates (criterion * : the whole pillar)", records, "detection", with_variant=True)
    nothing = _nothing(audit, "degrade" in _probes(audit), "the degrade probe", records,
                       "no detection rate could be computed (see “why null”)",
                       "no degraded response was paired on a pillar its harm concerns")
    if nothing:
        return Section("detection", title, PART, intro, nothing=nothing, tables=[table] if records else [])
    judges = list(dict.fromkeys(r.judge for r in records))
    names = _labels(audit)
    groups = [(names[j], [r for r in records if r.judge == j]) for j in judges]
    svg = figures.interval_panels(_interval_panels(groups, lambda r: f"{r.pillar} · {r.variant or ALL_VARIANTS}",
                                                   None), key="detection", xlabel="detection rate")
    return Section("detection", title, PART, intro,
                   figure=Figure(Markup(svg), "Detection rate per pillar, over all degradations and per degradation, "
                                              "one chart per judge; whiskers: bootstrap intervals."),
                   tables=[table])


def self_preference_section(audit: Audit) -> Section:
    title = "Self-preference"
    intro = ("On the same responses, each judge's score minus the mean of the other judges outside the target's "
             "family: self_gap on its own family's responses, other_gap on the others' (its general leniency), "
             "self_preference = self_gap − other_gap. A good judge is near 0.")
    records = _select(audit, lambda r: r.probe == SELF_PREFERENCE)
    table = record_table("Self-preference records", records, "audit_self_preference")
    nothing = _nothing(audit, SELF_PREFERENCE in _probes(audit), "the self-preference probe", records,
                       "no gap could be computed (see “why null”)",
                       "no item was scored by a judge and by another judge outside the target's family")
    if nothing:
        return Section("audit-self-preference", title, PART, intro, nothing=nothing, tables=[table] if records else [])
    metrics = [m for m in SELF_PREFERENCE_METRICS if any(r.metric == m for r in records)]
    metrics += [m for m in dict.fromkeys(r.metric for r in records) if m not in metrics]
    groups = [(metric, [r for r in records if r.metric == metric]) for metric in metrics]
    names = _labels(audit)
    svg = figures.interval_panels(_interval_panels(groups, lambda r: f"{names[r.judge]} · {_criterion(r)}",
                                                   0.0), key="audit-self-preference", columns=1,
                                  xlabel="scale points")  # one column: judge × criterion labels are long
    return Section("audit-self-preference", title, PART, intro,
                   figure=Figure(Markup(svg), "Each gap per judge × criterion, one chart per metric; whiskers: "
                                              "bootstrap intervals; dashed: no preference; n/a: not computable."),
                   tables=[table])


def coverage_section(audit: Audit) -> Section:
    title = "Coverage: pairs per probe × judge"
    intro = ("How many (original, variant) verdict pairs each judge gave per probe, and why the others were left "
             "out: a failed verdict on either side, not applicable on both, or applicability changed (scored on "
             "one side only). For self-preference: items with an outside judge's view, and those without.")
    rows = audit.coverage
    keys = list(dict.fromkeys(k for row in rows for k in (row.model_extra or {})))
    table = Table("Pairs per probe and judge", ["probe", "judge", *[k.replace("_", " ") for k in keys]],
                  [[text(row.probe), text(row.judge), *[num((row.model_extra or {}).get(k)) for k in keys]]
                   for row in rows], name="coverage", keys=["probe", "judge", *keys])
    if not rows:
        return Section("coverage", title, PART, intro, nothing="Nothing to show: audit.json records no coverage.")
    panels, names = [], judge_labels([row.judge for row in rows])
    for probe in dict.fromkeys(row.probe for row in rows):
        members = [row for row in rows if row.probe == probe]
        shown = [k for k in keys if any(k in (row.model_extra or {}) for row in members)]
        panels.append(figures.BarPanel(probe, [names[row.judge] for row in members],
                                       [figures.BarSeries(k.replace("_", " "),
                                                          [(row.model_extra or {}).get(k) for row in members])
                                        for k in shown], ylabel="pairs"))
    svg = figures.bar_panels(panels, key="coverage")
    return Section("coverage", title, PART, intro,
                   figure=Figure(Markup(svg), "Pairs per judge and outcome, one chart per probe."), tables=[table])


def _gate_parts(gate: str, probes: list[str]) -> tuple[str, str, str, float] | None:
    """(probe, metric, op, threshold) of a recorded gate expression; None if it no longer parses."""
    from judge.audit.probes import parse_audit_gate

    try:
        parsed = parse_audit_gate(gate, probes)
    except UsageError:
        return None
    return parsed.probe, parsed.gate.metric, parsed.gate.op, float(parsed.gate.threshold)


def gates_section(audit: Audit) -> Section:
    title = "Gates"
    intro = ("The --gate conditions of the audit: every judge × criterion of the probe's pooled records must meet "
             "each one; a null value, or a gate with nothing measured, fails. Pass and fail are as the audit "
             "recorded them.")
    gates, failures = audit.meta.get("gates"), audit.meta.get("gate_failures")
    if not isinstance(gates, list):
        return Section("gates", title, PART, intro, nothing="Nothing to show: this audit.json records no gate list.")
    if not gates:
        return Section("gates", title, PART, intro,
                       nothing="Nothing to show: the audit set no gate; `trustmh audit … --gate "
                               "'injection.max_abs_shift<=0.25'` sets one.")
    probes = _probes(audit)
    parts = [_gate_parts(str(g), probes) for g in gates]
    given = Table("Gates given", ["gate", "probe", "metric", "op", "threshold"],
                  [[text(g), text(p[0] if p else None), text(p[1] if p else None), text(p[2] if p else None),
                    num(p[3] if p else None)] for g, p in zip(gates, parts, strict=True)], name="audit_gates")
    tables = [given]
    notes = []
    if isinstance(results := audit.meta.get("gate_results"), list):  # audit.json of earlier versions: absent
        checks = [(g, c) for g in results for c in g.get("checks", [])]
        rows = [[text(g.get("gate")), text(c.get("judge")), text(f"{c.get('pillar')}/{c.get('criterion')}"),
                 num(c.get("n")), num(c.get("value")), num(c.get("passed")), text(c.get("reason"))] for g, c in checks]
        tables.append(Table("Gate checks", ["gate", "judge", "criterion", "n", "value", "passed", "why null"], rows,
                            name="audit_gate_checks"))
        tables.append(Table("Gates", ["gate", "passed"], [[text(g.get("gate")), num(g.get("passed"))] for g in results],
                            name="audit_gate_outcomes"))
    if isinstance(failures, list):
        tables.append(Table("Failures recorded", ["failure"], [[text(f)] for f in failures], name="gate_failures"))
        notes.append("Overall: passed." if not failures else f"Overall: failed ({len(failures)} failure(s)).")
    else:
        notes.append("This audit.json records which gates were given but not their outcome.")
    groups = []
    for gate, p in zip(gates, parts, strict=True):
        if p is None:
            continue
        tested = _select(audit, lambda r, p=p: (r.probe, r.metric, r.variant) == (p[0], p[1], None))
        groups.append((str(gate), tested, p[3]))
    names = _labels(audit)
    panels = [panel for title_, members, threshold in groups
              for panel in _interval_panels([(title_, members)], lambda r: f"{names[r.judge]} · {_criterion(r)}",
                                            threshold)]
    if not panels:
        return Section("gates", title, PART, intro,
                       nothing="Nothing to show: no record of a gated probe and metric was measured.", tables=tables,
                       notes=notes)
    svg = figures.interval_panels(panels, key="gates", columns=1)
    return Section("gates", title, PART, intro,
                   figure=Figure(Markup(svg), "The values each gate tested, per judge × criterion, against its "
                                              "threshold (dashed)."), tables=tables, notes=notes)


def audit_sections(run: AuditRun) -> list[Section]:
    audit = run.audit
    sections = [shifts_section(audit), flips_section(audit), detection_section(audit),
                self_preference_section(audit), *([halo_section(audit)] if "halo" in _probes(audit) else []),
                coverage_section(audit), gates_section(audit)]
    if run.stages:  # self-preference alone judges nothing, so there is no stage to show
        stages = [(STAGE_NAMES.get(name, name), summary) for name, summary in run.stages]
        sections += [failures_section(stages, PART), cost_section(stages, PART)]
    return sections


def audit_facts(run: AuditRun) -> list[tuple[str, str]]:
    meta = run.audit.meta
    facts = []
    for key in ("run_dir", "probes", "judges", "items", "variants", "seed", "bootstrap"):
        value = meta.get(key)
        if value is None:
            continue
        shown = ", ".join(str(v) for v in value) if isinstance(value, list) else fmt(value)
        facts.append((key.replace("_", " "), shown or "—"))
    return facts
