"""The `mock:` judge: a deterministic stand-in that is not a model, so that a whole run (bench, score,
panel, report) can be tried offline in seconds with no key and no server.

It builds the typed verdict an LLM judge would return, through the same pydantic model and checks
(score bounds, applicability, evidence quoted verbatim from the judged response or turn), and goes
through the one engine like any judge: cached, journalled, resumed, shown in the progress bar. Each
score is drawn from a hash of the judge's name, the criterion and the judged text, so the same item
always gets the same verdict and two mock judges disagree the way two real ones may. Every rationale
says that it is not a model. Loaded only when a mock judge has calls to make.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel

from judge.calls.engine import CallResult
from judge.calls.request_log import RequestLog
from judge.hashing import sha256_of
from judge.judges import NOT_A_MODEL, JudgeSpec
from judge.labels import CATEGORIES, RISK_LEVELS
from judge.plan import PlannedCall
from judge.rubric import Criterion
from judge.verdict import READING_FIELD, is_multi_turn, outcomes_from_verdict

QUOTE_WORDS = 8  # the evidence: the first words of the judged text


def draw(*parts: Any) -> int:
    """A deterministic number from `parts` (no state, no seed: the same parts give the same number)."""
    return int(sha256_of(list(parts))[:12], 16)


def opening_words(text: str, words: int = QUOTE_WORDS) -> str:
    """The first `words` words of `text`, joined by single spaces: a quote the evidence check accepts,
    since it compares text with its whitespace folded."""
    return " ".join(text.split()[:words])


def mock_verdict(call: PlannedCall) -> dict[str, Any]:
    """The verdict of mock judge `call.judge` on this call, as the judge's JSON answer would hold it."""
    judge, text = call.judge.model, call.judged_response
    turns = call.judged_turns
    answer: dict[str, Any] = {}
    if call.rubric.label_applies is not None:
        answer[READING_FIELD] = {
            "category": CATEGORIES[draw(judge, "category", text) % len(CATEGORIES)],
            "risk_level": RISK_LEVELS[draw(judge, "risk_level", text) % len(RISK_LEVELS)],
        }
    fields = call.context.model.model_fields
    for criterion in call.rubric.criteria:
        answer[criterion.id] = _criterion_answer(call, criterion, fields[criterion.id].annotation, turns, text)
    return answer


def _criterion_answer(
    call: PlannedCall, criterion: Criterion, model: Any, turns: tuple[tuple[str, str], ...], text: str
) -> dict[str, Any]:
    low, high = criterion.scale.min, criterion.scale.max
    score = low + draw(call.judge.model, criterion.id, text) % (high - low + 1)
    quote = opening_words(text)
    if criterion.scope == "conversation":
        evidence: list[Any] = [{"turn": len(turns), "role": turns[-1][0], "quote": quote}] if turns and quote else []
    else:
        evidence = [quote] if quote else []
    entry: dict[str, Any] = {
        "rationale": f"mock judge {call.judge.name} ({NOT_A_MODEL}): score {score} of {low}..{high} drawn from a "
        "hash of the judge, the criterion and the judged text; the quote is the text's opening words",
        "evidence": evidence,
        "score": score,
    }
    if isinstance(model, type) and issubclass(model, BaseModel) and "applicable" in model.model_fields:
        entry["applicable"] = True
    return entry


class MockJudgeWorker:
    """Answers a mock judge's calls in-process: the typed verdict, validated as a real judge's is."""

    def __init__(self, spec: JudgeSpec, default_concurrency: int, log: RequestLog | None = None) -> None:
        self.spec = spec
        self.concurrency = spec.concurrency or default_concurrency
        self.log = log

    async def ask(self, call: PlannedCall) -> CallResult:
        started = time.monotonic()
        context = {"response": call.judged_response, "turns": call.judged_turns or None}
        verdict = call.context.model.model_validate(mock_verdict(call), context=context)
        outcomes = outcomes_from_verdict(call.rubric, verdict, multi_turn=is_multi_turn(call.item.messages))
        latency = round(time.monotonic() - started, 4)
        return CallResult(call, outcomes, 0, 0, latency, cached=False, cost_usd=0.0)

    async def close(self) -> None:
        """Nothing to close: no connection."""
