"""Where a suite departs from the paper is said in every output: `suites list` / `suites show`, scorecard.json
`suite_notes`, scorecard.md and the report (robustness/knowledge as a stand-in, our perturbations, the
paper's fairness dimensions run or not)."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from judge.log import Scorecard
from judge.report.bench import suites_section
from judge.suites.provenance import (
    FAIRNESS_RUN,
    OURS_PERTURBATIONS,
    PAPER_FAIRNESS,
    STAND_IN,
    paper_definitions,
    suite_notes,
)
from judge.suites.scorecard import ScorecardBuilder, scorecard_markdown
from tests.test_robustness import call, knowledge_meta


@pytest.fixture
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("judge.cli.suites_cmd.console", Console(width=2000))


def _knowledge_card() -> dict[str, Any]:
    builder = ScorecardBuilder()
    for prompt_id, answer in {"robustness/knowledge:1": "Answer: B",
                              "robustness/knowledge:1:character": "Answer: C"}.items():
        builder.add_call(call(prompt_id, "t", answer, knowledge_meta(prompt_id)))
    return builder.finish(n_bootstrap=0, seed=1)


def test_the_scorecard_and_its_markdown_and_the_report_label_the_stand_in_and_our_perturbations() -> None:
    card = _knowledge_card()
    assert card["suite_notes"] == {"robustness/knowledge": [STAND_IN, OURS_PERTURBATIONS]}
    markdown = scorecard_markdown(card)
    heading = markdown.index("## robustness/knowledge")
    assert markdown.index(f"> {STAND_IN}") > heading and f"> {OURS_PERTURBATIONS}" in markdown
    section = suites_section(Scorecard.model_validate(card))
    assert f"robustness/knowledge: {STAND_IN}" in section.notes


def test_suites_list_and_show_say_what_is_ours_and_what_is_not_run(run_cli: Any, wide_console: None) -> None:
    listed = run_cli("suites", "list")
    assert listed.code == 0, listed.stderr
    for text in (STAND_IN, OURS_PERTURBATIONS, FAIRNESS_RUN, "https://zenodo.org/records/2667859",
                 "Data not in the dataset mirror", "authors-robustness"):
        assert text in listed.stdout, text
    assert "not public" not in listed.stdout
    shown = run_cli("suites", "show", "robustness/emotional-support")
    assert shown.code == 0 and "perturbations: not run: defined in the paper, not implemented" in shown.stdout
    fairness = run_cli("suites", "show", "fairness/demographics")
    assert "the paper's Intervene: not run:" in fairness.stdout and "the paper's Race: run:" in fairness.stdout
    assert "not in the mirror: authors-fair:" in fairness.stdout


def test_every_fairness_dimension_the_paper_lists_is_run_or_says_why_not() -> None:
    assert [d.what for d in PAPER_FAIRNESS] == ["Race", "Gender", "Age", "Religion", "Intervene"]
    assert all(d.why for d in PAPER_FAIRNESS)
    assert {d.what for d in PAPER_FAIRNESS if d.status == "not run"} == {"Intervene"}
    assert paper_definitions("fairness/demographics") == PAPER_FAIRNESS
    assert suite_notes("ethics/reasoning") == ()


MIRROR = Path(os.environ.get("TRUSTMH_DATA_MIRROR")
              or Path(__file__).resolve().parents[1].parent / "shared" / "datasets")


@pytest.mark.skipif(not MIRROR.is_dir(), reason="no dataset mirror")
def test_a_bench_writes_the_notes_into_bench_json_scorecard_and_report(
        run_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTMH_DATA_MIRROR", str(MIRROR))
    monkeypatch.setenv("TRUSTMH_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run"
    result = run_cli("bench", "--suites", "robustness/knowledge,safety/direct-harm", "--targets", "mock:a",
                     "--judges", "mock:j", "--limit", "4", "--out", out)
    assert result.code == 0, result.stderr
    expected = {"robustness/knowledge": [STAND_IN, OURS_PERTURBATIONS]}
    assert json.loads((out / "bench.json").read_text(encoding="utf-8"))["suite_notes"] == expected
    assert json.loads((out / "scorecard.json").read_text(encoding="utf-8"))["suite_notes"] == expected
    report = html.unescape((out / "report.html").read_text(encoding="utf-8"))
    assert f"robustness/knowledge: {STAND_IN}" in report
