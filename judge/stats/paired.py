"""Paired statistics of one score measured twice on the same items (two runs of the same items, after a rubric
or judge change): the mean paired difference with a bootstrap interval over items, the Wilcoxon signed-rank
test, and how many items moved up or down. Pure functions of plain numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from judge.stats.bootstrap import is_small_n, percentile_interval, resample_indices


@dataclass(frozen=True)
class PairedDifference:
    """B − A over the items scored in both runs. `wilcoxon_*` are None when no item changed (the test is undefined
    there); the interval is None without resamples or with fewer than two items."""

    n: int
    mean_a: float | None
    mean_b: float | None
    mean_difference: float | None
    ci_low: float | None
    ci_high: float | None
    small_n: bool  # n below judge.stats.bootstrap.SMALL_N: the interval understates the uncertainty
    changed: int  # items whose score differs
    moved_up: int
    moved_down: int
    changed_share: float | None
    wilcoxon_statistic: float | None
    wilcoxon_p: float | None


def paired_difference(
    a: Sequence[float],
    b: Sequence[float],
    *,
    n_bootstrap: int,
    seed: int,
    key: str = "",
    confidence: float = 0.95,
) -> PairedDifference:
    """Compare paired scores `a[i]`, `b[i]` (the same item in two runs).

    The interval is the percentile bootstrap of the mean difference, resampling items (the resamples depend on
    `seed` and `key` only, see `resample_indices`). The Wilcoxon signed-rank test (scipy, two-sided) is run on the
    non-zero differences: an item whose score did not move carries no sign (Wilcoxon's own treatment of zeros);
    scipy computes the exact p-value for small samples without ties and the normal approximation otherwise.
    """
    if len(a) != len(b):
        raise ValueError(f"paired scores of unequal length: {len(a)} and {len(b)}")
    n = len(a)
    if n == 0:
        return PairedDifference(0, None, None, None, None, None, True, 0, 0, 0, None, None, None)
    first, second = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    differences = second - first
    low = high = None
    if n_bootstrap > 0 and n > 1:
        means = differences[resample_indices(n, n_bootstrap, seed, key)].mean(axis=1)
        low, high = percentile_interval(means, n_bootstrap, confidence)
    moved = differences[differences != 0]
    statistic = p_value = None
    if moved.size:
        from scipy.stats import wilcoxon  # scipy loads only when a comparison has moved scores

        result = wilcoxon(moved)
        statistic, p_value = _finite(result.statistic), _finite(result.pvalue)
    return PairedDifference(
        n=n,
        mean_a=float(first.mean()),
        mean_b=float(second.mean()),
        mean_difference=float(differences.mean()),
        ci_low=low,
        ci_high=high,
        small_n=is_small_n(n),
        changed=int(moved.size),
        moved_up=int((moved > 0).sum()),
        moved_down=int((moved < 0).sum()),
        changed_share=moved.size / n,
        wilcoxon_statistic=statistic,
        wilcoxon_p=p_value,
    )


def _finite(value: float) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
