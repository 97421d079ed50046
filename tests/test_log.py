"""judge.log: each run file's declaration against files real runs wrote, read_run on every kind, data frames,
`trustmh export`, the message without the frames extra, and errors that name file, line and field."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from judge.cli.main import main
from judge.errors import FramesMissingError, RunDirError
from judge.log import (
    Audit,
    AuditCoverage,
    AuditRun,
    BenchRun,
    Calibration,
    CalibrationRun,
    PanelJudge,
    PanelRow,
    RespondSummary,
    ReviewRow,
    Scorecard,
    ScoreRun,
    ScoreSummary,
    VerdictRow,
    document,
    read_document,
    read_rows,
    read_run,
)
from tests.conftest import ANTHROPIC_KEY, OPENAI_KEY, read_jsonl
from tests.fakeapi import FakeLLMServer
from tests.fakeapi.judge_script import target_or_judge_answerer
from tests.test_bench_cli import bench_args
from tests.test_report import calibration_run, score_run  # noqa: F401  (fixtures: real runs, shared)
from tests.test_report_audit import audit_dirs  # noqa: F401


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `trustmh bench` (respond/, score/, scorecard.json) against the loopback server."""
    mirror = os.environ.get("TRUSTMH_DATA_MIRROR")
    if not mirror or not Path(mirror).is_dir():
        pytest.skip("no dataset mirror: set TRUSTMH_DATA_MIRROR (the suites read the public datasets)")
    base = tmp_path_factory.mktemp("bench")
    with pytest.MonkeyPatch.context() as patch, FakeLLMServer(answerer=target_or_judge_answerer) as server:
        patch.setenv("OPENAI_API_KEY", OPENAI_KEY)
        patch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
        patch.setenv("TRUSTMH_CACHE_DIR", str(base / "cache"))
        with pytest.raises(SystemExit) as exited:
            main(bench_args(server, base / "run"))
        assert exited.value.code in (None, 0)
    return base / "run"


def _cli(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


def _undeclared(model: BaseModel, where: str = "") -> list[str]:
    """Fields a file holds that its declaration does not name (AuditCoverage's counts are open by design)."""
    found = [] if isinstance(model, AuditCoverage) else [f"{where}.{k}" for k in model.model_extra or {}]
    for name in type(model).model_fields:
        value = getattr(model, name)
        for index, child in enumerate(value if isinstance(value, list) else [value]):
            if isinstance(child, BaseModel):
                found += _undeclared(child, f"{where}.{name}[{index}]")
    return found


def _declared_keys(row_type: Any) -> tuple[frozenset[str], frozenset[str]]:
    return row_type.__required_keys__, row_type.__required_keys__ | row_type.__optional_keys__


# ----------------------------------------------------------------------------- each declaration, real files


def test_verdict_and_panel_rows_read_back_as_written_and_declare_every_field(score_run: Path) -> None:
    for name, row_type in (("verdicts.jsonl", VerdictRow), ("panel.jsonl", PanelRow)):
        path = score_run / name
        raw = read_jsonl(path)
        rows = [row for _, row in read_rows(row_type, path)]
        assert raw and rows == raw, name
        required, declared = _declared_keys(row_type)
        assert all(required <= row.keys() <= declared for row in raw), name
    judge_required, judge_declared = _declared_keys(PanelJudge)
    entries = [j for row in read_jsonl(score_run / "panel.jsonl") for j in [*row["judges"].values(),
                                                                            *row["tiebreak"].values()]]
    assert entries and all(judge_required <= j.keys() <= judge_declared for j in entries)


def test_review_rows_and_summary_round_trip(score_run: Path) -> None:
    raw = read_jsonl(score_run / "review.jsonl")
    rows = [row for _, row in read_rows(ReviewRow, score_run / "review.jsonl")]
    assert raw and [document(r) for r in rows] == raw
    assert not [f for r in rows for f in _undeclared(r)]
    summary = read_document(ScoreSummary, score_run / "summary.json")
    assert document(summary) == json.loads((score_run / "summary.json").read_text())
    assert summary.tokens is not None and summary.panel is not None and not _undeclared(summary)


def test_bench_documents_round_trip(bench_run: Path) -> None:
    for model, path in ((Scorecard, bench_run / "scorecard.json"), (RespondSummary, bench_run / "respond" /
                                                                    "summary.json")):
        doc = read_document(model, path)
        assert document(doc) == json.loads(path.read_text()), path
        assert not _undeclared(doc), path
    assert read_document(Scorecard, bench_run / "scorecard.json").results


def test_a_recorded_bench_reads_as_declared(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`trustmh bench --recorded` writes its verdicts (a published judge's) and stage summary itself."""
    if not Path(os.environ.get("TRUSTMH_DATA_MIRROR", "/nonexistent")).is_dir():
        pytest.skip("no dataset mirror: set TRUSTMH_DATA_MIRROR")
    out = tmp_path / "recorded"
    assert _cli(capsys, "bench", "--recorded", "trustmh-bench", "--out", out, "--bootstrap", "20")[0] == 0
    run = read_run(out)
    assert isinstance(run, BenchRun) and run.score is not None and run.respond is not None
    required, declared = _declared_keys(VerdictRow)
    assert run.score.verdicts.rows == read_jsonl(out / "score" / "verdicts.jsonl")
    assert all(required <= row.keys() <= declared for row in run.score.verdicts)
    assert document(run.respond) == json.loads((out / "respond" / "summary.json").read_text())
    assert not _undeclared(run.respond) and next(iter(run.tables())) == "scorecard"


def test_calibration_and_audit_documents_round_trip(calibration_run: Path, audit_dirs: dict[str, Path]) -> None:
    pairs = [(Calibration, calibration_run / "calibration.json"),
             *[(Audit, d / "audit.json") for d in audit_dirs.values()]]
    for model, path in pairs:
        doc = read_document(model, path)
        assert document(doc) == json.loads(path.read_text()), path
        assert not _undeclared(doc), path
    calibration = read_document(Calibration, calibration_run / "calibration.json")
    assert calibration.results and calibration.confusion_matrices and calibration.gates


# ----------------------------------------------------------------------------- read_run


def test_read_run_knows_each_kind_and_its_tables(score_run: Path, bench_run: Path, calibration_run: Path,
                                                 audit_dirs: dict[str, Path]) -> None:
    score = read_run(score_run)
    assert isinstance(score, ScoreRun) and score.summary is not None
    assert len(score.verdicts) == len(read_jsonl(score_run / "verdicts.jsonl"))
    assert score.review.lines == list(range(1, len(score.review) + 1))
    assert list(score.tables()) == ["verdicts", "panel", "review"]

    bench = read_run(bench_run)
    assert isinstance(bench, BenchRun) and bench.scorecard is not None and bench.respond is not None
    assert bench.score is not None and len(bench.score.verdicts) > 0 and not bench.missing
    assert len(bench.tables()["scorecard"]) == len(bench.scorecard.results)

    calibration = read_run(calibration_run)
    assert isinstance(calibration, CalibrationRun)
    assert set(calibration.tables()) == {"calibration", "confusion"}

    audit = read_run(audit_dirs["full"])
    assert isinstance(audit, AuditRun) and [name for name, _ in audit.stages] == ["score"]
    assert len(audit.tables()["score_verdicts"]) > 0 and audit.tables()["coverage"].records()


def test_read_run_of_a_folder_that_is_no_run(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="nothing to report on"):
        read_run(tmp_path)


def test_a_bad_row_is_named_by_file_line_and_field(score_run: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    shutil.copytree(score_run, run)
    path = run / "verdicts.jsonl"
    rows = read_jsonl(path)
    rows[1]["score"] = "high"
    del rows[2]["judge"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(RunDirError) as raised:
        len(read_run(run).verdicts)
    assert f"{path}:2: field score: Input should be a valid number" in str(raised.value)
    assert f"{path}:3: field judge: Field required" in str(raised.value)
    code, _, err = _cli(capsys, "export", run, "--format", "jsonl", "--out", tmp_path / "v.jsonl")
    assert code == 2 and f"{path}:2: field score" in err and not (tmp_path / "v.jsonl").exists()


def test_a_bad_document_field_is_named(score_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(score_run, run)
    summary = json.loads((run / "summary.json").read_text())
    summary["mean_scores"][0]["n"] = "many"
    (run / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    with pytest.raises(RunDirError, match=r"summary.json: field mean_scores\[0\].n: Input should be a valid integer"):
        read_run(run)


# ----------------------------------------------------------------------------- data frames and export


def test_tables_to_pandas(score_run: Path, calibration_run: Path) -> None:
    score = read_run(score_run)
    assert isinstance(score, ScoreRun)
    verdicts = score.verdicts.to_pandas()
    assert len(verdicts) == len(score.verdicts) and {"item_id", "judge", "score", "status"} <= set(verdicts.columns)
    assert verdicts["score"].dropna().between(0, 10).all()
    panel = score.panel.to_pandas()
    assert list(panel.columns[:3]) == ["item_id", "pillar", "criterion"] and panel["escalate"].any()
    results = read_run(calibration_run).tables()["calibration"].to_pandas()
    assert {"criterion", "judge", "metric", "value"} <= set(results.columns) and len(results) > 0


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_export_writes_each_format_owner_only(fmt: str, score_run: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import pandas as pd

    out = tmp_path / f"panel.{fmt}"
    code, stdout, err = _cli(capsys, "export", score_run, "--format", fmt, "--table", "panel", "--out", out)
    assert code == 0, err
    assert out.stat().st_mode & 0o077 == 0 and f"wrote {out}" in stdout
    expected = read_jsonl(score_run / "panel.jsonl")
    if fmt == "jsonl":
        assert read_jsonl(out) == expected
        return
    frame = pd.read_csv(out) if fmt == "csv" else pd.read_parquet(out)
    assert list(frame["item_id"]) == [r["item_id"] for r in expected]
    assert [json.loads(j) for j in frame["judges"]] == [r["judges"] for r in expected]  # nested: JSON text


def test_export_default_table_and_unknown_table(calibration_run: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "calibration.jsonl"
    assert _cli(capsys, "export", calibration_run, "--format", "jsonl", "--out", out)[0] == 0
    written = json.loads((calibration_run / "calibration.json").read_text())["results"]
    exported = read_jsonl(out)
    assert len(exported) == len(written)
    for row, record in zip(exported, written, strict=True):  # every declared column, null where the file has none
        assert row.items() >= record.items() and set(row) - set(record) <= {"reason", "small_n"}
    code, _, err = _cli(capsys, "export", calibration_run, "--format", "csv", "--table", "verdicts",
                        "--out", tmp_path / "x.csv")
    assert code == 2 and "no table 'verdicts'" in err and "calibration, confusion" in err


def test_without_the_frames_extra_the_message_says_what_to_install(
    score_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now raises ImportError
    run = read_run(score_run)
    with pytest.raises(FramesMissingError, match=r"pip install 'trustmh-judge\[frames\]'"):
        run.tables()["verdicts"].to_pandas()
    for fmt in ("csv", "parquet"):
        code, _, err = _cli(capsys, "export", score_run, "--format", fmt, "--out", tmp_path / f"v.{fmt}")
        assert code == 2 and "pip install 'trustmh-judge[frames]'" in err, err
    assert _cli(capsys, "export", score_run, "--format", "jsonl", "--out", tmp_path / "v.jsonl")[0] == 0
