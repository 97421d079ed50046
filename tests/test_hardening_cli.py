"""Faults a red-team pass found, through the real CLI: credentials, environment faults, read-only commands."""

from __future__ import annotations

import base64
import errno
import io
import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from rich.console import Console

import judge.cli.main
import judge.rundir
from judge.judges import parse_judge_spec
from tests.conftest import REPO, judges_arg, make_items, read_jsonl, write_jsonl
from tests.fakeapi import FakeLLMServer
from tests.fakeapi.judge_script import scripted_answerer


def every_file_under(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("*") if p.is_file()]


class Scoring(NamedTuple):
    """The fixtures a scoring test needs, for tests that also patch something."""

    tmp_path: Path
    llm_server: FakeLLMServer
    judge_env: Path
    rubric_dir: Path
    run_cli: Any


@pytest.fixture
def scoring(tmp_path: Path, llm_server: FakeLLMServer, judge_env: Path, rubric_dir: Path, run_cli: Any) -> Scoring:
    return Scoring(tmp_path, llm_server, judge_env, rubric_dir, run_cli)


SECRETS = (b"pa55w0rd", b"s3cret")


def test_credentials_in_a_base_url_go_as_basic_auth_and_are_written_nowhere(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    """A keyless server behind a proxy that takes user:password@ in the URL: both SDKs send them as HTTP
    basic auth (the OpenAI SDK's transport refused such a URL, and every call failed as "connection")."""
    with FakeLLMServer(answerer=scripted_answerer, require_auth=False) as server:
        _score_with_credentials(tmp_path, server, judge_env, rubric_dir, run_cli)


def _score_with_credentials(
    tmp_path: Path, llm_server: FakeLLMServer, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    host = llm_server.base_url.removeprefix("http://")
    judges_file = tmp_path / "judges.toml"
    judges_file.write_text(
        f'[judges.o]\nspec = "openai:gpt-4.1-mini@http://user:pa55w0rd@{host}/v1"\nmax_attempts = 1\n'
    )
    items = write_jsonl(tmp_path / "items.jsonl", make_items(2))
    out = tmp_path / "out"
    inline = f"anthropic:claude-sonnet-4-5@http://user:pa55w0rd@{host}"
    result = run_cli(
        "score", items, "--judges-file", judges_file, "--judges", f"o,{inline}", "--rubrics", rubric_dir,
        "--out", out, "-q",
    )  # fmt: skip
    assert result.code in (0, 3), result.stderr
    rows = read_jsonl(out / "verdicts.jsonl")
    assert {row["judge"] for row in rows} == {"o", f"anthropic:claude-sonnet-4-5@{host}"}
    for provider in ("openai", "anthropic"):  # both judges were answered: the credentials went as basic auth
        assert any(row["status"] == "ok" for row in rows if row["provider"] == provider), [
            row.get("error") for row in rows if row["provider"] == provider]
    basic = "Basic " + base64.b64encode(b"user:pa55w0rd").decode()
    assert {r.headers.get("authorization") for r in llm_server.requests if r.method == "POST"} == {basic}
    run = json.loads((out / "run.json").read_text())
    assert {j["base_url"] for j in run["judges"]} == {f"http://{host}/v1", f"http://{host}"}
    assert any(inline.replace("user:pa55w0rd@", "") in arg for arg in run["command_line"])
    files = every_file_under(out, judge_env)
    assert {p.name for p in files} >= {"verdicts.jsonl", "summary.json", "run.json", "items.jsonl", "cache.db"}
    for path in files:
        data = path.read_bytes()
        assert not any(secret in data for secret in SECRETS), path
    assert not any(secret.decode() in result.stdout + result.stderr for secret in SECRETS)


def test_a_query_string_in_a_base_url_is_refused_without_echoing_it(
    tmp_path: Path, llm_server: FakeLLMServer, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    host = llm_server.base_url.removeprefix("http://")
    items = write_jsonl(tmp_path / "items.jsonl", make_items(1))
    judge = f"openai:m@http://user:pa55w0rd@{host}/v1?key=s3cret"
    result = run_cli("score", items, "--judges", judge, "--rubrics", rubric_dir, "--out", tmp_path / "out", "-q")
    assert result.code == 2 and "query string" in result.stderr
    assert not any(secret.decode() in result.stdout + result.stderr for secret in SECRETS)
    assert not (tmp_path / "out").exists() and not llm_server.requests


# ---------------------------------------------------------------- environment faults (exit 2, path named)


def score_args(tmp_path: Path, server: FakeLLMServer, rubric_dir: Path, *extra: str | Path) -> list[str | Path]:
    items = tmp_path / "items.jsonl"
    if not items.exists():
        write_jsonl(items, make_items(2))
    judge = f"openai:gpt-4.1-mini@{server.openai_base_url}"
    return ["score", items, "--judges", judge, "--rubrics", rubric_dir, "-q", *extra]


def assert_clean_usage_error(result: Any, *words: str) -> None:
    assert result.code == 2, (result.code, result.stderr)
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty-header"])
def test_a_damaged_cache_is_named_with_the_way_out_and_cache_clear_recovers_it(
    tmp_path: Path, llm_server: FakeLLMServer, judge_env: Path, rubric_dir: Path, run_cli: Any, damage: str
) -> None:
    args = score_args(tmp_path, llm_server, rubric_dir)
    assert run_cli(*args, "--out", tmp_path / "r1").code == 0
    database = judge_env / "cache.db"
    data = database.read_bytes()
    for extra in ("cache.db-wal", "cache.db-shm"):
        (judge_env / extra).unlink(missing_ok=True)
    database.write_bytes(
        {"garbage": b"this is no database " * 200, "truncated": data[: len(data) // 3], "empty-header": b"\0" * 4096}[
            damage
        ]
    )
    llm_server.reset()
    for command in ([*args, "--out", tmp_path / "r2"], [*args, "--out", tmp_path / "r2", "--dry-run"]):
        result = run_cli(*command)
        assert_clean_usage_error(result, str(database), "trustmh cache clear")
    assert not llm_server.requests
    assert_clean_usage_error(run_cli("cache", "stats"), str(database))

    cleared = run_cli("cache", "clear", "--yes")
    assert cleared.code == 0, cleared.stderr
    assert "damaged" in cleared.stdout
    assert "0 cached judge calls" in run_cli("cache", "stats").stdout
    assert run_cli(*args, "--out", tmp_path / "r3").code == 0
    assert len(llm_server.requests) == 2, "after clearing, the calls are asked again and cached"


def test_out_or_cache_naming_a_regular_file_is_a_usage_error(
    tmp_path: Path, llm_server: FakeLLMServer, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder\n")
    result = run_cli(*score_args(tmp_path, llm_server, rubric_dir, "--out", a_file))
    assert_clean_usage_error(result, str(a_file), "not a folder")
    result = run_cli(*score_args(tmp_path, llm_server, rubric_dir, "--out", tmp_path / "out", "--cache", a_file))
    assert_clean_usage_error(result, str(a_file), "not a cache folder")
    assert_clean_usage_error(run_cli("cache", "stats", "--cache", a_file), str(a_file))
    assert a_file.read_text() == "not a folder\n" and not llm_server.requests


def test_a_full_disk_while_writing_outputs_names_the_file_and_the_rerun_pays_nothing_again(
    scoring: Scoring, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp_path, llm_server, _, rubric_dir, run_cli = scoring
    real = judge.rundir.write_atomic

    def disk_full(path: Path, write: Any, encoding: str = "utf-8") -> None:
        if path.name == "run.json" and not path.exists():  # the record of a starting run still fits
            return real(path, write, encoding)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    out = tmp_path / "out"
    args = score_args(tmp_path, llm_server, rubric_dir, "--out", out)
    with monkeypatch.context() as patch:
        patch.setattr("judge.rundir.write_atomic", disk_full)
        result = run_cli(*args)
    assert_clean_usage_error(result, str(out / "verdicts.jsonl"), "no space left", "run the same command again")
    asked = len(llm_server.requests)
    assert asked == 2
    again = run_cli(*args)
    assert again.code == 0, again.stderr
    assert len(llm_server.requests) == asked, "answers received before the disk filled up are not paid again"


def test_a_full_disk_under_the_cache_names_the_cache(scoring: Scoring, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp_path, llm_server, judge_env, rubric_dir, run_cli = scoring

    def disk_full(self: Any, *args: Any, **kwargs: Any) -> None:
        exc = sqlite3.OperationalError("database or disk is full")  # what sqlite raises, with its code
        exc.sqlite_errorcode = sqlite3.SQLITE_FULL
        raise exc

    monkeypatch.setattr("diskcache.Cache.set", disk_full)
    write_jsonl(tmp_path / "items.jsonl", make_items(1))  # one call: no other request is cut off mid-answer
    result = run_cli(*score_args(tmp_path, llm_server, rubric_dir, "--out", tmp_path / "out"))
    assert_clean_usage_error(result, str(judge_env), "no space left")


FILL_THE_CACHE = """
import sqlite3, sys
import diskcache
from judge.cli.__main__ import run
real, stored = diskcache.Cache.set, []
def set_until_full(self, *args, **kwargs):
    if len(stored) >= 2:  # the third answer finds the disk full
        exc = sqlite3.OperationalError("database or disk is full")
        exc.sqlite_errorcode = sqlite3.SQLITE_FULL
        raise exc
    stored.append(args[0])
    return real(self, *args, **kwargs)
diskcache.Cache.set = set_until_full
sys.argv = ["trustmh", *sys.argv[1:]]
run()
"""


def test_a_full_disk_under_the_cache_with_calls_in_flight_prints_one_message_and_loses_no_answer(
    scoring: Scoring,
) -> None:
    """With calls in flight, the first full-disk error used to end the run while the others were cancelled at
    asyncio's shutdown: about 530 lines of tracebacks, and their answers paid again on resume (#28 item 7)."""
    tmp_path, llm_server, _, rubric_dir, run_cli = scoring
    write_jsonl(tmp_path / "items.jsonl", make_items(40))
    out = tmp_path / "out"
    args = [str(a) for a in score_args(tmp_path, llm_server, rubric_dir, "--out", out, "--concurrency", "8")]
    done = subprocess.run([sys.executable, "-c", FILL_THE_CACHE, *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ}, check=False)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "no space left for the cache" in done.stderr, done.stderr
    answered = len({(r["item_id"], r["pillar"]) for r in read_jsonl(out / "verdicts.jsonl")})
    first = len(llm_server.requests)
    assert answered == first, "every answer received was journalled, those in flight included"
    again = run_cli(*args)
    assert again.code == 0, again.stderr
    assert len(llm_server.requests) - first == 40 - answered, "no answered call is asked again"


FILL_THE_OUT_FOLDER = """
import errno, os, sys
from judge.calls import engine
from judge.cli.__main__ import run
real, appended = engine.Journal.append, []
def append_until_full(self, lines):
    if len(appended) >= 3:  # the fourth call finds the out folder's disk full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
    appended.append(lines)
    return real(self, lines)
engine.Journal.append = append_until_full
sys.argv = ["trustmh", *sys.argv[1:]]
run()
"""


def test_a_full_disk_under_the_out_folder_keeps_the_answers_in_flight_in_the_cache(scoring: Scoring) -> None:
    """The journal cannot be written, but the cache (on another disk) can: the answers of the calls in flight
    are kept there, so the resumed run asks none of them again (the chaos script measured 32 paid twice)."""
    tmp_path, llm_server, _, rubric_dir, run_cli = scoring
    write_jsonl(tmp_path / "items.jsonl", make_items(40))
    out = tmp_path / "out"
    args = [str(a) for a in score_args(tmp_path, llm_server, rubric_dir, "--out", out, "--concurrency", "8")]
    done = subprocess.run([sys.executable, "-c", FILL_THE_OUT_FOLDER, *args], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ}, check=False)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    first = len(llm_server.requests)
    again = run_cli(*args)
    assert again.code == 0, again.stderr
    assert len(llm_server.requests) - first == 40 - first, "no answered call is asked again"


# ---------------------------------------------------------------- read-only commands create nothing


def test_cache_stats_of_a_missing_folder_creates_nothing(tmp_path: Path, run_cli: Any) -> None:
    missing = tmp_path / "nonexistent" / "x"
    result = run_cli("cache", "stats", "--cache", missing)
    assert result.code == 0 and "0 cached judge calls" in result.stdout
    assert not (tmp_path / "nonexistent").exists()
    cleared = run_cli("cache", "clear", "--yes", "--cache", missing)
    assert cleared.code == 0 and not (tmp_path / "nonexistent").exists()


def test_a_dry_run_creates_no_cache(
    tmp_path: Path, llm_server: FakeLLMServer, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    result = run_cli(*score_args(tmp_path, llm_server, rubric_dir, "--out", tmp_path / "out", "--dry-run"))
    assert result.code == 0, result.stderr
    assert not judge_env.exists() and not (tmp_path / "out").exists()
    judge_env.mkdir()  # an empty folder gets no database either
    assert run_cli(*score_args(tmp_path, llm_server, rubric_dir, "--out", tmp_path / "out", "--dry-run")).code == 0
    assert list(judge_env.iterdir()) == []
    assert run_cli(*score_args(tmp_path, llm_server, rubric_dir, "--out", tmp_path / "out")).code == 0
    again = run_cli(*score_args(tmp_path, llm_server, rubric_dir, "--out", tmp_path / "other", "--dry-run"))
    assert again.code == 0 and judge_env.exists()


# ---------------------------------------------------------------- items from the command line


@pytest.mark.parametrize("problem", ["missing", "directory", "twice"])
def test_a_bad_items_path_is_a_usage_error_even_with_skip_invalid(
    tmp_path: Path, llm_server: FakeLLMServer, judge_env: Path, rubric_dir: Path, run_cli: Any, problem: str
) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", make_items(2))
    other = {"missing": tmp_path / "missing.jsonl", "directory": tmp_path, "twice": good}[problem]
    out = tmp_path / "out"
    judge = f"openai:gpt-4.1-mini@{llm_server.openai_base_url}"
    result = run_cli("score", good, other, "--skip-invalid", "--judges", judge, "--rubrics", rubric_dir, "--out", out)
    assert_clean_usage_error(result, f"{other}:0: ")
    assert "first used at" not in result.stderr
    assert not out.exists() and not llm_server.requests


def test_items_from_standard_input(scoring: Scoring, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp_path, llm_server, _, rubric_dir, run_cli = scoring
    data = "".join(json.dumps(item) + "\n" for item in make_items(2)).encode()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    out = tmp_path / "out"
    judge = f"openai:gpt-4.1-mini@{llm_server.openai_base_url}"
    result = run_cli("score", "-", "--judges", judge, "--rubrics", rubric_dir, "--out", out, "-q")
    assert result.code == 0, result.stderr
    assert [row["id"] for row in read_jsonl(out / "items.jsonl")] == ["item-000", "item-001"]


# ---------------------------------------------------------------- owner-only outputs, terminal output


def assert_owner_only(*roots: Path) -> None:
    for root in roots:
        for path in [root, *root.rglob("*")] if root.is_dir() else [root]:
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def test_every_output_file_is_owner_only(
    tmp_path: Path, llm_server: FakeLLMServer, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    items = write_jsonl(tmp_path / "items.jsonl", [*make_items(3), {"id": "bad"}])
    out = tmp_path / "runs" / "r1"
    two = f"{judges_arg(llm_server)},openai:judge-b@{llm_server.openai_base_url}"
    result = run_cli("score", items, "--judges", two, "--rubrics", rubric_dir, "--out", out, "--skip-invalid", "-q")
    assert result.code == 0, result.stderr
    assert {"verdicts.jsonl", "panel.jsonl", "review.jsonl", "summary.json", "run.json", "items.jsonl",
            "rejected.jsonl"} <= {p.name for p in out.iterdir()}  # fmt: skip
    assert_owner_only(tmp_path / "runs")

    csv_path = tmp_path / "review" / "queue.csv"
    assert run_cli("review", "export", out, "--csv", csv_path).code == 0
    assert run_cli("review", "import", csv_path, "--out", tmp_path / "decisions" / "a.jsonl").code == 0
    assert_owner_only(tmp_path / "review", tmp_path / "decisions")

    human = write_jsonl(tmp_path / "h.jsonl", [{"item_id": "x", "criterion": "c", "rater": "r", "score": 1}])
    judged = write_jsonl(tmp_path / "j.jsonl", [{"item_id": "x", "criterion": "c", "judge": "j", "score": 1}])
    calibrated = run_cli("calibrate", "--human", human, "--judged", judged, "--bootstrap", "0",
                         "--out", tmp_path / "calib" / "c1")  # fmt: skip
    assert calibrated.code == 0, calibrated.stderr
    assert_owner_only(tmp_path / "calib")


def test_quiet_prints_no_agreement_table_and_names_are_not_cut_at_80_columns(
    scoring: Scoring, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp_path, llm_server, _, rubric_dir, run_cli = scoring
    monkeypatch.setattr(judge.cli.main, "out_console", Console(width=80))
    monkeypatch.setattr(judge.cli.main, "err_console", Console(width=80, stderr=True))
    items = write_jsonl(tmp_path / "items.jsonl", make_items(2))
    args = ["score", items, "--judges", judges_arg(llm_server), "--rubrics", rubric_dir]
    names = [parse_judge_spec(spec).name for spec in judges_arg(llm_server).split(",")]

    plan = run_cli(*args, "--out", tmp_path / "dry", "--dry-run")
    assert plan.code == 0 and "…" not in plan.stdout
    judge_column = "".join(line.split("│")[1].strip() for line in plan.stdout.splitlines() if line.count("│") > 3)
    assert all(name in judge_column for name in names), (names, plan.stdout)

    quiet = run_cli(*args, "--out", tmp_path / "q", "-q")
    assert quiet.code == 0 and "Agreement among judges" not in quiet.stderr + quiet.stdout
    loud = run_cli(*args, "--out", tmp_path / "loud")
    assert loud.code == 0 and "Agreement among judges" in loud.stderr and "…" not in loud.stderr


def test_calibrate_prints_a_table_of_its_results(tmp_path: Path, run_cli: Any) -> None:
    human = write_jsonl(
        tmp_path / "h.jsonl",
        [
            {"item_id": f"i{k}", "criterion": "empathy", "rater": r, "score": s}
            for k in range(6)
            for r, s in (("a", k % 5 + 1), ("b", k % 5 + 1))
        ],
    )
    judged = write_jsonl(tmp_path / "j.jsonl", [{"item_id": f"i{k}", "criterion": "empathy", "judge": "judge-x",
                                                 "score": k % 5 + 1} for k in range(6)])  # fmt: skip
    result = run_cli("calibrate", "--human", human, "--judged", judged, "--bootstrap", "0", "--out", tmp_path / "c")
    assert result.code == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if "judge-x" in line)
    cells = [cell.strip() for cell in row.split("│") if cell.strip()]
    assert cells[:4] == ["empathy", "judge-x", "6", "1.000"], row  # criterion, judge, n, QWK
