"""docs/api.md runs: its Python blocks, in order, in one namespace, against the loopback server."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.fakeapi import FakeLLMServer

DOC = REPO / "docs" / "api.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
JUDGE = "openai:gpt-4.1-mini"  # what the page names; the test points it at the loopback server


def test_the_api_walk_through_runs(tmp_path: Path, judge_env: Path, llm_server: FakeLLMServer,
                                   monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    blocks = BLOCK.findall(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    local = f"{JUDGE}@{llm_server.openai_base_url}"
    namespace: dict[str, object] = {}
    for number, block in enumerate(blocks, start=1):
        assert JUDGE in block or number > 2 or "read_run" in block
        exec(compile(block.replace(f'"{JUDGE}"', f'"{local}"'), f"{DOC}:block {number}", "exec"), namespace)
    printed = capsys.readouterr().out
    assert printed.startswith("0 4\n"), printed  # the four responses judged, every verdict ok
    assert "items[0]: field `response`: is empty" in printed, "the bad record is refused, named by its index"
    assert (tmp_path / "runs" / "risk_recognition.png").stat().st_size > 0
    assert (tmp_path / "runs" / "calib" / "calibration.json").exists()
    assert "risk_recognition" in printed and "within1" in printed
    assert os.stat(tmp_path / "runs" / "notebook" / "verdicts.jsonl").st_mode & 0o077 == 0
