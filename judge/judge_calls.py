"""Judge calls as the engine sees them: journal rows (one per criterion), cache records, estimates.

A judge call answers every criterion of one pillar for one item; its journal is `verdicts.jsonl`,
one row per criterion, with the call's tokens split over the rows so that they add up exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from judge.calls.engine import CallResult, split_evenly, sum_or_none
from judge.calls.pricing import split_cost, usage_from_record, usage_from_rows, usage_record
from judge.log import VerdictRow
from judge.plan import PlannedCall
from judge.verdict import CriterionOutcome

OUTCOME_FIELDS = ("criterion", "status", "score", "rationale", "evidence", "error")


def _outcome_of_row(row: dict[str, Any]) -> dict[str, Any]:
    """A journal row's outcome fields; a conversation criterion's row also carries its quotes' turns, and a
    labelled rubric's row the judge's reading of the risk."""
    outcome = {k: row[k] for k in OUTCOME_FIELDS}
    for optional in ("evidence_turns", "reading"):
        if optional in row:
            outcome[optional] = row[optional]
    return outcome


def estimate_input_tokens(call: PlannedCall) -> int:
    """Rough prompt size (4 characters a token) plus the schema; used for TPM limits and dry runs."""
    return input_token_estimate(sum(len(m.content) for m in call.messages) + call.context.schema_chars)


def input_token_estimate(chars: int) -> int:
    """Tokens of a prompt of `chars` characters (messages and schema), at 4 characters a token."""
    return chars // 4 + 1


def estimate_output_tokens(call: PlannedCall) -> int:
    return min(call.judge.max_tokens, 150 * len(call.rubric.criteria))


def verdict_rows(result: CallResult, self_family: bool) -> list[VerdictRow]:
    """The call's lines of verdicts.jsonl: plain dicts of the declared type, no validation on the judging path."""
    call: PlannedCall = result.call
    outcomes: list[CriterionOutcome] = result.payload
    n = len(outcomes)
    inputs = split_evenly(result.input_tokens, n)
    outputs = split_evenly(result.output_tokens, n)
    cached_inputs = split_evenly(result.cached_input_tokens, n)
    cache_writes = split_evenly(result.cache_write_tokens, n)
    costs = split_cost(result.cost_usd, n)
    rows: list[VerdictRow] = []
    for outcome, input_tokens, output_tokens, cached_input, cache_write, cost in zip(
        outcomes, inputs, outputs, cached_inputs, cache_writes, costs, strict=True
    ):
        criterion = call.rubric.criterion(outcome.criterion)
        row: VerdictRow = {
            "item_id": call.item.id,
            "pillar": call.pillar,
            "criterion": outcome.criterion,
            "judge": call.judge.name,
            "provider": call.judge.provider,
            "model": call.judge.model,
            "role": call.role,
            "sample": call.sample,
            "status": outcome.status,
            "score": outcome.score,
            "rationale": outcome.rationale,
            "evidence": list(outcome.evidence),
            "error": outcome.error,
            "rubric_hash": call.context.whole.content_hash,
            "criterion_hash": criterion.content_hash,
            "prompt_hash": call.prompt_hash,
            "request_key": call.request_key,
            "cached": result.cached,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cached_input_tokens": cached_input,
            "cache_write_tokens": cache_write,
            "cost_usd": cost,
            "batch": result.batched,
            "latency_s": result.latency_s,
            "target": call.item.target,
            "self_family": self_family,
            "meta": call.item.meta,
        }
        if outcome.evidence_turns is not None:  # a conversation criterion: the turn of each quote
            row["evidence_turns"] = list(outcome.evidence_turns)
        if call.part:
            row["part"] = call.part
        if outcome.reading is not None:
            row["reading"] = outcome.reading
        rows.append(row)
    return rows


class JudgeCalls:
    """The engine's view of judge calls (see `judge.calls.engine.CallKind`)."""

    def __init__(self, self_family: Callable[[PlannedCall], bool]) -> None:
        self.self_family = self_family

    def rows(self, result: CallResult) -> list[VerdictRow]:
        return verdict_rows(result, self.self_family(result.call))

    def cache_record(self, result: CallResult) -> dict[str, Any]:
        return {
            "outcomes": [o.as_dict() for o in result.payload],
            "input_tokens": result.input_tokens,
            "output_tokens": result.output_tokens,
            **usage_record(result),
            "latency_s": result.latency_s,
        }

    def from_record(self, call: PlannedCall, record: dict[str, Any], *, cached: bool, resumed: bool) -> CallResult:
        return CallResult(
            call,
            [CriterionOutcome.from_dict(o) for o in record["outcomes"]],
            record["input_tokens"],
            record["output_tokens"],
            record["latency_s"],
            cached=cached,
            resumed=resumed,
            **usage_from_record(record, call.judge),
        )

    def journal_identity(self, row: dict[str, Any]) -> tuple[Hashable, str] | None:
        if row.get("status") == "failed":
            return None
        call_id = (row["item_id"], row["pillar"], row["judge"], row["role"], row["sample"], row.get("part", ""))
        return call_id, row["request_key"]

    def record_from_rows(self, call: PlannedCall, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
        order = [c.id for c in call.rubric.criteria]
        by_criterion = {row["criterion"]: row for row in rows}
        if set(by_criterion) != set(order):
            return None
        ordered = [by_criterion[c] for c in order]
        return {
            "outcomes": [_outcome_of_row(row) for row in ordered],
            "input_tokens": sum_or_none(row["input_tokens"] for row in ordered),
            "output_tokens": sum_or_none(row["output_tokens"] for row in ordered),
            **usage_from_rows(ordered),
            "latency_s": ordered[0]["latency_s"],
        }
