"""What a report page is made of: sections holding one figure and the tables of its numbers.

Cells keep the number exactly as read (`value`, written to the page as `data-value`) next to the
text shown, so a reader sees rounded figures while tests and scripts can check the exact ones.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from judge.report.items import ItemBrowser


@dataclass
class Cell:
    text: str
    value: Any = None
    numeric: bool = False
    link: str | None = None
    css: str = ""

    @property
    def data_value(self) -> str | None:
        """JSON of the exact value for numeric cells (`null` when missing), else None (no attribute)."""
        return json.dumps(self.value) if self.numeric else None


def fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != 0 and abs(value) < 10 ** -digits:
            return f"{value:.{digits}g}"
        return f"{value:,.{digits}f}"
    return str(value)


def num(value: Any, digits: int = 3) -> Cell:
    """A number as read from a file; booleans are shown as yes/no and kept as true/false."""
    return Cell(fmt(value, digits), value, numeric=True)


def text(value: Any, link: str | None = None, css: str = "") -> Cell:
    return Cell("—" if value is None or value == "" else str(value), link=link, css=css)


def cell_list(values: list[str]) -> Cell:
    return text(", ".join(values) if values else None)


@dataclass
class Table:
    caption: str
    columns: list[str]
    rows: list[list[Cell]]
    name: str
    groups: list[tuple[str, int]] = field(default_factory=list)
    subheader: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # exact column names where the header shows short ones
    folded: bool = False  # start folded on screen (printing unfolds them); long tables always do

    FOLD_ROWS = 30

    @property
    def starts_folded(self) -> bool:
        return self.folded or len(self.rows) > self.FOLD_ROWS


@dataclass
class Figure:
    svg: Markup
    caption: str


@dataclass
class Section:
    """One part of the report. Without a figure, `nothing` says why there is nothing to draw."""

    id: str
    title: str
    part: str
    intro: str = ""
    figure: Figure | None = None
    nothing: str | None = None
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    review: list[dict[str, Any]] = field(default_factory=list)
    browser: ItemBrowser | None = None  # a section that browses items has neither figure nor `nothing`

    def __post_init__(self) -> None:
        if self.browser is not None:
            if self.figure is not None or self.nothing is not None:
                raise ValueError(f"section {self.id!r}: an item browser section has no figure")
        elif (self.figure is None) == (self.nothing is None):
            raise ValueError(f"section {self.id!r}: give a figure or say why there is none, not both or neither")


@dataclass
class Page:
    title: str
    kind: str
    source: str
    facts: list[tuple[str, str]]
    sections: list[Section]
    generated: str


SMALL_N_MARK = "⚠ small n"


def n_cell(n: int | None, small_n: bool) -> Cell:
    """A count of units, marked when the file flags the interval beside it as resting on too few (`small_n`)."""
    return Cell(f"{fmt(n)} {SMALL_N_MARK}", n, numeric=True) if small_n else num(n)
