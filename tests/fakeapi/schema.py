"""Deterministic JSON-schema instance generator and the fake server's token-count rule.

Kept free of any HTTP code so other tests can compute expected answers / token numbers directly.
"""

from __future__ import annotations

import hashlib
import math
import random
import uuid
from typing import Any

__all__ = ["count_tokens", "schema_answer"]

_MAX_DEPTH = 6
_QUOTE_HINTS = ("evidence", "quote", "excerpt", "citation", "span")


def count_tokens(text: str) -> int:
    """The fake "tokenizer": ceil(len(text) / 4) characters per token (0 for empty text).

    Every usage number the server reports is derived from this, so cost accounting can be asserted exactly.
    """
    return math.ceil(len(text) / 4)


def schema_answer(schema: dict[str, Any], seed: str, *, quote_source: str | None = None) -> Any:
    """Build a valid instance of ``schema`` deterministically from ``seed``.

    Resolves local ``$ref`` (``#/$defs/...``, ``#/definitions/...``), ``allOf``, ``anyOf``/``oneOf``
    (nullable included), ``enum``/``const``, integer/number bounds (incl. exclusive and ``multipleOf``),
    arrays (``minItems``/``maxItems``/``uniqueItems``/``prefixItems``), string lengths and common formats,
    booleans. String fields whose name suggests a quotation (evidence, quote, excerpt, …) are filled with a
    verbatim run of words from ``quote_source`` when one is given, so "quote must appear in the response"
    validators pass. ``pattern`` is not honoured.
    """
    rng = random.Random(hashlib.sha256(seed.encode("utf-8")).digest())
    return _Generator(schema, rng, quote_source).gen(schema, name="", depth=0)


class _Generator:
    """Recursive walker; one instance per answer so the RNG sequence is reproducible."""

    def __init__(self, root: dict[str, Any], rng: random.Random, quote_source: str | None) -> None:
        self.root = root
        self.rng = rng
        self.quote_words = (quote_source or "").split()

    # -- schema plumbing -------------------------------------------------------------------------
    def resolve(self, s: Any) -> Any:
        """Follow ``$ref`` chains and flatten ``allOf`` so the generator sees one plain schema."""
        seen = 0
        while isinstance(s, dict) and "$ref" in s and seen < 50:
            seen += 1
            target = self._pointer(s["$ref"])
            extra = {k: v for k, v in s.items() if k != "$ref"}
            s = {**target, **extra} if extra else target
        if isinstance(s, dict) and "allOf" in s:
            merged: dict[str, Any] = {k: v for k, v in s.items() if k != "allOf"}
            for part in s["allOf"]:
                part = self.resolve(part)
                if not isinstance(part, dict):
                    continue
                for key, value in part.items():
                    if key == "properties":
                        merged["properties"] = {**merged.get("properties", {}), **value}
                    elif key == "required":
                        merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
                    else:
                        merged.setdefault(key, value)
            s = merged
        return s

    def _pointer(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref is supported, got {ref!r}")
        node: Any = self.root
        for raw in ref[1:].split("/"):
            if not raw:
                continue
            key = raw.replace("~1", "/").replace("~0", "~")
            node = node[int(key)] if isinstance(node, list) else node[key]
        return node

    @staticmethod
    def _is_null(s: Any) -> bool:
        return isinstance(s, dict) and (s.get("type") == "null" or s.get("const", 0) is None)

    # -- generation ------------------------------------------------------------------------------
    def gen(self, s: Any, name: str, depth: int) -> Any:
        s = self.resolve(s)
        if s is True or s == {} or not isinstance(s, dict):
            return self.string({}, name)
        if "const" in s:
            return s["const"]
        if "enum" in s:
            return self.rng.choice(list(s["enum"]))
        for key in ("anyOf", "oneOf"):
            if key in s:
                options = [self.resolve(o) for o in s[key]]
                non_null = [o for o in options if not self._is_null(o)]
                if (depth >= _MAX_DEPTH and len(non_null) < len(options)) or not non_null:
                    return None
                base = {k: v for k, v in s.items() if k != key}
                return self.gen({**base, **self.rng.choice(non_null)}, name, depth)
        typ = s.get("type")
        if isinstance(typ, list):
            non_null_types = [t for t in typ if t != "null"]
            if not non_null_types or (depth >= _MAX_DEPTH and "null" in typ):
                return None
            typ = self.rng.choice(non_null_types)
        if typ is None:
            if "properties" in s or "additionalProperties" in s:
                typ = "object"
            elif "items" in s or "prefixItems" in s:
                typ = "array"
            else:
                typ = "string"
        if typ == "object":
            return self.obj(s, depth)
        if typ == "array":
            return self.array(s, name, depth)
        if typ == "integer":
            return self.integer(s)
        if typ == "number":
            return self.number(s)
        if typ == "boolean":
            return self.rng.random() < 0.5
        if typ == "null":
            return None
        return self.string(s, name)

    def obj(self, s: dict[str, Any], depth: int) -> dict[str, Any]:
        props: dict[str, Any] = s.get("properties", {})
        required = set(s.get("required", []))
        out: dict[str, Any] = {}
        for key, sub in props.items():
            if depth >= _MAX_DEPTH and key not in required:
                continue
            out[key] = self.gen(sub, key, depth + 1)
        extra = s.get("additionalProperties")
        if not props and isinstance(extra, dict):
            for i in range(max(int(s.get("minProperties", 1)), 1 if depth < _MAX_DEPTH else 0)):
                out[f"key_{i}"] = self.gen(extra, f"key_{i}", depth + 1)
        return out

    def array(self, s: dict[str, Any], name: str, depth: int) -> list[Any]:
        prefix = s.get("prefixItems", [])
        lo = int(s.get("minItems", 0))
        hi = int(s.get("maxItems", max(lo, 1) + 2))
        n = lo if depth >= _MAX_DEPTH else self.rng.randint(min(max(lo, 1), hi), min(hi, max(lo, 1) + 2))
        n = max(n, len(prefix)) if "maxItems" not in s else min(max(n, len(prefix)), hi)
        out: list[Any] = [self.gen(p, name, depth + 1) for p in prefix[:n]]
        items = self.resolve(s.get("items", {}))
        if items is False:
            return out
        unique = bool(s.get("uniqueItems"))
        if unique and isinstance(items, dict) and "enum" in items:
            pool = [v for v in items["enum"] if v not in out]
            return out + self.rng.sample(pool, min(n - len(out), len(pool)))
        attempts = 0
        while len(out) < n and attempts < 50 * (n + 1):
            attempts += 1
            value = self.gen(items, name, depth + 1)
            if unique and value in out:
                continue
            out.append(value)
        return out

    def integer(self, s: dict[str, Any]) -> int:
        lo: int | None = None
        hi: int | None = None
        if "minimum" in s:
            lo = math.ceil(s["minimum"])
        if "exclusiveMinimum" in s and not isinstance(s["exclusiveMinimum"], bool):
            lo = max(lo if lo is not None else -(10**18), math.floor(s["exclusiveMinimum"]) + 1)
        if "maximum" in s:
            hi = math.floor(s["maximum"])
        if "exclusiveMaximum" in s and not isinstance(s["exclusiveMaximum"], bool):
            hi = min(hi if hi is not None else 10**18, math.ceil(s["exclusiveMaximum"]) - 1)
        if lo is None and hi is None:
            lo, hi = 0, 100
        elif lo is None:
            assert hi is not None
            lo = hi - 100
        elif hi is None:
            hi = lo + 100
        step = s.get("multipleOf")
        if isinstance(step, int) and step > 0:
            first = math.ceil(lo / step)
            last = math.floor(hi / step)
            if first <= last:
                return self.rng.randint(first, last) * step
        return self.rng.randint(lo, hi)

    def number(self, s: dict[str, Any]) -> float:
        def bound(inclusive: str, exclusive: str) -> float | None:
            values = [float(s[k]) for k in (inclusive, exclusive) if k in s and not isinstance(s[k], bool)]
            return values[0] if values else None

        lo = bound("minimum", "exclusiveMinimum")
        hi = bound("maximum", "exclusiveMaximum")
        if lo is None and hi is None:
            lo, hi = 0.0, 100.0
        elif lo is None:
            assert hi is not None
            lo = hi - 100.0
        elif hi is None:
            hi = lo + 100.0
        value = round(self.rng.uniform(lo, hi), 3)
        # Rounding may land on (or past) an exclusive bound: fall back to the midpoint.
        if value < lo or value > hi or value in (s.get("exclusiveMinimum"), s.get("exclusiveMaximum")):
            value = (lo + hi) / 2
        return value

    def string(self, s: dict[str, Any], name: str) -> str:
        fmt = s.get("format")
        tag = self.rng.getrandbits(32)
        if fmt == "date-time":
            text = f"2024-01-{1 + tag % 28:02d}T{tag % 24:02d}:00:00Z"
        elif fmt == "date":
            text = f"2024-01-{1 + tag % 28:02d}"
        elif fmt == "time":
            text = f"{tag % 24:02d}:{tag % 60:02d}:00"
        elif fmt == "email":
            text = f"user{tag % 10000}@example.com"
        elif fmt in ("uri", "url"):
            text = f"https://example.com/{tag:08x}"
        elif fmt == "uuid":
            text = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        elif self.quote_words and any(h in name.lower() for h in _QUOTE_HINTS):
            k = self.rng.randint(min(3, len(self.quote_words)), min(8, len(self.quote_words)))
            start = self.rng.randint(0, len(self.quote_words) - k)
            text = " ".join(self.quote_words[start : start + k])
            max_len = s.get("maxLength")
            while max_len is not None and len(text) > max_len and " " in text:
                text = text.rsplit(" ", 1)[0]
        else:
            text = f"fake {name or 'text'} {tag:08x}"
        min_len = int(s.get("minLength", 0))
        if len(text) < min_len:
            text = text + "x" * (min_len - len(text))
        if "maxLength" in s:
            text = text[: int(s["maxLength"])]
        return text
