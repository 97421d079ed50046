"""`trustmh score` on bad input and bad options: exit 2, `FILE:LINE:` messages, nothing written, nothing sent.

Also `--skip-invalid`, `--dry-run`, a missing key and a server refusing the key (all in-process, loopback only).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import judge.cli.main
from judge.judges import parse_judge_spec
from tests.conftest import judges_arg, make_items, read_jsonl, write_jsonl
from tests.fakeapi import FakeLLMServer
from tests.fakeapi.judge_script import scripted_answerer


def good_line(item_id: str = "ok-1", **changes: Any) -> str:
    row = {**make_items(1)[0], "id": item_id, **changes}
    return json.dumps(row)


def lines(*rows: str) -> bytes:
    return "".join(r + "\n" for r in rows).encode("utf-8")


BIG = "x" * 3_000_000

# (name, file suffix, file bytes, line of the bad record, words the message must contain)
BAD_INPUTS: list[tuple[str, str, bytes, int, list[str]]] = [
    ("broken_json", ".jsonl", lines(good_line("a"), '{"id": "b", "response": "hi",'), 2, ["invalid JSON"]),
    (
        "missing_response",
        ".jsonl",
        lines(good_line("a"), json.dumps({"id": "b", "pillar": "crisis", "prompt": "hello"})),
        2,
        ["missing", "response"],
    ),
    (
        "unknown_pillar",
        ".jsonl",
        lines(good_line("a"), good_line("b", pillar="wellbeing")),
        2,
        ["unknown pillar", "wellbeing"],
    ),
    ("duplicate_id", ".jsonl", lines(good_line("a"), good_line("b"), good_line("a")), 3, ["duplicate id", "'a'"]),
    ("wrong_type", ".jsonl", lines(good_line("a"), good_line("b", response=42)), 2, ["response", "must be a string"]),
    ("empty_response", ".jsonl", lines(good_line("a"), good_line("b", response="")), 2, ["response", "empty"]),
    (
        "non_utf8",
        ".jsonl",
        lines(good_line("a"))
        + good_line("b").replace("Case", "Caf\\u00e9").encode().replace(b"Caf\\u00e9", b"Caf\xe9")
        + b"\n",
        2,
        ["UTF-8"],
    ),
    ("truncated_last_line", ".jsonl", lines(good_line("a")) + good_line("b")[:60].encode(), 2, ["truncated"]),
    (
        "huge_response",
        ".jsonl",
        lines(good_line("a"), good_line("b", response=BIG)),
        2,
        ["3,000,000", "--max-response-chars"],
    ),
    (
        "csv_bad_row",
        ".csv",
        b'id,pillar,prompt,response\na,crisis,I feel low,"I hear you, call 988"\nb,crisis,I feel low\n',
        3,
        ["cells", "columns"],
    ),
]


@pytest.mark.parametrize(("name", "suffix", "data", "line", "words"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_exits_2_with_file_line_message_and_writes_nothing(
    tmp_path: Path,
    judge_env: Path,
    rubric_dir: Path,
    llm_server: FakeLLMServer,
    run_cli: Any,
    name: str,
    suffix: str,
    data: bytes,
    line: int,
    words: list[str],
) -> None:
    items = tmp_path / f"{name}{suffix}"
    items.write_bytes(data)
    out = tmp_path / "out"
    result = run_cli("score", items, "--judges", judges_arg(llm_server), "--rubrics", rubric_dir, "--out", out, "-q")
    assert result.code == 2, result.stderr
    located = [
        ln for ln in result.stderr.splitlines() if ln.startswith(f"{items}:{line}:") or f" {items}:{line}:" in ln
    ]
    assert located, result.stderr
    for word in words:
        assert word in located[0], (word, located[0])
    assert "Traceback" not in result.stderr
    assert not out.exists(), "bad input must not create the output folder"
    assert llm_server.requests == []


def test_every_bad_line_is_reported_not_just_the_first(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, llm_server: FakeLLMServer, run_cli: Any
) -> None:
    items = tmp_path / "items.jsonl"
    items.write_bytes(lines(good_line("a"), "{oops", good_line("c", response=""), good_line("d", pillar="nope")))
    result = run_cli(
        "score", items, "--judges", judges_arg(llm_server), "--rubrics", rubric_dir, "--out", tmp_path / "out", "-q"
    )
    assert result.code == 2
    for line in (2, 3, 4):
        assert f"{items}:{line}:" in result.stderr
    assert f"{items}:1:" not in result.stderr
    assert "--skip-invalid" in result.stderr


def test_a_raised_max_response_chars_accepts_the_long_response(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, llm_server: FakeLLMServer, run_cli: Any
) -> None:
    items = tmp_path / "items.jsonl"
    items.write_bytes(lines(good_line("a", response="word " * 50)))
    common = ["score", items, "--judges", judges_arg(llm_server), "--rubrics", rubric_dir, "--dry-run"]
    assert run_cli(*common, "--max-response-chars", "100", "--out", tmp_path / "o1").code == 2
    assert run_cli(*common, "--max-response-chars", "1000", "--out", tmp_path / "o2").code == 0


def test_skip_invalid_lists_rejected_lines_and_judges_the_rest(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, llm_server: FakeLLMServer, run_cli: Any
) -> None:
    items = tmp_path / "items.jsonl"
    items.write_bytes(
        lines(good_line("a"), "{broken", good_line("b"), good_line("c", response=""), good_line("a"), good_line("d"))
    )
    out = tmp_path / "out"
    result = run_cli(
        "score",
        items,
        "--judges",
        judges_arg(llm_server),
        "--rubrics",
        rubric_dir,
        "--out",
        out,
        "--skip-invalid",
        "-q",
    )
    assert result.code == 0, result.stderr
    rejected = read_jsonl(out / "rejected.jsonl")
    assert [(r["file"], r["line"]) for r in rejected] == [(str(items), 2), (str(items), 4), (str(items), 5)]
    assert all(r["reason"] for r in rejected)
    assert "invalid JSON" in rejected[0]["reason"]
    assert "empty" in rejected[1]["reason"] and rejected[1]["item_id"] == "c"
    assert "duplicate id" in rejected[2]["reason"]
    verdicts = read_jsonl(out / "verdicts.jsonl")
    assert {r["item_id"] for r in verdicts} == {"a", "b", "d"}
    # Three valid items with the same content: each judge is asked once (the call is claimed in the cache
    # while it is asked), and the two copies are answered from the cache.
    assert len(llm_server.requests) == 1 * 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["items"] == 3 and summary["rejected"] == 3
    assert summary["calls"]["requested"] == 2 and summary["calls"]["cache_hits"] == 4


def test_skip_invalid_with_nothing_valid_is_still_an_error(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, llm_server: FakeLLMServer, run_cli: Any
) -> None:
    items = tmp_path / "items.jsonl"
    items.write_bytes(lines("{broken", good_line("c", response="")))
    out = tmp_path / "out"
    result = run_cli(
        "score",
        items,
        "--judges",
        judges_arg(llm_server),
        "--rubrics",
        rubric_dir,
        "--out",
        out,
        "--skip-invalid",
        "-q",
    )
    assert result.code == 2
    assert "no valid items" in result.stderr
    assert llm_server.requests == []


def test_unknown_pillars_option_exits_2(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, llm_server: FakeLLMServer, run_cli: Any
) -> None:
    items = write_jsonl(tmp_path / "items.jsonl", make_items(2))
    out = tmp_path / "out"
    result = run_cli(
        "score",
        items,
        "--judges",
        judges_arg(llm_server),
        "--rubrics",
        rubric_dir,
        "--out",
        out,
        "--pillars",
        "crisis,wellbeing",
        "-q",
    )
    assert result.code == 2
    assert "--pillars" in result.stderr and "wellbeing" in result.stderr
    assert not out.exists() and llm_server.requests == []


def test_items_without_pillar_and_no_pillars_option_exit_2(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, llm_server: FakeLLMServer, run_cli: Any
) -> None:
    rows = make_items(3)
    for row in rows:
        del row["pillar"]
    items = write_jsonl(tmp_path / "items.jsonl", rows)
    out = tmp_path / "out"
    result = run_cli("score", items, "--judges", judges_arg(llm_server), "--rubrics", rubric_dir, "--out", out, "-q")
    assert result.code == 2
    assert "pillar" in result.stderr and "--pillars" in result.stderr and "item-000" in result.stderr
    assert not out.exists() and llm_server.requests == []

    # The same items with --pillars are judged.
    result = run_cli(
        "score",
        items,
        "--judges",
        judges_arg(llm_server),
        "--rubrics",
        rubric_dir,
        "--out",
        out,
        "--pillars",
        "safety",
        "-q",
    )
    assert result.code == 0, result.stderr
    assert {r["pillar"] for r in read_jsonl(out / "verdicts.jsonl")} == {"safety"}


# ---------------------------------------------------------------- dry run


@pytest.fixture
def wide_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dry-run table on one line per judge, whatever the test terminal's width."""
    monkeypatch.setattr(judge.cli.main, "out_console", Console(width=400))


def plan_rows(stdout: str, judge_names: list[str]) -> dict[str, dict[str, int]]:
    header = next(ln for ln in stdout.splitlines() if "calls" in ln and "to ask" in ln)
    columns = [c.strip() for c in re.split(r"[│|┃]", header) if c.strip()]
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[│|┃]", line) if c.strip()]
        if cells and cells[0] in judge_names:
            rows[cells[0]] = {col: int(val) for col, val in zip(columns[1:], cells[1:], strict=False) if val.isdigit()}
    return rows


def test_dry_run_sends_nothing_and_reports_the_plan_then_the_cache(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, llm_server: FakeLLMServer, run_cli: Any, wide_stdout: None
) -> None:
    items = write_jsonl(tmp_path / "items.jsonl", make_items(4, ["crisis", "safety"]))
    judges = judges_arg(llm_server)
    names = [parse_judge_spec(spec).name for spec in judges.split(",")]  # provider:model@host:port
    out = tmp_path / "out"
    args = ["score", items, "--judges", judges, "--rubrics", rubric_dir, "--out", out, "-q"]

    before = run_cli(*args, "--dry-run")
    assert before.code == 0, before.stderr
    assert llm_server.requests == [], "a dry run sends no request"
    assert not out.exists()
    for word in ("calls", "cached", "to ask", "tokens"):
        assert word in before.stdout
    plan = plan_rows(before.stdout, names)
    assert set(plan) == set(names)
    for row in plan.values():
        assert row["calls"] == 8 and row["cached"] == 0 and row["to ask"] == 8
        assert row["est. input tokens"] > 0 and row["est. output tokens"] > 0

    assert run_cli(*args).code == 0
    sent = len(llm_server.requests)
    assert sent == 16

    after = run_cli(*args, "--dry-run", "--out", tmp_path / "elsewhere")
    assert after.code == 0
    assert len(llm_server.requests) == sent
    plan = plan_rows(after.stdout, names)
    for row in plan.values():
        assert row["calls"] == 8 and row["cached"] == 8 and row["to ask"] == 0
        assert row["est. input tokens"] == 0


# ---------------------------------------------------------------- keys and auth


def test_missing_key_exits_2_naming_the_variable(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    items = write_jsonl(tmp_path / "items.jsonl", make_items(2))
    out = tmp_path / "out"
    result = run_cli("score", items, "--judges", "openai:gpt-4.1-mini", "--rubrics", rubric_dir, "--out", out, "-q")
    assert result.code == 2, result.stderr
    assert "OPENAI_API_KEY" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_server_refusing_the_key_gives_failed_auth_verdicts_and_exit_3(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    items = write_jsonl(tmp_path / "items.jsonl", make_items(3))
    out = tmp_path / "out"
    with FakeLLMServer(answerer=scripted_answerer, api_key="sk-only-this-one") as server:
        result = run_cli(
            "score",
            items,
            "--judges",
            f"openai:gpt-4.1-mini@{server.openai_base_url}",
            "--rubrics",
            rubric_dir,
            "--out",
            out,
            "-q",
        )
        log = server.requests
    assert result.code == 3, result.stderr
    assert len(log) == 3 and all(r.status == 401 for r in log), "an auth error is not retried"
    rows = read_jsonl(out / "verdicts.jsonl")
    assert rows and {r["item_id"] for r in rows} == {"item-000", "item-001", "item-002"}
    for row in rows:
        assert row["status"] == "failed" and row["score"] is None
        assert "auth" in row["error"] and "401" in row["error"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failures_by_reason"] == {"auth": 3}
    # Nothing was cached: a later run with the right key asks again.
    with FakeLLMServer(answerer=scripted_answerer) as server:
        again = run_cli(
            "score",
            items,
            "--judges",
            f"openai:gpt-4.1-mini@{server.openai_base_url}",
            "--rubrics",
            rubric_dir,
            "--out",
            tmp_path / "again",
            "-q",
        )
        assert again.code == 0 and len(server.requests) == 3


def test_judges_option_of_only_commas_is_a_usage_error(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    items = write_jsonl(tmp_path / "items.jsonl", make_items(2))
    out = tmp_path / "out"
    result = run_cli("score", items, "--judges", ",", "--rubrics", rubric_dir, "--out", out, "-q")
    assert result.code == 2, (result.code, result.stderr)
    assert not out.exists()


def test_judges_file_with_a_wrongly_typed_setting_is_a_usage_error(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, llm_server: FakeLLMServer, run_cli: Any
) -> None:
    judges_file = tmp_path / "judges.toml"
    judges_file.write_text(
        f'[judges.a]\nspec = "openai:gpt-4.1-mini@{llm_server.openai_base_url}"\nconcurrency = "four"\n'
    )
    items = write_jsonl(tmp_path / "items.jsonl", make_items(2))
    out = tmp_path / "out"
    result = run_cli("score", items, "--judges-file", judges_file, "--rubrics", rubric_dir, "--out", out, "-q")
    assert result.code == 2, (result.code, result.stderr)
    assert "concurrency" in result.stderr and "[judges.a]" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("setting", ["temperature = -1", "max_tokens = 0", "price_input_per_mtok = -2.0"])
def test_judges_file_with_an_out_of_range_setting_is_a_usage_error(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, llm_server: FakeLLMServer, run_cli: Any, setting: str
) -> None:
    judges_file = tmp_path / "judges.toml"
    judges_file.write_text(f'[judges.a]\nspec = "openai:gpt-4.1-mini@{llm_server.openai_base_url}"\n{setting}\n')
    items = write_jsonl(tmp_path / "items.jsonl", make_items(2))
    out = tmp_path / "out"
    result = run_cli("score", items, "--judges-file", judges_file, "--rubrics", rubric_dir, "--out", out, "-q")
    assert result.code == 2, (result.code, result.stderr)
    assert f"{judges_file}: [judges.a]: {setting.split()[0]} must be" in result.stderr
    assert not out.exists() and not llm_server.requests


def test_samples_above_one_at_temperature_zero_are_refused_before_anything_is_paid(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, llm_server: FakeLLMServer, run_cli: Any
) -> None:
    items = write_jsonl(tmp_path / "items.jsonl", make_items(2))
    out = tmp_path / "out"
    judge = f"openai:gpt-4.1-mini@{llm_server.openai_base_url}"
    result = run_cli("score", items, "--judges", judge, "--samples", "3", "--rubrics", rubric_dir, "--out", out)
    assert result.code == 2, (result.code, result.stderr)
    assert "temperature 0" in result.stderr and "temperature > 0" in result.stderr
    assert not out.exists() and not llm_server.requests
