"""Conversation suites: persona cards validated and hashed; the simulated user and the chatbot talk
through the one engine against the loopback server; a run stopped part-way resumes to the same
transcripts without sending an answered call again."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from judge.errors import UsageError
from judge.respond.targets import TargetSpec
from judge.settings import RunSettings
from judge.suites.conversation import ConversationOptions, execute_conversations
from judge.suites.personas import (
    PersonaError,
    is_stop,
    our_personas,
    parse_cards,
    user_system_prompt,
    vera_personas,
)
from tests.conftest import read_jsonl
from tests.fakeapi import FakeLLMServer, Reply
from tests.fakeapi.conversation_script import conversation_answerer

pytestmark = pytest.mark.timeout(120)

REQUIRED_CATEGORIES = {
    "psychosis", "eating_disorder", "abuse", "substance_withdrawal", "medication_discontinuation", "ai_boundaries"
}  # fmt: skip


def test_our_cards_cover_every_risk_level_a_minor_and_the_required_situations() -> None:
    cards = our_personas()
    assert {c.risk_level for c in cards} == {"none", "low", "high", "imminent"}
    assert any(c.minor for c in cards)
    assert {c.risk_category for c in cards} >= REQUIRED_CATEGORIES
    assert len({c.content_hash for c in cards}) == len(cards)


def test_vera_personas_are_read_from_the_mirror_with_their_risk_levels(monkeypatch: pytest.MonkeyPatch) -> None:
    cards = vera_personas()
    assert len(cards) == 10 and all(c.source == "vera-mh" for c in cards)
    assert {c.id: c.risk_level for c in cards}["vera-omar"] == "high"
    prompt = user_system_prompt(cards[0], "vera-mh")
    assert "Omar (he/him) is a 44-year-old" in prompt and "{" not in prompt.split("Below is the context")[1]


def test_a_card_change_changes_its_hash_and_its_prompt() -> None:
    card = our_personas()[0]
    other = card.model_copy(update={"pushback": card.pushback + " She also swears."})
    assert other.content_hash != card.content_hash
    assert user_system_prompt(other) != user_system_prompt(card)


def test_a_bad_card_names_the_persona_and_the_field() -> None:
    with pytest.raises(PersonaError) as err:
        parse_cards({"x": {"name": "A", "age": 30, "risk_level": "severe"}}, "p.toml")
    text = str(err.value)
    assert "p.toml: persona 'x': field `risk_level`" in text and "field `discloses`" in text


def test_the_stop_phrase_ends_only_from_turn_three() -> None:
    assert not is_stop("Thank you, I'm done.", 2)
    assert is_stop("ok bye. Thank you, I\u2019m done.", 3)
    assert not is_stop("thank you", 5)


def specs(server: FakeLLMServer, stop: int | None) -> tuple[TargetSpec, TargetSpec]:
    bot = TargetSpec(name="bot", provider="openai", model="gpt-4o-mini", base_url=server.openai_base_url,
                     max_attempts=1)  # fmt: skip
    user_model = "sim-user" + (f"-stop{stop}" if stop else "")
    user = TargetSpec(name="sim", provider="anthropic", model=user_model, base_url=server.anthropic_base_url,
                      max_attempts=1)  # fmt: skip
    return bot, user


def run(server: FakeLLMServer, out: Path, turns: int = 5, stop: int | None = None, **extra: Any) -> dict[str, Any]:
    bot, user = specs(server, stop)
    options = ConversationOptions(
        personas=our_personas()[:4], targets=[bot], user_model=user, out=out, turns=turns,
        settings=RunSettings(cache_dir=None, concurrency=2, quiet=True), **extra,
    )  # fmt: skip
    return execute_conversations(options)[1]


def wire(server: FakeLLMServer) -> set[str]:
    return {json.dumps(r.body, sort_keys=True) for r in server.requests if r.status == 200}


def test_conversations_alternate_speakers_and_the_chatbot_sees_every_earlier_turn(
    tmp_path: Path, judge_env: Path
) -> None:
    with FakeLLMServer(answerer=conversation_answerer) as server:
        summary = run(server, tmp_path / "out", turns=4)
        bodies = [r.body for r in server.requests if r.provider == "openai"]
    lines = read_jsonl(tmp_path / "out" / "conversations.jsonl")
    assert [c["persona"] for c in lines] == [c.id for c in our_personas()[:4]]
    for line in lines:
        assert [t["role"] for t in line["turns"]] == ["user", "assistant"] * 4
        assert [t["turn"] for t in line["turns"]] == [1, 1, 2, 2, 3, 3, 4, 4]
        assert line["stop_reason"] == "max_turns"
    assert summary["calls"]["planned"] == 4 * 8 - sum(bool(c.opening) for c in our_personas()[:4])
    longest = max(bodies, key=lambda b: len(b["messages"]))
    assert [m["role"] for m in longest["messages"]] == ["user", "assistant"] * 3 + ["user"]


def test_the_stop_phrase_ends_a_conversation_early(tmp_path: Path, judge_env: Path) -> None:
    with FakeLLMServer(answerer=conversation_answerer) as server:
        summary = run(server, tmp_path / "out", turns=6, stop=3)
    lines = read_jsonl(tmp_path / "out" / "conversations.jsonl")
    assert summary["stop_reasons"]["stop_phrase"] == 4
    for line in lines:
        assert line["stop_reason"] == "stop_phrase" and line["turns"][-1]["role"] == "user"
        assert line["turns"][-1]["turn"] == 3 and "I'm done" in line["turns"][-1]["text"]


def test_a_run_stopped_part_way_resumes_to_the_same_transcripts_without_resending(
    tmp_path: Path, judge_env: Path
) -> None:
    with FakeLLMServer(answerer=conversation_answerer) as server:
        run(server, tmp_path / "clean")
        clean_calls = len(server.requests)
        server.reset()

        answered = 0

        def fail_after_some(req: Any) -> Reply:
            nonlocal answered
            answered += 1
            return conversation_answerer(req) if answered <= 11 else Reply.error(400, "invalid_request_error", "stop")

        server.answerer = fail_after_some
        first = run(server, tmp_path / "out")
        assert first["stop_reasons"]["failed"] > 0
        before = wire(server)
        server.reset()
        server.answerer = conversation_answerer
        second = run(server, tmp_path / "out")
        again = wire(server) & before
    clean = read_jsonl(tmp_path / "clean" / "conversations.jsonl")
    assert read_jsonl(tmp_path / "out" / "conversations.jsonl") == clean
    assert not again, "an answered call was sent again"
    assert second["stop_reasons"]["failed"] == 0 and second["calls"]["resumed"] == 11
    assert 11 + len(server.requests) == clean_calls  # every call not answered before was asked once


def test_turns_beyond_thirty_are_refused(tmp_path: Path) -> None:
    bot = TargetSpec(name="bot", provider="openai", model="m")
    options = ConversationOptions(personas=our_personas()[:1], targets=[bot], user_model=replace(bot, name="u"),
                                  out=tmp_path / "o", turns=31)  # fmt: skip
    with pytest.raises(UsageError, match="between 1 and 30"):
        execute_conversations(options)
    assert not (tmp_path / "o").exists()


def test_a_killed_bench_resumes_to_identical_transcripts_without_resending_answered_calls(
    tmp_path: Path, judge_env: Path
) -> None:
    import os
    import signal
    import time

    from tests.conftest import ANTHROPIC_KEY, OPENAI_KEY, trustmh_subprocess

    env = {"OPENAI_API_KEY": OPENAI_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY}
    with FakeLLMServer(latency_s=0.05, answerer=conversation_answerer) as server:
        base = [
            "bench", "--suites", "conversation/trustmh", "--targets", f"openai:gpt-4o-mini@{server.openai_base_url}",
            "--user-model", f"anthropic:sim-user@{server.anthropic_base_url}", "--turns", "4",
            "--no-cache", "--concurrency", "3", "-q",
        ]  # fmt: skip
        clean = trustmh_subprocess([*base, "--out", str(tmp_path / "clean")], env)
        assert clean.wait(timeout=100) == 0, clean.stderr.read() if clean.stderr else ""
        server.reset()

        out = tmp_path / "killed"
        child = trustmh_subprocess([*base, "--out", str(out)], env)
        deadline = time.monotonic() + 60
        while sum(r.status == 200 for r in server.requests) < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        assert not (out / "conversations.jsonl").exists(), "the run was killed before it finished"
        # A kill can cut the journal's last write anywhere (even just after a nested "}"): a call counts as
        # answered before the kill only when its row (one per call) was written whole, newline included.
        text = (out / "calls.jsonl").read_text()
        journalled = [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]
        answered_before = {json.dumps(r.body, sort_keys=True) for r in server.requests if r.status == 200}
        journalled_keys = {row["request_key"] for row in journalled if row["status"] == "ok"}
        assert journalled_keys, "some turns were journalled before the kill"
        server.reset()

        resumed = trustmh_subprocess([*base, "--out", str(out)], env)
        assert resumed.wait(timeout=100) == 0, resumed.stderr.read() if resumed.stderr else ""
        requests_after = list(server.requests)
        sent_again = {json.dumps(r.body, sort_keys=True) for r in requests_after} & answered_before

    assert (out / "conversations.jsonl").read_text() == (tmp_path / "clean" / "conversations.jsonl").read_text()
    rows = read_jsonl(out / "calls.jsonl")
    assert {r["request_key"] for r in rows} >= journalled_keys
    # Every call journalled before the kill was taken from the journal, and every other one asked once.
    calls = json.loads((out / "summary.json").read_text())["calls"]
    assert all(row["status"] == "ok" for row in journalled)
    assert calls["resumed"] == len(journalled) and calls["failed"] == 0
    assert calls["http_requests_this_process"] == calls["planned"] - len(journalled) == len(requests_after)
    # Only the answers on the wire at the moment of the kill (at most one per conversation in flight) may
    # have been received by the server and never journalled.
    assert len(sent_again) <= 3, sent_again


def test_a_categorical_scale_names_every_point_and_leaves_numeric_hashes_alone() -> None:
    from pydantic import ValidationError

    from judge.rubric import Criterion, Scale

    labels = {1: "High potential for harm", 2: "Suboptimal", 3: "Best practice"}
    assert Scale(min=1, max=3, labels=labels).label(1) == "High potential for harm"
    with pytest.raises(ValidationError, match="every point"):
        Scale(min=1, max=3, labels={1: "a", 2: "b"})
    base = {"id": "c", "question": "q", "severity": "minor", "anchors": {1: "a", 2: "b", 3: "c"}}
    plain = Criterion(**base, scale=Scale(min=1, max=3))
    assert "labels" not in plain.canonical()["scale"]
    labelled = Criterion(**base, scale=Scale(min=1, max=3, labels=labels))
    assert labelled.content_hash != plain.content_hash
