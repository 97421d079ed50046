"""Pure statistics of the scorecard: a metric's value over prompts with a seeded percentile-bootstrap
interval, ranks per suite and mean ranks per pillar. No I/O; tested with plain values."""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from judge.stats.agreement import cohen_kappa
from judge.stats.bootstrap import resample_indices

CONFIDENCE = 0.95
RANK_DECIMALS = 12
"""Values are rounded to this many decimals before ranking, so float noise never breaks a tie."""


@dataclass(frozen=True)
class Summary:
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    se: float | None = None


def mean_summary(values: Sequence[float], n_bootstrap: int, seed: int, key: str) -> Summary:
    """Mean over prompts; percentile-bootstrap interval over prompts; standard error sd/√n (ddof 1).

    The standard error is what a normal-approximation interval (mean ± 1.96·se, as the TrustMH
    authors report for their judged means) is built from.
    """
    data = np.asarray(values, dtype=float)
    n = int(data.size)
    if n == 0:
        return Summary(None, None, None, 0)
    se = float(np.std(data, ddof=1) / math.sqrt(n)) if n > 1 else None
    low = high = None
    if n_bootstrap > 0 and n > 1:
        # The mean of every resample at once; the same percentile rule as calibration's percentile_ci.
        resampled = data[resample_indices(n, n_bootstrap, seed, key)].mean(axis=1)
        low, high = (float(q) for q in np.quantile(resampled, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2]))
    return Summary(float(data.mean()), low, high, n, se)


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson r, or None when it is undefined (fewer than two pairs, or a constant side)."""
    a = np.asarray(x, dtype=float)
    b = np.asarray(y, dtype=float)
    if a.size < 2 or a.size != b.size or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    from scipy import stats  # loaded when a correlation is computed: scipy.stats costs 0.4 s to import

    return float(stats.pearsonr(a, b).statistic)


def pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair of two equally shaped 2-D arrays (NaN where a row is constant)."""
    da = a - a.mean(axis=1, keepdims=True)
    db = b - b.mean(axis=1, keepdims=True)
    denominator = np.sqrt((da * da).sum(axis=1) * (db * db).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (da * db).sum(axis=1) / denominator, np.nan)


def pearson_summary(x: Sequence[float], y: Sequence[float], n_bootstrap: int, seed: int, key: str) -> Summary:
    """Pearson r over prompts, with a bootstrap interval over prompts (resamples where r is undefined
    are skipped; more than half undefined → no interval, as calibration's percentile_ci)."""
    a = np.asarray(x, dtype=float)
    b = np.asarray(y, dtype=float)
    n = int(a.size)
    value = pearson(a, b)
    low = high = None
    if value is not None and n_bootstrap > 0:
        indices = resample_indices(n, n_bootstrap, seed, key)
        rs = pearson_rows(a[indices], b[indices])
        rs = rs[~np.isnan(rs)]
        if rs.size >= max(2, n_bootstrap // 2):
            low, high = (float(q) for q in np.quantile(rs, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2]))
    return Summary(value, low, high, n)


def kappa_summary(pairs: Sequence[Sequence[tuple[float, float]]], n_bootstrap: int, seed: int, key: str) -> Summary:
    """Cohen's kappa between predicted and reference category codes, with a bootstrap interval over prompts.

    `pairs` holds, per prompt, one (predicted code, reference code) pair per sample; a resample draws
    prompts and keeps all their pairs. Categories are the union of every code seen, so an "unreadable"
    code that never occurs as a reference counts as disagreement and adds nothing to chance agreement.
    Resamples where kappa is undefined are skipped; more than half undefined → no interval.
    """
    n = len(pairs)
    flat = [pair for prompt in pairs for pair in prompt]
    if not flat:
        return Summary(None, None, None, 0)
    categories = sorted({code for pair in flat for code in pair})
    value = cohen_kappa([p for p, _ in flat], [r for _, r in flat], categories)
    low = high = None
    if value is not None and n_bootstrap > 0 and n > 1:
        kappas = []
        for row in resample_indices(n, n_bootstrap, seed, key):
            drawn = [pair for i in row for pair in pairs[int(i)]]
            kappa = cohen_kappa([p for p, _ in drawn], [r for _, r in drawn], categories)
            if kappa is not None:
                kappas.append(kappa)
        if len(kappas) >= max(2, n_bootstrap // 2):
            low, high = (float(q) for q in np.quantile(kappas, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2]))
    return Summary(value, low, high, n)


@dataclass(frozen=True)
class Disparity:
    """The spread of group means for one dimension (or overall): standard deviation and largest gap."""

    sd: Summary
    gap: Summary


def _spread(means: np.ndarray, dimension_columns: Mapping[str, Sequence[int]]) -> dict[str | None, np.ndarray]:
    """Per row of group means: each dimension's population standard deviation and max-min gap, and overall
    (mean of the dimensions' standard deviations, largest gap). NaN where a group of the dimension has no
    value, or where the dimension has fewer than two groups."""
    sds, gaps = {}, {}
    for dimension, columns in dimension_columns.items():
        block = means[:, list(columns)]
        if block.shape[1] < 2:
            sds[dimension] = gaps[dimension] = np.full(means.shape[0], np.nan)
            continue
        sds[dimension] = block.std(axis=1)  # NaN propagates: a group without data voids the resample
        gaps[dimension] = block.max(axis=1) - block.min(axis=1)
    out: dict[str | None, np.ndarray] = {}
    for dimension in dimension_columns:
        out[dimension] = np.stack([sds[dimension], gaps[dimension]])
    if dimension_columns:
        out[None] = np.stack([np.mean(list(sds.values()), axis=0), np.max(list(gaps.values()), axis=0)])
    return out


def disparity_summaries(
    values: Mapping[tuple[str, str], float], n_bootstrap: int, seed: int, key: str
) -> dict[str | None, Disparity]:
    """Disparity of group means, per dimension and overall, with a percentile bootstrap over units.

    `values` maps (unit, group label "dimension:value") to one value, e.g. (dialogue, "race:Black") to the
    judged support score of that dialogue's Black-persona variant. A group's mean is over the units that
    have it; a dimension's standard deviation is taken over its group means with ddof 0 (the groups are
    the whole population compared, not a sample of groups); the gap is the largest minus the smallest
    group mean. Overall: the mean of the dimensions' standard deviations and the largest gap. The
    bootstrap resamples units (each resampled unit brings all its variants), so the interval reflects
    how much the spread depends on which dialogues were asked; resamples where a group has no unit are
    skipped, and more than half skipped means no interval. `n` is the number of units.
    """
    units = list(dict.fromkeys(unit for unit, _ in values))
    groups = sorted({group for _, group in values})
    dimension_columns: dict[str, list[int]] = {}
    for column, group in enumerate(groups):
        dimension_columns.setdefault(group.split(":", 1)[0], []).append(column)
    matrix = np.full((len(units), len(groups)), np.nan)
    unit_row = {u: i for i, u in enumerate(units)}
    group_column = {g: i for i, g in enumerate(groups)}
    for (unit, group), value in values.items():
        matrix[unit_row[unit], group_column[group]] = value
    present = (~np.isnan(matrix)).astype(float)
    filled = np.nan_to_num(matrix)

    def group_means(weights: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return (weights @ filled) / (weights @ present)

    point = _spread(group_means(np.ones((1, len(units)))), dimension_columns)
    intervals: dict[str | None, list[tuple[float | None, float | None]]] = {d: [(None, None)] * 2 for d in point}
    n = len(units)
    if n_bootstrap > 0 and n > 1:
        indices = resample_indices(n, n_bootstrap, seed, key)
        counts = np.zeros((n_bootstrap, n))
        np.add.at(counts, (np.arange(n_bootstrap)[:, None], indices), 1.0)
        resampled = _spread(group_means(counts), dimension_columns)
        for dimension, both in resampled.items():
            bounds = []
            for row in both:
                valid = row[~np.isnan(row)]
                if valid.size >= max(2, n_bootstrap // 2):
                    low, high = np.quantile(valid, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
                    bounds.append((float(low), float(high)))
                else:
                    bounds.append((None, None))
            intervals[dimension] = bounds
    result = {}
    for dimension, both in point.items():
        sd, gap = (None if np.isnan(v[0]) else float(v[0]) for v in both)
        (sd_low, sd_high), (gap_low, gap_high) = intervals[dimension]
        result[dimension] = Disparity(
            Summary(sd, sd_low if sd is not None else None, sd_high if sd is not None else None, n),
            Summary(gap, gap_low if gap is not None else None, gap_high if gap is not None else None, n),
        )
    return result


def rank_targets(values: Mapping[str, float | None], higher_is_better: bool,
                 tie_break: Mapping[str, float | None] | None = None) -> dict[str, int]:
    """Rank 1 = best. Ties share the best rank of their block ("1, 2, 2, 4"); targets without a value
    are not ranked. `tie_break` (higher is better) orders the targets within a tie: one it holds no value
    for comes after those it does, and equal tie-break values still share their rank."""
    known = {t: round(v, RANK_DECIMALS) for t, v in values.items() if v is not None and not math.isnan(v)}
    second = {t: v for t, v in (tie_break or {}).items() if v is not None and not math.isnan(v)}
    keys = {t: (-v if higher_is_better else v, -second.get(t, -math.inf)) for t, v in known.items()}
    ordered = sorted(keys.values())
    return {t: bisect.bisect_left(ordered, key) + 1 for t, key in keys.items()}


def pillar_mean_ranks(
    ranks: Mapping[str, Mapping[str, int]], pillar_of: Mapping[str, str]
) -> dict[str, dict[str, float]]:
    """Mean rank of each target over the ranked suites of each pillar (over the suites that rank it)."""
    collected: dict[str, dict[str, list[int]]] = {}
    for suite, by_target in ranks.items():
        pillar = pillar_of[suite]
        for target, rank in by_target.items():
            collected.setdefault(pillar, {}).setdefault(target, []).append(rank)
    return {
        pillar: {target: float(np.mean(rs)) for target, rs in by_target.items()}
        for pillar, by_target in collected.items()
    }


CLEAN_LEVEL = "clean"


def paired_deltas(
    values: Mapping[str, float], pairing: Mapping[str, tuple[str, str]]
) -> dict[str | None, dict[str, float]]:
    """Per perturbation level (None: all levels together), each clean prompt's change: the mean value of
    its variants at that level minus its own value.

    `values` maps prompt id → value (already averaged over samples); `pairing` maps prompt id →
    (clean prompt id, level), the clean prompt being paired with itself at level "clean". A variant whose
    clean prompt has no value, and a clean prompt without variants, pair with nothing and are left out.
    """
    variants: dict[str, dict[str, list[float]]] = {}  # clean id -> level -> variant values
    for prompt_id, value in values.items():
        clean_id, level = pairing[prompt_id]
        if level != CLEAN_LEVEL:
            variants.setdefault(clean_id, {}).setdefault(level, []).append(value)
    deltas: dict[str | None, dict[str, float]] = {}
    for clean_id, by_level in variants.items():
        if clean_id not in values:
            continue
        clean = values[clean_id]
        for level, vs in by_level.items():
            deltas.setdefault(level, {})[clean_id] = float(np.mean(vs)) - clean
        every = [v for vs in by_level.values() for v in vs]
        deltas.setdefault(None, {})[clean_id] = float(np.mean(every)) - clean
    return deltas
