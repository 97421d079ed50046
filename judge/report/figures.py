"""Figures drawn with matplotlib and returned as inline SVG text.

Every function takes plain labels and numbers already read from a run's files and draws them; none
computes a statistic. Figures are built on `matplotlib.figure.Figure` (no pyplot, no global backend),
text stays text (`svg.fonttype: none`) so the page is searchable and small, and element ids are
prefixed per figure so several SVGs can share one HTML page without clashing.
"""

from __future__ import annotations

import io
import math
import re
import textwrap
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib
import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from judge.textsafe import visible

Number = float | int | None

BLUE, GREY, RED, GREEN = "#1f77b4", "#9a9a9a", "#c0392b", "#2e8b57"
SERIES_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                  "#bcbd22", "#17becf")
RC = {"svg.fonttype": "none", "text.parse_math": False, "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9,
      "xtick.labelsize": 8, "ytick.labelsize": 8, "legend.fontsize": 8}
WIDTH_IN = 9.0  # matches the page's text column; the SVG scales down with the window


def _missing(value: Number) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _as_float(value: Number) -> float:
    return math.nan if _missing(value) else float(value)  # type: ignore[arg-type]


_ID = re.compile(r'\bid="([^"]+)"')


def to_svg(fig: Figure, key: str) -> str:
    """The figure as an SVG element for inline use: no XML prolog, no metadata, ids prefixed by `key`."""
    with matplotlib.rc_context({**RC, "svg.hashsalt": key}):
        text = _saved(fig)
    text = text[text.index("<svg"):]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.S)
    prefix = re.sub(r"[^A-Za-z0-9_-]", "-", key) + "-"
    ids = set(_ID.findall(text))
    if ids:
        names = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
        text = re.sub(rf'\bid="({names})"', lambda m: f'id="{prefix}{m[1]}"', text)
        text = re.sub(rf"url\(#({names})\)", lambda m: f"url(#{prefix}{m[1]})", text)
        text = re.sub(rf'href="#({names})"', lambda m: f'href="#{prefix}{m[1]}"', text)
    return text.replace("<svg ", '<svg role="img" ', 1)


def _saved(fig: Figure) -> str:
    """The figure's SVG text. Labels too long for the constrained layout (a target named by a whole
    sentence) leave it no room, and matplotlib warns on the user's terminal; such a figure is laid out
    by its tight bounding box instead, which makes room for any label."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    if any("constrained_layout not applied" in str(w.message) for w in caught):
        fig.set_layout_engine("none")
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    else:
        for w in caught:  # any other warning is the caller's to see
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return buffer.getvalue()


def short_label(name: str) -> str:
    """A judge or target name without its endpoint (`openai:m@http://host/v1` → `openai:m`), for axis labels."""
    return visible(name.split("@", 1)[0] if "@http" in name else name)


def _figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(RC):
        return Figure(figsize=(width, height), layout="constrained")


def _grid(count: int, columns: int) -> tuple[int, int]:
    cols = max(1, min(columns, count))
    return math.ceil(count / cols), cols


def _cells(ax: Any, data: np.ndarray, colormap: Any, norm: Normalize) -> Any:
    """Vector cells centred on integer positions, first row on top; missing cells show the grey background."""
    rows, cols = data.shape
    ax.set_facecolor("#eeeeee")
    mesh = ax.pcolormesh(np.arange(cols + 1) - 0.5, np.arange(rows + 1) - 0.5, np.ma.masked_invalid(data),
                         cmap=colormap, norm=norm, edgecolors="white", linewidth=0.5)
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    return mesh


def heatmap(
    values: Sequence[Sequence[Number]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    key: str,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    annotations: Sequence[Sequence[str]] | None = None,
    col_groups: Sequence[tuple[str, int, int]] = (),
    colorbar_label: str = "",
    colour_values: Sequence[Sequence[Number]] | None = None,
) -> str:
    """Cells coloured by `colour_values` (default `values`), each annotated with its text; missing cells grey.

    `col_groups` are (label, first column, last column) spans named above the columns, split by lines.
    """
    with matplotlib.rc_context(RC):
        data = np.array([[_as_float(v) for v in row] for row in (colour_values or values)], dtype=float)
        rows, cols = data.shape
        col_labels = ["\n".join(short_label(line) for line in s.split("\n")) for s in col_labels]
        longest = max((len(line) for s in col_labels for line in s.split("\n")), default=0)
        upright = cols * longest <= 60  # short labels: horizontal, as wide as they need
        cell = max(0.62, longest * 0.07) if upright else 0.62
        row_text = max((len(s) for s in row_labels), default=0) * 0.065
        width = min(WIDTH_IN, max(4.0, 2.2 + cell * cols + row_text + (0 if upright else longest * 0.035)))
        lines = max((s.count("\n") + 1 for s in col_labels), default=1)
        height = max(1.8, 1.0 + 0.34 * rows + (0.35 if col_groups else 0) +
                     (0.18 * lines if upright else longest * 0.05))
        fig = _figure(width, height)
        ax = fig.add_subplot()
        colormap = matplotlib.colormaps[cmap]
        finite = data[np.isfinite(data)]
        low = vmin if vmin is not None else (float(finite.min()) if finite.size else 0.0)
        high = vmax if vmax is not None else (float(finite.max()) if finite.size else 1.0)
        if high <= low:
            high = low + 1.0
        norm = Normalize(low, high)
        image = _cells(ax, data, colormap, norm)
        if upright:
            ax.set_xticks(range(cols), labels=list(col_labels))
        else:
            ax.set_xticks(range(cols), labels=list(col_labels), rotation=45, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(rows), labels=list(row_labels))
        ax.tick_params(length=0)
        room = (width - 2.2 - row_text) / max(1, cols)  # inches per cell: too narrow, the table has the numbers
        for r in range(rows if room >= 0.42 else 0):
            for c in range(cols):
                text = annotations[r][c] if annotations else ("" if _missing(values[r][c]) else f"{values[r][c]:g}")
                if not text:
                    continue
                shade = colormap(norm(data[r, c])) if np.isfinite(data[r, c]) else (0.93, 0.93, 0.93, 1)
                dark = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] < 0.5
                ax.text(c, r, text, ha="center", va="center", fontsize=7.5, color="white" if dark else "black")
        for label, first, last in col_groups:
            if first > 0:
                ax.axvline(first - 0.5, color="white", linewidth=2.5)
            ax.text((first + last) / 2, -0.6, label, ha="center", va="bottom", fontweight="bold",
                    fontsize=8 if last > first or len(label) <= 9 else 6.5, transform=ax.transData, clip_on=False)
        for spine in ax.spines.values():
            spine.set_visible(False)
        colorbar = fig.colorbar(image, ax=ax, shrink=0.8, pad=0.02)
        colorbar.set_label(colorbar_label)
        return to_svg(fig, key)


def radar_grid(
    axis_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[Number]]],
    *,
    key: str,
    worst: float,
    columns: int = 4,
) -> str:
    """One polar chart per series over the same axes; the radius is a rank, rank 1 on the rim.

    Missing values leave a gap in the outline and their axis label says "no data".
    """
    with matplotlib.rc_context(RC):
        nrows, ncols = _grid(len(series), columns)
        fig = _figure(min(WIDTH_IN, 2.5 * ncols + 0.4), 2.6 * nrows + 0.2)
        angles = np.linspace(0, 2 * np.pi, len(axis_labels), endpoint=False)
        for index, (title, values) in enumerate(series):
            ax = fig.add_subplot(nrows, ncols, index + 1, projection="polar")
            radii = np.array([_as_float(v) for v in values])
            closed_angles, closed = np.append(angles, angles[0]), np.append(radii, radii[0])
            colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
            ax.plot(closed_angles, closed, color=colour, linewidth=1.5, marker="o", markersize=3.5)
            if np.isfinite(radii).all():
                ax.fill(closed_angles, closed, color=colour, alpha=0.18)
            ax.set_theta_zero_location("N")  # first pillar on top, the others clockwise
            ax.set_theta_direction(-1)
            ax.set_ylim(worst + 0.5, 0.5)
            last = math.floor(worst)
            ticks = list(range(1, last + 1)) if last <= 5 else sorted({1, (last + 1) // 2, last})
            ax.set_yticks(ticks, labels=[str(t) for t in ticks], fontsize=6.5, color="#555555")
            ax.set_rlabel_position(180 / len(axis_labels))  # between the first two spokes
            ax.set_xticks(angles, labels=[
                label if np.isfinite(r) else f"{label}\n(no data)" for label, r in zip(axis_labels, radii, strict=True)
            ], fontsize=7)
            # a long target name wraps over lines instead of running into its neighbour's title
            ax.set_title("\n".join(textwrap.wrap(visible(title), 30)) or title, fontsize=9, pad=14)
        return to_svg(fig, key)


@dataclass
class IntervalPanel:
    """One small chart: a value per label with its interval (either end may be missing)."""

    title: str
    labels: list[str]
    values: list[Number]
    lows: list[Number] = field(default_factory=list)
    highs: list[Number] = field(default_factory=list)
    reference: float | None = None
    passed: list[bool] | None = None


def interval_panels(panels: Sequence[IntervalPanel], *, key: str, columns: int = 3, xlabel: str = "") -> str:
    """Dot-and-whisker charts, one per panel; a dashed line marks `reference` (e.g. a gate threshold)."""
    with matplotlib.rc_context(RC):
        nrows, ncols = _grid(len(panels), columns)
        tallest = max((len(p.labels) for p in panels), default=1)
        fig = _figure(WIDTH_IN if ncols > 1 else 6.0, nrows * (0.9 + 0.24 * tallest))
        for index, panel in enumerate(panels):
            ax = fig.add_subplot(nrows, ncols, index + 1)
            y = np.arange(len(panel.labels))
            values = np.array([_as_float(v) for v in panel.values])
            lows = np.array([_as_float(v) for v in panel.lows] or [math.nan] * len(y))
            highs = np.array([_as_float(v) for v in panel.highs] or [math.nan] * len(y))
            has_ci = np.isfinite(lows) & np.isfinite(highs)
            if has_ci.any():  # drawn from its ends: a percentile interval need not contain the value
                ax.hlines(y[has_ci], lows[has_ci], highs[has_ci], color=GREY, linewidth=1.2)
                for ends in (lows, highs):
                    ax.scatter(ends[has_ci], y[has_ci], marker="|", color=GREY, s=30)
            colours = [BLUE if panel.passed is None else (GREEN if ok else RED)
                       for ok in (panel.passed or [True] * len(y))]
            shown = np.isfinite(values)
            ax.scatter(values[shown], y[shown], c=[c for c, s in zip(colours, shown, strict=True) if s], s=18,
                       zorder=3)
            for row in y[~shown]:
                ax.text(0.02, row, "n/a", transform=ax.get_yaxis_transform(), va="center", fontsize=7,
                        color=GREY)
            if panel.reference is not None:
                ax.axvline(panel.reference, color=RED, linestyle="--", linewidth=1)
            ax.set_yticks(y, labels=[short_label(label) for label in panel.labels])
            ax.set_ylim(len(y) - 0.5, -0.5)
            ax.set_title(panel.title)
            ax.grid(axis="x", color="#e5e5e5")
            ax.set_axisbelow(True)
            if xlabel:
                ax.set_xlabel(xlabel)
        return to_svg(fig, key)


@dataclass
class BarSeries:
    name: str
    values: list[Number]
    lows: list[Number] = field(default_factory=list)
    highs: list[Number] = field(default_factory=list)


@dataclass
class BarPanel:
    """Grouped bars: one group per category, one bar per series."""

    title: str
    categories: list[str]
    series: list[BarSeries]
    ylabel: str = ""


def bar_panels(panels: Sequence[BarPanel], *, key: str, columns: int = 2, zero_line: bool = False) -> str:
    """Grouped bar charts with optional interval whiskers; missing bars are left out, marked "n/a"."""
    with matplotlib.rc_context(RC):
        nrows, ncols = _grid(len(panels), columns)
        fig = _figure(WIDTH_IN if ncols > 1 else 6.5, nrows * 2.9)
        for index, panel in enumerate(panels):
            ax = fig.add_subplot(nrows, ncols, index + 1)
            x = np.arange(len(panel.categories))
            width = 0.8 / max(1, len(panel.series))
            for s_index, s in enumerate(panel.series):
                offset = x - 0.4 + width * (s_index + 0.5)
                values = np.array([_as_float(v) for v in s.values])
                shown = np.isfinite(values)
                colour = SERIES_COLOURS[s_index % len(SERIES_COLOURS)]
                ax.bar(offset[shown], values[shown], width=width * 0.92, color=colour, label=short_label(s.name))
                lows = np.array([_as_float(v) for v in s.lows] or [math.nan] * len(x))
                highs = np.array([_as_float(v) for v in s.highs] or [math.nan] * len(x))
                ci = shown & np.isfinite(lows) & np.isfinite(highs)
                if ci.any():
                    ax.vlines(offset[ci], lows[ci], highs[ci], color="#333333", linewidth=1)
                    for ends in (lows, highs):
                        ax.scatter(offset[ci], ends[ci], marker="_", color="#333333", s=20)
                for position in offset[~shown]:
                    ax.text(position, 0, "n/a", ha="center", va="bottom", fontsize=6.5, color=GREY, rotation=90)
            if zero_line:
                ax.axhline(0, color="#333333", linewidth=0.8)
            crowded = len(panel.categories) > 3
            ax.set_xticks(x, labels=[short_label(c) for c in panel.categories], rotation=30 if crowded else 0,
                          ha="right" if crowded else "center")
            ax.set_title(panel.title)
            ax.set_ylabel(panel.ylabel)
            ax.grid(axis="y", color="#e5e5e5")
            ax.set_axisbelow(True)
            if len(panel.series) > 1:
                ax.legend(frameon=False)
        return to_svg(fig, key)


def horizontal_bars(labels: Sequence[str], values: Sequence[Number], *, key: str, xlabel: str = "") -> str:
    """One bar per label, its value written at the bar's end (counts of failures, panel outcomes)."""
    with matplotlib.rc_context(RC):
        fig = _figure(6.5, 0.8 + 0.3 * len(labels))
        ax = fig.add_subplot()
        y = np.arange(len(labels))
        numbers = [0.0 if _missing(v) else float(v) for v in values]  # type: ignore[arg-type]
        bars = ax.barh(y, numbers, color=BLUE)
        ax.bar_label(bars, labels=["n/a" if _missing(v) else f"{v:g}" for v in values], padding=3, fontsize=7.5)
        ax.set_yticks(y, labels=list(labels))
        ax.set_ylim(len(y) - 0.5, -0.5)
        ax.set_xlabel(xlabel)
        ax.margins(x=0.12)
        ax.grid(axis="x", color="#e5e5e5")
        ax.set_axisbelow(True)
        return to_svg(fig, key)


@dataclass
class Matrix:
    title: str
    labels: list[str]
    counts: list[list[int]]
    row_title: str = "judge"
    col_title: str = "human"


def confusion_grid(matrices: Sequence[Matrix], *, key: str, columns: int = 2) -> str:
    """Count matrices side by side, each cell annotated with its count (rows: judge, columns: human)."""
    with matplotlib.rc_context(RC):
        nrows, ncols = _grid(len(matrices), columns)
        size = max((len(m.labels) for m in matrices), default=2)
        cell = 0.42 if size <= 5 else 0.32
        fig = _figure(min(WIDTH_IN, ncols * (1.8 + cell * size)), nrows * (1.6 + cell * size))
        for index, matrix in enumerate(matrices):
            ax = fig.add_subplot(nrows, ncols, index + 1)
            data = np.array(matrix.counts, dtype=float).reshape(len(matrix.labels), len(matrix.labels))
            norm = Normalize(0, max(1.0, float(data.max()) if data.size else 1.0))
            _cells(ax, data, matplotlib.colormaps["Blues"], norm)
            ax.set_aspect("equal")
            for (r, c), count in np.ndenumerate(data):
                ax.text(c, r, f"{int(count)}", ha="center", va="center", fontsize=6.5,
                        color="white" if norm(count) > 0.55 else "black")
            labels = [label or "(empty)" for label in matrix.labels]
            ax.set_xticks(range(len(labels)), labels=labels, rotation=45, ha="right", rotation_mode="anchor",
                          fontsize=6.5)
            ax.set_yticks(range(len(labels)), labels=labels, fontsize=6.5)
            ax.set_xlabel(matrix.col_title)
            ax.set_ylabel(matrix.row_title)
            ax.set_title(matrix.title)
        return to_svg(fig, key)
