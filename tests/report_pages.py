"""Reading a report page back in tests: its sections, tables (with exact cell values), links and URLs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
URL_ATTRIBUTES = {"src", "href", "xlink:href", "srcset", "data", "poster", "action"}


@dataclass
class CellInfo:
    text: str = ""
    value: Any = None
    numeric: bool = False
    link: str | None = None
    key: str | None = None  # a header's exact name (`data-key`) where it shows a short one


@dataclass
class TableInfo:
    name: str | None
    caption: str = ""
    header: list[tuple[str, list[str]]] = field(default_factory=list)  # (row class, labels)
    rows: list[list[CellInfo]] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return next(labels for css, labels in self.header if not css)

    def header_row(self, css: str) -> list[str]:
        return next(labels for c, labels in self.header if c == css)

    def records(self) -> list[dict[str, CellInfo]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


@dataclass
class SectionInfo:
    id: str
    figures: int = 0
    svgs_in_figures: int = 0
    tables: list[TableInfo] = field(default_factory=list)
    nothing: list[str] = field(default_factory=list)
    browsers: list[str] = field(default_factory=list)  # the data block id of each item browser


@dataclass
class ReportPage:
    sections: list[SectionInfo] = field(default_factory=list)
    urls: list[tuple[str, str, str]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)  # executable scripts (no type, or a JavaScript type)
    data_blocks: dict[str, str] = field(default_factory=dict)  # <script type="application/json" id=…> texts
    text: str = ""

    def data(self, block_id: str) -> Any:
        return json.loads(self.data_blocks[block_id])

    def tables(self, name: str) -> list[TableInfo]:
        return [t for s in self.sections for t in s.tables if t.name == name]

    def table(self, name: str) -> TableInfo:
        found = self.tables(name)
        assert len(found) == 1, f"{len(found)} tables named {name!r}"
        return found[0]

    def section(self, section_id: str) -> SectionInfo:
        return next(s for s in self.sections if s.id == section_id)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = ReportPage()
        self.stack: list[str] = []
        self.section: SectionInfo | None = None
        self.table: TableInfo | None = None
        self.cell: CellInfo | None = None
        self.header_row: list[str] | None = None
        self.header_class = ""
        self.in_thead = False
        self.in_caption = False
        self.in_figure = False
        self.nothing: list[str] | None = None
        self.raw: list[str] | None = None
        self.raw_data: str | None = None  # the id of the data block being read
        self.words: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, dict(attrs))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, dict(attrs))
        self._end(tag)

    def _start(self, tag: str, attrs: dict[str, str | None]) -> None:
        for name, value in attrs.items():
            if name in URL_ATTRIBUTES and value is not None:
                self.page.urls.append((tag, name, value))
            if name == "id" and value:
                self.page.ids.append(value)
        if tag == "section":
            self.section = SectionInfo(attrs.get("id") or "")
            self.page.sections.append(self.section)
        elif tag == "figure" and self.section:
            self.section.figures += 1
            self.in_figure = True
        elif tag == "svg" and self.in_figure and self.section:
            self.section.svgs_in_figures += 1
        elif tag == "table" and self.section and attrs.get("data-table"):
            self.table = TableInfo(attrs.get("data-table"))
            self.section.tables.append(self.table)
        elif tag == "thead":
            self.in_thead = True
        elif tag == "caption" and self.table:
            self.in_caption = True
        elif tag == "tr" and self.table:
            if self.in_thead:
                self.header_row = []
                self.header_class = attrs.get("class") or ""
            else:
                self.table.rows.append([])
        elif tag in ("th", "td") and self.table:
            self.cell = CellInfo(key=attrs.get("data-key"))
            if "data-value" in attrs:
                self.cell.numeric = True
                self.cell.value = json.loads(attrs["data-value"] or "null")
        elif tag == "a" and self.cell is not None:
            self.cell.link = attrs.get("href")
        elif tag == "p" and "nothing" in (attrs.get("class") or "").split() and self.section:
            self.nothing = []
        elif tag in ("style", "script"):
            self.raw = []
            kind = (attrs.get("type") or "").lower()
            if tag == "script" and kind not in ("", "text/javascript", "module"):
                block = attrs.get("id") or ""
                self.raw_data = block if kind == "application/json" else f"{kind}#{block}"
        if attrs.get("data-item-browser") and self.section:
            self.section.browsers.append(attrs["data-item-browser"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            open_tag = self.stack[-1] if self.stack else "-"
            self.page.errors.append(f"line {self.getpos()[0]}: </{tag}> closes <{open_tag}>")
        else:
            self.stack.pop()
        self._end(tag)

    def _end(self, tag: str) -> None:
        if tag == "section":
            self.section = None
        elif tag == "figure":
            self.in_figure = False
        elif tag == "table" and self.table:
            self.table = None
        elif tag == "thead":
            self.in_thead = False
        elif tag == "caption":
            self.in_caption = False
        elif tag == "tr" and self.table and self.in_thead and self.header_row is not None:
            self.table.header.append((self.header_class, self.header_row))
            self.header_row = None
        elif tag in ("th", "td") and self.table and self.cell is not None:
            self.cell.text = self.cell.text.strip()
            if self.in_thead and self.header_row is not None:
                self.header_row.append(self.cell.key or self.cell.text)
            elif self.table.rows:
                self.table.rows[-1].append(self.cell)
            self.cell = None
        elif tag == "p" and self.nothing is not None and self.section:
            self.section.nothing.append("".join(self.nothing).strip())
            self.nothing = None
        elif tag in ("style", "script") and self.raw is not None:
            if self.raw_data is not None:
                self.page.data_blocks[self.raw_data] = "".join(self.raw)
            else:
                (self.page.styles if tag == "style" else self.page.scripts).append("".join(self.raw))
            self.raw, self.raw_data = None, None

    def handle_data(self, data: str) -> None:
        self.words.append(data)
        if self.cell is not None:
            self.cell.text += data
        if self.in_caption and self.table:
            self.table.caption += data
        if self.nothing is not None:
            self.nothing.append(data)
        if self.raw is not None:
            self.raw.append(data)


def read_report(html: str) -> ReportPage:
    reader = _Reader()
    reader.feed(html)
    reader.close()
    if reader.stack:
        reader.page.errors.append(f"unclosed at the end: {reader.stack}")
    reader.page.text = " ".join(" ".join(reader.words).split())
    return reader.page
