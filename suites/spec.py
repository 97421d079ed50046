"""The vocabulary every suite module uses to say what its metrics are and how one answer feeds them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["mean", "pearson"]
Source = Literal["deterministic", "judge"]


@dataclass(frozen=True)
class MetricSpec:
    """One published kind of number. `mean` averages a per-prompt value (a rate when it is 0/1);
    `pearson` correlates a per-prompt value with the prompt's human label."""

    name: str
    kind: Kind
    higher_is_better: bool
    source: Source
    description: str


@dataclass(frozen=True)
class Observation:
    """One answer's contribution to one metric: `value` (and the human label for pearson)."""

    metric: str
    value: float
    group: str | None = None
    label: float | None = None


@dataclass(frozen=True)
class Observed:
    """What the deterministic reader made of one target call; `unparsed` lists the answer as unreadable."""

    observations: tuple[Observation, ...]
    unparsed: bool = False


@dataclass(frozen=True)
class ThresholdRule:
    """A judged 0/1 metric: the panel score of `criterion` (median of every judge's and sample's ok score)
    decides `hit`; a failed target call counts as `failure_value`. Breakdowns by meta fields in `groups`."""

    metric: str
    criterion: str
    hit: Callable[[float], bool]
    failure_value: float
    groups: Sequence[str] = ()


@dataclass(frozen=True)
class CriterionMeansRule:
    """A judged mean per criterion (group "criterion:<id>"); a failed target call counts as the
    criterion's scale minimum, looked up in `scale_min` (bundled rubric criteria are added at run time)."""

    metric: str = "mean_score"
    scale_min: Mapping[str, float] = field(default_factory=dict)


JudgedRule = ThresholdRule | CriterionMeansRule
Builder = Callable[[], list[dict[str, Any]]]
Reader = Callable[[Mapping[str, Any]], Observed]
