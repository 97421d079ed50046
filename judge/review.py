"""Run-directory I/O for panels and the human review loop.

`reaggregate_run` turns a finished run's verdicts into `panel.jsonl` and `review.jsonl` without calling
any judge. `export_review_csv` lays the review queue out for a clinician working in a spreadsheet, and
`import_review_csv` reads their decisions back as human annotations in the long format that
`trustmh calibrate --human` reads (one line per item × criterion × rater), so reviewed items can audit the
judges. Files are replaced atomically (a crash leaves the old file or the new one, never half of each)
and are readable by their owner only.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from judge.errors import RunDirError
from judge.panel import PanelOptions, build_panel, review_entries, verdict_problem
from judge.rubric import Rubric, RubricError, load_rubric_dir
from judge.rundir import raise_problems, read_jsonl, write_atomic, write_jsonl_atomic

REQUIRED_VERDICT_FIELDS = ("item_id", "pillar", "criterion", "judge", "status")
DECISION_COLUMNS = ("decision_score", "reviewer", "comment")
IMPORT_COLUMNS = ("item_id", "pillar", "criterion", "scale", "target", "decision_score", "reviewer")
# At most 18 digits: int() refuses more than 4300, and no scale is wider than a few points.
_SCALE = re.compile(r"^\s*(-?\d{1,18})\s*\.\.\s*(-?\d{1,18})")
_INTEGER = re.compile(r"^[+-]?\d{1,18}$")
_STATUS_LABEL = {"failed": "failed", "not_applicable": "n/a"}


def load_run_rubrics(run_dir: Path) -> dict[str, Rubric]:
    """The rubrics a run was judged with (`run.json` → `rubrics_dir`), refused if any changed since."""
    run_json = run_dir / "run.json"
    try:
        run = json.loads(run_json.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RunDirError(f"{run_json}: not found; is {run_dir} the --out folder of a `trustmh score` run?") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{run_json}: cannot read ({exc})") from exc
    if not isinstance(run, dict) or not isinstance(run.get("rubrics_dir"), str):
        raise RunDirError(f'{run_json}: no "rubrics_dir"; cannot tell which rubrics the run used')
    try:
        rubrics = load_rubric_dir(Path(run["rubrics_dir"]))
    except RubricError as exc:
        raise RunDirError(f"{run_json}: rubrics of the run cannot be loaded:\n{exc}") from exc
    problems = []
    for pillar, expected in sorted((run.get("rubric_hashes") or {}).items()):
        actual = rubrics[pillar].content_hash if pillar in rubrics else None
        if actual != expected:
            now = f"now {actual[:12]}" if actual else "now missing"
            problems.append(
                f"{run_json}: rubric {pillar!r} changed since the run (hash {expected[:12]}, {now}); "
                "restore it or score again"
            )
    raise_problems(problems)
    return rubrics


def reaggregate_run(
    run_dir: Path, rubrics: Mapping[str, Rubric], options: PanelOptions
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rebuild `panel.jsonl` and `review.jsonl` of a finished run from its verdicts; no judge is called."""
    verdicts_path = run_dir / "verdicts.jsonl"
    lines = read_jsonl(verdicts_path)
    problems = []
    for number, verdict in lines:
        missing = [k for k in REQUIRED_VERDICT_FIELDS if k not in verdict]
        problem = f"missing field(s) {', '.join(missing)}" if missing else verdict_problem(verdict, rubrics)
        if problem is None and verdict.get("criterion_hash"):
            current = rubrics[verdict["pillar"]].criterion(verdict["criterion"]).content_hash
            if verdict["criterion_hash"] != current:
                problem = (
                    f"{verdict['pillar']}/{verdict['criterion']} was judged with another version of the "
                    f"criterion (hash {verdict['criterion_hash'][:12]}, rubric has {current[:12]}); "
                    "re-aggregate with the run's rubrics"
                )
        if problem:
            problems.append(f"{verdicts_path}:{number}: {problem}")
    raise_problems(problems)
    verdicts = [v for _, v in lines]
    items = {item["id"]: item for _, item in read_jsonl(run_dir / "items.jsonl") if "id" in item}
    panel_rows = build_panel(verdicts, rubrics, options)
    try:
        review_rows = review_entries(panel_rows, verdicts, items, rubrics)
    except ValueError as exc:
        raise RunDirError(f"{run_dir / 'items.jsonl'}: {exc}") from exc
    write_jsonl_atomic(run_dir / "panel.jsonl", panel_rows)
    write_jsonl_atomic(run_dir / "review.jsonl", review_rows)
    return panel_rows, review_rows


# --------------------------------------------------------------------------- review CSV


def _text(value: str | None) -> str:
    """Free text for a spreadsheet cell; a leading = + - @ would be read as a formula, so it is quoted."""
    text = value or ""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _judge_label(judgment: Mapping[str, Any]) -> str:
    return f"{judgment['judge']} (tiebreak)" if judgment.get("role") == "tiebreak" else judgment["judge"]


def _score_cell(judgments: list[Mapping[str, Any]]) -> str:
    cells = [str(j["score"]) if j["status"] == "ok" else _STATUS_LABEL.get(j["status"], j["status"]) for j in judgments]
    return ", ".join(cells) + (" (excluded: same family as target)" if judgments[0].get("excluded") else "")


def _rationale_cell(judgments: list[Mapping[str, Any]]) -> str:
    parts = []
    for j in judgments:
        lines = [f"[sample {j['sample']}]"] if len(judgments) > 1 else []
        if j["status"] == "failed":
            lines.append(f"failed: {j.get('error') or 'no reason recorded'}")
        elif j.get("rationale"):
            lines.append(j["rationale"])
        lines += [f"Evidence: “{quote}”" for quote in j.get("evidence") or []]
        parts.append("\n".join(lines))
    return _text("\n\n".join(parts))


def _panel_cell(panel: Mapping[str, Any]) -> str:
    if panel["status"] != "decided":
        return panel["status"]
    verdict = " — fails the critical criterion" if panel.get("critical_fail") else ""
    by = ", with tiebreak" if panel.get("decided_by") == "tiebreak" else ""
    return f"{panel['score']} ({panel['method']}{by}){verdict}"


def export_review_csv(review_jsonl: Path, csv_path: Path) -> int:
    """Write the review queue as a CSV to fill in (empty decision_score, reviewer, comment); returns rows.

    Written as UTF-8 with a byte-order mark so that spreadsheet programs show non-ASCII text correctly.
    The scale is written MIN..MAX (a spreadsheet would turn 1-5 into a date).
    """
    entries = [entry for _, entry in read_jsonl(review_jsonl)]
    labels = list(
        dict.fromkeys(
            _judge_label(j)
            for j in sorted(
                (j for e in entries for j in e["judgments"]), key=lambda j: (j.get("role") == "tiebreak", j["judge"])
            )
        )
    )
    header = [
        "item_id",
        "pillar",
        "criterion",
        "severity",
        "target",
        "question",
        "scale",
        "anchors",
        "conversation",
        "response",
        "panel_result",
        "why_escalated",
        *(f"{label} {kind}" for label in labels for kind in ("score", "rationale")),
        *DECISION_COLUMNS,
    ]

    def write(f: TextIO) -> None:
        writer = csv.writer(f)
        writer.writerow(header)
        for e in entries:
            scale = f"{e['scale']['min']}..{e['scale']['max']}"
            if e.get("severity") == "critical" and e.get("fail_below") is not None:
                scale += f" (critical: below {e['fail_below']} fails)"
            per_judge: dict[str, list[Mapping[str, Any]]] = {}
            for j in e["judgments"]:
                per_judge.setdefault(_judge_label(j), []).append(j)
            judge_cells = []
            for label in labels:
                js = per_judge.get(label)
                judge_cells += [_score_cell(js), _rationale_cell(js)] if js else ["", ""]
            writer.writerow(
                [
                    e["item_id"],
                    e["pillar"],
                    e["criterion"],
                    e.get("severity", ""),
                    e.get("target") or "",
                    _text(e.get("question")),
                    scale,
                    _text("\n".join(f"{k}: {v}" for k, v in e.get("anchors", {}).items())),
                    _text("\n".join(f"{m.get('role')}: {m.get('content')}" for m in e.get("messages") or [])),
                    _text(e.get("response")),
                    _panel_cell(e["panel"]),
                    _text("\n".join(e.get("why") or [])),
                    *judge_cells,
                    *("" for _ in DECISION_COLUMNS),
                ]
            )

    write_atomic(csv_path, write, encoding="utf-8-sig")
    return len(entries)


def import_review_csv(csv_path: Path) -> list[dict[str, Any]]:
    """Filled decisions of a review CSV as human annotations `{item_id, pillar, criterion, rater, score,
    target}`; rows with a blank decision_score are skipped, every bad row is reported at once."""
    try:
        data = csv_path.read_bytes()
    except FileNotFoundError as exc:
        raise RunDirError(f"{csv_path}: not found") from exc
    except OSError as exc:
        raise RunDirError(f"{csv_path}: cannot read ({exc})") from exc
    body = data.removeprefix(b"\xef\xbb\xbf")  # the byte-order mark the export writes
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        at = exc.start + len(data) - len(body)
        raise RunDirError(
            f"{csv_path}, row {_row_at(body[: exc.start])}: not valid UTF-8 (byte {at} of the file); "
            "save the sheet as CSV UTF-8"
        ) from exc
    records = _read_csv_records(csv_path, io.StringIO(text, newline=""))
    annotations, problems = [], []
    seen: dict[tuple[str, ...], int] = {}
    for row, record in records:
        decision = record["decision_score"].strip()
        if not decision:
            continue
        where = f"{csv_path}, row {row}"
        match = _SCALE.match(record["scale"])
        if not match:
            problems.append(f"{where}: column scale: {record['scale']!r} is not MIN..MAX as written by the export")
            continue
        low, high = int(match[1]), int(match[2])
        if not _INTEGER.match(decision):
            problems.append(
                f"{where}: column decision_score: {decision!r} is not a whole number on the scale "
                f"{low}..{high}; leave it blank to skip the row"
            )
            continue
        score = int(decision)
        if not low <= score <= high:
            problems.append(f"{where}: column decision_score: {score} is outside the scale {low}..{high}")
            continue
        empty = [c for c in ("item_id", "pillar", "criterion", "reviewer") if not record[c].strip()]
        if empty:
            hint = "; write who made the decision" if "reviewer" in empty else ""
            problems.append(f"{where}: column {', '.join(empty)}: empty{hint}")
            continue
        key = tuple(record[c].strip() for c in ("item_id", "pillar", "criterion", "reviewer"))
        if key in seen:
            problems.append(
                f"{where}: reviewer {key[3]!r} decided {'/'.join(map(_shown, key[:3]))} already in row "
                f"{seen[key]}; keep one decision per reviewer"
            )
            continue
        seen[key] = row
        annotations.append(
            {
                "item_id": key[0],
                "pillar": key[1],
                "criterion": key[2],
                "rater": key[3],
                "score": score,
                "target": record["target"].strip() or None,
            }
        )
    raise_problems(problems)
    return annotations


def _shown(cell: str) -> str:
    """A cell as written, or quoted when it holds a newline or another character that would break the message."""
    return cell if cell.isprintable() else repr(cell)


def _row_at(prefix: bytes) -> int:
    """The spreadsheet row that the byte after `prefix` (valid UTF-8) belongs to."""
    text = prefix.decode("utf-8")
    try:
        rows = sum(1 for _ in csv.reader(io.StringIO(text, newline="")))
    except csv.Error:  # the prefix ends inside a quoted cell
        return text.count("\n") + 1
    return rows + (1 if not text or text.endswith(("\n", "\r")) else 0)


def _read_csv_records(csv_path: Path, f: TextIO) -> list[tuple[int, dict[str, str]]]:
    """(spreadsheet row, {column: cell}), the header being row 1: the row number the reviewer sees, which
    is not the file line, since cells hold newlines."""
    reader = csv.reader(f)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise RunDirError(f"{csv_path}: empty file; expected the CSV written by `trustmh review export`") from None
    except csv.Error as exc:
        raise RunDirError(f"{csv_path}, row 1: not valid CSV ({exc})") from exc
    missing = [c for c in IMPORT_COLUMNS if c not in header]
    if missing:
        raise RunDirError(
            f"{csv_path}, row 1 (the header): missing column(s) {', '.join(missing)}; use the CSV written by "
            "`trustmh review export`"
        )
    records, problems = [], []
    for row in itertools.count(2):
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(f"{csv_path}, row {row}: not valid CSV ({exc})")
            break
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header):
            problems.append(f"{csv_path}, row {row}: {len(cells)} cells but the header has {len(header)} columns")
            continue
        records.append((row, dict(zip(header, cells + [""] * (len(header) - len(cells)), strict=True))))
    raise_problems(problems)
    return records
