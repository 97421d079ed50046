"""A scripted simulated user and chatbot for conversation runs: deterministic answers that depend on the
conversation so far, so a resumed run can be compared with an uninterrupted one.

A model whose name starts with `sim-user` plays the person: its n-th message (n = its own earlier
messages + 1) says so, and from message `stop` on (the model name's `-stopN` suffix) it says the
persona's stop phrase. Every other model answers as the server's default chatbot (seeded by the
conversation)."""

from __future__ import annotations

import re

from tests.fakeapi.protocol import ParsedRequest, Reply, default_answerer

STOP_PHRASE = "Thank you, I'm done."
_STOP = re.compile(r"-stop(\d+)$")
_PERSONA = re.compile(r"you are (\w+), and you write")


def conversation_answerer(req: ParsedRequest) -> Reply:
    if not req.model.startswith("sim-user"):
        return default_answerer(req)
    turn = sum(m.role == "assistant" for m in req.messages) + 1
    stop = _STOP.search(req.model)
    named = _PERSONA.search(req.system)
    persona = named.group(1) if named else "someone"
    if stop and turn >= int(stop.group(1)):
        return Reply.text(f"ok I think that's enough for now. {STOP_PHRASE}")
    last = req.messages[-1].text if req.messages else ""
    return Reply.text(f"{persona} message {turn}, answering {len(last)} characters")
