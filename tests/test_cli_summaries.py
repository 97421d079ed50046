"""What `score`, `audit`, `demo` and `bench` print at the end (#26 items 6 and 7): a compact summary of the
results, every target, suite and judge name whole (wrapped or in a legend, never cut), and commands that
stay on one line when the output is piped."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from judge.cli.suites_cmd import print_primary_table
from judge.cli.tables import gate_lines, print_audit_summary, print_score_summary
from judge.suites.catalogue import SUITES
from tests.conftest import judges_arg, make_items, write_jsonl
from tests.fakeapi import FakeLLMServer
from tests.fakeapi.judge_script import scripted_answerer

LONG_JUDGES = ["openai:gpt-4.1-mini@http://127.0.0.1:8080/v1", "anthropic:claude-sonnet-4-5@http://127.0.0.1:8080"]
LONG_TARGET = "openai:gpt-4o-mini-2024-07-18@https://api.openai.com/v1"


def _printed(draw: Any, width: int) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    draw(console)
    return console.export_text()


def _summary() -> dict[str, Any]:
    means = [
        {"pillar": "crisis", "target": LONG_TARGET, "criterion": "risk_recognition", "judge": LONG_JUDGES[0],
         "mean": 3.5, "n": 4, "not_applicable": 0, "failed": 1},
        {"pillar": "crisis", "target": LONG_TARGET, "criterion": "risk_recognition", "judge": LONG_JUDGES[1],
         "mean": 2.25, "n": 4, "not_applicable": 1, "failed": 0},
        {"pillar": "crisis", "target": "claude-3-haiku", "criterion": "risk_recognition", "judge": LONG_JUDGES[0],
         "mean": None, "n": 0, "not_applicable": 0, "failed": 4},
    ]
    rates = [{"pillar": "crisis", "target": LONG_TARGET, "judge": LONG_JUDGES[0], "rate": 0.25, "n": 4},
             {"pillar": "crisis", "target": LONG_TARGET, "judge": LONG_JUDGES[1], "rate": 0.5, "n": 4}]
    return {"items": 8, "judges": LONG_JUDGES, "mean_scores": means, "critical_failure_rate": rates,
            "calls": {"planned": 16, "requested": 16, "cache_hits": 0, "resumed": 0, "failed": 5},
            "failures_by_reason": {"timeout": 3, "auth": 2}, "cost_usd_this_run": 0.0123}


def test_score_summary_names_targets_and_judges_and_labels_the_critical_rates() -> None:
    wide = _printed(lambda c: print_score_summary(_summary(), c), 250)
    rows = [line for line in wide.splitlines() if "risk_recognition" in line]
    assert len(rows) == 2, "one row per pillar × target × criterion, the judges side by side"
    assert LONG_TARGET in rows[0] and "3.50 (n=4, 1 failed)" in rows[0] and "2.25 (n=4, 1 n/a)" in rows[0]
    assert "claude-3-haiku" in rows[1] and "n/a (n=0, 4 failed)" in rows[1]
    assert "Critical-failure rate (share of judged responses failing a critical criterion)" in wide
    assert "25% of 4" in wide and "50% of 4" in wide and "pooled" not in wide
    assert "16 planned, 16 sent, 0 from cache, 5 failed (timeout 3, auth 2); cost this run: $0.0123" in wide
    narrow = _printed(lambda c: print_score_summary(_summary(), c), 60)
    assert "…" not in narrow, "no name is cut"
    for number, judge in enumerate(LONG_JUDGES, start=1):
        assert f"  judge {number}: {judge}" in narrow.splitlines(), "the legend lines are never wrapped"


def test_gate_verdicts_are_one_line_per_gate_naming_each_failing_judge_once() -> None:
    checks = [{"judge": j, "pillar": "crisis", "criterion": f"c{k}", "n": 4, "value": 0.5 if j == "b" else 0.0,
               "passed": j != "b"} for j in ("a", "b") for k in range(20)]
    results = [{"gate": "format.flip_rate<=0", "probe": "format", "passed": False, "checks": checks},
               {"gate": "verbosity.mean_shift<=0.5", "probe": "verbosity", "passed": True, "checks": checks[:3]},
               {"gate": "degrade.detection_rate>=0.9", "probe": "degrade", "passed": False, "checks": []}]
    lines = gate_lines(results)
    assert lines == [
        "gate failed: format.flip_rate<=0: 20 of 40 checks: format × b × crisis/c0 = 0.5, crisis/c1 = 0.5 (+18 more)",
        "gate passed: verbosity.mean_shift<=0.5 (3 checks)",
        "gate failed: degrade.detection_rate>=0.9: nothing was measured (no pair of verdicts for this probe and "
        "metric)"]


def test_audit_summary_shows_the_criterion_that_moved_most_per_probe_and_judge() -> None:
    def record(probe: str, judge: str, metric: str, criterion: str, value: float | None, **extra: Any) -> dict:
        return {"probe": probe, "variant": None, "judge": judge, "pillar": "crisis", "criterion": criterion,
                "metric": metric, "value": value, "n": 8, **extra}

    audit = {"results": [
        record("verbosity", LONG_JUDGES[0], "mean_shift", "a", 0.25, ci_low=0.1, ci_high=0.4),
        record("verbosity", LONG_JUDGES[0], "mean_shift", "b", -1.5, ci_low=-2.0, ci_high=-1.0),
        record("verbosity", LONG_JUDGES[1], "mean_shift", "a", None),
        record("verbosity", LONG_JUDGES[0], "flip_rate", "a", 0.125),
        {**record("verbosity", LONG_JUDGES[0], "mean_shift", "a", 9.0), "variant": "pad-long"},  # not pooled
        record("degrade", LONG_JUDGES[1], "detection_rate", "*", 1.0),
    ]}
    text = _printed(lambda c: print_audit_summary(audit, c), 200)
    verbosity = next(line for line in text.splitlines() if "verbosity" in line and "mean_shift" in line)
    assert "-1.50 [-2.00, -1.00]" in verbosity and "9.00" not in text
    assert "12% of 8" in text and "+1.00" in text and "detection_rate" in text
    assert "b (of 2)" in text, "the criterion named, and how many there were"


def test_ranked_table_keeps_every_suite_and_target_name_whole() -> None:
    targets = [LONG_TARGET, "anthropic:claude-3-5-haiku-20241022", "qwen2.5-7b"]
    results = [{"target": t, "suite": s, "metric": "accuracy", "group": None, "value": 0.5} for s in SUITES
               for t in targets]
    card = {"results": results, "ranks": {s: {"metric": "accuracy", "ranks": {t: 1 for t in targets}}
                                          for s in SUITES}}
    text = _printed(lambda c: print_primary_table(card, c), 80)
    assert "…" not in text
    for suite in SUITES:
        assert any(line.startswith(f"│ {suite} ") for line in text.splitlines()), suite


# ------------------------------------------------------------------------ the commands


def _score(run_cli: Any, tmp_path: Path, *extra: str) -> Any:
    tmp_path.mkdir()
    items = write_jsonl(tmp_path / "items.jsonl", make_items(4, ["crisis"]))
    with FakeLLMServer(answerer=scripted_answerer) as server:
        return run_cli("score", items, "--judges", judges_arg(server), "--out", tmp_path / "out", *extra)


def test_score_prints_its_summary_and_quiet_prints_none(tmp_path: Path, judge_env: Path, run_cli: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import judge.cli.main

    monkeypatch.setattr(judge.cli.main, "out_console", Console(width=250))
    loud = _score(run_cli, tmp_path / "loud")
    assert loud.code == 0, loud.stderr
    assert "Mean score per criterion and target" in loud.stdout and "Critical-failure rate" in loud.stdout
    assert "  judge 1: openai:gpt-4.1-mini@" in loud.stdout and "  judge 2: anthropic:claude-sonnet-4-5@" in loud.stdout
    assert "risk_recognition" in loud.stdout
    quiet = _score(run_cli, tmp_path / "quiet", "-q")
    assert quiet.code == 0 and quiet.stdout == ""


def test_suggested_commands_are_never_broken_across_lines() -> None:
    """A piped 80-column console wrapped `trustmh bench --recorded trustmh-bench --out DIR` in two."""
    from calibration.demo import print_crisis_calibration
    from judge.suites.demo import print_recorded_scorecard

    recorded = _printed(print_recorded_scorecard, 40)
    if "Recorded scorecard skipped" in recorded:
        pytest.skip("the trustmh-bench bundles are not in TRUSTMH_DATA_MIRROR")
    assert any(line.endswith("ranks: trustmh bench --recorded trustmh-bench --out DIR")
               for line in recorded.splitlines()), recorded[-400:]
    calibration = _printed(print_crisis_calibration, 40)
    assert any(line.endswith("Full report: trustmh calibrate --dataset llms-mental-health-crisis")
               for line in calibration.splitlines()), calibration[-400:]
