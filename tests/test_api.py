"""The library API against the loopback server: `judge.score`, `respond`, `bench`, `audit` and `calibrate`
return typed results, and a bad argument raises a TrustMHError naming the field, never a CLI option.
Also the command line's conventions: --version, --quiet, and nothing cut in two at 80 columns."""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import judge
from judge import ExitCode, JudgeSpec, RunSettings, TrustMHError, UsageError
from judge.items import Item
from tests.conftest import REPO, make_items, write_jsonl
from tests.fakeapi import FakeLLMServer
from tests.fakeapi.judge_script import target_or_judge_answerer

pytestmark = pytest.mark.timeout(300)
MIRROR = os.environ.get("TRUSTMH_DATA_MIRROR")
needs_mirror = pytest.mark.skipif(not MIRROR or not Path(MIRROR).is_dir(), reason="no dataset mirror")


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(answerer=target_or_judge_answerer) as fake:
        yield fake


def openai(server: FakeLLMServer, model: str = "gpt-4.1-mini") -> str:
    return f"openai:{model}@{server.openai_base_url}"


def quiet(cache: Path, **overrides: Any) -> RunSettings:
    return RunSettings(cache_dir=cache, quiet=True, **overrides)


# ---------------------------------------------------------------- the public face


def test_import_judge_loads_nothing_else_and_hands_on_every_public_name() -> None:
    program = "import sys, judge; print(sorted(m for m in sys.modules if m.startswith(('judge.', 'calibration'))))"
    done = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['judge.version']", done.stdout  # __version__ alone
    assert set(judge.__all__) == {"__version__", *judge._EXPORTS}
    api, calibration_api = importlib.import_module("judge.api"), importlib.import_module("calibration.api")
    importlib.import_module("judge.score")  # the module of the same name does not hide the function
    importlib.import_module("judge.audit.run")
    assert judge.score is api.score and judge.respond is api.respond and judge.audit is api.audit
    assert judge.bench is api.bench and judge.calibrate is calibration_api.calibrate
    assert judge.validate is calibration_api.validate and judge.Validation is calibration_api.Validation
    assert issubclass(judge.DatasetError, judge.TrustMHError) and judge.ExitCode.GATE == 4
    for name in judge.__all__:
        if name != "read_run" or importlib.util.find_spec("judge.log") is not None:
            assert getattr(judge, name) is not None, name


def test_read_run_is_handed_on_from_judge_log() -> None:
    log = pytest.importorskip("judge.log")
    assert judge.read_run is log.read_run


# ---------------------------------------------------------------- score


def test_score_takes_item_dicts_and_models_and_returns_a_typed_result(
    tmp_path: Path, server: FakeLLMServer, judge_env: Path, rubric_dir: Path
) -> None:
    dicts = make_items(2)
    row = {k: v for k, v in make_items(1)[0].items() if k != "pillar"}
    models = [Item.model_validate({**row, "id": "model-0", "pillars": ["crisis"]})]
    spec = JudgeSpec(name="mini", provider="openai", model="gpt-4.1-mini", base_url=server.openai_base_url)
    out = tmp_path / "out"
    plan = judge.score([*dicts, *models], judges=[spec], out=out, rubrics=rubric_dir,
                       settings=quiet(judge_env, dry_run=True))  # fmt: skip
    assert plan.summary is None and plan.items == 3 and plan.plan and plan.plan[0]["to_ask"] == 3
    assert not out.exists() and server.requests == []
    result = judge.score([*dicts, *models], judges=[spec], out=str(out), rubrics=rubric_dir, settings=quiet(judge_env))
    assert isinstance(result, judge.ScoreResult) and result.exit_code is ExitCode.OK
    assert (result.out, result.items, result.rejected) == (out, 3, 0)
    assert result.summary is not None and result.summary["calls"]["planned"] == 3
    assert (out / "verdicts.jsonl").is_file() and (out / "summary.json").is_file()
    again = judge.score(write_jsonl(tmp_path / "items.jsonl", dicts), judges=openai(server), out=tmp_path / "file",
                        rubrics=rubric_dir, settings=quiet(judge_env))  # fmt: skip
    assert again.exit_code == ExitCode.OK and again.items == 2


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"pillars": ["wellbeing"]}, "pillars"),
        ({"samples": 0}, "samples"),
        ({"tiebreak": "PANEL"}, "tiebreak"),
        ({"judges": "nonsense"}, "judges"),
        ({"out": "A_FILE"}, "out"),
        ({"skip_invalid": False, "items": "BAD"}, None),
    ],
)
def test_score_errors_name_the_field_not_an_option(
    tmp_path: Path, server: FakeLLMServer, judge_env: Path, rubric_dir: Path, arguments: dict[str, Any],
    field: str | None,
) -> None:  # fmt: skip
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": "x", "pillar": "crisis", "prompt": "no response"}])
    given = {"judges": openai(server), "out": tmp_path / "out", **arguments}
    given = {k: {"PANEL": openai(server), "A_FILE": a_file, "BAD": bad}.get(v, v) if isinstance(v, str) else v
             for k, v in given.items()}  # fmt: skip
    items = given.pop("items", make_items(1))
    with pytest.raises(TrustMHError) as raised:
        judge.score(items, rubrics=rubric_dir, settings=quiet(judge_env), **given)
    assert raised.value.field == field
    assert "--" not in raised.value.message, raised.value.message
    assert server.requests == [] and not (tmp_path / "out").exists()


def test_settings_are_checked_and_keyword_only() -> None:
    with pytest.raises(UsageError) as raised:
        RunSettings(concurrency=0)
    assert raised.value.field == "concurrency"
    with pytest.raises(TypeError):
        RunSettings(None, 8)  # type: ignore[misc]


# ---------------------------------------------------------------- respond, bench, audit, calibrate


def test_respond_answers_prompt_dicts(tmp_path: Path, server: FakeLLMServer, judge_env: Path) -> None:
    prompts = [{"id": f"p{i}", "pillar": "safety", "prompt": f"I feel low (case {i})"} for i in range(3)]
    target = openai(server, "gpt-4o-mini")
    result = judge.respond(prompts, targets=target, out=tmp_path / "r", settings=quiet(judge_env))
    assert isinstance(result, judge.RespondResult) and result.exit_code is ExitCode.OK and result.prompts == 3
    assert result.summary is not None and result.summary["calls"]["planned"] == 3
    assert (tmp_path / "r" / "responses.jsonl").is_file()
    with pytest.raises(UsageError) as raised:
        judge.respond(prompts, targets=openai(server), out=tmp_path / "s", samples=0, settings=quiet(judge_env))
    assert raised.value.field == "samples" and "--" not in raised.value.message


@needs_mirror
def test_bench_runs_a_suite_and_writes_the_report(tmp_path: Path, server: FakeLLMServer, judge_env: Path) -> None:
    from judge.suites.catalogue import SUITES

    suite = next(s.id for s in SUITES.values() if s.build is not None and s.judge)
    out = tmp_path / "bench"
    result = judge.bench(suites=[suite], targets=openai(server, "gpt-4o-mini"), judges=openai(server), out=out,
                         limit=2, bootstrap=10, settings=quiet(judge_env))  # fmt: skip
    assert isinstance(result, judge.BenchResult) and result.exit_code is ExitCode.OK
    assert result.respond_summary and result.score_summary and result.scorecard and result.scorecard["results"]
    assert {p.name for p in result.files} == {"scorecard.json", "scorecard.md", "report.html"}
    assert all(p.is_file() for p in result.files)
    with pytest.raises(UsageError) as raised:
        judge.bench(suites=["no/such"], targets=openai(server), judges=openai(server), out=tmp_path / "x")
    assert raised.value.field == "suites" and "--" not in raised.value.message
    with pytest.raises(UsageError) as raised:
        judge.bench(recorded="nope", out=tmp_path / "y")
    assert raised.value.field == "recorded"


def test_audit_probes_a_finished_run(tmp_path: Path, server: FakeLLMServer, judge_env: Path, rubric_dir: Path) -> None:
    run = tmp_path / "run"
    judge.score(make_items(3), judges=openai(server), out=run, rubrics=rubric_dir, settings=quiet(judge_env))
    result = judge.audit(run, probes=["verbosity"], out=tmp_path / "audit", bootstrap=0, settings=quiet(judge_env))
    assert isinstance(result, judge.AuditResult) and result.exit_code is ExitCode.OK
    assert result.json_path.is_file() and result.report is not None and result.report.is_file()
    assert result.calls["score"]["planned"] > 0
    with pytest.raises(UsageError) as raised:
        judge.audit(run, probes="louder", out=tmp_path / "a2")
    assert raised.value.field == "probes" and "--" not in raised.value.message
    with pytest.raises(UsageError) as raised:
        judge.audit(run, probes="verbosity", gates=["verbosity.nope<=1"], out=tmp_path / "a3")
    assert raised.value.field == "gate"


@needs_mirror
def test_calibrate_a_registered_dataset(tmp_path: Path) -> None:
    result = judge.calibrate(dataset="llms-mental-health-crisis", out=tmp_path / "c", bootstrap=0,
                             gates=["qwk>=-1"])  # fmt: skip
    assert isinstance(result, judge.Calibration) and result.exit_code is ExitCode.OK and result.gate_failures == []
    assert result.json_path.is_file() and result.result.records
    with pytest.raises(UsageError) as raised:
        judge.calibrate(dataset="llms-mental-health-crisis", out=tmp_path / "d", level="system")  # type: ignore[arg-type]
    assert raised.value.field == "level"


# ---------------------------------------------------------------- command-line conventions


def test_version(run_cli: Any) -> None:
    result = run_cli("--version")
    assert result.code == 0 and result.stdout.strip() == judge.__version__


def test_quiet_prints_no_table(tmp_path: Path, server: FakeLLMServer, judge_env: Path, rubric_dir: Path,
                               run_cli: Any) -> None:  # fmt: skip
    items = write_jsonl(tmp_path / "items.jsonl", make_items(3))
    judges = f"{openai(server)},{openai(server, 'gpt-4o')}"
    args = ["score", items, "--judges", judges, "--rubrics", rubric_dir, "--out", tmp_path / "out"]
    loud = run_cli(*args)
    assert loud.code == 0 and "Agreement among judges" in loud.stderr
    hushed = run_cli(*args, "--quiet")
    assert hushed.code == 0 and "Agreement" not in hushed.stderr + hushed.stdout
    assert not any(box in hushed.stderr + hushed.stdout for box in "┃━┏│")
    assert "verdicts.jsonl" in hushed.stderr


def _at_80_columns(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb"}
    return subprocess.run([sys.executable, "-m", "judge.cli", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip


def test_a_long_path_in_an_error_stays_on_one_line_at_80_columns(tmp_path: Path) -> None:
    folder = tmp_path.joinpath(*["a-deliberately-long-folder-name"] * 4)
    missing = folder / "items.jsonl"
    done = _at_80_columns("score", missing, "--judges", "openai:gpt-4.1-mini", "--out", folder / "out")
    assert done.returncode == ExitCode.USAGE
    assert any(str(missing) in line for line in done.stderr.splitlines()), done.stderr
    file_in_the_way = tmp_path / "out-file"
    file_in_the_way.write_text("")
    folder.mkdir(parents=True)
    items = write_jsonl(folder / "items.jsonl", make_items(1))
    done = _at_80_columns("score", items, "--judges", "openai:gpt-4.1-mini", "--out", file_in_the_way)
    assert done.returncode == ExitCode.USAGE and f"error: --out {file_in_the_way}: is a file" in done.stderr


@pytest.mark.parametrize("command", ["score", "respond", "bench", "audit", "calibrate", "demo", "suites build"])
def test_help_cuts_no_word_at_80_columns(command: str) -> None:
    done = _at_80_columns(*command.split(), "--help")
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout, done.stdout


def test_the_command_line_words_a_library_error_with_its_options() -> None:
    from judge.cli.common import flag_message

    error = UsageError("runs/x: pass `overwrite=True`, or another folder (`out=`); field `pillar` stays", field="out")
    assert flag_message(error) == "--out runs/x: pass --overwrite, or another folder (--out); field `pillar` stays"
    assert flag_message(UsageError("a: b", field="cache_dir")) == "--cache a: b"
    assert flag_message(UsageError("x/y: unknown", field="SUITE")) == "SUITE: x/y: unknown"
    assert flag_message(UsageError("give `judges=openai:m` or `judges_file=j.toml`")) == (
        "give --judges openai:m or --judges-file j.toml"
    )
    assert str(error).startswith("out: runs/x: pass `overwrite=True`")  # the library's own wording
