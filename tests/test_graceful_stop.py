"""SIGINT and SIGTERM stop a run gracefully: no call starts after the signal, the calls in flight finish and
are journalled, the out-directory lock is released, and the same command resumes paying for nothing twice
(#28 item 8: 18 and 16 answered requests were sent again, and SIGTERM left a stale lock)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.conftest import make_items, read_jsonl, trustmh_subprocess, write_jsonl
from tests.fakeapi import FakeLLMServer
from tests.fakeapi.judge_script import scripted_answerer

N_ITEMS = 60


@pytest.mark.parametrize(("stop", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_keeps_the_calls_in_flight_and_the_same_command_resumes(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, stop: signal.Signals, code: int
) -> None:
    items = write_jsonl(tmp_path / "items.jsonl", make_items(N_ITEMS))
    out = tmp_path / "out"
    with FakeLLMServer(0.3, answerer=scripted_answerer) as server:
        args = ["score", str(items), "--judges", f"openai:gpt-4.1-mini@{server.openai_base_url}",
                "--rubrics", str(rubric_dir), "--out", str(out), "--concurrency", "8", "-q"]  # fmt: skip
        child = trustmh_subprocess(args, {})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(server.requests) < 12:
            time.sleep(0.01)
        child.send_signal(stop)
        _, stderr = child.communicate(timeout=60)
        assert child.returncode == code, stderr
        assert stderr.strip().splitlines()[-1] == "interrupted; run the same command again to resume", stderr
        assert (out / ".lock").read_text() == "", "the lock is released"
        sent = len(server.requests)
        journalled = {(r["item_id"], r["pillar"]) for r in read_jsonl(out / "verdicts.jsonl")}
        assert len(journalled) == sent < N_ITEMS, "every request sent was answered and journalled"
        again = trustmh_subprocess(args, {})
        again.communicate(timeout=120)
        assert again.returncode == 0
        assert len(server.requests) - sent == N_ITEMS - sent, "no answered call is asked again"
