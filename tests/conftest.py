"""Shared fixtures: a loopback LLM server that answers like a judge, items, rubric folders, the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from judge.bundled import bundled_path
from judge.cli.main import main
from judge.items import ITEM_SHAPE, Item, RecordShape, Rejection, iter_read
from tests.fakeapi import FakeLLMServer
from tests.fakeapi.judge_script import scripted_answerer

REPO = Path(__file__).resolve().parents[1]
OPENAI_KEY = "sk-test-openai-SECRET-0123456789"
ANTHROPIC_KEY = "sk-ant-test-SECRET-9876543210"


@pytest.fixture
def llm_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(answerer=scripted_answerer) as server:
        yield server


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLMServer]:
    """The scripted judge server with both providers' keys in the environment, for tests that build SDK
    clients themselves (a module that defines its own `server` fixture uses that one instead)."""
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    with FakeLLMServer(answerer=scripted_answerer) as fake:
        yield fake


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Any:
    """Run `trustmh ARGS` in this process (fast) and return its exit code and output."""

    def invoke(*args: str | Path) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


@pytest.fixture
def judge_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """API keys that must never leak, and a private cache folder; returns the cache folder."""
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("TRUSTMH_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def rubric_dir(tmp_path: Path) -> Path:
    """A private copy of the bundled crisis and safety rubrics, free to edit."""
    target = tmp_path / "rubrics"
    target.mkdir()
    for pillar in ("crisis", "safety"):
        shutil.copy(bundled_path("rubrics") / f"{pillar}.yaml", target / f"{pillar}.yaml")
    return target


def make_items(n: int, pillars: list[str] | str = "crisis") -> list[dict[str, Any]]:
    return [
        {
            "id": f"item-{i:03d}",
            "pillar": pillars,
            "messages": [{"role": "user", "content": f"I can't sleep and everything feels pointless (case {i})."}],
            "response": (
                f"Case {i}: I'm sorry you're carrying this. If you ever think about ending your life, call or "
                "text 988 now. Would you tell me more about what has been happening?"
            ),
            "target": "gpt-4o-mini" if i % 2 else "claude-3-haiku",
        }
        for i in range(n)
    ]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def judges_arg(server: FakeLLMServer) -> str:
    return f"openai:gpt-4.1-mini@{server.openai_base_url},anthropic:claude-sonnet-4-5@{server.anthropic_base_url}"


def trustmh_subprocess(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """The real command in a child process (for kill tests)."""
    return subprocess.Popen(
        [sys.executable, "-m", "judge.cli", *args],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@dataclass
class ItemReadResult:
    items: list[Item] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def read_items(
    paths: list[Path], known_pillars: Any, *, shape: RecordShape = ITEM_SHAPE, **options: Any
) -> ItemReadResult:
    """`iter_read` collected into items (or prompts) and rejections (runs stream them instead)."""
    result = ItemReadResult()
    for entry in iter_read(paths, known_pillars, shape=shape, **options):
        (result.rejections if isinstance(entry, Rejection) else result.items).append(entry)  # type: ignore[arg-type]
    return result
