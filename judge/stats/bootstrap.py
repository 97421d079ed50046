"""Percentile bootstrap over items: confidence intervals that respect the item as the unit of sampling."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

SMALL_N = 30
"""Intervals from fewer items than this carry a small-n warning: a percentile bootstrap resamples only the items
it has, so on a handful of them it understates the uncertainty (on 4 items of one value it collapses to a point)."""


def is_small_n(n: int | None) -> bool:
    """Whether an interval over `n` items is to be read with the small-n warning (`SMALL_N`)."""
    return n is not None and n < SMALL_N


def resample_indices(n_items: int, n_resamples: int, seed: int, key: str = "") -> np.ndarray:
    """``n_resamples`` × ``n_items`` indices drawn with replacement.

    The stream depends only on ``seed`` and ``key`` (e.g. the criterion), so adding a judge or a metric
    never changes another interval, and every metric of one criterion sees the same resamples.
    """
    rng = np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])
    return rng.integers(0, n_items, size=(n_resamples, n_items))


def percentile_ci(
    statistic: Callable[[np.ndarray], float | None],
    indices: np.ndarray,
    confidence: float = 0.95,
) -> tuple[float | None, float | None]:
    """Percentile interval of ``statistic`` over resampled item indices.

    Resamples where the statistic is undefined are skipped; when more than half are undefined the
    interval is reported as unknown rather than built from a biased remainder.
    """
    if indices.size == 0:
        return None, None
    values = [v for v in (statistic(row) for row in indices) if v is not None]
    return percentile_interval(np.asarray(values, dtype=float), indices.shape[0], confidence)


def percentile_interval(
    values: np.ndarray, n_resamples: int, confidence: float = 0.95
) -> tuple[float | None, float | None]:
    """Percentile interval of a statistic's values over ``n_resamples`` resamples (NaN: undefined there).

    The rule of :func:`percentile_ci`, for statistics computed for all resamples at once.
    """
    defined = values[~np.isnan(values)]
    if n_resamples == 0 or defined.size < max(2, n_resamples // 2):
        return None, None
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(defined, [tail, 1.0 - tail])
    return float(low), float(high)
