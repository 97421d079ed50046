"""`trustmh calibrate` end to end on small hand-made files, plus dataset access and the demo."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from calibration.cli import calibrate_command
from calibration.demo import print_crisis_calibration
from judge import datasets as registry

app = typer.Typer()
app.command()(calibrate_command)
runner = CliRunner()
MIRROR = Path(
    os.environ.get("TRUSTMH_DATA_MIRROR") or Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
)

HUMAN_SCORES = {  # item -> three humans' scores; items 0-5 from system A, 6-11 from system B
    f"i{k}": s
    for k, s in enumerate(
        [
            (1, 1, 2),
            (2, 2, 2),
            (3, 3, 4),
            (4, 4, 4),
            (5, 5, 5),
            (2, 3, 2),
            (1, 2, 1),
            (3, 3, 3),
            (4, 5, 4),
            (5, 4, 5),
            (2, 2, 1),
            (3, 4, 3),
        ]
    )
}


def _write_inputs(tmp: Path, judge_offset: int = 0) -> tuple[Path, Path]:
    human = tmp / "human.jsonl"
    judged = tmp / "judged.csv"
    with human.open("w") as out:
        for k, (item, scores) in enumerate(HUMAN_SCORES.items()):
            for rater, score in zip(("ann", "bob", "cyd"), scores, strict=True):
                out.write(
                    json.dumps(
                        {
                            "item_id": item,
                            "criterion": "empathy",
                            "rater": rater,
                            "score": score,
                            "target": "A" if k < 6 else "B",
                        }
                    )
                    + "\n"
                )
    lines = ["item_id,criterion,judge,score,sample,target"]
    for k, (item, scores) in enumerate(HUMAN_SCORES.items()):
        for sample in (0, 1):
            good = min(5, max(1, sorted(scores)[1] + judge_offset))
            lines.append(f"{item},empathy,good-judge,{good},{sample},{'A' if k < 6 else 'B'}")
            lines.append(f"{item},empathy,odd-judge,{6 - scores[0]},{sample},{'A' if k < 6 else 'B'}")
    judged.write_text("\n".join(lines) + "\n")
    return human, judged


def _records(out: Path) -> list[dict[str, object]]:
    return json.loads((out / "calibration.json").read_text())["results"]


def test_item_level_report(tmp_path: Path) -> None:
    human, judged = _write_inputs(tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["--human", str(human), "--judged", str(judged), "--out", str(out), "--bootstrap", "30", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    records = _records(out)
    by = {(r["judge"], r["metric"], r["against"]): r for r in records}
    assert by[("good-judge", "exact", None)]["value"] == pytest.approx(1.0)
    assert by[("good-judge", "qwk", None)]["value"] == pytest.approx(1.0)
    assert by[("odd-judge", "spearman", None)]["value"] < 0
    assert by[(None, "alpha_ordinal", None)]["judge"] is None and by[(None, "alpha_ordinal", None)]["n"] == 12
    assert by[("good-judge", "self_consistency", None)]["value"] == pytest.approx(1.0)
    assert by[("good-judge", "alt_test_passed", None)]["value"] == 1.0
    low, high = by[("odd-judge", "mae", None)]["ci_low"], by[("odd-judge", "mae", None)]["ci_high"]
    assert low <= by[("odd-judge", "mae", None)]["value"] <= high
    assert {"ann", "bob", "cyd"} <= {r["against"] for r in records}
    for record in records:
        assert set(record) >= {"criterion", "judge", "level", "metric", "value", "ci_low", "ci_high", "n"}
        if record["value"] is None:
            assert record["reason"]
    markdown = (out / "calibration.md").read_text()
    assert "| good-judge |" in markdown and "Confusion" in markdown
    # Same seed, same intervals.
    runner.invoke(
        app,
        [
            "--human",
            str(human),
            "--judged",
            str(judged),
            "--out",
            str(tmp_path / "again"),
            "--bootstrap",
            "30",
            "--seed",
            "3",
        ],
    )
    assert [r["ci_low"] for r in _records(tmp_path / "again")] == [r["ci_low"] for r in records]


def test_target_level(tmp_path: Path) -> None:
    human, judged = _write_inputs(tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["--human", str(human), "--judged", str(judged), "--out", str(out), "--level", "target", "--bootstrap", "0"],
    )
    assert result.exit_code == 0, result.output
    records = _records(out)
    assert {r["level"] for r in records} == {"target"}
    mae = next(r for r in records if r["judge"] == "good-judge" and r["metric"] == "mae")
    assert mae["n"] == 2
    qwk = next(r for r in records if r["judge"] == "good-judge" and r["metric"] == "qwk")
    assert qwk["value"] is None and "per-system" in qwk["reason"]


def test_gate_exit_code_names_failures(tmp_path: Path) -> None:
    human, judged = _write_inputs(tmp_path)
    result = runner.invoke(
        app,
        [
            "--human",
            str(human),
            "--judged",
            str(judged),
            "--out",
            str(tmp_path / "o"),
            "--bootstrap",
            "0",
            "--gate",
            "qwk>=0.6",
            "--gate",
            "mae<=1",
        ],
    )
    assert result.exit_code == 4
    assert "empathy × odd-judge" in result.output and "good-judge" not in result.output
    passing = runner.invoke(
        app,
        [
            "--human",
            str(human),
            "--judged",
            str(judged),
            "--out",
            str(tmp_path / "p"),
            "--bootstrap",
            "0",
            "--gate",
            "alpha_ordinal>0.5",
        ],
    )
    assert passing.exit_code == 0, passing.output


@pytest.mark.parametrize("gate", ["qwk=>0.6", "alpha>=x", "nonexistent_metric>=1"])
def test_bad_gate_is_usage_error(tmp_path: Path, gate: str) -> None:
    human, judged = _write_inputs(tmp_path)
    result = runner.invoke(
        app,
        [
            "--human",
            str(human),
            "--judged",
            str(judged),
            "--out",
            str(tmp_path / "o"),
            "--bootstrap",
            "0",
            "--gate",
            gate,
        ],
    )
    assert result.exit_code == 2
    assert "--gate" in result.output


def test_bad_lines_are_reported_with_file_and_line(tmp_path: Path) -> None:
    human = tmp_path / "bad.jsonl"
    human.write_text(
        '{"item_id": "a", "criterion": "c", "rater": "x", "score": 3}\n'
        '{"item_id": "a", "criterion": "c", "rater": "y", "score": "high"}\n'
        '{"item_id": "b", "criterion": "c", "score": 2}\n'
        '{"item_id": "b", "criterion": "c", "rater": "y", "score": 2\n'
    )
    _, judged = _write_inputs(tmp_path)
    result = runner.invoke(app, ["--human", str(human), "--judged", str(judged), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert f"{human}:2: field 'score' must be a number" in result.output
    assert f"{human}:3: missing field 'rater'" in result.output
    assert f"{human}:4: not valid JSON" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_duplicates_missing_files_and_usage(tmp_path: Path) -> None:
    human, judged = _write_inputs(tmp_path)
    dup = tmp_path / "dup.jsonl"
    dup.write_text(human.read_text().splitlines()[0] + "\n" + human.read_text().splitlines()[0] + "\n")
    result = runner.invoke(app, ["--human", str(dup), "--judged", str(judged)])
    assert result.exit_code == 2 and "duplicate" in result.output
    result = runner.invoke(app, ["--human", str(tmp_path / "nope.csv"), "--judged", str(judged)])
    assert result.exit_code == 2 and "no such file" in result.output
    assert runner.invoke(app, ["--human", str(human)]).exit_code == 2
    assert runner.invoke(app, ["--dataset", "unknown-set"]).exit_code == 2


def test_run_directory_uses_ok_verdicts_only(tmp_path: Path) -> None:
    human, _ = _write_inputs(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    with (run / "verdicts.jsonl").open("w") as out:
        for item, scores in HUMAN_SCORES.items():
            base = {
                "item_id": item,
                "pillar": "reliability",
                "criterion": "empathy",
                "judge": "openai:gpt-x",
                "sample": 0,
                "rationale": "",
                "evidence": [],
                "error": None,
                "target": None,
                "meta": {},
            }
            out.write(json.dumps({**base, "status": "ok", "score": sorted(scores)[1]}) + "\n")
            out.write(
                json.dumps({**base, "sample": 1, "status": "failed", "score": None, "error": "parse failure"}) + "\n"
            )
    out_dir = tmp_path / "o"
    result = runner.invoke(
        app, ["--human", str(human), "--judged", str(run), "--out", str(out_dir), "--bootstrap", "0"]
    )
    assert result.exit_code == 0, result.output
    by = {(r["judge"], r["metric"], r["against"]): r for r in _records(out_dir)}
    assert by[("openai:gpt-x", "exact", None)]["value"] == 1.0
    # One ok sample per item: self-consistency is null with a reason, not a made-up number.
    assert by[("openai:gpt-x", "self_consistency", None)]["value"] is None


def test_human_only_single_rater_reports_nulls_with_reasons(tmp_path: Path) -> None:
    human = tmp_path / "h.csv"
    human.write_text("item_id,criterion,rater,score\n" + "".join(f"i{k},c,solo,{k % 5 + 1}\n" for k in range(8)))
    judged = tmp_path / "j.csv"
    judged.write_text("item_id,criterion,judge,score\n" + "".join(f"i{k},c,j,{k % 5 + 1}\n" for k in range(8)))
    result = runner.invoke(
        app, ["--human", str(human), "--judged", str(judged), "--out", str(tmp_path / "o"), "--bootstrap", "0"]
    )
    assert result.exit_code == 0, result.output
    by = {(r["judge"], r["metric"], r["against"]): r for r in _records(tmp_path / "o")}
    assert by[(None, "alpha_ordinal", None)]["value"] is None and by[(None, "alpha_ordinal", None)]["reason"]
    assert by[("j", "alt_test_winning_rate", None)]["value"] is None
    assert by[("j", "qwk", None)]["value"] == pytest.approx(1.0)


# --------------------------------------------------------------------------- dataset access


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    import hashlib

    content = b"a,b\n1,2\n"
    dataset = registry.Dataset(
        "toy", "someone/toy", "a" * 40, "MIT", "Toy", {"d/x.csv": hashlib.sha256(content).hexdigest()}
    )
    monkeypatch.setattr(registry, "load_registry", lambda path=registry.REGISTRY_PATH: {"toy": dataset})
    monkeypatch.setenv(registry.CACHE_ENV, str(tmp_path / "cache"))
    return content


def test_mirror_read_and_checksum_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toy: bytes) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "toy" / "d").mkdir(parents=True)
    (mirror / "toy" / "d" / "x.csv").write_bytes(toy)
    monkeypatch.setenv(registry.MIRROR_ENV, str(mirror))
    assert registry.dataset_file("toy", "d/x.csv").read_bytes() == toy
    (mirror / "toy" / "d" / "x.csv").write_bytes(b"tampered\n")
    with pytest.raises(registry.DatasetError, match=r"x\.csv: sha256 .* does not match"):
        registry.dataset_file("toy", "d/x.csv")
    with pytest.raises(registry.DatasetError, match="not registered"):
        registry.dataset_file("toy", "d/other.csv")


def test_download_failure_says_to_set_the_mirror(monkeypatch: pytest.MonkeyPatch, toy: bytes) -> None:
    monkeypatch.delenv(registry.MIRROR_ENV, raising=False)

    def unreachable(url: str, destination: Path) -> None:
        assert url == f"https://raw.githubusercontent.com/someone/toy/{'a' * 40}/d/x.csv"
        raise OSError("network is unreachable")

    with pytest.raises(registry.DatasetError, match="set TRUSTMH_DATA_MIRROR"):
        registry.dataset_file("toy", "d/x.csv", fetch=unreachable)


def test_download_is_verified_and_cached(monkeypatch: pytest.MonkeyPatch, toy: bytes) -> None:
    monkeypatch.delenv(registry.MIRROR_ENV, raising=False)
    calls: list[str] = []

    def serve(url: str, destination: Path) -> None:
        calls.append(url)
        destination.write_bytes(toy)

    first = registry.dataset_file("toy", "d/x.csv", fetch=serve)
    second = registry.dataset_file("toy", "d/x.csv", fetch=serve)
    assert first == second and first.read_bytes() == toy and len(calls) == 1

    def corrupt(url: str, destination: Path) -> None:
        destination.write_bytes(b"html error page")

    first.unlink()
    with pytest.raises(registry.DatasetError, match="does not match"):
        registry.dataset_file("toy", "d/x.csv", fetch=corrupt)
    assert not first.exists()


def test_registry_lists_checksums_for_every_dataset() -> None:
    datasets = registry.load_registry()
    assert {"trustmh-bench", "llms-mental-health-crisis", "empathic-communication", "confaide"} <= set(datasets)
    for dataset in datasets.values():
        assert len(dataset.commit) == 40 and dataset.files and dataset.citation and dataset.licence
        assert all(len(sha) == 64 for sha in dataset.files.values())


@pytest.mark.skipif(not MIRROR.is_dir(), reason="no dataset mirror")
def test_every_registered_file_matches_the_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(registry.MIRROR_ENV, str(MIRROR))
    for name, dataset in registry.load_registry().items():
        for path in dataset.files:
            assert registry.dataset_file(name, path).is_file()


# --------------------------------------------------------------------------- demo


def test_demo_without_dataset_prints_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(registry.MIRROR_ENV, str(tmp_path / "empty"))
    console = Console(record=True, width=200)
    print_crisis_calibration(console)
    text = console.export_text()
    assert "TRUSTMH_DATA_MIRROR" in text and len(text.strip().splitlines()) == 1


@pytest.mark.skipif(not MIRROR.is_dir(), reason="no dataset mirror")
def test_demo_prints_the_crisis_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(registry.MIRROR_ENV, str(MIRROR))
    console = Console(record=True, width=200)
    print_crisis_calibration(console)
    text = console.export_text()
    for judge in ("gpt-4o-mini", "gpt-5-nano", "Llama-4-Scout", "jury"):
        assert judge in text
    assert "0.806" in text  # the two humans' own ordinal alpha


@pytest.mark.skipif(not MIRROR.is_dir(), reason="no dataset mirror")
def test_dataset_option(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(registry.MIRROR_ENV, str(MIRROR))
    out = tmp_path / "o"
    result = runner.invoke(
        app,
        [
            "--dataset",
            "llms-mental-health-crisis",
            "--out",
            str(out),
            "--bootstrap",
            "0",
            "--gate",
            "alpha_nominal>=0.9",
        ],
    )
    assert result.exit_code == 4
    assert "crisis_label × humans" in result.output
    records = _records(out)
    mae = next(r for r in records if r["judge"] == "gpt-4o-mini" and r["metric"] == "mae" and r["against"] == "H1")
    assert round(mae["value"], 6) == 0.685965  # the published pairwise MAE


def test_judge_without_a_score_on_the_human_rated_item_gives_null_metrics_not_a_crash(tmp_path: Path) -> None:
    # The review loop's case: the judge said "not applicable" for x1, which the humans rated.
    human, judged, out = tmp_path / "h.jsonl", tmp_path / "j.jsonl", tmp_path / "out"
    human.write_text("".join(json.dumps({"item_id": "x1", "criterion": "c", "rater": r, "score": s}) + "\n"
                             for r, s in (("h1", 3), ("h2", 4))))
    judged.write_text(json.dumps({"item_id": "x2", "criterion": "c", "judge": "j", "score": 3}) + "\n")
    result = runner.invoke(app, ["--human", str(human), "--judged", str(judged), "--out", str(out),
                                 "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    judge_records = [r for r in _records(out) if r["judge"] == "j"]
    assert judge_records and all(r["value"] is None and r["reason"] for r in judge_records)


def test_the_readme_gate_example_gates_the_judge_not_the_humans(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    (gate,) = re.findall(r"trustmh calibrate --human \S+ --judged \S+ --gate '([^']+)'", readme)
    human, judged = _write_inputs(tmp_path)
    both = runner.invoke(app, ["--human", str(human), "--judged", str(judged), "--out", str(tmp_path / "a"),
                               "--bootstrap", "0", "--gate", gate])
    assert both.exit_code == 4, both.output
    assert "empathy × odd-judge" in both.output and "good-judge" not in both.output
    good_only = tmp_path / "good.csv"
    good_only.write_text("".join(line + "\n" for line in judged.read_text().splitlines() if "odd-judge" not in line))
    passing = runner.invoke(app, ["--human", str(human), "--judged", str(good_only), "--out", str(tmp_path / "b"),
                                  "--bootstrap", "0", "--gate", gate])
    assert passing.exit_code == 0, passing.output
    # The humans' own alpha would have let the anti-correlated judge through.
    humans_only = runner.invoke(app, ["--human", str(human), "--judged", str(judged), "--out", str(tmp_path / "c"),
                                      "--bootstrap", "0", "--gate", "alpha_ordinal>=0.667"])
    assert humans_only.exit_code == 0, humans_only.output


def test_two_raters_whose_consensus_is_nobodys_score_are_calibrated(tmp_path: Path) -> None:
    """Two humans score 2 and 4: the consensus 3 is a score neither gave (nor the judge). The categories
    of kappa and the confusion matrix are the union of every side's values, the consensus included."""
    human, judged, out = tmp_path / "h.jsonl", tmp_path / "j.jsonl", tmp_path / "out"
    pairs = {"x1": (2, 4), "x2": (1, 1), "x3": (5, 5), "x4": (2, 2)}
    rows = [{"item_id": item, "criterion": "c", "rater": rater, "score": score}
            for item, scores in pairs.items() for rater, score in zip(("h1", "h2"), scores, strict=True)]
    human.write_text("".join(json.dumps(row) + "\n" for row in rows))
    judge_scores = {"x1": 2, "x2": 1, "x3": 5, "x4": 4}
    judged.write_text("".join(json.dumps({"item_id": i, "criterion": "c", "judge": "j", "score": s}) + "\n"
                              for i, s in judge_scores.items()))
    result = runner.invoke(app, ["--human", str(human), "--judged", str(judged), "--out", str(out),
                                 "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    (qwk,) = [r for r in _records(out) if r["judge"] == "j" and r["metric"] == "qwk" and r["against"] is None]
    assert qwk["value"] is not None and -1 <= qwk["value"] <= 1
