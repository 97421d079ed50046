"""`trustmh score --engine ray` on a local Ray cluster against the loopback server: the same files as the
local engine, the rate limits shared by one actor, and a worker or the driver killed mid-run then resumed
with no answered call paid twice.

The tests marked `ray` start a two-CPU Ray head (about ten seconds on two cores), so `make test` deselects
them; `make test-ray` runs them with the `ray` extra installed. Without Ray they skip, saying so. The
test of the message shown without Ray, and the unit test of the budget switch, run in `make test`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from judge import api
from judge.calls import engine
from judge.calls.engine import RateLimiter
from judge.rundir import LOCK_NAME
from tests.conftest import ANTHROPIC_KEY, OPENAI_KEY, REPO, judges_arg, make_items, read_jsonl, write_jsonl
from tests.fakeapi import FakeLLMServer
from tests.fakeapi.judge_script import judged_response, scripted_answerer

HAS_RAY = importlib.util.find_spec("ray") is not None
VOLATILE = {"cached", "latency_s"}
KEYS = {"OPENAI_API_KEY": OPENAI_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY}


def stable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]


def settings() -> api.RunSettings:
    return api.RunSettings(quiet=True, concurrency=1)


def test_without_ray_the_engine_says_how_to_install_it(
    tmp_path: Path, judge_env: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    items = write_jsonl(tmp_path / "items.jsonl", make_items(2))
    result = run_cli("score", items, "--judges", "mock:judge", "--engine", "ray", "--out", tmp_path / "out")
    assert result.code == 2
    assert "pip install 'trustmh-judge[ray]'" in result.stderr
    assert not (tmp_path / "out").exists(), "nothing is written before the engine is known to work"


def test_shared_budgets_replace_each_process_limiter_only_for_limited_workers() -> None:
    asked: list[tuple[str, float | None, float | None]] = []

    class Recorded(RateLimiter):
        pass

    def source(name: str, rpm: float | None, tpm: float | None) -> RateLimiter:
        asked.append((name, rpm, tpm))
        return Recorded(rpm, tpm)

    engine.share_budgets(source)
    try:
        assert isinstance(engine.rate_limiter("judge-a", 60, None), Recorded)
        assert type(engine.rate_limiter("judge-b", None, None)) is RateLimiter  # nothing to share
    finally:
        engine.share_budgets(None)
    assert type(engine.rate_limiter("judge-a", 60, None)) is RateLimiter
    assert asked == [("judge-a", 60, None)]


# ---------------------------------------------------------------- on a local Ray cluster


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A two-CPU Ray head for the module (its workers import this checkout), joined by this process too."""
    if not HAS_RAY:
        pytest.skip("Ray is not installed: pip install 'trustmh-judge[ray]' (make test-ray)")
    import ray

    # a private test cluster on the loopback: no token to share between the head and the drivers
    saved_auth = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths have a length limit
    head = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("ray")),
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            f"--temp-dir={temp}",
            "--disable-usage-stats",
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                ray.init(address=address, log_to_driver=False)
                break
            except Exception:
                if time.monotonic() > deadline or head.poll() is not None:
                    raise
                time.sleep(1)
        yield address
    finally:
        ray.shutdown()
        if saved_auth is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved_auth
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()


def _score(items: Path, server: FakeLLMServer, out: Path, **ray: Any) -> api.ScoreResult:
    return api.score([items], judges=judges_arg(server).split(","), out=out, settings=settings(), **ray)


@pytest.mark.ray
@pytest.mark.usefixtures("judge_env")
def test_ray_writes_the_files_of_a_local_run_from_jsonl_and_parquet(tmp_path: Path, ray_address: str) -> None:
    pytest.importorskip("pyarrow", reason="Ray Data brings pyarrow")
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = make_items(9, ["crisis", "safety"])
    items = write_jsonl(tmp_path / "items.jsonl", records)
    parquet = tmp_path / "items.parquet"
    pq.write_table(pa.Table.from_pylist(records), parquet)
    with FakeLLMServer(answerer=scripted_answerer, cache_min_tokens=10**9) as server:
        local = _score(items, server, tmp_path / "local")
        local_requests = len(server.requests)
        server.reset()
        on_ray = _score(items, server, tmp_path / "ray", engine="ray", ray_address=ray_address, ray_shard_items=4)
        assert len(server.requests) == local_requests
        server.reset()
        from_parquet = api.score(
            [parquet],
            judges=judges_arg(server).split(","),
            out=tmp_path / "parquet",
            settings=settings(),
            engine="ray",
            ray_address=ray_address,
            ray_shard_items=5,
        )
    assert local.exit_code == on_ray.exit_code == from_parquet.exit_code == 0
    assert len(list((tmp_path / "ray" / "shards").glob("0000[0-9]"))) == 3  # 9 items, 4 a shard
    local_rows = stable(read_jsonl(tmp_path / "local" / "verdicts.jsonl"))
    assert stable(read_jsonl(tmp_path / "ray" / "verdicts.jsonl")) == local_rows  # in the same order
    assert stable(read_jsonl(tmp_path / "parquet" / "verdicts.jsonl")) == local_rows
    for name in ("items.jsonl", "panel.jsonl", "review.jsonl"):
        assert (tmp_path / "ray" / name).read_text() == (tmp_path / "local" / name).read_text(), name
    summaries = [json.loads((tmp_path / run / "summary.json").read_text()) for run in ("local", "ray", "parquet")]
    for summary in summaries:
        summary.pop("wall_time_s")
    assert summaries[1] == summaries[0] and summaries[2] == summaries[0]
    assert summaries[0]["calls"]["requested"] == 9 * 2 * 2


@pytest.mark.ray
@pytest.mark.usefixtures("judge_env")
def test_a_panel_with_a_tiebreaker_merges_into_the_local_runs_files(tmp_path: Path, ray_address: str) -> None:
    from tests.test_panel_cli import DISSENT_ON, arranged_answerer, judges_spec

    items = write_jsonl(tmp_path / "items.jsonl", make_items(10))
    with FakeLLMServer(answerer=arranged_answerer, cache_min_tokens=10**9) as server:  # no prompt-cache warm-up
        panel = {"judges": judges_spec(server).split(","), "tiebreak": f"openai:judge-t@{server.openai_base_url}"}
        local = api.score([items], out=tmp_path / "local", settings=settings(), **panel)
        on_ray = api.score([items], out=tmp_path / "ray", settings=settings(), engine="ray", ray_address=ray_address,
                           ray_shard_items=4, **panel)  # fmt: skip
    assert local.exit_code == on_ray.exit_code == 0
    rows = stable(read_jsonl(tmp_path / "ray" / "verdicts.jsonl"))
    assert rows == stable(read_jsonl(tmp_path / "local" / "verdicts.jsonl"))
    assert {row["item_id"] for row in rows if row["role"] == "tiebreak"} == DISSENT_ON  # asked in 2 of the 3 shards
    for name in ("panel.jsonl", "review.jsonl"):
        assert (tmp_path / "ray" / name).read_text() == (tmp_path / "local" / name).read_text(), name
    summaries = [json.loads((tmp_path / run / "summary.json").read_text()) for run in ("local", "ray")]
    for summary in summaries:
        summary.pop("wall_time_s")
    assert summaries[1] == summaries[0]


@pytest.mark.ray
def test_one_actor_hands_out_each_workers_budget_to_the_whole_cluster(ray_address: str) -> None:
    import ray

    from judge.distributed import BudgetKeeper, ClusterBudget

    keeper = ray.remote(BudgetKeeper).remote()

    @ray.remote(num_cpus=1)
    def take(keeper: Any, wanted: int) -> int:
        budget = ClusterBudget(keeper, "judge-a", 4, None)  # 4 requests a minute, for the cluster

        async def taken() -> int:
            count = 0
            with contextlib.suppress(TimeoutError):
                for _ in range(wanted):
                    await asyncio.wait_for(budget.acquire(1), timeout=3)
                    count += 1
            return count

        return asyncio.run(taken())

    taken = ray.get([take.remote(keeper, 3), take.remote(keeper, 3)])
    assert sum(taken) == 4, taken  # each process alone would have taken 3


def _answered_keys(shard_journals: list[Path]) -> Counter[str]:
    """Rows per request key in the shards' journals; a call counts as answered when all its rows are there."""
    rows: Counter[str] = Counter()
    for journal in shard_journals:
        for line in journal.read_text().splitlines() if journal.exists() else []:
            with contextlib.suppress(ValueError):  # a line cut by the kill
                rows[json.loads(line)["request_key"]] += 1
    return rows


def _answered_before(out: Path, snapshot: Counter[str], records: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(provider, response) of the calls all of whose rows were journalled when the snapshot was taken."""
    final_rows = read_jsonl(out / "verdicts.jsonl")
    final_counts = Counter(r["request_key"] for r in final_rows)
    keys = {key for key, count in snapshot.items() if count == final_counts[key]}
    responses = {item["id"]: item["response"] for item in records}
    return {(r["provider"], responses[r["item_id"]]) for r in final_rows if r["request_key"] in keys}


def _held_lock_pid(shards: Path) -> int | None:
    for lock in sorted(shards.glob(f"0000[0-9]/{LOCK_NAME}")):
        holder = lock.read_text().split()
        if holder[:1] == ["pid"]:
            return int(holder[1])
    return None


def _reference(tmp_path: Path, items: Path, server: FakeLLMServer) -> list[dict[str, Any]]:
    _score(items, server, tmp_path / "clean")
    server.reset()
    return stable(read_jsonl(tmp_path / "clean" / "verdicts.jsonl"))


@pytest.mark.ray
@pytest.mark.usefixtures("judge_env")
def test_a_killed_worker_loses_no_answer_and_its_shard_resumes(tmp_path: Path, ray_address: str) -> None:
    records = make_items(24)
    items = write_jsonl(tmp_path / "items.jsonl", records)
    out = tmp_path / "ray"
    with FakeLLMServer(latency_s=0.15, answerer=scripted_answerer, cache_min_tokens=10**9) as server:
        clean = _reference(tmp_path, items, server)
        killed: dict[str, Any] = {}

        def kill_a_worker() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                pid = _held_lock_pid(out / "shards")
                if pid is not None and sum(r.status == 200 for r in server.requests) >= 8:
                    os.kill(pid, signal.SIGKILL)
                    time.sleep(0.5)  # the dead worker writes nothing more
                    killed["pid"] = pid
                    killed["journalled"] = _answered_keys(sorted((out / "shards").glob("0000[0-9]/verdicts.jsonl")))
                    return
                time.sleep(0.02)

        killer = threading.Thread(target=kill_a_worker)
        killer.start()
        result = _score(items, server, out, engine="ray", ray_address=ray_address, ray_shard_items=6)
        killer.join()
        asked = Counter((r.provider, judged_response(r.parsed)) for r in server.requests)
    assert killed, "a worker was killed mid-run"
    assert result.exit_code == 0
    assert stable(read_jsonl(out / "verdicts.jsonl")) == clean
    journalled = _answered_before(out, killed["journalled"], records)
    assert journalled, "some calls were answered before the kill"
    assert all(asked[call] == 1 for call in journalled), "a call answered before the kill was asked again"
    assert sum(asked.values()) - len(asked) <= 2  # at most the calls in flight in the killed shard (1 per judge)
    assert len(asked) == 48


@pytest.mark.ray
@pytest.mark.usefixtures("judge_env")
def test_a_killed_driver_then_a_rerun_pays_for_no_answered_call_twice(tmp_path: Path, ray_address: str) -> None:
    records = make_items(24)
    items = write_jsonl(tmp_path / "items.jsonl", records)
    out = tmp_path / "ray"
    with FakeLLMServer(latency_s=0.15, answerer=scripted_answerer, cache_min_tokens=10**9) as server:
        clean = _reference(tmp_path, items, server)
        command = [
            sys.executable,
            "-m",
            "judge.cli",
            "score",
            str(items),
            "--judges",
            judges_arg(server),
            "--no-cache",
            "--concurrency",
            "1",
            "-q",
            "--out",
            str(out),
            "--engine",
            "ray",
            "--ray-address",
            ray_address,
            "--ray-shard-items",
            "6",
        ]
        driver = subprocess.Popen(
            command, cwd=REPO, env={**os.environ, **KEYS}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 180
        while sum(r.status == 200 for r in server.requests) < 12 and time.monotonic() < deadline:
            assert driver.poll() is None, driver.stderr.read() if driver.stderr else ""
            time.sleep(0.02)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        # Ray ends the dead driver's tasks; wait until no shard's lock is held before the rerun
        deadline = time.monotonic() + 60
        while _held_lock_pid(out / "shards") is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not (out / "summary.json").exists(), "the driver was killed before it finished"
        journalled = _answered_keys(sorted((out / "shards").glob("0000[0-9]/verdicts.jsonl")))
        before = Counter((r.provider, judged_response(r.parsed)) for r in server.requests if r.status == 200)
        server.reset()
        result = _score(items, server, out, engine="ray", ray_address=ray_address, ray_shard_items=6)
        again = Counter((r.provider, judged_response(r.parsed)) for r in server.requests)
    assert result.exit_code == 0
    assert stable(read_jsonl(out / "verdicts.jsonl")) == clean
    answered = _answered_before(out, journalled, records)
    assert answered, "some calls were answered before the kill"
    assert not answered & set(again), "a call answered before the kill was asked again"
    assert len(set(before) | set(again)) == 48
    summary = json.loads((out / "summary.json").read_text())
    assert summary["calls"]["resumed"] == len(answered)
    assert summary["calls"]["requested"] == 48
