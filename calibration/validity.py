"""The validity table: is a judge as close to the human raters as the humans are to each other? (pure, no I/O)

For one dataset, per criterion × judge, on the items the judge scored:
- the judge's agreement with each human and the mean over the humans (`judge_vs_humans`);
- the humans' agreement with each other, every pair, on the same items, and its mean (`human_vs_human`);
- `gap` = judge_vs_humans − human_vs_human, with a paired bootstrap interval (the same resampled items
  for both sides), so a negative gap is a judge further from the humans than they are from each other;
- the judge's agreement with the human consensus, MAE and ICC(A,1) beside (ordinal criteria), and the
  alternative-annotator test (three or more humans);
- a plain verdict: "as close as a human" (gap >= −tolerance), "worse than the humans by X", or "not
  enough data" (with the reason: too few items, fewer than two humans, or a statistic undefined).

The metric that fits the scale: quadratic-weighted kappa for ordinal criteria, Cohen's kappa for
categories; their categories are the criterion's scale (`Scale.labels`), never only the values seen.
Every statistic that cannot be computed is null with a reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Any

import numpy as np

from calibration.annotations import CalibrationData, Scale
from calibration.compute import CriterionMatrix, _column_reduce, _judge_vector, build_matrices, round_half_up
from judge.stats import agreement as ag
from judge.stats.bootstrap import percentile_ci, resample_indices

AS_CLOSE = "as close as a human"
WORSE = "worse than the humans"
NOT_ENOUGH = "not enough data"
DEFAULT_TOLERANCE = 0.1
DEFAULT_MIN_ITEMS = 10
"""Fewer items scored by the judge and two humans than this give "not enough data": a kappa over a
handful of items swings by more than any tolerance."""


@dataclass(frozen=True)
class Estimate:
    """A statistic with its bootstrap interval; `value` None means not computable, `reason` says why."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    reason: str | None = None


@dataclass
class ValidityRow:
    dataset: str
    criterion: str
    judge: str
    published: bool  # a judge whose scores the dataset records, not one this run asked
    critical: bool
    scale: str  # "ordinal" or "nominal"
    metric: str  # "qwk" or "kappa"
    n_items: int  # items scored by the judge and at least two humans
    humans: list[str]
    judge_vs_humans: Estimate
    judge_vs_each_human: dict[str, float | None]
    human_vs_human: Estimate
    human_pairs: dict[str, float | None]  # "H1~H2" -> the metric between the two
    gap: Estimate
    judge_vs_consensus: Estimate
    mae_judge: Estimate | None = None  # ordinal: mean over humans of the judge's MAE
    mae_humans: Estimate | None = None  # ordinal: mean over pairs of humans of their MAE
    icc_judge: Estimate | None = None  # ordinal: ICC(A,1) of judge and human mean
    alt_test: dict[str, Any] = field(default_factory=dict)
    verdict: str = NOT_ENOUGH
    verdict_text: str = NOT_ENOUGH
    reason: str | None = None
    rubric_criterion: str | None = None  # the rubric criterion the judge scored (set by the dataset's mapping)
    human_measure: str | None = None  # what the humans rated, and how it was put on the criterion's scale

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Disagreement:
    """An item where the judge and the humans differ most, with what each side said."""

    dataset: str
    criterion: str
    judge: str
    item_id: str
    judge_score: float | str  # a category's name for a nominal criterion
    human_scores: dict[str, float | str]
    distance: float  # |judge − human mean| (ordinal) or share of humans with another label (nominal)


def _mean(values: Sequence[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def _pair_metric(scale: Scale) -> tuple[str, Callable[[np.ndarray, np.ndarray], float | None]]:
    if scale.kind == "nominal":
        codes = [float(i) for i in range(len(scale.labels))]
        return "kappa", lambda a, b: ag.cohen_kappa(a, b, codes)
    categories = [float(v) for v in scale.labels] if scale.labels else None
    return "qwk", lambda a, b: ag.quadratic_weighted_kappa(round_half_up(a), round_half_up(b), categories)


def _estimate(stat: Callable[[np.ndarray], float | None], n_units: int, indices: np.ndarray,
              reason: str) -> Estimate:
    value = stat(np.arange(n_units))
    if value is None:
        return Estimate(None, reason=reason)
    low, high = percentile_ci(stat, indices) if indices.size else (None, None)
    return Estimate(value, low, high)


def validity_rows(
    data: CalibrationData,
    *,
    dataset: str,
    critical: frozenset[str] = frozenset(),
    published: frozenset[str] = frozenset(),
    tolerance: float = DEFAULT_TOLERANCE,
    min_items: int = DEFAULT_MIN_ITEMS,
    n_bootstrap: int = 200,
    seed: int = 0,
    epsilon: float = 0.2,
    judges: Sequence[str] = (),
) -> list[ValidityRow]:
    """One row per criterion × judge of `data` (criteria without a judge give no row). Each of `judges` (the
    judges that were asked) gets its row on every criterion even where it scored nothing, every call having
    failed: the table then says "not enough data" for it rather than leaving it out."""
    rows = []
    for m in build_matrices(data, "item"):
        indices = resample_indices(len(m.units), n_bootstrap, seed, f"{dataset}/{m.criterion}") if n_bootstrap \
            else np.empty((0, len(m.units)), dtype=int)
        unscored = {judge: np.full((1, len(m.units)), np.nan) for judge in judges if judge not in m.judges}
        for judge, runs in sorted({**m.judges, **unscored}.items()):
            rows.append(_row(m, dataset, judge, runs, indices, critical=m.criterion in critical,
                             published=judge in published, tolerance=tolerance, min_items=min_items,
                             epsilon=epsilon))
    return rows


def _row(m: CriterionMatrix, dataset: str, judge: str, runs: np.ndarray, indices: np.ndarray, *, critical: bool,
         published: bool, tolerance: float, min_items: int, epsilon: float) -> ValidityRow:
    metric, pair = _pair_metric(m.scale)
    jv = _judge_vector(runs, m.scale)
    H = m.humans.copy()
    H[:, np.isnan(jv)] = np.nan  # the humans' agreement is measured on the items the judge scored
    raters, n_units = m.raters, len(m.units)
    pairs = list(combinations(range(len(raters)), 2))
    n_items = int(((~np.isnan(H)).sum(axis=0) >= 2).sum())
    no_humans = "needs at least two humans on the items the judge scored"

    def judge_humans(idx: np.ndarray) -> float | None:
        return _mean([pair(jv[idx], H[r, idx]) for r in range(len(raters))])

    def humans_humans(idx: np.ndarray) -> float | None:
        return _mean([pair(H[a, idx], H[b, idx]) for a, b in pairs])

    def gap(idx: np.ndarray) -> float | None:
        j, h = judge_humans(idx), humans_humans(idx)
        return None if j is None or h is None else j - h

    undefined = f"{metric} undefined on these items (no pair in common, or chance agreement is total)"
    jh = _estimate(judge_humans, n_units, indices, undefined)
    hh = _estimate(humans_humans, n_units, indices, no_humans if not pairs else undefined)
    gp = _estimate(gap, n_units, indices, hh.reason or jh.reason or undefined)
    nominal = m.scale.kind == "nominal"
    consensus = _column_reduce(H, "mode") if nominal else round_half_up(_column_reduce(H, "median"))
    jc = _estimate(lambda idx: pair(jv[idx], consensus[idx]), n_units, indices, undefined)
    row = ValidityRow(
        dataset=dataset, criterion=m.criterion, judge=judge, published=published, critical=critical,
        scale=m.scale.kind, metric=metric, n_items=n_items, humans=list(raters), judge_vs_humans=jh,
        judge_vs_each_human={h: pair(jv, H[r]) for r, h in enumerate(raters)}, human_vs_human=hh,
        human_pairs={f"{raters[a]}~{raters[b]}": pair(H[a], H[b]) for a, b in pairs}, gap=gp,
        judge_vs_consensus=jc,
    )
    if m.scale.kind == "ordinal":
        human_mean = _column_reduce(H, "mean")
        row.mae_judge = _estimate(lambda idx: _mean([ag.mae(jv[idx], H[r, idx]) for r in range(len(raters))]),
                                  n_units, indices, "no item scored by the judge and a human")
        row.mae_humans = _estimate(lambda idx: _mean([ag.mae(H[a, idx], H[b, idx]) for a, b in pairs]),
                                   n_units, indices, no_humans)
        row.icc_judge = _estimate(lambda idx: ag.icc_a1(np.vstack([jv[idx], human_mean[idx]]).T), n_units,
                                  indices, "needs two complete items with variance")
    row.alt_test = _alt_test(H, jv, m.scale, epsilon)
    row.verdict, row.verdict_text, row.reason = _verdict(gp, n_items, tolerance, min_items, metric)
    return row


def _alt_test(H: np.ndarray, jv: np.ndarray, scale: Scale, epsilon: float) -> dict[str, Any]:
    if H.shape[0] < 3:
        return {"winning_rate": None, "passed": None, "rho": None,
                "reason": "the alternative-annotator test needs at least three humans"}
    outcome = ag.alt_test(H, jv, scoring="accuracy" if scale.kind == "nominal" else "neg_rmse", epsilon=epsilon)
    if outcome is None:
        return {"winning_rate": None, "passed": None, "rho": None,
                "reason": "fewer than three humans share two or more items with the judge"}
    return {"winning_rate": outcome["winning_rate"], "passed": bool(outcome["passed"]), "rho": outcome["rho"],
            "epsilon": epsilon, "reason": None}


def _verdict(gap: Estimate, n_items: int, tolerance: float, min_items: int,
             metric: str) -> tuple[str, str, str | None]:
    """(verdict, its sentence, why "not enough data")."""
    if n_items < min_items:
        return NOT_ENOUGH, NOT_ENOUGH, (f"{n_items} item(s) scored by the judge and two humans, fewer than "
                                        f"{min_items}")
    if gap.value is None:
        return NOT_ENOUGH, NOT_ENOUGH, gap.reason
    if gap.value >= -tolerance:
        return AS_CLOSE, AS_CLOSE, None
    return WORSE, f"{WORSE} by {-gap.value:.2f} {metric}", None


def gate_failures(rows: Sequence[ValidityRow]) -> list[str]:
    """The critical rows of the judges this run asked that are not as close as a human (published judges
    never fail a gate: they are reference points). "not enough data" fails: a gate that cannot tell passes
    nothing."""
    return [f"{r.dataset} · {r.criterion} · {r.judge}: {r.verdict_text}"
            + (f" ({r.reason})" if r.reason else "")
            for r in rows if r.critical and not r.published and r.verdict != AS_CLOSE]


def _shown(value: float, scale: Scale) -> float | str:
    return scale.labels[int(value)] if scale.kind == "nominal" and scale.labels else value


def disagreements(data: CalibrationData, *, dataset: str, judges: Sequence[str],
                  top: int = 5) -> list[Disagreement]:
    """Per criterion × judge, the `top` items where the judge is furthest from the humans (ties by item id)."""
    out: list[Disagreement] = []
    for m in build_matrices(data, "item"):
        for judge in judges:
            runs = m.judges.get(judge)
            if runs is None:
                continue
            jv = _judge_vector(runs, m.scale)
            found = []
            for j, item in enumerate(m.units):
                scores = {h: float(m.humans[r, j]) for r, h in enumerate(m.raters) if not math.isnan(m.humans[r, j])}
                if math.isnan(jv[j]) or not scores:
                    continue
                if m.scale.kind == "nominal":
                    distance = sum(v != jv[j] for v in scores.values()) / len(scores)
                else:
                    distance = abs(float(jv[j]) - float(np.mean(list(scores.values()))))
                found.append(Disagreement(dataset, m.criterion, judge, item, _shown(float(jv[j]), m.scale),
                                          {h: _shown(v, m.scale) for h, v in scores.items()}, distance))
            found.sort(key=lambda d: (-d.distance, d.item_id))
            out.extend(d for d in found[:top] if d.distance > 0)
    return out
