"""Agreement statistics as pure functions over arrays.

Conventions shared by every function here:
- missing values are ``np.nan``;
- a statistic that is undefined for the data given (too few items, no variance, a single rater…)
  comes back as ``None`` rather than ``nan`` or an exception, so callers can report *why* instead of
  printing a meaningless number;
- where scipy or the ``krippendorff`` package computes a statistic it is used; ICC, weighted kappa,
  Fleiss' kappa and the alternative-annotator test are written here (scipy has none of them) and are
  tested against published worked examples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import krippendorff
import numpy as np

Level = Literal["nominal", "ordinal", "interval"]


def _as_float_array(values: Sequence[float] | np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=float)


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _pairwise_complete(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Keep the items both raters scored: every pairwise statistic here is pairwise-complete."""
    x, y = _as_float_array(a), _as_float_array(b)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired ratings must be 1-D arrays of equal length, got {x.shape} and {y.shape}")
    keep = ~(np.isnan(x) | np.isnan(y))
    return x[keep], y[keep]


# --------------------------------------------------------------------------- Krippendorff's alpha


def krippendorff_alpha(
    reliability_data: np.ndarray,
    level: Level,
    value_domain: Sequence[float] | None = None,
) -> float | None:
    """Krippendorff's alpha; rows are raters, columns units, ``np.nan`` missing.

    Returns None when alpha is undefined: fewer than two pairable values (no unit coded by two raters)
    or a single distinct value among the pairable ones (expected disagreement is zero).
    """
    data = _as_float_array(reliability_data)
    if data.ndim != 2:
        raise ValueError(f"reliability_data must be 2-D (raters × units), got shape {data.shape}")
    pairable = data[:, (~np.isnan(data)).sum(axis=0) >= 2]
    values = pairable[~np.isnan(pairable)]
    if values.size < 2 or np.unique(values).size < 2:
        return None
    domain = None if value_domain is None else np.asarray(value_domain, dtype=float)
    if domain is not None and not np.isin(np.unique(values), domain).all():
        raise ValueError(f"reliability_data holds values outside value_domain {list(domain)}")
    return _finite_or_none(krippendorff.alpha(reliability_data=data, level_of_measurement=level,
                                              value_domain=domain))


# --------------------------------------------------------------------------- Cohen's kappa


def confusion_matrix(a: Sequence[float], b: Sequence[float], categories: Sequence[float]) -> np.ndarray:
    """Counts of (a = categories[i], b = categories[j]) over pairwise-complete items."""
    x, y = _pairwise_complete(a, b)
    cats = np.asarray(categories, dtype=float)
    index = {float(c): i for i, c in enumerate(cats)}
    unknown = sorted({float(v) for v in np.concatenate([x, y])} - index.keys())
    if unknown:
        raise ValueError(f"ratings {unknown} are not among the categories {cats.tolist()}")
    matrix = np.zeros((cats.size, cats.size), dtype=int)
    for u, v in zip(x, y, strict=True):
        matrix[index[float(u)], index[float(v)]] += 1
    return matrix


def _weighted_kappa(a: Sequence[float], b: Sequence[float], categories: Sequence[float] | None,
                    weights: Literal["none", "quadratic"]) -> float | None:
    x, y = _pairwise_complete(a, b)
    if x.size == 0:
        return None
    cats = np.unique(np.concatenate([x, y])) if categories is None else np.asarray(categories, dtype=float)
    observed = confusion_matrix(x, y, cats).astype(float)
    observed /= observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    if weights == "quadratic":
        # Disagreement weights on category *positions*: (i - j)^2, the Cohen (1968) / sklearn
        # convention; normalising by (k - 1)^2 would cancel in the ratio.
        pos = np.arange(cats.size, dtype=float)
        w = (pos[:, None] - pos[None, :]) ** 2
    else:
        w = 1.0 - np.eye(cats.size)
    expected_disagreement = float((w * expected).sum())
    if expected_disagreement == 0.0:
        return None
    return _finite_or_none(1.0 - float((w * observed).sum()) / expected_disagreement)


def quadratic_weighted_kappa(
    a: Sequence[float],
    b: Sequence[float],
    categories: Sequence[float] | None = None,
) -> float | None:
    """Cohen's kappa with quadratic disagreement weights, over pairwise-complete items.

    ``categories`` fixes the ordered scale (weights use category positions); by default it is the
    sorted union of the values observed in either rater. None when undefined (no common item, or
    both raters constant on the same value so that chance disagreement is zero).
    """
    return _weighted_kappa(a, b, categories, "quadratic")


def cohen_kappa(a: Sequence[float], b: Sequence[float],
                categories: Sequence[float] | None = None) -> float | None:
    """Unweighted Cohen's kappa for categorical labels (coded as numbers)."""
    return _weighted_kappa(a, b, categories, "none")


def fleiss_kappa(counts: np.ndarray) -> float | None:
    """Fleiss' (1971) kappa from an items × categories matrix of rater counts.

    Every item must have been labelled by the same number of raters (the statistic assumes it).
    None when undefined: fewer than two raters per item, or chance agreement equal to one.
    """
    table = np.asarray(counts, dtype=float)
    if table.ndim != 2 or table.shape[0] == 0:
        raise ValueError(f"counts must be a non-empty 2-D items × categories matrix, got shape {table.shape}")
    raters = table.sum(axis=1)
    if not np.all(raters == raters[0]):
        raise ValueError("Fleiss' kappa needs the same number of raters on every item")
    n = raters[0]
    if n < 2:
        return None
    p_j = table.sum(axis=0) / table.sum()
    p_i = ((table * table).sum(axis=1) - n) / (n * (n - 1))
    p_bar, p_e = float(p_i.mean()), float((p_j * p_j).sum())
    if p_e == 1.0:
        return None
    return _finite_or_none((p_bar - p_e) / (1.0 - p_e))


def label_counts(labels: np.ndarray, categories: Sequence[float]) -> np.ndarray:
    """Turn a raters × items label matrix (no missing values) into Fleiss' items × categories counts."""
    data = _as_float_array(labels)
    if np.isnan(data).any():
        raise ValueError("Fleiss' kappa needs every rater to label every item; drop incomplete items first")
    cats = np.asarray(categories, dtype=float)
    unknown = np.setdiff1d(np.unique(data), cats)
    if unknown.size:
        raise ValueError(f"labels {unknown.tolist()} are not among the categories {cats.tolist()}")
    return (data.T[:, :, None] == cats[None, None, :]).sum(axis=1)


# --------------------------------------------------------------------------- correlations


def _correlation(kind: Literal["spearman", "pearson", "kendall"], a: Sequence[float],
                 b: Sequence[float]) -> float | None:
    from scipy import stats  # loaded when needed: scipy.stats costs 0.4 s to import

    x, y = _pairwise_complete(a, b)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    func = {"spearman": stats.spearmanr, "pearson": stats.pearsonr, "kendall": stats.kendalltau}[kind]
    return _finite_or_none(func(x, y).statistic)


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rho (scipy); None with fewer than 3 pairs or a constant side."""
    return _correlation("spearman", a, b)


def pearson(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Pearson's r (scipy); None with fewer than 3 pairs or a constant side."""
    return _correlation("pearson", a, b)


def kendall(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Kendall's tau-b (scipy); None with fewer than 3 pairs or a constant side."""
    return _correlation("kendall", a, b)


# --------------------------------------------------------------------------- ICC


def _two_way_mean_squares(ratings: np.ndarray) -> tuple[float, float, float, int, int]:
    data = _as_float_array(ratings)
    if data.ndim != 2:
        raise ValueError(f"ratings must be 2-D (items × raters), got shape {data.shape}")
    data = data[~np.isnan(data).any(axis=1)]
    n, k = data.shape
    if n < 2 or k < 2:
        return math.nan, math.nan, math.nan, n, k
    grand = data.mean()
    ss_rows = k * float(((data.mean(axis=1) - grand) ** 2).sum())
    ss_cols = n * float(((data.mean(axis=0) - grand) ** 2).sum())
    ss_err = float(((data - grand) ** 2).sum()) - ss_rows - ss_cols
    return ss_rows / (n - 1), ss_cols / (k - 1), ss_err / ((n - 1) * (k - 1)), n, k


def icc_a1(ratings: np.ndarray) -> float | None:
    """ICC(A,1): two-way, absolute agreement, single rater (McGraw & Wong 1996; Shrout-Fleiss ICC(2,1)).

    ``ratings`` is items × raters; items with any missing rating are dropped (the ANOVA needs a
    complete design). None with fewer than 2 complete items or raters, or zero total variance.
    """
    msr, msc, mse, n, k = _two_way_mean_squares(ratings)
    if n < 2 or k < 2:  # no complete design (e.g. the judge scored none of the human-rated items)
        return None
    denominator = msr + (k - 1) * mse + k * (msc - mse) / n
    if not math.isfinite(denominator) or denominator == 0:
        return None
    return _finite_or_none((msr - mse) / denominator)


def icc_c1(ratings: np.ndarray) -> float | None:
    """ICC(C,1): two-way, consistency, single rater (McGraw & Wong 1996; Shrout-Fleiss ICC(3,1))."""
    msr, _, mse, n, k = _two_way_mean_squares(ratings)
    if n < 2 or k < 2:
        return None
    denominator = msr + (k - 1) * mse
    if not math.isfinite(denominator) or denominator == 0:
        return None
    return _finite_or_none((msr - mse) / denominator)


# --------------------------------------------------------------------------- errors and agreement rates


def mae(judge: Sequence[float], human: Sequence[float]) -> float | None:
    """Mean absolute error over pairwise-complete items."""
    x, y = _pairwise_complete(judge, human)
    return float(np.abs(x - y).mean()) if x.size else None


def rmse(judge: Sequence[float], human: Sequence[float]) -> float | None:
    """Root mean squared error over pairwise-complete items."""
    x, y = _pairwise_complete(judge, human)
    return float(np.sqrt(((x - y) ** 2).mean())) if x.size else None


def mean_bias(judge: Sequence[float], human: Sequence[float]) -> float | None:
    """Mean of judge minus human: positive means the judge is more lenient."""
    x, y = _pairwise_complete(judge, human)
    return float((x - y).mean()) if x.size else None


def exact_agreement(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Share of pairwise-complete items with identical scores (a proportion in [0, 1])."""
    x, y = _pairwise_complete(a, b)
    return float((x == y).mean()) if x.size else None


def within_one_agreement(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Share of pairwise-complete items whose scores differ by at most one point (|a - b| <= 1)."""
    x, y = _pairwise_complete(a, b)
    return float((np.abs(x - y) <= 1.0).mean()) if x.size else None


# --------------------------------------------------------------------------- judge as a rater


def alpha_with_judge(humans: np.ndarray, judge: Sequence[float], level: Level,
                     value_domain: Sequence[float] | None = None) -> float | None:
    """Alpha over the humans plus the judge as one more rater (humans: raters × units).

    None when the judge scored none of the units a human scored: the value would be the humans' own
    alpha, which says nothing about the judge.
    """
    human_rows, judge_row = _as_float_array(humans), _as_float_array(judge)
    if not (~np.isnan(judge_row) & (~np.isnan(human_rows)).any(axis=0)).any():
        return None
    data = np.vstack([human_rows, judge_row[None, :]])
    return krippendorff_alpha(data, level, value_domain)


def self_consistency(runs: np.ndarray, level: Level = "ordinal",
                     value_domain: Sequence[float] | None = None) -> float | None:
    """A judge's agreement with itself across repeated samples: alpha with each run as a rater."""
    return krippendorff_alpha(_as_float_array(runs), level, value_domain)


# --------------------------------------------------------------------------- alternative-annotator test


def alt_test(
    humans: np.ndarray,
    judge: Sequence[float],
    *,
    scoring: Literal["neg_rmse", "accuracy"] = "neg_rmse",
    epsilon: float = 0.2,
    q: float = 0.05,
    min_items: int = 2,
) -> dict[str, object] | None:
    """Alternative-annotator test (Calderon, Reichart & Dror 2025).

    For each human j (leave-one-annotator-out) and each item i that j and at least one other human
    rated, the judge and human j are both scored against the remaining humans (``neg_rmse``: minus
    the RMSE to their ratings; ``accuracy``: share of them giving the same label). W_f = 1 when the
    judge scores at least as well as j, W_h = 1 when j scores at least as well as the judge. The
    one-sided paired t-test of H0: mean(W_h - W_f) >= epsilon is run per human; p-values are
    adjusted with Benjamini-Yekutieli; the winning rate omega is the share of humans whose H0 is
    rejected at ``q``. The judge passes when omega >= 0.5. ``rho`` is the average advantage
    probability (mean over humans of the share of items where W_f = 1).

    ``humans`` is raters × items (``np.nan`` missing). None with fewer than 3 humans.
    """
    from scipy import stats  # loaded when needed: scipy.stats costs 0.4 s to import

    data = _as_float_array(humans)
    llm = _as_float_array(judge)
    if data.shape[0] < 3:
        return None
    p_values: list[float] = []
    rhos: list[float] = []
    for j in range(data.shape[0]):
        others = np.delete(data, j, axis=0)
        w_f: list[float] = []
        w_h: list[float] = []
        for i in range(data.shape[1]):
            refs = others[:, i][~np.isnan(others[:, i])]
            if np.isnan(data[j, i]) or np.isnan(llm[i]) or refs.size == 0:
                continue
            if scoring == "neg_rmse":
                s_f = -math.sqrt(float(((refs - llm[i]) ** 2).mean()))
                s_h = -math.sqrt(float(((refs - data[j, i]) ** 2).mean()))
            else:
                s_f, s_h = float((refs == llm[i]).mean()), float((refs == data[j, i]).mean())
            w_f.append(float(s_f >= s_h))
            w_h.append(float(s_h >= s_f))
        if len(w_f) < min_items:
            continue
        diff = np.asarray(w_h) - np.asarray(w_f)
        rhos.append(float(np.mean(w_f)))
        if np.ptp(diff) == 0:
            # A t-test is undefined without variance; the sign of the (exact) mean decides.
            p_values.append(0.0 if diff[0] < epsilon else 1.0)
        else:
            p_values.append(float(stats.ttest_1samp(diff, epsilon, alternative="less").pvalue))
    if len(p_values) < 3:
        return None
    adjusted = stats.false_discovery_control(np.asarray(p_values), method="by")
    omega = float((adjusted < q).mean())
    return {"winning_rate": omega, "passed": omega >= 0.5, "rho": float(np.mean(rhos)),
            "p_values": [float(p) for p in adjusted], "epsilon": epsilon, "q": q}
