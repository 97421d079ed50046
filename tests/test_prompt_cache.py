"""Prompt caching through the CLI: the marker reaches Anthropic, both providers' cache usage is read,
priced at its rates and reported in rows, summary.json; and the fake server's own cache accounting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from judge.calls.pricing import Usage, usage_cost
from judge.judges import parse_judge_spec
from tests.conftest import judges_arg, make_items, read_jsonl, write_jsonl
from tests.fakeapi import FakeLLMServer, count_tokens
from tests.fakeapi.protocol import PromptCacheLedger, parse_request

pytestmark = pytest.mark.timeout(120)


def test_prices_follow_each_providers_cache_and_batch_rates() -> None:
    sonnet = parse_judge_spec("anthropic:claude-sonnet-4-5")  # $3 in, $15 out per million
    usage = Usage(input=10_000, output=1_000, cached_input=4_000, cache_write=2_000)
    # 4000 fresh × 3 + 4000 read × 0.3 + 2000 written × 3.75 + 1000 × 15, per million
    assert usage_cost(sonnet, usage) == pytest.approx((12_000 + 1_200 + 7_500 + 15_000) / 1e6)
    assert usage_cost(sonnet, usage, batch=True) == pytest.approx((12_000 + 1_200 + 7_500 + 15_000) / 2e6)
    mini = parse_judge_spec("openai:gpt-4.1-mini")  # $0.40 in, $0.10 cached, $1.60 out
    assert usage_cost(mini, Usage(10_000, 1_000, 4_000, 0)) == pytest.approx((6_000 * 0.4 + 400 + 1_600) / 1e6)
    unknown = parse_judge_spec("openai:some-local-model@http://localhost:8000/v1")
    assert usage_cost(unknown, Usage(10, 1, 5, 0)) is None


def test_the_fake_server_caches_a_repeated_marked_prefix_only_when_long_enough() -> None:
    ledger = PromptCacheLedger(min_tokens=100)
    long_system = "x" * 800  # 200 fake tokens
    marked = {"type": "text", "text": long_system, "cache_control": {"type": "ephemeral"}}
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 10,
        "system": [marked],
        "messages": [{"role": "user", "content": "hi"}],
    }
    anthropic = parse_request("anthropic", "/v1/messages", body, {}, 1)
    assert ledger.account(anthropic) == (0, 200) and ledger.account(anthropic) == (200, 0)
    unmarked = parse_request("anthropic", "/v1/messages", {**body, "system": long_system}, {}, 2)
    assert ledger.account(unmarked) == (0, 0)  # Anthropic caches only up to a marker
    openai_body = {"model": "gpt-4.1-mini", "messages": [{"role": "system", "content": long_system + "y" * 600}]}
    openai = parse_request("openai", "/v1/chat/completions", openai_body, {}, 3)
    assert ledger.account(openai) == (0, 0)  # first sight: nothing cached, and writing is free
    assert ledger.account(openai) == (100 + 128, 0)  # 350 tokens: the minimum and one whole 128-token step
    short = parse_request(
        "openai", "/v1/chat/completions", {**openai_body, "messages": [{"role": "system", "content": "s"}]}, {}, 4
    )
    assert ledger.account(short) == ledger.account(short) == (0, 0)


def test_score_reports_cache_reads_and_writes_priced_at_their_rates(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, run_cli: object, llm_server: FakeLLMServer
) -> None:
    items = write_jsonl(tmp_path / "items.jsonl", make_items(3))
    out = tmp_path / "out"
    args = ["score", items, "--judges", judges_arg(llm_server), "--rubrics", rubric_dir, "--out", out]
    result = run_cli(*args, "--concurrency", "1", "-q")  # type: ignore[operator]
    assert result.code == 0, result.stderr
    anthropic_bodies = [r.body for r in llm_server.requests if r.provider == "anthropic"]
    assert all(b["system"][0]["cache_control"] == {"type": "ephemeral"} for b in anthropic_bodies)
    system_tokens = count_tokens(anthropic_bodies[0]["system"][0]["text"])

    rows = read_jsonl(out / "verdicts.jsonl")
    per_call: dict[tuple[str, str], dict[str, int]] = {}
    for row in rows:
        tally = per_call.setdefault((row["provider"], row["item_id"]), {"read": 0, "write": 0, "cost": 0.0})
        tally["read"] += row["cached_input_tokens"]
        tally["write"] += row["cache_write_tokens"]
        tally["cost"] += row["cost_usd"]
    served = {r.provider: [] for r in llm_server.requests}
    for r in llm_server.requests:
        served[r.provider].append((r.answer.cached_input_tokens, r.answer.cache_write_tokens))
    # One judge at a time: the first Anthropic call writes the rubric prefix, the next ones read it;
    # OpenAI reads what it saw before at no write cost.
    assert served["anthropic"] == [(0, system_tokens), (system_tokens, 0), (system_tokens, 0)]
    assert served["openai"][0] == (0, 0) and all(read > 0 for read, _ in served["openai"][1:])
    for provider, answers in served.items():
        ours = [
            (per_call[(provider, f"item-{i:03d}")]["read"], per_call[(provider, f"item-{i:03d}")]["write"])
            for i in range(3)
        ]
        assert ours == answers

    sonnet = parse_judge_spec("anthropic:claude-sonnet-4-5")
    anthropic_answers = [r.answer for r in llm_server.requests if r.provider == "anthropic"]  # item order
    for i, answer in enumerate(anthropic_answers):
        usage = Usage(answer.input_tokens, answer.output_tokens, answer.cached_input_tokens, answer.cache_write_tokens)
        assert per_call[("anthropic", f"item-{i:03d}")]["cost"] == pytest.approx(usage_cost(sonnet, usage), abs=1e-9)

    summary = json.loads((out / "summary.json").read_text())
    tokens = summary["tokens_this_run"]
    assert tokens["cached_input"] == sum(r.answer.cached_input_tokens for r in llm_server.requests) > 0
    assert tokens["cache_write"] == system_tokens
    assert tokens["input"] == sum(r.answer.input_tokens for r in llm_server.requests)
    assert summary["cost_usd_this_run"] == pytest.approx(sum(r["cost_usd"] for r in rows), abs=1e-6)
