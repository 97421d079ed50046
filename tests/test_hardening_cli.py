"""Faults a red-team pass found, through the real CLI: credentials, environment faults, read-only commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import make_items, read_jsonl, write_jsonl
from tests.fakeapi import FakeLLMServer


def every_file_under(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("*") if p.is_file()]


SECRETS = (b"pa55w0rd", b"s3cret")


def test_credentials_in_a_base_url_are_written_nowhere(
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
    assert any(row["status"] == "ok" for row in rows if row["provider"] == "anthropic"), "that judge was answered"
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
