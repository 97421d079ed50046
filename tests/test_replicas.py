"""Replica base URLs: the least-loaded choice (plain values) and the parsing of specs."""

from __future__ import annotations

import pytest

from judge.calls.replicas import ReplicaLoad, pick_replica
from judge.judges import JudgeConfigError, parse_judge_spec, split_spec_list


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
