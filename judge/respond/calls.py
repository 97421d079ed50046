"""Target calls as the engine sees them: one journal row per call (`calls.jsonl`), cache records, and
the response items that `trustmh score` reads (`responses.jsonl`)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from judge.calls.engine import CallResult
from judge.calls.pricing import usage_from_record, usage_from_rows, usage_record
from judge.respond.plan import TargetCall


class TargetCalls:
    """The engine's view of target calls (see `judge.calls.engine.CallKind`)."""

    def rows(self, result: CallResult) -> list[dict[str, Any]]:
        call: TargetCall = result.call
        turns: list[str] = result.payload["turns"]
        return [
            {
                "id": call.response_id,
                "prompt_id": call.prompt.id,
                "target": call.target.name,
                "provider": call.target.provider,
                "model": call.target.model,
                "sample": call.sample,
                "status": "ok" if result.ok else "failed",
                "response": turns[-1] if result.ok else None,
                "turns": turns,
                "truncated": result.payload["truncated"],
                "error": result.payload["error"],
                "failure_reason": result.failure_reason,
                "request_key": call.request_key,
                "cached": result.cached,
                "input_tokens": result.input_tokens,
                "output_tokens": result.output_tokens,
                "cached_input_tokens": result.cached_input_tokens,
                "cache_write_tokens": result.cache_write_tokens,
                "cost_usd": result.cost_usd,
                "batch": result.batched,
                "latency_s": result.latency_s,
                "meta": call.prompt.meta,
            }
        ]

    def cache_record(self, result: CallResult) -> dict[str, Any]:
        return {
            "turns": result.payload["turns"],
            "truncated": result.payload["truncated"],
            "input_tokens": result.input_tokens,
            "output_tokens": result.output_tokens,
            **usage_record(result),
            "latency_s": result.latency_s,
        }

    def from_record(self, call: TargetCall, record: dict[str, Any], *, cached: bool, resumed: bool) -> CallResult:
        payload = {"turns": list(record["turns"]), "truncated": bool(record["truncated"]), "error": None}
        return CallResult(
            call,
            payload,
            record["input_tokens"],
            record["output_tokens"],
            record["latency_s"],
            cached=cached,
            resumed=resumed,
            **usage_from_record(record, call.target),
        )

    def journal_identity(self, row: dict[str, Any]) -> tuple[Hashable, str] | None:
        if row.get("status") != "ok":
            return None
        return (row["prompt_id"], row["target"], row["sample"]), row["request_key"]

    def record_from_rows(self, call: TargetCall, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
        row = rows[-1]
        if len(row["turns"]) != 1 + len(call.prompt.followups):
            return None
        record = {k: row[k] for k in ("turns", "truncated", "input_tokens", "output_tokens", "latency_s")}
        return record | usage_from_rows([row])


def response_item(call: TargetCall, turns: list[str]) -> dict[str, Any]:
    """An answered call (its answers `turns`) as an item for `trustmh score`: the whole exchange in
    `messages`, the last answer as `response`."""
    prompt = call.prompt
    messages = [m.model_dump() for m in prompt.messages]
    for answer, followup in zip(turns, prompt.followups, strict=False):
        messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": followup}]
    item: dict[str, Any] = {"id": call.response_id}
    if prompt.pillars:
        item["pillar"] = list(prompt.pillars)
    item |= {"messages": messages, "response": turns[-1], "target": call.target.name}
    if prompt.reference is not None:
        item["reference"] = prompt.reference
    item["meta"] = {**prompt.meta, "prompt_id": prompt.id, "sample": call.sample}
    return item
