"""Panel logic: one decision per item × pillar × criterion from several judges and samples.

Pure functions over verdict dicts (lines of `verdicts.jsonl`) and rubrics; no I/O. Disagreement is
reported, never averaged away: every judge's samples stay in the row next to the aggregate.

How a decision is made
----------------------
1. Samples. The K samples of one judge are reduced first, with the panel's method, over the judge's
   `ok` samples; `failed` samples are dropped and counted. A judge whose non-failed samples are mostly
   `not_applicable` (more n/a than scored) is n/a; a judge with no non-failed sample is `failed`.
2. Judges. Failed judges, and with `exclude_self` judges of the target's own family, take no part.
   If more of the remaining judges say n/a than give a score, the row is `not_applicable` (a tie goes
   to scoring: the safer side, since n/a would skip the check). Otherwise fewer than `min_judges`
   scoring judges makes the row `undecided` (no score); else the judges' scores are aggregated.
3. Methods. `median` (of an even count may be x.5), `mean`, `trimmed_mean` (scipy's `trim_mean`:
   ⌊trim·n⌋ values cut from each end, so with fewer than 1/trim values it equals the mean) and
   `majority` (the most frequent value; on a tie the *lowest* tied value, the fail-safe choice since
   low scores are the bad ones).
4. Critical criteria fail closed: the row fails when the aggregate, unrounded, is strictly below
   `fail_below` — a median of 2.5 with `fail_below: 3` fails.
5. Tie-breaker. Verdicts with role "tiebreak" are kept apart in `tiebreak`. For an escalated row the
   tie-breaker joins the panel as one more judge and steps 2–4 are redone (it counts towards
   `min_judges`); `decided_by` then says "tiebreak". Escalation flags stay those of the panel alone, so
   the row still reaches human review with the tie-breaker's opinion beside the others. On a row
   that is not escalated a tie-breaker verdict is recorded and changes nothing.
6. A verdict repeated for the same (item, pillar, criterion, judge, role, sample) counts once: the
   last line wins, as a re-asked answer supersedes the earlier one.

Panel rows are `judge.log.PanelRow` (its fields are described there), one per item × pillar × criterion,
sorted by item id, pillar and rubric order.
"""

from __future__ import annotations

import math
import statistics
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import combinations
from typing import TYPE_CHECKING, Any, Literal

from judge.errors import UsageError
from judge.families import model_family
from judge.log import PanelCounts as CountsRecord
from judge.log import PanelJudge, PanelRow, ReviewJudgment, ReviewRow, document
from judge.rubric import Criterion, Rubric

if TYPE_CHECKING:  # numpy loads when agreement is computed, not at start-up
    import numpy as np

Method = Literal["median", "mean", "majority", "trimmed_mean"]
METHODS: tuple[str, ...] = ("median", "mean", "majority", "trimmed_mean")
STATUSES = ("ok", "failed", "not_applicable")
DISAGREEMENT_REASONS = frozenset({"disagreement", "inconsistent_samples", "applicability_split", "critical_split"})


@dataclass(frozen=True)
class PanelOptions:
    """How judges and samples are combined; `spread_threshold` is a fraction of the scale range."""

    method: Method = "median"
    trim: float = 0.2
    min_judges: int = 1
    spread_threshold: float = 0.5
    escalate_critical_split: bool = True
    exclude_self: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise PanelOptionError(
                f"{self.method!r}: unknown aggregation method; choose one of {', '.join(METHODS)}", field="method"
            )
        if not 0 <= self.trim < 0.5:
            raise PanelOptionError(f"{self.trim}: must be in [0, 0.5), the share cut from each end", field="trim")
        if self.min_judges < 1:
            raise PanelOptionError(f"{self.min_judges}: min_judges must be at least 1", field="min_judges")
        if not 0 < self.spread_threshold <= 1:
            raise PanelOptionError(
                f"{self.spread_threshold}: a fraction of the scale range in (0, 1]", field="spread_threshold"
            )


class PanelOptionError(UsageError, ValueError):
    """A panel setting out of its range; `field` names it."""


def aggregate_scores(values: Sequence[float], method: Method, trim: float = 0.2) -> float:
    """One value from several scores; `majority` breaks ties towards the lowest (fail-safe) value."""
    if not values:
        raise ValueError("cannot aggregate an empty list of scores")
    if method == "median":
        return float(statistics.median(values))
    if method == "mean":
        return statistics.fmean(values)
    if method == "trimmed_mean":
        from scipy.stats import trim_mean  # scipy and krippendorff load on first use: start-up stays short

        return float(trim_mean(values, trim))
    if method == "majority":
        counts = Counter(values)
        top = max(counts.values())
        return float(min(v for v, c in counts.items() if c == top))
    raise ValueError(f"unknown aggregation method {method!r}")


def spread_threshold_points(criterion: Criterion, fraction: float) -> int:
    """Disagreement threshold in whole scale points: ⌈fraction × range⌉, at least 1 (2 on 1–5, 1 on 0–1)."""
    span = criterion.scale.max - criterion.scale.min
    return max(1, math.ceil(round(fraction * span, 9)))


def verdict_problem(verdict: Mapping[str, Any], rubrics: Mapping[str, Rubric]) -> str | None:
    """Why a verdict cannot enter a panel (unknown criterion, bad status, score off the scale), or None."""
    pillar, cid = verdict.get("pillar"), verdict.get("criterion")
    if pillar not in rubrics:
        return f"pillar {pillar!r} has no rubric (known: {', '.join(sorted(rubrics))})"
    try:
        criterion = rubrics[pillar].criterion(cid)
    except KeyError:
        return f"criterion {cid!r} is not in the {pillar} rubric"
    status, score = verdict.get("status"), verdict.get("score")
    if status not in STATUSES:
        return f"status {status!r} is not one of {', '.join(STATUSES)}"
    if status == "ok":
        if not isinstance(score, int) or isinstance(score, bool):
            return f"an ok verdict needs an integer score, got {score!r}"
        if score not in criterion.scale.points:
            return f"score {score} is outside the scale {criterion.scale.min}..{criterion.scale.max}"
    elif score is not None:
        return f"a {status} verdict must carry no score, got {score!r}"
    return None


# --------------------------------------------------------------------------- per-judge reduction


@dataclass
class _Judge:
    name: str
    model: str | None
    self_family: bool
    excluded: bool
    samples: list[int] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    scores: list[int | None] = field(default_factory=list)
    status: str = "failed"
    score: float | None = None

    @property
    def ok_scores(self) -> list[int]:
        return [s for s, st in zip(self.scores, self.statuses, strict=True) if st == "ok" and s is not None]

    @property
    def sample_spread(self) -> int | None:
        ok = self.ok_scores
        return max(ok) - min(ok) if ok else None

    @property
    def takes_part(self) -> bool:
        return not self.excluded and self.status != "failed"

    def entry(self) -> PanelJudge:
        return {
            "model": self.model,
            "self_family": self.self_family,
            "excluded": self.excluded,
            "status": self.status,
            "score": _number(self.score),
            "sample_spread": self.sample_spread,
            "samples": self.samples,
            "scores": self.scores,
            "statuses": self.statuses,
        }


def _number(value: float | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else round(float(value), 4)


def _reduce_judges(verdicts: Iterable[Mapping[str, Any]], options: PanelOptions) -> dict[str, _Judge]:
    judges: dict[str, _Judge] = {}
    for v in sorted(verdicts, key=lambda v: (v["judge"], v.get("sample", 0))):
        self_family = bool(v.get("self_family", False))
        judge = judges.setdefault(
            v["judge"], _Judge(v["judge"], v.get("model"), self_family, options.exclude_self and self_family)
        )
        judge.samples.append(v.get("sample", 0))
        judge.statuses.append(v["status"])
        judge.scores.append(v["score"] if v["status"] == "ok" else None)
    for judge in judges.values():
        ok = judge.ok_scores
        n_na = judge.statuses.count("not_applicable")
        if not ok and not n_na:
            judge.status = "failed"
        elif n_na > len(ok):
            judge.status = "not_applicable"
        else:
            judge.status = "ok"
            judge.score = aggregate_scores(ok, options.method, options.trim)
    return judges


def _decide(
    judges: Iterable[_Judge], criterion: Criterion, options: PanelOptions
) -> tuple[str, float | None, bool | None]:
    """(status, aggregate, critical_fail) from the judges taking part."""
    active = [j for j in judges if j.takes_part]
    scoring = [j.score for j in active if j.status == "ok" and j.score is not None]
    n_na = sum(j.status == "not_applicable" for j in active)
    if n_na > len(scoring):
        return "not_applicable", None, None
    if len(scoring) < options.min_judges:
        return "undecided", None, None
    score = aggregate_scores(scoring, options.method, options.trim)
    critical_fail = None
    if criterion.severity == "critical" and criterion.fail_below is not None:
        critical_fail = score < criterion.fail_below
    return "decided", score, critical_fail


# --------------------------------------------------------------------------- panel rows


def _dedupe(verdicts: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    latest: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for v in verdicts:
        key = (v["item_id"], v["pillar"], v["criterion"], v["judge"], v.get("role", "panel"), v.get("sample", 0))
        latest[key] = v
    return list(latest.values())


def _group(
    verdicts: Iterable[Mapping[str, Any]], rubrics: Mapping[str, Rubric]
) -> dict[tuple[str, str, str], list[Mapping[str, Any]]]:
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for v in _dedupe(verdicts):
        problem = verdict_problem(v, rubrics)
        if problem:
            raise ValueError(
                f"verdict {v.get('item_id')}/{v.get('pillar')}/{v.get('criterion')} by {v.get('judge')} "
                f"sample {v.get('sample', 0)}: {problem}"
            )
        groups[(v["item_id"], v["pillar"], v["criterion"])].append(v)
    return groups


def _order(rubrics: Mapping[str, Rubric]) -> dict[tuple[str, str], int]:
    return {(p, c.id): i for p, r in rubrics.items() for i, c in enumerate(r.criteria)}


def build_panel(
    verdicts: Iterable[Mapping[str, Any]], rubrics: Mapping[str, Rubric], options: PanelOptions
) -> list[PanelRow]:
    """One row per item × pillar × criterion (`judge.log.PanelRow`); raises ValueError on a
    verdict that names an unknown criterion or carries an impossible score."""
    order = _order(rubrics)
    rows: list[PanelRow] = []
    groups = _group(verdicts, rubrics)
    for item_id, pillar, cid in sorted(groups, key=lambda k: (k[0], k[1], order[(k[1], k[2])])):
        rows.append(
            _panel_row(item_id, pillar, rubrics[pillar].criterion(cid), groups[(item_id, pillar, cid)], options)
        )
    return rows


class PanelCounts:
    """The panel part of `summary.json` (`judge.log.PanelCounts`, whose fields it counts), added up one panel
    row at a time."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(CountsRecord.model_fields, 0)

    def add(self, row: PanelRow) -> None:
        counts = self.counts
        counts["rows"] += 1
        if row["status"] in ("decided", "undecided", "not_applicable"):
            counts[row["status"]] += 1
        counts["critical_fail"] += bool(row["critical_fail"])
        counts["escalated"] += bool(row["escalate"])
        counts["decided_by_tiebreak"] += row["decided_by"] == "tiebreak"


def _panel_row(
    item_id: str, pillar: str, criterion: Criterion, verdicts: list[Mapping[str, Any]], options: PanelOptions
) -> PanelRow:
    panel = _reduce_judges([v for v in verdicts if v.get("role", "panel") != "tiebreak"], options)
    tiebreak = _reduce_judges([v for v in verdicts if v.get("role", "panel") == "tiebreak"], options)
    threshold = spread_threshold_points(criterion, options.spread_threshold)
    status, score, critical_fail = _decide(panel.values(), criterion, options)

    active = [j for j in panel.values() if j.takes_part]
    scoring = [j for j in active if j.status == "ok" and j.score is not None]
    scores = [j.score for j in scoring if j.score is not None]
    n_na = sum(j.status == "not_applicable" for j in active)
    spread = max(scores) - min(scores) if scores else None
    votes = sorted(Counter(scores).values(), reverse=True)
    vote_margin = votes[0] - (votes[1] if len(votes) > 1 else 0) if votes else None

    split = (
        criterion.severity == "critical"
        and criterion.fail_below is not None
        and critical_fail is not True
        and any(s < criterion.fail_below for j in active for s in j.ok_scores)
    )
    reasons = []
    if status == "undecided":
        reasons.append("undecided")
    if spread is not None and spread >= threshold:
        reasons.append("disagreement")
    if any((j.sample_spread or 0) >= threshold for j in active):
        reasons.append("inconsistent_samples")
    if n_na and scoring:
        reasons.append("applicability_split")
    if split and options.escalate_critical_split:
        reasons.append("critical_split")
    compared = sum(st != "failed" for j in active for st in j.statuses)
    disagree = bool(set(reasons) & DISAGREEMENT_REASONS) or split

    decided_by = "panel"
    if reasons and any(j.takes_part for j in tiebreak.values()):
        status, score, critical_fail = _decide([*panel.values(), *tiebreak.values()], criterion, options)
        decided_by = "tiebreak"

    target = next((v.get("target") for v in verdicts if v.get("target")), None)
    return {
        "item_id": item_id,
        "pillar": pillar,
        "criterion": criterion.id,
        "severity": criterion.severity,
        "scale": {"min": criterion.scale.min, "max": criterion.scale.max},
        "fail_below": criterion.fail_below,
        "target": target,
        "method": options.method,
        "min_judges": options.min_judges,
        "status": status,
        "score": _number(score),
        "critical_fail": critical_fail,
        "decided_by": decided_by,
        "judges": {name: j.entry() for name, j in panel.items()},
        "tiebreak": {name: j.entry() for name, j in tiebreak.items()},
        "n_judges": len(panel),
        "n_ok": len(scoring),
        "n_not_applicable": n_na,
        "n_failed": sum(j.status == "failed" and not j.excluded for j in panel.values()),
        "n_excluded": sum(j.excluded for j in panel.values()),
        "n_failed_samples": sum(st == "failed" for j in panel.values() for st in j.statuses),
        "self_family_judges": sorted(name for name, j in panel.items() if j.self_family),
        "spread": _number(spread),
        "spread_threshold": threshold,
        "vote_margin": vote_margin,
        "agreement": None if compared < 2 else not disagree,
        "escalate": bool(reasons),
        "escalate_reasons": reasons,
    }


# --------------------------------------------------------------------------- review queue


def _why(row: Mapping[str, Any]) -> list[str]:
    """Each escalation reason of a panel row in words a clinician can act on."""
    judges: Mapping[str, Mapping[str, Any]] = row["judges"]
    taking_part = {n: j for n, j in judges.items() if not j["excluded"] and j["status"] != "failed"}
    texts = []
    for reason in row["escalate_reasons"]:
        if reason == "undecided":
            texts.append(
                f"undecided: {row['n_ok']} judge(s) gave a usable score, {row['min_judges']} required "
                f"({row['n_failed']} failed, {row['n_excluded']} excluded as same family as the target)"
            )
        elif reason == "disagreement":
            scores = ", ".join(f"{n}: {j['score']}" for n, j in taking_part.items() if j["status"] == "ok")
            texts.append(
                f"disagreement: judges' scores span {row['spread']} points (threshold {row['spread_threshold']})"
                f" — {scores}"
            )
        elif reason == "inconsistent_samples":
            unstable = ", ".join(
                f"{n} gave {[s for s in j['scores'] if s is not None]}"
                for n, j in taking_part.items()
                if (j["sample_spread"] or 0) >= row["spread_threshold"]
            )
            texts.append(f"inconsistent samples: {unstable}")
        elif reason == "applicability_split":
            texts.append(
                f"applicability split: {row['n_not_applicable']} judge(s) found the criterion not applicable, "
                f"{row['n_ok']} scored it"
            )
        elif reason == "critical_split":
            low = ", ".join(
                f"{n} ({min(s for s in j['scores'] if s is not None)})"
                for n, j in taking_part.items()
                if any(s is not None and s < row["fail_below"] for s in j["scores"])
            )
            texts.append(
                f"critical split: {low} scored below the fail line {row['fail_below']}, "
                f"but the panel's result is {row['status']} with score {row['score']}"
            )
    return texts


def review_entries(
    panel_rows: Iterable[Mapping[str, Any]],
    verdicts: Iterable[Mapping[str, Any]],
    items_by_id: Mapping[str, Mapping[str, Any]],
    rubrics: Mapping[str, Rubric],
) -> list[dict[str, Any]]:
    """Lines of review.jsonl (`judge.log.ReviewRow`): everything a clinician needs to decide one escalated row."""
    by_row: dict[tuple[str, str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for v in _dedupe(verdicts):
        by_row[(v["item_id"], v["pillar"], v["criterion"])].append(v)
    entries = []
    for row in panel_rows:
        if not row["escalate"]:
            continue
        key = (row["item_id"], row["pillar"], row["criterion"])
        item = items_by_id.get(row["item_id"])
        if item is None:
            raise ValueError(f"item {row['item_id']!r} is escalated but missing from the items")
        criterion = rubrics[row["pillar"]].criterion(row["criterion"])
        judgments: list[ReviewJudgment] = [
            {
                "judge": v["judge"],
                "role": v.get("role", "panel"),
                "model": v.get("model"),
                "sample": v.get("sample", 0),
                "status": v["status"],
                "score": v.get("score"),
                "rationale": v.get("rationale"),
                "evidence": v.get("evidence") or [],
                "error": v.get("error"),
                "self_family": bool(v.get("self_family", False)),
                "excluded": row["tiebreak" if v.get("role") == "tiebreak" else "judges"][v["judge"]]["excluded"],
            }
            for v in sorted(
                by_row[key], key=lambda v: (v.get("role", "panel") == "tiebreak", v["judge"], v.get("sample", 0))
            )
        ]
        entry = ReviewRow(
            item_id=row["item_id"],
            pillar=row["pillar"],
            criterion=row["criterion"],
            severity=criterion.severity,
            question=criterion.question,
            scale=row["scale"],
            anchors={str(k): criterion.anchors[k] for k in sorted(criterion.anchors)},
            fail_below=criterion.fail_below,
            target=row["target"],
            messages=item.get("messages") or [],
            response=item.get("response"),
            reference=item.get("reference"),
            panel={k: row[k] for k in ("status", "score", "critical_fail", "decided_by", "method", "spread")},
            escalate_reasons=row["escalate_reasons"],
            why=_why(row),
            judgments=judgments,
        )
        entries.append(document(entry))
    return entries


# --------------------------------------------------------------------------- agreement


class AgreementTable:
    """What `judge_agreement` needs, kept as small numbers: per pillar × criterion the judges seen, the
    number of items (columns), and for each ok panel verdict four integers (column, judge, sample,
    score) in typed arrays, about 14 bytes a verdict. Rows must come with each item's verdicts of a
    criterion together (a column closes when another item's verdict arrives), without repeats.
    """

    def __init__(self, rubrics: Mapping[str, Rubric]) -> None:
        self.rubrics = rubrics
        self._judges: dict[str, int] = {}
        self._criteria: dict[tuple[str, str], _CriterionCells] = {}

    def add(self, verdict: Mapping[str, Any]) -> None:
        key = (verdict["pillar"], verdict["criterion"])
        cells = self._criteria.get(key)
        if cells is None:
            cells = self._criteria[key] = _CriterionCells()
        if verdict.get("role", "panel") != "panel":
            return
        judge = self._judges.setdefault(verdict["judge"], len(self._judges))
        cells.judges.add(judge)
        if verdict["item_id"] != cells.last_item:
            cells.last_item = verdict["item_id"]
            cells.columns += 1
        if verdict["status"] == "ok":
            cells.column.append(cells.columns - 1)
            cells.judge.append(judge)
            cells.sample.append(verdict.get("sample", 0))
            cells.score.append(verdict["score"])

    def results(self) -> list[dict[str, Any]]:
        import numpy as np

        order = _order(self.rubrics)
        names = {index: name for name, index in self._judges.items()}
        results = []
        for pillar, cid in sorted(self._criteria, key=lambda k: (k[0], order[k])):
            cells = self._criteria[(pillar, cid)]
            points = list(self.rubrics[pillar].criterion(cid).scale.points)
            judges = sorted(cells.judges, key=lambda j: names[j])
            column, judge, sample, score = (
                np.frombuffer(a, dtype=a.typecode) for a in (cells.column, cells.judge, cells.sample, cells.score)
            )
            matrix = np.full((len(judges), cells.columns), np.nan)
            for row, j in enumerate(judges):
                mine = judge == j
                first = _first_sample_per_column(column[mine], sample[mine])
                matrix[row, column[mine][first]] = score[mine][first]
            pairwise = [
                {
                    "judges": [names[judges[a]], names[judges[b]]],
                    "qwk": _qwk(matrix[a], matrix[b], points),
                    "n": int((~np.isnan(matrix[a]) & ~np.isnan(matrix[b])).sum()),
                }
                for a, b in combinations(range(len(judges)), 2)
            ]
            results.append(
                {
                    "pillar": pillar,
                    "criterion": cid,
                    "judges": [names[j] for j in judges],
                    "n_items": cells.columns,
                    "n_units": int(((~np.isnan(matrix)).sum(axis=0) >= 2).sum()),
                    "alpha_ordinal": _ordinal_alpha(matrix, points) if len(judges) > 1 else None,
                    "pairwise_qwk": pairwise,
                    "self_consistency": [
                        _self_consistency(
                            names[j], cells.columns, column[judge == j], sample[judge == j], score[judge == j], points
                        )
                        for j in judges
                    ],
                }
            )
        return results


@dataclass
class _CriterionCells:
    judges: set[int] = field(default_factory=set)
    columns: int = 0
    last_item: Any = None
    column: array = field(default_factory=lambda: array("q"))
    judge: array = field(default_factory=lambda: array("h"))
    sample: array = field(default_factory=lambda: array("q"))
    score: array = field(default_factory=lambda: array("q"))


def _first_sample_per_column(columns: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Positions of each column's lowest-numbered sample (a judge's single judgment of an item)."""
    import numpy as np

    if not len(columns):
        return np.zeros(0, dtype=np.intp)
    order = np.lexsort((samples, columns))
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = columns[order][1:] != columns[order][:-1]
    return order[starts]


def judge_agreement(verdicts: Iterable[Mapping[str, Any]], rubrics: Mapping[str, Rubric]) -> list[dict[str, Any]]:
    """Agreement among panel judges per pillar × criterion, and each judge's self-consistency.

    Judges are compared on single judgments — each judge's lowest-numbered successful sample — so
    values stay on the scale and the statistic does not depend on K; how much a judge's samples vary is
    reported apart as `self_consistency` (ordinal alpha with samples as raters, and the share of items
    with at least two successful samples on which all of them agree). Tie-breaker verdicts are left
    out: they exist only for escalated items and would bias the picture. Items enter in id order.
    """
    table = AgreementTable(rubrics)
    groups = _group(verdicts, rubrics)
    for key in sorted(groups):
        for verdict in groups[key]:
            table.add(verdict)
    return table.results()


def _ordinal_alpha(matrix: np.ndarray, points: list[int]) -> float | None:
    from judge.stats.agreement import krippendorff_alpha

    return krippendorff_alpha(matrix, "ordinal", points)


def _qwk(a: np.ndarray, b: np.ndarray, points: list[int]) -> float | None:
    from judge.stats.agreement import quadratic_weighted_kappa

    return quadratic_weighted_kappa(a, b, categories=points)


def _self_consistency(
    judge: str, n_items: int, columns: np.ndarray, samples: np.ndarray, scores: np.ndarray, points: list[int]
) -> dict[str, Any]:
    """Samples as raters over one judge's ok verdicts (columns, sample indices, scores aligned)."""
    import numpy as np

    kinds = sorted(set(samples.tolist()))
    matrix = np.full((len(kinds), n_items), np.nan)
    matrix[np.searchsorted(kinds, samples), columns] = scores
    per_item = (~np.isnan(matrix)).sum(axis=0)
    repeated = per_item >= 2
    n_repeated = int(repeated.sum())
    agree = 0
    if n_repeated:  # nanmin/nanmax of no column at all would raise
        lowest, highest = np.nanmin(matrix[:, repeated], axis=0), np.nanmax(matrix[:, repeated], axis=0)
        agree = int((lowest == highest).sum())
    return {
        "judge": judge,
        "n_samples": len(kinds),
        "n_items": n_repeated,
        "alpha_ordinal": _ordinal_alpha(matrix, points) if len(kinds) > 1 else None,
        "all_agree_share": agree / n_repeated if n_repeated else None,
    }


# --------------------------------------------------------------------------- self-preference


class SelfPreference:
    """Per judge: mean score on targets of its own family versus other targets, over ok verdicts.

    Keeps, per judge and side, how often each (score, scale) occurred, so the means are exact (as
    `statistics.fmean` computes them) without keeping the scores. With `rubrics`, scores are first
    rescaled to 0–1 by each criterion's scale so that binary and 1–5 criteria weigh alike; without,
    raw scores are averaged. Verdicts without a target are left out. Rows must not repeat.
    """

    def __init__(self, rubrics: Mapping[str, Rubric] | None = None) -> None:
        self.rubrics = rubrics
        self._models: dict[str, str | None] = {}
        self._counts: Counter[tuple[str, bool, int, int, int]] = Counter()

    def add(self, verdict: Mapping[str, Any]) -> None:
        self._models.setdefault(verdict["judge"], verdict.get("model"))
        if verdict["status"] != "ok" or not verdict.get("target"):
            return
        low, high = 0, 1
        if self.rubrics is not None:
            scale = self.rubrics[verdict["pillar"]].criterion(verdict["criterion"]).scale
            low, high = scale.min, scale.max
        self._counts[(verdict["judge"], bool(verdict.get("self_family")), int(verdict["score"]), low, high)] += 1

    def _mean(self, judge: str, own: bool) -> tuple[int, float | None]:
        total, n = Fraction(0), 0
        for (name, side, score, low, high), count in self._counts.items():
            if name == judge and side == own:
                value = float(score) if self.rubrics is None else (float(score) - low) / (high - low)
                total += Fraction(value) * count
                n += count
        return n, (float(total) / n if n else None)

    def report(self) -> list[dict[str, Any]]:
        report = []
        for judge in sorted(self._models):
            n_own, mean_own = self._mean(judge, True)
            n_other, mean_other = self._mean(judge, False)
            report.append(
                {
                    "judge": judge,
                    "model": self._models[judge],
                    "family": model_family(self._models[judge] or judge),
                    "normalized": self.rubrics is not None,
                    "n_own": n_own,
                    "mean_own": mean_own,
                    "n_other": n_other,
                    "mean_other": mean_other,
                    "difference": None if mean_own is None or mean_other is None else mean_own - mean_other,
                }
            )
        return report

