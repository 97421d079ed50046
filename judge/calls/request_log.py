"""The run's log of answers received in the middle of a call (between a call's first request and its
journal line), so that a run killed mid-call replays them on restart instead of sending them again.

Calls that make more than one request (re-asks, follow-up turns) write here, and so does `--batch`: a
provider batch's answers wait here until their calls replay them. The file is read once when a run
starts and deleted when the run ends: by then every call is in the journal.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


class RequestLog:
    """Append-only JSONL of {key, answer}; owner-only, like every file that may hold a conversation."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._replay: dict[str, dict[str, Any]] = {}
        if path.exists():
            with path.open("rb") as handle:
                for raw in handle:
                    try:
                        entry = json.loads(raw)
                        self._replay[entry["key"]] = entry["answer"]
                    except (ValueError, KeyError, TypeError):
                        continue  # a line cut short by a kill
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._handle = os.fdopen(fd, "a", encoding="utf-8")

    def get(self, key: str) -> dict[str, Any] | None:
        return self._replay.get(key)

    def put(self, key: str, answer: dict[str, Any]) -> None:
        self._handle.write(json.dumps({"key": key, "answer": answer}, ensure_ascii=False) + "\n")
        self._handle.flush()

    def offer(self, answers: Mapping[str, dict[str, Any]]) -> None:
        """Log answers obtained before their calls start (a provider batch's), to be replayed by this
        process as well as after a restart; on disk before the caller moves on."""
        for key, answer in answers.items():
            self._handle.write(json.dumps({"key": key, "answer": answer}, ensure_ascii=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._replay.update(answers)

    def forget(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._replay.pop(key, None)

    def close(self, *, finished: bool) -> None:
        """Close the file; a finished run (every call journalled) deletes it."""
        self._handle.close()
        if finished:
            self.path.unlink(missing_ok=True)
