"""VERA-MH's 105 recorded conversations (`trustmh bench --recorded vera-mh`): simulated users talking to
three chatbots for up to 30 messages, as `user:` / `agent:` transcripts in the mirror
(concept_paper_conversations/<run>/<id>_<persona>_<model>_runN.txt). Each is read into a line of
conversations.jsonl, the persona's risk level taken from VERA-MH's personas, and judged with the
conversation rubric like a conversation our engine ran, so a judge can be audited on real long
conversations without running a chatbot.

The run folder names the models: `p_{user model}__a_{chatbot model}__t{max turns}__r{runs}__{timestamp}`.
VERA-MH material: Copyright (c) 2025 Spring Care, Inc., MIT-style licence with a disclaimer (the
mirror's LICENSE); nothing of it is copied into this repository.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from judge.datasets import DatasetError, get_dataset
from judge.suites.personas import VERA_DATASET, vera_personas
from judge.suites.sources import read_bytes

RECORDED_NAME = "vera-mh"
FOLDER = "concept_paper_conversations/"
_SPEAKER = re.compile(r"^(user|agent):[ \t]?", re.M)
_RUN = re.compile(r"^p_(?P<user>.+?)__a_(?P<agent>.+?)__t(?P<turns>\d+)__r(?P<runs>\d+)__")
_FILE = re.compile(r"^(?P<id>[0-9a-f]+)_(?P<persona>[A-Za-z]+)_(?P<model>.+)_run(?P<run>\d+)\.txt$")
_ENDED = re.compile(r"\n\[CONVERSATION ENDED - [^\]\n]*\]\s*\Z")
"""VERA-MH's note after the last message when the simulated user ended the conversation: not a turn."""
ROLES = {"user": "user", "agent": "assistant"}


def parse_transcript(text: str, where: str) -> list[dict[str, Any]]:
    """`user:` / `agent:` turns (a speaker's label opens a line) as conversation turns in order, each with
    its exchange number; text before the first label, or two turns of one speaker in a row, is an error
    naming `where`."""
    marks = list(_SPEAKER.finditer(text))
    if not marks or text[: marks[0].start()].strip():
        raise DatasetError(f"{where}: a transcript must start with 'user:' or 'agent:' at the start of a line")
    turns: list[dict[str, Any]] = []
    for index, mark in enumerate(marks):
        end = marks[index + 1].start() if index + 1 < len(marks) else len(text)
        role = ROLES[mark.group(1)]
        if turns and turns[-1]["role"] == role:
            line = text.count("\n", 0, mark.start()) + 1
            raise DatasetError(f"{where}:{line}: two {mark.group(1)!r} turns in a row; turns must alternate")
        exchange = len(turns) // 2 + 1
        turns.append({"turn": exchange, "role": role, "text": text[mark.end() : end].strip()})
    return turns


def recorded_files() -> list[str]:
    """The registered transcript paths, in path order."""
    files = get_dataset(VERA_DATASET).files
    return sorted(p for p in files if p.startswith(FOLDER) and p.endswith(".txt"))


def conversation_line(path: str, text: str, risk_levels: Mapping[str, str]) -> dict[str, Any]:
    """One recorded transcript as a conversations.jsonl line (id, persona, risk level, target = the
    chatbot model of its run folder, user model, turns)."""
    run_folder, _, name = path[len(FOLDER) :].partition("/")
    run, file = _RUN.match(run_folder), _FILE.match(name)
    if run is None or file is None:
        raise DatasetError(f"{VERA_DATASET}/{path}: not a p_USER__a_AGENT__tN__rN__TIME/ID_PERSONA_MODEL_runN.txt "
                           "path")  # fmt: skip
    persona = file["persona"]
    if persona not in risk_levels:
        raise DatasetError(f"{VERA_DATASET}/{path}: persona {persona!r} is not in VERA-MH's personas.tsv")
    ended = _ENDED.search(text)
    turns = parse_transcript(text[: ended.start()] if ended else text, f"{VERA_DATASET}/{path}")
    return {
        "id": f"vera-{file['id']}-{persona.lower()}-run{file['run']}",
        "persona": f"vera-{persona.lower()}",
        "risk_level": risk_levels[persona],
        "risk_category": "suicide",
        "target": run["agent"],
        "user_model": run["user"],
        "turns": turns,
        "stop_reason": "ended_by_user" if ended else "max_turns",
        "source": f"{VERA_DATASET}/{path}",
    }


def recorded_conversations() -> Iterator[dict[str, Any]]:
    """Every recorded conversation, read one file at a time from the verified mirror."""
    risk_levels = {card.name: card.risk_level for card in vera_personas()}
    for path in recorded_files():
        yield conversation_line(path, read_bytes(VERA_DATASET, path).decode("utf-8"), risk_levels)
