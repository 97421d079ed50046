"""An answerer that replies like a well-behaved judge, for tests and the benchmark server.

It reads the response our prompt fenced off and the verdict schema of the request, and returns a valid
verdict: every criterion scored within its bounds (a pure function of model, criterion and response, so
tests can predict it) with evidence quoted verbatim from the response. Lives here rather than in the
test fixtures so ``python -m tests.fakeapi.server --judge-script`` can serve it too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

from .protocol import ParsedRequest, Reply, default_answerer

__all__ = [
    "RESPONSE_FENCE",
    "Scorer",
    "expected_score",
    "judged_response",
    "resolve_ref",
    "score_bounds",
    "scripted_answerer",
    "scripted_verdict",
    "target_or_judge_answerer",
    "verdict_criteria",
]

RESPONSE_TURN = re.compile(r"The response to evaluate, turn (?P<turn>\d+) assistant")
RESPONSE_FENCE = re.compile(r"<<<RESPONSE (?P<tag>[0-9a-f]+)>>>\n(?P<body>.*?)\n<<<END RESPONSE (?P=tag)>>>", re.S)


def judged_response(req: ParsedRequest) -> str:
    """The response our prompt fenced off, as a judge would read it."""
    for message in reversed(req.messages):
        if message.role == "user" and (match := RESPONSE_FENCE.search(message.text)):
            return match["body"]
    raise AssertionError("request carries no fenced response")


def response_turn(req: ParsedRequest) -> int:
    """The response's turn number in a prompt that numbers turns (a rubric with a conversation criterion)."""
    for message in reversed(req.messages):
        if message.role == "user" and (match := RESPONSE_TURN.search(message.text)):
            return int(match["turn"])
    raise AssertionError("request numbers no turns, yet its schema asks for turn-quoted evidence")


def quotes_turns(schema: dict[str, Any], criterion: str) -> bool:
    """Whether the criterion's evidence is (turn, role, quote) objects: a conversation criterion."""
    evidence = resolve_ref(schema, schema["properties"][criterion])["properties"]["evidence"]
    return "quote" in resolve_ref(schema, evidence.get("items", {})).get("properties", {})


def evidence_of(req: ParsedRequest, schema: dict[str, Any], criterion: str, quote: str) -> list[Any]:
    """`quote` (words of the response) as the criterion's evidence: a plain quote, or, for a conversation
    criterion, the quote with the response's turn and role."""
    if quotes_turns(schema, criterion):
        return [{"turn": response_turn(req), "role": "assistant", "quote": quote}]
    return [quote]


def resolve_ref(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """A schema node with its local `$ref` chain followed into `$defs`."""
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def score_bounds(schema: dict[str, Any], criterion: str) -> tuple[int, int]:
    score = resolve_ref(schema, schema["properties"][criterion])["properties"]["score"]
    branch = next(b for b in score.get("anyOf", [score]) if b.get("type") == "integer")
    return branch["minimum"], branch["maximum"]


def expected_score(model: str, criterion: str, response: str, low: int, high: int) -> int:
    """The score the scripted judge gives: a pure function of model, criterion and response."""
    digest = int(hashlib.sha256(f"{model}|{criterion}|{response}".encode()).hexdigest(), 16)
    return low + digest % (high - low + 1)


Scorer = Callable[[str, str, str, int, int], int]
"""(model, criterion, judged response, scale min, scale max) → the score to answer."""


READING_FIELD = "risk_reading"
SCRIPTED_READING = {"category": "suicidal_ideation", "risk_level": "high"}
"""The risk reading the scripted judge gives where a verdict asks for one (rubrics with label_applies)."""


def verdict_criteria(schema: dict[str, Any]) -> list[str]:
    """The criteria of a verdict schema: its properties that hold a score (not the risk reading)."""
    return [
        name
        for name, node in schema["properties"].items()
        if "score" in resolve_ref(schema, node).get("properties", {})
    ]


def scripted_verdict(req: ParsedRequest, score: Scorer = expected_score) -> dict[str, Any]:
    schema = req.schema or req.embedded_schema or {}  # json mode: the schema is in the prompt
    response = judged_response(req)
    verdict: dict[str, Any] = {}
    if READING_FIELD in schema["properties"]:
        verdict[READING_FIELD] = dict(SCRIPTED_READING)
    for criterion in verdict_criteria(schema):
        low, high = score_bounds(schema, criterion)
        entry: dict[str, Any] = {
            "rationale": f"{req.model} on {criterion}",
            "evidence": evidence_of(req, schema, criterion, " ".join(response.split()[:3])),
            "score": score(req.model, criterion, response, low, high),
        }
        if "applicable" in resolve_ref(schema, schema["properties"][criterion])["properties"]:
            entry["applicable"] = True
        verdict[criterion] = entry
    return verdict


def scripted_answerer(req: ParsedRequest) -> Reply:
    return Reply.structured(scripted_verdict(req))


def target_or_judge_answerer(req: ParsedRequest) -> Reply:
    """A benchmark server: requests asking for a verdict (a schema) get the scripted judge's verdict, plain
    chat requests (a target's conversation) get the server's default text answer."""
    if req.schema is None and req.embedded_schema is None:
        return default_answerer(req)
    return scripted_answerer(req)
