"""The paper's rank table (data/paper_rank_table.toml) and a recorded run's ranks beside it."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from judge.errors import DatasetError
from judge.suites.catalogue import SUBTASKS
from judge.suites.metrics import rank_targets
from judge.suites.rank_table import RankTable, load_rank_table, parse_rank_table, rank_table_comparison


@pytest.fixture(scope="module")
def recorded_card() -> dict[str, Any]:
    from judge.suites.bench import run_recorded_bench

    with tempfile.TemporaryDirectory() as out:
        card = run_recorded_bench("trustmh-bench", Path(out), bootstrap=0, protocol="paper").scorecard
    assert card is not None
    return card


# ---------------------------------------------------------------- ranks with a tie-break, by hand


def test_a_tie_break_orders_a_tie_and_leaves_the_rest_alone() -> None:
    values = {"a": 0.7, "b": 0.7, "c": 0.9, "d": 0.5}
    assert rank_targets(values, True) == {"c": 1, "a": 2, "b": 2, "d": 4}
    assert rank_targets(values, True, {"a": 3.0, "b": 4.0}) == {"c": 1, "b": 2, "a": 3, "d": 4}
    assert rank_targets(values, True, {"a": 4.0, "b": 4.0}) == {"c": 1, "a": 2, "b": 2, "d": 4}
    assert rank_targets(values, True, {"a": 1.0}) == {"c": 1, "a": 2, "b": 3, "d": 4}  # no tie-break value: after
    assert rank_targets({"x": 0.2, "y": 0.1, "z": None}, False) == {"y": 1, "x": 2}


# ---------------------------------------------------------------- the transcription


def test_the_transcribed_table_has_every_sub_task_and_twelve_models() -> None:
    table = load_rank_table()
    assert set(table.rows) == set(SUBTASKS) and len(table.models) == 12
    assert table.git_blob == "1c3bce0e8b31ad550935fc4dacd4392428063ca0"
    # A rank is missing from a row only where the printed table shows a shared rank.
    shared = {key for key, ranks in table.rows.items() if sorted(ranks) != list(range(1, 13))}
    assert shared == {("reliability", "emotion recognition"), ("reliability", "psychological diagnosis"),
                      ("crisis", "escalation decision")}
    assert table.rows[("ethics", "ethical reasoning")] == (12, 3, 11, 10, 5, 8, 6, 4, 2, 9, 7, 1)


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["rows"].pop(), "no row for the sub-task"),
    (lambda d: d["rows"].append(dict(d["rows"][0])), "is given twice"),
    (lambda d: d["rows"][0].update(ranks=[1, 2]), "must be 12 integers from 1 to 12"),
    (lambda d: d["rows"][0].update(ranks=[0] * 12), "must be 12 integers from 1 to 12"),
    (lambda d: d["rows"][0].update(subtask="knowlege"), "is not a sub-task of the paper's table"),
    (lambda d: d.update(models="GPT"), "`models` must be a list"),
])
def test_a_wrong_table_is_refused_saying_where(change: Any, message: str) -> None:
    import tomllib

    from judge.bundled import bundled_path

    data = tomllib.loads(bundled_path("paper_rank_table.toml").read_text(encoding="utf-8"))
    change(data)
    with pytest.raises(DatasetError, match=message) as raised:
        parse_rank_table(data, "table.toml")
    assert str(raised.value).startswith("table.toml: ")


# ---------------------------------------------------------------- the comparison, with plain values


def _small_table() -> RankTable:
    rows = {key: tuple(range(1, 5)) for key in SUBTASKS}
    rows[("privacy", "leakage")] = (4, 1, 3, 2)
    return RankTable("src", "blob", (("A", "a"), ("B", "b"), ("C", "c"), ("D", None)), rows)


def test_cells_compare_an_order_among_the_models_ranked() -> None:
    cells = rank_table_comparison(_small_table(), {("privacy/leakage", "leak_string_match"): {"a": 2, "b": 1, "c": 3}})
    leakage = {c["model"]: c for c in cells if c["subtask"] == "leakage"}
    # The table's ranks 4, 1, 3 among a, b, c are 3, 1, 2: a is 3rd of 3 there and 2nd here.
    assert (leakage["A"]["paper_rank_among"], leakage["A"]["status"], leakage["A"]["difference"]) == (3, "differs", -1)
    assert (leakage["B"]["paper_rank_among"], leakage["B"]["status"], leakage["B"]["difference"]) == (1, "reproduced",
                                                                                                    None)
    assert leakage["C"]["status"] == "differs" and leakage["C"]["models_ranked"] == 3
    assert leakage["D"]["status"] == "no data" and leakage["D"]["paper_rank"] == 2
    assert {c["status"] for c in cells if c["subtask"] != "leakage"} == {"no data"}
    assert len(cells) == 4 * len(SUBTASKS)


# ---------------------------------------------------------------- the recorded run


def test_the_recorded_run_reproduces_the_tables_awareness_and_ethics_rows(recorded_card: dict[str, Any]) -> None:
    rank_table = recorded_card["published"]["rank_table"]
    cells = {(c["subtask"], c["model"]): c for c in rank_table["cells"]}
    ethics = [c for c in rank_table["cells"] if c["subtask"] == "ethical reasoning"]
    assert len(ethics) == 12 and all(c["status"] == "reproduced" and c["models_ranked"] == 12 for c in ethics)
    awareness = [c for c in rank_table["cells"] if c["subtask"] == "awareness" and c["status"] != "no data"]
    assert len(awareness) == 6 and all(c["status"] == "reproduced" for c in awareness)
    assert cells[("awareness", "Claude-Sonnet-4.5")]["paper_rank"] == 9  # 9th of 12, 5th of the six recorded
    assert cells[("awareness", "Claude-Sonnet-4.5")]["paper_rank_among"] == 5
    # Leakage: the string-match rate orders Gemini before Qwen, the table the other way round.
    leakage = {c["model"]: (c["paper_rank_among"], c["rank"]) for c in rank_table["cells"]
               if c["subtask"] == "leakage" and c["status"] != "no data"}
    assert leakage == {"DeepSeek-V3.2": (1, 1), "Qwen3-235B": (2, 3), "Gemini-2.5-flash": (3, 2),
                       "GPT-5.1": (4, 3), "GPT-4o-mini": (5, 5), "Claude-Sonnet-4.5": (6, 6)}
    assert rank_table["counts"] == {"reproduced": 21, "differs": 3, "no data": 228 - 24}


def test_ethics_ties_are_ordered_as_the_paper_orders_them(recorded_card: dict[str, Any]) -> None:
    """The published accuracies hold three ties; the mean sc1-sc5 score orders each pair as the table does."""
    ethics = {s["target"]: s for s in recorded_card["published"]["summary"] if s["metric"] == "accuracy"}
    tied: dict[float, list[tuple[str, int]]] = {}
    for target, s in ethics.items():
        tied.setdefault(s["published"], []).append((target, s["published_rank"]))
    assert {value: sorted(pairs) for value, pairs in tied.items() if len(pairs) > 1} == {
        0.736: [("Simpsybot", 4), ("gpt-4o-mini", 3)],
        0.728: [("SoulChat2", 6), ("qwen3-235b-a22b-instruct-2507", 5)],
        0.672: [("MentalLLaMA", 9), ("deepseek-v3.2", 8)],
    }
    assert all(s["rank_status"] == "reproduced" for s in ethics.values())


def test_the_rank_table_is_in_the_scorecard_and_the_report(recorded_card: dict[str, Any]) -> None:
    from judge.suites.scorecard import rank_table_markdown

    text = "\n".join(rank_table_markdown(recorded_card["published"]["rank_table"]))
    assert "## The paper's rank table beside this run (21 reproduced, 3 differ, 204 no data)" in text
    qwen = "| privacy leakage | privacy/leakage leak_string_match | Qwen3-235B | 5 | 2 of 6 | 3 | differs | +1 |"
    assert qwen in text
    assert "| ethics ethical reasoning | 12 | 3 | 11 | 10 | 5 | 8 | 6 | 4 | 2 | 9 | 7 | 1 |" in text
