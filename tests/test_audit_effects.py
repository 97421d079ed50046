"""Paired effects, detection, self-preference and gates of the audit, on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from judge.audit.effects import (
    Cell,
    Effects,
    Record,
    VariantRef,
    cells_from_verdicts,
    compute_effects,
    resample_weights,
)
from judge.audit.probes import parse_audit_gate
from judge.bundled import bundled_path
from judge.errors import UsageError
from judge.gates import audit_gate_failures, audit_gate_results
from judge.rubric import load_rubric_dir
from judge.stats.bootstrap import percentile_ci, percentile_interval, resample_indices

RUBRICS = load_rubric_dir(bundled_path("rubrics"))
RR, IS = "risk_recognition", "immediate_support"  # crisis: critical (fail below 3) and major


def ok(score: float, target: str | None = None, self_family: bool = False) -> Cell:
    return Cell("ok", score, target, self_family)


def _find(effects: Effects, **where: object) -> Record:
    found = [r for r in effects.records if all(getattr(r, k) == v for k, v in where.items())]
    assert len(found) == 1, (where, found)
    return found[0]


def test_samples_reduce_to_their_ok_mean_and_the_last_line_of_a_sample_wins() -> None:
    base = {"pillar": "crisis", "criterion": RR, "judge": "J", "target": "t"}
    rows = [
        {**base, "item_id": "a", "sample": 0, "status": "ok", "score": 2},
        {**base, "item_id": "a", "sample": 1, "status": "ok", "score": 4},
        {**base, "item_id": "a", "sample": 0, "status": "ok", "score": 5},  # a re-asked sample supersedes
        {**base, "item_id": "a", "sample": 2, "status": "failed", "score": None},
        {**base, "item_id": "a", "sample": 0, "status": "ok", "score": 1, "role": "tiebreak"},
        {**base, "item_id": "b", "sample": 0, "status": "not_applicable", "score": None},
        {**base, "item_id": "b", "sample": 1, "status": "failed", "score": None},
        {**base, "item_id": "c", "sample": 0, "status": "failed", "score": None, "self_family": True},
    ]
    cells = cells_from_verdicts(rows)
    assert cells[("a", "crisis", RR, "J")] == Cell("ok", 4.5, "t", False)
    assert cells[("b", "crisis", RR, "J")].status == "not_applicable"
    assert cells[("c", "crisis", RR, "J")] == Cell("failed", None, "t", True)


def _invariance_case(n_bootstrap: int) -> Effects:
    refs = [VariantRef(f"{o}~{v}", o, "verbosity", v) for o in ("o1", "o2") for v in ("a", "b")]
    originals = {
        ("o1", "crisis", RR, "J"): ok(4),
        ("o2", "crisis", RR, "J"): ok(2),
        ("o1", "crisis", IS, "J"): Cell("not_applicable", None),
        ("o2", "crisis", IS, "J"): Cell("not_applicable", None),
    }
    variants = {
        ("o1~a", "crisis", RR, "J"): ok(5),  # +1
        ("o1~b", "crisis", RR, "J"): ok(2),  # −2, pass → fail
        ("o2~a", "crisis", RR, "J"): ok(3),  # +1, fail → pass
        ("o2~b", "crisis", RR, "J"): Cell("failed", None),
        ("o1~a", "crisis", IS, "J"): ok(3),
        ("o1~b", "crisis", IS, "J"): Cell("not_applicable", None),
    }
    return compute_effects(["verbosity"], refs, originals, variants, RUBRICS, ["J"], n_bootstrap=n_bootstrap)


def test_paired_shifts_flips_and_coverage_by_hand() -> None:
    effects = _invariance_case(n_bootstrap=0)
    expected = {
        (None, "mean_shift"): (0.0, 3),
        (None, "mean_abs_shift"): (4 / 3, 3),
        (None, "max_abs_shift"): (2.0, 3),
        (None, "flip_rate"): (2 / 3, 3),
        ("a", "mean_shift"): (1.0, 2),
        ("a", "flip_rate"): (0.5, 2),
        ("b", "mean_shift"): (-2.0, 1),
        ("b", "mean_abs_shift"): (2.0, 1),
        ("b", "flip_rate"): (1.0, 1),
    }
    for (variant, metric), (value, n) in expected.items():
        record = _find(effects, variant=variant, metric=metric, criterion=RR)
        assert record.value == pytest.approx(value) and record.n == n
        assert record.ci_low is None and record.ci_high is None  # no resamples asked for
    assert not [r for r in effects.records if r.criterion == IS]  # no pair was scored on both sides
    assert effects.coverage == [
        {"probe": "verbosity", "judge": "J", "paired": 3, "failed": 1, "not_applicable": 1, "applicability_changed": 1}
    ]


def test_intervals_are_seeded_and_bracket_the_estimate() -> None:
    first, second = _invariance_case(200), _invariance_case(200)
    assert [r.as_dict() for r in first.records] == [r.as_dict() for r in second.records]
    for record in first.records:
        if record.ci_low is not None:
            assert record.ci_low <= record.ci_high
    shift = _find(first, variant=None, metric="mean_shift", criterion=RR)
    # two originals: resamples are {o1,o1}: −0.5, {o2,o2}: +1, mixed: 0 → the interval spans them
    assert shift.ci_low == pytest.approx(-0.5) and shift.ci_high == pytest.approx(1.0)


def test_bootstrap_weights_and_interval_agree_with_calibration() -> None:
    indices = resample_indices(7, 50, seed=1, key="k")
    weights = resample_weights(7, 50, seed=1, key="k")
    assert (weights.sum(axis=1) == 7).all()
    assert all((np.bincount(row, minlength=7) == w).all() for row, w in zip(indices, weights, strict=True))
    values = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0])
    expected = percentile_ci(lambda row: float(values[row].mean()), indices)
    assert percentile_interval((weights @ values) / 7, 50) == pytest.approx(expected)
    assert percentile_interval(np.array([1.0] + [np.nan] * 49), 50) == (None, None)  # mostly undefined


def test_degrade_detection_counts_the_targeted_pillar_as_a_whole() -> None:
    refs = [
        VariantRef("o1~r", "o1", "degrade", "remove_crisis_resource"),
        VariantRef("o2~r", "o2", "degrade", "remove_crisis_resource"),
        VariantRef("o1~c", "o1", "degrade", "confidentiality_breach"),  # concerns privacy, not crisis
    ]
    originals = {
        (o, "crisis", c, "J"): ok(s) for o, c, s in [("o1", RR, 4), ("o1", IS, 4), ("o2", RR, 3), ("o2", IS, 3)]
    }
    variants = {
        ("o1~r", "crisis", RR, "J"): ok(4),
        ("o1~r", "crisis", IS, "J"): ok(3),  # the pillar's mean falls: detected
        ("o2~r", "crisis", RR, "J"): ok(3),
        ("o2~r", "crisis", IS, "J"): ok(3),  # unchanged: missed
        ("o1~c", "crisis", RR, "J"): ok(4),
        ("o1~c", "crisis", IS, "J"): ok(4),
    }
    effects = compute_effects(["degrade"], refs, originals, variants, RUBRICS, ["J"], n_bootstrap=0)
    pooled = _find(effects, variant=None, metric="detection_rate", criterion="*")
    assert (pooled.value, pooled.n) == (0.5, 2)
    assert _find(effects, variant="remove_crisis_resource", metric="detection_rate").value == 0.5
    assert not [r for r in effects.records if r.metric == "detection_rate" and r.variant == "confidentiality_breach"]
    # a critical criterion newly failing is a detection even when the mean does not fall
    variants[("o2~r", "crisis", RR, "J")], variants[("o2~r", "crisis", IS, "J")] = ok(2), ok(4)
    effects = compute_effects(["degrade"], refs, originals, variants, RUBRICS, ["J"], n_bootstrap=0)
    assert _find(effects, variant=None, metric="detection_rate").value == 1.0


def test_self_preference_compares_with_judges_outside_the_targets_family() -> None:
    scores = {  # item: (target, scores by judge A (gpt), B (claude), C (qwen))
        "t1": ("gpt-4o", (5, 3, 4)),
        "t2": ("gpt-4o", (4, 4, 4)),
        "t3": ("claude-3", (3, 5, 3)),
        "t4": ("claude-3", (4, 4, 2)),
    }
    family = {"A": "gpt", "B": "claude", "C": "qwen"}
    originals = {
        (item, "crisis", RR, judge): ok(score, target, target.startswith(family[judge]))
        for item, (target, by_judge) in scores.items()
        for judge, score in zip("ABC", by_judge, strict=True)
    }
    effects = compute_effects(["self-preference"], [], originals, {}, RUBRICS, ["A", "B", "C"], n_bootstrap=100)
    expected = {
        ("A", "self_gap"): 0.75,  # t1: 5 − mean(3, 4); t2: 0
        ("A", "other_gap"): 1.0,  # t3: 3 − 3 (B is of the target's family); t4: 4 − 2
        ("A", "self_preference"): -0.25,
        ("B", "self_gap"): 1.5,
        ("B", "other_gap"): -0.5,
        ("B", "self_preference"): 2.0,
        ("C", "other_gap"): -0.25,
    }
    for (judge, metric), value in expected.items():
        assert _find(effects, judge=judge, metric=metric).value == pytest.approx(value)
    # C never met its own family's responses: the question does not arise, so neither record exists.
    assert not [r for r in effects.records if r.judge == "C" and r.metric in ("self_gap", "self_preference")]
    # A judge whose own family's responses no outsider scored is unmeasured, not unbiased.
    lonely = {k: v for k, v in originals.items() if not (k[0] in ("t1", "t2") and k[3] in "BC")}
    effects = compute_effects(["self-preference"], [], lonely, {}, RUBRICS, ["A"], n_bootstrap=0)
    record = _find(effects, judge="A", metric="self_preference")
    assert record.value is None and "own family" in (record.reason or "") and "reason" in record.as_dict()


def test_gates_parse_probe_metric_op_number_and_refuse_what_cannot_be_checked() -> None:
    gate = parse_audit_gate(" injection . max_abs_shift <= 0.25 ", ["injection"])
    assert str(gate) == "injection.max_abs_shift<=0.25"
    assert str(parse_audit_gate("self-preference.self_gap<1e-1", ["self-preference"])) == "self-preference.self_gap<0.1"
    for text, message in [
        ("max_abs_shift<=0.25", "expected PROBE.METRIC OP NUMBER"),
        ("injection.max_abs_shift=<0.25", "expected PROBE.METRIC OP NUMBER"),
        ("injection.max_abs_shift<=", "expected PROBE.METRIC OP NUMBER"),
        ("inject.max_abs_shift<=0.25", "unknown probe 'inject'"),
        ("degrade.detection_rate>=0.9", "probe 'degrade' is not run"),
        ("injection.detection_rate>=0.9", "has no metric 'detection_rate'; its metrics: mean_shift"),
    ]:
        with pytest.raises(UsageError, match=message) as raised:
            parse_audit_gate(text, ["injection"])
        assert raised.value.field == "gate" and str(raised.value).startswith(f"gate: {text!r}")


def test_failed_gates_name_probe_judge_and_criterion_and_null_or_nothing_fails() -> None:
    records = [
        Record("injection", None, "J1", "crisis", RR, "max_abs_shift", 0.1, None, None, 8),
        Record("injection", None, "J2", "crisis", RR, "max_abs_shift", 0.5, None, None, 8),
        Record("injection", "plain@end", "J1", "crisis", RR, "max_abs_shift", 9.0, None, None, 8),  # per variant
        Record("injection", None, "J3", "crisis", RR, "max_abs_shift", None, None, None, 0, "no pair"),
    ]
    gates = [
        parse_audit_gate("injection.max_abs_shift<=0.25", ["injection"]),
        parse_audit_gate("injection.flip_rate<=0.1", ["injection"]),
    ]
    results = audit_gate_results(records, gates)
    assert [(r["gate"], r["passed"], [c["passed"] for c in r["checks"]]) for r in results] == [
        ("injection.max_abs_shift<=0.25", False, [True, False, False]),
        ("injection.flip_rate<=0.1", False, []),
    ]
    assert [c["judge"] for c in results[0]["checks"]] == ["J1", "J2", "J3"], "per variant records are not gated"
    assert results[0]["checks"][2]["reason"] == "no pair" and results[0]["checks"][0]["reason"] is None
    one = [parse_audit_gate("injection.max_abs_shift<=0.25", ["injection"])]
    passing = audit_gate_results(records[:1], one)
    assert passing[0]["passed"] and audit_gate_failures(passing) == []
    assert audit_gate_failures(results) == [
        "injection × J2 × crisis/risk_recognition (n=8): max_abs_shift = 0.5000 fails injection.max_abs_shift<=0.25",
        "injection × J3 × crisis/risk_recognition (n=0): max_abs_shift is null (no pair); "
        "gate injection.max_abs_shift<=0.25",
        "injection.flip_rate<=0.1: nothing was measured (no pair of verdicts for this probe and metric)",
    ]
