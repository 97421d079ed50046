"""`trustmh bench --suites conversation/trustmh` against the real llama.cpp server, SmolLM2-135M playing
both the person and the chatbot.

Protocol facts only (what the model says is never looked at): every request is accepted; each
conversation's turns alternate user / chatbot in order, numbered by turn; each stop reason is one the
engine gives and agrees with the turns; the chatbot's request for a turn carries the whole conversation
before it, and the simulated user's carries the persona's prompt as its system message; each answer's
`truncated` flag is the server's finish reason; the request count is the summary's; a re-run answers
from the cache (into a new out directory) or from the journal (the same one) without a request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from judge.suites.personas import our_personas
from tests.llm.conftest import read_jsonl
from tests.llm.llama_server import MODEL_ALIAS, Exchange, RecordingProxy

pytestmark = [pytest.mark.llm, pytest.mark.timeout(3600)]

TURNS = 3
STOP_REASONS = {"max_turns", "stop_phrase", "failed"}


def targets_toml(path: Path, base_url: str) -> Path:
    """Two targets on the same server: `smol`, the chatbot, and `sim`, the simulated user; one slot, short
    answers (48 tokens keep twelve conversations of three turns within a few minutes on two cores)."""
    settings = {
        "spec": f"openai:{MODEL_ALIAS}@{base_url}",
        "concurrency": 1,
        "temperature": 0.0,
        "seed": 7,
        "max_tokens": 48,
        "timeout_s": 1800.0,
        "deadline_s": 3600.0,
        "max_attempts": 2,
    }
    lines = []
    for name in ("smol", "sim"):
        lines += [f"[targets.{name}]", *(f"{key} = {json.dumps(value)}" for key, value in settings.items()), ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def message_text(exchange: Exchange) -> str | None:
    return exchange.answer["choices"][0]["message"].get("content")


def test_conversations_run_turn_by_turn_and_resume_without_a_request(
    proxy: RecordingProxy, trustmh: Any, work: Path
) -> None:
    targets = targets_toml(work / "conversation-targets.toml", proxy.base_url)
    bench = ["bench", "--suites", "conversation/trustmh", "--targets-file", targets, "--targets", "smol",
             "--user-model", "sim", "--turns", str(TURNS), "-q"]  # fmt: skip
    out = work / "conversations"
    before = len(proxy.exchanges)
    done = trustmh(*bench, "--out", out)
    assert done.code in (0, 3), f"exit {done.code}\n{done.stderr}"
    exchanges = proxy.exchanges[before:]
    assert exchanges and all(e.status == 200 for e in exchanges), [e.status for e in exchanges]

    cards = our_personas()
    lines = read_jsonl(out / "conversations.jsonl")
    assert [line["persona"] for line in lines] == [card.id for card in cards]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["calls"]["http_requests_this_process"] == len(exchanges)
    assert summary["calls"]["cache_hits"] == 0 and summary["calls"]["resumed"] == 0
    rows = read_jsonl(out / "calls.jsonl")
    failed = {row["meta"]["conversation"] for row in rows if row["status"] != "ok"}
    assert all(row["failure_reason"] for row in rows if row["status"] != "ok")
    assert (done.code == 3) == bool(failed)

    for card, line in zip(cards, lines, strict=True):
        turns = line["turns"]
        assert line["stop_reason"] in STOP_REASONS
        assert [t["role"] for t in turns] == ["user", "assistant"] * (len(turns) // 2) + ["user"] * (len(turns) % 2)
        assert [t["turn"] for t in turns] == [i // 2 + 1 for i in range(len(turns))]
        assert all(isinstance(t["text"], str) and t["text"].strip() for t in turns)
        if card.opening:
            assert turns[0]["text"] == card.opening  # the card's fixed first message: no call
        if line["stop_reason"] == "max_turns":
            assert len(turns) == 2 * TURNS and line["id"] not in failed
        elif line["stop_reason"] == "stop_phrase":
            assert turns[-1]["role"] == "user" and turns[-1]["turn"] >= 3 and line["id"] not in failed
        else:
            assert line["id"] in failed

    chatbot = [e for e in exchanges if e.request["messages"][0]["role"] != "system"]
    simulated = [e for e in exchanges if e.request["messages"][0]["role"] == "system"]
    assert len(chatbot) + len(simulated) == len(exchanges)
    assert all(e.request["model"] == MODEL_ALIAS and e.request["max_tokens"] == 48 for e in exchanges)
    for card, line in zip(cards, lines, strict=True):
        turns = line["turns"]
        for index, turn in enumerate(turns):
            if turn["role"] != "assistant":
                continue
            history = [{"role": t["role"], "content": t["text"]} for t in turns[:index]]
            asked = [e for e in chatbot if e.request["messages"] == history]
            assert asked, f"{line['id']} turn {turn['turn']}: no chatbot request carried the conversation before it"
            assert turn["text"] in {message_text(e) for e in asked}
        if not card.opening and turns:
            first = [e for e in simulated if len(e.request["messages"]) == 2 and message_text(e) == turns[0]["text"]]
            assert first, f"{line['id']}: the first message came from no simulated-user request"
            assert card.name in first[0].request["messages"][0]["content"]  # the persona's prompt as system
    for row in rows:
        if row["status"] == "ok":
            same = [e for e in exchanges if message_text(e) == row["response"]]
            finishes = {e.answer["choices"][0]["finish_reason"] for e in same}
            assert finishes and all((f == "length") == row["truncated"] for f in finishes), (row["id"], finishes)
    answered_calls = sum(row["status"] == "ok" for row in rows)
    if not failed:
        assert len(exchanges) == answered_calls == sum(len(line["turns"]) for line in lines) - sum(
            bool(card.opening) for card in cards
        )

    kept = {line["id"]: line for line in lines if line["id"] not in failed}
    for again_out in (work / "conversations-cached", out):  # a new out (the cache), the same out (the journal)
        before = len(proxy.exchanges)
        again = trustmh(*bench, "--out", again_out)
        assert again.code == done.code or failed, again.stderr
        again_lines = read_jsonl(again_out / "conversations.jsonl")
        assert {line["id"]: line for line in again_lines if line["id"] in kept} == kept
        if not failed:
            assert proxy.exchanges[before:] == [], "a re-run sent a request for an answered call"
            assert again_lines == lines
            again_calls = json.loads((again_out / "summary.json").read_text())["calls"]
            source = "cache_hits" if again_out != out else "resumed"
            assert again_calls[source] == again_calls["planned"] == len(rows)
            assert again_calls["http_requests_this_process"] == 0
