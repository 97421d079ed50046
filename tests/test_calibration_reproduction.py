"""Reproduce the dataset authors' published agreement figures from the raw files of the registered datasets.

A difference beyond the published rounding is a bug: the comparisons below round our value exactly as
the authors printed theirs and compare the printed strings' numbers.
"""

from __future__ import annotations

import ast
import csv
import os
import re
from pathlib import Path

import numpy as np
import pytest

from calibration.annotations import CRISIS, CRISIS_JUDGES, EMPATHIC, _label_runs, load_crisis, load_empathic
from calibration.compute import build_matrices
from judge.datasets import dataset_file, get_dataset
from judge.stats import agreement as ag

MIRROR = Path(
    os.environ.get("TRUSTMH_DATA_MIRROR") or Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
)
pytestmark = pytest.mark.skipif(not MIRROR.is_dir(), reason="no dataset mirror (set TRUSTMH_DATA_MIRROR)")


@pytest.fixture(autouse=True)
def _mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTMH_DATA_MIRROR", str(MIRROR))


@pytest.fixture(scope="module")
def crisis() -> dict[str, object]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRUSTMH_DATA_MIRROR", str(MIRROR))
        return {m.criterion: m for m in build_matrices(load_crisis())}


def _markdown_tables(text: str, heading: str) -> dict[str, dict[str, str]]:
    """The pipe table under ``## heading`` as {row: {column: cell}}."""
    block = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in block.splitlines()
        if line.startswith("|") and not set(line) <= set("|:- ")
    ]
    header = rows[0][1:]
    return {r[0]: dict(zip(header, r[1:], strict=True)) for r in rows[1:]}


def _g6(value: float) -> float:
    """pandas' to_markdown formats floats with 6 significant digits."""
    return float(f"{value:.6g}")


# --------------------------------------------------------------------------- appropriateness (1-5)

PUBLISHED_NAMES = {
    "H1": "H1",
    "H2": "H2",
    "gpt-4o-mini": "gpt-4o-mini",
    "gpt-5-nano": "gpt-5-nano",
    "meta-llama": "Llama-4-Scout",
    "LLM-Jury": "jury",
}


def _appropriateness_vectors(crisis: dict[str, object]) -> dict[str, np.ndarray]:
    m = crisis["appropriateness"]
    vectors = {rater: m.humans[i] for i, rater in enumerate(m.raters)}
    for judge, runs in m.judges.items():
        with np.errstate(all="ignore"):
            vectors[judge] = np.where(np.isnan(runs).all(axis=0), np.nan, np.nanmean(runs, axis=0))
    return vectors


@pytest.mark.parametrize(
    ("heading", "metric", "scale"),
    [
        ("Pairwise MAE (lower is better)", ag.mae, 1.0),
        ("Pairwise RMSE (lower is better)", ag.rmse, 1.0),
        ("Pairwise Within-1 Agreement (higher is better)", ag.within_one_agreement, 100.0),
    ],
)
def test_crisis_appropriateness_pairwise_tables(
    crisis: dict[str, object], heading: str, metric: object, scale: float
) -> None:
    report = dataset_file(CRISIS, "outputs/appropriateness_agreement/appropriateness_agreement_report.md")
    table = _markdown_tables(report.read_text(encoding="utf-8"), heading)
    vectors = _appropriateness_vectors(crisis)
    assert set(table) == set(PUBLISHED_NAMES)
    for row, cells in table.items():
        for column, cell in cells.items():
            if row == column:
                continue
            ours = metric(vectors[PUBLISHED_NAMES[row]], vectors[PUBLISHED_NAMES[column]]) * scale
            assert _g6(ours) == float(cell), f"{heading}: {row} vs {column}: ours {ours!r}, published {cell}"


def test_crisis_coverage_and_jury_definition(crisis: dict[str, object]) -> None:
    vectors = _appropriateness_vectors(crisis)
    assert {name: int((~np.isnan(v)).sum()) for name, v in vectors.items()} == dict.fromkeys(vectors, 190)
    # The recorded jury is the mean of the three judges' item scores (themselves means of 3 runs).
    stacked = np.vstack([vectors["gpt-4o-mini"], vectors["gpt-5-nano"], vectors["Llama-4-Scout"]])
    with np.errstate(all="ignore"):
        assert np.allclose(np.nanmean(stacked, axis=0), vectors["jury"], equal_nan=True)


# --------------------------------------------------------------------------- crisis labels (categorical)


def _label_report() -> str:
    return dataset_file(CRISIS, "outputs/crisis_label_agreement/agreement_report.md").read_text(encoding="utf-8")


def _fleiss(rows: np.ndarray, n_categories: int) -> float:
    return ag.fleiss_kappa(ag.label_counts(rows, list(range(n_categories))))


def test_crisis_fleiss_kappa(crisis: dict[str, object]) -> None:
    text = _label_report()
    published = dict(re.findall(r"Fleiss' Kappa \(across ([^)]+)\): ([0-9.]+)", text))
    m = crisis["crisis_label"]
    k = len(m.scale.labels)
    assert f"{_fleiss(m.humans, k):.3f}" == published["all human annotators"]
    all_runs = np.vstack([m.judges[j] for j in ("gpt-4o-mini", "gpt-5-nano", "Llama-4-Scout")])
    assert f"{_fleiss(all_runs, k):.3f}" == published["all LLM annotators"]
    for judge, family in (
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-5-nano", "gpt-5-nano"),
        ("Llama-4-Scout", "meta-llama-Llama-4-Scout-17B-16E-Instruct"),
    ):
        assert f"{_fleiss(m.judges[judge], k):.3f}" == published[family], judge


def test_crisis_each_human_against_gpt_4o_mini(crisis: dict[str, object]) -> None:
    text = _label_report()
    summary = {
        (a, b): (float(rate), float(kappa))
        for a, b, rate, kappa in re.findall(r"^\| (\S+\.json) \| (\S+\.json) \| ([0-9.]+) \| ([0-9.]+) \|$", text, re.M)
    }
    averages = {
        (h, fam): (float(rate), float(kappa))
        for h, fam, rate, kappa in re.findall(
            r"^\| (H\d_\S+\.json) \| (\S+) \(n=3\)\| ([0-9.]+) \| ([0-9.]+) \|$", text, re.M
        )
    }
    m = crisis["crisis_label"]
    runs = m.judges["gpt-4o-mini"]
    files = [Path(p).name for p in _label_runs(get_dataset(CRISIS).files, CRISIS_JUDGES["gpt-4o-mini"][0])]
    assert len(files) == runs.shape[0] == 3
    human_files = {
        "H1": "H1_labeled_n206_s42.json",
        "H2": "H2_labeled_n206_s42.json",
        "H3": "H3_labeled_n206_s42.json",
        "H4": "H4_labelled_n206_s42.json",
    }
    codes = list(range(len(m.scale.labels)))
    for r, rater in enumerate(m.raters):
        rates, kappas = [], []
        for s, run_file in enumerate(files):
            rate = ag.exact_agreement(m.humans[r], runs[s]) * 100
            kappa = ag.cohen_kappa(m.humans[r], runs[s], codes)
            published_rate, published_kappa = summary[(human_files[rater], run_file)]
            assert (f"{rate:.3f}", f"{kappa:.3f}") == (f"{published_rate:.3f}", f"{published_kappa:.3f}"), rater
            rates.append(rate)
            kappas.append(kappa)
        published_rate, published_kappa = averages[(human_files[rater], "gpt-4o-mini")]
        assert f"{np.mean(rates):.3f}" == f"{published_rate:.3f}"
        assert f"{np.mean(kappas):.3f}" == f"{published_kappa:.3f}"


# --------------------------------------------------------------------------- empathic communication

SUBSET_NAMES = {
    "Lend an Ear": "lend_an_ear",
    "Perceived Empathy": "perceived_empathy",
    "Empathetic Dialogues": "empatheticdialogues",
    "EPITOME": "epitome",
}


def test_empathic_table_kappa_every_row() -> None:
    matrices = {m.criterion: m for m in build_matrices(load_empathic())}
    path = dataset_file(EMPATHIC, "annotations/table_kappa.csv")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 126
    mismatches = []
    for row in rows:
        m = matrices[f"{SUBSET_NAMES[row['Dataset']]}/{row['Dimension']}"]
        raters = {name: m.humans[i] for i, name in enumerate(m.raters)}
        # The authors' "experts" is the per-item median of the three experts; their "llm" is Gemini.
        raters["experts"] = np.median(np.vstack([raters["expert1"], raters["expert2"], raters["expert3"]]), axis=0)
        raters["llm"] = m.judges["gemini"][0]
        first, second = ast.literal_eval(row["Annotator Pair"])
        # Crowd ratings are means: the authors code every rating as round(100 * score) before the kappa.
        a, b = (np.round(raters[name] * 100) for name in (first, second))
        ours = ag.quadratic_weighted_kappa(a, b)
        published = row["Weighted Cohen's Kappa"]
        if f"{ours:.2f}" != published:
            mismatches.append(
                f"{row['Dataset']}/{row['Dimension']} {first}-{second}: ours {ours:.4f}, published {published}"
            )
    assert not mismatches, "\n".join(mismatches)
