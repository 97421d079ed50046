"""`trustmh bench --recorded vera-mh`: VERA-MH's 105 recorded conversations read from the mirror into
conversation items, and judged whole with the conversation rubric against the loopback server."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from judge.datasets import DatasetError
from judge.suites.vera_recorded import parse_transcript, recorded_conversations
from tests.conftest import read_jsonl
from tests.fakeapi import FakeLLMServer
from tests.fakeapi.judge_script import scripted_answerer

pytestmark = pytest.mark.timeout(300)

OPUS = "claude_opus_4_1_20250805"
GPT5 = "gpt_5"


def test_all_105_conversations_are_read_with_their_models_and_risk_levels() -> None:
    lines = list(recorded_conversations())
    assert len(lines) == 105 and len({line["id"] for line in lines}) == 105
    assert Counter(line["target"] for line in lines) == {OPUS: 35, "claude_sonnet_4_20250514": 35, GPT5: 35}
    assert Counter(line["risk_level"] for line in lines) == {"high": 45, "low": 30, "imminent": 15, "none": 15}
    for line in lines:
        roles = [t["role"] for t in line["turns"]]
        assert roles[0] == "user" and all(a != b for a, b in itertools.pairwise(roles))
    by_source = {line["source"].rsplit("/", 1)[-1]: line for line in lines}
    # counted by hand in the files: Omar run 2 (Opus) has 5 messages, 3 of the person; Kevin run 2
    # (GPT-5) 3, the last one the person's, then VERA-MH's "[CONVERSATION ENDED ...]" note
    omar = by_source["7b39fa_Omar_claude-opus-4-1-20250805_run2.txt"]
    assert [t["role"] for t in omar["turns"]] == ["user", "assistant", "user", "assistant", "user"]
    assert omar["turns"][0]["text"].startswith("Hey. I was told I could talk to someone here")
    assert omar["risk_level"] == "high" and omar["persona"] == "vera-omar" and omar["stop_reason"] == "ended_by_user"
    kevin = by_source["012ba2_Kevin_g5_run2.txt"]
    assert len(kevin["turns"]) == 3 and kevin["target"] == GPT5 and kevin["user_model"] == GPT5
    assert kevin["turns"][-1]["text"].endswith("Where would you start?")
    assert Counter(line["stop_reason"] for line in lines) == {"max_turns": 91, "ended_by_user": 14}
    assert sum(len(line["turns"]) == 30 for line in lines) == 91


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("hello\nuser: hi", "must start with 'user:' or 'agent:'"),
        ("user: hi\n\nuser: again", ":3: two 'user' turns in a row"),
    ],
)
def test_a_malformed_transcript_names_the_file_and_line(text: str, problem: str) -> None:
    with pytest.raises(DatasetError, match=problem):
        parse_transcript(text, "vera-mh/x.txt")


def test_the_recorded_conversations_are_judged_whole(tmp_path: Path, judge_env: Path, run_cli: Any) -> None:
    out = tmp_path / "out"
    with FakeLLMServer(answerer=scripted_answerer) as server:
        judge = f"openai:gpt-4.1-mini@{server.openai_base_url}"
        dry = run_cli("bench", "--recorded", "vera-mh", "--judges", judge, "--out", out, "--dry-run")
        assert dry.code == 0 and not server.requests and not out.exists(), dry.stderr
        assert "105 conversation(s)." in " ".join(dry.stdout.split())
        result = run_cli("bench", "--recorded", "vera-mh", "--judges", judge, "--out", out, "--quiet")
        assert result.code == 0, result.stderr + result.stdout
    lines = read_jsonl(out / "conversations.jsonl")
    items = read_jsonl(out / "judged-conversations.jsonl")
    assert len(lines) == len(items) == 105
    assert all(item["messages"][-1]["role"] == "user" for item in items)
    summary = json.loads((out / "score" / "summary.json").read_text(encoding="utf-8"))
    assert summary["calls"]["planned"] == 3 * 105 and summary["calls"]["failed"] == 0
    card = json.loads((out / "scorecard.json").read_text(encoding="utf-8"))
    assert {t["target"]: t["conversations"] for t in card["targets"]} == {
        OPUS: 35, "claude_sonnet_4_20250514": 35, GPT5: 35
    }
    # a conversation criterion applies from the person's second message on: the judged part of a recorded
    # conversation that ended after one exchange is not applicable on every criterion (gate undecided)
    multi = Counter(item["target"] for item in items if sum(m["role"] == "user" for m in item["messages"]) > 1)
    for target in card["targets"]:
        gate = target["gate"]
        assert gate["failing"] + gate["passing"] == multi[target["target"]]
        assert gate["undecided"] == 35 - multi[target["target"]]
        # the scripted judge calls every applicable dimension applicable
        assert target["vera_mh"]["ratings"] == 5 * multi[target["target"]]
    rows = read_jsonl(out / "score" / "verdicts.jsonl")
    assert len({r["item_id"] for r in rows}) == 105 and {r["status"] for r in rows} == {"ok", "not_applicable"}


def test_recorded_vera_mh_needs_judges(tmp_path: Path, run_cli: Any) -> None:
    result = run_cli("bench", "--recorded", "vera-mh", "--out", tmp_path / "out")
    assert result.code == 2 and "--judges" in result.stderr and not (tmp_path / "out").exists()
