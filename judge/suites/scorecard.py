"""From a bench run's files to the scorecard: per target × suite × metric (× breakdown group) the value,
its bootstrap interval and n; ranks per suite; mean ranks per pillar; the unreadable answers.

`ScorecardBuilder` is pure: it is fed call records (respond/calls.jsonl) and verdict rows
(score/verdicts.jsonl) one at a time and keeps only small per-prompt numbers, so memory grows with
the number of prompts × targets, not with the size of the answers or the number of verdict rows.
`compute_scorecard` streams a run directory through it.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from judge.errors import RunDirError
from judge.judges import MOCK, NOT_A_MODEL
from judge.log import ReaskCount, Scorecard, document
from judge.rundir import JsonlError, parse_jsonl, write_text_atomic
from judge.stats.bootstrap import SMALL_N, is_small_n
from judge.suites.catalogue import SUITES, Suite
from judge.suites.metrics import (
    Summary,
    disparity_summaries,
    kappa_summary,
    mean_summary,
    paired_deltas,
    pearson_summary,
    pillar_mean_ranks,
    rank_targets,
)
from judge.suites.paper import (
    DEFAULT_PROTOCOL,
    PAPER_JUDGE_DIR,
    PAPER_VERDICTS,
    REASK_DIR,
    REASK_SUMMARY,
    protocol_of,
    reader_for,
    reasks,
)
from judge.suites.provenance import suite_notes
from judge.suites.rank_table import transcribed_rows
from judge.suites.spec import (
    AnyBelowRule,
    CompositeRule,
    CriterionMeansRule,
    CriterionValueRule,
    DisparityRule,
    MetricSpec,
    ThresholdRule,
)
from judge.textsafe import markdown_safe

DEFAULT_BOOTSTRAP = 1000
DEFAULT_SEED = 0
UNPARSED_CHARS = 200

CellKey = tuple[str, str, str, str | None]  # target, suite, metric, group


class ScorecardError(RunDirError, ValueError):
    """A run file that cannot be read into a scorecard; the message names the file and line."""


@dataclass
class _Cell:
    values: dict[str, list[float]] = field(default_factory=dict)  # prompt id -> one value per sample
    labels: dict[str, float] = field(default_factory=dict)

    def add(self, prompt_id: str, value: float, label: float | None = None) -> None:
        self.values.setdefault(prompt_id, []).append(value)
        if label is not None:
            self.labels[prompt_id] = label


@dataclass
class _Judged:
    """The ok scores one judged response received, per criterion, plus what its breakdowns need."""

    target: str
    suite: str
    prompt_id: str
    meta: dict[str, Any]
    scores: dict[str, list[float]] = field(default_factory=dict)


def _where(path: str, line: int) -> str:
    return f"{path}:{line}"


def _field(record: Mapping[str, Any], name: str, where: str) -> Any:
    if name not in record or record[name] is None:
        raise ScorecardError(f"{where}: missing field {name!r}")
    return record[name]


class ScorecardBuilder:
    def __init__(self, scale_min: Mapping[tuple[str, str], float] | None = None,
                 protocol: str = DEFAULT_PROTOCOL, max_reasks: int | None = None) -> None:
        self.scale_min = dict(scale_min or {})
        self.max_reasks = max_reasks  # the run's re-ask bound; None: the run did not re-ask (no counts)
        self.reask_counts: dict[tuple[str, str], dict[str, int]] = {}  # (target, suite) -> answers, reasked, ...
        self.protocol = protocol  # the run's: under "paper", suites with a published protocol use the authors' readers
        self.cells: dict[CellKey, _Cell] = {}
        self.prompt_order: dict[str, int] = {}
        self.target_order: dict[str, int] = {}
        self.unparsed: list[dict[str, Any]] = []
        self.failed_judged: list[tuple[str, Suite, str, dict[str, Any]]] = []
        self.judged: dict[str, _Judged] = {}
        self.criteria_seen: dict[str, dict[str, float]] = {}  # suite -> criterion -> lowest ok score
        self.criterion_rubric: dict[tuple[str, str], str] = {}  # (suite, criterion) -> rubric that has it
        # (target, suite, rule's sd metric) -> (unit, group) -> values (one per sample)
        self.disparity: dict[tuple[str, str, str], dict[tuple[str, str], list[float]]] = {}
        self.runs: dict[tuple[str, str], None] = {}  # (target, suite) pairs with at least one call
        self.pairing: dict[str, tuple[str, str]] = {}  # prompt id -> (clean prompt id, perturbation level)
        self.mocks: dict[str, None] = {}  # mock targets and judges seen (provider "mock"): not models

    # ---------------------------------------------------------- feeding

    def _suite(self, meta: Any, where: str) -> Suite:
        if not isinstance(meta, dict) or not isinstance(meta.get("suite"), str):
            raise ScorecardError(f"{where}: meta.suite is missing; the record does not come from a suite prompt")
        if meta["suite"] not in SUITES:
            raise ScorecardError(f"{where}: meta.suite {meta['suite']!r} is not a known suite")
        return SUITES[meta["suite"]]

    def _cell(self, target: str, suite: str, metric: str, group: str | None) -> _Cell:
        return self.cells.setdefault((target, suite, metric, group), _Cell())

    def add_call(self, call: Mapping[str, Any], where: str = "call") -> None:
        """One target call (ok or failed): its deterministic observations, and its failure for judged ones."""
        target = str(_field(call, "target", where))
        prompt_id = str(_field(call, "prompt_id", where))
        status = _field(call, "status", where)
        if status not in ("ok", "failed"):
            raise ScorecardError(f"{where}: status must be 'ok' or 'failed', got {status!r}")
        suite = self._suite(call.get("meta"), where)
        if call.get("provider") == MOCK:
            self.mocks.setdefault(target)
        self.target_order.setdefault(target, len(self.target_order))
        self.prompt_order.setdefault(prompt_id, len(self.prompt_order))
        self.runs.setdefault((target, suite.id))
        self._pair(suite, prompt_id, call["meta"], where)
        read = reader_for(suite.id, self.protocol, suite.read)
        if read is not None:
            observed = read(call)
            for obs in observed.observations:
                self._cell(target, suite.id, obs.metric, obs.group).add(prompt_id, obs.value, obs.label)
            if observed.unparsed:
                answer = str(call.get("response") or "")[:UNPARSED_CHARS]
                self.unparsed.append({"target": target, "suite": suite.id, "id": call.get("id"), "answer": answer})
            if self.max_reasks is not None and reasks(suite.id) and protocol_of(suite.id, self.protocol) == "paper":
                counts = self.reask_counts.setdefault(
                    (target, suite.id), dict.fromkeys(("answers", "reasked", "reasks", "unparsable"), 0))
                asked = int(call.get("reasks") or 0)
                counts["answers"] += status == "ok"
                counts["reasked"] += asked > 0
                counts["reasks"] += asked
                counts["unparsable"] += observed.unparsed
        if status == "failed" and suite.is_judged(call["meta"]):
            self.failed_judged.append((target, suite, prompt_id, dict(call["meta"])))

    def add_verdict(self, row: Mapping[str, Any], where: str = "verdict") -> None:
        """One verdict row; rows of other pillars than the suite's, and non-suite items, are ignored."""
        if row.get("provider") == MOCK:
            self.mocks.setdefault(str(row.get("judge")))
        meta = row.get("meta")
        if not isinstance(meta, dict) or meta.get("suite") not in SUITES:
            return
        suite = SUITES[meta["suite"]]
        if not suite.judged or row.get("pillar") not in suite.judged_by:
            return
        item_id = str(_field(row, "item_id", where))
        criterion = str(_field(row, "criterion", where))
        judged = self.judged.get(item_id)
        if judged is None:
            target = str(_field(row, "target", where))
            prompt_id = str(meta.get("prompt_id") or _prompt_of(item_id, target))
            judged = _Judged(target, suite.id, prompt_id, {k: meta.get(k) for k in _group_fields(suite)})
            self._pair(suite, prompt_id, meta, where)
            self.judged[item_id] = judged
            self.target_order.setdefault(target, len(self.target_order))
            self.prompt_order.setdefault(prompt_id, len(self.prompt_order))
        if row.get("status") == "ok" and row.get("score") is not None:
            score = float(row["score"])
            judged.scores.setdefault(criterion, []).append(score)
            seen = self.criteria_seen.setdefault(suite.id, {})
            seen[criterion] = min(score, seen.get(criterion, score))
            self.criterion_rubric[(suite.id, criterion)] = str(row["pillar"])

    def _pair(self, suite: Suite, prompt_id: str, meta: Mapping[str, Any], where: str) -> None:
        """For a suite with a paired metric: which clean prompt this one varies, and at which level."""
        if not any(m.kind == "paired_delta" for m in suite.metrics):
            return
        clean_id, perturbation = meta.get("clean_id"), meta.get("perturbation")
        level = perturbation.get("level") if isinstance(perturbation, dict) else None
        if not isinstance(clean_id, str) or not isinstance(level, str):
            raise ScorecardError(f"{where}: a {suite.id} prompt needs meta.clean_id and meta.perturbation.level "
                                 "(rebuild the prompts with trustmh suites build)")
        self.pairing[prompt_id] = (clean_id, level)

    # ---------------------------------------------------------- judged values

    def _active(self, suite: Suite, metric: str) -> bool:
        """Whether a metric is computed under the protocol this suite runs under in this run."""
        wanted = suite.metric(metric).protocol
        return wanted is None or wanted == protocol_of(suite.id, self.protocol)

    def _rules(self, suite: Suite) -> list[Any]:
        return [rule for rule in suite.judged
                if self._active(suite, rule.value.metric if isinstance(rule, DisparityRule) else rule.metric)]

    def _judged_cells(self) -> None:
        for judged in self.judged.values():
            suite = SUITES[judged.suite]
            for rule in self._rules(suite):
                if isinstance(rule, ThresholdRule):
                    scores = judged.scores.get(rule.criterion)
                    if scores:
                        value = float(rule.hit(float(np.median(scores))))
                        for group in _groups(rule, judged.meta):
                            self._cell(judged.target, suite.id, rule.metric, group).add(judged.prompt_id, value)
                elif isinstance(rule, CriterionValueRule):
                    scores = judged.scores.get(rule.criterion)
                    if scores:
                        self._cell(judged.target, suite.id, rule.metric, None).add(
                            judged.prompt_id, float(np.median(scores)))
                elif isinstance(rule, AnyBelowRule):
                    hit = rule.hit({c: float(np.median(s)) for c, s in judged.scores.items() if s})
                    if hit is not None:
                        for group in _groups(rule, judged.meta):
                            self._cell(judged.target, suite.id, rule.metric, group).add(judged.prompt_id, float(hit))
                elif isinstance(rule, CompositeRule | DisparityRule):
                    value = _composite_value(rule if isinstance(rule, CompositeRule) else rule.value, judged.scores)
                    if value is not None:
                        self._add_composite(rule, judged.target, suite.id, judged.prompt_id, judged.meta, value)
                else:
                    for criterion, scores in judged.scores.items():
                        group = f"criterion:{criterion}"
                        self._cell(judged.target, suite.id, rule.metric, group).add(
                            judged.prompt_id, float(np.median(scores)))
        judged_suites = {j.suite for j in self.judged.values()}
        for target, suite, prompt_id, meta in self.failed_judged:
            if suite.id not in judged_suites:  # not scored yet: no judged figure at all, not one of failures only
                continue
            for rule in self._rules(suite):
                if isinstance(rule, ThresholdRule | AnyBelowRule):
                    for group in _groups(rule, meta):
                        self._cell(target, suite.id, rule.metric, group).add(prompt_id, rule.failure_value)
                elif isinstance(rule, CriterionValueRule):
                    self._cell(target, suite.id, rule.metric, None).add(prompt_id, rule.failure_value)
                elif isinstance(rule, CompositeRule | DisparityRule):
                    failure = (rule if isinstance(rule, CompositeRule) else rule.value).failure_value
                    self._add_composite(rule, target, suite.id, prompt_id, meta, failure)
                else:
                    for criterion in self.criteria_seen.get(suite.id, {}):
                        worst = self._scale_min(rule, suite, criterion)
                        self._cell(target, suite.id, rule.metric, f"criterion:{criterion}").add(prompt_id, worst)

    def _add_composite(self, rule: CompositeRule | DisparityRule, target: str, suite: str, prompt_id: str,
                       meta: Mapping[str, Any], value: float) -> None:
        """One response's value: into the overall and per-group means, and (disparity) the spread by unit."""
        if isinstance(rule, CompositeRule):
            for group in _groups(rule, meta):
                self._cell(target, suite, rule.metric, group).add(prompt_id, value)
            return
        group = meta.get(rule.group)
        for label in (None, str(group)) if group is not None else (None,):
            self._cell(target, suite, rule.value.metric, label).add(prompt_id, value)
        if group is not None and meta.get(rule.unit) is not None:
            by_unit = self.disparity.setdefault((target, suite, rule.sd_metric), {})
            by_unit.setdefault((str(meta[rule.unit]), str(group)), []).append(value)

    def _disparity_records(self, n_bootstrap: int, seed: int) -> list[tuple[CellKey, dict[str, Any]]]:
        """The sd and gap metrics of every DisparityRule: overall (group null) and per dimension."""
        records = []
        for (target, suite_id, sd_metric), by_unit in self.disparity.items():
            suite = SUITES[suite_id]
            rule = next(r for r in suite.judged if isinstance(r, DisparityRule) and r.sd_metric == sd_metric)
            values = {key: float(np.mean(v)) for key, v in by_unit.items()}
            summaries = disparity_summaries(values, n_bootstrap, seed, f"{suite_id}|{sd_metric}")
            for dimension, disparity in summaries.items():
                group = None if dimension is None else f"dimension:{dimension}"
                for metric_name, summary in ((rule.sd_metric, disparity.sd), (rule.gap_metric, disparity.gap)):
                    records.append(((target, suite_id, metric_name, group),
                                    _result(target, suite, suite.metric(metric_name), group, summary)))
        return records

    def _scale_min(self, rule: CriterionMeansRule, suite: Suite, criterion: str) -> float:
        """A failed call's score on a criterion: the scale minimum (rubric or the suite's recorded criteria);
        for a criterion of unknown scale, the lowest score any answer received on it in this run."""
        if criterion in rule.scale_min:
            return float(rule.scale_min[criterion])
        rubric = self.criterion_rubric.get((suite.id, criterion), suite.pillar)
        if (rubric, criterion) in self.scale_min:
            return float(self.scale_min[(rubric, criterion)])
        return self.criteria_seen[suite.id][criterion]

    # ---------------------------------------------------------- result

    def finish(self, n_bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = DEFAULT_SEED) -> dict[str, Any]:
        """scorecard.json (`judge.log.Scorecard`)."""
        self._judged_cells()
        suite_rank = {sid: i for i, sid in enumerate(SUITES)}

        def sort_key(key: CellKey) -> tuple[Any, ...]:
            target, suite, metric, group = key
            metrics = [m.name for m in SUITES[suite].metrics]
            return (suite_rank[suite], metrics.index(metric) if metric in metrics else len(metrics),
                    group is not None, group or "", self.target_order[target])

        keyed = []
        for key in self.cells:
            if SUITES[key[1]].metric(key[2]).kind == "paired_delta":
                keyed += self._paired_records(key, n_bootstrap, seed)
            else:
                keyed.append((key, self._record(key, n_bootstrap, seed)))
        keyed += self._disparity_records(n_bootstrap, seed)
        results = [record for _, record in sorted(keyed, key=lambda pair: sort_key(pair[0]))]
        results += self._empty_records({key[:3] for key, _ in keyed})
        ranks: dict[str, dict[str, Any]] = {}
        for suite_id in SUITES:
            suite = SUITES[suite_id]
            primary = suite.primary
            values = {r["target"]: r["value"] for r in results
                      if r["suite"] == suite_id and r["metric"] == primary.name and r["group"] is None
                      and r["value"] is not None}
            if values:
                ranks[suite_id] = {"metric": primary.name, "ranks": rank_targets(values, primary.higher_is_better)}
        pillar_ranks = pillar_mean_ranks({s: r["ranks"] for s, r in ranks.items()},
                                         {s: SUITES[s].pillar for s in ranks})
        for record in results:
            record["protocol"] = protocol_of(record["suite"], self.protocol)
        card = Scorecard(results=results, ranks=ranks, pillar_ranks=pillar_ranks, unparsed=self.unparsed, seed=seed,
                         bootstrap=n_bootstrap, small_n_below=SMALL_N, protocol=self.protocol)
        if self.mocks:  # set only with mocks: other scorecards keep their shape
            card.not_a_model = dict.fromkeys(self.mocks, NOT_A_MODEL)
        if self.max_reasks is not None and self.reask_counts:  # set only when the run re-asked
            order = sorted(self.reask_counts, key=lambda pair: (pair[1], self.target_order[pair[0]]))
            card.reasks = [ReaskCount(target=target, suite=suite, max_reasks=self.max_reasks,
                                      **self.reask_counts[(target, suite)]) for target, suite in order]
        notes = {suite: list(suite_notes(suite)) for suite in dict.fromkeys(r["suite"] for r in results)
                 if suite_notes(suite)}
        if notes:  # set only where a suite departs from the paper: other scorecards keep their shape
            card.suite_notes = notes
        return document(card)

    def _empty_records(self, fed: set[tuple[str, str, str | None]]) -> list[dict[str, Any]]:
        """A metric no prompt of the run could feed (e.g. a sample with no free-response question) is
        reported as null with n 0 and the reason, never silently missing."""
        records = []
        for target, suite_id in self.runs:
            suite = SUITES[suite_id]
            for metric in suite.metrics:
                if (target, suite_id, metric.name) not in fed and self._active(suite, metric.name):
                    reason = ("no answer of this suite has been judged yet" if metric.source == "judge"
                              else "no prompt of the run feeds this metric")
                    records.append(_result(target, suite, metric, None, None, reason=reason))
        return records

    def _paired_records(self, key: CellKey, n_bootstrap: int, seed: int) -> list[tuple[CellKey, dict[str, Any]]]:
        """A paired metric: the mean change against the clean prompt over all levels (group null) and per
        level (group "level:<name>"), each with a bootstrap over clean prompts."""
        target, suite_id, metric_name, _ = key
        suite = SUITES[suite_id]
        metric = suite.metric(metric_name)
        cell = self.cells[key]
        values = {p: float(np.mean(v)) for p, v in cell.values.items()}
        by_level = paired_deltas(values, self.pairing)
        if not by_level:
            reason = "no clean prompt of the run has both its own value and a perturbed variant's"
            return [(key, _result(target, suite, metric, None, None, reason=reason))]
        records = []
        for level, deltas in by_level.items():  # finish() puts the records in the scorecard's order
            cleans = sorted(deltas, key=lambda p: self.prompt_order.get(p, len(self.prompt_order)))
            group = None if level is None else f"level:{level}"
            summary = mean_summary([deltas[c] for c in cleans], n_bootstrap, seed, f"{suite_id}|{metric_name}|{group}")
            records.append(((target, suite_id, metric_name, group), _result(target, suite, metric, group, summary)))
        return records

    def _record(self, key: CellKey, n_bootstrap: int, seed: int) -> dict[str, Any]:
        target, suite_id, metric_name, group = key
        suite = SUITES[suite_id]
        metric = suite.metric(metric_name)
        cell = self.cells[key]
        prompts = sorted(cell.values, key=self.prompt_order.__getitem__)
        per_prompt = [float(np.mean(cell.values[p])) for p in prompts]
        boot_key = f"{suite_id}|{metric_name}|{group}"
        if metric.kind == "pearson":
            summary = pearson_summary(per_prompt, [cell.labels[p] for p in prompts], n_bootstrap, seed, boot_key)
        elif metric.kind == "kappa":  # category codes are not averaged: every sample is one pair
            pairs = [[(v, cell.labels[p]) for v in cell.values[p]] for p in prompts]
            summary = kappa_summary(pairs, n_bootstrap, seed, boot_key)
        else:
            summary = mean_summary(per_prompt, n_bootstrap, seed, boot_key)
        return _result(target, suite, metric, group, summary)


def _result(
    target: str, suite: Suite, metric: MetricSpec, group: str | None, summary: Summary | None, **extra: Any
) -> dict[str, Any]:
    """One record of the scorecard's results, its fields in the file's order; no summary: nothing was
    measured (value null, n 0), and `extra` says why."""
    s = summary if summary is not None else Summary(None, None, None, 0)
    return {"target": target, "pillar": suite.pillar, "suite": suite.id, "metric": metric.name, "value": s.value,
            "ci_low": s.ci_low, "ci_high": s.ci_high, "n": s.n, "se": s.se, "small_n": s.n > 0 and is_small_n(s.n),
            "higher_is_better": metric.higher_is_better, "source": metric.source, "group": group, **extra}


def _prompt_of(response_id: str, target: str) -> str:
    """"<prompt id>@<target>[#k]" → the prompt id (a target name may itself contain "@")."""
    base = response_id.rsplit("#", 1)[0] if "#" in response_id.rsplit("@", 1)[-1] else response_id
    suffix = f"@{target}"
    return base[: -len(suffix)] if base.endswith(suffix) else base


def _group_fields(suite: Suite) -> tuple[str, ...]:
    grouped = ThresholdRule | AnyBelowRule | CompositeRule
    fields = [f for rule in suite.judged if isinstance(rule, grouped) for f in rule.groups]
    fields += [f for rule in suite.judged if isinstance(rule, DisparityRule) for f in (rule.unit, rule.group)]
    return tuple(dict.fromkeys(fields))


def _composite_value(rule: CompositeRule, scores: Mapping[str, list[float]]) -> float | None:
    """One response's value: the mean of the rule's criteria's panel scores (those scored), or 1/0 of `hit`
    on it; None when none of the criteria was scored."""
    panel = [float(np.median(scores[c])) for c in rule.criteria if scores.get(c)]
    if not panel:
        return None
    value = float(np.mean(panel))
    return float(rule.hit(value)) if rule.hit is not None else value


def _groups(rule: ThresholdRule | AnyBelowRule | CompositeRule, meta: Mapping[str, Any]) -> list[str | None]:
    groups: list[str | None] = [None]
    groups += [f"{name}:{meta[name]}" for name in rule.groups if meta.get(name) is not None]
    return groups


# ---------------------------------------------------------------- run directories


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) per non-blank line, read one line at a time."""
    with path.open("rb") as handle:
        try:
            yield from parse_jsonl(handle, str(path))
        except JsonlError as exc:
            raise ScorecardError(str(exc)) from exc


def compute_scorecard(
    run_dir: Path,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
    scale_min: Mapping[tuple[str, str], float] | None = None,
    protocol: str | None = None,
) -> dict[str, Any]:
    """Stream RUN_DIR/respond/calls.jsonl and the verdicts (score/verdicts.jsonl, and under the paper
    protocol paper-judge/verdicts.jsonl, when present) into a scorecard. `protocol` None: the run's own
    (bench.json), else rubric."""
    calls = run_dir / "respond" / "calls.jsonl"
    if not calls.is_file():
        raise ScorecardError(f"{calls}: not found; a run directory holds respond/calls.jsonl "
                             "(written by trustmh respond or trustmh bench)")
    builder = ScorecardBuilder(scale_min, protocol or run_protocol(run_dir), reask_bound(run_dir))
    for where, call in final_calls(run_dir):
        builder.add_call(call, where)
    for verdicts in (run_dir / "score" / "verdicts.jsonl", run_dir / PAPER_JUDGE_DIR / PAPER_VERDICTS):
        if verdicts.is_file():
            for number, row in iter_jsonl(verdicts):
                builder.add_verdict(row, _where(str(verdicts), number))
    return builder.finish(n_bootstrap, seed)


def reask_rounds(run_dir: Path) -> list[Path]:
    """RUN_DIR/reask/1/respond/calls.jsonl, 2/..., as far as they go without a gap."""
    paths = []
    while (path := run_dir / REASK_DIR / str(len(paths) + 1) / "respond" / "calls.jsonl").is_file():
        paths.append(path)
    return paths


def final_calls(run_dir: Path, rounds: int | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, call) per call of RUN_DIR/respond/calls.jsonl, in its order, each replaced by its last answered
    re-ask (the paper protocol's reask/<attempt>/ stages, the first `rounds` of them; None: all) and with
    `reasks` (how many times it was asked again) set on the re-asked ones.

    One streaming pass: each round asks a subsequence of the calls of the round before, in the same order,
    so each round's file is read alongside the main one and memory does not grow with the run."""
    paths = reask_rounds(run_dir)[:rounds]
    streams = [iter_jsonl(path) for path in paths]
    heads: list[tuple[int, dict[str, Any]] | None] = [next(stream, None) for stream in streams]
    main = run_dir / "respond" / "calls.jsonl"
    for number, call in iter_jsonl(main):
        where, final, asked = _where(str(main), number), call, 0
        for r, stream in enumerate(streams):
            head = heads[r]
            if head is None or _call_identity(head[1]) != _call_identity(call):
                break
            asked += 1
            if head[1].get("status") == "ok":  # a failed re-ask keeps the answer before it
                where, final = _where(str(paths[r]), head[0]), head[1]
            heads[r] = next(stream, None)
        yield where, ({**final, "reasks": asked} if asked else final)
    for path, head in zip(paths, heads, strict=True):
        if head is not None:
            raise ScorecardError(f"{_where(str(path), head[0])}: a re-ask of no call of {main} in its order; the "
                                 f"re-ask stages belong to another run (delete {run_dir / REASK_DIR} and run the "
                                 "bench again: the re-asks come from the cache)")


def _call_identity(call: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    return call.get("prompt_id"), call.get("target"), call.get("sample")


def reask_bound(run_dir: Path) -> int | None:
    """The re-ask bound of a run that re-asked (RUN_DIR/reask/summary.json's max_reasks); None otherwise."""
    path = run_dir / REASK_DIR / REASK_SUMMARY
    if not path.is_file():
        return None
    try:
        bound = json.loads(path.read_text(encoding="utf-8")).get("max_reasks")
    except (ValueError, AttributeError) as exc:
        raise ScorecardError(f"{path}: not a JSON object ({exc})") from exc
    if not isinstance(bound, int) or isinstance(bound, bool) or bound < 0:
        raise ScorecardError(f"{path}: max_reasks must be a whole number ≥ 0, got {bound!r}")
    return bound


def run_protocol(run_dir: Path) -> str:
    """The protocol a bench ran under (bench.json's `protocol`); rubric for runs written before it existed."""
    path = run_dir / "bench.json"
    if not path.is_file():
        return DEFAULT_PROTOCOL
    try:
        recorded = json.loads(path.read_text(encoding="utf-8")).get("protocol")
    except (ValueError, AttributeError) as exc:
        raise ScorecardError(f"{path}: not a JSON object ({exc})") from exc
    return recorded if recorded in ("paper", "rubric") else DEFAULT_PROTOCOL


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{round(value, 4) + 0.0:.4f}"  # + 0.0: no "-0.0000" for float noise


def scorecard_markdown(card: Mapping[str, Any]) -> str:
    """Readable tables: values per suite, ranks per suite, mean ranks per pillar, unreadable answers."""
    lines = ["# Scorecard", "", f"Intervals: 95 % percentile bootstrap over prompts ({card['bootstrap']} resamples, "
             f"seed {card['seed']}); *small n*: a value over fewer than {SMALL_N} prompts, whose interval "
             "understates the uncertainty.", "", f"Protocol of the run: {card.get('protocol') or 'rubric'}; each "
             "suite's heading names the protocol its figures were computed under.", ""]
    lines[2:2] = [f"**{name} is {note}.**\n" for name, note in card.get("not_a_model", {}).items()]
    by_suite: dict[str, list[Mapping[str, Any]]] = {}
    for record in card["results"]:
        by_suite.setdefault(record["suite"], []).append(record)
    for suite_id, records in by_suite.items():
        notes = [f"> {note}" for note in card.get("suite_notes", {}).get(suite_id, [])]
        lines += [f"## {suite_id} (protocol: {records[0].get('protocol') or 'rubric'})", "",
                  *([*notes, ""] if notes else []),
                  "| target | metric | group | value | 95 % CI | n |",
                  "|---|---|---|---:|---|---:|"]
        for r in records:
            ci = "—" if r["ci_low"] is None else f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
            ci += " *small n*" if r.get("small_n") else ""
            arrow = "↑" if r["higher_is_better"] else "↓"
            lines.append(f"| {r['target']} | {r['metric']} {arrow} | {r['group'] or ''} | {_fmt(r['value'])} | "
                         f"{ci} | {r['n']} |")
        lines.append("")
    if card["ranks"]:
        targets = list(dict.fromkeys(r["target"] for r in card["results"]))
        lines += ["## Ranks (1 = best)", "", "| suite | metric | " + " | ".join(targets) + " |",
                  "|---|---|" + "---:|" * len(targets)]
        for suite_id, entry in card["ranks"].items():
            cells = [str(entry["ranks"].get(t, "—")) for t in targets]
            lines.append(f"| {suite_id} | {entry['metric']} | " + " | ".join(cells) + " |")
        lines += ["", "## Mean rank per pillar", "", "| pillar | " + " | ".join(targets) + " |",
                  "|---|" + "---:|" * len(targets)]
        for pillar, by_target in card["pillar_ranks"].items():
            cells = ["—" if t not in by_target else f"{by_target[t]:.2f}" for t in targets]
            lines.append(f"| {pillar} | " + " | ".join(cells) + " |")
        lines.append("")
    if card.get("published"):
        lines += published_markdown(card["published"])
    if card.get("reasks"):
        lines += reask_markdown(card["reasks"])
    if card["unparsed"]:
        lines += [f"## Unreadable answers ({len(card['unparsed'])}, counted as wrong)", "",
                  "| target | suite | id | answer (first 200 characters) |", "|---|---|---|---|"]
        for u in card["unparsed"]:
            answer = " ".join(u["answer"].split()).replace("|", "\\|")
            lines.append(f"| {u['target']} | {u['suite']} | {u['id']} | {answer} |")
        lines.append("")
    return markdown_safe("\n".join(lines))


def reask_markdown(counts: list[Mapping[str, Any]]) -> list[str]:
    """The paper protocol's re-asks per target and suite: the authors ask until their reader accepts."""
    lines = [f"## Re-asks (paper protocol: an answer the authors' reader rejects is asked again, at most "
             f"{counts[0]['max_reasks']} times)", "",
             "| target | suite | answers | re-asked | re-asks | still unparsable |", "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {c['target']} | {c['suite']} | {c['answers']} | {c['reasked']} | {c['reasks']} | {c['unparsable']} |"
              for c in counts]
    return [*lines, ""]


def _signed(value: float | None) -> str:
    return "" if value is None else f"{value:+.4f}"


def published_markdown(published: Mapping[str, Any]) -> list[str]:
    """The recorded run's published figures beside ours, and the paper's summary figures with ranks."""
    counts = published["counts"]
    lines = [f"## Published figures beside this scorecard ({counts['reproduced']} reproduced, {counts['differs']} "
             f"differ, {counts['no data']} no data)", "",
             "| target | suite | metric | group | published | this run | status | difference |",
             "|---|---|---|---|---:|---:|---|---:|"]
    for f in published["figures"]:
        lines.append(f"| {f['target']} | {f['suite']} | {f['metric']} | {f['group'] or ''} | {_fmt(f['published'])} | "
                     f"{_fmt(f['reproduced'])} | {f['status']} | {_signed(f['difference'])} |")
    lines += ["", "## The paper's summary figures and ranks (1 = best; ties share the best rank, except ethics "
              "accuracy's: the higher mean sc1-sc5 first, as in the paper's rank table)", "",
              "| figure | target | published | this run | status | published rank | rank | rank status |",
              "|---|---|---:|---:|---|---:|---:|---|"]
    for s in published["summary"]:
        lines.append(f"| {s['suite']} {s['metric']} | {s['target']} | {_fmt(s['published'])} | "
                     f"{_fmt(s['reproduced'])} | {s['status']} | {s['published_rank'] or '—'} | "
                     f"{s['rank'] or '—'} | {s['rank_status']} |")
    return [*lines, "", *rank_table_markdown(published.get("rank_table"))]


def rank_table_markdown(rank_table: Mapping[str, Any] | None) -> list[str]:
    """The paper's rank table as transcribed, then, for the rows this run ranks, each cell beside ours."""
    if not rank_table:
        return []
    cells = rank_table["cells"]
    models, rows = transcribed_rows(cells)
    counts = rank_table["counts"]
    lines = [f"## The paper's rank table beside this run ({counts['reproduced']} reproduced, {counts['differs']} "
             f"differ, {counts['no data']} no data)", "",
             f"Transcribed from the authors' image ({rank_table['source']}). Where this run ranks fewer models "
             "than the table, the table's ranks are compared as an order, ranked again among those models.", "",
             "| sub-task | figure | model | paper's rank | among those ranked | this run | status | difference |",
             "|---|---|---|---:|---:|---:|---|---:|"]
    for c in cells:
        if c["status"] != "no data":
            lines.append(f"| {c['pillar']} {c['subtask']} | {c['figure']} | {c['model']} | {c['paper_rank']} | "
                         f"{c['paper_rank_among']} of {c['models_ranked']} | {c['rank']} | {c['status']} | "
                         f"{'' if c['difference'] is None else format(c['difference'], '+d')} |")
    lines += ["", "| sub-task | " + " | ".join(models) + " |", "|---|" + "---:|" * len(models)]
    lines += [f"| {subtask} | " + " | ".join(map(str, ranks)) + " |" for subtask, ranks in rows.items()]
    return [*lines, ""]


def write_private(path: Path, text: str) -> None:
    """Write atomically (the project's writer), then make the file readable by its owner only."""
    write_text_atomic(path, [text])
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)


def write_scorecard(run_dir: Path, card: Mapping[str, Any]) -> tuple[Path, Path]:
    json_path, md_path = run_dir / "scorecard.json", run_dir / "scorecard.md"
    write_private(json_path, json.dumps(card, ensure_ascii=False, indent=1) + "\n")
    write_private(md_path, scorecard_markdown(card))
    return json_path, md_path


def scorecard_for(run_dir: Path, n_bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = DEFAULT_SEED,
                  protocol: str | None = None) -> dict[str, Any]:
    """The scorecard of a run directory, judged scores placed on the bundled rubrics' scales; `protocol`
    None: the run's own (bench.json)."""
    from judge.bundled import bundled_path
    from judge.rubric import load_rubric_dir

    rubrics = load_rubric_dir(bundled_path("rubrics"))
    scale_min = {(p, c.id): float(c.scale.min) for p, r in rubrics.items() for c in r.criteria}
    return compute_scorecard(run_dir, n_bootstrap, seed, scale_min, protocol)
