"""Offline doubles of the OpenAI and Anthropic HTTP APIs for tests and benchmarks.

``FakeLLMServer`` is imported lazily so ``python -m tests.fakeapi.server`` runs without a double import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .protocol import Answer, FaultPlan, Message, ParsedRequest, Reply, default_answerer, render_reply
from .schema import count_tokens, schema_answer

if TYPE_CHECKING:
    from .server import FakeLLMServer, RecordedRequest

__all__ = [
    "Answer",
    "FakeLLMServer",
    "FaultPlan",
    "Message",
    "ParsedRequest",
    "RecordedRequest",
    "Reply",
    "count_tokens",
    "default_answerer",
    "render_reply",
    "schema_answer",
]


def __getattr__(name: str) -> Any:
    if name in ("FakeLLMServer", "RecordedRequest"):
        from . import server

        return getattr(server, name)
    raise AttributeError(name)
