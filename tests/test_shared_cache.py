"""Two runs sharing one cache (different out directories, at the same time) never pay twice for a call:
each call is claimed in the cache while one run asks it, and the other waits for that answer."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from judge.calls.cache import AnswerCache, claim_holder
from tests.conftest import (
    ANTHROPIC_KEY,
    OPENAI_KEY,
    judges_arg,
    make_items,
    read_jsonl,
    trustmh_subprocess,
    write_jsonl,
)
from tests.fakeapi import FakeLLMServer
from tests.fakeapi.judge_script import scripted_answerer

pytestmark = pytest.mark.timeout(300)


def test_a_claim_is_exclusive_released_by_its_holder_and_taken_over_from_a_dead_process(tmp_path: Path) -> None:
    with AnswerCache(tmp_path / "cache") as cache:
        assert cache.claim("k", "host-a|1", 60) and not cache.claim("k", "host-b|2", 60)
        assert cache.claim("k", "host-a|1", 60)  # granted again to its holder (its batch, then its engine)
        cache.release("k", "host-b|2")  # not the holder: nothing happens
        assert not cache.claim("k", "host-b|2", 60)
        cache.release("k", "host-a|1")
        assert cache.claim("k", "host-b|2", 60)
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        gone = f"{claim_holder().split('|')[0]}|{dead.pid}"
        assert cache.claim("j", gone, 60) and cache.claim("j", claim_holder(), 60)  # its holder died
        assert list(cache.keys()) == []  # claims are not entries


def test_two_concurrent_runs_sharing_a_cache_ask_each_call_once(
    tmp_path: Path, judge_env: Path, rubric_dir: Path
) -> None:
    items = write_jsonl(tmp_path / "items.jsonl", make_items(30))
    env = {"OPENAI_API_KEY": OPENAI_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY, "TRUSTMH_CACHE_DIR": str(judge_env)}
    with FakeLLMServer(latency_s=0.05, answerer=scripted_answerer) as server:
        base = ["score", str(items), "--judges", judges_arg(server), "--rubrics", str(rubric_dir), "-q"]
        runs = [trustmh_subprocess([*base, "--out", str(tmp_path / name), "--concurrency", "4"], env) for name in "ab"]
        for run in runs:
            assert run.wait(timeout=240) == 0, run.stderr.read() if run.stderr else ""
        asked = Counter(json.dumps([r.provider, r.body["messages"]], sort_keys=True) for r in server.requests)
    assert len(asked) == 60 and set(asked.values()) == {1}  # 30 items × 2 judges, each asked once in all
    summaries = [json.loads((tmp_path / name / "summary.json").read_text()) for name in "ab"]
    assert sum(s["calls"]["requested"] for s in summaries) == 60
    assert all(s["calls"]["requested"] + s["calls"]["cache_hits"] == 60 for s in summaries)
    rows = [read_jsonl(tmp_path / name / "verdicts.jsonl") for name in "ab"]
    drop = {"cached", "latency_s"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in rows[0]] == [
        {k: v for k, v in r.items() if k not in drop} for r in rows[1]
    ]


def test_two_concurrent_batch_runs_sharing_a_cache_submit_each_call_once(
    tmp_path: Path, judge_env: Path, rubric_dir: Path
) -> None:
    items = write_jsonl(tmp_path / "items.jsonl", make_items(6))
    env = {"OPENAI_API_KEY": OPENAI_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY, "TRUSTMH_CACHE_DIR": str(judge_env)}
    with FakeLLMServer(answerer=scripted_answerer) as server:
        server.batches.hold = True  # the first run's batches stay open while the second one starts
        base = ["score", str(items), "--judges", judges_arg(server), "--rubrics", str(rubric_dir), "-q"]
        base += ["--batch", "--batch-poll", "0.05"]
        first = trustmh_subprocess([*base, "--out", str(tmp_path / "a")], env)
        journal = tmp_path / "a" / "batches.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not journal.exists() or journal.read_text().count('"submitted"') < 2):
            time.sleep(0.02)
        second = trustmh_subprocess([*base, "--out", str(tmp_path / "b")], env)
        while time.monotonic() < deadline and not (tmp_path / "b" / "run.json").exists():
            time.sleep(0.02)  # the second run has planned and is about to find the first one's claims
        server.batches.hold = False
        for run in (first, second):
            assert run.wait(timeout=240) == 0, run.stderr.read() if run.stderr else ""
        submitted = Counter(entry.custom_id for batch in server.batches.created for entry in batch.entries)
        live = [r for r in server.requests if r.path in ("/v1/chat/completions", "/v1/messages")]
    assert len(submitted) == 12 and set(submitted.values()) == {1} and not live
    assert not (tmp_path / "b" / "batches.jsonl").exists()  # everything it needed was in the first run's batches
    summaries = [json.loads((tmp_path / name / "summary.json").read_text()) for name in "ab"]
    assert summaries[0]["calls"]["batched"] == 12 and summaries[1]["calls"]["cache_hits"] == 12
