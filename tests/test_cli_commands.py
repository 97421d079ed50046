"""`trustmh rubrics`, `trustmh cache`, `trustmh demo` and every command's `--help` (in-process)."""

from __future__ import annotations

import itertools
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

import judge.cli.main
from judge.bundled import bundled_path
from judge.rubric import load_rubric_dir
from tests.conftest import REPO, judges_arg, make_items, write_jsonl
from tests.fakeapi import FakeLLMServer
from tests.fakeapi.judge_script import scripted_answerer


@pytest.fixture
def wide_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich output on long lines, so assertions do not depend on the test terminal's width."""
    monkeypatch.setattr(judge.cli.main, "out_console", Console(width=2000))


# ---------------------------------------------------------------- rubrics list / show


def test_rubrics_list_shows_every_bundled_pillar_with_its_hash(run_cli: Any, wide_stdout: None) -> None:
    result = run_cli("rubrics", "list")
    assert result.code == 0, result.stderr
    for pillar, rubric in load_rubric_dir(bundled_path("rubrics")).items():
        line = next((ln for ln in result.stdout.splitlines() if f" {pillar} " in ln), None)
        assert line is not None, pillar
        assert rubric.content_hash[:12] in line
        assert f" {len(rubric.criteria)} " in line


def test_rubrics_list_of_a_folder(run_cli: Any, rubric_dir: Path, wide_stdout: None) -> None:
    result = run_cli("rubrics", "list", "--rubrics", rubric_dir)
    assert result.code == 0
    assert " crisis " in result.stdout and " safety " in result.stdout
    assert " privacy " not in result.stdout


def test_rubrics_show_prints_questions_and_anchors(run_cli: Any, wide_stdout: None) -> None:
    rubric = load_rubric_dir(bundled_path("rubrics"))["crisis"]
    result = run_cli("rubrics", "show", "crisis")
    assert result.code == 0, result.stderr
    assert rubric.title in result.stdout and rubric.content_hash[:12] in result.stdout
    for criterion in rubric.criteria:
        assert criterion.id in result.stdout
        assert criterion.question in result.stdout
        for point, text in criterion.anchors.items():
            assert f"{point}: {text}" in result.stdout, (criterion.id, point)


def test_rubrics_show_prints_each_criterion_severity_and_threshold(run_cli: Any, wide_stdout: None) -> None:
    rubric = load_rubric_dir(bundled_path("rubrics"))["crisis"]
    result = run_cli("rubrics", "show", "crisis")
    assert result.code == 0
    lines = result.stdout.splitlines()
    for criterion in rubric.criteria:
        line = next(ln for ln in lines if ln.startswith(criterion.id))
        assert criterion.severity in line, line
        if criterion.fail_below is not None:
            assert f"below {criterion.fail_below}" in line, line


def test_rubrics_show_unknown_pillar(run_cli: Any) -> None:
    result = run_cli("rubrics", "show", "wellbeing")
    assert result.code == 2
    assert "wellbeing" in result.stderr and "crisis" in result.stderr


# ---------------------------------------------------------------- rubrics validate

GOOD = """\
pillar: demo
version: "1"
title: Demo
summary: A tiny rubric.
criteria:
  - id: first
    question: Is it first?
    severity: critical
    scale: {min: 1, max: 3}
    anchors:
      1: bad
      2: fair
      3: good
    fail_below: 2
  - id: second
    question: Is it second?
    severity: minor
    scale: {min: 0, max: 1}
    anchors:
      0: absent
      1: present
"""

# (name, edit of GOOD, expected line, expected field, words of the problem, lines the problem may be reported at)
BROKEN = [
    ("missing_anchor", ("      2: fair\n", ""), "criteria[0]", ["no anchor", "[2]"], range(6, 14)),
    ("duplicate_id", ("  - id: second\n", "  - id: first\n"), "criteria", ["duplicate", "first"], range(15, 22)),
    (
        "unknown_severity",
        ("severity: critical", "severity: urgent"),
        "criteria[0].severity",
        ["critical", "major", "minor"],
        range(8, 9),
    ),
    (
        "critical_without_fail_below",
        ("    fail_below: 2\n", ""),
        "criteria[0]",
        ["critical", "fail_below"],
        range(6, 14),
    ),
]


def test_validate_accepts_the_bundled_rubrics(run_cli: Any) -> None:
    result = run_cli("rubrics", "validate")
    assert result.code == 0, result.stderr
    for pillar in load_rubric_dir(bundled_path("rubrics")):
        assert re.search(rf"^ok\s+{pillar}\b", result.stdout, re.M), pillar


def test_validate_accepts_the_good_fixture(tmp_path: Path, run_cli: Any) -> None:
    (tmp_path / "demo.yaml").write_text(GOOD)
    result = run_cli("rubrics", "validate", tmp_path)
    assert result.code == 0, result.stderr


@pytest.mark.parametrize(("name", "edit", "field", "words", "lines"), BROKEN, ids=[b[0] for b in BROKEN])
def test_validate_names_file_line_field_and_problem(
    tmp_path: Path, run_cli: Any, name: str, edit: tuple[str, str], field: str, words: list[str], lines: range
) -> None:
    assert edit[0] in GOOD
    folder = tmp_path / "rubrics"
    folder.mkdir()
    shutil.copy(bundled_path("rubrics") / "crisis.yaml", folder / "crisis.yaml")
    path = folder / "demo.yaml"
    path.write_text(GOOD.replace(edit[0], edit[1], 1))
    result = run_cli("rubrics", "validate", folder)
    assert result.code == 2, result.stdout
    assert "Traceback" not in result.stderr
    found = re.findall(rf"{re.escape(str(path))}:(\d+): (\S+): (.+)", result.stderr)
    assert found, result.stderr
    line, reported_field, problem = found[0]
    assert reported_field.startswith(field), (reported_field, result.stderr)
    for word in words:
        assert word in problem, (word, problem)
    assert int(line) in lines, (int(line), list(lines), result.stderr)
    assert "crisis.yaml" not in result.stderr, "only the broken file is reported"


def test_validate_reports_every_broken_file(tmp_path: Path, run_cli: Any) -> None:
    (tmp_path / "a.yaml").write_text(GOOD.replace("severity: minor", "severity: tiny"))
    (tmp_path / "b.yaml").write_text(GOOD.replace("pillar: demo", "pillar: other").replace("    fail_below: 2\n", ""))
    result = run_cli("rubrics", "validate", tmp_path)
    assert result.code == 2
    assert f"{tmp_path / 'a.yaml'}:17:" in result.stderr
    assert f"{tmp_path / 'b.yaml'}:" in result.stderr


def test_validate_a_folder_without_rubrics(tmp_path: Path, run_cli: Any) -> None:
    result = run_cli("rubrics", "validate", tmp_path)
    assert result.code == 2 and "no *.yaml" in result.stderr


def test_validate_invalid_yaml(tmp_path: Path, run_cli: Any) -> None:
    (tmp_path / "demo.yaml").write_text(GOOD.replace("    question: Is it second?\n", "    question: [unclosed\n"))
    result = run_cli("rubrics", "validate", tmp_path)
    assert result.code == 2
    assert re.search(rf"{re.escape(str(tmp_path / 'demo.yaml'))}:\d+: not valid YAML", result.stderr), result.stderr


@pytest.mark.parametrize(
    ("edit", "line", "key", "first"),
    [
        (("      2: fair\n", "      2: fair\n      1: worse\n"), 13, "1", 11),  # a repeated anchor
        (("title: Demo\n", "title: Demo\ntitle: Other\n"), 4, "title", 3),
        (("    fail_below: 2\n", "    fail_below: 2\n    fail_below: 3\n"), 15, "fail_below", 14),
    ],
)
def test_validate_rejects_a_repeated_yaml_key_with_file_line_and_key(
    tmp_path: Path, run_cli: Any, edit: tuple[str, str], line: int, key: str, first: int
) -> None:
    assert edit[0] in GOOD
    path = tmp_path / "demo.yaml"
    path.write_text(GOOD.replace(edit[0], edit[1], 1))
    result = run_cli("rubrics", "validate", tmp_path)
    assert result.code == 2, result.stdout
    assert f"{path}:{line}: duplicate key '{key}' (first at line {first})" in result.stderr


# ---------------------------------------------------------------- rubrics diff


def _copy_with_crisis_edit(rubric_dir: Path, tmp_path: Path, edit: Any) -> tuple[Path, dict[str, Any]]:
    """A copy of the rubric folder whose crisis rubric went through `edit` (a function of its YAML data)."""
    new = tmp_path / "new"
    shutil.copytree(rubric_dir, new)
    crisis = yaml.safe_load((new / "crisis.yaml").read_text())
    edit(crisis)
    (new / "crisis.yaml").write_text(yaml.safe_dump(crisis, sort_keys=False))
    return new, crisis


def test_diff_reports_exactly_the_edited_criterion(
    tmp_path: Path, rubric_dir: Path, run_cli: Any, wide_stdout: None
) -> None:
    def edit(crisis: dict[str, Any]) -> None:
        crisis["criteria"][2]["anchors"][2] += " Edited for the test."

    new, crisis = _copy_with_crisis_edit(rubric_dir, tmp_path, edit)
    target = crisis["criteria"][2]
    # Reformatting the other rubric changes nothing.
    safety = yaml.safe_load((new / "safety.yaml").read_text())
    (new / "safety.yaml").write_text("# reformatted\n" + yaml.safe_dump(safety, sort_keys=True, width=50))

    result = run_cli("rubrics", "diff", rubric_dir, new)
    assert result.code == 0, result.stderr
    rows = [ln for ln in result.stdout.splitlines() if "changed" in ln or "added" in ln or "removed" in ln]
    rows = [ln for ln in rows if "re-grading" not in ln]
    assert len(rows) == 1, result.stdout
    assert "crisis" in rows[0] and target["id"] in rows[0] and "changed" in rows[0] and "anchors" in rows[0]
    others = [c["id"] for c in crisis["criteria"] if c["id"] != target["id"]]
    others += [c["id"] for c in safety["criteria"]]
    assert not any(o in result.stdout for o in others if o not in target["id"]), result.stdout
    assert "re-grading re-asks the calls of: crisis" in result.stdout
    assert "`trustmh compare OLD_RUN NEW_RUN`" in result.stdout  # the next step, on one line


def test_diff_reports_a_rubric_level_edit_as_its_own_row(
    tmp_path: Path, rubric_dir: Path, run_cli: Any, wide_stdout: None
) -> None:
    """An edge case or the summary reaches every call of the pillar, so it re-asks them all."""

    def edit(crisis: dict[str, Any]) -> None:
        crisis["edge_cases"]["refusal"] += " Edited for the test."

    new, _ = _copy_with_crisis_edit(rubric_dir, tmp_path, edit)
    result = run_cli("rubrics", "diff", rubric_dir, new)
    assert result.code == 0, result.stderr
    assert re.search(r"crisis\s.*\(rubric\)\s.*changed\s.*edge_cases", result.stdout), result.stdout
    assert "re-grading re-asks the calls of: crisis" in result.stdout


def test_diff_of_identical_folders(rubric_dir: Path, run_cli: Any) -> None:
    result = run_cli("rubrics", "diff", rubric_dir, rubric_dir)
    assert result.code == 0
    assert "no criterion changed" in result.stdout


def test_diff_added_and_removed_criteria(tmp_path: Path, rubric_dir: Path, run_cli: Any, wide_stdout: None) -> None:
    new = tmp_path / "new"
    shutil.copytree(rubric_dir, new)
    safety = yaml.safe_load((new / "safety.yaml").read_text())
    removed = safety["criteria"].pop()
    added = {**removed, "id": "brand_new_check"}
    safety["criteria"].append(added)
    (new / "safety.yaml").write_text(yaml.safe_dump(safety, sort_keys=False))
    result = run_cli("rubrics", "diff", rubric_dir, new)
    assert result.code == 0
    assert re.search(rf"{removed['id']}\s.*removed", result.stdout)
    assert re.search(r"brand_new_check\s.*added", result.stdout)


# ---------------------------------------------------------------- cache


def test_cache_stats_and_clear_after_a_run(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, llm_server: FakeLLMServer, run_cli: Any, wide_stdout: None
) -> None:
    empty = run_cli("cache", "stats")
    assert empty.code == 0 and "0 cached judge calls" in empty.stdout

    items = write_jsonl(tmp_path / "items.jsonl", make_items(3, ["crisis", "safety"]))
    args = ["score", items, "--judges", judges_arg(llm_server), "--rubrics", rubric_dir, "-q"]
    assert run_cli(*args, "--out", tmp_path / "run1").code == 0
    assert len(llm_server.requests) == 12

    stats = run_cli("cache", "stats")
    assert stats.code == 0
    assert "12 cached judge calls" in stats.stdout and str(judge_env) in stats.stdout

    other = run_cli("cache", "stats", "--cache", tmp_path / "elsewhere")
    assert "0 cached judge calls" in other.stdout

    cleared = run_cli("cache", "clear", "--yes")
    assert cleared.code == 0 and "removed 12" in cleared.stdout
    assert "0 cached judge calls" in run_cli("cache", "stats").stdout

    llm_server.reset()
    assert run_cli(*args, "--out", tmp_path / "run2").code == 0
    assert len(llm_server.requests) == 12, "after clear, the calls are asked again"


def test_cache_clear_without_yes_asks_and_keeps_on_no(
    tmp_path: Path,
    judge_env: Path,
    rubric_dir: Path,
    llm_server: FakeLLMServer,
    run_cli: Any,
    monkeypatch: pytest.MonkeyPatch,
    wide_stdout: None,
) -> None:
    items = write_jsonl(tmp_path / "items.jsonl", make_items(2))
    assert (
        run_cli(
            "score", items, "--judges", judges_arg(llm_server), "--rubrics", rubric_dir, "--out", tmp_path / "out", "-q"
        ).code
        == 0
    )
    monkeypatch.setattr("typer.confirm", lambda *a, **k: False)
    result = run_cli("cache", "clear")
    assert result.code != 0
    assert "4 cached judge calls" in run_cli("cache", "stats").stdout


# ---------------------------------------------------------------- demo


def test_demo_without_keys_explains_how_to_provide_a_judge_and_shows_the_plan(
    tmp_path: Path, judge_env: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch, wide_stdout: None
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.setenv("TRUSTMH_DATA_MIRROR", str((REPO.parent / "shared" / "datasets").resolve()))
    monkeypatch.chdir(tmp_path)
    result = run_cli("demo")
    assert result.code == 0, result.stderr
    text = result.stdout + result.stderr
    assert "Traceback" not in text and "internal error" not in text
    assert "OPENAI_API_KEY" in result.stdout and "ANTHROPIC_API_KEY" in result.stdout
    assert "localhost" in result.stdout and "OpenAI-compatible" in result.stdout
    assert "Dry run" in result.stdout and "to ask" in result.stdout
    examples = [p for p in bundled_path("examples").glob("*.jsonl") if not p.name.endswith(".expected.jsonl")]
    n_items = sum(1 for p in examples for line in p.read_text().splitlines() if line.strip())
    assert f"{n_items} item(s), 0 rejected" in result.stdout
    assert "TrustMH-Bench recorded scorecard (offline)" in result.stdout
    assert not (tmp_path / "runs").exists(), "a dry-run demo writes no run folder"


def test_demo_takes_the_judge_options_of_score(
    tmp_path: Path, judge_env: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch, wide_stdout: None
) -> None:
    """A single-slot local server: mode and timeouts from a judges file, one call at a time, own cache."""
    monkeypatch.setenv("TRUSTMH_DATA_MIRROR", str(tmp_path / "no-mirror"))  # the calibration part: one line
    examples = [p for p in bundled_path("examples").glob("*.jsonl") if not p.name.endswith(".expected.jsonl")]
    n_items = sum(1 for p in examples for line in p.read_text().splitlines() if line.strip())
    # fairness and support hide identity cues from some criteria: their items are judged in two calls
    # (visible, masked)
    for pillar in ("fairness", "support"):
        lines = (bundled_path("examples") / f"{pillar}.jsonl").read_text().splitlines()
        n_items += sum(1 for line in lines if line.strip())
    with FakeLLMServer(latency_s=0.005, answerer=scripted_answerer) as server:
        judges = tmp_path / "judges.toml"
        judges.write_text(
            f'[judges.local]\nspec = "openai:qwen2.5-7b@{server.openai_base_url}"\nmode = "json"\n'
            "timeout_s = 900\ndeadline_s = 3600\n"
        )
        common = ["--judges-file", judges, "--concurrency", "1", "--out", tmp_path / "run", "-q"]
        result = run_cli("demo", *common, "--cache", tmp_path / "cache")
        assert result.code == 0, result.stderr
        first = list(server.requests)
        server.reset()
        again = run_cli("demo", *common[:-3], "--out", tmp_path / "run2", "--no-cache", "-q")
        assert again.code == 0, again.stderr
        uncached = list(server.requests)
    assert len(first) == n_items and len(uncached) == n_items
    assert all(r.body["response_format"] == {"type": "json_object"} for r in first)
    ordered = sorted(first, key=lambda r: r.t_start)
    assert all(a.t_end is not None and a.t_end <= b.t_start for a, b in itertools.pairwise(ordered))
    judge = json.loads((tmp_path / "run" / "run.json").read_text())["judges"][0]
    assert (judge["name"], judge["mode"], judge["timeout_s"], judge["deadline_s"]) == ("local", "json", 900, 3600)
    assert (tmp_path / "cache").is_dir()


# ---------------------------------------------------------------- --help

COMMANDS = [
    ["score"],
    ["calibrate"],
    ["rubrics", "list"],
    ["rubrics", "show"],
    ["rubrics", "validate"],
    ["rubrics", "diff"],
    ["cache", "stats"],
    ["cache", "clear"],
    ["demo"],
    ["suites", "list"],
    ["suites", "show"],
    ["suites", "build"],
    ["data", "list"],
    ["data", "fetch"],
    ["metrics"],
    ["bench"],
    ["compare"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_every_command_help_has_an_example(command: list[str], run_cli: Any) -> None:
    result = run_cli(*command, "--help")
    assert result.code == 0, result.stderr
    assert "Example" in result.stdout
    assert "trustmh " + command[0] in result.stdout.replace("\n", " ")


def test_the_top_level_help_lists_every_command_those_loaded_on_demand_included(run_cli: Any) -> None:
    from judge.cli.main import LAZY_COMMANDS, LAZY_GROUPS

    result = run_cli("--help")
    assert result.code == 0, result.stderr
    listed = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("│ ") and line.split()[1:]}
    expected = {"score", "panel", "demo", "rubrics", "cache", "review", *LAZY_COMMANDS, *LAZY_GROUPS}
    assert expected <= listed, expected - listed
    for name in [*LAZY_COMMANDS, *LAZY_GROUPS]:
        assert run_cli(name, "--help").code == 0, name
