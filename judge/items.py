"""Item model and the JSONL / CSV readers.

Bad input must never crash the run nor stop at the first problem: every bad record becomes one
`Rejection` whose reason is a plain sentence (``FILE:LINE: what is wrong``), so the caller can either
exit 2 listing them all or, with ``--skip-invalid``, write them to ``rejected.jsonl`` and judge the rest.
Parsing works on strings / bytes; the file readers are thin wrappers, so each case is testable in memory.
"""

from __future__ import annotations

import csv
import difflib
import functools
import json
import math
import os
import re
import sys
import unicodedata
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from judge.labels import LabelError, parse_risk_label
from judge.textsafe import UNSEEN

DEFAULT_MAX_RESPONSE_CHARS = 100_000
"""About 25k tokens: far above any real chat turn, low enough to catch a file pasted into a cell."""

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = get_args(Role)
ACCEPTED_FIELDS = ("id", "pillar", "messages", "prompt", "response", "target", "reference", "meta")
PROMPT_FIELDS = ("id", "pillar", "messages", "prompt", "followups", "reference", "meta")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
CSV_SUFFIXES = (".csv", ".tsv")
STDIN = "-"
STDIN_NAME = "<stdin>"
_BOM = b"\xef\xbb\xbf"
_OPTIONAL_FIELDS = ("pillar", "messages", "prompt", "target", "reference", "meta")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _blank_problem(value: str) -> str | None:
    """Empty and whitespace-only text get different words: the second is usually an export bug."""
    if not value:
        return "is empty"
    if not value.strip():
        return "contains only whitespace"
    return None


def _not_blank(value: str) -> str:
    problem = _blank_problem(value)
    if problem:
        raise PydanticCustomError("blank", problem)
    return value


NotBlank = Annotated[str, AfterValidator(_not_blank)]  # text with something in it: ids, turns

# An id must be visible text: no control character at all (tabs and newlines included), nor one that
# reorders the text around it (U+202E shows "txt.exe" as "exe.txt") in tables, file names and reports.
_ID_UNSEEN = re.compile(f"[\t\n{UNSEEN.pattern[1:-1]}]")


def _visible_id(value: str) -> str:
    _not_blank(value)
    if found := _ID_UNSEEN.search(value):
        code = f"U+{ord(found[0]):04X}"
        raise PydanticCustomError(
            "control_character", "holds the control character {code} at position {at}; ids must be visible text",
            {"code": code, "at": found.start() + 1},
        )
    return value


Identifier = Annotated[str, AfterValidator(_visible_id)]  # an id: visible text, compared after NFC normalisation


def id_key(item_id: str) -> str:
    """What two ids are compared as: "café" typed as one character or as e + combining accent is one id."""
    return unicodedata.normalize("NFC", item_id)


class Message(BaseModel):
    """One conversation turn before the judged response."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    content: NotBlank


class Item(BaseModel):
    """One response to judge, with the conversation that led to it.

    `source` ("FILE:LINE") says where the item was read so every later message can point back to it.
    Validating with ``context={"max_response_chars": N}`` also enforces the response size limit.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Identifier
    pillars: tuple[str, ...] | None = None
    messages: tuple[Message, ...] = Field(min_length=1)
    response: str
    target: str | None = None
    reference: str | dict[str, Any] | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    source: str = ""

    @field_validator("response")
    @classmethod
    def _response_ok(cls, value: str, info: ValidationInfo) -> str:
        limit = (info.context or {}).get("max_response_chars")
        if limit is not None and len(value) > limit:
            raise PydanticCustomError(
                "response_too_long",
                "is {size} characters, over the limit of {limit} characters; "
                "shorten it or raise the limit with `max_response_chars=`",
                {"size": f"{len(value):,}", "limit": f"{limit:,}"},
            )
        return _not_blank(value)

    @field_validator("meta")
    @classmethod
    def _identity_cues(cls, meta: dict[str, Any]) -> dict[str, Any]:
        """`meta.identity_cues` is masked in fairness prompts, so a wrong type must stop the run here."""
        cues = meta.get("identity_cues")
        if cues is not None and not (isinstance(cues, list) and all(isinstance(c, str) and c.strip() for c in cues)):
            raise PydanticCustomError(
                "identity_cues",
                "`identity_cues` must be a list of non-empty strings (got {got})",
                {"got": _got(cues)},
            )
        if "risk_label" in meta:  # a label decides applicability and urgency: a bad one must stop the run here
            try:
                parse_risk_label(meta["risk_label"])
            except LabelError as exc:
                raise PydanticCustomError("risk_label", "{problem}", {"problem": str(exc)}) from None
        return meta

    @field_validator("reference", mode="before")
    @classmethod
    def _reference_type(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, str | dict):
            raise PydanticCustomError(
                "reference_type", "must be a string or an object (got {got})", {"got": _got(value)}
            )
        return value

    def __hash__(self) -> int:
        # meta/reference are dicts, so the generated field hash would raise; id + source identify an item.
        return hash((self.id, self.source))


class Prompt(BaseModel):
    """A benchmark prompt before a target has answered it: an item without `response`, plus optional
    scripted follow-up user turns (`followups`) that the target answers in turn."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Identifier
    pillars: tuple[str, ...] | None = None
    messages: tuple[Message, ...] = Field(min_length=1)
    followups: tuple[str, ...] = ()
    reference: str | dict[str, Any] | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    source: str = ""

    @field_validator("followups")
    @classmethod
    def _followups_not_blank(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            _not_blank(text)
        return value

    _reference_type = field_validator("reference", mode="before")(Item._reference_type.__func__)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.id, self.source))


@dataclass(frozen=True)
class RecordShape:
    """What one kind of input record looks like: items (with a response) or prompts (without)."""

    noun: str
    kind: str
    model: type[Item] | type[Prompt]
    fields: tuple[str, ...]
    required_columns: tuple[str, ...]
    wrong_fields: dict[str, str]  # fields that mean the wrong kind of file, with what to say


ITEM_SHAPE = RecordShape(
    "an items",
    "items",
    Item,
    ACCEPTED_FIELDS,
    ("id", "response"),
    {"followups": "follow-up turns belong in a prompts file for `trustmh respond`; an item holds the answer"},
)
PROMPT_SHAPE = RecordShape(
    "a prompts",
    "prompts",
    Prompt,
    PROMPT_FIELDS,
    ("id",),
    {
        "response": "a prompts file holds no responses (the targets write them); this looks like an items file "
        "for `trustmh score`",
        "target": "a prompts file names no target; targets are given with `targets=`",
    },
)


@dataclass(frozen=True)
class Rejection:
    """One bad record (or a whole unreadable file, at line 0) and why it was refused."""

    file: str
    line: int
    item_id: str | None
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class _DuplicateKeyError(Exception):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads silently keeps the last of two equal keys; a repeated `response` must not pass."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(f"duplicate key `{key}` in a JSON object (which value is meant?)")
            seen.add(key)
    return obj


class _NonFiniteError(Exception):
    pass


def _no_constant(name: str) -> Any:
    """Python's json reads NaN / Infinity, which are not JSON: an output line holding one is unreadable."""
    raise _NonFiniteError(f"`{name}` is not a JSON number (JSON has no NaN or Infinity); write null or a number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 overflows to infinity
        raise _NonFiniteError(f"the number {text} is too large for a double; write it as a string")
    return value


def _loads(text: str) -> tuple[Any, str | None]:
    """json.loads that reports what the parser said (with the column) instead of raising."""
    try:
        value = json.loads(
            text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant, parse_float=_finite_float
        )
    except (_DuplicateKeyError, _NonFiniteError) as exc:
        return None, str(exc)
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg.removesuffix(' at')} at column {exc.colno}"  # "starting at" + "at"
    except ValueError as exc:  # an integer of more than 4300 digits; the advice after ";" is for developers
        return None, f"invalid JSON: {str(exc).split(';')[0]}"
    except RecursionError:
        return None, "invalid JSON: nested too deeply"
    # json.loads accepts a lone "\ud800"; such a string cannot be written as UTF-8 later, so refuse it now
    lone = _SURROGATE_ESCAPE.search(text) and _lone_surrogate(value)
    if lone:
        return None, f"invalid text: the escape `\\u{ord(lone):04x}` is half of a surrogate pair, not a character"
    return value, None


def _lone_surrogate(value: Any) -> str | None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return value[exc.start]
        return None
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if isinstance(value, list):
        return next((c for c in map(_lone_surrogate, value) if c), None)
    return None


def _got(value: Any) -> str:
    """Short description of a wrong value for messages: JSON vocabulary, strings truncated."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37]) + "…"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _format_loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _describe_error(err: ErrorDetails) -> str:
    """Turn one pydantic error into a sentence about the input field (never a pydantic dump)."""
    loc = _format_loc(err["loc"])
    kind, value = err["type"], err.get("input")
    if kind == "missing":
        return f"missing required field `{loc}`"
    if kind == "extra_forbidden":
        parent, name = _format_loc(err["loc"][:-1]), err["loc"][-1]
        return f"field `{parent}`: unknown key `{name}` (a message has only `role` and `content`)"
    if kind == "string_type":
        return f"field `{loc}`: must be a string (got {_got(value)})"
    if kind == "literal_error":
        return f"field `{loc}`: must be one of {', '.join(ROLES)} (got {_got(value)})"
    if kind in ("tuple_type", "list_type"):
        return f"field `{loc}`: must be a list (got {_got(value)})"
    if kind == "model_type":
        return f"field `{loc}`: must be an object with `role` and `content` (got {_got(value)})"
    if kind == "dict_type":
        return f"field `{loc}`: must be an object (got {_got(value)})"
    if kind == "too_short":
        return f"field `{loc}`: must not be empty"
    return f"field `{loc}`: {err['msg']}"  # our own custom errors are already plain sentences


def _unknown_field(name: str, shape: RecordShape = ITEM_SHAPE) -> str:
    if name in shape.wrong_fields:
        return f"field `{name}`: {shape.wrong_fields[name]}"
    hint = difflib.get_close_matches(name, shape.fields, n=1)
    guess = f" (did you mean `{hint[0]}`?)" if hint else ""
    return f"unknown field `{name}`{guess}; accepted fields: {', '.join(shape.fields)}"


def _normalise_pillar(value: Any, known: Collection[str]) -> tuple[tuple[str, ...] | None, list[str]]:
    """`pillar` may be one name or a list of names; returns the tuple and any problems."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list):
        return None, [f"field `pillar`: must be a string or a list of strings (got {_got(value)})"]
    wrong = [n for n in names if not isinstance(n, str)]
    if wrong:
        return None, [f"field `pillar`: must be a string or a list of strings (got {_got(wrong[0])} in the list)"]
    if not names:
        return None, ["field `pillar`: is an empty list; leave the field out to use `pillars=`"]
    if not all(n.strip() for n in names):
        return None, ["field `pillar`: has an empty name; leave the field out to use `pillars=`"]
    unknown = [n for n in names if n not in known]
    if unknown:
        listed = ", ".join(sorted(known)) or "(none)"
        label = "pillar" if len(unknown) == 1 else "pillars"
        return None, [f"unknown {label} {', '.join(map(repr, unknown))} (known pillars: {listed})"]
    return tuple(dict.fromkeys(names)), []


def _build(
    record: Any,
    file: str,
    line: int,
    known_pillars: Collection[str],
    max_response_chars: int,
    reported: dict[str, str] | None = None,
    shape: RecordShape = ITEM_SHAPE,
) -> Item | Prompt | Rejection:
    """Validate one decoded record. `reported` holds problems already found in named fields (CSV cells)."""
    if not isinstance(record, dict):
        kind = _got(record)
        hint = " (items are JSON Lines: one object per line, not a JSON array)" if kind == "a list" else ""
        return Rejection(file, line, None, f"expected a JSON object, got {kind}{hint}")
    reported = reported or {}
    problems = [_unknown_field(k, shape) for k in record if k not in shape.fields]
    problems += reported.values()
    data = {k: v for k, v in record.items() if k in shape.fields and k not in reported}
    for name in _OPTIONAL_FIELDS:
        if data.get(name, "") is None:
            del data[name]  # null means absent, as an empty CSV cell does

    has_messages = "messages" in data or "messages" in reported
    has_prompt = "prompt" in data or "prompt" in reported
    if has_messages and has_prompt:
        problems.append(
            "both `messages` and `prompt` are given; keep only one: `messages` for a conversation, "
            "or `prompt` for a single user turn"
        )
        data.pop("prompt", None)
    elif not has_messages and not has_prompt:
        problems.append("missing `messages` (or `prompt`, the shorthand for a single user turn)")
    elif "prompt" in data:
        prompt = data.pop("prompt")
        if not isinstance(prompt, str):
            problems.append(f"field `prompt`: must be a string (got {_got(prompt)})")
        elif blank := _blank_problem(prompt):
            problems.append(f"field `prompt`: {blank}")
        else:
            data["messages"] = [{"role": "user", "content": prompt}]

    if "pillar" in data:
        pillars, pillar_problems = _normalise_pillar(data.pop("pillar"), known_pillars)
        problems += pillar_problems
        data["pillars"] = pillars

    raw_id = record.get("id")
    item_id = raw_id if isinstance(raw_id, str) else None
    data["source"] = f"{file}:{line}"
    try:
        item = shape.model.model_validate(data, context={"max_response_chars": max_response_chars})
    except ValidationError as exc:
        # fields whose problem is already stated (absent `messages`, bad CSV cells) are not reported twice
        skip = set(reported) | ({"messages"} if "messages" not in data else set())
        errors = [e for e in exc.errors() if not (e["loc"] and e["loc"][0] in skip)]
        # pydantic adds "too short" for a list whose every element failed; the element errors say it all
        nested = {e["loc"][0] for e in errors if len(e["loc"]) > 1}
        problems += [_describe_error(e) for e in errors if not (e["type"] == "too_short" and e["loc"][0] in nested)]
    else:
        if not problems:
            return item
    return Rejection(file, line, item_id, "; ".join(problems))


def parse_jsonl_line(
    text: str,
    file: str,
    line: int,
    known_pillars: Collection[str],
    *,
    max_response_chars: int = DEFAULT_MAX_RESPONSE_CHARS,
    unterminated: bool = False,
    shape: RecordShape = ITEM_SHAPE,
) -> Item | Prompt | Rejection | None:
    """One JSONL line → Item, Rejection, or None for a blank line.

    `unterminated` marks the file's last line when it has no trailing newline: if that line is not
    valid JSON the file was most likely cut off while being written.
    """
    if not text.strip():
        return None
    record, error = _loads(text)
    if error is not None:
        if unterminated:
            return Rejection(file, line, None, f"truncated last line (file ends mid-record); {error}")
        hint = " (one object per line: is the file pretty-printed?)" if text.strip() in ("{", "[") else ""
        return Rejection(file, line, None, f"{error}{hint}")
    return _build(record, file, line, known_pillars, max_response_chars, shape=shape)


def _decode_line(raw: bytes, file: str, line: int, file_offset: int) -> str | Rejection:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1].hex()
        return Rejection(
            file,
            line,
            None,
            f"not valid UTF-8: byte 0x{bad} at byte {exc.start} of the line "
            f"(byte {file_offset + exc.start} of the file); save the file as UTF-8",
        )


def _chunks(data: bytes | BinaryIO) -> Iterator[tuple[bytes, bool]]:
    """The pieces between newlines, each with whether it is the last one (the piece after the final
    newline is empty when the file ends cleanly). A file is read line by line, never whole."""
    if isinstance(data, bytes):
        pieces = data.split(b"\n")
        for index, piece in enumerate(pieces):
            yield piece, index == len(pieces) - 1
        return
    for line in data:
        if not line.endswith(b"\n"):
            yield line, True
            return
        yield line[:-1], False
    yield b"", True


def iter_jsonl(
    data: bytes | BinaryIO,
    file: str,
    known_pillars: Collection[str],
    *,
    max_response_chars: int = DEFAULT_MAX_RESPONSE_CHARS,
    shape: RecordShape = ITEM_SHAPE,
) -> Iterator[Item | Prompt | Rejection]:
    """Items and rejections of a JSON Lines file (its bytes, or the open file), in line order (each line
    decoded on its own)."""
    offset = 0
    for number, (piece, last) in enumerate(_chunks(data), start=1):
        chunk = piece
        if number == 1 and chunk.startswith(_BOM):
            chunk, offset = chunk[len(_BOM) :], len(_BOM)
        text = _decode_line(chunk.removesuffix(b"\r"), file, number, offset)
        offset += len(chunk) + 1
        if isinstance(text, Rejection):
            yield text
            continue
        result = parse_jsonl_line(
            text,
            file,
            number,
            known_pillars,
            max_response_chars=max_response_chars,
            unterminated=last,
            shape=shape,
        )
        if result is not None:
            yield result


def _parse_json_cell(name: str, cell: str, want: type) -> tuple[Any, str | None]:
    value, error = _loads(cell)
    if error is not None:
        noun = "a JSON list" if want is list else "a JSON object"
        return None, f"field `{name}`: the CSV cell must hold {noun} ({error})"
    if not isinstance(value, want):
        noun = "a list" if want is list else "an object"
        return None, f"field `{name}`: must be {noun} (got {_got(value)})"
    return value, None


def _csv_record(row: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """CSV cells → the JSON-shaped record, plus problems found while decoding JSON-holding cells."""
    record: dict[str, Any] = {}
    reported: dict[str, str] = {}
    for name, cell in row.items():
        if cell == "":
            continue  # an empty cell is an absent field
        value: Any = cell
        problem = None
        if name == "messages":
            value, problem = _parse_json_cell(name, cell, list)
        elif name == "meta":
            value, problem = _parse_json_cell(name, cell, dict)
        elif name == "pillar":
            if cell.lstrip().startswith("["):
                value, problem = _parse_json_cell(name, cell, list)
            else:
                value = [p.strip() for p in cell.split(";") if p.strip()] or cell
        elif name == "reference" and cell.lstrip().startswith("{"):
            parsed, _ = _loads(cell)
            if isinstance(parsed, dict):  # else free text that happens to start with "{"
                value = parsed
        if problem:
            reported[name] = problem
        else:
            record[name] = value
    return record, reported


def _header_problems(header: list[str], shape: RecordShape = ITEM_SHAPE) -> list[str]:
    problems = [_unknown_field(name, shape) for name in header if name not in shape.fields]
    dups = sorted({name for name in header if header.count(name) > 1})
    if dups:
        problems.append(f"column(s) {', '.join(f'`{d}`' for d in dups)} appear more than once")
    missing = [name for name in shape.required_columns if name not in header]
    if not {"messages", "prompt"} & set(header):
        missing.append("messages` or `prompt")
    if missing:
        problems.append("missing column(s) " + ", ".join(f"`{m}`" for m in missing))
    return problems


@contextmanager
def _csv_field_limit(limit: int) -> Iterator[None]:
    """The csv module refuses cells over 128 KiB; lift that so the size check gives the clear message."""
    old = csv.field_size_limit()
    csv.field_size_limit(max(old, limit))
    try:
        yield
    finally:
        csv.field_size_limit(old)


def iter_csv(
    data: bytes,
    file: str,
    known_pillars: Collection[str],
    *,
    max_response_chars: int = DEFAULT_MAX_RESPONSE_CHARS,
    delimiter: str = ",",
    shape: RecordShape = ITEM_SHAPE,
) -> Iterator[Item | Prompt | Rejection]:
    """Items and rejections of a CSV (or, with delimiter "\\t", TSV) file's bytes; a record is reported at
    the physical line it starts."""
    body = data.removeprefix(_BOM)
    lines: list[str] = []
    bad_lines: dict[int, Rejection] = {}
    offset = len(data) - len(body)
    for number, raw in enumerate(body.splitlines(keepends=True), start=1):
        text = _decode_line(raw, file, number, offset)
        offset += len(raw)
        if isinstance(text, Rejection):
            bad_lines[number] = text
            text = raw.decode("utf-8", errors="replace")  # keep the CSV structure to find later records
        lines.append(text)

    with _csv_field_limit(2**31 - 1):
        reader = csv.reader(lines, strict=True, delimiter=delimiter)
        header: list[str] | None = None
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                if "unexpected end of data" not in str(exc):
                    yield Rejection(file, start, None, f"invalid CSV: {exc}")
                    continue
                if not body.endswith((b"\n", b"\r")):
                    yield Rejection(file, start, None, "truncated last line (file ends mid-record)")
                else:
                    yield Rejection(file, start, None, "invalid CSV: a quoted cell is never closed")
                break
            spanned = [bad_lines[n] for n in range(start, reader.line_num + 1) if n in bad_lines]
            if spanned:
                yield from spanned
                if header is None:
                    return  # without a readable header no row can be interpreted
                continue
            if header is None:
                if not any(cell.strip() for cell in row):
                    continue
                header = [cell.strip() for cell in row]
                problems = _header_problems(header, shape)
                if problems:
                    yield Rejection(file, start, None, "bad CSV header: " + "; ".join(problems))
                    return
                continue
            if not any(row):
                continue  # blank line or a row of empty cells, as spreadsheets export
            if len(row) != len(header):
                yield Rejection(file, start, None, f"row has {len(row)} cells but the header has {len(header)} columns")
                continue
            record, reported = _csv_record(dict(zip(header, row, strict=True)))
            yield _build(record, file, start, known_pillars, max_response_chars, reported, shape)


def _is_stdin(path: Path | str) -> bool:
    return str(path) == STDIN


def _display_name(path: Path) -> str:
    return STDIN_NAME if _is_stdin(path) else str(path)


def _file_problem(path: Path, shape: RecordShape = ITEM_SHAPE) -> str | None:
    """Why a path named on the command line cannot be an input file at all (None: try to read it)."""
    if _is_stdin(path):
        return None
    if path.is_dir():
        return f"is a directory, not {shape.noun} file"
    if not path.exists():
        return "file not found"
    suffix = path.suffix.lower()
    if suffix not in JSONL_SUFFIXES + CSV_SUFFIXES:
        accepted = ", ".join(JSONL_SUFFIXES + CSV_SUFFIXES)
        return f"unsupported file extension {suffix or '(none)'!r}; accepted: {accepted}, or - for standard input"
    return None


def _checked_paths(paths: Sequence[Path], shape: RecordShape = ITEM_SHAPE) -> list[tuple[Path, Rejection | None]]:
    """Each path with its whole-file problem, if any; a path given a second time is one."""
    checked: list[tuple[Path, Rejection | None]] = []
    first: dict[str, int] = {}
    for number, path in enumerate(map(Path, paths), start=1):
        name = _display_name(path)
        key = STDIN if _is_stdin(path) else os.path.realpath(path)
        if key in first:
            reason = f"is given twice (as {shape.kind} file {first[key]} and {number}); pass each file once"
            checked.append((path, Rejection(name, 0, None, reason)))
            continue
        first[key] = number
        problem = _file_problem(path, shape)
        checked.append((path, Rejection(name, 0, None, problem) if problem else None))
    return checked


def item_file_problems(paths: Sequence[Path], shape: RecordShape = ITEM_SHAPE) -> list[Rejection]:
    """Whole-file problems (missing, a directory, an unknown kind, given twice), found without reading.

    They are usage errors even with --skip-invalid: skipping bad records must not skip a whole file.
    """
    return [rejection for _, rejection in _checked_paths(paths, shape) if rejection is not None]


def _parser_for(path: Path, data: bytes) -> Callable[..., Iterator[Item | Prompt | Rejection]]:
    """JSONL, CSV or TSV by extension; standard input by its first character (`{` means JSON Lines)."""
    if _is_stdin(path):
        head = data.removeprefix(_BOM).lstrip()[:1]
        if head in (b"{", b"["):
            return iter_jsonl
        first_line = data.removeprefix(_BOM).split(b"\n", 1)[0]
        return functools.partial(iter_csv, delimiter="\t" if b"\t" in first_line else ",")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return functools.partial(iter_csv, delimiter="\t" if suffix == ".tsv" else ",")
    return iter_jsonl


def _read_file(
    path: Path, known_pillars: Collection[str], max_response_chars: int, shape: RecordShape
) -> Iterator[Item | Prompt | Rejection]:
    file = _display_name(path)
    try:
        if _is_stdin(path) or path.suffix.lower() in CSV_SUFFIXES:
            data = sys.stdin.buffer.read() if _is_stdin(path) else path.read_bytes()
            parse = _parser_for(path, data)
            yield from parse(data, file, known_pillars, max_response_chars=max_response_chars, shape=shape)
            return
        handle = path.open("rb")
    except OSError as exc:
        yield Rejection(file, 0, None, f"cannot read file: {exc.strerror or exc}")
        return
    with handle:  # JSON Lines are read line by line: a large file never sits in memory whole
        yield from iter_jsonl(handle, file, known_pillars, max_response_chars=max_response_chars, shape=shape)


def iter_read(
    paths: Sequence[Path],
    known_pillars: Collection[str],
    *,
    max_response_chars: int = DEFAULT_MAX_RESPONSE_CHARS,
    shape: RecordShape = ITEM_SHAPE,
) -> Iterator[Item | Prompt | Rejection]:
    """Every record of every file in order, as an item (or prompt) or a rejection; a record whose id was
    used before is a rejection naming the first use (ids must be unique across files). `-` reads
    standard input."""
    first_seen: dict[str, tuple[str, str]] = {}
    for path, problem in _checked_paths(paths, shape):
        entries = [problem] if problem else _read_file(path, known_pillars, max_response_chars, shape)
        for entry in entries:
            item_id = entry.item_id if isinstance(entry, Rejection) else entry.id
            here = f"{entry.file}:{entry.line}" if isinstance(entry, Rejection) else entry.source
            key = id_key(item_id) if item_id is not None else None
            if key is not None and key in first_seen:
                where, first_id = first_seen[key]
                dup = f"duplicate id {item_id!r}: first used at {where}"
                if first_id != item_id:
                    dup += f" as {first_id!r}, the same id once Unicode-normalised (NFC)"
                if isinstance(entry, Rejection):
                    entry = replace(entry, reason=f"{entry.reason}; {dup}")
                else:
                    file, line = entry.source.rsplit(":", 1)
                    entry = Rejection(file, int(line), item_id, dup)
            elif key is not None:
                first_seen[key] = (here, item_id)
            yield entry


def format_rejections(rejections: Sequence[Rejection], cap: int = 50) -> str:
    """At most `cap` FILE:LINE lines, then a count of the rest, so a broken file cannot flood the terminal."""
    lines = [str(r) for r in rejections[:cap]]
    rest = len(rejections) - cap
    if rest > 0:
        lines.append(f"… and {rest} more problem{'s' if rest != 1 else ''}")
    return "\n".join(lines)
