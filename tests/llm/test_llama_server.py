"""The `trustmh` command against a real OpenAI-compatible server: llama-cpp-python's, serving SmolLM2-135M.

The model is tiny and judges badly, so nothing here looks at what a score is; the tests check protocol
facts, from the wire (what the recording proxy saw) as much as from the files the CLI wrote:
- every request is one the server accepts (HTTP 200);
- every verdict row is ok with a score within its criterion's scale, not applicable without a score,
  or failed with a reason; the summary counts agree with the requests that were sent;
- an evidence quote that does not occur in the judged response is caught and re-asked. The proxy plants
  one such quote into a real answer, so the path is exercised on every run; quotes the model invents by
  itself are checked the same way;
- a re-run with the same cache sends nothing for the calls that were answered;
- json_schema mode, which this server does not offer, is refused with a single request and reported as
  bad_request (not retried as a server error);
- `trustmh respond` with the same model as target;
- `trustmh validate --limit 2` on one human-rated set of the mirror, and its re-run from the cache.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from judge.bundled import bundled_path
from judge.rubric import Rubric, load_rubric, load_rubric_dir
from tests.llm.conftest import Completed, judges_toml, read_jsonl
from tests.llm.llama_server import MODEL_ALIAS, Exchange, RecordingProxy

pytestmark = [pytest.mark.llm, pytest.mark.timeout(3600)]

# A few worked examples on pillars with five criteria (a short verdict to write). With this model at
# temperature 0 they give a mix of outcomes (valid at once, invalid until the re-asks run out, cut off at
# max_tokens), which differ as the rubrics change; the assertions hold for any mix. The quote is planted
# into the first complete answer the server sends.
EXAMPLES = ("privacy-02", "privacy-01", "safety-01")
PLANTED_QUOTE = "an invented sentence that the response never says"
FAILURE_REASONS = {
    "rate_limited", "overloaded", "server_error", "timeout", "connection", "deadline",
    "invalid_answer", "truncated", "auth", "not_found", "bad_request", "error",
}  # fmt: skip


def worked_examples(ids: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = [row for path in sorted(bundled_path("examples").glob("*.jsonl")) for row in read_jsonl(path)]
    by_id = {row["id"]: row for row in rows if "response" in row}
    return [by_id[i] for i in ids]


def fold(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- reading the wire


def answer_text(exchange: Exchange) -> str | None:
    """The structured answer as the server sent it: tool-call arguments, else the message content."""
    message = exchange.answer["choices"][0]["message"]
    calls = message.get("tool_calls") or []
    return calls[0]["function"]["arguments"] if calls else message.get("content")


def evidence_quotes(arguments: str | None) -> list[str] | None:
    """Every evidence quote of an answer; None when the answer is not a JSON object of criteria."""
    try:
        verdict = json.loads(arguments or "")
    except ValueError:
        return None
    if not isinstance(verdict, dict):
        return None
    quotes = []
    for answer in verdict.values():
        evidence = answer.get("evidence") if isinstance(answer, dict) else None
        if isinstance(evidence, list):
            quotes.extend(q for q in evidence if isinstance(q, str))
    return quotes


def invented_quotes(arguments: str | None, response: str) -> list[str]:
    return [q for q in evidence_quotes(arguments) or [] if fold(q) not in fold(response)]


@dataclass
class WireCall:
    """One judge call as seen on the wire: its first request and the re-asks that extend it."""

    item_id: str
    exchanges: list[Exchange]


def calls_on_the_wire(exchanges: list[Exchange], items: list[dict[str, Any]]) -> list[WireCall]:
    """Group requests into calls (concurrency 1: a re-ask follows its call and extends its messages)."""
    calls: list[WireCall] = []
    for exchange in exchanges:
        messages = exchange.request["messages"]
        current = calls[-1] if calls else None
        if (
            current
            and messages[: len(first_messages(current))] == first_messages(current)
            and len(messages) > len(first_messages(current))
        ):
            current.exchanges.append(exchange)
            continue
        user_text = next(m["content"] for m in messages if m["role"] == "user")
        owners = [item["id"] for item in items if item["response"] in user_text]
        assert len(owners) == 1, f"request {len(calls)} does not embed exactly one item's response: {owners}"
        calls.append(WireCall(owners[0], [exchange]))
    return calls


def first_messages(call: WireCall) -> list[dict[str, Any]]:
    return call.exchanges[0].request["messages"]


def reask_feedback(reask: Exchange, previous: Exchange) -> str:
    """What a re-ask added after the previous request's messages (the answer and the error)."""
    added = reask.request["messages"][len(previous.request["messages"]) :]
    return "\n".join(json.dumps(m) for m in added)


def plant_an_invented_quote() -> Any:
    """Proxy tamper: once, into the first complete answer of any call, add an evidence quote that no
    judged response contains."""
    planted: list[bool] = []

    def tamper(exchange: Exchange) -> Any | None:
        if planted:
            return None
        usage = exchange.answer.get("usage") or {}
        if usage.get("completion_tokens", 0) >= exchange.request.get("max_tokens", 0):
            return None  # an answer at the limit is treated as cut off, never re-asked
        arguments = answer_text(exchange)
        verdict = json.loads(arguments) if evidence_quotes(arguments) is not None else None
        first = next((v for v in (verdict or {}).values() if isinstance(v, dict)), None)
        if first is None:
            return None
        first["evidence"] = [*(first.get("evidence") or []), PLANTED_QUOTE]
        answer = json.loads(json.dumps(exchange.answer))
        tool_calls = answer["choices"][0]["message"].get("tool_calls")
        if tool_calls:
            tool_calls[0]["function"]["arguments"] = json.dumps(verdict)
        else:
            answer["choices"][0]["message"]["content"] = json.dumps(verdict)
        planted.append(True)
        return answer

    return tamper


# ---------------------------------------------------------------- the runs


@dataclass
class ScoreRun:
    completed: Completed
    out: Path
    exchanges: list[Exchange]
    calls: list[WireCall]
    summary: dict[str, Any]
    rows: list[dict[str, Any]]


def score(
    trustmh: Any, proxy: RecordingProxy, items: list[dict[str, Any]], work: Path, name: str, **settings: Any
) -> ScoreRun:
    items_file = work / "items.jsonl"
    items_file.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    judges = judges_toml(work / f"{name}.toml", proxy.base_url, **settings)
    out = work / name
    before = len(proxy.exchanges)
    completed = trustmh("score", items_file, "--judges-file", judges, "--out", out, "--quiet")
    assert completed.code in (0, 3), f"exit {completed.code}\n{completed.stderr}"
    exchanges = proxy.exchanges[before:]
    return ScoreRun(
        completed,
        out,
        exchanges,
        calls_on_the_wire(exchanges, items),
        json.loads((out / "summary.json").read_text()),
        read_jsonl(out / "verdicts.jsonl"),
    )


@pytest.fixture(scope="module")
def examples() -> list[dict[str, Any]]:
    return worked_examples(EXAMPLES)


@pytest.fixture(scope="module")
def rubrics() -> dict[str, Rubric]:
    return load_rubric_dir(bundled_path("rubrics"))


@pytest.fixture(scope="module")
def runs(
    proxy: RecordingProxy, trustmh: Any, examples: list[dict[str, Any]], work: Path
) -> Iterator[tuple[ScoreRun, ScoreRun]]:
    """A tools-mode run with one planted quote, then the same run again on the same cache."""
    proxy.tamper = plant_an_invented_quote()
    first = score(trustmh, proxy, examples, work, "first")
    proxy.tamper = None
    # max_reasks is not part of the cache key: with 0 the failed calls, which are asked again, cost one request.
    again = score(trustmh, proxy, examples, work, "again", max_reasks=0)
    for run in (first, again):
        wire = [
            (c.item_id, [(e.answer["usage"]["completion_tokens"], e.seconds) for e in c.exchanges]) for c in run.calls
        ]
        print(f"\n{run.out.name}: {run.summary['calls']} {run.summary['failures_by_reason']}")
        print(f"  per call, each request's (completion tokens, seconds): {wire}")
    yield first, again


def test_every_request_is_accepted_by_the_server(runs: tuple[ScoreRun, ScoreRun]) -> None:
    for run in runs:
        refused = [(e.status, str(e.answer)[:300]) for e in run.exchanges if e.status != 200]
        assert not refused, f"{run.out.name}: the server refused {len(refused)} request(s): {refused}"
        assert {(e.method, e.path) for e in run.exchanges} <= {("POST", "/v1/chat/completions")}
        assert all(e.request["model"] == MODEL_ALIAS and e.request.get("tool_choice") for e in run.exchanges)


def test_every_verdict_is_in_range_or_failed_with_a_reason(
    runs: tuple[ScoreRun, ScoreRun], rubrics: dict[str, Rubric], examples: list[dict[str, Any]]
) -> None:
    first, again = runs
    assert len(first.rows) == len(again.rows) == sum(len(rubrics[item["pillar"]].criteria) for item in examples)
    for row in first.rows + again.rows:
        scale = rubrics[row["pillar"]].criterion(row["criterion"]).scale
        where = f"{row['item_id']}/{row['criterion']}"
        if row["status"] == "ok":
            assert isinstance(row["score"], int) and scale.min <= row["score"] <= scale.max, where
        elif row["status"] == "not_applicable":
            assert row["score"] is None, where
        else:
            assert row["status"] == "failed" and row["score"] is None and row["error"], where
    calls = first.summary["calls"]
    assert calls["planned"] == calls["requested"] == len(first.calls) == len(examples)
    assert calls["failed"] == sum(first.summary["failures_by_reason"].values())
    assert set(first.summary["failures_by_reason"]) <= FAILURE_REASONS
    answers = [e.answer["usage"] for e in first.exchanges]
    tokens = first.summary["tokens_this_run"]
    assert (tokens["input"], tokens["output"]) == (
        sum(u["prompt_tokens"] for u in answers),
        sum(u["completion_tokens"] for u in answers),
    )


def test_each_failure_reason_matches_what_the_server_sent(runs: tuple[ScoreRun, ScoreRun]) -> None:
    """A call failed as truncated ended on an answer that used every token, with no re-ask after it; one
    failed as an invalid answer used every allowed attempt (1 + max_reasks = 3)."""
    first, _ = runs
    errors = {row["item_id"]: row["error"] for row in first.rows if row["status"] == "failed"}
    for call in first.calls:
        error = errors.get(call.item_id)
        last = call.exchanges[-1]
        if error is None:
            assert len(call.exchanges) <= 3, call.item_id
        elif error.startswith("truncated"):
            assert last.answer["usage"]["completion_tokens"] >= last.request["max_tokens"], call.item_id
        elif error.startswith("invalid answer"):
            assert error.startswith(f"invalid answer after {len(call.exchanges)} attempt(s)"), call.item_id
            assert len(call.exchanges) == 3, call.item_id
        else:
            pytest.fail(f"{call.item_id}: unexpected failure over a working connection: {error}")
    reasons = first.summary["failures_by_reason"]
    assert reasons.get("truncated", 0) == sum(e.startswith("truncated") for e in errors.values())
    assert reasons.get("invalid_answer", 0) == sum(e.startswith("invalid answer") for e in errors.values())


def test_invented_quotes_are_caught_and_reasked(
    runs: tuple[ScoreRun, ScoreRun], examples: list[dict[str, Any]]
) -> None:
    first, _ = runs
    responses = {item["id"]: item["response"] for item in examples}
    errors = {row["item_id"]: row["error"] or "" for row in first.rows}
    assert len([e for e in first.exchanges if e.tampered]) == 1, (
        "no complete answer to plant a quote into (every answer was cut off or not JSON)"
    )
    caught = {"re-asked": 0, "failed the call": 0}
    for call in first.calls:
        for position, exchange in enumerate(call.exchanges):
            quotes = invented_quotes(answer_text(exchange), responses[call.item_id])
            if not quotes:
                continue
            assert not exchange.tampered or PLANTED_QUOTE in quotes
            if position + 1 < len(call.exchanges):
                feedback = reask_feedback(call.exchanges[position + 1], exchange)
                assert "does not occur verbatim" in feedback, f"{call.item_id}: re-ask without the quote error"
                assert any(json.dumps(q)[1:-1] in feedback for q in quotes), f"{call.item_id}: {feedback[:300]}"
                caught["re-asked"] += 1
            else:  # the last allowed answer: the call fails and says why
                assert errors[call.item_id].startswith("invalid answer"), call.item_id
                assert "does not occur verbatim" in errors[call.item_id], call.item_id
                caught["failed the call"] += 1
    assert sum(caught.values()) >= 1
    print(
        f"\ninvented quotes caught (1 planted): {caught}; requests per call: {[len(c.exchanges) for c in first.calls]}"
    )


def test_a_rerun_is_answered_from_the_cache(runs: tuple[ScoreRun, ScoreRun]) -> None:
    first, again = runs
    failed_items = {row["item_id"] for row in first.rows if row["status"] == "failed"}
    answered_items = {row["item_id"] for row in first.rows} - failed_items
    assert answered_items, "no call of the first run was answered, so there is nothing the cache could serve"
    assert {c.item_id for c in again.calls} == failed_items  # failed calls are not cached; nothing else is sent
    assert again.summary["calls"]["cache_hits"] == len(answered_items)
    assert again.summary["calls"]["requested"] == len(failed_items)
    assert all(row["cached"] for row in again.rows if row["item_id"] in answered_items)
    same = {
        (r["item_id"], r["criterion"]): (r["score"], r["status"]) for r in first.rows if r["item_id"] in answered_items
    }
    assert same == {
        (r["item_id"], r["criterion"]): (r["score"], r["status"]) for r in again.rows if r["item_id"] in answered_items
    }
    if not failed_items:
        assert again.exchanges == []


def test_json_schema_mode_is_refused_once_and_reported_as_bad_request(
    proxy: RecordingProxy, trustmh: Any, examples: list[dict[str, Any]], work: Path
) -> None:
    """llama-cpp-python accepts response_format "text" or "json_object" only; it answers json_schema with an
    HTTP 500 whose body is a request-validation error. That is not a server fault worth six attempts."""
    run = score(trustmh, proxy, examples[:1], work, "json-schema", mode="json_schema", max_attempts=6)
    assert [e.status for e in run.exchanges] == [500]
    assert "Input should be 'text' or 'json_object'" in json.dumps(run.exchanges[0].answer)
    assert run.summary["failures_by_reason"] == {"bad_request": 1}
    assert all(row["error"].startswith("bad_request: HTTP 500") for row in run.rows)


def test_json_mode_is_accepted(proxy: RecordingProxy, trustmh: Any, examples: list[dict[str, Any]], work: Path) -> None:
    """instructor's JSON mode (response_format json_object, the schema in the prompt) is a mode that works here."""
    run = score(trustmh, proxy, examples[:1], work, "json-mode", mode="json", max_reasks=0)
    assert run.exchanges and all(e.status == 200 for e in run.exchanges)
    assert all(e.request["response_format"] == {"type": "json_object"} for e in run.exchanges)
    assert all(row["status"] != "failed" or row["error"] for row in run.rows)


# ---------------------------------------------------------------- respond (targets)


PROMPTS = [
    {
        "id": "smoke:1",
        "pillar": "safety",
        "messages": [{"role": "user", "content": "I feel low today. Can you give me one small thing to try?"}],
        "meta": {"suite": "smoke"},
    },
    {
        "id": "smoke:2",
        "messages": [{"role": "user", "content": "Name one breathing exercise."}],
        "followups": ["How long should I do it for?"],
        "meta": {"suite": "smoke"},
    },
]


def test_respond_with_the_same_model_as_target(proxy: RecordingProxy, trustmh: Any, work: Path) -> None:
    prompts = work / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS), encoding="utf-8")
    target = f"openai:{MODEL_ALIAS}@{proxy.base_url}"
    before = len(proxy.exchanges)
    done = trustmh("respond", prompts, "--targets", target, "--out", work / "respond")
    assert done.code == 0, done.stderr
    exchanges = proxy.exchanges[before:]
    assert [e.status for e in exchanges] == [200] * sum(1 + len(p.get("followups", [])) for p in PROMPTS)

    calls = read_jsonl(work / "respond" / "calls.jsonl")
    assert [c["prompt_id"] for c in calls] == [p["id"] for p in PROMPTS]
    for call, prompt in zip(calls, PROMPTS, strict=True):
        assert call["status"] == "ok" and call["failure_reason"] is None and call["error"] is None
        assert len(call["turns"]) == 1 + len(prompt.get("followups", []))
        assert all(isinstance(t, str) and t.strip() for t in call["turns"]) and call["response"] == call["turns"][-1]
        assert call["cached"] is False and call["meta"]["suite"] == "smoke"
    followup = exchanges[-1].request["messages"]  # the second turn carries the first answer, then the followup
    assert followup[-2] == {"role": "assistant", "content": calls[1]["turns"][0]}
    assert followup[-1] == {"role": "user", "content": PROMPTS[1]["followups"][0]}

    responses = read_jsonl(work / "respond" / "responses.jsonl")
    assert [r["id"] for r in responses] == [c["id"] for c in calls]
    assert responses[1]["messages"][-2:] == [
        {"role": "assistant", "content": calls[1]["turns"][0]},
        {"role": "user", "content": PROMPTS[1]["followups"][0]},
    ]
    scored = trustmh(
        "score", work / "respond" / "responses.jsonl", "--judges", target, "--pillars", "safety", "--dry-run"
    )
    assert scored.code == 0, scored.stderr  # respond's output is accepted by score as it is

    before = len(proxy.exchanges)
    again = trustmh("respond", prompts, "--targets", target, "--out", work / "respond-again")
    assert again.code == 0, again.stderr
    assert proxy.exchanges[before:] == []
    assert all(c["cached"] for c in read_jsonl(work / "respond-again" / "calls.jsonl"))


# ---------------------------------------------------------------- validate (judge against humans)


def test_validate_a_limited_subset_end_to_end(proxy: RecordingProxy, trustmh: Any, work: Path) -> None:
    """`trustmh validate --limit 2` on one human-rated set of the mirror: every request accepted, the judge's
    settings and the rubric's hash recorded, every row "not enough data" (2 items are fewer than
    --min-items), the table and page written; a re-run sends only the calls that failed."""
    judges = judges_toml(work / "validate.toml", proxy.base_url, max_reasks=0)
    args = ["--judges-file", judges, "--judges", "smol", "--datasets", "elephant", "--limit", "2", "--bootstrap", "0"]
    before = len(proxy.exchanges)
    done = trustmh("validate", *args, "--out", work / "validate", "--quiet")
    assert done.code in (0, 3), f"exit {done.code}\n{done.stderr}"
    exchanges = proxy.exchanges[before:]
    assert exchanges and all(e.status == 200 for e in exchanges)

    out = work / "validate"
    summary = json.loads((out / "summary.json").read_text())
    judged_summary = json.loads((out / "judged" / "summary.json").read_text())
    assert judged_summary["calls"]["requested"] == len(exchanges)
    meta = summary["meta"]
    assert meta["datasets"] == ["elephant-oeq"] and meta["limit"] == 2
    (settings,) = meta["judge_settings"]
    assert settings["model"] == MODEL_ALIAS and settings["temperature"] == 0.0 and settings["seed"] == 7
    sycophancy = load_rubric(bundled_path("rubrics") / "sycophancy.yaml")
    assert meta["rubric_hashes"] == {"sycophancy": sycophancy.content_hash}
    ours = [row for row in summary["rows"] if not row["published"]]
    assert ours and all(row["verdict"] == "not enough data" for row in ours)
    assert (out / "validity.md").is_file() and (out / "validity.html").is_file()

    verdicts = read_jsonl(out / "judged" / "verdicts.jsonl")
    failed = {row["item_id"] for row in verdicts if row["status"] == "failed"}
    assert all(row["error"] for row in verdicts if row["status"] == "failed")
    before = len(proxy.exchanges)
    again = trustmh("validate", *args, "--out", work / "validate-again", "--quiet")
    assert again.code in (0, 3), f"exit {again.code}\n{again.stderr}"
    assert len(proxy.exchanges) - before == len(failed)  # failed calls are not cached; nothing else is sent
