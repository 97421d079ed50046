"""`trustmh report` on an audit folder: tables equal audit.json, from a real `trustmh audit` run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from judge.cli.main import main
from judge.report import detect_kind, write_report
from tests.conftest import ANTHROPIC_KEY, OPENAI_KEY, make_items, write_jsonl
from tests.fakeapi import FakeLLMServer
from tests.fakeapi.audit_judges import HOUSE_STYLE, audit_answerer
from tests.report_pages import ReportPage, read_report
from tests.test_report import _values, check_page_structure

PROBES = "verbosity,injection,degrade,self-preference"
GATES = ("verbosity.max_abs_shift<=0.25", "self-preference.self_gap<=0.5")
RECORD_COLUMNS = ["probe", "judge", "pillar", "criterion", "metric", "value", "ci low", "ci high", "n", "why null"]
RECORD_KEYS = ["probe", "judge", "pillar", "criterion", "metric", "value", "ci_low", "ci_high", "n", "reason"]


def _cli(*args: Any) -> int:
    with pytest.raises(SystemExit) as exited:
        main([str(a) for a in args])
    return int(exited.value.code or 0)


@pytest.fixture(scope="module")
def audit_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A score run of three judges on two targets, audited with four probes and two gates (one fails), and
    the same run audited for self-preference alone (no call, so no score/ folder)."""
    base = tmp_path_factory.mktemp("audit")
    items = make_items(4)
    for item in items:
        if item["target"].startswith("gpt"):
            item["response"] = f"{HOUSE_STYLE} {item['response']}"
    with pytest.MonkeyPatch.context() as patch, FakeLLMServer(answerer=audit_answerer) as server:
        patch.setenv("OPENAI_API_KEY", OPENAI_KEY)
        patch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
        patch.setenv("TRUSTMH_CACHE_DIR", str(base / "cache"))
        judges = ",".join([f"openai:gpt-4.1-mini@{server.openai_base_url}",
                           f"anthropic:claude-sonnet-4-5@{server.anthropic_base_url}",
                           f"openai:qwen2.5-72b@{server.openai_base_url}"])
        run = base / "run"
        assert _cli("score", write_jsonl(base / "items.jsonl", items), "--judges", judges, "--out", run, "-q") == 0
        gates = [arg for gate in GATES for arg in ("--gate", gate)]
        full = base / "full"
        assert _cli("audit", run, "--probes", PROBES, "--out", full, "--bootstrap", "50", "-q", *gates) == 4
        alone = base / "alone"
        assert _cli("audit", run, "--probes", "self-preference", "--out", alone, "--bootstrap", "50", "-q") == 0
    return {"full": full, "alone": alone}


def _audit(directory: Path) -> dict[str, Any]:
    return json.loads((directory / "audit.json").read_text(encoding="utf-8"))


def _page(directory: Path) -> ReportPage:
    return read_report((directory / "report.html").read_text(encoding="utf-8"))


def _expected(records: list[dict[str, Any]], with_variant: bool = False) -> list[list[Any]]:
    rows = []
    for r in records:
        row = [r.get(k) for k in RECORD_KEYS]
        row[-1] = r.get("reason") or "—"
        if with_variant:
            row.insert(1, r["variant"] or "(all variants)")
        rows.append(row)
    return rows


def _columns(with_variant: bool = False) -> list[str]:
    return ["probe", "variant", *RECORD_COLUMNS[1:]] if with_variant else RECORD_COLUMNS


def test_audit_writes_its_report_and_every_section_has_a_figure_and_its_table(audit_dirs: dict[str, Path]) -> None:
    for directory in audit_dirs.values():
        assert detect_kind(directory) == "audit"
        assert (directory / "report.html").stat().st_mode & 0o077 == 0
        page = check_page_structure(directory)
        assert {s.id for s in page.sections} >= {"shifts", "flips", "detection", "audit-self-preference", "coverage",
                                                 "gates"}
    full = _page(audit_dirs["full"])
    for section in ("shifts", "flips", "detection", "audit-self-preference", "coverage", "gates", "costs"):
        assert full.section(section).figures == 1, section
    assert "no call failed" in full.section("failures").nothing[0]


def test_audit_tables_equal_audit_json(audit_dirs: dict[str, Path]) -> None:
    data = _audit(audit_dirs["full"])
    page = _page(audit_dirs["full"])
    results = data["results"]
    shift_metrics = ("mean_shift", "mean_abs_shift", "max_abs_shift")

    pooled = [r for r in results if r["variant"] is None and r["metric"] in shift_metrics
              and r["probe"] != "self-preference"]
    assert pooled and _values(page.table("shifts"), _columns()) == _expected(pooled)
    by_variant = [r for r in results if r["variant"] is not None and r["metric"] in shift_metrics]
    assert by_variant and _values(page.table("shifts_by_variant"), _columns(True)) == _expected(by_variant, True)

    flips = [r for r in results if r["variant"] is None and r["metric"] == "flip_rate"]
    assert flips and _values(page.table("flip_rates"), _columns()) == _expected(flips)
    assert any(r["value"] == 1.0 for r in flips if r["probe"] == "degrade"), "degrade fails critical criteria"
    flips_by_variant = [r for r in results if r["variant"] is not None and r["metric"] == "flip_rate"]
    assert _values(page.table("flip_rates_by_variant"), _columns(True)) == _expected(flips_by_variant, True)

    detection = [r for r in results if r["metric"] == "detection_rate"]
    assert detection and _values(page.table("detection"), _columns(True)) == _expected(detection, True)

    self_preference = [r for r in results if r["probe"] == "self-preference"]
    assert {r["metric"] for r in self_preference} == {"self_gap", "other_gap", "self_preference"}
    assert _values(page.table("audit_self_preference"), _columns()) == _expected(self_preference)

    coverage = page.table("coverage")
    keys = [k for k in coverage.columns if k not in ("probe", "judge")]
    assert [[row[c].value if row[c].numeric else row[c].text for c in coverage.columns]
            for row in coverage.records()] == [[c["probe"], c["judge"], *[c.get(k) for k in keys]]
                                               for c in data["coverage"]]

    failures = data["meta"]["gate_failures"]
    assert failures and all(f.startswith("self-preference × ") for f in failures)
    assert _values(page.table("audit_gates"), ["gate", "probe", "metric", "op", "threshold"]) == [
        ["verbosity.max_abs_shift<=0.25", "verbosity", "max_abs_shift", "<=", 0.25],
        ["self-preference.self_gap<=0.5", "self-preference", "self_gap", "<=", 0.5]]
    assert _values(page.table("gate_failures"), ["failure"]) == [[f] for f in failures]
    assert f"Overall: failed ({len(failures)} failure(s))." in page.text
    results = data["meta"]["gate_results"]
    assert [r["passed"] for r in results] == [True, False]
    assert _values(page.table("audit_gate_outcomes"), ["gate", "passed"]) == [[r["gate"], r["passed"]] for r in results]
    assert _values(page.table("audit_gate_checks"), ["gate", "judge", "n", "value", "passed"]) == [
        [r["gate"], c["judge"], c["n"], c["value"], c["passed"]] for r in results for c in r["checks"]]
    assert sum(not c["passed"] for r in results for c in r["checks"]) == len(failures)

    stages = _values(page.table("calls"), ["stage", "planned"])
    assert stages == [["variants (score/)", _audit_summary(audit_dirs["full"])["calls"]["planned"]]]


def _audit_summary(directory: Path) -> dict[str, Any]:
    return json.loads((directory / "score" / "summary.json").read_text(encoding="utf-8"))


def test_self_preference_alone_says_which_probes_were_not_run(audit_dirs: dict[str, Path]) -> None:
    page = _page(audit_dirs["alone"])
    for section in ("shifts", "flips", "detection"):
        assert "was not run (probes of this audit: self-preference)" in page.section(section).nothing[0], section
    assert page.section("audit-self-preference").figures == 1
    assert "the audit set no gate" in page.section("gates").nothing[0]
    assert not [s for s in page.sections if s.id in ("failures", "costs")], "nothing was judged"


def _write_audit(directory: Path, data: dict[str, Any]) -> Path:
    directory.mkdir()
    (directory / "audit.json").write_text(json.dumps(data), encoding="utf-8")
    return directory


def test_empty_and_all_null_audits_are_well_formed(tmp_path: Path) -> None:
    empty = _write_audit(tmp_path / "empty", {"meta": {}, "results": [], "coverage": []})
    write_report(empty)
    page = check_page_structure(empty)
    assert all(s.nothing for s in page.sections)
    assert "audit.json records no gate list" in page.section("gates").nothing[0]

    reason = "no pair of verdicts"
    nulls = [{"probe": probe, "variant": None, "judge": "j1", "pillar": "crisis", "criterion": "c1", "metric": metric,
              "value": None, "ci_low": None, "ci_high": None, "n": 0, "reason": reason}
             for probe, metric in (("injection", "mean_shift"), ("injection", "flip_rate"),
                                   ("degrade", "detection_rate"), ("self-preference", "other_gap"))]
    for r in nulls[2:3]:
        r["criterion"] = "*"
    meta = {"probes": ["injection", "degrade", "self-preference"], "gates": ["injection.flip_rate<=0"],
            "gate_failures": ["injection × j1 × crisis/c1 (n=0): flip_rate is null (no pair of verdicts); gate "
                              "injection.flip_rate<=0"]}
    coverage = [{"probe": "injection", "judge": "j1", "paired": 0, "failed": 3, "not_applicable": 0,
                 "applicability_changed": 0}]
    null = _write_audit(tmp_path / "null", {"meta": meta, "results": nulls, "coverage": coverage})
    write_report(null)
    page = check_page_structure(null)
    for section in ("shifts", "flips", "detection", "audit-self-preference"):
        assert page.section(section).nothing, section
    assert "no pair of verdicts could be compared" in page.section("shifts").nothing[0]
    assert _values(page.table("shifts"), _columns()) == _expected(nulls[:1])
    assert _values(page.table("flip_rates"), _columns()) == _expected(nulls[1:2])
    assert _values(page.table("detection"), _columns(True)) == _expected(nulls[2:3], True)
    assert page.section("gates").figures == 1, "the gated record is drawn as n/a against its threshold"
    assert _values(page.table("gate_failures"), ["failure"]) == [[f] for f in meta["gate_failures"]]
    assert page.section("coverage").figures == 1


def test_report_command_reads_an_audit_folder(audit_dirs: dict[str, Path], tmp_path: Path, run_cli: Any) -> None:
    out = tmp_path / "audit.html"
    result = run_cli("report", audit_dirs["alone"], "--out", out)
    assert result.code == 0, result.stderr
    assert not read_report(out.read_text(encoding="utf-8")).errors

    broken = _write_audit(tmp_path / "broken", {"results": [{"probe": "injection"}]})
    result = run_cli("report", broken)
    assert result.code == 2 and f"{broken / 'audit.json'}: field results[0].judge" in result.stderr


def test_figure_labels_drop_the_endpoint_only_while_judges_stay_distinct() -> None:
    from judge.report.audit import judge_labels

    assert judge_labels(["openai:m@127.0.0.1:8080", "anthropic:c@127.0.0.1:8081"]) == {
        "openai:m@127.0.0.1:8080": "openai:m", "anthropic:c@127.0.0.1:8081": "anthropic:c"}
    same_model = ["openai:m@127.0.0.1:8080", "openai:m@127.0.0.1:9090"]
    assert judge_labels(same_model) == {j: j for j in same_model}
