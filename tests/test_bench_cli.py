"""`trustmh bench` end to end with fake targets and judges: every target × suite × metric of the built
suites gets a scorecard record with an interval, the bench resumes as a whole, and the dry run prices
targets and judges apart without sending or writing anything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from judge.suites.catalogue import SUITES
from tests.conftest import read_jsonl
from tests.fakeapi import FakeLLMServer, ParsedRequest, Reply
from tests.fakeapi.judge_script import target_or_judge_answerer

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("mirror")]

BUILT = [suite_id for suite_id, suite in SUITES.items() if suite.build is not None]


@pytest.fixture
def mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    mirror = os.environ.get("TRUSTMH_DATA_MIRROR")
    if not mirror or not Path(mirror).is_dir():
        pytest.skip("no dataset mirror: set TRUSTMH_DATA_MIRROR to a folder (the suites read the public datasets)")


@pytest.fixture
def bench_server() -> Any:
    with FakeLLMServer(answerer=target_or_judge_answerer) as server:
        yield server


def bench_args(server: FakeLLMServer, out: Path, *extra: str) -> list[str]:
    return [
        "bench",
        "--suites",
        ",".join(BUILT),
        "--targets",
        f"openai:gpt-4o-mini@{server.openai_base_url},anthropic:claude-haiku-4-5@{server.anthropic_base_url}",
        "--judges",
        f"openai:gpt-4.1-mini@{server.openai_base_url}",
        "--out",
        str(out),
        "--limit",
        "4",
        "--seed",
        "3",
        "--bootstrap",
        "50",
        "-q",
        *extra,
    ]


def test_a_bench_gives_a_record_with_an_interval_for_every_target_suite_and_metric(
    tmp_path: Path, bench_server: FakeLLMServer, judge_env: Path, run_cli: Any
) -> None:
    out = tmp_path / "bench"
    result = run_cli(*bench_args(bench_server, out))
    assert result.code == 0, result.stderr
    card = json.loads((out / "scorecard.json").read_text())
    targets = {c["target"] for c in read_jsonl(out / "respond" / "calls.jsonl")}
    assert len(targets) == 2
    prompts = read_jsonl(out / "prompts.jsonl")
    assert {p["meta"]["suite"] for p in prompts} == set(BUILT)
    assert all(sum(p["meta"]["suite"] == s for p in prompts) <= 4 * 2 for s in BUILT)
    records = {(r["target"], r["suite"], r["metric"]) for r in card["results"]}
    for suite_id in BUILT:
        for metric in (m for m in SUITES[suite_id].metrics if m.protocol != "paper"):  # a rubric run
            for target in targets:
                assert (target, suite_id, metric.name) in records, (target, suite_id, metric.name)
    for record in card["results"]:
        assert record["source"] in ("judge", "deterministic")
        if record["n"] == 0:
            assert record["value"] is None and record["reason"]
        elif record["value"] is not None and record["n"] > 1 and record["metric"] != "pearson_r":
            assert record["ci_low"] is not None and record["ci_low"] <= record["value"] <= record["ci_high"]
    assert sum(r["ci_low"] is not None for r in card["results"]) >= len(card["results"]) // 2
    assert set(card["ranks"]) <= set(BUILT) and card["ranks"]
    judged = read_jsonl(out / "judged-items.jsonl")
    assert judged and all(item["pillar"] for item in judged)
    verdicts = read_jsonl(out / "score" / "verdicts.jsonl")
    assert {v["item_id"] for v in verdicts} == {item["id"] for item in judged}
    bench = json.loads((out / "bench.json").read_text())
    assert bench["limit"] == 4 and bench["seed"] == 3 and bench["suites"] == BUILT
    report = (out / "report.html").read_text()
    assert "<html" in report and "Benchmark run" in report
    assert (out / "report.html").stat().st_mode & 0o077 == 0

    bench_server.reset()
    again = run_cli(*bench_args(bench_server, out))
    assert again.code == 0, again.stderr
    assert bench_server.requests == [], "a finished bench re-run repeats no call"
    assert json.loads((out / "scorecard.json").read_text()) == card


def test_the_same_limit_and_seed_build_the_same_prompts(
    tmp_path: Path, bench_server: FakeLLMServer, judge_env: Path, run_cli: Any
) -> None:
    built = []
    for name in ("a.jsonl", "b.jsonl"):
        result = run_cli("suites", "build", *BUILT, "--out", tmp_path / name, "--limit", "5", "--seed", "9")
        assert result.code == 0, result.stderr
        built.append((tmp_path / name).read_text())
    assert built[0] == built[1]


def test_dry_run_prices_targets_and_judges_apart_and_sends_nothing(
    tmp_path: Path, bench_server: FakeLLMServer, judge_env: Path, run_cli: Any
) -> None:
    out = tmp_path / "bench"
    result = run_cli(*bench_args(bench_server, out, "--dry-run"))
    assert result.code == 0, result.stderr
    assert "targets" in result.stdout and "judges" in result.stdout
    assert bench_server.requests == [] and not out.exists()


def test_dry_run_of_suites_that_need_no_judge_says_so(
    tmp_path: Path, bench_server: FakeLLMServer, judge_env: Path, run_cli: Any
) -> None:
    out = tmp_path / "bench"
    args = ["bench", "--suites", "reliability/knowledge", "--limit", "3", "--out", str(out), "--dry-run"]
    result = run_cli(*args, "--targets", f"openai:gpt-4o-mini@{bench_server.openai_base_url}", "--judges",
                     f"openai:gpt-4.1-mini@{bench_server.openai_base_url}")  # fmt: skip
    assert result.code == 0, result.stderr
    assert "none of the chosen suites is judged" in result.stdout
    assert bench_server.requests == [] and not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--suites", "safety/nope"], "unknown suite"),
        (["--suites", "reliability/diagnosis"], "cannot be built"),
        ([], "--suites"),
    ],
)
def test_bad_suites_exit_2_and_send_nothing(
    tmp_path: Path, bench_server: FakeLLMServer, judge_env: Path, run_cli: Any, args: list[str], message: str
) -> None:
    result = run_cli(
        "bench",
        *args,
        "--targets",
        f"openai:m@{bench_server.openai_base_url}",
        "--judges",
        f"openai:j@{bench_server.openai_base_url}",
        "--out",
        tmp_path / "out",
    )
    assert result.code == 2
    assert message in result.stderr
    assert bench_server.requests == []


def test_a_bench_through_the_batch_apis_gives_the_same_scorecard(
    tmp_path: Path, bench_server: FakeLLMServer, judge_env: Path, run_cli: Any
) -> None:
    live = tmp_path / "live"
    assert run_cli(*bench_args(bench_server, live, "--no-cache")).code == 0
    batched = tmp_path / "batched"
    result = run_cli(*bench_args(bench_server, batched, "--no-cache", "--batch", "--batch-poll", "0"))
    assert result.code == 0, result.stderr
    assert any("/batches" in r.path for r in bench_server.requests)
    assert (
        json.loads((batched / "scorecard.json").read_text())["results"]
        == json.loads((live / "scorecard.json").read_text())["results"]
    )


def test_the_judges_file_families_reach_the_judged_verdicts(
    tmp_path: Path, bench_server: FakeLLMServer, judge_env: Path, run_cli: Any
) -> None:
    """A judges file's [families] decides which verdicts are self-family, in bench as in score: here the
    file puts the Claude target and the GPT judge in one family, which the built-in families do not."""
    judges_file = tmp_path / "judges.toml"
    judges_file.write_text(
        f'[judges.house]\nspec = "openai:gpt-4.1-mini@{bench_server.openai_base_url}"\n\n'
        '[families]\nhouse = ["claude-haiku", "gpt-4.1"]\n'
    )
    out = tmp_path / "bench"
    args = ["bench", "--suites", "safety/direct-harm", "--limit", "2", "--out", str(out), "-q", "--no-cache"]
    targets = ["--targets", f"anthropic:claude-haiku-4-5@{bench_server.anthropic_base_url}"]
    result = run_cli(*args, *targets, "--judges", "house", "--judges-file", str(judges_file))
    assert result.code == 0, result.stderr
    verdicts = read_jsonl(out / "score" / "verdicts.jsonl")
    assert verdicts and all(v["self_family"] for v in verdicts)


def test_the_recorded_bench_writes_a_scorecard_and_a_report(tmp_path: Path, run_cli: Any) -> None:
    out = tmp_path / "recorded"
    result = run_cli("bench", "--recorded", "trustmh-bench", "--out", out, "--bootstrap", "20")
    assert result.code == 0, result.stderr
    card = json.loads((out / "scorecard.json").read_text())
    assert len({r["target"] for r in card["results"] if r["suite"] == "ethics/reasoning"}) == 12
    assert len({r["target"] for r in card["results"] if r["suite"] == "privacy/leakage"}) == 6
    assert (out / "report.html").exists()


def test_an_overlong_target_answer_is_judged_cut_to_fit_and_the_bench_goes_on(
    tmp_path: Path, bench_server: FakeLLMServer, judge_env: Path, run_cli: Any
) -> None:
    """A target's answer longer than the limit is the system under test, not bad input: it is judged on a
    copy cut to fit and marked so, and the bench ends with its scorecard (it stopped with exit 2 and advised
    --max-response-chars, which bench did not have; #28 item 2)."""
    def long_answers(req: ParsedRequest) -> Reply:  # every target rambles on for 200,000 characters
        reply = target_or_judge_answerer(req)
        return Reply.text("I hear you, and " * 12_500) if reply.kind == "text" else reply

    out = tmp_path / "bench"
    with FakeLLMServer(answerer=long_answers) as server:
        result = run_cli(*bench_args(server, out))
    assert result.code in (0, 3), result.stderr
    assert (out / "scorecard.json").exists() and (out / "report.html").exists()
    judged = read_jsonl(out / "judged-items.jsonl")
    assert judged and all(len(item["response"]) <= 100_000 for item in judged)
    assert all(item["meta"]["response_truncated"]["chars"] == 200_000 for item in judged)
    answers = [c["response"] for c in read_jsonl(out / "respond" / "calls.jsonl") if c["response"]]
    assert answers and all(len(a) == 200_000 for a in answers), "the answers themselves are kept whole"


def test_judged_copy_cuts_with_a_note_and_leaves_short_answers_alone() -> None:
    from judge.suites.bench import judged_copy

    short = {"id": "a", "response": "fine", "meta": {"suite": "s"}}
    assert judged_copy(short, 100) is short
    long = {"id": "b", "response": "x" * 10_000_000, "meta": {"suite": "s"}}
    copy = judged_copy(long, 100_000)
    assert len(copy["response"]) <= 100_000 and "trustmh cut the rest of this answer" in copy["response"]
    kept = copy["meta"]["response_truncated"]["judged_chars"]
    assert copy["meta"] == {"suite": "s", "response_truncated": {"chars": 10_000_000, "judged_chars": kept}}
    assert copy["response"].startswith("x" * kept) and kept > 99_000
    assert long["response"] == "x" * 10_000_000, "the answer itself is not changed"


def test_a_crisis_bench_with_split_critical_counts_the_judge_against_the_human_labels(
    tmp_path: Path, bench_server: FakeLLMServer, judge_env: Path, run_cli: Any
) -> None:
    out = tmp_path / "bench"
    args = bench_args(bench_server, out, "--split-critical")
    args[args.index("--suites") + 1] = "crisis/escalation"
    args[args.index("--limit") + 1] = "6"
    result = run_cli(*args)
    assert result.code == 0, result.stderr
    assert json.loads((out / "bench.json").read_text())["split_critical"] is True
    labels = [p["meta"]["human_label"] for p in read_jsonl(out / "prompts.jsonl") if p["meta"]["human_label"]]
    assert labels
    summary = json.loads((out / "score" / "summary.json").read_text())
    assert summary["split_critical"] is True
    (record,) = summary["label_agreement"]  # one judge; the scripted judge reads suicidal ideation, at high risk
    wrong = sum(label != "suicidal_ideation" for label in labels)
    assert (record["category_n"], record["category_disagree"]) == (2 * len(labels), 2 * wrong)  # two targets
    assert record["category_share"] == round(wrong / len(labels), 4) and record["level_n"] == 0
    assert sum(c["n"] for c in record["confusions"]) == 2 * wrong
    verdicts = read_jsonl(out / "score" / "verdicts.jsonl")
    assert {v["part"] for v in verdicts} >= {"critical:risk_recognition", "others"}
    assert "Judge reading against the risk labels" in (out / "report.html").read_text()


def test_the_recorded_bench_under_paper_puts_the_published_figures_beside_ours(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.console import Console

    monkeypatch.setattr("judge.cli.bench_cmd.out_console", Console(width=2000))  # no wrapped lines
    out = tmp_path / "paper"
    result = run_cli("bench", "--recorded", "trustmh-bench", "--protocol", "paper", "--reparse", "--out", out,
                     "--bootstrap", "0")
    assert result.code == 0, result.stderr
    assert "published figures: 198 reproduced, 0 differ, 6 without data" in result.stdout
    assert "The paper's summary figures" in result.stdout
    card = json.loads((out / "scorecard.json").read_text())
    assert card["published"]["counts"] == {"reproduced": 198, "differs": 0, "no data": 6}
    assert json.loads((out / "bench.json").read_text())["protocol"] == "paper"
    md = (out / "scorecard.md").read_text()
    assert "## Published figures beside this scorecard (198 reproduced, 0 differ, 6 no data)" in md
    assert "## ethics/reasoning (protocol: paper)" in md
    assert "Published figures beside this run" in (out / "report.html").read_text()


def test_protocol_and_reparse_misuse_exit_2(tmp_path: Path, run_cli: Any) -> None:
    result = run_cli("bench", "--recorded", "trustmh-bench", "--protocol", "authors", "--out", tmp_path / "a")
    assert result.code == 2 and "--protocol 'authors'" in result.stderr
    result = run_cli("bench", "--suites", "ethics/reasoning", "--targets", "openai:x", "--judges", "openai:y",
                     "--reparse", "--out", tmp_path / "b")
    assert result.code == 2 and "--reparse" in result.stderr
    result = run_cli("bench", "--suites", "ethics/reasoning", "--targets", "openai:x", "--judges", "openai:y",
                     "--first", "3", "--limit", "3", "--out", tmp_path / "c")
    assert result.code == 2 and "--first N and --limit N" in result.stderr
