"""`trustmh compare A B`: the paired statistics on hand-computed values, the comparison of outcomes, and the
command end to end on two runs judged through the real SDKs against the loopback server."""

from __future__ import annotations

import json
import shutil
import stat
import statistics
from pathlib import Path
from typing import Any

import pytest
import yaml

from judge.compare import Outcome, compare_outcomes, verdict_outcomes
from judge.log import read_run
from judge.stats.bootstrap import SMALL_N, is_small_n
from judge.stats.paired import paired_difference
from tests.browser import find_chromium, visit
from tests.conftest import make_items, write_jsonl
from tests.fakeapi import FakeLLMServer
from tests.fakeapi.judge_script import expected_score
from tests.report_pages import read_report

# ----------------------------------------------------------------------------- paired statistics


def test_paired_difference_on_hand_computed_values() -> None:
    # differences B − A: 1, 2, −3, 4, 0 → mean 0.8; Wilcoxon on the four that moved: ranks 1, 2, 3, 4,
    # W+ = 1 + 2 + 4 = 7, W− = 3, statistic min = 3; exact two-sided p = 2 · P(W ≤ 3) = 2 · 5/16 = 0.625
    # (subsets of {1, 2, 3, 4} summing to at most 3: {}, {1}, {2}, {3}, {1, 2}).
    result = paired_difference([3, 2, 4, 1, 5], [4, 4, 1, 5, 5], n_bootstrap=200, seed=1)
    assert (result.n, result.mean_a, result.mean_b) == (5, 3.0, 3.8)
    assert result.mean_difference == pytest.approx(0.8)
    assert (result.changed, result.moved_up, result.moved_down, result.changed_share) == (4, 3, 1, 0.8)
    assert result.wilcoxon_statistic == 3.0 and result.wilcoxon_p == pytest.approx(0.625)
    assert result.small_n is True
    assert result.ci_low is not None and result.ci_high is not None
    assert -3 <= result.ci_low <= result.mean_difference <= result.ci_high <= 4


def test_paired_difference_interval_of_a_constant_shift_is_that_shift() -> None:
    result = paired_difference([1, 2, 3], [3, 4, 5], n_bootstrap=50, seed=0)
    assert (result.mean_difference, result.ci_low, result.ci_high) == (2.0, 2.0, 2.0)
    assert result.changed_share == 1.0 and result.moved_up == 3


def test_paired_difference_without_movement_or_resamples() -> None:
    still = paired_difference([2, 3], [2, 3], n_bootstrap=0, seed=0)
    assert still.changed == 0 and still.wilcoxon_statistic is None and still.wilcoxon_p is None
    assert still.ci_low is None and still.ci_high is None and still.mean_difference == 0.0
    empty = paired_difference([], [], n_bootstrap=100, seed=0)
    assert empty.n == 0 and empty.mean_difference is None and empty.changed_share is None
    with pytest.raises(ValueError, match="unequal length"):
        paired_difference([1], [1, 2], n_bootstrap=0, seed=0)


def test_small_n_threshold() -> None:
    assert SMALL_N == 30
    assert is_small_n(4) and is_small_n(SMALL_N - 1)
    assert not is_small_n(SMALL_N) and not is_small_n(None)


# ----------------------------------------------------------------------------- comparing outcomes


def _scored(score: float, fail_below: int | None = None) -> Outcome:
    return Outcome("scored", score, None if fail_below is None else score < fail_below, fail_below is not None)


def test_compare_outcomes_by_hand() -> None:
    # c1 critical, fails below 3: i1 2 → 3 (fail → pass), i2 4 → 2 (pass → fail), i3 3 → 3, i4 in A only.
    # c2: i1 5 → 5, i2 4 → not applicable (a status change). c3 in B only.
    a = {("i1", "t", "p", "c1"): _scored(2, 3), ("i2", "t", "p", "c1"): _scored(4, 3),
         ("i3", "t", "p", "c1"): _scored(3, 3), ("i4", "t", "p", "c1"): _scored(4, 3),
         ("i1", "t", "p", "c2"): _scored(5), ("i2", "t", "p", "c2"): _scored(4)}
    b = {("i1", "t", "p", "c1"): _scored(3, 3), ("i2", "t", "p", "c1"): _scored(2, 3),
         ("i3", "t", "p", "c1"): _scored(3, 3), ("i1", "t", "p", "c2"): _scored(5),
         ("i2", "t", "p", "c2"): Outcome("not_applicable"), ("i1", "t", "p", "c3"): _scored(1)}
    doc = compare_outcomes(a, b, n_bootstrap=100, seed=0, changed_criteria={("p", "c1"): True})
    c1, c2, c3 = doc.criteria
    assert (c1.criterion, c1.n, c1.units_a, c1.units_b, c1.only_a, c1.only_b) == ("c1", 3, 4, 3, 1, 0)
    assert c1.mean_a == 3.0 and c1.mean_b == pytest.approx(8 / 3) and c1.mean_difference == pytest.approx(-1 / 3)
    assert (c1.changed, c1.moved_up, c1.moved_down) == (2, 1, 1) and c1.changed_share == pytest.approx(2 / 3)
    # differences 1 and −2: ranks 1 and 2, W = min(1, 2) = 1; exact p = 2 · P(W+ ≤ 1) = 2 · 2/4 = 1
    assert c1.wilcoxon_statistic == 1.0 and c1.wilcoxon_p == pytest.approx(1.0)
    assert c1.critical and (c1.failing_a, c1.failing_b, c1.pass_to_fail, c1.fail_to_pass) == (1, 1, 1, 1)
    assert c1.criterion_changed is True and c2.criterion_changed is None
    assert (c2.n, c2.status_changed, c2.changed, c2.wilcoxon_p, c2.critical) == (1, 1, 0, None, False)
    assert c2.failing_a is None and c2.pass_to_fail is None
    assert (c3.in_a, c3.in_b, c3.units_b, c3.n, c3.mean_difference) == (False, True, 1, 0, None)
    assert [(u.item_id, u.criterion, u.change, u.gate, u.difference) for u in doc.changes] == [
        ("i1", "c1", "moved", "fail_to_pass", 1), ("i2", "c1", "moved", "pass_to_fail", -2),
        ("i4", "c1", "only_a", None, None), ("i2", "c2", "status", None, None), ("i1", "c3", "only_b", None, None)]
    [pillar] = doc.pillars
    assert (pillar.n, pillar.failing_a, pillar.failing_b, pillar.pass_to_fail, pillar.fail_to_pass) == (3, 1, 1, 1, 1)
    assert [(f.item_id, f.failing_a, f.failing_b, f.criteria) for f in doc.gate_flips] == [
        ("i1", True, False, ["c1"]), ("i2", False, True, ["c1"])]
    assert doc.items_only_a == [{"item_id": "i4", "target": "t"}] and doc.items_only_b == []


def test_a_moved_fail_line_flips_the_gate_at_the_same_score() -> None:
    a = {("i1", None, "p", "c"): _scored(3, 3)}
    b = {("i1", None, "p", "c"): _scored(3, 4)}
    doc = compare_outcomes(a, b, n_bootstrap=0)
    [change] = doc.changes
    assert (change.change, change.gate, change.difference) == ("gate", "pass_to_fail", 0)
    assert doc.criteria[0].pass_to_fail == 1 and doc.criteria[0].changed == 0


def test_a_criterion_that_does_not_apply_never_fails_the_pillar() -> None:
    a = {("i1", None, "p", "c"): _scored(4, 3), ("i1", None, "p", "turns"): Outcome("not_applicable", critical=True)}
    b = {("i1", None, "p", "c"): _scored(2, 3), ("i1", None, "p", "turns"): Outcome("not_applicable", critical=True)}
    [pillar] = compare_outcomes(a, b, n_bootstrap=0).pillars
    assert (pillar.n, pillar.pass_to_fail) == (1, 1)
    undecided = {**b, ("i1", None, "p", "turns"): Outcome("undecided", critical=True)}
    assert compare_outcomes(a, {**undecided, ("i1", None, "p", "c"): _scored(4, 3)}, n_bootstrap=0).pillars == []


def _verdict(judge: str, status: str, score: int | None, role: str = "recorded", criterion: str = "c") -> dict:
    return {"item_id": "i1", "target": "t", "pillar": "p", "criterion": criterion, "judge": judge, "role": role,
            "status": status, "score": score}


def test_verdict_outcomes_take_the_median_and_leave_tiebreakers_out() -> None:
    verdicts = [_verdict("j1", "ok", 2), _verdict("j2", "ok", 4), _verdict("t", "ok", 1, role="tiebreak"),
                _verdict("j1", "not_applicable", None, criterion="na"), _verdict("j1", "failed", None, criterion="x")]
    outcomes = verdict_outcomes(verdicts, {("p", "c"): 3})
    assert outcomes[("i1", "t", "p", "c")] == Outcome("scored", 3, False, True)
    assert outcomes[("i1", "t", "p", "na")] == Outcome("not_applicable")
    assert outcomes[("i1", "t", "p", "x")] == Outcome("undecided")
    assert verdict_outcomes([_verdict("j1", "ok", 2)], {("p", "c"): 3})[("i1", "t", "p", "c")].critical_fail is True


# ----------------------------------------------------------------------------- the command, end to end

CRITERION_EDITED = "risk_recognition"  # its fail line moves from 3 to 4 in run B's rubric


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict[str, Any]], str]:
    """Run A: one OpenAI judge on 6 crisis items. Run B: a panel of the OpenAI and Anthropic judges on the first
    5 of them, with the rubric's risk_recognition fail line moved. Returns (A, B, items, anthropic model)."""
    from judge.bundled import bundled_path
    from judge.cli.main import main
    from tests.conftest import ANTHROPIC_KEY, OPENAI_KEY

    base = tmp_path_factory.mktemp("compare")
    items = make_items(6)
    rubrics_a, rubrics_b = base / "rubrics-a", base / "rubrics-b"
    for folder in (rubrics_a, rubrics_b):
        folder.mkdir()
    text = (bundled_path("rubrics") / "crisis.yaml").read_text(encoding="utf-8")
    (rubrics_a / "crisis.yaml").write_text(text, encoding="utf-8")
    rubric = yaml.safe_load(text)
    edited = next(c for c in rubric["criteria"] if c["id"] == CRITERION_EDITED)
    assert edited["fail_below"] == 3
    edited["fail_below"] = 4
    (rubrics_b / "crisis.yaml").write_text(yaml.safe_dump(rubric, sort_keys=False, allow_unicode=True), "utf-8")
    with pytest.MonkeyPatch.context() as patch, FakeLLMServer() as server:
        from tests.fakeapi.judge_script import scripted_answerer

        server.answerer = scripted_answerer
        patch.setenv("OPENAI_API_KEY", OPENAI_KEY)
        patch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
        patch.setenv("TRUSTMH_CACHE_DIR", str(base / "cache"))
        openai = f"openai:gpt-4.1-mini@{server.openai_base_url}"
        anthropic = f"anthropic:claude-sonnet-4-5@{server.anthropic_base_url}"
        for name, judges, rubrics, rows in (("a", openai, rubrics_a, items), ("b", f"{openai},{anthropic}",
                                                                            rubrics_b, items[:5])):
            path = write_jsonl(base / f"items-{name}.jsonl", rows)
            with pytest.raises(SystemExit) as exited:
                main(["score", str(path), "--judges", judges, "--rubrics", str(rubrics), "--out", str(base / name),
                      "-q"])
            assert exited.value.code in (None, 0)
    return base / "a", base / "b", items, "claude-sonnet-4-5"


def _bounds(rubric_dir: Path, criterion: str) -> tuple[int, int, int | None]:
    criteria = yaml.safe_load((rubric_dir / "crisis.yaml").read_text())["criteria"]
    found = next(c for c in criteria if c["id"] == criterion)
    return found["scale"]["min"], found["scale"]["max"], found.get("fail_below")


def test_compare_end_to_end(two_runs: Any, run_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_a, run_b, items, _ = two_runs
    monkeypatch.chdir(tmp_path)
    result = run_cli("compare", run_a, run_b, "--bootstrap", "200")
    assert result.code == 0, result.stderr
    out = Path("runs") / "compare-a-vs-b"  # the default: under runs/, never the current folder
    assert f"wrote {out / 'compare.json'}, {out / 'compare.md'}, {out / 'report.html'}" in result.stdout
    for name in ("compare.json", "compare.md", "report.html"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
    doc = json.loads((out / "compare.json").read_text())

    # Scores by hand from the scripted judge: A is the OpenAI judge's, B the median of both judges' (a panel).
    rubric_dir = run_a.parent / "rubrics-a"
    criteria = {c["criterion"]: c for c in doc["criteria"]}
    low, high, _ = _bounds(rubric_dir, "safe_messaging")
    responses = [item["response"] for item in items]
    a_scores = [expected_score("gpt-4.1-mini", "safe_messaging", r, low, high) for r in responses[:5]]
    b_scores = [statistics.median([expected_score("gpt-4.1-mini", "safe_messaging", r, low, high),
                                   expected_score("claude-sonnet-4-5", "safe_messaging", r, low, high)])
                for r in responses[:5]]
    safe = criteria["safe_messaging"]
    assert (safe["n"], safe["units_a"], safe["units_b"], safe["only_a"]) == (5, 6, 5, 1)
    assert safe["mean_a"] == pytest.approx(statistics.mean(a_scores))
    assert safe["mean_b"] == pytest.approx(statistics.mean(b_scores))
    assert safe["mean_difference"] == pytest.approx(statistics.mean(b_scores) - statistics.mean(a_scores))
    assert safe["changed"] == sum(x != y for x, y in zip(a_scores, b_scores, strict=True))
    assert safe["small_n"] is True and safe["criterion_changed"] is False
    assert criteria[CRITERION_EDITED]["criterion_changed"] is True
    # The edited criterion's gate: A fails below 3 (its rubric), B below 4 (the panel row's fail line).
    low, high, _ = _bounds(rubric_dir, CRITERION_EDITED)
    first = [expected_score("gpt-4.1-mini", CRITERION_EDITED, r, low, high) for r in responses[:5]]
    second = [statistics.median([expected_score("gpt-4.1-mini", CRITERION_EDITED, r, low, high),
                                 expected_score("claude-sonnet-4-5", CRITERION_EDITED, r, low, high)])
              for r in responses[:5]]
    edited = criteria[CRITERION_EDITED]
    assert edited["failing_a"] == sum(s < 3 for s in first) and edited["failing_b"] == sum(s < 4 for s in second)
    assert edited["pass_to_fail"] == sum(x >= 3 and y < 4 for x, y in zip(first, second, strict=True))
    assert doc["items_only_a"] == [{"item_id": "item-005", "target": items[5]["target"]}]
    assert doc["items_only_b"] == []
    assert {(c["item_id"], c["change"]) for c in doc["changes"] if c["item_id"] == "item-005"} == {("item-005",
                                                                                                    "only_a")}
    # The two runs side by side.
    a, b = doc["runs"]["a"], doc["runs"]["b"]
    assert (a["source"], b["source"]) == ("verdicts.jsonl", "panel.jsonl")
    assert len(a["judges"]) == 1 and len(b["judges"]) == 2 and b["panel_method"] == "median"
    assert a["rubric_hashes"]["crisis"] != b["rubric_hashes"]["crisis"]
    assert doc["meta"]["bootstrap"] == 200 and doc["meta"]["small_n_below"] == SMALL_N
    # The terminal summary: per criterion, the small-n mark, the item in one run only, where the files went.
    assert f"{CRITERION_EDITED} †" in result.stdout and "† the criterion's rubric changed" in result.stdout
    assert "* small n" in result.stdout and "item(s) in run A only: item-005" in result.stdout
    # compare.md and the run as read back.
    markdown = (out / "compare.md").read_text()
    assert "| crisis | safe_messaging | no | 5 |" in markdown and "small n" in markdown
    run = read_run(out)
    assert run.kind == "compare" and len(run.tables()["changes"]) == len(doc["changes"])


def test_compare_report_page(two_runs: Any, tmp_path: Path) -> None:
    import judge

    run_a, run_b, _, _ = two_runs
    result = judge.compare(run_a, run_b, out=tmp_path / "cmp", bootstrap=100)
    assert [p.name for p in result.files] == ["compare.json", "compare.md", "report.html"]
    html = (tmp_path / "cmp" / "report.html").read_text()
    page = read_report(html)
    assert [s.id for s in page.sections] == ["runs", "criteria", "gates", "changes", "only"]
    assert page.section("criteria").svgs_in_figures == 1
    doc = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    rows = page.table("criteria").records()
    assert [r["criterion"].text for r in rows] == [c["criterion"] for c in doc["criteria"]]
    for row, record in zip(rows, doc["criteria"], strict=True):
        assert row["B − A"].value == record["mean_difference"]
        assert row["Wilcoxon p"].value == record["wilcoxon_p"]
        if record["ci_low"] is not None:
            assert row["interval"].value == [record["ci_low"], record["ci_high"]]
            assert row["interval"].text.endswith("⚠")
    assert len(page.table("changes").rows) == len(doc["changes"])
    assert [r["item"].text for r in page.table("items_only").records()] == ["item-005"]
    judges_row = next(r for r in page.table("runs").records() if r[""].text == "judges")
    assert judges_row["same"].text == "differs"
    assert not [u for u in page.urls if u[2].startswith(("http:", "https:", "//"))]


CHROMIUM = find_chromium()


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not found")
def test_compare_page_in_the_browser(two_runs: Any, tmp_path: Path) -> None:
    import judge

    run_a, run_b, _, _ = two_runs
    judge.compare(run_a, run_b, out=tmp_path / "cmp", bootstrap=50)
    assert CHROMIUM is not None
    seen = visit(tmp_path / "cmp" / "report.html", CHROMIUM, width=1400)
    assert seen.errors == [] and seen.screenshot_png and seen.pdf.startswith(b"%PDF-")


# ----------------------------------------------------------------------------- bad input


def test_compare_refuses_what_is_not_a_run(two_runs: Any, run_cli: Any, tmp_path: Path) -> None:
    run_a, _, _, _ = two_runs
    missing = tmp_path / "nope"
    result = run_cli("compare", run_a, missing, "--out", tmp_path / "o")
    assert result.code == 2 and f"{missing}: no such folder; give the --out folder of a finished" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("compare", empty, run_a, "--out", tmp_path / "o")
    assert result.code == 2 and f"{empty}: not a run folder (no summary.json" in result.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "summary.json").write_text("{not json")
    (broken / "verdicts.jsonl").write_text("")
    result = run_cli("compare", run_a, broken, "--out", tmp_path / "o")
    assert result.code == 2 and f"{broken / 'summary.json'}:1: not valid JSON" in result.stderr
    unjudged = tmp_path / "bench"
    unjudged.mkdir()
    (unjudged / "bench.json").write_text("{}")
    result = run_cli("compare", run_a, unjudged, "--out", tmp_path / "o")
    assert result.code == 2 and "a bench run with no judged stage" in result.stderr
    result = run_cli("compare", run_a, run_a, "--out", run_a)
    assert result.code == 2 and "is one of the compared runs" in result.stderr
    other = tmp_path / "other-run"
    shutil.copytree(run_a, other)
    result = run_cli("compare", run_a, run_a, "--out", other)
    assert result.code == 2 and f"--out {other}: holds a score run; choose another folder" in result.stderr
    assert not (other / "compare.json").exists()
    assert not (tmp_path / "o").exists()  # nothing written on bad input
