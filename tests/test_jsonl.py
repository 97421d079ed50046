"""judge.rundir.parse_jsonl, the one JSON Lines parser every reader (run files, datasets, journal) calls."""

from __future__ import annotations

import io
import json

import pytest

from judge.rundir import JsonlError, parse_jsonl


@pytest.mark.parametrize("kind", ["text", "bytes", "file"])
def test_rows_with_their_line_numbers_from_text_bytes_or_an_open_file(kind: str) -> None:
    text = '{"a": 1}\n\n  \n{"b": "x\u2028y"}\n'
    data = {"text": text, "bytes": text.encode(), "file": io.BytesIO(text.encode())}[kind]
    assert list(parse_jsonl(data, "f.jsonl")) == [(1, {"a": 1}), (4, {"b": "x\u2028y"})]


def test_a_line_separator_inside_a_string_does_not_split_the_line() -> None:
    line = json.dumps({"text": "one\u2028two\x1cthree"}, ensure_ascii=False)
    assert [row for _, row in parse_jsonl(line, "f")] == [{"text": "one\u2028two\x1cthree"}]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b'{"a": 1}\n{"a": \n', "not valid JSON (Expecting value at column 7)"),
        (b'{"a": 1}\n[1, 2]\n', "expected a JSON object, got list"),
        (b'{"a": 1}\n{"a": "\xff"}\n', "not valid UTF-8 (byte 7 of the line)"),
    ],
)
def test_the_first_bad_line_raises_naming_file_and_line(data: bytes, problem: str) -> None:
    with pytest.raises(JsonlError) as caught:
        list(parse_jsonl(data, "data/x.jsonl"))
    assert (caught.value.where, caught.value.line, caught.value.problem) == ("data/x.jsonl", 2, problem)
    assert str(caught.value) == f"data/x.jsonl:2: {problem}"
    assert isinstance(caught.value, ValueError)


def test_with_a_problems_list_every_bad_line_is_kept_and_skipped() -> None:
    problems: list[JsonlError] = []
    rows = list(parse_jsonl('1\n{"ok": true}\n{bad\n', "f", problems))
    assert rows == [(2, {"ok": True})]
    assert [(p.line, p.decoded) for p in problems] == [(1, True), (3, False)]
