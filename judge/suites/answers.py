"""`trustmh bench --answers FILE`: answers gathered by the user's own harness, judged and scored as a live
bench's are.

The prompts are built exactly as `trustmh suites build` builds them (the same suites, `--limit` and
`--seed`); the harness answers them and writes one record per prompt and target, JSON Lines or CSV/TSV:

    {"prompt_id": "crisis/escalation:12", "target": "my-bot-v2", "response": "I'm sorry you're ..."}

`turns` (a list of answers, one per turn) replaces `response` for a prompt with scripted follow-up turns;
`error` (text) records a call the harness could not get answered, which the metrics count as a failure,
as they count a failed target call. Every record is checked before anything is written or judged:
unknown fields, unknown prompt ids, duplicates, the number of turns, and that every target answered every
prompt. The answers become the bench's `respond/` stage (calls.jsonl, responses.jsonl, summary.json), so
the judging, the scorecard and the report are those of a live bench.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from judge.errors import UsageError
from judge.hashing import sha256_of
from judge.items import Rejection, format_rejections
from judge.log import RespondSummary, document
from judge.rundir import JsonlError, make_private_dir, parse_jsonl, write_json_atomic, write_jsonl_atomic

ANSWER_FIELDS = ("prompt_id", "target", "response", "turns", "error")
PROVIDER = "answers"  # the provider field of the calls: answered elsewhere, by the user's harness
CSV_SUFFIXES = (".csv", ".tsv")
UNKNOWN_HINT = (" Prompt ids are those of `trustmh suites build` given the same suites, --limit and --seed as this "
                "bench.")
MISSING_SHOWN = 3  # prompt ids named per target whose answers are incomplete


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(line, record, problem) of every record, streamed; CSV cells of `turns` hold a JSON list."""
    try:
        if path.suffix.lower() in CSV_SUFFIXES:
            yield from _csv_records(path)
            return
        problems: list[JsonlError] = []
        with path.open("rb") as handle:
            for line, row in parse_jsonl(handle, str(path), problems):
                yield line, row, None
        for problem in problems:
            yield problem.line, None, problem.problem
    except OSError as exc:
        yield 0, None, f"cannot read the answers file: {exc.strerror or exc}"


def _csv_records(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        try:
            unknown = [name for name in reader.fieldnames or [] if name not in ANSWER_FIELDS]
            if unknown:
                yield 1, None, f"unknown column(s) {unknown}; the columns are {', '.join(ANSWER_FIELDS)}"
                return
            for row in reader:
                record: dict[str, Any] = {k: v for k, v in row.items() if v not in ("", None) and k is not None}
                problem = "more cells than columns" if None in row else None
                if "turns" in record:
                    try:
                        record["turns"] = json.loads(record["turns"])
                    except ValueError:
                        problem = 'field `turns`: in CSV, a JSON list of strings, e.g. ["first answer", "second"]'
                yield reader.line_num, record, problem
        except UnicodeDecodeError as exc:
            yield reader.line_num + 1, None, f"not valid UTF-8 (byte {exc.start}); save the file as UTF-8"


def _problems_of(record: dict[str, Any], followups: Mapping[str, int]) -> list[str]:
    """What is wrong with one answer record (empty: nothing)."""
    problems = [f"unknown field `{k}`; the fields are {', '.join(ANSWER_FIELDS)}" for k in record
                if k not in ANSWER_FIELDS]  # fmt: skip
    for name in ("prompt_id", "target"):
        value = record.get(name)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"field `{name}`: missing or empty; every answer names its {name.replace('_', ' ')}")
    prompt_id = record.get("prompt_id")
    if isinstance(prompt_id, str) and prompt_id.strip() and prompt_id not in followups:
        problems.append(f"field `prompt_id`: {prompt_id!r} is not one of the bench's prompts")
    error, response, turns = record.get("error"), record.get("response"), record.get("turns")
    if error is not None:
        if not isinstance(error, str) or not error.strip():
            problems.append("field `error`: must be the text of what went wrong (or leave it out)")
        if response is not None or turns is not None:
            problems.append("a record with `error` holds no `response` or `turns`: the call failed")
        return problems
    if response is not None and turns is not None:
        problems.append("both `response` and `turns` are given; keep one (`turns` for a prompt with follow-ups)")
    elif response is None and turns is None:
        problems.append("missing `response` (or `turns`, one answer per turn, or `error` for a failed call)")
    elif turns is not None and not (isinstance(turns, list) and turns and all(isinstance(t, str) for t in turns)):
        problems.append("field `turns`: must be a non-empty list of strings, one answer per turn")
    elif response is not None and not isinstance(response, str):
        problems.append(f"field `response`: must be a string (got {type(response).__name__})")
    else:
        answers = turns if turns is not None else [response]
        if any(not text.strip() for text in answers):
            problems.append("an answer is empty; record a failed call with `error` instead")
        expected = 1 + followups.get(str(prompt_id), 0)
        if prompt_id in followups and len(answers) != expected:
            problems.append(
                f"prompt {prompt_id!r} has {expected} turn(s) ({expected - 1} scripted follow-up(s)): give "
                f"`turns` with {expected} answers, got {len(answers)}"
            )
    return problems


def check_answers(path: Path, prompts: Sequence[Mapping[str, Any]]) -> list[str]:
    """Read the whole file and check it against the prompts; the targets it names, in order of appearance.
    A UsageError lists every problem (FILE:LINE: ...), so bad input never half-runs."""
    followups = {str(p["id"]): len(p.get("followups") or ()) for p in prompts}
    rejections: list[Rejection] = []
    seen: dict[tuple[str, str], int] = {}
    answered: dict[str, set[str]] = {}
    for line, record, problem in _records(path):
        if record is None or problem is not None:
            rejections.append(Rejection(str(path), line, None, problem or "unreadable"))
            continue
        problems = _problems_of(record, followups)
        key = (str(record.get("prompt_id")), str(record.get("target")))
        if key in seen:
            problems.append(f"duplicate answer of target {key[1]!r} to prompt {key[0]!r}: first at line {seen[key]}")
        if problems:
            rejections.append(Rejection(str(path), line, record.get("prompt_id"), "; ".join(problems)))
            continue
        seen[key] = line
        answered.setdefault(key[1], set()).add(key[0])
    if not rejections and not answered:
        rejections.append(Rejection(str(path), 0, None, "holds no answers"))
    for target, ids in answered.items():
        missing = [pid for pid in followups if pid not in ids]
        if missing:
            shown = ", ".join(missing[:MISSING_SHOWN]) + (", …" if len(missing) > MISSING_SHOWN else "")
            rejections.append(Rejection(
                str(path), 0, None,
                f"target {target!r} answered {len(ids)} of the {len(followups)} prompts; missing {shown}. Give "
                "every prompt an answer (a record with `error` for a call that failed), and build the prompts "
                "with the same --suites, --limit and --seed as `trustmh suites build`",
            ))  # fmt: skip
    if rejections:
        rejections.sort(key=lambda r: r.line)
        raise UsageError(
            format_rejections(rejections)
            + f"\n{len(rejections)} problem(s) in the answers file; nothing was judged or written. Fix them and "
            "run again."
            + (UNKNOWN_HINT if any("is not one of the bench's prompts" in r.reason for r in rejections) else ""),
            field="answers",
        )
    return list(answered)


def _call_row(prompt: Mapping[str, Any], record: Mapping[str, Any]) -> dict[str, Any]:
    """A record as the journal row `trustmh respond` writes for a call (no tokens or cost: not ours to know)."""
    target = record["target"]
    error = record.get("error")
    turns = [] if error else list(record.get("turns") or [record["response"]])
    return {
        "id": f"{prompt['id']}@{target}", "prompt_id": prompt["id"], "target": target, "provider": PROVIDER,
        "model": target, "sample": 0, "status": "failed" if error else "ok",
        "response": turns[-1] if turns else None, "turns": turns, "truncated": False,
        "error": f"answered elsewhere: {error}" if error else None, "failure_reason": "harness" if error else None,
        "request_key": sha256_of({"answers": PROVIDER, "prompt": prompt["id"], "target": target, "turns": turns}),
        "cached": False, "input_tokens": None, "output_tokens": None, "cached_input_tokens": None,
        "cache_write_tokens": None, "cost_usd": None, "batch": False, "latency_s": None, "meta": prompt["meta"],
    }  # fmt: skip


def _response_item(prompt: Mapping[str, Any], row: Mapping[str, Any]) -> dict[str, Any]:
    """An answered record as an item for `trustmh score`, shaped as respond's (the whole exchange in messages)."""
    messages = list(prompt["messages"])
    for answer, followup in zip(row["turns"], prompt.get("followups") or (), strict=False):
        messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": followup}]
    item: dict[str, Any] = {"id": row["id"]}
    if pillar := prompt.get("pillar"):
        item["pillar"] = [pillar] if isinstance(pillar, str) else list(pillar)
    item |= {"messages": messages, "response": row["response"], "target": row["target"]}
    if prompt.get("reference") is not None:
        item["reference"] = prompt["reference"]
    item["meta"] = {**prompt["meta"], "prompt_id": prompt["id"], "sample": 0}
    return item


def import_answers(path: Path, prompts: Sequence[Mapping[str, Any]], respond_dir: Path) -> dict[str, Any]:
    """Write a checked answers file as the bench's respond stage (`check_answers` first); its summary."""
    by_id = {str(p["id"]): p for p in prompts}
    make_private_dir(respond_dir)
    tally: Counter[str] = Counter()
    per_target: dict[str, Counter[str]] = {}

    def rows() -> Iterator[dict[str, Any]]:
        for _, record, _ in _records(path):
            assert record is not None, "checked by check_answers"
            row = _call_row(by_id[record["prompt_id"]], record)
            tally[row["status"]] += 1
            per_target.setdefault(row["target"], Counter())[row["status"]] += 1
            yield row

    def items() -> Iterator[dict[str, Any]]:
        with (respond_dir / "calls.jsonl").open("rb") as handle:
            for _, row in parse_jsonl(handle, "calls.jsonl"):
                if row["status"] == "ok":
                    yield _response_item(by_id[row["prompt_id"]], row)

    write_jsonl_atomic(respond_dir / "calls.jsonl", rows())
    write_jsonl_atomic(respond_dir / "responses.jsonl", items())
    planned = tally["ok"] + tally["failed"]
    summary = RespondSummary(
        prompts=len(prompts),
        targets=list(per_target),
        calls={"planned": planned, "requested": 0, "cache_hits": 0, "resumed": 0, "failed": tally["failed"]},
        failures_by_reason={"harness": tally["failed"]} if tally["failed"] else {},
        per_target={t: {"ok": c["ok"], "failed": c["failed"], "truncated": 0} for t, c in per_target.items()},
        tokens_this_run={"input": None, "output": None},
        cost_usd_this_run=None,
    )
    written = document(summary) | {"answers": str(path)}
    write_json_atomic(respond_dir / "summary.json", written)
    write_json_atomic(respond_dir / "run.json", {"answers": str(path), "targets": list(per_target)})
    return written
