"""Guarantees of a run into an out directory (issue-12 regressions): a tie-breaker already on the panel is
refused, a dry run estimates tie-breaker calls, one run at a time holds an out directory, another run's
results are not replaced without --overwrite, and an OpenAI-only run never imports the Anthropic SDK."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from judge.rundir import OutDirLock, make_private_dir
from tests.conftest import REPO, judges_arg, make_items, read_jsonl, write_jsonl
from tests.fakeapi import FakeLLMServer


def score_args(tmp_path: Path, server: FakeLLMServer, rubric_dir: Path, *extra: Any) -> list[Any]:
    items = write_jsonl(tmp_path / "items.jsonl", make_items(3))
    return ["score", items, "--judges", judges_arg(server), "--rubrics", rubric_dir, "-q", *extra]


def test_a_tiebreaker_already_on_the_panel_is_refused(
    tmp_path: Path, llm_server: FakeLLMServer, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    panel_judge = f"openai:gpt-4.1-mini@{llm_server.openai_base_url}"
    result = run_cli(
        *score_args(tmp_path, llm_server, rubric_dir, "--out", tmp_path / "out", "--tiebreak", panel_judge)
    )
    assert result.code == 2
    assert "already on the panel" in result.stderr
    assert llm_server.requests == [] and not (tmp_path / "out").exists()


def test_a_dry_run_estimates_the_tiebreaker_calls_as_an_upper_bound(
    tmp_path: Path,
    llm_server: FakeLLMServer,
    judge_env: Path,
    rubric_dir: Path,
    run_cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import judge.cli.main

    monkeypatch.setattr(judge.cli.main, "out_console", Console(width=300))
    tiebreak = f"openai:gpt-4.1@{llm_server.openai_base_url}"
    result = run_cli(*score_args(tmp_path, llm_server, rubric_dir, "--dry-run", "--tiebreak", tiebreak))
    assert result.code == 0, result.stderr
    (row,) = [line for line in result.stdout.splitlines() if "tie-breaker, at most" in line]
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[1] == "3" and int(cells[5]) > 0, cells  # one call per item × pillar at most
    assert "upper bound" in result.stdout and llm_server.requests == []


def test_a_second_score_on_a_held_out_dir_is_refused_naming_the_holder(
    tmp_path: Path, llm_server: FakeLLMServer, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    out = tmp_path / "out"
    make_private_dir(out)
    with OutDirLock(out):
        result = run_cli(*score_args(tmp_path, llm_server, rubric_dir, "--out", out))
    assert result.code == 2 and "another run is using this out directory" in result.stderr
    assert f"pid {os.getpid()}" in result.stderr.replace("\n", " ")
    assert llm_server.requests == []


def test_an_out_dir_of_another_run_is_replaced_only_with_overwrite(
    tmp_path: Path, llm_server: FakeLLMServer, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    out = tmp_path / "out"
    assert run_cli(*score_args(tmp_path, llm_server, rubric_dir, "--out", out)).code == 0
    before = (out / "verdicts.jsonl").read_text()
    other = write_jsonl(tmp_path / "other.jsonl", make_items(5))
    args = ["score", other, "--judges", judges_arg(llm_server), "--rubrics", rubric_dir, "-q", "--out", out]
    refused = run_cli(*args)
    assert refused.code == 2 and "--overwrite" in refused.stderr
    assert (out / "verdicts.jsonl").read_text() == before, "the earlier results are untouched"
    replaced = run_cli(*args, "--overwrite")
    assert replaced.code == 0, replaced.stderr
    assert {r["item_id"] for r in read_jsonl(out / "verdicts.jsonl")} == {f"item-{i:03d}" for i in range(5)}
    assert json.loads((out / "summary.json").read_text())["items"] == 5


def test_an_openai_only_run_imports_neither_the_anthropic_sdk_nor_other_commands(
    tmp_path: Path, llm_server: FakeLLMServer, judge_env: Path, rubric_dir: Path
) -> None:
    """Start-up time: `score` with an OpenAI judge loads neither the other SDK nor the modules of the
    commands it does not run (suites and numpy, the report, the audit, calibration), nor, for a
    plain-http server, the HTTP stack the SDK's TLS context comes with (httpcore2)."""
    items = write_jsonl(tmp_path / "items.jsonl", make_items(2))
    unwanted = ["anthropic", "numpy", "judge.suites.catalogue", "judge.report", "judge.audit", "calibration.cli"]
    unwanted += ["judge.cli.bench_cmd", "httpcore2"]
    program = (
        "import sys\nfrom judge.cli.main import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit as exc:\n    code = exc.code\n"
        f"print('loaded:', [m for m in {unwanted!r} if m in sys.modules], code)\n"
    )
    args = ["score", str(items), "--judges", f"openai:gpt-4.1-mini@{llm_server.openai_base_url}",
            "--rubrics", str(rubric_dir), "--out", str(tmp_path / "out"), "-q"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", program, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ},
        check=False,
    )
    assert "loaded: [] 0" in done.stdout, (done.stdout, done.stderr)
    assert len(llm_server.requests) == 2
