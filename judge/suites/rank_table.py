"""The paper's rank table (`data/paper_rank_table.toml`, transcribed from the authors' image) beside the
ranks a recorded run computes.

The table ranks 12 models over 19 sub-tasks; the recorded outputs allow three of its rows (privacy
awareness and leakage for the six general models, ethical reasoning for all twelve). Where a run holds
fewer models than the table, the table's ranks are compared as an order: re-ranked among the models the
run has, so that "4th of 12" and "3rd of the 6 recorded" can agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judge.bundled import bundled_path, read_toml
from judge.errors import DatasetError
from judge.suites.catalogue import SUBTASKS
from judge.suites.metrics import rank_targets

FIGURE_OF_ROW: dict[tuple[str, str], tuple[str, str]] = {
    ("privacy", "awareness"): ("privacy/awareness", "awareness_r"),
    ("privacy", "leakage"): ("privacy/leakage", "leak_string_match"),
    ("ethics", "ethical reasoning"): ("ethics/reasoning", "accuracy"),
}
"""The rows of the paper's table that a recorded run can rank, and the summary figure that ranks each."""


@dataclass(frozen=True)
class RankTable:
    source: str
    git_blob: str
    models: tuple[tuple[str, str | None], ...]  # (the table's column label, the bundles' name or None)
    rows: dict[tuple[str, str], tuple[int, ...]]  # (pillar, sub-task) -> one rank per column


def parse_rank_table(data: Mapping[str, Any], where: str) -> RankTable:
    """The table, checked: every sub-task of the paper once, one rank in 1..N per model."""
    models = data.get("models")
    if not isinstance(models, list) or not models or not all(isinstance(m, dict) and isinstance(m.get("label"), str)
                                                             for m in models):
        raise DatasetError(f"{where}: `models` must be a list of tables with a `label`")
    n = len(models)
    rows: dict[tuple[str, str], tuple[int, ...]] = {}
    for i, row in enumerate(data.get("rows") or []):
        key = (row.get("pillar"), row.get("subtask"))
        ranks = row.get("ranks")
        if key not in SUBTASKS:
            raise DatasetError(f"{where}: rows[{i}]: {key} is not a sub-task of the paper's table")
        if key in rows:
            raise DatasetError(f"{where}: rows[{i}]: {key} is given twice")
        if not (isinstance(ranks, list) and len(ranks) == n
                and all(isinstance(r, int) and not isinstance(r, bool) and 1 <= r <= n for r in ranks)):
            raise DatasetError(f"{where}: rows[{i}] {key}: `ranks` must be {n} integers from 1 to {n}, one per model")
        rows[key] = tuple(ranks)
    missing = [key for key in SUBTASKS if key not in rows]
    if missing:
        raise DatasetError(f"{where}: no row for the sub-task(s) {missing}")
    return RankTable(source=str(data.get("source", "")), git_blob=str(data.get("git_blob", "")),
                     models=tuple((m["label"], m.get("recorded")) for m in models), rows=rows)


def load_rank_table(path: Path | None = None) -> RankTable:
    """The bundled transcription of the paper's rank table (or `path`)."""
    path = path or bundled_path("paper_rank_table.toml")
    return parse_rank_table(read_toml(path, DatasetError, "the paper's rank table"), str(path))


def _rank_among(ranks: Mapping[str, int]) -> dict[str, int]:
    """The table's ranks of a subset of its models, ranked again within the subset (1 = best; a tie stays)."""
    return rank_targets({target: float(rank) for target, rank in ranks.items()}, higher_is_better=False)


def rank_table_comparison(table: RankTable, ranks: Mapping[tuple[str, str], Mapping[str, int]]) -> list[dict[str, Any]]:
    """One cell per sub-task and model of the paper's table: the paper's rank, this run's rank for the rows
    a recorded figure ranks (`ranks`: (suite, metric) -> target -> rank), and the status: reproduced,
    differs (`difference`: this run's rank minus the paper's, among the models this run ranked), or no data.

    `paper_rank_among` is the paper's rank re-ranked among the models this run ranked on that row; it equals
    `paper_rank` when the run ranked every model of the table."""
    cells: list[dict[str, Any]] = []
    for (pillar, subtask), paper_ranks in table.rows.items():
        figure = FIGURE_OF_ROW.get((pillar, subtask))
        ours = ranks.get(figure, {}) if figure else {}
        ranked = {name: paper_rank for (_, name), paper_rank in zip(table.models, paper_ranks, strict=True)
                  if name is not None and name in ours}
        among = _rank_among(ranked)
        for (label, name), paper_rank in zip(table.models, paper_ranks, strict=True):
            rank = ours.get(name) if name is not None else None
            if rank is None:
                status, difference = "no data", None
            else:
                difference = rank - among[name]  # type: ignore[index]
                status = "reproduced" if difference == 0 else "differs"
            cells.append({"pillar": pillar, "subtask": subtask, "model": label, "target": name,
                          "figure": None if figure is None else f"{figure[0]} {figure[1]}",
                          "paper_rank": paper_rank, "paper_rank_among": among.get(name) if rank is not None else None,
                          "models_ranked": len(ranked), "rank": rank, "status": status,
                          "difference": difference if status == "differs" else None})
    return cells


def transcribed_rows(cells: Sequence[Mapping[str, Any]]) -> tuple[list[str], dict[str, list[int]]]:
    """The table as transcribed, read back from the comparison's cells: the model labels (its columns) and
    each sub-task's ranks ("pillar sub-task" -> one rank per column)."""
    rows: dict[str, list[int]] = {}
    for c in cells:
        rows.setdefault(f"{c['pillar']} {c['subtask']}", []).append(c["paper_rank"])
    return list(dict.fromkeys(c["model"] for c in cells)), rows
