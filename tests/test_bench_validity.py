"""`bench --validity DIR`: whether each judge of a bench was the one validated, and the report's link."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from judge.errors import RunDirError
from judge.suites.validity import NOT_VALIDATED, OTHER_SETTINGS, VALIDATED, judge_validity, read_validity

SETTINGS = {"provider": "openai", "model": "gpt-4.1-mini", "mode": "tools", "temperature": 0.0, "max_tokens": 2048,
            "seed": None}


def _judge(name: str, **changes: Any) -> dict[str, Any]:
    return {"name": name, **SETTINGS, **changes}


def _row(judge: str, criterion: str, verdict: str, critical: bool = True, published: bool = False) -> dict[str, Any]:
    return {"dataset": "crisis-set", "criterion": criterion, "judge": judge, "verdict": verdict,
            "critical": critical, "published": published}


DOCUMENT = {
    "kind": "validity",
    "meta": {"judge_settings": [_judge("openai:gpt-4.1-mini@http://a")], "rubric_hashes": {"crisis": "c1",
                                                                                          "support": "s1"}},
    "rows": [_row("openai:gpt-4.1-mini@http://a", "appropriateness", "worse than the humans"),
             _row("openai:gpt-4.1-mini@http://a", "category", "as close as a human"),
             _row("openai:gpt-4.1-mini@http://a", "empathy", "worse than the humans", critical=False),
             _row("gpt-4o-mini (published)", "appropriateness", "as close as a human", published=True)],
}


def test_same_model_same_settings_elsewhere_is_validated_and_rows_are_counted_by_hand() -> None:
    [found] = judge_validity(DOCUMENT, [_judge("openai:gpt-4.1-mini@http://b")], {"crisis": "c1", "support": "s2"})
    assert found["status"] == VALIDATED and found["validated_as"] == "openai:gpt-4.1-mini@http://a"
    assert found["rows"] == 3  # the published judge's row is a reference, not this judge's
    assert found["verdicts"] == {"as close as a human": 1, "worse than the humans": 2}
    assert found["critical_short"] == ["crisis-set: appropriateness"]  # empathy is not critical
    assert found["rubrics_same"] == ["crisis"] and found["rubrics_differ"] == ["support"]
    assert found["differences"] == []


def test_other_settings_are_named_and_another_model_is_not_validated() -> None:
    other, unknown = judge_validity(DOCUMENT, [_judge("j", mode="json_schema", temperature=0.7),
                                               _judge("k", model="gpt-4.1")], {"crisis": "c1", "support": "s1"})
    assert other["status"] == OTHER_SETTINGS and other["rows"] == 3
    assert other["differences"] == ["mode 'tools' there, 'json_schema' here", "temperature 0.0 there, 0.7 here"]
    assert unknown["status"] == NOT_VALIDATED and unknown["rows"] == 0 and unknown["verdicts"] == {}
    assert unknown["rubrics_same"] == [] and unknown["validated_as"] is None


def test_a_folder_that_is_not_a_validation_is_refused_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="no such file; give the --out folder of a `trustmh validate` run"):
        read_validity(tmp_path)
    (tmp_path / "summary.json").write_text(json.dumps({"kind": "score"}))
    with pytest.raises(RunDirError, match=r"summary.json: kind is 'score', not 'validity'"):
        read_validity(tmp_path)
    (tmp_path / "summary.json").write_text("{")
    with pytest.raises(RunDirError, match="cannot be read as JSON"):
        read_validity(tmp_path)


def test_bench_links_the_validation_of_its_judge(run_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    done = run_cli("validate", "--judges", "mock:j", "--datasets", "crisis", "--limit", "6", "--out", "val", "-q")
    assert done.code == 0, done.stdout + done.stderr
    bench = ["bench", "--suites", "crisis/escalation", "--targets", "mock:a", "--limit", "3", "-q"]
    refused = run_cli(*bench, "--judges", "mock:j", "--out", "nope", "--validity", "missing")
    assert refused.code == 2 and "missing/summary.json: no such file" in refused.stderr
    assert not Path("nope").exists(), "refused before anything is written"
    done = run_cli(*bench, "--judges", "mock:j,mock:k", "--out", "b", "--validity", "val")
    assert done.code == 0, done.stdout + done.stderr
    record = json.loads(Path("b/bench.json").read_text())["validity"]
    validated, other = record["judges"]
    assert (validated["judge"], validated["status"], validated["rows"]) == ("mock:j", VALIDATED, 2)
    assert validated["rubrics_same"] == ["crisis"]
    assert other["status"] == NOT_VALIDATED and other["rows"] == 0  # another (mock) model
    html = Path("b/report.html").read_text()
    assert 'href="../val/validity.html"' in html and 'data-table="validity"' in html
    plain = run_cli(*bench, "--judges", "mock:j", "--out", "c")
    assert plain.code == 0 and "not checked: validate the judges" in Path("c/report.html").read_text()
