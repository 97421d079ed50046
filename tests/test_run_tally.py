"""A run's cost: the priced answered calls add up; calls without a cost are counted apart, by reason
(#28 item 3: one failed call with no answer made the whole run's cost null)."""

from __future__ import annotations

from judge.calls.engine import CallResult
from judge.calls.runner import RunTally


def _result(cost: float | None, failure: str | None = None, cached: bool = False) -> CallResult:
    return CallResult(None, None, 10, 5, 0.1, cached=cached, failure_reason=failure, cost_usd=cost)


def test_a_failed_call_without_an_answer_leaves_the_cost_of_the_others() -> None:
    tally = RunTally()
    for result in [_result(0.25), _result(None, "connection"), _result(0.5), _result(0.125, "invalid_answer")]:
        tally.add(result)
    spend = tally.spend()
    assert spend["cost_usd"] == 0.875
    assert spend["calls_without_cost"] == {"failed": 1, "unpriced": 0}


def test_unpriced_answers_are_counted_and_a_run_with_no_priced_call_has_no_cost() -> None:
    tally = RunTally()
    for result in [_result(None), _result(None, "timeout"), _result(None, cached=True)]:
        tally.add(result)
    spend = tally.spend()
    assert spend["cost_usd"] is None  # nothing this run was priced: unknown, not $0
    assert spend["calls_without_cost"] == {"failed": 1, "unpriced": 1}  # a cache hit costs nothing


def test_a_run_served_from_the_cache_costs_nothing() -> None:
    tally = RunTally()
    tally.add(_result(None, cached=True))
    assert tally.spend()["cost_usd"] == 0.0 and tally.spend()["calls_without_cost"] == {"failed": 0, "unpriced": 0}


def test_the_report_caption_says_which_calls_the_cost_leaves_out() -> None:
    from judge.log import StageSummary
    from judge.report.stages import cost_section

    score = StageSummary.model_validate({"cost_usd_this_run": 0.5, "calls_without_cost": {"failed": 2, "unpriced": 0}})
    respond = StageSummary.model_validate({"cost_usd_this_run": None, "calls_without_cost": {"unpriced": 3}})
    intro = cost_section([("targets", respond), ("judges", score)], "run").intro
    assert "targets: the cost leaves out 3 answered call(s) of a model with no price set" in intro
    assert "judges: the cost leaves out 2 failed call(s) with no known cost" in intro
