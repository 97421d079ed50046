"""Paired effects of the probes on each judge: pure computation over verdict rows, no I/O.

Definitions (also in docs/audit.md):
- a judge's score for an item × pillar × criterion is the mean of its `ok` panel samples;
- a pair is (original, variant) judged by the same judge on the same criterion, both with a score;
  pairs where either side failed or was not applicable are not scored and are counted in `coverage`;
- shift = variant score − original score, in the criterion's own scale points;
- a critical criterion (one with `fail_below`) passes when its score is at or above `fail_below`; a flip
  is a pair on which pass and fail differ;
- `degrade` detection is judged per item × pillar on the pillars the degradation concerns: detected
  when the variant's mean score over the pillar's criteria (each rescaled to 0–1) is lower than the
  original's, or a critical criterion that passed fails;
- intervals: percentile bootstrap over original items (all variants of an item stay together),
  seeded by (seed, probe, judge, pillar, criterion) as calibration does.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from judge.audit.probes import DEGRADE_TARGETS, PROBES
from judge.rubric import Criterion, Rubric
from judge.stats.bootstrap import is_small_n, percentile_interval, resample_indices

ALL_CRITERIA = "*"  # criterion of records about a whole pillar (degrade detection)


@dataclass(frozen=True)
class Cell:
    """One judge's verdict on one item × pillar × criterion, its samples reduced."""

    status: str  # ok | not_applicable | failed
    score: float | None
    target: str | None = None
    self_family: bool = False


CellKey = tuple[str, str, str, str]  # item id, pillar, criterion, judge


@dataclass(frozen=True)
class VariantRef:
    id: str
    original_id: str
    probe: str
    variant: str


@dataclass
class Record:
    probe: str
    variant: str | None  # None: all the probe's variants together
    judge: str
    pillar: str
    criterion: str
    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.value is not None:
            del out["reason"]
            if self.ci_low is not None and is_small_n(self.n):
                out["small_n"] = True  # the interval rests on fewer than SMALL_N pairs
        return out


@dataclass
class Effects:
    records: list[Record] = field(default_factory=list)
    coverage: list[dict[str, Any]] = field(default_factory=list)


def cells_from_verdicts(rows: Iterable[Mapping[str, Any]]) -> dict[CellKey, Cell]:
    """Panel verdicts reduced per judge: the mean of ok samples; else n/a if any sample said so; else failed.

    A line repeated for the same sample counts once (the last wins), as in the panel.
    """
    latest: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for row in rows:
        if row.get("role", "panel") == "panel":
            latest[(row["item_id"], row["pillar"], row["criterion"], row["judge"], row.get("sample", 0))] = row
    grouped: dict[CellKey, list[Mapping[str, Any]]] = defaultdict(list)
    for (item_id, pillar, criterion, judge, _), row in latest.items():
        grouped[(item_id, pillar, criterion, judge)].append(row)
    cells = {}
    for key, samples in grouped.items():
        scores = [float(s["score"]) for s in samples if s["status"] == "ok" and s.get("score") is not None]
        if scores:
            status = "ok"
        elif any(s["status"] == "not_applicable" for s in samples):
            status = "not_applicable"
        else:
            status = "failed"
        first = samples[0]
        cells[key] = Cell(
            status, statistics.fmean(scores) if scores else None, first.get("target"), bool(first.get("self_family"))
        )
    return cells


# ------------------------------------------------------------------------------------------ bootstrap


def resample_weights(n_items: int, n_resamples: int, seed: int, key: str) -> np.ndarray:
    """How many times each item is drawn in each resample (n_resamples × n_items), from calibration's
    resamples: a weighted sum over items is then one matrix product for all resamples at once."""
    indices = resample_indices(n_items, n_resamples, seed, key)
    flat = (np.arange(n_resamples)[:, None] * n_items + indices).ravel()
    return np.bincount(flat, minlength=n_resamples * n_items).reshape(n_resamples, n_items).astype(float)


def _ratio(num: np.ndarray, den: np.ndarray, weights: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """Σnum/Σden over items, and its bootstrap interval (items reweighted by `weights`)."""
    if den.sum() == 0:
        return None, None, None
    with np.errstate(invalid="ignore", divide="ignore"):
        resampled = (weights @ num) / (weights @ den)
    low, high = percentile_interval(resampled, weights.shape[0])
    return float(num.sum() / den.sum()), low, high


def _max_abs(num: np.ndarray, den: np.ndarray, weights: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """The largest |mean shift| among variants (columns), and its bootstrap interval."""
    present = den.sum(axis=0) > 0
    if not present.any():
        return None, None, None
    num, den = num[:, present], den[:, present]
    value = float(np.max(np.abs(num.sum(axis=0) / den.sum(axis=0))))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.abs((weights @ num) / (weights @ den))
    resampled = np.where(np.isnan(means).all(axis=1), np.nan, np.nanmax(np.where(np.isnan(means), -1, means), axis=1))
    low, high = percentile_interval(resampled, weights.shape[0])
    return value, low, high


# ------------------------------------------------------------------------------------------ pairs


def _fails(criterion: Criterion, score: float) -> bool:
    assert criterion.fail_below is not None
    return score < criterion.fail_below


def _unit(criterion: Criterion, score: float) -> float:
    return (score - criterion.scale.min) / (criterion.scale.max - criterion.scale.min)


def _pair_status(original: Cell, variant: Cell) -> str:
    if original.status == "ok" and variant.status == "ok":
        return "paired"
    if "failed" in (original.status, variant.status):
        return "failed"
    if original.status == variant.status:
        return "not_applicable"
    return "applicability_changed"


class _Table:
    """Sums over originals (rows) × variants (columns) of one probe × judge × pillar × criterion."""

    def __init__(self, originals: list[str], variants: list[str]) -> None:
        self.row = {o: i for i, o in enumerate(originals)}
        self.col = {v: j for j, v in enumerate(variants)}
        shape = (len(originals), len(variants))
        self.count, self.shift, self.abs_shift = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        self.flip = np.zeros(shape)

    def add(self, original: str, variant: str, shift: float, flip: bool) -> None:
        at = (self.row[original], self.col[variant])
        self.count[at] += 1
        self.shift[at] += shift
        self.abs_shift[at] += abs(shift)
        self.flip[at] += flip


@dataclass
class _PillarPair:
    """One original and one variant over all criteria of a pillar, for degrade detection."""

    before: list[float] = field(default_factory=list)  # scores rescaled to 0–1
    after: list[float] = field(default_factory=list)
    newly_failed: bool = False

    def add(self, criterion: Criterion, before: float, after: float) -> None:
        self.before.append(_unit(criterion, before))
        self.after.append(_unit(criterion, after))
        if criterion.fail_below is not None and not _fails(criterion, before) and _fails(criterion, after):
            self.newly_failed = True

    @property
    def detected(self) -> bool:
        return self.newly_failed or statistics.fmean(self.after) < statistics.fmean(self.before)


def _columns(refs: list[VariantRef]) -> list[str]:
    return list(dict.fromkeys(ref.variant for ref in refs))


class _Emitter:
    def __init__(
        self, effects: Effects, probe: str, judge: str, pillar: str, criterion: str, weights: np.ndarray
    ) -> None:
        self.effects, self.weights = effects, weights
        self.where = (probe, judge, pillar, criterion)

    def ratio(self, variant: str | None, metric: str, num: np.ndarray, den: np.ndarray) -> None:
        value, low, high = _ratio(num, den, self.weights)
        self.add(variant, metric, (value, low, high), int(den.sum()))

    def add(
        self,
        variant: str | None,
        metric: str,
        estimate: tuple[float | None, float | None, float | None],
        n: int,
        reason: str | None = None,
    ) -> None:
        probe, judge, pillar, criterion = self.where
        value, low, high = estimate
        self.effects.records.append(
            Record(
                probe, variant, judge, pillar, criterion, metric, value, low, high, n, reason if value is None else None
            )
        )


def _criterion_effects(emit: _Emitter, table: _Table, critical: bool) -> None:
    count, variants = table.count, list(table.col)
    emit.ratio(None, "mean_shift", table.shift.sum(axis=1), count.sum(axis=1))
    emit.ratio(None, "mean_abs_shift", table.abs_shift.sum(axis=1), count.sum(axis=1))
    emit.add(None, "max_abs_shift", _max_abs(table.shift, count, emit.weights), int(count.sum()))
    if critical:
        emit.ratio(None, "flip_rate", table.flip.sum(axis=1), count.sum(axis=1))
    for j, variant in enumerate(variants):
        if count[:, j].sum() == 0:
            continue
        emit.ratio(variant, "mean_shift", table.shift[:, j], count[:, j])
        emit.ratio(variant, "mean_abs_shift", table.abs_shift[:, j], count[:, j])
        if critical:
            emit.ratio(variant, "flip_rate", table.flip[:, j], count[:, j])


@dataclass
class _Inputs:
    """What every probe's computation reads, and the Effects it adds its records to."""

    originals: Mapping[CellKey, Cell]
    variants: Mapping[CellKey, Cell]
    rubrics: Mapping[str, Rubric]
    judges: list[str]
    n_bootstrap: int
    seed: int
    effects: Effects

    def weights(self, n_items: int, key: str) -> np.ndarray:
        return resample_weights(n_items, self.n_bootstrap, self.seed, key)


def probe_effects(inputs: _Inputs, probe: str, refs: list[VariantRef]) -> None:
    """Records of one variant-making probe for every judge × pillar × criterion it reached."""
    originals, variants, effects = inputs.originals, inputs.variants, inputs.effects
    pillars = sorted({k[1] for k in variants})
    for judge in inputs.judges:
        coverage: Counter[str] = Counter()
        for pillar in pillars:
            detection: dict[tuple[str, str], _PillarPair] = defaultdict(_PillarPair)
            for criterion in inputs.rubrics[pillar].criteria:
                critical = criterion.fail_below is not None
                pairs = []
                for ref in refs:
                    variant = variants.get((ref.id, pillar, criterion.id, judge))
                    original = originals.get((ref.original_id, pillar, criterion.id, judge))
                    if variant is None or original is None:
                        continue
                    status = _pair_status(original, variant)
                    coverage[status] += 1
                    if status != "paired":
                        continue
                    assert original.score is not None and variant.score is not None
                    pairs.append((ref, original.score, variant.score))
                    detection[(ref.original_id, ref.variant)].add(criterion, original.score, variant.score)
                if not pairs:
                    continue
                table = _Table(sorted({r.original_id for r, _, _ in pairs}), _columns([r for r, _, _ in pairs]))
                for ref, before, after in pairs:
                    flip = critical and _fails(criterion, before) != _fails(criterion, after)
                    table.add(ref.original_id, ref.variant, after - before, flip)
                key = f"{probe}|{judge}|{pillar}|{criterion.id}"
                weights = inputs.weights(len(table.row), key)
                _criterion_effects(_Emitter(effects, probe, judge, pillar, criterion.id, weights), table, critical)
            if probe == "degrade":
                _detection(inputs, judge, pillar, detection)
        effects.coverage.append({"probe": probe, "judge": judge, **{k: coverage[k] for k in COVERAGE_KEYS}})


COVERAGE_KEYS = ("paired", "failed", "not_applicable", "applicability_changed")


def _detection(inputs: _Inputs, judge: str, pillar: str, units: Mapping[tuple[str, str], _PillarPair]) -> None:
    targeted = {k: v for k, v in units.items() if pillar in DEGRADE_TARGETS.get(k[1], frozenset())}
    if not targeted:
        return
    table = _Table(sorted({o for o, _ in targeted}), list(dict.fromkeys(v for _, v in targeted)))
    for (original, variant), pair in targeted.items():
        table.add(original, variant, float(pair.detected), False)
    weights = inputs.weights(len(table.row), f"degrade|{judge}|{pillar}|{ALL_CRITERIA}")
    emit = _Emitter(inputs.effects, "degrade", judge, pillar, ALL_CRITERIA, weights)
    emit.ratio(None, "detection_rate", table.shift.sum(axis=1), table.count.sum(axis=1))
    for j, variant in enumerate(table.col):
        emit.ratio(variant, "detection_rate", table.shift[:, j], table.count[:, j])


# ------------------------------------------------------------------------------------------ self-preference


def self_preference_effects(inputs: _Inputs) -> None:
    """Per judge × criterion: how much more the judge gives responses of its own model family than the
    other judges give the same responses, beyond how much more it gives everyone else's.

    On each item the judge's score is compared with the mean of the other judges that scored it and are
    not of the target's family themselves. `self_gap` averages that difference over the judge's own
    family's items, `other_gap` over other targets' items (its general leniency), and
    `self_preference` is self_gap − other_gap.
    """
    by_criterion: dict[tuple[str, str], dict[str, dict[str, Cell]]] = defaultdict(lambda: defaultdict(dict))
    for (item_id, pillar, criterion, judge), cell in inputs.originals.items():
        by_criterion[(pillar, criterion)][item_id][judge] = cell
    for judge in inputs.judges:
        coverage: Counter[str] = Counter()
        for pillar in sorted({p for p, _ in by_criterion}):
            for criterion in inputs.rubrics[pillar].criteria:
                own: list[float] = []
                other: list[float] = []
                has_own = False  # the judge scored a response of its own family (measurable or not)
                for _, cells in sorted(by_criterion.get((pillar, criterion.id), {}).items()):
                    mine = cells.get(judge)
                    if mine is None or mine.status != "ok" or mine.score is None or not mine.target:
                        continue
                    has_own = has_own or mine.self_family
                    views = [
                        x.score
                        for j, x in cells.items()
                        if j != judge and x.score is not None and x.status == "ok" and not x.self_family
                    ]
                    if not views:
                        coverage["no_outside_view"] += 1
                        continue
                    coverage["paired"] += 1
                    (own if mine.self_family else other).append(mine.score - statistics.fmean(views))
                if own or other:
                    _gaps(inputs, judge, pillar, criterion.id, own if has_own else None, other)
        inputs.effects.coverage.append(
            {
                "probe": "self-preference",
                "judge": judge,
                "paired": coverage["paired"],
                "no_outside_view": coverage["no_outside_view"],
            }
        )


def _mean_ci(values: list[float], weights: np.ndarray) -> tuple[float | None, float | None, float | None]:
    return _ratio(np.asarray(values, dtype=float), np.ones(len(values)), weights)


def _gaps(
    inputs: _Inputs, judge: str, pillar: str, criterion: str, own: list[float] | None, other: list[float]
) -> None:
    """other_gap always; self_gap and self_preference only for a judge that met its own family's responses
    (`own` None: it never did, so the question does not arise)."""
    key = f"self-preference|{judge}|{pillar}|{criterion}"
    other_w = inputs.weights(len(other), key + "|other")
    emit = _Emitter(inputs.effects, "self-preference", judge, pillar, criterion, other_w)
    missing_own = "no response of the judge's own family was scored by another judge outside that family"
    missing_other = "no response of another family was scored by a judge outside that response's family"
    emit.add(None, "other_gap", _mean_ci(other, other_w) if other else (None, None, None), len(other), missing_other)
    if own is None:
        return
    own_w = inputs.weights(len(own), key + "|own")
    emit.add(None, "self_gap", _mean_ci(own, own_w) if own else (None, None, None), len(own), missing_own)
    if own and other:
        with np.errstate(invalid="ignore", divide="ignore"):
            own_b = (own_w @ np.asarray(own)) / own_w.sum(axis=1)
            other_b = (other_w @ np.asarray(other)) / other_w.sum(axis=1)
        low, high = percentile_interval(own_b - other_b, inputs.n_bootstrap)
        estimate = (statistics.fmean(own) - statistics.fmean(other), low, high)
        emit.add(None, "self_preference", estimate, len(own) + len(other))
    else:
        emit.add(
            None,
            "self_preference",
            (None, None, None),
            len(own) + len(other),
            missing_own if not own else missing_other,
        )


# ------------------------------------------------------------------------------------------ halo

HALO_VARIANT = "split"  # the one column of the halo tables: split calls against one call per pillar


def _gate_fails(rubric: Rubric, cells: Mapping[str, Cell]) -> bool | None:
    """The pillar's gate on one item: some critical criterion scored below its fail_below; None when no
    critical criterion was scored."""
    scored = [(c, cells[c.id].score) for c in rubric.criteria if c.fail_below is not None and c.id in cells
              and cells[c.id].status == "ok" and cells[c.id].score is not None]  # fmt: skip
    if not scored:
        return None
    return any(_fails(c, score) for c, score in scored)  # type: ignore[arg-type]


def halo_effects(inputs: _Inputs, split: Mapping[CellKey, Cell]) -> None:
    """The halo check: per judge × pillar × criterion, how a score moves when each critical criterion is
    judged in a call of its own (`split`) instead of with the whole pillar (`inputs.originals`). Adds to
    `inputs.effects`.

    shift = split score − one-call score. Records: mean_shift, mean_abs_shift, changed_share (pairs whose
    score differs), flip_rate (critical criteria: pass ↔ fail), and per pillar (criterion `*`)
    gate_flip_rate: items whose gate (any critical criterion below its fail_below) differs.
    """
    originals, effects = inputs.originals, inputs.effects
    pillars = sorted({k[1] for k in split})
    items = sorted({k[0] for k in split})
    for judge in inputs.judges:
        coverage: Counter[str] = Counter()
        for pillar in pillars:
            rubric = inputs.rubrics[pillar]
            for criterion in rubric.criteria:
                critical = criterion.fail_below is not None
                pairs = []
                for item in items:
                    after = split.get((item, pillar, criterion.id, judge))
                    before = originals.get((item, pillar, criterion.id, judge))
                    if after is None or before is None:
                        continue
                    status = _pair_status(before, after)
                    coverage[status] += 1
                    if status == "paired":
                        assert before.score is not None and after.score is not None
                        pairs.append((item, before.score, after.score))
                if not pairs:
                    continue
                table = _Table(sorted({i for i, _, _ in pairs}), [HALO_VARIANT])
                changed = np.zeros(len(table.row))
                for item, before_score, after_score in pairs:
                    flip = critical and _fails(criterion, before_score) != _fails(criterion, after_score)
                    table.add(item, HALO_VARIANT, after_score - before_score, flip)
                    changed[table.row[item]] += after_score != before_score
                weights = inputs.weights(len(table.row), f"halo|{judge}|{pillar}|{criterion.id}")
                emit = _Emitter(effects, "halo", judge, pillar, criterion.id, weights)
                count = table.count.sum(axis=1)
                emit.ratio(None, "mean_shift", table.shift.sum(axis=1), count)
                emit.ratio(None, "mean_abs_shift", table.abs_shift.sum(axis=1), count)
                emit.ratio(None, "changed_share", changed, count)
                if critical:
                    emit.ratio(None, "flip_rate", table.flip.sum(axis=1), count)
            _gate_flips(inputs, judge, rubric, items, split)
        effects.coverage.append({"probe": "halo", "judge": judge, **{k: coverage[k] for k in COVERAGE_KEYS}})


def _gate_flips(inputs: _Inputs, judge: str, rubric: Rubric, items: list[str], split: Mapping[CellKey, Cell]) -> None:
    flips = []
    for item in items:
        sides = [
            {c.id: cells[(item, rubric.pillar, c.id, judge)] for c in rubric.criteria
             if (item, rubric.pillar, c.id, judge) in cells}
            for cells in (inputs.originals, split)
        ]  # fmt: skip
        before, after = (_gate_fails(rubric, side) for side in sides)
        if before is not None and after is not None:
            flips.append(float(before != after))
    if not flips:
        return
    weights = inputs.weights(len(flips), f"halo|{judge}|{rubric.pillar}|{ALL_CRITERIA}")
    emit = _Emitter(inputs.effects, "halo", judge, rubric.pillar, ALL_CRITERIA, weights)
    emit.ratio(None, "gate_flip_rate", np.asarray(flips), np.ones(len(flips)))


def compute_effects(
    probes: list[str],
    refs: list[VariantRef],
    originals: Mapping[CellKey, Cell],
    variants: Mapping[CellKey, Cell],
    rubrics: Mapping[str, Rubric],
    judges: list[str],
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    halo: tuple[Mapping[CellKey, Cell], Mapping[CellKey, Cell]] | None = None,
) -> Effects:
    """Every record of every probe asked for, in probe order. `halo`: for the halo probe, the verdicts of
    one call per pillar and those with each critical criterion judged in a call of its own."""
    inputs = _Inputs(originals, variants, rubrics, judges, n_bootstrap, seed, Effects())
    for probe in probes:
        if probe == "halo":
            one_call, split = halo or ({}, {})
            halo_effects(replace(inputs, originals=one_call), split)
        elif PROBES[probe].make is None:
            self_preference_effects(inputs)
        else:
            probe_effects(inputs, probe, [ref for ref in refs if ref.probe == probe])
    return inputs.effects
