"""A target's calls on the wire: free text, one request per turn, scripted follow-up user turns
answered in order, through the same `Connection` (SDK client, rate limits, per-request retries) as judges.

Loaded only when a run has target calls to make (`judge.calls.runner.make_workers`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from judge.calls.client import (
    BatchAPI,
    CallRequests,
    Connection,
    EmptyAnswerError,
    call_failure_reason,
    call_result,
    describe_failure,
    request_kwargs,
)
from judge.calls.engine import CallResult
from judge.calls.request_log import RequestLog
from judge.judges import JudgeSpec
from judge.respond.plan import TargetCall


class TargetWorker:
    """Sends one target's calls: free-text answers, one request per turn, follow-ups in order."""

    def __init__(self, spec: JudgeSpec, default_concurrency: int, log: RequestLog | None = None) -> None:
        self.spec = spec
        self.connection = Connection(spec)
        self.concurrency = spec.concurrency or default_concurrency
        self.log = log

    async def ask(self, call: TargetCall) -> CallResult:
        started = time.monotonic()
        requests = CallRequests(self.connection, self.log, call.request_key)
        conversation = [m.model_dump() for m in call.prompt.messages]
        turns: list[str] = []
        truncated = False
        try:
            async with asyncio.timeout(self.spec.deadline_s):
                for followup in (None, *call.prompt.followups):
                    if followup is not None:
                        conversation += [
                            {"role": "assistant", "content": turns[-1]},
                            {"role": "user", "content": followup},
                        ]
                    body = target_request(call.target, call.system_prompt, conversation)  # a prompt's decoding
                    response = await requests.send(body, call.estimate_tokens(conversation))
                    text, cut = answer_text(self.spec.wire, response)
                    if not text.strip():
                        raise EmptyAnswerError(len(turns) + 1)
                    turns.append(text)
                    truncated = truncated or cut
        except Exception as exc:
            reason = call_failure_reason(exc)
            payload = {"turns": turns, "truncated": truncated, "error": describe_failure(exc, reason, self.spec)}
            return call_result(call, payload, requests, started, reason)
        return call_result(call, {"turns": turns, "truncated": truncated, "error": None}, requests, started, None)

    def first_request(self, call: TargetCall) -> dict[str, Any]:
        """The body of the call's first turn exactly as `ask` sends it (what goes into a batch); later
        turns depend on the answer, so they are asked live."""
        return target_request(call.target, call.system_prompt, [m.model_dump() for m in call.prompt.messages])

    def batch_api(self) -> BatchAPI:
        return BatchAPI(self.connection)

    async def close(self) -> None:
        await self.connection.close()


def target_request(spec: JudgeSpec, system_prompt: str | None, conversation: list[dict[str, str]]) -> dict[str, Any]:
    """A plain chat request: OpenAI takes system turns in `messages`, Anthropic in `system`."""
    body = request_kwargs(spec)
    if spec.wire == "openai":
        system = [{"role": "system", "content": system_prompt}] if system_prompt else []
        return {**body, "messages": system + conversation}
    systems = [system_prompt] if system_prompt else []
    systems += [m["content"] for m in conversation if m["role"] == "system"]
    body["messages"] = [m for m in conversation if m["role"] != "system"]
    if systems:
        body["system"] = "\n\n".join(systems)
    return body


def answer_text(wire: str, response: Any) -> tuple[str, bool]:
    """(the answer's text, whether max_tokens cut it off) of a plain chat answer in the `wire` API's form."""
    if wire == "openai":
        if not response.choices:
            return "", False
        choice = response.choices[0]
        message = choice.message
        return (message.content or getattr(message, "refusal", None) or ""), choice.finish_reason == "length"
    text = "".join(block.text for block in response.content if getattr(block, "type", None) == "text")
    return text, response.stop_reason == "max_tokens"

