"""Engine units: which errors are retried and how long to wait, client-side rate limits, token/cost accounting,
and reading back a run's journal. Real SDK exception objects, a fake clock, no network."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from instructor.core.exceptions import IncompleteOutputException
from pydantic import BaseModel, Field, ValidationError
from tenacity import RetryCallState

from judge.bundled import bundled_path
from judge.calls.client import (
    RETRY_AFTER_CAP_S,
    InvalidAnswerError,
    WaitRetryAfter,
    failure_reason,
    is_transient,
    retry_after_seconds,
    retry_policy,
)
from judge.calls.engine import CallResult, RateLimiter, known_results, read_journal, split_evenly
from judge.items import Item
from judge.judge_calls import JudgeCalls, verdict_rows
from judge.judges import JudgeSpec, load_judges_file
from judge.plan import PlannedCall, build_plan, pillar_contexts
from judge.prompts import PromptRenderer
from judge.rubric import load_rubric
from judge.verdict import CriterionOutcome, failed_outcomes

KIND = JudgeCalls(lambda call: False)
OPENAI_URL = "https://api.openai.com/v1/chat/completions"
ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"


def http_response(status: int, headers: dict[str, str] | None = None, url: str = OPENAI_URL) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("POST", url), headers=headers or {})


def rate_limited(headers: dict[str, str] | None = None) -> openai.RateLimitError:
    return openai.RateLimitError("Rate limit reached", response=http_response(429, headers), body=None)


def openai_status(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    classes: dict[int, type[openai.APIStatusError]] = {
        400: openai.BadRequestError,
        401: openai.AuthenticationError,
        403: openai.PermissionDeniedError,
        404: openai.NotFoundError,
        429: openai.RateLimitError,
    }
    cls = classes.get(status, openai.InternalServerError if status >= 500 else openai.APIStatusError)
    return cls(f"HTTP {status}", response=http_response(status, headers), body=None)


def anthropic_overloaded() -> anthropic.APIStatusError:
    return anthropic.OverloadedError("Overloaded", response=http_response(529, url=ANTHROPIC_URL), body=None)


def anthropic_529_plain() -> anthropic.APIStatusError:
    return anthropic.APIStatusError("Overloaded", response=http_response(529, url=ANTHROPIC_URL), body=None)


# ---------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("make", "reason", "transient"),
    [
        (lambda: rate_limited(), "rate_limited", True),
        (lambda: openai_status(500), "server_error", True),
        (lambda: openai_status(502), "server_error", True),
        (lambda: openai_status(503), "server_error", True),
        (lambda: anthropic_overloaded(), "overloaded", True),
        (lambda: anthropic_529_plain(), "overloaded", True),
        (
            lambda: anthropic.RateLimitError("slow down", response=http_response(429, url=ANTHROPIC_URL), body=None),
            "rate_limited",
            True,
        ),
        (
            lambda: anthropic.InternalServerError("boom", response=http_response(500, url=ANTHROPIC_URL), body=None),
            "server_error",
            True,
        ),
        (lambda: openai.APITimeoutError(request=httpx.Request("POST", OPENAI_URL)), "timeout", True),
        (lambda: anthropic.APITimeoutError(request=httpx.Request("POST", ANTHROPIC_URL)), "timeout", True),
        (lambda: openai.APIConnectionError(request=httpx.Request("POST", OPENAI_URL)), "connection", True),
        (lambda: anthropic.APIConnectionError(request=httpx.Request("POST", ANTHROPIC_URL)), "connection", True),
        (lambda: openai_status(400), "bad_request", False),
        (lambda: openai_status(401), "auth", False),
        (lambda: openai_status(403), "auth", False),
        (lambda: openai_status(404), "not_found", False),
        (
            lambda: anthropic.AuthenticationError("bad key", response=http_response(401, url=ANTHROPIC_URL), body=None),
            "auth",
            False,
        ),
        (
            lambda: anthropic.BadRequestError("bad", response=http_response(400, url=ANTHROPIC_URL), body=None),
            "bad_request",
            False,
        ),
        (lambda: ValueError("something else"), "error", False),
    ],
)
def test_failure_reason_and_transience_of_sdk_errors(make: Any, reason: str, transient: bool) -> None:
    error = make()
    assert failure_reason(error) == reason
    assert is_transient(error) is transient


def invalid_answer(attempts: int) -> InvalidAnswerError:
    try:
        BoundedScore.model_validate({"score": 9})
    except ValidationError as error:
        try:
            raise InvalidAnswerError(error, attempts) from error
        except InvalidAnswerError as raised:
            return raised
    raise AssertionError("score 9 should not validate")


class BoundedScore(BaseModel):
    score: int = Field(ge=1, le=5)


def test_exhausted_reasks_are_an_invalid_answer_and_not_retried() -> None:
    error = invalid_answer(3)
    assert failure_reason(error) == "invalid_answer"
    assert not is_transient(error)


def test_an_answer_cut_off_at_max_tokens_is_truncated_and_not_retried() -> None:
    error = IncompleteOutputException(last_completion=None)
    assert failure_reason(error) == "truncated"
    assert not is_transient(error)


# ---------------------------------------------------------------- retry-after


def http_date(delta_s: float) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=delta_s), usegmt=True)


def test_retry_after_ms_wins_over_seconds() -> None:
    assert retry_after_seconds(rate_limited({"retry-after-ms": "1500", "retry-after": "9"})) == pytest.approx(1.5)


def test_retry_after_seconds() -> None:
    assert retry_after_seconds(rate_limited({"retry-after": "7"})) == pytest.approx(7.0)
    assert retry_after_seconds(rate_limited({"Retry-After": "0.25"})) == pytest.approx(0.25)


def test_retry_after_http_date() -> None:
    delay = retry_after_seconds(rate_limited({"retry-after": http_date(120)}))
    assert delay is not None and 100 <= delay <= 121
    assert retry_after_seconds(rate_limited({"retry-after": http_date(-3600)})) == 0.0  # already past


def test_retry_after_absent() -> None:
    assert retry_after_seconds(rate_limited()) is None
    assert retry_after_seconds(openai.APIConnectionError(request=httpx.Request("POST", OPENAI_URL))) is None
    assert retry_after_seconds(ValueError("no response at all")) is None


def test_retry_after_negative_is_zero() -> None:
    assert retry_after_seconds(rate_limited({"retry-after": "-5"})) == 0.0


def test_garbage_retry_after_ms_falls_back_to_retry_after() -> None:
    assert retry_after_seconds(rate_limited({"retry-after-ms": "soon", "retry-after": "2"})) == pytest.approx(2.0)


@pytest.mark.parametrize("value", ["garbage", "soon", "Wed, 99 Foo 2025", ""])
def test_garbage_retry_after_is_ignored_not_raised(value: str) -> None:
    # A server sending a malformed header must not turn a retryable 429 into a crash of the retry policy.
    assert retry_after_seconds(rate_limited({"retry-after": value})) is None


# ---------------------------------------------------------------- wait and stop


def state_after(error: BaseException, attempt: int) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    state.set_exception((type(error), error, None))
    return state


def test_wait_honours_retry_after() -> None:
    wait = WaitRetryAfter(initial_s=1.0, max_s=60.0)
    assert wait(state_after(rate_limited({"retry-after": "7"}), 1)) == pytest.approx(7.0)
    assert wait(state_after(rate_limited({"retry-after-ms": "250"}), 5)) == pytest.approx(0.25)


def test_wait_caps_a_huge_retry_after() -> None:
    wait = WaitRetryAfter(initial_s=1.0, max_s=60.0)
    assert wait(state_after(rate_limited({"retry-after": "86400"}), 1)) == pytest.approx(RETRY_AFTER_CAP_S)
    assert RETRY_AFTER_CAP_S < 86400


def test_wait_with_a_garbage_retry_after_falls_back_to_backoff() -> None:
    wait = WaitRetryAfter(initial_s=1.0, max_s=60.0)
    delay = wait(state_after(rate_limited({"retry-after": "garbage"}), 3))
    assert 0.0 <= delay <= 4.0


@pytest.mark.parametrize(("initial", "max_s"), [(1.0, 60.0), (0.5, 4.0)])
def test_wait_without_retry_after_is_exponential_with_jitter_within_bounds(initial: float, max_s: float) -> None:
    random.seed(1234)
    wait = WaitRetryAfter(initial_s=initial, max_s=max_s)
    error = openai_status(503)
    for attempt in range(1, 9):
        ceiling = min(max_s, initial * 2 ** (attempt - 1))
        samples = [wait(state_after(error, attempt)) for _ in range(200)]
        assert all(0.0 <= s <= ceiling + 1e-9 for s in samples), (attempt, max(samples), ceiling)
        assert len(set(samples)) > 100, "jitter: the waits are spread, not one fixed value"
        assert max(samples) > ceiling * 0.7, "the waits use the whole window, so they grow with the attempt"


def spec(**settings: Any) -> JudgeSpec:
    return JudgeSpec(name="j", provider="openai", model="gpt-4.1-mini", **settings)


async def count_attempts(policy: Any, errors: list[BaseException | None]) -> tuple[int, BaseException | None]:
    attempts = 0
    try:
        async for attempt in policy:
            with attempt:
                attempts += 1
                error = errors[min(attempts - 1, len(errors) - 1)]
                if error is not None:
                    raise error
    except Exception as exc:
        return attempts, exc
    return attempts, None


def test_retry_policy_stops_after_max_attempts_and_reraises_the_error() -> None:
    error = openai_status(503)
    attempts, raised = asyncio.run(
        count_attempts(retry_policy(spec(max_attempts=3, backoff_initial_s=0.0, backoff_max_s=0.0)), [error])
    )
    assert attempts == 3
    assert raised is error


def test_retry_policy_retries_transient_errors_then_succeeds() -> None:
    errors: list[BaseException | None] = [rate_limited({"retry-after": "0"}), openai_status(500), None]
    attempts, raised = asyncio.run(
        count_attempts(retry_policy(spec(max_attempts=6, backoff_initial_s=0.0, backoff_max_s=0.0)), errors)
    )
    assert (attempts, raised) == (3, None)


@pytest.mark.parametrize("status", [400, 401, 404])
def test_retry_policy_does_not_retry_permanent_errors(status: int) -> None:
    error = openai_status(status)
    attempts, raised = asyncio.run(
        count_attempts(retry_policy(spec(max_attempts=6, backoff_initial_s=0.0, backoff_max_s=0.0)), [error])
    )
    assert attempts == 1 and raised is error


# ---------------------------------------------------------------- rate limiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def take(limiter: RateLimiter, *tokens: int) -> None:
    """Acquire requests that fit now (asserted first, so the fake clock never makes acquire sleep)."""

    async def go() -> None:
        for n in tokens:
            assert limiter.delay_for(n) == 0
            await limiter.acquire(n)

    asyncio.run(go())


def test_no_limits_never_wait() -> None:
    limiter = RateLimiter(None, None, clock=FakeClock())
    take(limiter, *[10_000] * 100)
    assert limiter.delay_for(10**9) == 0


def test_rpm_budget_and_refill() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=60, tpm=None, clock=clock)
    take(limiter, *[1] * 60)
    assert limiter.delay_for(1) == pytest.approx(1.0)  # one request a second refills
    clock.now += 0.25
    assert limiter.delay_for(1) == pytest.approx(0.75)
    clock.now += 0.75
    assert limiter.delay_for(1) == 0


def test_rpm_small_budget() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=2, tpm=None, clock=clock)
    take(limiter, 1, 1)
    assert limiter.delay_for(1) == pytest.approx(30.0)


def test_tpm_budget_and_refill() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=None, tpm=1000, clock=clock)
    take(limiter, 600)
    assert limiter.delay_for(400) == 0
    assert limiter.delay_for(500) == pytest.approx(6.0)  # 100 tokens missing at 1000/60 tokens a second
    clock.now += 3  # 50 tokens back
    assert limiter.delay_for(500) == pytest.approx(3.0)
    clock.now += 3
    assert limiter.delay_for(500) == 0
    assert limiter.delay_for(1000) == pytest.approx(30.0)


def test_refill_never_exceeds_the_budget() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=10, tpm=1000, clock=clock)
    clock.now += 3600
    take(limiter, 1000)
    assert limiter.delay_for(1) > 0, "an hour idle does not bank more than one minute of tokens"


def test_a_request_larger_than_the_tpm_budget_waits_for_a_full_bucket_not_forever() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=None, tpm=1000, clock=clock)
    assert limiter.delay_for(5000) == 0  # a full bucket lets it through
    take(limiter, 5000)
    assert limiter.delay_for(5000) == pytest.approx(60.0)
    clock.now += 60
    assert limiter.delay_for(5000) == 0


def test_rpm_and_tpm_together_wait_for_the_tighter_one() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=1, tpm=100_000, clock=clock)
    take(limiter, 10)
    assert limiter.delay_for(10) == pytest.approx(60.0)
    limiter = RateLimiter(rpm=1000, tpm=600, clock=clock)
    take(limiter, 600)
    assert limiter.delay_for(60) == pytest.approx(6.0)


def test_settle_corrects_the_estimate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=None, tpm=1000, clock=clock)
    take(limiter, 100)
    limiter.settle(100, 400)  # the call really used 400 tokens
    assert limiter.delay_for(600) == 0
    assert limiter.delay_for(700) == pytest.approx(6.0)


# ---------------------------------------------------------------- accounting


@pytest.mark.parametrize(("total", "parts"), [(10, 3), (2, 5), (0, 4), (1001, 6), (7, 1), (123_457, 7)])
def test_split_evenly_sums_exactly(total: int, parts: int) -> None:
    shares = split_evenly(total, parts)
    assert len(shares) == parts
    assert sum(s for s in shares if s is not None) == total
    assert all(s is not None and s >= 0 for s in shares)
    assert max(shares) - min(shares) <= 1  # type: ignore[type-var,operator]


def test_split_evenly_keeps_none() -> None:
    assert split_evenly(None, 4) == [None, None, None, None]


@pytest.mark.parametrize(
    ("model", "expected"),
    [("gpt-4.1-mini", 0.40 + 1.60), ("gpt-4o", 2.50 + 10.00), ("claude-sonnet-4-5", 3.00 + 15.00)],
)
def test_cost_of_known_models(model: str, expected: float) -> None:
    provider = "anthropic" if model.startswith("claude") else "openai"
    judge = JudgeSpec(name=model, provider=provider, model=model)
    assert judge.cost_usd(1_000_000, 1_000_000) == pytest.approx(expected)
    assert judge.cost_usd(0, 0) == 0


def test_cost_of_a_small_call() -> None:
    judge = JudgeSpec(name="m", provider="openai", model="gpt-4.1-mini")
    assert judge.cost_usd(1200, 300) == pytest.approx((1200 * 0.40 + 300 * 1.60) / 1e6)


def test_cost_override_from_settings(tmp_path: Path) -> None:
    judge = spec(price_input_per_mtok=1.0, price_output_per_mtok=2.0)
    assert judge.cost_usd(1_000_000, 500_000) == pytest.approx(2.0)
    path = tmp_path / "judges.toml"
    path.write_text(
        '[judges.local]\nspec = "openai:qwen2.5-7b@http://localhost:8000/v1"\n'
        "price_input_per_mtok = 0.1\nprice_output_per_mtok = 0.3\n"
    )
    local = load_judges_file(path).judges["local"]
    assert local.cost_usd(2_000_000, 1_000_000) == pytest.approx(0.5)


def test_unknown_model_costs_none_never_zero() -> None:
    judge = JudgeSpec(name="q", provider="openai", model="qwen2.5-72b", base_url="http://localhost:8000/v1")
    assert judge.cost_usd(1000, 100) is None
    assert judge.cost_usd(0, 0) is None


def test_cost_with_unknown_usage_is_none() -> None:
    judge = JudgeSpec(name="m", provider="openai", model="gpt-4.1-mini")
    assert judge.cost_usd(None, 10) is None
    assert judge.cost_usd(10, None) is None


# ---------------------------------------------------------------- verdict rows and journal


RUBRIC = load_rubric(bundled_path("rubrics") / "crisis.yaml")
JUDGE = JudgeSpec(name="gpt", provider="openai", model="gpt-4.1-mini")


def planned(n: int = 1) -> list[PlannedCall]:
    items = [
        Item(
            id=f"item-{i}",
            pillars=("crisis",),
            messages=({"role": "user", "content": f"I feel hopeless ({i})."},),  # type: ignore[arg-type]
            response=f"I'm sorry you feel this way ({i}). You can call or text 988 any time.",
            target="bot",
            meta={"group": i},
            source=f"items.jsonl:{i + 1}",
        )
        for i in range(n)
    ]
    return list(build_plan(items, pillar_contexts({"crisis": RUBRIC}), [JUDGE], PromptRenderer()))


def ok_result(call: PlannedCall, input_tokens: int | None = 1001, output_tokens: int | None = 337) -> CallResult:
    outcomes = [
        CriterionOutcome(c.id, "ok", c.scale.min + 1, f"because {c.id}", ("call or text 988",)) for c in RUBRIC.criteria
    ]
    cost = JUDGE.cost_usd(input_tokens, output_tokens)  # the worker prices each request it sends
    return CallResult(call, outcomes, input_tokens, output_tokens, 0.5, cached=False, cost_usd=cost)


def failed_result(call: PlannedCall) -> CallResult:
    return CallResult(
        call,
        failed_outcomes(RUBRIC, "server_error: HTTP 503"),
        None,
        None,
        1.0,
        cached=False,
        failure_reason="server_error",
    )


def test_verdict_rows_split_tokens_and_cost_exactly_over_criteria() -> None:
    (call,) = planned()
    rows = verdict_rows(ok_result(call), self_family=False)
    assert [r["criterion"] for r in rows] == [c.id for c in RUBRIC.criteria]
    assert sum(r["input_tokens"] for r in rows) == 1001
    assert sum(r["output_tokens"] for r in rows) == 337
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(JUDGE.cost_usd(1001, 337), abs=1e-9)
    assert all(r["item_id"] == "item-0" and r["pillar"] == "crisis" and r["judge"] == "gpt" for r in rows)
    assert all(r["request_key"] == call.request_key and r["rubric_hash"] == RUBRIC.content_hash for r in rows)
    assert {r["criterion_hash"] for r in rows} == {c.content_hash for c in RUBRIC.criteria}
    assert all(r["target"] == "bot" and r["meta"] == {"group": 0} for r in rows)


def test_verdict_rows_with_unknown_usage_have_no_cost() -> None:
    (call,) = planned()
    rows = verdict_rows(ok_result(call, None, None), self_family=False)
    assert all(r["input_tokens"] is None and r["output_tokens"] is None and r["cost_usd"] is None for r in rows)


def test_failed_rows_carry_no_score() -> None:
    (call,) = planned()
    rows = verdict_rows(failed_result(call), self_family=False)
    assert all(r["status"] == "failed" and r["score"] is None and r["error"] for r in rows)


def write_journal(path: Path, rows: list[dict[str, Any]], tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + tail, encoding="utf-8")


def test_read_journal_keeps_complete_answered_calls(tmp_path: Path) -> None:
    calls = planned(2)
    rows = verdict_rows(ok_result(calls[0]), False) + verdict_rows(ok_result(calls[1]), False)
    write_journal(tmp_path / "verdicts.jsonl", rows)
    journal = read_journal(tmp_path / "verdicts.jsonl", KIND)
    assert set(journal) == {c.call_id for c in calls}
    for call in calls:
        key, spans = journal[call.call_id]
        assert len(spans) == 1, "a call's adjacent rows share one span"
        assert key == call.request_key and len(journal.rows(spans)) == len(RUBRIC.criteria)


def test_read_journal_ignores_a_truncated_last_line_and_failed_calls(tmp_path: Path) -> None:
    calls = planned(3)
    done = verdict_rows(ok_result(calls[0]), False)
    failed = verdict_rows(failed_result(calls[1]), False)
    cut = verdict_rows(ok_result(calls[2]), False)
    last = json.dumps(cut[-1])
    path = tmp_path / "verdicts.jsonl"
    write_journal(path, done + failed + cut[:-1], tail=last[: len(last) // 2])
    journal = read_journal(path, KIND)
    assert calls[1].call_id not in journal, "a failed call is asked again on resume"
    assert len(journal.rows(journal[calls[0].call_id][1])) == len(RUBRIC.criteria)
    assert len(journal.rows(journal[calls[2].call_id][1])) == len(RUBRIC.criteria) - 1, "the cut row is not read"

    known = known_results(calls, journal, cache=None, kind=KIND)
    assert (
        known[0] is not None
        and known[0].resumed
        and [o.score for o in known[0].payload] == [c.scale.min + 1 for c in RUBRIC.criteria]
    )
    assert known[0].input_tokens == 1001 and known[0].output_tokens == 337
    assert known[1] is None, "failed before: ask again"
    assert known[2] is None, "an incomplete call is asked again"


def test_read_journal_ignores_rows_of_an_older_request_key(tmp_path: Path) -> None:
    (call,) = planned()
    rows = verdict_rows(ok_result(call), False)
    for row in rows:
        row["request_key"] = "0" * 64  # the rubric changed since
    path = tmp_path / "verdicts.jsonl"
    write_journal(path, rows)
    assert list(known_results([call], read_journal(path, KIND), cache=None, kind=KIND)) == [None]


def test_read_journal_of_a_missing_file_and_of_junk_lines(tmp_path: Path) -> None:
    assert read_journal(tmp_path / "absent.jsonl", KIND) == {}
    path = tmp_path / "verdicts.jsonl"
    path.write_bytes(b'[1, 2]\n"text"\nnull\n{"item_id": "x"}\n\xff\xfe garbage\n{"item_id": "x", "pillar": "p"')
    assert read_journal(path, KIND) == {}
