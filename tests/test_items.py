"""Item readers: good JSONL/CSV, and one test per class of bad input with its exact FILE:LINE message."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from judge.items import (
    DEFAULT_MAX_RESPONSE_CHARS,
    Item,
    Message,
    Rejection,
    format_rejections,
    item_file_problems,
    parse_jsonl_line,
)
from tests.conftest import read_items

KNOWN = ("crisis", "safety", "ethics")
GOOD: dict[str, Any] = {"id": "a1", "prompt": "I feel low.", "response": "I'm sorry you feel that way."}


def line(**changes: Any) -> str:
    """A JSONL line: GOOD with fields changed (a value of ... removes the field)."""
    record = {**GOOD, **changes}
    return json.dumps({k: v for k, v in record.items() if v is not ...})


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def only_rejection(path: Path, **kwargs: Any) -> str:
    result = read_items([path], KNOWN, **kwargs)
    assert len(result.rejections) == 1, result.rejections
    return str(result.rejections[0])


def reject(text: str, **kwargs: Any) -> str:
    result = parse_jsonl_line(text, "in.jsonl", 7, KNOWN, **kwargs)
    assert isinstance(result, Rejection), result
    return str(result)


# --- good input ----------------------------------------------------------------------------------------


def test_good_jsonl_all_fields_blank_lines_and_crlf(tmp_path: Path) -> None:
    full = {
        "id": "x",
        "pillar": ["crisis", "safety"],
        "messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Help"}],
        "response": "I'm here.",
        "target": "bot-v2",
        "reference": {"ideal": "escalate"},
        "meta": {"group": "teen", "variant": 2},
    }
    text = line() + "\r\n\r\n   \n" + json.dumps(full) + "\n" + line(id="b", pillar="ethics", target=None) + "\n"
    result = read_items([write(tmp_path, "in.jsonl", text)], KNOWN)
    assert result.rejections == []
    first, second, third = result.items
    assert first.messages == (Message(role="user", content="I feel low."),)
    assert first.pillars is None and first.meta == {} and first.source.endswith("in.jsonl:1")
    assert second.pillars == ("crisis", "safety") and second.target == "bot-v2"
    assert second.reference == {"ideal": "escalate"} and second.meta == {"group": "teen", "variant": 2}
    assert [m.role for m in second.messages] == ["system", "user"] and second.source.endswith(":4")
    assert third.pillars == ("ethics",) and third.target is None and third.source.endswith(":5")


@pytest.mark.parametrize("suffix", [".ndjson", ".json", ".JSONL"])
def test_other_json_lines_extensions(tmp_path: Path, suffix: str) -> None:
    assert len(read_items([write(tmp_path, "in" + suffix, line())], KNOWN).items) == 1


def test_bom_at_start_is_accepted(tmp_path: Path) -> None:
    jsonl = write(tmp_path, "in.jsonl", b"\xef\xbb\xbf" + line().encode() + b"\n")
    csv_file = write(tmp_path, "in.csv", b"\xef\xbb\xbfid,prompt,response\r\nc1,hi,hello\r\n")
    result = read_items([jsonl, csv_file], KNOWN)
    assert result.rejections == []
    assert [i.id for i in result.items] == ["a1", "c1"]


def test_good_csv_prompt_messages_pillars_meta_and_multiline_cells(tmp_path: Path) -> None:
    messages = json.dumps([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
    csv_messages = messages.replace('"', '""')
    text = (
        "id,pillar,prompt,messages,response,target,reference,meta\n"
        'r1,crisis;safety,"I feel\nreally\nlow",,"Two\nlines",bot,,"{""g"": 1}"\n'
        "\n"
        f'r2,"[""ethics""]",,"{csv_messages}",ok,,"{{""gold"": 1}}",\n'
        "r3,,hi,,fine,,{not json,\n"
        ",,,,,,,\n"
    )
    path = write(tmp_path, "in.csv", text)
    result = read_items([path], KNOWN)
    assert result.rejections == []
    r1, r2, r3 = result.items
    assert r1.source == f"{path}:2" and r1.pillars == ("crisis", "safety")
    assert r1.messages == (Message(role="user", content="I feel\nreally\nlow"),)
    assert r1.response == "Two\nlines" and r1.target == "bot" and r1.meta == {"g": 1} and r1.reference is None
    assert r2.source == f"{path}:7" and r2.pillars == ("ethics",) and len(r2.messages) == 2
    assert r2.reference == {"gold": 1} and r2.target is None and r2.meta == {}
    assert r3.source == f"{path}:8" and r3.reference == "{not json"


def test_item_is_frozen_and_hashable() -> None:
    item = parse_jsonl_line(json.dumps(GOOD), "f.jsonl", 1, KNOWN)
    assert isinstance(item, Item)
    assert item in {item}
    with pytest.raises(ValidationError):
        item.id = "other"  # type: ignore[misc]


def test_jsonl_line_parser_on_strings() -> None:
    assert parse_jsonl_line("  \t", "f.jsonl", 3, KNOWN) is None
    item = parse_jsonl_line(line(), "f.jsonl", 3, KNOWN)
    assert isinstance(item, Item) and item.source == "f.jsonl:3"


# --- bad JSON lines ------------------------------------------------------------------------------------


def test_broken_json_reports_parser_message_and_column() -> None:
    msg = reject('{"id": "a1", "response": "x",}')
    assert msg.startswith("in.jsonl:7: invalid JSON: ")
    assert "Expecting property name" in msg and "column 30" in msg


def test_parser_messages_ending_in_at_are_not_doubled() -> None:
    msg = reject('{"id": "a1", "response": "never closed}')
    assert "Unterminated string starting at column 26" in msg and "at at" not in msg


def test_pretty_printed_json_gets_a_hint() -> None:
    assert "pretty-printed" in reject("{")


def test_duplicate_key_in_object() -> None:
    msg = reject('{"id": "a", "prompt": "p", "response": "x", "response": "y"}')
    assert msg.startswith("in.jsonl:7: duplicate key `response`")


@pytest.mark.parametrize(
    ("value", "words"),
    [("NaN", "`NaN` is not a JSON number"), ("-Infinity", "`-Infinity` is not a JSON number"),
     ("Infinity", "`Infinity` is not a JSON number"), ("1e999", "the number 1e999 is too large")],
)
def test_nan_and_infinity_are_refused_at_input_since_no_output_could_hold_them(value: str, words: str) -> None:
    msg = reject('{"id": "a", "prompt": "p", "response": "x", "meta": {"score": ' + value + "}}")
    assert msg.startswith(f"in.jsonl:7: {words}")


def test_nan_in_a_csv_meta_cell_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", 'id,prompt,response,meta\na,hi,ok,"{""x"": NaN}"\n')
    assert only_rejection(path).startswith(f"{path}:2: field `meta`: the CSV cell must hold a JSON object (`NaN`")


def test_unpaired_surrogate_escape_is_refused_before_it_breaks_utf8_output() -> None:
    msg = reject('{"id": "a", "prompt": "p", "response": "ok \\ud83d\\ude00 then \\ud800 bad"}')
    assert msg == "in.jsonl:7: invalid text: the escape `\\ud800` is half of a surrogate pair, not a character"
    paired = parse_jsonl_line('{"id": "a", "prompt": "p", "response": "\\ud83d\\ude00"}', "f", 1, KNOWN)
    assert isinstance(paired, Item) and paired.response == "\U0001f600"


@pytest.mark.parametrize(("text", "kind"), [("[1, 2]", "a list"), ('"hello"', "'hello'"), ("42", "number 42")])
def test_json_that_is_not_an_object(text: str, kind: str) -> None:
    assert reject(text).startswith(f"in.jsonl:7: expected a JSON object, got {kind}")


def test_json_array_hint() -> None:
    assert "one object per line, not a JSON array" in reject("[" + line() + "]")


# --- required fields -----------------------------------------------------------------------------------


def test_missing_id() -> None:
    assert reject(line(id=...)) == "in.jsonl:7: missing required field `id`"


def test_missing_response() -> None:
    assert reject(line(response=...)) == "in.jsonl:7: missing required field `response`"


def test_neither_messages_nor_prompt() -> None:
    msg = reject(line(prompt=...))
    assert msg == "in.jsonl:7: missing `messages` (or `prompt`, the shorthand for a single user turn)"


def test_both_messages_and_prompt() -> None:
    msg = reject(line(messages=[{"role": "user", "content": "hi"}]))
    assert msg.startswith("in.jsonl:7: both `messages` and `prompt` are given; keep only one")
    assert "`messages` for a conversation" in msg and "`prompt` for a single user turn" in msg


def test_empty_response() -> None:
    assert reject(line(response="")) == "in.jsonl:7: field `response`: is empty"


def test_whitespace_only_response() -> None:
    assert reject(line(response=" \n\t ")) == "in.jsonl:7: field `response`: contains only whitespace"


def test_empty_prompt_and_empty_message_content() -> None:
    assert reject(line(prompt="")) == "in.jsonl:7: field `prompt`: is empty"
    bad = line(prompt=..., messages=[{"role": "user", "content": "  "}])
    assert reject(bad) == "in.jsonl:7: field `messages[0].content`: contains only whitespace"
    assert reject(line(prompt=..., messages=[])) == "in.jsonl:7: field `messages`: must not be empty"


def test_unknown_pillar_names_the_known_ones() -> None:
    msg = reject(line(pillar=["crisis", "crises"]))
    assert msg == "in.jsonl:7: unknown pillar 'crises' (known pillars: crisis, ethics, safety)"


def test_empty_pillar_list() -> None:
    assert "field `pillar`: is an empty list" in reject(line(pillar=[]))


# --- wrong types ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"id": 42}, "field `id`: must be a string (got number 42)"),
        ({"id": None}, "field `id`: must be a string (got null)"),
        ({"response": ["a"]}, "field `response`: must be a string (got a list)"),
        ({"prompt": 3}, "field `prompt`: must be a string (got number 3)"),
        ({"prompt": ..., "messages": "hi"}, "field `messages`: must be a list (got 'hi')"),
        ({"prompt": ..., "messages": {"role": "user"}}, "field `messages`: must be a list (got an object)"),
        (
            {"prompt": ..., "messages": [{"content": "hi"}]},
            "missing required field `messages[0].role`",
        ),
        (
            {"prompt": ..., "messages": [{"role": "user"}]},
            "missing required field `messages[0].content`",
        ),
        (
            {"prompt": ..., "messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]},
            "field `messages[1].role`: must be one of system, user, assistant (got 'bot')",
        ),
        (
            {"prompt": ..., "messages": ["hi"]},
            "field `messages[0]`: must be an object with `role` and `content` (got 'hi')",
        ),
        (
            {"prompt": ..., "messages": [{"role": "user", "content": "a", "name": "x"}]},
            "field `messages[0]`: unknown key `name`",
        ),
        ({"pillar": 3}, "field `pillar`: must be a string or a list of strings (got number 3)"),
        ({"pillar": ["crisis", 1]}, "field `pillar`: must be a string or a list of strings (got number 1"),
        ({"meta": ["g"]}, "field `meta`: must be an object (got a list)"),
        ({"meta": "teen"}, "field `meta`: must be an object (got 'teen')"),
        ({"target": 5}, "field `target`: must be a string (got number 5)"),
        ({"reference": 5}, "field `reference`: must be a string or an object (got number 5)"),
    ],
)
def test_wrong_types(changes: dict[str, Any], expected: str) -> None:
    assert reject(line(**changes)).startswith(f"in.jsonl:7: {expected}")


def test_several_problems_in_one_record_are_all_named_once() -> None:
    msg = reject(line(id=1, target=2, pillar="nope"))
    assert msg.startswith("in.jsonl:7: ")
    assert msg.count(";") == 2
    assert "unknown pillar 'nope'" in msg and "field `id`" in msg and "field `target`" in msg


def test_unknown_field_names_it_and_lists_accepted_fields() -> None:
    msg = reject(line(response=..., respone="typo"))
    assert msg.startswith("in.jsonl:7: unknown field `respone` (did you mean `response`?); accepted fields: id,")
    assert "pillar, messages, prompt, response, target, reference, meta" in msg


def test_null_optional_fields_are_absent() -> None:
    item = parse_jsonl_line(json.dumps({**GOOD, "pillar": None, "meta": None, "reference": None}), "f", 1, KNOWN)
    assert isinstance(item, Item) and item.meta == {} and item.pillars is None


# --- file-level problems -------------------------------------------------------------------------------


def test_duplicate_id_within_and_across_files(tmp_path: Path) -> None:
    first = write(tmp_path, "a.jsonl", line() + "\n" + line(id="b") + "\n" + line() + "\n")
    second = write(tmp_path, "b.csv", "id,prompt,response\nc,hi,ok\nb,hi,ok\n")
    result = read_items([first, second], KNOWN)
    assert [i.id for i in result.items] == ["a1", "b", "c"]
    assert [str(r) for r in result.rejections] == [
        f"{first}:3: duplicate id 'a1': first used at {first}:1",
        f"{second}:3: duplicate id 'b': first used at {first}:2",
    ]
    assert result.rejections[1].item_id == "b"


def test_ids_equal_once_nfc_normalised_are_duplicates(tmp_path: Path) -> None:
    composed, decomposed = "caf\u00e9", "cafe\u0301"  # the same word, typed two ways
    path = write(tmp_path, "a.jsonl", line(id=composed) + "\n" + line(id=decomposed) + "\n")
    result = read_items([path], KNOWN)
    assert [i.id for i in result.items] == [composed]
    assert [str(r) for r in result.rejections] == [
        f"{path}:2: duplicate id {decomposed!r}: first used at {path}:1 as {composed!r}, the same id once "
        "Unicode-normalised (NFC)"
    ]


@pytest.mark.parametrize(("item_id", "code"), [("a\x00b", "U+0000"), ("x\u202etxt.exe", "U+202E"), ("a\tb", "U+0009")])
def test_control_characters_in_an_id_are_refused(tmp_path: Path, item_id: str, code: str) -> None:
    path = write(tmp_path, "a.jsonl", line(id=item_id) + "\n")
    (rejection,) = read_items([path], KNOWN).rejections
    assert str(rejection).startswith(f"{path}:1: field `id`: holds the control character {code}")


def test_duplicate_of_a_rejected_record_is_also_named(tmp_path: Path) -> None:
    path = write(tmp_path, "a.jsonl", line(response="") + "\n" + line(target=3) + "\n")
    second = read_items([path], KNOWN).rejections[1]
    assert str(second) == (
        f"{path}:2: field `target`: must be a string (got number 3); duplicate id 'a1': first used at {path}:1"
    )


def test_non_utf8_line_reports_offset_and_other_lines_are_still_checked(tmp_path: Path) -> None:
    bad = b'{"id": "b", "prompt": "caf' + b"\xe9" + b'", "response": "x"}'
    path = write(tmp_path, "in.jsonl", line().encode() + b"\n" + bad + b"\n" + line(id="c", meta=1).encode() + b"\n")
    result = read_items([path], KNOWN)
    assert [i.id for i in result.items] == ["a1"]
    offset = len(line()) + 1 + 26
    assert [str(r) for r in result.rejections] == [
        f"{path}:2: not valid UTF-8: byte 0xe9 at byte 26 of the line (byte {offset} of the file); "
        "save the file as UTF-8",
        f"{path}:3: field `meta`: must be an object (got number 1)",
    ]


def test_truncated_last_line(tmp_path: Path) -> None:
    path = write(tmp_path, "in.jsonl", line() + "\n" + line(id="b")[:25])
    msg = only_rejection(path)
    assert msg.startswith(f"{path}:2: truncated last line (file ends mid-record); invalid JSON: ")


def test_last_line_without_newline_is_fine_when_complete(tmp_path: Path) -> None:
    result = read_items([write(tmp_path, "in.jsonl", line() + "\n" + line(id="b"))], KNOWN)
    assert result.rejections == [] and len(result.items) == 2


def test_broken_line_before_the_end_is_not_called_truncated(tmp_path: Path) -> None:
    path = write(tmp_path, "in.jsonl", line()[:25] + "\n" + line(id="b") + "\n")
    assert only_rejection(path).startswith(f"{path}:1: invalid JSON: ")


def test_huge_response_states_size_limit_and_flag(tmp_path: Path) -> None:
    big = "x" * 3_000_000
    path = write(tmp_path, "in.jsonl", line(response=big) + "\n")
    assert only_rejection(path) == (
        f"{path}:1: field `response`: is 3,000,000 characters, over the limit of 100,000 characters; "
        "shorten it or raise the limit with `max_response_chars=`"  # the CLI shows --max-response-chars
    )
    assert DEFAULT_MAX_RESPONSE_CHARS == 100_000
    assert read_items([path], KNOWN, max_response_chars=3_000_000).items[0].response == big


def test_huge_csv_cell_gets_the_size_message_not_a_csv_error(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "id,prompt,response\na,hi," + "y" * 200_000 + "\n")
    assert "is 200,000 characters, over the limit of 100,000" in only_rejection(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    result = read_items([tmp_path / "nope.jsonl", tmp_path], KNOWN)
    assert [str(r) for r in result.rejections] == [
        f"{tmp_path / 'nope.jsonl'}:0: file not found",
        f"{tmp_path}:0: is a directory, not an items file",
    ]


def test_unknown_extension(tmp_path: Path) -> None:
    path = write(tmp_path, "items.txt", line())
    assert only_rejection(path) == (
        f"{path}:0: unsupported file extension '.txt'; accepted: .jsonl, .ndjson, .json, .csv, .tsv, "
        "or - for standard input"
    )


def test_tsv_items(tmp_path: Path) -> None:
    rows = ["id\tprompt\tresponse\tmeta", 'a\tI feel low, really.\tI hear you.\t{"k": 1}', "b\thi\t\t"]
    path = write(tmp_path, "in.tsv", "\n".join(rows) + "\n")
    result = read_items([path], KNOWN)
    assert [(i.id, i.messages[0].content, i.meta) for i in result.items] == [("a", "I feel low, really.", {"k": 1})]
    assert [str(r) for r in result.rejections] == [f"{path}:3: missing required field `response`"]


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (line().encode() + b"\n", "jsonl"),
        (b"id,prompt,response\na1,hi,ok\n", "csv"),
        (b"id\tprompt\tresponse\na1\thi\tok\n", "tsv"),
    ],
)
def test_standard_input_as_dash(monkeypatch: pytest.MonkeyPatch, data: bytes, kind: str) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    result = read_items([Path("-")], KNOWN)
    assert not result.rejections, (kind, result.rejections)
    (item,) = result.items
    assert item.id == "a1" and item.source.startswith("<stdin>:")


def test_a_file_given_twice_is_named_once_as_given_twice(tmp_path: Path) -> None:
    path = write(tmp_path, "in.jsonl", line() + "\n")
    result = read_items([path, tmp_path / "." / "in.jsonl"], KNOWN)
    assert len(result.items) == 1
    assert [str(r) for r in result.rejections] == [
        f"{tmp_path / '.' / 'in.jsonl'}:0: is given twice (as items file 1 and 2); pass each file once"
    ]
    assert "first used at" not in str(result.rejections[0])
    twice = "is given twice (as items file 1 and 2); pass each file once"
    assert item_file_problems([path, tmp_path / "in.jsonl"]) == [Rejection(str(tmp_path / "in.jsonl"), 0, None, twice)]


def test_whole_file_problems_are_found_without_reading(tmp_path: Path) -> None:
    good = write(tmp_path, "ok.jsonl", "{broken\n")  # its content is not looked at
    problems = item_file_problems([good, tmp_path / "missing.jsonl", tmp_path, Path("-")])
    assert [(r.file, r.reason) for r in problems] == [
        (str(tmp_path / "missing.jsonl"), "file not found"),
        (str(tmp_path), "is a directory, not an items file"),
    ]


def test_reader_keeps_going_after_errors(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.jsonl", "nope\n" + line(id="x") + "\n[]\n")
    good = write(tmp_path, "good.jsonl", line() + "\n")
    result = read_items([tmp_path / "missing.csv", bad, good], KNOWN)
    assert [i.id for i in result.items] == ["x", "a1"]
    assert [(Path(r.file).name, r.line) for r in result.rejections] == [
        ("missing.csv", 0),
        ("bad.jsonl", 1),
        ("bad.jsonl", 3),
    ]


# --- CSV-specific problems -----------------------------------------------------------------------------


def test_csv_bad_header_rejects_the_file_once(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "id,prompt,respone\na,hi,ok\nb,hi,ok\n")
    msg = only_rejection(path)
    assert msg.startswith(f"{path}:1: bad CSV header: unknown field `respone` (did you mean `response`?)")
    assert "missing column(s) `response`" in msg


def test_csv_header_without_messages_or_prompt(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "id,response\na,ok\n")
    assert only_rejection(path) == f"{path}:1: bad CSV header: missing column(s) `messages` or `prompt`"


def test_csv_wrong_cell_count(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "id,prompt,response\na,hi,ok,extra\n")
    assert only_rejection(path) == f"{path}:2: row has 4 cells but the header has 3 columns"


def test_csv_json_cells(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", 'id,messages,response,meta\na,[{oops,ok,\nb,"[]",ok,"[1]"\n')
    first, second = read_items([path], KNOWN).rejections
    assert str(first).startswith(f"{path}:2: field `messages`: the CSV cell must hold a JSON list (invalid JSON: ")
    assert str(second) == (
        f"{path}:3: field `meta`: must be an object (got a list); field `messages`: must not be empty"
    )


def test_csv_empty_cells_are_absent(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "id,prompt,response\n,hi,\n")
    assert only_rejection(path) == f"{path}:2: missing required field `id`; missing required field `response`"


def test_csv_line_numbers_after_multiline_cells(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", 'id,prompt,response\na,"one\ntwo\nthree",ok\nb,hi,\n')
    assert only_rejection(path) == f"{path}:5: missing required field `response`"


def test_csv_truncated_inside_quoted_cell(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", 'id,prompt,response\na,hi,ok\nb,hi,"cut\nhere')
    result = read_items([path], KNOWN)
    assert [i.id for i in result.items] == ["a"]
    assert [str(r) for r in result.rejections] == [f"{path}:3: truncated last line (file ends mid-record)"]


def test_csv_non_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", b"id,prompt,response\na,caf\xe9,ok\nb,hi,ok\n")
    result = read_items([path], KNOWN)
    assert [i.id for i in result.items] == ["b"]
    assert [str(r) for r in result.rejections] == [
        f"{path}:2: not valid UTF-8: byte 0xe9 at byte 5 of the line (byte 24 of the file); save the file as UTF-8"
    ]


# --- output formatting and speed -----------------------------------------------------------------------


def test_format_rejections_caps_the_list() -> None:
    rejections = [Rejection("f.jsonl", n, None, "bad") for n in range(1, 54)]
    assert format_rejections(rejections[:3]) == "f.jsonl:1: bad\nf.jsonl:2: bad\nf.jsonl:3: bad"
    assert format_rejections(rejections[:50]).count("\n") == 49
    text = format_rejections(rejections).splitlines()
    assert len(text) == 51 and text[49] == "f.jsonl:50: bad" and text[50] == "… and 3 more problems"
    assert format_rejections(rejections[:3], cap=2).splitlines()[-1] == "… and 1 more problem"
    assert format_rejections([]) == ""


def test_ten_thousand_items_read_fast(tmp_path: Path) -> None:
    body = "".join(
        json.dumps(
            {
                "id": f"i{n}",
                "pillar": "crisis",
                "messages": [{"role": "user", "content": "q" * 400}],
                "response": "r" * 1500,
                "meta": {"n": n},
            }
        )
        + "\n"
        for n in range(10_000)
    )
    path = write(tmp_path, "big.jsonl", body)
    result = read_items([path], KNOWN)
    assert len(result.items) == 10_000 and not result.rejections
