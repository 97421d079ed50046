"""`trustmh report`: one self-contained HTML page per run kind whose tables equal the run's own files."""

from __future__ import annotations

import json
import re
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import judge.cli.main
from judge.cli.main import main
from judge.log import StageSummary
from judge.report import ReportError, detect_kind, write_report
from tests.conftest import ANTHROPIC_KEY, OPENAI_KEY, judges_arg, make_items, read_jsonl, write_jsonl
from tests.fakeapi import FakeLLMServer, Reply
from tests.fakeapi.judge_script import scripted_answerer
from tests.report_fixtures import (
    TARGETS,
    write_bench_run,
    write_empty_bench_run,
    write_failed_bench_run,
    write_item_run,
    write_recorded_like_run,
)
from tests.report_pages import ReportPage, TableInfo, read_report
from tests.test_calibration_cli import _write_inputs
from tests.test_calibration_cli import app as calibrate_app
from tests.test_calibration_cli import runner as calibrate_runner


def _score(base: Path, answerer: Any, items: list[dict[str, Any]], judges: Any = judges_arg) -> Path:
    """A real `trustmh score` run against the loopback server; returns its --out folder."""
    out = base / "out"
    with pytest.MonkeyPatch.context() as patch, FakeLLMServer(answerer=answerer) as server:
        patch.setenv("OPENAI_API_KEY", OPENAI_KEY)
        patch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
        patch.setenv("TRUSTMH_CACHE_DIR", str(base / "cache"))
        items_path = write_jsonl(base / "items.jsonl", items)
        with pytest.raises(SystemExit) as exited:
            main(["score", str(items_path), "--judges", judges(server), "--out", str(out), "-q"])
        assert exited.value.code in (None, 0, 3)
    return out


@pytest.fixture(scope="module")
def score_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two judges (OpenAI, Anthropic) on crisis and safety items of two targets: a panel with escalations."""
    return _score(tmp_path_factory.mktemp("score"), scripted_answerer, make_items(8, ["crisis", "safety"]))


@pytest.fixture(scope="module")
def failed_score_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every judge call refused (401): verdicts all failed, no mean, no agreement."""
    return _score(tmp_path_factory.mktemp("failed"), lambda req: Reply.error(401), make_items(3, "crisis"))


@pytest.fixture(scope="module")
def single_judge_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One judge, one sample: no panel, no agreement, no escalation."""
    return _score(tmp_path_factory.mktemp("single"), scripted_answerer, make_items(2, "safety"),
                  lambda server: f"openai:gpt-4.1-mini@{server.openai_base_url}")


@pytest.fixture(scope="module")
def calibration_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("calibration")
    human, judged = _write_inputs(base)
    out = base / "out"
    result = calibrate_runner.invoke(calibrate_app, [
        "--human", str(human), "--judged", str(judged), "--out", str(out), "--bootstrap", "40", "--seed", "1",
        "--gate", "qwk>=0.6", "--gate", "exact>=0.2"])
    assert result.exit_code == 4, result.output  # the odd judge fails the qwk gate
    return out


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory, score_run: Path) -> Path:
    return write_bench_run(tmp_path_factory.mktemp("bench") / "run", TARGETS, score_run)


def _page(directory: Path) -> tuple[ReportPage, str]:
    html = write_report(directory).read_text(encoding="utf-8")
    return read_report(html), html


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _values(table: TableInfo, columns: list[str]) -> list[list[Any]]:
    return [[row[c].value if row[c].numeric else row[c].text for c in columns] for row in table.records()]


def _dash(value: Any) -> Any:
    return "—" if value is None else value


# ------------------------------------------------------------------------ structure, every kind


@pytest.fixture(params=["bench", "score", "calibration", "empty-bench", "failed-bench", "one-target",
                        "failed-score", "single-judge", "no-scorecard", "recorded-like"])
def any_run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    kind = request.param
    if kind in ("bench", "score", "calibration", "failed-score", "single-judge"):
        yield request.getfixturevalue(kind.replace("-", "_") + "_run")
    elif kind == "empty-bench":
        yield write_empty_bench_run(tmp_path / "empty")
    elif kind == "failed-bench":
        yield write_failed_bench_run(tmp_path / "failed", TARGETS[:2])
    elif kind == "one-target":
        yield write_bench_run(tmp_path / "one", TARGETS[:1])
    elif kind == "recorded-like":
        yield write_recorded_like_run(tmp_path / "recorded")
    else:
        run = write_bench_run(tmp_path / "partial", TARGETS)
        (run / "scorecard.json").unlink()
        yield run


def check_page_structure(directory: Path) -> ReportPage:
    """The report of `directory` parses, leaves nothing to fetch, and gives each figure its table."""
    page, html = _page(directory)
    assert not page.errors, page.errors[:5]
    assert html.startswith("<!DOCTYPE html>") and page.sections
    for tag, attribute, value in page.urls:
        assert value.startswith(("#", "data:")), f"<{tag} {attribute}={value!r}> leaves the page"
    assert "://" not in "".join(page.styles).replace("http://www.w3.org/", "")
    assert "@import" not in "".join(page.styles) and "url(" not in "".join(page.styles)
    assert len(page.scripts) == 1 and page.scripts[0].strip(), "one script, inline"
    assert all(key.count("#") == 0 for key in page.data_blocks), f"only JSON data blocks: {list(page.data_blocks)}"
    assert not re.search(r"<(script|link|img)\b[^>]*\b(src|href)=", html), "no fetched resource"
    assert len(page.ids) == len(set(page.ids)), "ids are unique across the inline SVGs"
    for section in page.sections:
        if section.browsers:
            assert section.figures == 0 and not section.nothing, section.id
            assert all(block in page.data_blocks and block in page.ids for block in section.browsers), section.id
        elif section.nothing:
            assert section.figures == 0 and section.nothing[0].startswith("Nothing to show: "), section.id
        else:
            assert section.figures == 1 and section.svgs_in_figures == 1, section.id
            assert section.tables, f"section {section.id} draws a figure without the table of its numbers"
    for target in re.findall(r'href="#([^"]+)"', html):
        assert target in page.ids, f"link to a missing anchor #{target}"
    return page


def test_page_parses_is_self_contained_and_every_section_has_a_figure_and_its_table(any_run: Path) -> None:
    check_page_structure(any_run)


def test_report_file_is_owner_only_and_out_option_is_honoured(score_run: Path, tmp_path: Path) -> None:
    path = write_report(score_run, tmp_path / "elsewhere" / "r.html")
    assert path == tmp_path / "elsewhere" / "r.html"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(write_report(score_run).stat().st_mode) == 0o600


# ------------------------------------------------------------------------ bench


def test_bench_tables_equal_the_scorecard(bench_run: Path) -> None:
    page, _ = _page(bench_run)
    card = _load(bench_run / "scorecard.json")
    assert detect_kind(bench_run) == "bench"

    ranks = page.table("ranks")
    targets = ranks.columns[2:]
    suites = [row["sub-task"].text for row in ranks.records()]
    assert sorted(suites) == sorted(card["ranks"]) and targets == list(dict.fromkeys(r["target"]
                                                                                      for r in card["results"]))
    for row in ranks.records():
        suite = row["sub-task"].text
        assert row["metric"].text == card["ranks"][suite]["metric"]
        assert {t: row[t].value for t in targets} == card["ranks"][suite]["ranks"]
    pillars = list(dict.fromkeys(s.split("/")[0] for s in suites))
    assert pillars == ["reliability", "crisis", "safety", "fairness", "privacy", "robustness", "sycophancy",
                       "ethics"], "sub-tasks ordered by pillar in the paper's order"

    pillar_ranks = page.table("pillar_ranks")
    for row in pillar_ranks.records():
        for pillar, by_target in card["pillar_ranks"].items():
            assert row[pillar].value == by_target[row["target"].text]

    columns = ["pillar", "suite", "metric", "target", "value", "ci low", "ci high", "n", "higher is better",
               "source"]
    keys = ["pillar", "suite", "metric", "target", "value", "ci_low", "ci_high", "n", "higher_is_better", "source"]
    suite_level = [r for r in card["results"] if r["group"] is None]
    assert _values(page.table("results"), columns) == [[r[k] for k in keys] for r in suite_level]

    grouped = [*columns[:3], "group", *columns[3:]]
    group_keys = [*keys[:3], "group", *keys[3:]]
    fairness = [r for r in card["results"] if r["pillar"] == "fairness" and r["group"]]
    assert _values(page.table("fairness"), grouped) == [[r[k] for k in group_keys] for r in fairness]
    levels = [r for r in card["results"] if (r["group"] or "").startswith("level:")]
    assert _values(page.table("robustness"), grouped) == [[r[k] for k in group_keys] for r in levels]
    methods = [r for r in card["results"] if (r["group"] or "").startswith("method:")]
    assert _values(page.table("breakdowns"), grouped) == [[r[k] for k in group_keys] for r in methods]

    unparsed = page.table("unparsed")
    assert [[c.text for c in row] for row in unparsed.rows] == [
        [u["target"], u["suite"], u["id"], _dash(u["answer"] or None)] for u in card["unparsed"]]


def test_bench_failures_and_costs_come_from_both_stage_summaries(bench_run: Path) -> None:
    page, _ = _page(bench_run)
    respond = _load(bench_run / "respond" / "summary.json")
    score = _load(bench_run / "score" / "summary.json")
    stages = [("targets (respond)", respond), ("judges (score)", score)]
    expected = [[name, reason, count] for name, s in stages for reason, count in s["failures_by_reason"].items()]
    assert _values(page.table("failures"), ["stage", "reason", "calls"]) == expected
    calls = ["planned", "requested", "cache_hits", "resumed", "failed"]
    assert _values(page.table("calls"), ["stage", *calls]) == [[n, *[s["calls"][k] for k in calls]] for n, s in stages]
    costs = _values(page.table("costs"), ["stage", "input tokens", "output tokens", "cost (USD)", "wall time (s)"])
    assert costs == [[n, s["tokens_this_run"]["input"], s["tokens_this_run"]["output"], s["cost_usd_this_run"],
                      s["wall_time_s"]] for n, s in stages]
    assert page.section("costs").figures == 1
    # the judging part of the bench report is the score run's
    assert page.tables("mean_scores") and page.tables("pairwise_qwk")


def test_stage_summary_reads_both_token_spellings() -> None:
    spelled = [{"tokens_this_run": {"input": 3, "output": 4}, "cost_usd_this_run": 0.5},
               {"tokens": {"input": 3, "output": 4}, "cost_usd": 0.5}]
    for data in spelled:
        stage = StageSummary.model_validate(data)
        assert (stage.tokens.input, stage.tokens.output, stage.cost_usd) == (3, 4, 0.5)  # type: ignore[union-attr]


def test_empty_failed_and_single_target_bench_runs_say_what_is_missing(tmp_path: Path) -> None:
    empty, _ = _page(write_empty_bench_run(tmp_path / "empty"))
    for section in ("ranks", "pillars", "suites", "fairness", "robustness", "failures", "costs"):
        assert empty.section(section).nothing, section
    assert "ranks no sub-task" in empty.section("ranks").nothing[0]
    assert "no call failed" in empty.section("failures").nothing[0]

    failed_dir = write_failed_bench_run(tmp_path / "failed", TARGETS[:2])
    failed, _ = _page(failed_dir)
    assert failed.section("ranks").figures == 1, "every failure counts as wrong: the run is still ranked"
    assert _values(failed.table("failures"), ["stage", "reason", "calls"]) == [["targets (respond)", "auth", 60]]
    assert "no tokens were recorded" in failed.section("costs").nothing[0]
    assert all(r["value"].value == 0.0 for r in failed.table("results").records())

    one, _ = _page(write_bench_run(tmp_path / "one", TARGETS[:1]))
    assert one.section("ranks").figures == 1 and one.section("pillars").figures == 1
    assert {c.value for row in one.table("ranks").rows for c in row[2:]} == {1}

    partial = write_bench_run(tmp_path / "partial", TARGETS)
    (partial / "scorecard.json").unlink()
    (partial / "score").mkdir()
    (partial / "score" / "verdicts.jsonl").write_text("", encoding="utf-8")
    missing, _ = _page(partial)
    assert "trustmh metrics" in missing.section("ranks").nothing[0]
    assert "summary.json was not found" in missing.section("means").nothing[0]


# ------------------------------------------------------------------------ score


def test_score_tables_equal_the_summary(score_run: Path) -> None:
    page, _ = _page(score_run)
    summary = _load(score_run / "summary.json")
    assert detect_kind(score_run) == "score"
    assert _values(page.table("mean_scores"), ["pillar", "target", "criterion", "judge", "mean", "n",
                                               "not applicable", "failed"]) == [
        [r["pillar"], r["target"], r["criterion"], r["judge"], r["mean"], r["n"], r["not_applicable"], r["failed"]]
        for r in summary["mean_scores"]]
    assert _values(page.table("critical_failure_rate"), ["pillar", "target", "judge", "rate", "n"]) == [
        [r["pillar"], r["target"], r["judge"], r["rate"], r["n"]] for r in summary["critical_failure_rate"]]
    assert _values(page.table("pairwise_qwk"), ["pillar", "criterion", "judge A", "judge B", "qwk", "n"]) == [
        [a["pillar"], a["criterion"], *p["judges"], p["qwk"], p["n"]]
        for a in summary["agreement"] for p in a["pairwise_qwk"]]
    assert _values(page.table("alpha"), ["pillar", "criterion", "alpha (ordinal)"]) == [
        [a["pillar"], a["criterion"], a["alpha_ordinal"]] for a in summary["agreement"]]
    assert _values(page.table("self_preference"), ["judge", "n own", "mean own", "n other", "mean other",
                                                   "difference"]) == [
        [r["judge"], r["n_own"], r["mean_own"], r["n_other"], r["mean_other"], r["difference"]]
        for r in summary["self_preference"]]
    assert [row["rows"].value for row in page.table("panel").records()] == list(summary["panel"].values())


def test_escalation_queue_links_to_every_review_entry_shown_inline(score_run: Path) -> None:
    page, html = _page(score_run)
    review = read_jsonl(score_run / "review.jsonl")
    summary = _load(score_run / "summary.json")
    assert summary["panel"]["escalated"] == len(review) > 0, "the fixture run escalates some rows"
    queue = page.table("review").records()
    assert [(r["item"].text, r["pillar"].text, r["criterion"].text) for r in queue] == [
        (e["item_id"], e["pillar"], e["criterion"]) for e in review]
    for row, entry in zip(queue, review, strict=True):
        anchor = row["review.jsonl line"].link
        assert anchor and anchor[1:] in page.ids
        article = html[html.index(f'id="{anchor[1:]}"'):]
        article = article[:article.index("</article>")]
        for judgment in entry["judgments"]:
            assert judgment["judge"] in article and (judgment["rationale"] or "") in article


def test_sparse_review_lines_still_render(score_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(score_run, run)
    (run / "review.jsonl").write_text(json.dumps({"item_id": "x-1", "pillar": "crisis", "criterion": "c",
                                                  "messages": [{"content": "hello <b>"}],
                                                  "judgments": [{"judge": "j1"}]}) + "\n", encoding="utf-8")
    page, html = _page(run)
    assert not page.errors and [r["item"].text for r in page.table("review").records()] == ["x-1"]
    assert "hello &lt;b&gt;" in html


def test_single_judge_run_says_there_is_no_panel(single_judge_run: Path) -> None:
    page, _ = _page(single_judge_run)
    assert "at least two judges and this run had 1" in page.section("agreement").nothing[0]
    assert "no panel" in page.section("escalation").nothing[0]
    assert page.section("means").figures == 1 and page.section("self-preference").figures == 1


def test_failed_score_run_has_nothing_to_average(failed_score_run: Path) -> None:
    page, _ = _page(failed_score_run)
    assert "no verdict succeeded" in page.section("means").nothing[0]
    assert page.section("failures").figures == 1
    assert _values(page.table("failures"), ["reason", "calls"]) == [
        [reason, count] for reason, count in _load(failed_score_run / "summary.json")["failures_by_reason"].items()]


# ------------------------------------------------------------------------ item browser


def _browser_rows(page: ReportPage, name: str) -> list[dict[str, Any]]:
    data = page.data("items-data")
    return [dict(zip(data["fields"][name], row, strict=True)) for row in data[name]]


def test_every_item_is_in_the_browser_with_every_verdict_and_panel_row(score_run: Path) -> None:
    page, _ = _page(score_run)
    assert page.section("items").browsers == ["items-data"]
    items = read_jsonl(score_run / "items.jsonl")
    assert _browser_rows(page, "items") == [
        {"id": i["id"], "target": i["target"], "pillars": i["pillars"], "response": i["response"],
         "messages": [[m["role"], m["content"]] for m in i["messages"]]} for i in items]
    fields = ["item_id", "pillar", "criterion", "judge", "role", "sample", "status", "score", "rationale", "evidence",
              "error"]
    assert _browser_rows(page, "verdicts") == [{f: v[f] for f in fields} for v in read_jsonl(score_run /
                                                                                             "verdicts.jsonl")]
    panel_fields = ["item_id", "pillar", "criterion", "status", "score", "critical_fail", "escalate",
                    "escalate_reasons"]
    assert _browser_rows(page, "panel") == [{f: p[f] for f in panel_fields} for p in read_jsonl(score_run /
                                                                                               "panel.jsonl")]
    assert len(items) > len(read_jsonl(score_run / "review.jsonl")) / 10, "more than the escalated items"


def test_bench_report_browses_the_judged_items(bench_run: Path) -> None:
    page, _ = _page(bench_run)
    assert [i["id"] for i in _browser_rows(page, "items")] == [i["id"] for i in read_jsonl(bench_run / "score" /
                                                                                              "items.jsonl")]


HOSTILE = "bot\x00\u202etxt.exe </script><script>alert(1)</script> <!-- x --> &amp; \u2028end"


def test_hostile_texts_in_items_stay_data(score_run: Path, tmp_path: Path) -> None:
    run = write_item_run(tmp_path / "hostile", score_run, 3, hostile=HOSTILE)
    page, html = _page(run)
    block = page.data_blocks["items-data"]
    assert "<" not in block and "\x00" not in html and "\u202e" not in html
    assert html.count("<script") == 2 and "alert(1)" in block, "the payload is inside the data block only"
    shown = "bot⟨U+0000⟩⟨U+202E⟩txt.exe </script><script>alert(1)</script> <!-- x --> &amp; \u2028end"
    first = _browser_rows(page, "items")[0]
    assert first["response"] == first["target"] == first["messages"][0][1] == shown
    verdict = _browser_rows(page, "verdicts")[0]
    assert verdict["judge"] == verdict["rationale"] == verdict["evidence"][0] == shown


def test_a_bad_line_in_items_is_reported_before_any_page_is_written(score_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(score_run, run)
    (run / "report.html").unlink(missing_ok=True)
    for bad in ('{"item_id": "x"\n', '{"item_id": "x", "score": NaN}\n'):
        (run / "verdicts.jsonl").write_text((score_run / "verdicts.jsonl").read_text(encoding="utf-8") + bad,
                                            encoding="utf-8")
        lines = len((run / "verdicts.jsonl").read_text(encoding="utf-8").splitlines())
        with pytest.raises(ReportError, match=rf"verdicts.jsonl:{lines}: not valid JSON"):
            write_report(run)
        assert not (run / "report.html").exists()


def test_calls_per_stage_names_each_count_once(tmp_path: Path) -> None:
    run = write_bench_run(tmp_path / "run", TARGETS)
    extra = {"succeeded": 3, "not_applicable": 1}
    for stage in ("respond", "score"):
        path = run / stage / "summary.json"
        data = _load(path) if path.is_file() else {"calls": {}, "failures_by_reason": {}}
        data["calls"] = {**data["calls"], **extra}
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(data), encoding="utf-8")
    (run / "score" / "verdicts.jsonl").write_text("", encoding="utf-8")
    columns = _page(run)[0].table("calls").columns
    assert len(columns) == len(set(columns)) and {"succeeded", "not_applicable"} <= set(columns), columns


def test_two_pillars_are_drawn_as_bars_not_radars(tmp_path: Path) -> None:
    page, html = _page(write_recorded_like_run(tmp_path / "recorded"))
    assert page.section("pillars").figures == 1
    section = html[html.index('id="pillars"'):html.index('id="suites"')]
    assert "no radar is drawn for fewer than 3 pillars" in section and "polar" not in section


# ------------------------------------------------------------------------ calibration


def test_calibration_tables_equal_calibration_json(calibration_run: Path) -> None:
    page, _ = _page(calibration_run)
    data = _load(calibration_run / "calibration.json")
    assert detect_kind(calibration_run) == "calibration"
    columns = ["judge", "metric", "value", "ci low", "ci high", "n"]
    headline = [r for r in data["results"] if r["against"] is None]
    shown = [row for t in page.tables("calibration") for row in _values(t, columns)]
    assert shown == [[r["judge"] or "humans", r["metric"], r["value"], r["ci_low"], r["ci_high"], r["n"]]
                     for r in headline]
    per_human = [row for t in page.tables("calibration_per_human") for row in _values(t, ["judge", "against",
                                                                                             *columns[1:]])]
    assert per_human == [[r["judge"], r["against"], r["metric"], r["value"], r["ci_low"], r["ci_high"], r["n"]]
                         for r in data["results"] if r["against"] is not None]
    confusions = page.tables("confusion")
    assert len(confusions) == len(data["confusion_matrices"]) > 0
    for table, matrix in zip(confusions, data["confusion_matrices"], strict=True):
        assert table.columns[1:] == matrix["labels"]
        assert [[c.value for c in row[1:]] for row in table.rows] == matrix["matrix"]


def test_gate_results_are_recorded_and_shown(calibration_run: Path) -> None:
    page, _ = _page(calibration_run)
    gates = _load(calibration_run / "calibration.json")["gates"]
    assert [g["gate"] for g in gates] == ["qwk>=0.6", "exact>=0.2"]
    qwk = gates[0]
    assert not qwk["passed"] and {c["judge"]: c["passed"] for c in qwk["checks"]} == {"good-judge": True,
                                                                                     "odd-judge": False}
    assert _values(page.table("gates"), ["gate", "passed"]) == [[g["gate"], g["passed"]] for g in gates]
    assert _values(page.table("gate"), ["gate", "judge", "value", "passed"]) == [
        [g["gate"], c["judge"], c["value"], c["passed"]] for g in gates for c in g["checks"]]


def test_calibration_without_results_or_gate(tmp_path: Path) -> None:
    (tmp_path / "calibration.json").write_text(json.dumps({"meta": {}, "results": [], "confusion_matrices": []}))
    page, _ = _page(tmp_path)
    assert "holds no result" in page.section("calibration").nothing[0]
    assert "records no gate" in page.section("gate").nothing[0]


# ------------------------------------------------------------------------ command line


def test_cli_writes_the_report_and_refuses_what_it_cannot_read(bench_run: Path, tmp_path: Path, run_cli: Any) -> None:
    out = tmp_path / "r.html"
    result = run_cli("report", bench_run, "--out", out)
    assert result.code == 0, result.stderr
    assert str(out) in result.stdout and out.is_file()

    result = run_cli("report", tmp_path / "nowhere")
    assert result.code == 2 and "not a directory" in result.stderr

    plain = tmp_path / "plain"
    plain.mkdir()
    result = run_cli("report", plain)
    assert result.code == 2 and "scorecard.json" in result.stderr and "calibration.json" in result.stderr

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "scorecard.json").write_text('{"results": [\n{"target": "a"', encoding="utf-8")
    result = run_cli("report", broken)
    assert result.code == 2 and f"{broken / 'scorecard.json'}:2: not valid JSON" in result.stderr
    assert not (broken / "report.html").exists()

    (broken / "scorecard.json").write_text('{"results": [{"target": "a", "suite": "s"}]}', encoding="utf-8")
    result = run_cli("report", broken)
    assert result.code == 2 and "results[0].metric" in result.stderr

    result = run_cli("report", bench_run, "--out", tmp_path)
    assert result.code == 2 and "is a folder" in result.stderr


def test_write_report_raises_report_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="nothing to report on"):
        write_report(tmp_path)


def test_demo_with_a_judge_writes_a_report(tmp_path: Path, judge_env: Path, run_cli: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(judge.cli.main, "out_console", Console(width=2000))
    monkeypatch.chdir(tmp_path)
    with FakeLLMServer(answerer=scripted_answerer) as server:
        result = run_cli("demo", "--judges", f"openai:gpt-4.1-mini@{server.openai_base_url}")
    assert result.code == 0, result.stderr
    report = tmp_path / "runs" / "demo" / "report.html"
    assert report.is_file() and str(Path("runs") / "demo" / "report.html") in result.stdout
    assert "Mean score per criterion and target" in result.stdout and "all targets pooled" not in result.stdout
    assert "Critical-failure rate (share of judged responses" in result.stdout
    assert not read_report(report.read_text(encoding="utf-8")).errors


def test_writing_the_item_browser_streams_the_run_files(score_run: Path, tmp_path: Path) -> None:
    """Ten times the items must not take more memory to write: the rows go from the files to the page a line at
    a time (a jinja macro around them built the whole block as one string)."""
    import tracemalloc

    peaks = []
    for n_items in (300, 3000):
        run = write_item_run(tmp_path / f"run{n_items}", score_run, n_items)
        tracemalloc.start()
        write_report(run)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    grown = peaks[1] - peaks[0]
    assert grown < 4_000_000, f"peak grew by {grown:,} bytes from 300 to 3,000 items"
