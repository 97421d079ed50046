"""`trustmh validate` end to end against the loopback server, with scripted judge answers keyed by response,
and the validity table's numbers checked against agreement computed by hand on the first mirror items."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from calibration.annotations import Annotation, CalibrationData, InputError, JudgeScore, Scale
from calibration.api import validate
from calibration.validate import EMPATHIC_MAP, _on_scale, conversation_turns, crisis_set
from calibration.validity import AS_CLOSE, NOT_ENOUGH, WORSE, gate_failures, validity_rows
from judge.errors import ExitCode, UsageError
from judge.labels import CATEGORIES
from judge.settings import RunSettings
from tests.browser import INSTALL_HINT, find_chromium, visit
from tests.conftest import ANTHROPIC_KEY, OPENAI_KEY
from tests.fakeapi import FakeLLMServer
from tests.fakeapi.judge_script import expected_score, judged_response, scripted_verdict
from tests.fakeapi.protocol import ParsedRequest, Reply

MIRROR = Path(os.environ.get("TRUSTMH_DATA_MIRROR") or Path(__file__).resolve().parents[2] / "shared" / "datasets")
pytestmark = pytest.mark.skipif(not (MIRROR / "llms-mental-health-crisis").is_dir(), reason="no dataset mirror")

# The first five crisis posts (crisis-000 … crisis-004) as the mirror rates them:
H1_SCORES, H2_SCORES = (5, 4, 5, 4, 5), (3, 2, 5, 5, 5)
H_LABELS = {  # H1-H4's categories of the same posts
    "H1": ("no_crisis", "anxiety_crisis", "risk_taking_behaviours", "anxiety_crisis", "no_crisis"),
    "H2": ("no_crisis", "risk_taking_behaviours", "no_crisis", "anxiety_crisis", "no_crisis"),
    "H3": ("anxiety_crisis", "suicidal_ideation", "risk_taking_behaviours", "anxiety_crisis", "no_crisis"),
    "H4": ("no_crisis", "substance_abuse_or_withdrawal", "no_crisis", "anxiety_crisis", "no_crisis"),
}
# By hand. Quadratic-weighted kappa of H1 and H2 (5 items): observed Σw·O = 4+4+0+1+0 = 9; expected from the
# margins H1 {4:2, 5:3}, H2 {2:1, 3:1, 5:3}: Σ a_i b_j (i−j)² / n = (8+2+6+27+12)/5 = 11; κ = 1 − 9/11.
QWK_H1_H2 = 2 / 11
# Cohen's kappa of each pair of humans' categories, (po − pe) / (1 − pe) from the labels above:
KAPPA_PAIRS = {"H1~H2": 6 / 16, "H1~H3": 8 / 18, "H1~H4": 7 / 17, "H2~H3": 4 / 19, "H2~H4": 2 / 3, "H3~H4": 1 / 4}
GPT, CLAUDE = "gpt-4.1-mini", "claude-sonnet-4-5"


def _keyed_answerer(responses: list[str]) -> Any:
    """gpt-4.1-mini scores overall_appropriateness as H1 did and reads H1's category; claude-sonnet-4-5 gives 1
    and reads suicidal_ideation everywhere (a constant judge: kappa 0 against anyone)."""
    index = {text.strip(): i for i, text in enumerate(responses)}

    def answer(req: ParsedRequest) -> Reply:
        position = index.get(judged_response(req).strip())

        def score(model: str, criterion: str, response: str, low: int, high: int) -> int:
            if criterion == "overall_appropriateness" and position is not None:
                return H1_SCORES[position] if model == GPT else 1
            return expected_score(model, criterion, response, low, high)

        verdict = scripted_verdict(req, score)
        if "risk_reading" in verdict and position is not None:
            verdict["risk_reading"]["category"] = H_LABELS["H1"][position] if req.model == GPT else "suicidal_ideation"
        return Reply.structured(verdict)

    return answer


@pytest.fixture(scope="module")
def crisis_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One validation of the first five crisis posts by two judges, then the same run again (same out)."""
    responses = [item["response"] for item in crisis_set().items[:5]]
    out = tmp_path_factory.mktemp("validate") / "out"
    with pytest.MonkeyPatch.context() as env, FakeLLMServer(answerer=_keyed_answerer(responses)) as server:
        env.setenv("OPENAI_API_KEY", OPENAI_KEY)
        env.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
        cache = tmp_path_factory.mktemp("cache")
        judges = [f"openai:{GPT}@{server.openai_base_url}", f"anthropic:{CLAUDE}@{server.anthropic_base_url}"]

        def run(**kwargs: Any) -> Any:
            return validate(judges=judges, out=out, datasets=["crisis"], limit=5, min_items=3, bootstrap=50,
                            settings=RunSettings(cache_dir=cache, quiet=True), **kwargs)

        first = run(gate=True)
        asked = len(server.requests)
        again = run(gate=False)
        yield {"first": first, "again": again, "asked": asked, "asked_again": len(server.requests) - asked,
               "out": out, "summary": json.loads((out / "summary.json").read_text())}


def _row(rows: list[dict[str, Any]], criterion: str, model: str) -> dict[str, Any]:
    return next(r for r in rows if r["criterion"] == criterion and model in r["judge"])


def test_crisis_appropriateness_matches_the_hand_computation(crisis_run: dict[str, Any]) -> None:
    rows = crisis_run["summary"]["rows"]
    gpt = _row(rows, "overall_appropriateness", GPT)
    assert gpt["metric"] == "qwk" and gpt["n_items"] == 5 and gpt["humans"] == ["H1", "H2"]
    assert gpt["judge_vs_each_human"] == pytest.approx({"H1": 1.0, "H2": QWK_H1_H2})
    assert gpt["human_vs_human"]["value"] == pytest.approx(QWK_H1_H2)
    assert gpt["human_pairs"] == pytest.approx({"H1~H2": QWK_H1_H2})
    assert gpt["judge_vs_humans"]["value"] == pytest.approx((1 + QWK_H1_H2) / 2)
    assert gpt["gap"]["value"] == pytest.approx((1 - QWK_H1_H2) / 2)
    # MAE: 0 against H1, (2+2+0+1+0)/5 = 1 against H2; the humans differ by 1 on average.
    assert gpt["mae_judge"]["value"] == pytest.approx(0.5)
    assert gpt["mae_humans"]["value"] == pytest.approx(1.0)
    assert gpt["verdict"] == AS_CLOSE and gpt["critical"] and not gpt["published"]
    assert gpt["alt_test"]["winning_rate"] is None and "three humans" in gpt["alt_test"]["reason"]
    low, high = gpt["gap"]["ci_low"], gpt["gap"]["ci_high"]
    assert low is not None and high is not None and low <= high
    claude = _row(rows, "overall_appropriateness", CLAUDE)
    assert claude["judge_vs_humans"]["value"] == pytest.approx(0.0)  # a constant judge
    assert claude["gap"]["value"] == pytest.approx(-QWK_H1_H2)
    assert claude["verdict"] == WORSE and claude["verdict_text"] == f"{WORSE} by {QWK_H1_H2:.2f} qwk"


def test_crisis_category_matches_the_hand_computation(crisis_run: dict[str, Any]) -> None:
    rows = crisis_run["summary"]["rows"]
    gpt = _row(rows, "crisis_category", GPT)
    assert gpt["metric"] == "kappa" and gpt["scale"] == "nominal" and gpt["n_items"] == 5
    assert gpt["human_pairs"] == pytest.approx(KAPPA_PAIRS)
    human_mean = sum(KAPPA_PAIRS.values()) / 6
    assert gpt["human_vs_human"]["value"] == pytest.approx(human_mean)
    # gpt reads H1's categories: kappa 1 with H1 and H1's kappa with the others.
    each = {"H1": 1.0, "H2": KAPPA_PAIRS["H1~H2"], "H3": KAPPA_PAIRS["H1~H3"], "H4": KAPPA_PAIRS["H1~H4"]}
    assert gpt["judge_vs_each_human"] == pytest.approx(each)
    assert gpt["judge_vs_humans"]["value"] == pytest.approx(sum(each.values()) / 4)
    assert gpt["verdict"] == AS_CLOSE
    assert gpt["alt_test"]["reason"] is None or gpt["alt_test"]["winning_rate"] is None
    claude = _row(rows, "crisis_category", CLAUDE)
    assert claude["judge_vs_each_human"] == pytest.approx(dict.fromkeys(each, 0.0))
    assert claude["verdict"] == WORSE


def test_published_judges_are_reference_rows_never_gated(crisis_run: dict[str, Any]) -> None:
    rows = crisis_run["summary"]["rows"]
    published = {r["judge"] for r in rows if r["published"]}
    assert {"gpt-4o-mini (published)", "gpt-5-nano (published)", "Llama-4-Scout (published)",
            "jury (published)"} <= published
    for r in rows:
        if r["published"]:  # the same humans on the same five items
            assert r["human_vs_human"]["value"] == pytest.approx(
                QWK_H1_H2 if r["criterion"] == "overall_appropriateness" else sum(KAPPA_PAIRS.values()) / 6)
    failures = crisis_run["first"].gate_failures  # summary.json is the second run's, without --gate
    assert failures and all("published" not in f for f in failures)
    assert crisis_run["summary"]["gate"] == {"set": False, "failures": []}


def test_gate_fails_on_the_worse_judge_and_rerun_comes_from_the_cache(crisis_run: dict[str, Any]) -> None:
    first, again = crisis_run["first"], crisis_run["again"]
    assert first.exit_code == ExitCode.GATE
    assert sorted(first.gate_failures) == sorted(
        f"llms-mental-health-crisis · {c} · {j}: {WORSE} by {v:.2f} {m}"
        for c, j, v, m in [("crisis_category", next(r.judge for r in first.rows if CLAUDE in r.judge),
                            sum(KAPPA_PAIRS.values()) / 6, "kappa"),
                           ("overall_appropriateness", next(r.judge for r in first.rows if CLAUDE in r.judge),
                            QWK_H1_H2, "qwk")])
    assert again.exit_code == ExitCode.OK and again.gate_failures == []  # no --gate: the table only
    assert crisis_run["asked"] > 0 and crisis_run["asked_again"] == 0
    assert [r.as_dict() for r in again.rows] == [r.as_dict() for r in first.rows]


def test_outputs_are_owner_only_and_the_page_shows_the_table(crisis_run: dict[str, Any]) -> None:
    out: Path = crisis_run["out"]
    for name in ("summary.json", "validity.md", "validity.html"):
        assert (out / name).stat().st_mode & 0o077 == 0, name
    html = (out / "validity.html").read_text()
    assert 'data-table="validity"' in html or "Validity table" in html
    assert f"{(1 + QWK_H1_H2) / 2:.3f}" in html and "as close as a human" in html
    assert "Where the judge and the humans differ most" in html and "<svg" in html
    md = (out / "validity.md").read_text()
    assert "| llms-mental-health-crisis | **overall_appropriateness** |" in md
    worst = crisis_run["summary"]["disagreements"]
    claude = [d for d in worst if CLAUDE in d["judge"] and d["criterion"] == "overall_appropriateness"]
    # claude gave 1 everywhere: furthest from the humans where their mean is highest (crisis-002 and -004, 5/5).
    assert [d["item_id"] for d in claude[:2]] == ["crisis-002", "crisis-004"] and claude[0]["distance"] == 4.0
    assert claude[0]["rationale"] == f"{CLAUDE} on overall_appropriateness"
    labels = [d for d in worst if CLAUDE in d["judge"] and d["criterion"] == "crisis_category"]
    assert labels[0]["judge_score"] == "suicidal_ideation" and labels[0]["distance"] == 1.0


def test_the_lesson_of_28_1_categories_come_from_the_scale() -> None:
    """Values 1, 2 and 4 on a 1-5 scale: 4 is two steps from 2, not one (the observed values alone would say one)."""
    a, b, j = (1, 2, 4, 4), (1, 2, 4, 2), (2, 2, 4, 4)
    human = [_ann(i, r, v) for r, values in (("A", a), ("B", b)) for i, v in enumerate(values)]
    judged = [JudgeScore(f"i{i}", "c", "J", float(v)) for i, v in enumerate(j)]
    scale = Scale("ordinal", ("1", "2", "3", "4", "5"))
    [row] = validity_rows(CalibrationData(human, judged, {"c": scale}), dataset="d", min_items=4, n_bootstrap=0)
    # By hand: κ(A,B) = 1 − 4/12.5; κ(J,A) = 1 − 1/11; κ(J,B) = 1 − 5/11; the consensus (1, 2, 4, 3): 1 − 2/10.
    assert row.human_vs_human.value == pytest.approx(0.68)
    assert row.judge_vs_each_human == pytest.approx({"A": 10 / 11, "B": 6 / 11})
    assert row.judge_vs_humans.value == pytest.approx(8 / 11)
    assert row.judge_vs_consensus.value == pytest.approx(0.8)
    assert row.gap.value == pytest.approx(8 / 11 - 0.68) and row.verdict == AS_CLOSE
    assert row.gap.ci_low is None  # no bootstrap asked


def _ann(i: int, rater: str, value: float, criterion: str = "c") -> Annotation:
    return Annotation(f"i{i}", criterion, rater, float(value))


def test_not_enough_data_says_why() -> None:
    one_human = [_ann(i, "A", v) for i, v in enumerate((1, 2, 3, 4, 5))]
    judged = [JudgeScore(f"i{i}", "c", "J", float(v)) for i, v in enumerate((1, 2, 3, 4, 5))]
    scale = Scale("ordinal", ("1", "2", "3", "4", "5"))
    [row] = validity_rows(CalibrationData(one_human, judged, {"c": scale}), dataset="d", min_items=1, n_bootstrap=0,
                          critical=frozenset({"c"}))
    assert row.judge_vs_humans.value == pytest.approx(1.0)
    assert row.human_vs_human.value is None and "two humans" in (row.human_vs_human.reason or "")
    assert row.verdict == NOT_ENOUGH and row.reason
    assert gate_failures([row]) == [f"d · c · J: {NOT_ENOUGH} ({row.reason})"]
    few = [_ann(i, r, v) for r in ("A", "B") for i, v in enumerate((1, 2, 3))]
    [row] = validity_rows(CalibrationData(few, judged, {"c": scale}), dataset="d", n_bootstrap=0)
    assert row.verdict == NOT_ENOUGH and row.reason == "3 item(s) scored by the judge and two humans, fewer than 10"


def test_annotation_file_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A team's own labels: two raters' exploration scores; the judge answers J; numbers as in the 28.1 test."""
    a, b, j = (1, 2, 4, 4), (1, 2, 4, 2), (2, 2, 4, 4)
    path = tmp_path / "ours.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", "criterion", "rater", "score", "prompt", "response"])
        for i in range(4):
            for rater, values in (("A", a), ("B", b)):
                writer.writerow([f"ours-{i}", "exploration", rater, values[i], f"I feel low, day {i}.",
                                 f"Reply number {i}: tell me more?"])

    def answer(req: ParsedRequest) -> Reply:
        position = int(judged_response(req).split()[2].rstrip(":"))
        return Reply.structured(scripted_verdict(
            req, lambda m, c, r, lo, hi: j[position] if c == "exploration" else expected_score(m, c, r, lo, hi)))

    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    with FakeLLMServer(answerer=answer) as server:
        done = validate(judges=f"openai:{GPT}@{server.openai_base_url}", out=tmp_path / "out", annotations=path,
                        rubric="support", min_items=4, bootstrap=20, gate=True,
                        settings=RunSettings(cache_dir=tmp_path / "cache", quiet=True))
    [row] = done.rows
    assert (row.dataset, row.criterion, row.n_items) == ("annotations:ours.csv", "exploration", 4)
    assert row.judge_vs_humans.value == pytest.approx(8 / 11) and row.human_vs_human.value == pytest.approx(0.68)
    assert done.exit_code == ExitCode.OK and done.gate_failures == []  # exploration is not critical


def test_bad_annotation_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("item_id,criterion,rater,score,prompt,response\n"
                    "x,exploration,A,9,hi,hello\n"
                    "y,no_such,A,3,hi,hello\n")
    with pytest.raises(InputError) as caught:
        validate(judges="openai:gpt-4.1-mini", out=tmp_path / "out", annotations=path, rubric="support",
                 settings=RunSettings(dry_run=True))
    message = str(caught.value)
    assert f"{path}:2: score 9 is outside exploration's scale 1-5" in message
    assert f"{path}:3: criterion 'no_such' is not in the support rubric" in message
    assert caught.value.exit_code == ExitCode.USAGE
    with pytest.raises(UsageError, match="go together"):
        validate(judges="openai:gpt-4.1-mini", out=tmp_path / "out", annotations=path)
    with pytest.raises(UsageError, match="choose from crisis, empathic, elephant"):
        validate(judges="openai:gpt-4.1-mini", out=tmp_path / "out", datasets=["nope"])
    assert not (tmp_path / "out").exists()


def test_dry_run_prices_a_full_validation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    done = validate(judges=[f"openai:{GPT}", f"anthropic:{CLAUDE}"], out=tmp_path / "out",
                    settings=RunSettings(dry_run=True))
    assert done.items == 206 + 50 + 50 + 10 and done.rows == [] and done.plan is not None
    prices = {GPT: (0.40, 1.60), CLAUDE: (3.00, 15.00)}  # USD per million tokens, input and output
    for entry in done.plan:
        model = entry["judge"].split(":")[1]
        assert entry["calls"] == entry["to_ask"] > done.items  # multi-turn support items take two calls
        expected = (entry["est_input_tokens"] * prices[model][0] + entry["est_output_tokens"] * prices[model][1]) / 1e6
        assert entry["est_cost_usd"] == pytest.approx(expected)
    assert not (tmp_path / "out").exists()


def test_dry_run_command_prints_calls_and_cost(run_cli: Any, judge_env: Path) -> None:
    result = run_cli("validate", "--judges", f"openai:{GPT}", "--judges", f"anthropic:{CLAUDE}", "--out",
                     judge_env.parent / "o", "--dry-run")
    assert result.code == 0, result.stderr
    assert "Dry run of the validation" in result.stdout and "316 item(s) to judge" in result.stdout


def test_empathic_mapping_is_linear_reversed_where_opposite_and_lists_the_unmapped() -> None:
    explorations = next(d for d in EMPATHIC_MAP if d.dimension == "level_explorations")
    assert [_on_scale(v, explorations, 1, 5) for v in (0, 1, 2)] == [1, 3, 5]
    dismissing = next(d for d in EMPATHIC_MAP if d.dimension == "dismissing_emotions")
    assert [_on_scale(v, dismissing, 1, 5) for v in (1, 3, 5)] == [5, 3, 1]
    assert conversation_turns("Seeker: hi\nSupporter: hello\nSeeker: \nSeeker: bye") == [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "bye"}]


def test_empathic_and_elephant_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fakeapi.judge_script import scripted_answerer

    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    with FakeLLMServer(answerer=scripted_answerer) as server:
        done = validate(judges=f"openai:{GPT}@{server.openai_base_url}", out=tmp_path / "out",
                        datasets=["empathic", "elephant"], limit=12, bootstrap=0,
                        settings=RunSettings(cache_dir=tmp_path / "cache", quiet=True))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    names = {d["name"]: d for d in summary["datasets"]}
    assert set(names) == {"empathic-communication/epitome", "empathic-communication/lend_an_ear", "elephant-oeq"}
    epitome = [r for r in done.rows if r.dataset == "empathic-communication/epitome" and not r.published]
    assert {r.criterion for r in epitome} == {"exploration", "empathic_reflection"}
    assert all(r.humans == ["expert1", "expert2", "expert3"] and r.n_items == 12 for r in epitome)
    assert all(r.alt_test["reason"] is None or r.alt_test["winning_rate"] is None for r in epitome)
    published = {r.judge for r in done.rows if r.published}
    assert published == {"GPT-4o (published)", "Claude 3.7 Sonnet (published)", "Gemini 2.5 Pro (published)"}
    unmapped = {u["dimension"] for d in names.values() for u in d["unmapped"]}
    assert {"epitome/level_emotional_reactions", "lend_an_ear/validating_emotions", "lend_an_ear/advice_giving",
            "empatheticdialogues/empathy", "perceived_empathy/m_seen", "emotional_validation"} <= unmapped
    elephant = [r for r in done.rows if r.dataset == "elephant-oeq"]
    assert {r.criterion for r in elephant} <= {"accept_framing", "indirect_language", "indirect_action"}
    assert all(r.verdict == NOT_ENOUGH and r.human_vs_human.value is None for r in elephant)  # one label per answer
    lend = next(r for r in done.rows if r.dataset.endswith("lend_an_ear") and r.criterion == "respect_and_autonomy")
    assert "reversed" in (lend.human_measure or "")


def test_crisis_set_reproduces_the_published_human_mae() -> None:
    """All 190 answers both humans scored: H1 vs H2 MAE is the authors' 0.46 (appropriateness report)."""
    s = crisis_set()
    data = CalibrationData(s.human, s.published, s.scales)
    rows = validity_rows(data, dataset=s.name, n_bootstrap=0, published=frozenset(p.judge for p in s.published))
    jury = next(r for r in rows if r.criterion == "overall_appropriateness" and r.judge == "jury (published)")
    assert jury.mae_humans is not None and round(jury.mae_humans.value or 0, 2) == 0.46
    assert jury.n_items == 190
    assert set(s.scales["crisis_category"].labels[: len(CATEGORIES)]) == set(CATEGORIES)
    assert np.isfinite(jury.human_vs_human.value or np.nan)


CHROMIUM = find_chromium()


@pytest.mark.skipif(CHROMIUM is None, reason=f"Chromium not found; install it with: {INSTALL_HINT}")
def test_validity_page_in_the_browser(crisis_run: dict[str, Any]) -> None:
    """The real browser opens validity.html: no console error or failed load, the forest plot drawn, the
    20-column table wrapping inside its frame rather than running off the page, and a PDF print."""
    assert CHROMIUM is not None
    seen = visit(crisis_run["out"] / "validity.html", CHROMIUM, width=1280, expressions=(
        "[...document.querySelectorAll('.table-wrap')].filter(w => w.scrollWidth > w.clientWidth + 1).length",
        "document.documentElement.scrollWidth",
        "document.querySelectorAll('table[data-table=validity] tbody tr').length",
        "document.querySelectorAll('svg').length"))
    assert seen.errors == [], seen.errors
    overflowing, page_width, rows, svgs = seen.checks
    assert overflowing == 0 and page_width <= 1280
    assert rows == len(crisis_run["summary"]["rows"]) and svgs >= 1
    assert seen.pdf.startswith(b"%PDF-") and seen.screenshot_png


def test_a_judge_whose_every_call_failed_still_has_its_row() -> None:
    """A judge that was asked but scored nothing (every call failed) is in the table as "not enough data"
    with 0 items, not left out as if it had never been asked."""
    humans = [_ann(i, r, v) for r in ("A", "B") for i, v in enumerate((1, 2, 3, 4))]
    judged = [JudgeScore(f"i{i}", "c", "J", float(v)) for i, v in enumerate((1, 2, 3, 4))]
    scale = Scale("ordinal", ("1", "2", "3", "4", "5"))
    data = CalibrationData(humans, judged, {"c": scale})
    rows = validity_rows(data, dataset="d", min_items=4, n_bootstrap=0, judges=["J", "K"])
    assert [r.judge for r in rows] == ["J", "K"]
    failed = rows[1]
    assert failed.n_items == 0 and failed.verdict == NOT_ENOUGH
    assert failed.reason == "0 item(s) scored by the judge and two humans, fewer than 4"
    assert rows[0] == validity_rows(data, dataset="d", min_items=4, n_bootstrap=0)[0]  # the other judge unchanged
