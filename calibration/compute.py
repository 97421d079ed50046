"""Turn long-format annotations into calibration records, one per criterion × judge × metric (pure, no I/O).

Definitions used throughout (also in docs/calibration.md):
- a judge's item score is the mean of its samples (nominal criteria: the most frequent label, ties to
  the smallest code);
- the human mean is the mean of the humans who scored the item; the human consensus is their median,
  rounded half up to the scale (nominal: the most frequent label);
- every paired statistic is pairwise-complete: items missing on either side are left out;
- statistics that need integer categories (qwk, exact, confusion) round a non-integer score half up.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from calibration.annotations import CalibrationData, Scale
from judge.stats import agreement as ag
from judge.stats.bootstrap import is_small_n, percentile_ci, resample_indices

Stat = Callable[[np.ndarray], float | None]


@dataclass
class Record:
    criterion: str
    judge: str | None
    level: str
    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    against: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"criterion": self.criterion, "judge": self.judge, "level": self.level,
                                  "metric": self.metric, "against": self.against, "value": self.value,
                                  "ci_low": self.ci_low, "ci_high": self.ci_high, "n": self.n}
        if self.value is None:
            out["reason"] = self.reason or "not computable for these data"
        elif self.ci_low is not None and is_small_n(self.n):
            out["small_n"] = True  # the interval rests on fewer than SMALL_N units
        return out


@dataclass
class Confusion:
    criterion: str
    judge: str
    against: str
    level: str
    labels: list[str]
    matrix: list[list[int]]


@dataclass
class CalibrationResult:
    records: list[Record] = field(default_factory=list)
    confusions: list[Confusion] = field(default_factory=list)


@dataclass
class CriterionMatrix:
    """One criterion as arrays: humans (raters × units) and per judge samples × units."""

    criterion: str
    units: list[str]
    raters: list[str]
    humans: np.ndarray
    judges: dict[str, np.ndarray]
    scale: Scale


def round_half_up(values: np.ndarray) -> np.ndarray:
    return np.floor(np.asarray(values, dtype=float) + 0.5)


def _mode(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return math.nan
    counts = Counter(finite.tolist())
    top = max(counts.values())
    return min(v for v, c in counts.items() if c == top)


def _column_reduce(matrix: np.ndarray, how: Literal["mean", "median", "mode"]) -> np.ndarray:
    out = np.full(matrix.shape[1], np.nan)
    for j in range(matrix.shape[1]):
        column = matrix[:, j][~np.isnan(matrix[:, j])]
        if column.size:
            out[j] = {"mean": np.mean, "median": np.median, "mode": _mode}[how](column)
    return out


def _group_means(matrix: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """Per-row mean over each group of columns (nan when a row has no score in the group)."""
    out = np.full((matrix.shape[0], len(groups)), np.nan)
    for g, columns in enumerate(groups):
        block = matrix[:, columns]
        for r in range(matrix.shape[0]):
            finite = block[r][~np.isnan(block[r])]
            if finite.size:
                out[r, g] = finite.mean()
    return out


def build_matrices(data: CalibrationData, level: Literal["item", "target"] = "item") -> list[CriterionMatrix]:
    """Arrange scores per criterion; at target level a unit is a system and a score is its mean."""
    human_by: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
    judge_by: dict[str, dict[tuple[str, int, str], float]] = defaultdict(dict)
    targets: dict[str, str] = {}
    for a in data.human:
        human_by[a.criterion][(a.rater, a.item_id)] = a.score
        if a.target:
            targets[a.item_id] = a.target
    for s in data.judged:
        judge_by[s.criterion][(s.judge, s.sample, s.item_id)] = s.score
        if s.target:
            targets.setdefault(s.item_id, s.target)
    matrices = []
    for criterion in sorted(human_by):
        scale = data.scale(criterion)
        units = sorted({item for _, item in human_by[criterion]})
        raters = sorted({rater for rater, _ in human_by[criterion]})
        col = {u: j for j, u in enumerate(units)}
        humans = np.full((len(raters), len(units)), np.nan)
        for (rater, item), score in human_by[criterion].items():
            humans[raters.index(rater), col[item]] = score
        judges: dict[str, np.ndarray] = {}
        for judge in sorted({j for j, _, _ in judge_by[criterion]}):
            samples = sorted({s for j, s, _ in judge_by[criterion] if j == judge})
            runs = np.full((len(samples), len(units)), np.nan)
            for (j, sample, item), score in judge_by[criterion].items():
                if j == judge and item in col:
                    runs[samples.index(sample), col[item]] = score
            judges[judge] = runs
        if level == "target":
            systems = sorted({targets[u] for u in units if u in targets})
            if not systems or scale.kind == "nominal":
                continue
            groups = [[col[u] for u in units if targets.get(u) == t] for t in systems]
            humans = _group_means(humans, groups)
            judges = {name: _group_means(_column_reduce(runs, "mean")[None, :], groups)
                      for name, runs in judges.items()}
            units = systems
        matrices.append(CriterionMatrix(criterion, units, raters, humans, judges, scale))
    return matrices


class _Builder:
    """Collects records for one criterion, adding bootstrap intervals from shared resamples."""

    def __init__(self, m: CriterionMatrix, level: str, indices: np.ndarray, result: CalibrationResult) -> None:
        self.m, self.level, self.indices, self.result = m, level, indices, result

    def add(self, judge: str | None, metric: str, stat: Stat, n: int, reason: str,
            against: str | None = None) -> float | None:
        everything = np.arange(len(self.m.units))
        value = stat(everything)
        low, high = percentile_ci(stat, self.indices) if value is not None else (None, None)
        self.result.records.append(Record(self.m.criterion, judge, self.level, metric, value, low, high, n,
                                          against, None if value is not None else reason))
        return value


def _paired_n(a: np.ndarray, b: np.ndarray) -> int:
    return int((~np.isnan(a) & ~np.isnan(b)).sum())


def calibrate(
    data: CalibrationData,
    level: Literal["item", "target"] = "item",
    n_bootstrap: int = 200,
    seed: int = 0,
    epsilon: float = 0.2,
) -> CalibrationResult:
    """Every agreement metric (alphas, kappas, correlations, ICCs, errors, alt-test, self-consistency) for every
    criterion × judge of ``data``."""
    result = CalibrationResult()
    for m in build_matrices(data, level):
        indices = resample_indices(len(m.units), n_bootstrap, seed, m.criterion) if n_bootstrap > 0 \
            else np.empty((0, len(m.units)), dtype=int)
        builder = _Builder(m, level, indices, result)
        if m.scale.kind == "nominal":
            _nominal(m, builder, epsilon)
        else:
            _ordinal(m, builder, epsilon)
    return result


def _alpha_levels(scale: Scale) -> tuple[ag.Level, ...]:
    return ("nominal",) if scale.kind == "nominal" else ("ordinal", "interval")


def _human_only(m: CriterionMatrix, b: _Builder) -> None:
    H = m.humans
    n_units = int(((~np.isnan(H)).sum(axis=0) >= 2).sum())
    few = "needs at least two humans on some item and more than one distinct value"
    for lvl in _alpha_levels(m.scale):
        b.add(None, f"alpha_{lvl}", lambda idx, lvl=lvl: ag.krippendorff_alpha(H[:, idx], lvl), n_units, few)
    if m.scale.kind == "nominal" and len(m.raters) >= 2:
        complete = ~np.isnan(H).any(axis=0)
        codes = list(range(len(m.scale.labels)))
        b.add(None, "fleiss_kappa",
              lambda idx: ag.fleiss_kappa(ag.label_counts(H[:, idx][:, complete[idx]], codes))
              if complete[idx].any() else None,
              int(complete.sum()), "needs items labelled by every human")


def _judge_vector(runs: np.ndarray, scale: Scale) -> np.ndarray:
    return _column_reduce(runs, "mode" if scale.kind == "nominal" else "mean")


def _self_consistency(m: CriterionMatrix, b: _Builder, judge: str, runs: np.ndarray) -> None:
    lvl: ag.Level = "nominal" if m.scale.kind == "nominal" else "ordinal"
    b.add(judge, "self_consistency", lambda idx: ag.self_consistency(runs[:, idx], lvl),
          int(((~np.isnan(runs)).sum(axis=0) >= 2).sum()),
          "needs at least two samples of the judge on the same items (--samples >= 2)")


def _alpha_with_judge(m: CriterionMatrix, b: _Builder, judge: str, jv: np.ndarray) -> None:
    H = m.humans
    n = int(((~np.isnan(np.vstack([H, jv]))).sum(axis=0) >= 2).sum())
    for lvl in _alpha_levels(m.scale):
        b.add(judge, f"alpha_{lvl}_with_judge", lambda idx, lvl=lvl: ag.alpha_with_judge(H[:, idx], jv[idx], lvl),
              n, "no item scored by the judge and a human")
        if len(m.raters) < 2:
            continue
        for r, rater in enumerate(m.raters):
            b.add(judge, f"alpha_{lvl}_substituted",
                  lambda idx, lvl=lvl, r=r: ag.krippendorff_alpha(_substitute(H, r, jv)[:, idx], lvl),
                  n, "not computable with the judge in this human's place", against=rater)


def _substitute(humans: np.ndarray, row: int, judge: np.ndarray) -> np.ndarray:
    """The humans with the judge in ``row``'s place (alpha with the judge standing in for one human)."""
    swapped = humans.copy()
    swapped[row] = judge
    return swapped


def _alt_test(m: CriterionMatrix, b: _Builder, judge: str, jv: np.ndarray, epsilon: float) -> None:
    scoring = "accuracy" if m.scale.kind == "nominal" else "neg_rmse"
    reason = "the alternative-annotator test needs at least three humans"
    outcome = ag.alt_test(m.humans, jv, scoring=scoring, epsilon=epsilon) if len(m.raters) >= 3 else None
    n = _paired_n(np.nanmean(m.humans, axis=0) if len(m.raters) else jv, jv)
    for metric, key in (("alt_test_winning_rate", "winning_rate"), ("alt_test_rho", "rho"),
                        ("alt_test_passed", "passed")):
        value = None if outcome is None else float(outcome[key])  # type: ignore[arg-type]
        b.result.records.append(Record(m.criterion, judge, b.level, metric, value, None, None, n, None,
                                       None if value is not None else reason))


def _confusion(m: CriterionMatrix, b: _Builder, judge: str, against: str, jv: np.ndarray, hv: np.ndarray,
               categories: list[float], labels: list[str]) -> None:
    x, y = round_half_up(jv), round_half_up(hv)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = np.clip(x[keep], min(categories), max(categories)), np.clip(y[keep], min(categories), max(categories))
    matrix = ag.confusion_matrix(x, y, categories)
    b.result.confusions.append(Confusion(m.criterion, judge, against, b.level, labels, matrix.tolist()))


def _ordinal(m: CriterionMatrix, b: _Builder, epsilon: float) -> None:
    H = m.humans
    _human_only(m, b)
    human_mean = _column_reduce(H, "mean")
    consensus = round_half_up(_column_reduce(H, "median"))
    if m.scale.labels:
        categories = [float(v) for v in m.scale.labels]
    else:  # every side's values: humans, judges and the consensus (2 and 4 make 3, which nobody gave)
        observed = np.concatenate([H[~np.isnan(H)], consensus[~np.isnan(consensus)],
                                   *[r[~np.isnan(r)] for r in m.judges.values()]])
        categories = sorted(set(round_half_up(observed).tolist()))
    for judge, runs in m.judges.items():
        jv = _judge_vector(runs, m.scale)
        jr = round_half_up(jv)
        n = _paired_n(jv, human_mean)
        none = "no item scored by both the judge and the humans"
        const = none + ", or one side is constant"
        b.add(judge, "spearman", lambda idx, jv=jv: ag.spearman(jv[idx], human_mean[idx]), n, const)
        b.add(judge, "pearson", lambda idx, jv=jv: ag.pearson(jv[idx], human_mean[idx]), n, const)
        b.add(judge, "kendall", lambda idx, jv=jv: ag.kendall(jv[idx], human_mean[idx]), n, const)
        pair = np.vstack([jv, human_mean]).T
        b.add(judge, "icc_a1", lambda idx, p=pair: ag.icc_a1(p[idx]), n, "needs two complete items with variance")
        b.add(judge, "icc_c1", lambda idx, p=pair: ag.icc_c1(p[idx]), n, "needs two complete items with variance")
        b.add(judge, "mae", lambda idx, jv=jv: ag.mae(jv[idx], human_mean[idx]), n, none)
        b.add(judge, "rmse", lambda idx, jv=jv: ag.rmse(jv[idx], human_mean[idx]), n, none)
        b.add(judge, "bias", lambda idx, jv=jv: ag.mean_bias(jv[idx], human_mean[idx]), n, none)
        if b.level == "target":
            for metric in ("qwk", "exact", "within1"):
                b.result.records.append(Record(m.criterion, judge, b.level, metric, None, None, None, n, None,
                                               "defined on item scores, not on per-system means"))
        else:
            nc = _paired_n(jr, consensus)
            b.add(judge, "qwk", lambda idx, jr=jr: ag.quadratic_weighted_kappa(jr[idx], consensus[idx], categories),
                  nc, const)
            b.add(judge, "exact", lambda idx, jr=jr: ag.exact_agreement(jr[idx], consensus[idx]), nc, none)
            b.add(judge, "within1", lambda idx, jr=jr: ag.within_one_agreement(jr[idx], consensus[idx]), nc, none)
            _confusion(m, b, judge, "consensus", jv, consensus, categories, [f"{c:g}" for c in categories])
            for r, rater in enumerate(m.raters):
                hv = H[r]
                nr = _paired_n(jv, hv)
                b.add(judge, "qwk", lambda idx, jr=jr, hv=hv: ag.quadratic_weighted_kappa(
                    jr[idx], round_half_up(hv[idx]), categories), nr, const, against=rater)
                b.add(judge, "mae", lambda idx, jv=jv, hv=hv: ag.mae(jv[idx], hv[idx]), nr, none, against=rater)
                b.add(judge, "rmse", lambda idx, jv=jv, hv=hv: ag.rmse(jv[idx], hv[idx]), nr, none, against=rater)
                b.add(judge, "bias", lambda idx, jv=jv, hv=hv: ag.mean_bias(jv[idx], hv[idx]), nr, none,
                      against=rater)
                b.add(judge, "exact", lambda idx, jr=jr, hv=hv: ag.exact_agreement(jr[idx], round_half_up(hv[idx])),
                      nr, none, against=rater)
                b.add(judge, "within1", lambda idx, jv=jv, hv=hv: ag.within_one_agreement(jv[idx], hv[idx]),
                      nr, none, against=rater)
        _alpha_with_judge(m, b, judge, jv)
        _alt_test(m, b, judge, jv, epsilon)
        _self_consistency(m, b, judge, runs)


def _nominal(m: CriterionMatrix, b: _Builder, epsilon: float) -> None:
    H = m.humans
    _human_only(m, b)
    categories = [float(i) for i in range(len(m.scale.labels))]
    majority = _column_reduce(H, "mode")
    for judge, runs in m.judges.items():
        jv = _judge_vector(runs, m.scale)
        none = "no item labelled by both the judge and the humans"
        nm = _paired_n(jv, majority)
        b.add(judge, "kappa", lambda idx, jv=jv: ag.cohen_kappa(jv[idx], majority[idx], categories), nm,
              none + ", or chance agreement is total")
        b.add(judge, "exact", lambda idx, jv=jv: ag.exact_agreement(jv[idx], majority[idx]), nm, none)
        if b.level == "item":
            _confusion(m, b, judge, "majority", jv, majority, categories, list(m.scale.labels))
        for r, rater in enumerate(m.raters):
            hv = H[r]
            nr = _paired_n(jv, hv)
            b.add(judge, "kappa", lambda idx, jv=jv, hv=hv: ag.cohen_kappa(jv[idx], hv[idx], categories), nr,
                  none + ", or chance agreement is total", against=rater)
            b.add(judge, "exact", lambda idx, jv=jv, hv=hv: ag.exact_agreement(jv[idx], hv[idx]), nr, none,
                  against=rater)
        _alpha_with_judge(m, b, judge, jv)
        _alt_test(m, b, judge, jv, epsilon)
        _self_consistency(m, b, judge, runs)
