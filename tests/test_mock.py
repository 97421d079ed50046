"""The `mock:` target and judge: the README's offline quick start runs as shown, every output says the mocks
are not models, the same inputs give the same outputs, the mock judge's verdicts pass the checks a real
judge's must, and mock calls are cached and resumed like any call."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from judge.bundled import bundled_path
from judge.judges import NOT_A_MODEL
from judge.rubric import fold_whitespace, load_rubric_dir
from tests.conftest import REPO, read_jsonl

pytestmark = pytest.mark.timeout(300)

README_COMMAND = re.compile(r"^\.venv/bin/trustmh (bench .*--targets mock:a .*)$", re.M)
VOLATILE = {"latency_s", "cached"}


def readme_quick_start() -> list[str]:
    (command,) = README_COMMAND.findall((REPO / "README.md").read_text(encoding="utf-8"))
    return shlex.split(command)


def with_out(args: list[str], out: Path) -> list[str]:
    index = args.index("--out")
    return [*args[:index + 1], str(out), *args[index + 2:]]


def stable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]


@pytest.fixture
def mirror() -> None:
    import os

    mirror = os.environ.get("TRUSTMH_DATA_MIRROR")
    if not mirror or not Path(mirror).is_dir():
        pytest.skip("no dataset mirror: set TRUSTMH_DATA_MIRROR to a folder (the suites read the public datasets)")


@pytest.mark.usefixtures("mirror")
def test_the_readme_quick_start_runs_offline_and_every_output_says_not_a_model(
    tmp_path: Path, judge_env: Path, run_cli: Any
) -> None:
    args = readme_quick_start()
    out = tmp_path / "try"
    result = run_cli(*with_out(args, out))
    assert result.code == 0, result.stderr
    terminal = " ".join((result.stdout + result.stderr).split())
    assert f"mock:a is {NOT_A_MODEL}" in terminal and f"mock:j is {NOT_A_MODEL}" in terminal
    respond = json.loads((out / "respond" / "summary.json").read_text())
    score = json.loads((out / "score" / "summary.json").read_text())
    card = json.loads((out / "scorecard.json").read_text())
    assert respond["not_a_model"] == {"mock:a": NOT_A_MODEL} and score["not_a_model"] == {"mock:j": NOT_A_MODEL}
    assert card["not_a_model"] == {"mock:a": NOT_A_MODEL, "mock:j": NOT_A_MODEL}
    assert f"**mock:a is {NOT_A_MODEL}.**" in (out / "scorecard.md").read_text()
    report = (out / "report.html").read_text()
    assert "NOT A MODEL</dt><dd>mock:a, mock:j: " + NOT_A_MODEL in report
    suites = args[args.index("--suites") + 1].split(",")
    assert {r["suite"] for r in card["results"]} == set(suites) and {r["target"] for r in card["results"]} == {"mock:a"}
    assert respond["cost_usd_this_run"] == 0 and score["cost_usd_this_run"] == 0, "a mock costs nothing"

    # The same command again, into another folder without the cache: the same answers, verdicts and scorecard.
    again = tmp_path / "again"
    assert run_cli(*with_out(args, again), "--no-cache", "-q").code == 0
    for name in ("respond/calls.jsonl", "score/verdicts.jsonl"):
        assert stable(read_jsonl(again / name)) == stable(read_jsonl(out / name)), name
    assert json.loads((again / "scorecard.json").read_text()) == card

    # With the cache: nothing is asked again; the mocks are still named.
    cached = tmp_path / "cached"
    result = run_cli(*with_out(args, cached), "-q")
    assert result.code == 0
    summary = json.loads((cached / "score" / "summary.json").read_text())
    assert summary["calls"]["cache_hits"] == summary["calls"]["planned"] > 0
    assert summary["not_a_model"] == {"mock:j": NOT_A_MODEL}


def test_mock_judges_give_valid_verdicts_with_evidence_quoted_from_the_response_and_disagree(
    tmp_path: Path, judge_env: Path, run_cli: Any
) -> None:
    items = bundled_path("examples") / "crisis.jsonl"
    out = tmp_path / "score"
    result = run_cli("score", items, "--judges", "mock:j,mock:k", "--out", out, "-q")
    assert result.code == 0, result.stderr
    rubrics = load_rubric_dir(bundled_path("rubrics"))
    responses = {row["id"]: row["response"] for row in read_jsonl(items)}
    verdicts = read_jsonl(out / "verdicts.jsonl")
    assert verdicts and {v["judge"] for v in verdicts} == {"mock:j", "mock:k"}
    for row in verdicts:
        assert row["status"] in ("ok", "not_applicable"), row
        assert row["provider"] == "mock"
        if row["status"] == "ok":
            assert NOT_A_MODEL in row["rationale"]
            scale = rubrics[row["pillar"]].criterion(row["criterion"]).scale
            assert scale.min <= row["score"] <= scale.max
            assert row["evidence"] and all(fold_whitespace(q) in fold_whitespace(responses[row["item_id"]])
                                           for q in row["evidence"])  # fmt: skip
    by_judge: dict[str, list[Any]] = {"mock:j": [], "mock:k": []}
    for row in verdicts:
        by_judge[row["judge"]].append(row["score"])
    assert by_judge["mock:j"] != by_judge["mock:k"], "two mock judges do not agree on everything"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["not_a_model"] == {"mock:j": NOT_A_MODEL, "mock:k": NOT_A_MODEL}
    assert summary["panel"] is not None and summary["agreement"]

    again = run_cli("score", items, "--judges", "mock:j,mock:k", "--out", tmp_path / "again", "--no-cache", "-q")
    assert again.code == 0
    assert stable(read_jsonl(tmp_path / "again" / "verdicts.jsonl")) == stable(verdicts), "deterministic"


def test_a_killed_mock_run_resumes_from_its_journal(tmp_path: Path, judge_env: Path, run_cli: Any) -> None:
    items = bundled_path("examples") / "safety.jsonl"
    out = tmp_path / "score"
    assert run_cli("score", items, "--judges", "mock:j", "--out", out, "-q", "--no-cache").code == 0
    journal = (out / "verdicts.jsonl").read_text().splitlines(keepends=True)
    (out / "verdicts.jsonl").write_text("".join(journal[: len(journal) // 2]))  # as if killed half way
    assert run_cli("score", items, "--judges", "mock:j", "--out", out, "-q", "--no-cache").code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert 0 < summary["calls"]["resumed"] < summary["calls"]["planned"]
    assert stable(read_jsonl(out / "verdicts.jsonl")) == stable([json.loads(line) for line in journal])


def test_with_batch_a_mock_judge_is_asked_live(tmp_path: Path, judge_env: Path, run_cli: Any) -> None:
    items = bundled_path("examples") / "safety.jsonl"
    out = tmp_path / "batch"
    result = run_cli("score", items, "--judges", "mock:j", "--out", out, "--batch", "-q")
    assert result.code == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["calls"]["failed"] == 0 and summary["calls"]["batched"] == 0
    assert not (out / "batches.jsonl").exists() or not (out / "batches.jsonl").read_text().strip()
