"""Where outputs go when --out is left out (a folder under runs/, announced), and the small-n warning on values
over too few prompts in the scorecard's report page."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest

from judge.cli.common import RUNS_DIR
from judge.report import write_report
from judge.stats.bootstrap import SMALL_N
from tests.conftest import judges_arg, make_items, write_jsonl
from tests.fakeapi import FakeLLMServer
from tests.report_fixtures import TARGETS, write_bench_run
from tests.report_pages import read_report
from tests.test_report import calibration_run  # noqa: F401 - module-scoped run fixture


def _default(command: Any, name: str) -> Any:
    """The default of a command function's parameter, as typer declares it (Annotated options keep it there)."""
    return inspect.signature(command).parameters[name].default


def test_every_output_that_can_be_left_out_defaults_under_runs() -> None:
    from calibration.cli import calibrate_command
    from judge.cli import main, respond_cmd

    assert Path("runs") == RUNS_DIR
    assert _default(main.score, "out") == Path("runs/score")
    assert _default(main.demo, "out") == Path("runs/demo")
    assert _default(main.review_import, "out") == Path("runs/review-annotations.jsonl")
    assert _default(main.review_export, "csv_path") is None  # beside the run's review.jsonl
    assert _default(respond_cmd.respond, "out") == Path("runs/respond")
    assert _default(calibrate_command, "out") == Path("runs/calibration")


def test_score_without_out_writes_under_runs_and_says_so(
    tmp_path: Path, llm_server: FakeLLMServer, judge_env: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = write_jsonl(tmp_path / "items.jsonl", make_items(2))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = run_cli("score", items, "--judges", judges_arg(llm_server), "-q")
    assert result.code == 0, result.stderr
    assert "→ runs/score/verdicts.jsonl" in result.stderr
    assert sorted(p.name for p in work.iterdir()) == ["runs"]  # nothing else in the current folder
    assert (work / "runs" / "score" / "verdicts.jsonl").is_file()
    # The escalation queue of that run, exported for a clinician: beside its review.jsonl, and said so.
    result = run_cli("review", "export", "runs/score")
    assert result.code == 0, result.stderr
    assert "→ runs/score/review.csv" in result.stdout and (work / "runs" / "score" / "review.csv").is_file()
    assert sorted(p.name for p in work.iterdir()) == ["runs"]


def test_bench_report_marks_values_over_few_prompts(tmp_path: Path) -> None:
    out = write_bench_run(tmp_path / "bench", TARGETS)
    card = json.loads((out / "scorecard.json").read_text())
    card["small_n_below"] = SMALL_N
    chosen = next(r for r in card["results"] if r["group"] is None)
    chosen.update(n=4, small_n=True)
    (out / "scorecard.json").write_text(json.dumps(card))
    page = read_report(write_report(out).read_text())
    rows = page.table("results").records()
    marked = [r for r in rows if "small n" in r["n"].text]
    assert len(marked) == 1 and marked[0]["n"].value == 4
    assert marked[0]["target"].text == chosen["target"] and marked[0]["suite"].text == chosen["suite"]
    assert f"⚠ small n: a value over fewer than {SMALL_N} prompts" in page.text
    # An older scorecard (no small_n fields) is shown as it was: no mark, no note.
    plain = write_bench_run(tmp_path / "plain", TARGETS)
    assert "small n" not in read_report(write_report(plain).read_text()).text


def test_calibration_and_audit_records_flag_intervals_over_few_units() -> None:
    from calibration.compute import Record as CalibrationRecord
    from calibration.outputs import _cell as calibration_cell
    from judge.audit.effects import Record as AuditRecord
    from judge.audit.outputs import _cell as audit_cell

    few = CalibrationRecord("risk", "j", "item", "qwk", 0.5, 0.5, 0.5, 4)
    assert few.as_dict()["small_n"] is True and calibration_cell(few) == "0.500 [0.500, 0.500] small n"
    enough = CalibrationRecord("risk", "j", "item", "qwk", 0.5, 0.4, 0.6, SMALL_N)
    assert "small_n" not in enough.as_dict() and "small n" not in calibration_cell(enough)
    no_interval = CalibrationRecord("risk", "j", "item", "qwk", 0.5, None, None, 4)
    assert "small_n" not in no_interval.as_dict()
    shift = AuditRecord("verbosity", None, "j", "crisis", "risk", "mean_shift", 0.25, 0.0, 0.5, 4)
    assert shift.as_dict()["small_n"] is True and audit_cell(shift).endswith("[0.000, 0.500] small n")
    assert "small_n" not in AuditRecord("verbosity", None, "j", "crisis", "risk", "mean_shift", 0.25, 0.0, 0.5,
                                        SMALL_N).as_dict()


def test_calibration_report_marks_the_flagged_records(calibration_run: Path) -> None:  # noqa: F811
    records = json.loads((calibration_run / "calibration.json").read_text())["results"]
    page = read_report(write_report(calibration_run, calibration_run.parent / "page.html").read_text())
    rows = [row for table in page.tables("calibration") for row in table.records()]
    flagged = [r for r in records if r.get("small_n")]
    assert flagged, "the fixture's few items give small-n intervals"
    assert sum("⚠ small n" in row["n"].text for row in rows) == sum(
        1 for r in records if r.get("small_n") and r["against"] is None)
