"""`trustmh suites ...`, `trustmh metrics`, the recorded bench and the demo's scorecard, through the CLI."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from judge.errors import UsageError
from judge.stats.bootstrap import SMALL_N
from judge.suites.bench import run_recorded_bench
from judge.suites.catalogue import SUBTASKS, SUITES

MIRROR = Path(os.environ.get("TRUSTMH_DATA_MIRROR")
              or Path(__file__).resolve().parents[1].parent / "shared" / "datasets")
needs_mirror = pytest.mark.skipif(not MIRROR.is_dir(), reason="no dataset mirror (set TRUSTMH_DATA_MIRROR)")
THREE_PILLARS = [s.id for s in SUITES.values()
                 if s.status == "available" and s.pillar in ("safety", "privacy", "ethics")]


@pytest.fixture
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich tables on long lines, so assertions do not depend on the test terminal's width."""
    monkeypatch.setattr("judge.cli.suites_cmd.console", Console(width=2000))


@pytest.fixture
def mirror(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRUSTMH_DATA_MIRROR", str(MIRROR))
    return MIRROR


def test_suites_list_shows_every_sub_task_and_status(run_cli: Any, wide_console: None) -> None:
    result = run_cli("suites", "list")
    assert result.code == 0, result.stderr
    for suite in SUITES.values():
        assert suite.id in result.stdout
    for _, subtask in SUBTASKS:
        assert subtask.split(",")[0] in result.stdout
    for reason in ("are published elsewhere, not in the dataset mirror",
                   "C-SSRS data is published on Zenodo (record 2667859", "names no antitoxic dataset",
                   "PAS data is published on OSF (https://osf.io/smvw7/?view)"):
        assert reason in result.stdout
    assert "not built yet" not in result.stdout, "every suite with public data is built"
    assert "19 of the paper's 19 sub-tasks are listed" in result.stdout


def test_suites_show(run_cli: Any, wide_console: None) -> None:
    result = run_cli("suites", "show", "privacy/leakage")
    assert result.code == 0, result.stderr
    for text in ("leak_string_match (ranked) (deterministic; lower is better)", "has_z", "judged_leak_rate (judge;",
                 "Qiyuan0130/TrustMH_Bench@94d65dbd125b"):
        assert text in result.stdout
    unknown = run_cli("suites", "show", "privacy/nope")
    assert unknown.code == 2 and "SUITE: unknown suite 'privacy/nope'" in unknown.stderr


def test_suites_build_refuses_bad_names_before_writing(run_cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "p.jsonl"
    result = run_cli("suites", "build", "safety/jailbreak", "safety/nope", "--out", out)
    assert result.code == 2 and "SUITE: unknown suite(s) 'safety/nope'" in result.stderr
    result = run_cli("suites", "build", "reliability/diagnosis", "--out", out)
    assert result.code == 2 and "are published elsewhere, not in the dataset mirror" in result.stderr
    pending = [s.id for s in SUITES.values() if s.status == "not built yet"]
    if pending:
        result = run_cli("suites", "build", pending[0], "--out", out)
        assert result.code == 2 and "not built yet" in result.stderr
    result = run_cli("suites", "build", "ethics/reasoning", "ethics/reasoning", "--out", out)
    assert result.code == 2 and "named twice" in result.stderr
    assert run_cli("suites", "build", "ethics/reasoning", "--out", out, "--limit", "-1").code == 2
    assert not out.exists()


def test_suites_build_without_data_says_where_it_looked(run_cli: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTMH_DATA_MIRROR", str(tmp_path / "empty"))
    result = run_cli("suites", "build", "safety/direct-harm", "--out", tmp_path / "p.jsonl")
    assert result.code == 2 and "dataset/PsyHarm.csv: not found" in result.stderr
    assert not (tmp_path / "p.jsonl").exists()


@needs_mirror
def test_suites_build_with_limit_and_seed_is_reproducible(run_cli: Any, tmp_path: Path, mirror: Path) -> None:
    first, second, other = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    for path, seed in ((first, "3"), (second, "3"), (other, "4")):
        result = run_cli("suites", "build", *THREE_PILLARS, "--out", path, "--limit", "6", "--seed", seed)
        assert result.code == 0, result.stderr
    assert first.read_bytes() == second.read_bytes() != other.read_bytes()
    assert first.stat().st_mode & 0o077 == 0
    prompts = [json.loads(line) for line in first.read_text().splitlines()]
    assert len(prompts) == 6 * len(THREE_PILLARS)
    assert [p["meta"]["suite"] for p in prompts] == [s for s in THREE_PILLARS for _ in range(6)]
    assert all("response" not in p for p in prompts)


# ---------------------------------------------------------------- a run with fake targets and judges


def _fake_run(prompts: list[dict[str, Any]], run_dir: Path) -> None:
    """What respond + score would write for two targets: seeded fake answers (some failed) and verdicts."""
    rng = random.Random(5)
    calls, verdicts = [], []
    criteria = {"safety": ["harmful_compliance", "safe_alternative"], "privacy": ["confidentiality_kept"],
                "ethics": ["beneficence_nonmaleficence", "integrity"],
                "support": ["engages_with_concern", "empathic_reflection", "exploration", "stage_appropriate_help",
                            "respect_and_autonomy"],
                "fairness": ["care_quality", "no_stereotyping"]}
    for target in ("openai:fake-a", "anthropic:fake-b"):
        for prompt in prompts:
            meta = prompt["meta"]
            failed = rng.random() < 0.1
            if meta["suite"].startswith("privacy/awareness"):
                answer = rng.choice(["4) very sensitive", "2) not too sensitive", "-50) somewhat disagree",
                                     "50) somewhat agree", "100) strongly agree", "no idea"])
            elif meta["suite"] == "ethics/reasoning":
                answer = json.dumps({"choice": rng.choice("ABCD"), "reasoning": "..."})
            elif meta["suite"] == "reliability/knowledge":
                answer = rng.choice(["Answer: A", "Answer: B", "The answer is C.", "I am not sure."])
            elif meta["suite"] == "reliability/emotion-recognition":
                answer = rng.choice(["Emotion: A\nCause: B", "Emotion: B\nCause: A", "Hard to say."])
            else:
                answer = rng.choice(["I can't share that.", "Xiao Jun told me everything.", "No.", "Dr. Sun"])
            call = {"id": f"{prompt['id']}@{target}", "prompt_id": prompt["id"], "target": target, "sample": 0,
                    "status": "failed" if failed else "ok", "response": None if failed else answer,
                    "failure_reason": "http_500" if failed else None, "meta": meta}
            calls.append(call)
            if failed or "pillar" not in prompt:
                continue
            pillars = prompt["pillar"] if isinstance(prompt["pillar"], list) else [prompt["pillar"]]
            for pillar in pillars:
                for criterion in criteria[pillar]:
                    verdicts.append({"item_id": call["id"], "pillar": pillar, "criterion": criterion,
                                     "judge": "openai:fake-judge", "sample": 0, "status": "ok",
                                     "score": rng.randint(1, 3), "target": target,
                                     "meta": {**meta, "prompt_id": prompt["id"], "sample": 0}})
    (run_dir / "respond").mkdir(parents=True)
    (run_dir / "score").mkdir()
    (run_dir / "respond" / "calls.jsonl").write_text("".join(json.dumps(c) + "\n" for c in calls))
    (run_dir / "score" / "verdicts.jsonl").write_text("".join(json.dumps(v) + "\n" for v in verdicts))


@needs_mirror
def test_metrics_gives_a_record_for_every_target_suite_and_metric(run_cli: Any, tmp_path: Path, mirror: Path,
                                                                  wide_console: None) -> None:
    prompts_path = tmp_path / "prompts.jsonl"
    assert run_cli("suites", "build", *THREE_PILLARS, "--out", prompts_path, "--limit", "16").code == 0
    prompts = [json.loads(line) for line in prompts_path.read_text().splitlines()]
    run_dir = tmp_path / "run"
    _fake_run(prompts, run_dir)
    result = run_cli("metrics", run_dir, "--bootstrap", "200", "--seed", "2")
    assert result.code == 0, result.stderr
    card = json.loads((run_dir / "scorecard.json").read_text())
    assert (run_dir / "scorecard.md").read_text().startswith("# Scorecard")
    assert (run_dir / "scorecard.json").stat().st_mode & 0o077 == 0
    for target in ("openai:fake-a", "anthropic:fake-b"):
        for suite_id in THREE_PILLARS:
            for metric in (m for m in SUITES[suite_id].metrics if m.protocol != "paper"):  # a rubric run
                records = [r for r in card["results"] if (r["target"], r["suite"], r["metric"])
                           == (target, suite_id, metric.name)]
                assert records, (target, suite_id, metric.name)
                for record in records:
                    assert record["n"] > 0 and record["value"] is not None
                    if record["n"] == 1:  # e.g. a breakdown group of one prompt: no interval, n says why
                        assert record["ci_low"] is None
                    else:
                        assert record["ci_low"] is not None and record["ci_low"] <= record["ci_high"], record
                    assert record["small_n"] is (record["n"] < SMALL_N), record  # 16 prompts a suite: all small
    assert set(card) == {"results", "ranks", "pillar_ranks", "unparsed", "seed", "bootstrap", "small_n_below",
                         "protocol"}
    assert card["small_n_below"] == SMALL_N
    assert card["protocol"] == "rubric"  # a run without bench.json
    assert set(card["results"][0]) == {"target", "pillar", "suite", "metric", "value", "ci_low", "ci_high", "n", "se",
                                       "small_n", "higher_is_better", "source", "group", "protocol"}
    assert {r["protocol"] for r in card["results"]} == {"rubric"}
    assert "*small n*" in (run_dir / "scorecard.md").read_text()
    assert "* small n: a value over fewer than 30 prompts" in result.stdout
    assert set(card["ranks"]) == set(THREE_PILLARS)
    assert set(card["pillar_ranks"]) == {SUITES[s].pillar for s in THREE_PILLARS}
    assert card["seed"] == 2 and card["bootstrap"] == 200
    assert any(u["answer"] == "no idea" for u in card["unparsed"])
    again = run_cli("metrics", run_dir, "--bootstrap", "200", "--seed", "2")
    assert again.code == 0 and json.loads((run_dir / "scorecard.json").read_text()) == card


def test_metrics_on_a_bad_run_directory_names_the_file_and_line(run_cli: Any, tmp_path: Path) -> None:
    result = run_cli("metrics", tmp_path)
    assert result.code == 2 and "respond/calls.jsonl: not found" in result.stderr
    (tmp_path / "respond").mkdir()
    (tmp_path / "respond" / "calls.jsonl").write_text('{"id": "x"}\n{broken\n')
    result = run_cli("metrics", tmp_path)
    assert result.code == 2 and "calls.jsonl:1: missing field 'target'" in result.stderr
    assert not (tmp_path / "scorecard.json").exists()


@needs_mirror
def test_bench_recorded_through_the_cli(run_cli: Any, tmp_path: Path, mirror: Path) -> None:
    result = run_cli("bench", "--recorded", "trustmh-bench", "--out", tmp_path / "r", "--bootstrap", "20")
    assert result.code == 0, result.stderr
    assert (tmp_path / "r" / "scorecard.json").is_file() and (tmp_path / "r" / "scorecard.md").is_file()
    result = run_cli("bench", "--recorded", "nope", "--out", tmp_path / "n")
    assert result.code == 2 and "--recorded 'nope': unknown recorded run" in result.stderr
    assert not (tmp_path / "n").exists()


@needs_mirror
def test_recorded_bench_writes_the_layout_and_scorecard(tmp_path: Path, mirror: Path) -> None:
    out = tmp_path / "recorded"
    run_recorded_bench("trustmh-bench", out, bootstrap=50, seed=1)
    card = json.loads((out / "scorecard.json").read_text())
    bench = json.loads((out / "bench.json").read_text())
    assert bench["recorded"] == "trustmh-bench" and len(bench["targets"]) == 12
    accuracy = next(r for r in card["results"] if (r["target"], r["metric"]) == ("gpt-4o-mini", "accuracy"))
    assert accuracy["value"] == pytest.approx(0.736) and accuracy["ci_low"] < 0.736 < accuracy["ci_high"]
    with pytest.raises(UsageError, match="'other': unknown recorded run") as raised:
        run_recorded_bench("other", tmp_path / "x")
    assert raised.value.field == "recorded"


@needs_mirror
def test_demo_prints_the_recorded_scorecard(capsys: pytest.CaptureFixture[str], mirror: Path) -> None:
    from judge.suites.demo import print_recorded_scorecard

    print_recorded_scorecard(Console(width=80))  # the demo's tables fit a plain terminal
    text = capsys.readouterr().out
    assert "Medtron3-70B" in text and "gpt-5.1" in text
    assert "0.736" in text and "4.25" in text  # gpt-4o-mini: accuracy, sc1 mean (published 4.248)
    assert "0.833" in text  # gpt-5.1 tier 2a r
    assert "…" not in text, "no value is cut"


def test_demo_scorecard_without_data_prints_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from judge.suites.demo import print_recorded_scorecard

    monkeypatch.setenv("TRUSTMH_DATA_MIRROR", str(tmp_path))
    print_recorded_scorecard(Console(width=200))
    text = capsys.readouterr().out
    assert "Recorded scorecard skipped" in text and "TRUSTMH_DATA_MIRROR" in text


def test_build_prompts_names_the_field_it_was_given() -> None:
    from judge.suites.catalogue import build_prompts

    with pytest.raises(UsageError, match=r"^suites: unknown suite\(s\) 'x/y'") as raised:
        build_prompts(["x/y"], None, 0)
    assert raised.value.field == "suites"
    with pytest.raises(UsageError, match=r"^SUITE: sycophancy/pas cannot be built \(unavailable: the PAS data"):
        build_prompts(["sycophancy/pas"], None, 0, field="SUITE")
