"""Replica base URLs: the least-loaded choice (plain values), the parsing of specs and judges files, and
`trustmh score` and `trustmh respond` against two loopback replicas, one of them stopped or hanging mid-run."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from judge.calls.replicas import ReplicaLoad, pick_replica
from judge.judges import JudgeConfigError, load_judges_file, parse_judge_spec, split_spec_list
from tests.conftest import make_items, read_jsonl, write_jsonl
from tests.fakeapi import FakeLLMServer, FaultPlan, ParsedRequest, Reply
from tests.fakeapi.judge_script import judged_response, scripted_answerer
from tests.fakeapi.protocol import default_answerer
from tests.fakeapi.server import RecordedRequest


def test_the_fewest_in_flight_for_its_capacity_wins() -> None:
    loads = [
        ReplicaLoad(capacity=4, in_flight=2),
        ReplicaLoad(capacity=1, in_flight=1),
        ReplicaLoad(capacity=2, in_flight=0),
    ]
    assert pick_replica(loads, now=0.0) == 2
    loads[2].in_flight = 2  # 2/4 = 0.5 beats 1/1 and 2/2
    assert pick_replica(loads, now=0.0) == 0


def test_ties_go_to_the_replica_sent_the_fewest_then_the_first() -> None:
    loads = [ReplicaLoad(1, sent=3), ReplicaLoad(1, sent=2)]
    assert pick_replica(loads, now=0.0) == 1
    assert pick_replica([ReplicaLoad(1), ReplicaLoad(1)], now=0.0) == 0


def test_a_replica_down_is_skipped_until_its_cooldown_ends() -> None:
    loads = [ReplicaLoad(1, down_until=10.0), ReplicaLoad(1, in_flight=5)]
    assert pick_replica(loads, now=5.0) == 1
    assert pick_replica(loads, now=10.0) == 0
    both_down = [ReplicaLoad(1, down_until=12.0), ReplicaLoad(1, down_until=11.0)]
    assert pick_replica(both_down, now=5.0) == 1  # the one back first
    assert pick_replica([ReplicaLoad(1), ReplicaLoad(1, in_flight=3)], now=0.0, avoid=frozenset({0})) == 1


def test_an_inline_spec_names_its_replicas() -> None:
    spec = parse_judge_spec("openai:qwen@http://gpu1:8000/v1,http://gpu2:8000/v1")
    assert spec.base_urls == ("http://gpu1:8000/v1", "http://gpu2:8000/v1")
    assert spec.base_url == "http://gpu1:8000/v1" and spec.name == "openai:qwen@gpu1:8000+gpu2:8000"
    assert split_spec_list("openai:q@http://a/v1,http://b/v1,anthropic:c") == [
        "openai:q@http://a/v1,http://b/v1",
        "anthropic:c",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("openai:q@http://a/v1,,http://b/v1", "replica URL 2 of 3 is empty"),
        ("openai:q@http://a/v1,http://a/v1/", "repeats replica URL 1"),
        ("openai:q@http://a/v1,ftp://b", "must start with http"),
        ("anthropic:c@http://a,http://b", "OpenAI-compatible servers"),
    ],
)
def test_bad_replica_lists_are_refused(text: str, problem: str) -> None:
    with pytest.raises(JudgeConfigError, match=problem):
        parse_judge_spec(text)


# ---------------------------------------------------------------- loopback replicas through `trustmh score`


def _answered(server: FakeLLMServer) -> list[RecordedRequest]:
    """The requests a server answered in full (a 200 it could send: not one cut off by its own stop)."""
    return [r for r in server.requests if r.status == 200 and r.error is None]


def _stops_after(answered: int, holder: list[FakeLLMServer]) -> FaultPlan:
    """Faults of a replica that answers `answered` requests, drops the next connection and stops (the
    server, put in `holder` once it exists, stops when the answers it is already sending are out)."""

    def stop_when_idle(server: FakeLLMServer) -> None:
        while any(r.answer is None for r in server.requests):
            time.sleep(0.01)
        server.stop()

    def then_stop(request: ParsedRequest) -> Reply:
        threading.Thread(target=stop_when_idle, args=holder, daemon=True).start()
        return Reply.disconnect()

    return FaultPlan.when(lambda r: r.ordinal > answered, then_stop, times=None)


def _replicas_file(tmp_path: Path, servers: list[FakeLLMServer], extra: str = "") -> Path:
    urls = ", ".join(f'"{s.openai_base_url}"' for s in servers)
    path = tmp_path / "judges.toml"
    path.write_text(
        f'[judges.local]\nspec = "openai:qwen-judge"\nbase_urls = [{urls}]\nreplica_concurrency = 2\n'
        f"backoff_initial_s = 0.01\nbackoff_max_s = 0.05\ntimeout_s = 5.0\n{extra}"
    )
    return path


def _score(run_cli: Any, tmp_path: Path, judges_file: Path, rubric_dir: Path, items: int) -> tuple[Any, Path]:
    path = write_jsonl(tmp_path / "items.jsonl", make_items(items))
    out = tmp_path / "out"
    result = run_cli("score", path, "--judges-file", judges_file, "--rubrics", rubric_dir, "--out", out, "-q")
    return result, out


def _every_verdict_present(out: Path, items: int) -> None:
    rows = read_jsonl(out / "verdicts.jsonl")
    assert {r["item_id"] for r in rows} == {item["id"] for item in make_items(items)}
    assert all(r["status"] in {"ok", "not_applicable"} for r in rows), [r for r in rows if r["error"]]


def test_two_replicas_share_the_load_and_the_summary_counts_each(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    with FakeLLMServer(answerer=scripted_answerer) as a, FakeLLMServer(answerer=scripted_answerer) as b:
        result, out = _score(run_cli, tmp_path, _replicas_file(tmp_path, [a, b]), rubric_dir, items=24)
        sent = {a.openai_base_url: len(a.requests), b.openai_base_url: len(b.requests)}
    assert result.code == 0, result.stderr
    _every_verdict_present(out, 24)
    assert all(count > 0 for count in sent.values()), sent
    assert sum(sent.values()) == 24  # one call per item, each answered once
    summary = json.loads((out / "summary.json").read_text())
    assert {r["url"]: r["requests"] for r in summary["replicas"]["local"]} == sent
    assert all(r["failures"] == 0 for r in summary["replicas"]["local"])


def test_a_replica_stopped_mid_run_loses_nothing_and_pays_for_nothing_twice(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    """Replica b answers 5 requests, drops the next connection and stops: its calls go to a, none twice."""
    answered_before_stop = 5
    holder: list[FakeLLMServer] = []
    dying = _stops_after(answered_before_stop, holder)
    with FakeLLMServer(answerer=scripted_answerer) as a, FakeLLMServer(answerer=scripted_answerer, faults=dying) as b:
        holder.append(b)
        # One attempt per call: a call whose replica died lives only by the free failover to the other one.
        judges_file = _replicas_file(tmp_path, [a, b], extra="replica_cooldown_s = 0.2\nmax_attempts = 1\n")
        result, out = _score(run_cli, tmp_path, judges_file, rubric_dir, items=30)
        answered = _answered(a) + _answered(b)
        b_seen = len(b.requests)
    assert result.code == 0, result.stderr
    _every_verdict_present(out, 30)
    assert len(_answered(b)) == answered_before_stop and b_seen > answered_before_stop
    per_item = Counter(judged_response(r.parsed) for r in answered if r.parsed is not None)
    assert len(answered) == 30 and set(per_item.values()) == {1}, "each item's call answered exactly once"
    summary = json.loads((out / "summary.json").read_text())
    counts = {r["url"]: r for r in summary["replicas"]["local"]}
    assert counts[a.openai_base_url]["requests"] == len(a.requests) and counts[a.openai_base_url]["failures"] == 0
    assert counts[b.openai_base_url]["requests"] >= b_seen  # and those refused after its stop, never recorded
    assert counts[b.openai_base_url]["failures"] == counts[b.openai_base_url]["requests"] - answered_before_stop
    assert summary["calls"]["failed"] == 0


def test_a_replica_that_does_not_answer_in_time_is_left_and_its_calls_answered_by_the_other(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    """Replica b holds every request past timeout_s: each call fails over to a at once (free, with one
    attempt per call), b is skipped for its cooldown, and its timed-out requests count as its failures."""
    hanging = FaultPlan.when(lambda r: True, lambda r: Reply.slow(3.0), times=None)
    with FakeLLMServer(answerer=scripted_answerer) as a, FakeLLMServer(answerer=scripted_answerer, faults=hanging) as b:
        judges_file = _replicas_file(tmp_path, [a, b], extra="replica_cooldown_s = 30\nmax_attempts = 1\n")
        judges_file.write_text(judges_file.read_text().replace("timeout_s = 5.0", "timeout_s = 0.5"))
        result, out = _score(run_cli, tmp_path, judges_file, rubric_dir, items=8)
        a_answered = len(_answered(a))
        b_seen = len(b.requests)
    assert result.code == 0, result.stderr
    _every_verdict_present(out, 8)
    assert a_answered == 8 and 1 <= b_seen <= 2  # b: the first request(s) before its cooldown began
    summary = json.loads((out / "summary.json").read_text())
    counts = {r["url"]: r for r in summary["replicas"]["local"]}
    assert counts[b.openai_base_url]["failures"] == counts[b.openai_base_url]["requests"] == b_seen
    assert counts[a.openai_base_url] == {"url": a.openai_base_url, "requests": 8, "failures": 0}


def test_a_target_replica_stopped_mid_respond_loses_no_prompt(tmp_path: Path, judge_env: Path, run_cli: Any) -> None:
    """respond with a target on two replicas, b stopping after 3 answers: every prompt answered once."""
    answered_before_stop = 3
    holder: list[FakeLLMServer] = []
    dying = _stops_after(answered_before_stop, holder)
    rows = [{"id": f"p-{i:02d}", "pillar": "safety", "prompt": f"I feel low; what now? (case {i})"} for i in range(16)]
    prompts = write_jsonl(tmp_path / "prompts.jsonl", rows)
    out = tmp_path / "out"
    with FakeLLMServer(answerer=default_answerer) as a, FakeLLMServer(answerer=default_answerer, faults=dying) as b:
        holder.append(b)
        target = f"openai:local-model@{a.openai_base_url},{b.openai_base_url}"
        result = run_cli("respond", prompts, "--targets", target, "--out", out, "-q")
        answered = _answered(a) + _answered(b)
    assert result.code == 0, result.stderr
    assert len(_answered(b)) == answered_before_stop
    per_prompt = Counter(r.parsed.messages[-1].text for r in answered if r.parsed is not None)
    assert len(per_prompt) == 16 and set(per_prompt.values()) == {1}, "each prompt answered exactly once"
    calls = read_jsonl(out / "calls.jsonl")
    assert sorted(c["prompt_id"] for c in calls if c["status"] == "ok") == [r["id"] for r in rows]


# ---------------------------------------------------------------- judges files


def test_a_judges_file_names_replicas_and_their_concurrency(tmp_path: Path) -> None:
    path = tmp_path / "judges.toml"
    path.write_text(
        '[judges.even]\nspec = "openai:qwen"\nbase_urls = ["http://gpu1:8000/v1", "http://gpu2:8000/v1"]\n'
        "replica_concurrency = 8\nreplica_cooldown_s = 5\n"
        '[judges.uneven]\nspec = "openai:qwen@http://gpu1:8000/v1,http://gpu2:8000/v1,http://gpu3:8000/v1"\n'
        "replica_concurrency = [8, 8, 4]\n"
        '[judges.shared]\nspec = "openai:qwen"\nbase_urls = ["http://gpu1:8000/v1", "http://gpu2:8000/v1"]\n'
        "concurrency = 6\n"
        '[judges.one]\nspec = "openai:qwen"\nbase_urls = ["http://gpu1:8000/v1"]\n'
    )
    judges = load_judges_file(path).judges
    even, uneven, shared, one = judges["even"], judges["uneven"], judges["shared"], judges["one"]
    assert even.base_urls == ("http://gpu1:8000/v1", "http://gpu2:8000/v1") and even.base_url == even.base_urls[0]
    assert (even.replica_concurrency, even.concurrency, even.replica_cooldown_s) == ((8, 8), 16, 5)
    assert len(uneven.base_urls) == 3 and (uneven.replica_concurrency, uneven.concurrency) == ((8, 8, 4), 20)
    assert (shared.replica_concurrency, shared.concurrency) == ((), 6)
    assert (one.base_urls, one.base_url) == ((), "http://gpu1:8000/v1")  # one URL is a plain base URL


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('spec = "openai:q"\nbase_urls = "http://a/v1"', "base_urls must be a list"),
        ('spec = "openai:q"\nbase_urls = []', "base_urls must be a list of base URLs"),
        ('spec = "openai:q"\nbase_urls = ["http://a/v1", 3]', "base_urls must be a list of base URLs"),
        ('spec = "openai:q@http://a/v1"\nbase_urls = ["http://b/v1", "http://c/v1"]', "give them once"),
        ('spec = "openai:q"\nbase_urls = ["http://a/v1", "http://a/v1/"]', "base_urls: .*repeats replica URL 1"),
        ('spec = "openai:q"\nbase_urls = ["http://a/v1", "gpu2:8000"]', "must start with http"),
        ('spec = "anthropic:c"\nbase_urls = ["http://a", "http://b"]', "OpenAI-compatible servers"),
        ('spec = "openai:q@http://a/v1"\nreplica_concurrency = 4', "replica_concurrency needs two or more"),
        ('spec = "openai:q"\nreplica_cooldown_s = 4', "replica_cooldown_s needs two or more"),
        ('spec = "openai:q@http://a/v1,http://b/v1"\nreplica_concurrency = [4]', "a list of 2 of them"),
        ('spec = "openai:q@http://a/v1,http://b/v1"\nreplica_concurrency = 0', "at least 1"),
        ('spec = "openai:q@http://a/v1,http://b/v1"\nreplica_concurrency = [4, true]', "at least 1"),
        ('spec = "openai:q@http://a/v1,http://b/v1"\nreplica_concurrency = 4\nconcurrency = 8', "not both"),
        ('spec = "openai:q@http://a/v1,http://b/v1"\nreplica_cooldown_s = 0', "replica_cooldown_s must be greater"),
    ],
)
def test_bad_replica_entries_name_the_file_table_and_field_and_exit_2(
    tmp_path: Path, table: str, problem: str, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    path = tmp_path / "judges.toml"
    path.write_text(f"[judges.local]\n{table}\n")
    with pytest.raises(JudgeConfigError, match=problem) as exc:
        load_judges_file(path)
    assert str(exc.value).startswith(f"{path}: [judges.local]: ")
    items = write_jsonl(tmp_path / "items.jsonl", make_items(1))
    result = run_cli("score", items, "--judges-file", path, "--rubrics", rubric_dir, "--out", tmp_path / "out", "-q")
    assert result.code == 2 and "[judges.local]" in result.stderr and str(path.name) in result.stderr, result.stderr
    assert not (tmp_path / "out" / "verdicts.jsonl").exists()


def test_batch_refuses_a_judge_with_replicas_before_sending_anything(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    with FakeLLMServer(answerer=scripted_answerer) as a, FakeLLMServer(answerer=scripted_answerer) as b:
        items = write_jsonl(tmp_path / "items.jsonl", make_items(3))
        out = tmp_path / "out"
        judges_file = _replicas_file(tmp_path, [a, b])
        result = run_cli("score", items, "--judges-file", judges_file, "--rubrics", rubric_dir, "--out", out, "--batch")
        sent = a.requests + b.requests
    assert result.code == 2, result.stderr
    assert "local use another provider or replica base URLs" in result.stderr and "without --batch" in result.stderr
    assert sent == []


def test_a_target_with_replicas_spreads_its_respond_run(tmp_path: Path, judge_env: Path, run_cli: Any) -> None:
    rows = [{"id": f"p-{i:02d}", "pillar": "safety", "prompt": f"I feel low; what now? (case {i})"} for i in range(12)]
    prompts = write_jsonl(tmp_path / "prompts.jsonl", rows)
    out = tmp_path / "out"
    with FakeLLMServer(answerer=default_answerer) as a, FakeLLMServer(answerer=default_answerer) as b:
        target = f"openai:local-model@{a.openai_base_url},{b.openai_base_url}"
        result = run_cli("respond", prompts, "--targets", target, "--out", out, "-q")
        sent = {a.openai_base_url: len(a.requests), b.openai_base_url: len(b.requests)}
    assert result.code == 0, result.stderr
    assert all(count > 0 for count in sent.values()) and sum(sent.values()) == 12, sent
    assert {r["prompt_id"] for r in read_jsonl(out / "calls.jsonl") if r["status"] == "ok"} == {r["id"] for r in rows}
    summary = json.loads((out / "summary.json").read_text())
    (counts,) = summary["replicas"].values()
    assert {r["url"]: r["requests"] for r in counts} == sent
