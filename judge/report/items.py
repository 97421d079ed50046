"""The item browser: every judged item of a score run (its conversation, the judged response, each judge's
verdict, rationale and evidence, and the panel's decision), filterable by pillar, target, judge and verdict.

The rows are embedded in the page as JSON (a `<script type="application/json">` block, never executed) and
the report's one script draws a page of items at a time from them, so a run of 10,000 items stays one file
that opens from disk without building 10,000 items' worth of elements. The JSON is streamed from the run's
files while the page is written: memory does not grow with the run. Every text is passed through
`visible` (NUL, bidirectional overrides and other invisible characters shown as their code points) and
every `<` is written as `\\u003c`, so no text can end the block; the script inserts texts with
`textContent`, never as markup.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup

from judge.report.load import ReportError
from judge.rundir import JsonlError, parse_jsonl
from judge.textsafe import visible

PAGE_SIZE = 25  # items drawn at once; the script's pager moves through the rest
# Fields of each embedded row, in order (rows are arrays to keep a 10,000-item page small); the script
# reads the same names from the block's "fields" entry, so the two cannot drift apart.
FIELDS = {
    "items": ("id", "target", "pillars", "messages", "response"),
    "verdicts": ("item_id", "pillar", "criterion", "judge", "role", "sample", "status", "score", "rationale",
                 "evidence", "error"),
    "panel": ("item_id", "pillar", "criterion", "status", "score", "critical_fail", "escalate",
              "escalate_reasons"),
}


@dataclass
class ItemBrowser:
    """Where a score run's items, verdicts and panel rows are; `data` streams them as the embedded JSON."""

    id: str
    directory: Path
    page_size: int = PAGE_SIZE

    @property
    def sources(self) -> dict[str, Path]:
        return {"items": self.directory / "items.jsonl", "verdicts": self.directory / "verdicts.jsonl",
                "panel": self.directory / "panel.jsonl"}

    def data(self) -> Iterator[Markup]:
        """The JSON block's text, a piece at a time: {"fields": …, "items": […], "verdicts": […], "panel": […]}."""
        yield Markup(_safe_json({"fields": FIELDS, "page_size": self.page_size})[:-1])
        for name, path in self.sources.items():
            yield Markup(f',"{name}":[')
            if path.is_file():
                for index, row in enumerate(_rows(path, FIELDS[name])):
                    yield Markup(("," if index else "") + row)
            yield Markup("]")
        yield Markup("}")


def item_browser(directory: Path, browser_id: str = "items") -> ItemBrowser | None:
    """The browser of a score run folder, or None when it kept no items.jsonl (a run older than the file)."""
    if not (directory / "items.jsonl").is_file():
        return None
    # The files are read once, while the page is written: a bad line raises ReportError then, and the
    # page's atomic write leaves no file behind.
    return ItemBrowser(browser_id, directory)


def _rows(path: Path, fields: tuple[str, ...]) -> Iterator[str]:
    """Each line of `path` as the embedded row's JSON text."""
    with path.open("rb") as handle:
        try:
            for number, record in parse_jsonl(handle, str(path)):
                try:
                    yield _safe_json([_shown(_field(record, name)) for name in fields])
                except ValueError as exc:  # NaN or Infinity: not JSON, the page could not read it
                    raise JsonlError(str(path), number, f"not valid JSON ({exc})", decoded=True) from exc
        except JsonlError as exc:
            raise ReportError(f"{exc}; the report shows every line of the run's files, so repair or re-create "
                              "this one (running the same command again completes an interrupted run)") from exc


def _field(record: dict[str, Any], name: str) -> Any:
    value = record.get(name)
    if name == "messages":  # [[role, content], …]: the conversation as the judge read it
        return [[m.get("role", "?"), m.get("content", "")] for m in value or [] if isinstance(m, dict)]
    return value


def _shown(value: Any) -> Any:
    """Every text of a row with its invisible and reordering characters made visible, however nested."""
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, list):
        return [_shown(v) for v in value]
    if isinstance(value, dict):
        return {visible(str(k)): _shown(v) for k, v in value.items()}
    return value


def _safe_json(value: Any) -> str:
    """JSON that cannot end or comment out the script block around it (`<` escaped) and keeps U+2028/9 escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
