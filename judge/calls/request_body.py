"""Request bodies as JSON bytes, the way the SDKs write them, with the parts many requests share encoded once.

Every judge call of a pillar sends the same system message (the rubric, about 26 KB; for Anthropic, the
`system` blocks) and the same tool or schema definition (about 10 KB); only the item's message differs.
The SDKs encode the whole body again for each request, a tenth of a millisecond at 36 KB, on the
client's one busy core, in the path between an answer arriving and the next request leaving.
`BodyEncoder` gives the SDK the finished bytes instead (its `content=` argument), byte for byte what
its own encoder would have written: compact separators, non-ASCII characters kept, NaN refused.

Pure: no I/O.
"""

from __future__ import annotations

import json
from typing import Any

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode

MESSAGE_KEYS = ("messages", "system")  # where the long, repeated texts are
LONG_TEXT = 1024  # characters: message texts at least this long are remembered (system messages, rubrics)
REMEMBERED_TEXTS = 64  # at most this many; a run has one per pillar part, a few at most


class BodyEncoder:
    """One connection's encoder. `share` names the request parts a client reuses unchanged for many
    requests (instructor's tools or schema keys for one verdict model); `encode` then writes a body from
    the remembered JSON of those parts and of long message texts, and encodes the rest as it comes.

    Shared parts are recognised by identity, and held here so that the identity stays theirs: they must
    not be changed after `share`. Raises TypeError for a value JSON cannot hold (as `json.dumps` does).
    """

    def __init__(self) -> None:
        self._shared: dict[int, tuple[Any, str]] = {}
        self._texts: dict[str, str] = {}

    def share(self, parts: dict[str, Any]) -> None:
        for value in parts.values():
            if id(value) not in self._shared:
                self._shared[id(value)] = (value, _encode(value))

    def encode(self, body: dict[str, Any]) -> bytes:
        if not _text_keys(body):
            return _encode(body).encode("utf-8")
        fields = []
        for key, value in body.items():
            if key in MESSAGE_KEYS and isinstance(value, list):  # messages, or Anthropic's system blocks
                encoded = "[" + ",".join(map(self._message, value)) + "]"
            elif key in MESSAGE_KEYS:
                encoded = self._text(value)
            else:
                encoded = self._value(value)
            fields.append(_encode(key) + ":" + encoded)
        return ("{" + ",".join(fields) + "}").encode("utf-8")

    def _value(self, value: Any) -> str:
        shared = self._shared.get(id(value))
        if shared is not None and shared[0] is value:
            return shared[1]
        return _encode(value)

    def _message(self, message: Any) -> str:
        if not isinstance(message, dict) or not _text_keys(message):
            return _encode(message)
        return "{" + ",".join(_encode(key) + ":" + self._text(value) for key, value in message.items()) + "}"

    def _text(self, value: Any) -> str:
        if not isinstance(value, str) or len(value) < LONG_TEXT:
            return _encode(value)
        if (encoded := self._texts.get(value)) is None:
            if len(self._texts) >= REMEMBERED_TEXTS:
                self._texts.clear()
            encoded = self._texts[value] = _encode(value)
        return encoded


def _text_keys(mapping: dict[Any, Any]) -> bool:
    """Whether every key is a string: json writes other keys (numbers, None) as strings of its own making."""
    return all(isinstance(key, str) for key in mapping)
