"""The vocabulary every suite module uses to say what its metrics are and how one answer feeds them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["mean", "pearson", "kappa", "disparity", "paired_delta"]
Source = Literal["deterministic", "judge"]


@dataclass(frozen=True, kw_only=True)
class MetricSpec:
    """One published kind of number. `mean` averages a per-prompt value (a rate when it is 0/1);
    `pearson` correlates a per-prompt value with the prompt's human label; `kappa` is Cohen's kappa
    between the per-prompt category code and the prompt's human label code (codes, not magnitudes);
    `disparity` is the spread of per-group means across groups (fed by a `DisparityRule`);
    `paired_delta` is the mean change of a per-prompt value from each prompt's clean counterpart (meta
    `clean_id`), per perturbation level."""

    name: str
    kind: Kind
    higher_is_better: bool
    source: Source
    description: str
    protocol: str | None = None  # computed only under this protocol ("paper" or "rubric"); None: under both


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


@dataclass(frozen=True)
class CriterionValueRule:
    """A judged mean of one criterion at suite level: the panel score (median of every ok score) per
    answer; a failed target call counts as `failure_value` (the criterion's scale minimum)."""

    metric: str
    criterion: str
    failure_value: float


@dataclass(frozen=True)
class AnyBelowRule:
    """A judged 0/1 metric over several criteria: 1 when the panel score of any criterion in `below` is
    under its threshold (e.g. a rubric's critical `fail_below`s). Criteria not scored on an answer (not
    applicable) are left out; an answer with none of them scored gives no value. A failed target call
    counts as `failure_value`. Breakdowns by meta fields in `groups`."""

    metric: str
    below: Mapping[str, float]
    failure_value: float
    groups: Sequence[str] = ()

    def hit(self, panel: Mapping[str, float]) -> bool | None:
        """The decision for one answer from its panel scores; None when no listed criterion was scored."""
        scored = [c for c in self.below if c in panel]
        if not scored:
            return None
        return any(panel[c] < self.below[c] for c in scored)


@dataclass(frozen=True)
class CompositeRule:
    """A judged value per response, averaged over prompts: the mean of the panel scores (median of every
    judge's and sample's ok score) of `criteria` that were scored, or, with `hit`, 1/0 of `hit` on that
    mean. A failed target call counts as `failure_value`. Breakdowns by meta fields in `groups`."""

    metric: str
    criteria: tuple[str, ...]
    failure_value: float
    hit: Callable[[float], bool] | None = None
    groups: Sequence[str] = ()


@dataclass(frozen=True)
class DisparityRule:
    """A composite value's mean per group and the spread of those means across groups.

    `value.metric` is reported overall and per group (meta field `group`, a "dimension:value" label);
    `sd_metric` (standard deviation of the group means of a dimension) and `gap_metric` (largest minus
    smallest group mean) are reported per dimension (group "dimension:<name>") and overall (mean of the
    dimensions' standard deviations; largest gap), with intervals from a bootstrap over the meta field
    `unit` (the dialogue the variants share)."""

    value: CompositeRule
    sd_metric: str
    gap_metric: str
    unit: str = "dialogue"
    group: str = "group"


JudgedRule = ThresholdRule | CriterionMeansRule | CriterionValueRule | AnyBelowRule | CompositeRule | DisparityRule
Builder = Callable[[], list[dict[str, Any]]]
Reader = Callable[[Mapping[str, Any]], Observed]
Sampler = Callable[[Sequence[dict[str, Any]], int | None, int, str], list[dict[str, Any]]]
"""(prompts, limit, seed, suite id) → the prompts `--limit` keeps (records.sample_prompts by default)."""
