"""Strategies that damage valid records: wrong types, odd text, raw tokens no serializer writes (huge
numbers, NaN, lone surrogate escapes, deep nesting), and byte-level damage (BOM, CRLF, truncation,
invalid UTF-8, duplicate keys). Each reader's test builds its valid records and calls these."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

ODD_TEXT = ["", " ", "\t", "\x00", "\u202e", "\u2066", "\ufeff", "e\u0301", "\U0001f600", "\u2028", "\x85",
            "\x0c", "\r", "\n", "'", '"', ",", ";", "\\", "=cmd", "null", "1", "-1", "[", "{", "…"]

text = st.one_of(st.sampled_from(ODD_TEXT), st.text(max_size=12))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**30), max_value=10**30),
                    st.floats(), text)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=6
)

JSON_RAW = ["1" * 5000, "1" * 400, "1e999", "-1e999", "NaN", "-Infinity", '"\\ud800"', '"a\\udc80"',
            "[" * 3000 + "]" * 3000, '{"a":' * 3000 + "1" + "}" * 3000, "0x10", "'x'", "tru", "[1,]", '"\\x"']


class Raw:
    """A token spliced into the serialized text in place of a placeholder string."""

    def __init__(self, token: str) -> None:
        self.token = token


def raw_values(tokens: list[str]) -> st.SearchStrategy[Raw]:
    return st.sampled_from(tokens).map(Raw)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*prefix, index))
    return out


@st.composite
def mutated(draw: st.DrawFn, record: Any, fields: list[str], values: st.SearchStrategy[Any]) -> Any:
    """`record` with up to three changes: a value replaced or deleted anywhere inside it, a field added."""
    record = _copy(record)
    for _ in range(draw(st.integers(0, 3))):
        paths = _paths(record)
        op = draw(st.sampled_from(["replace", "delete", "add"]))
        if op == "add" or not paths:
            if isinstance(record, dict):
                record[draw(st.sampled_from(fields) | text)] = draw(values)
            continue
        *parent_path, last = draw(st.sampled_from(paths))
        parent = record
        for key in parent_path:
            parent = parent[key]
        if op == "delete":
            del parent[last]
        else:
            parent[last] = draw(values)
    return record


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def splice(serialize: Any, record: Any) -> str:
    """Serialize `record`, then put each Raw token where its placeholder was written."""
    tokens: dict[str, str] = {}

    def swap(value: Any) -> Any:
        if isinstance(value, Raw):
            key = f"RAWTOKEN{len(tokens)}X"
            tokens[key] = value.token
            return key
        if isinstance(value, dict):
            return {swap(k) if isinstance(k, Raw) else k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    out = serialize(swap(record))
    for key, token in tokens.items():
        out = out.replace(f'"{key}"', token).replace(f"'{key}'", token).replace(key, token)
    return out


BAD_BYTES = [b"\x80", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"\x00", b"\r", b"\n", b'"', b"\\"]


@st.composite
def damaged(draw: st.DrawFn, lines: list[str]) -> bytes:
    """The lines joined as a file, then damaged at the byte level (or not: valid files must pass too)."""
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    data = "".join(line + eol for line in lines).encode("utf-8", "surrogatepass")
    for _ in range(draw(st.integers(0, 2))):
        op = draw(st.sampled_from(["bom", "truncate", "insert", "dupkey", "blank", "binary"]))
        at = draw(st.integers(0, len(data)))
        if op == "bom":
            data = b"\xef\xbb\xbf" + data
        elif op == "truncate":
            data = data[:at]
        elif op == "insert":
            data = data[:at] + draw(st.sampled_from(BAD_BYTES) | st.binary(max_size=4)) + data[at:]
        elif op == "dupkey" and b"{" in data:
            first = data.index(b"{") + 1
            data = data[:first] + b'"id": "dup", ' + data[first:]
        elif op == "blank":
            data = data[:at] + b"\n  \n" + data[at:]
        elif op == "binary":
            data = draw(st.binary(max_size=64))
    return data
