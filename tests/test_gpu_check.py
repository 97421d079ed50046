"""tests/perf/gpu_check.py: its figures from plain values, and the whole check with `--base-url` against the
loopback server, some of whose answers are invalid or cut off, checked against what that server saw."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from judge.calls.client import InvalidAnswerError, describe_failure
from judge.judges import load_judges_file, parse_judge_spec
from tests.fakeapi import FakeLLMServer
from tests.fakeapi.judge_script import scripted_answerer
from tests.fakeapi.protocol import FaultPlan, ParsedRequest, Reply
from tests.perf import gpu_check
from tests.perf.gpu_check import CheckError


def row(item: str, criterion: str, *, status: str = "ok", error: str | None = None,
        tokens: tuple[int, int, int] = (0, 0, 0), latency: float = 1.0) -> dict[str, Any]:  # fmt: skip
    return {"item_id": item, "pillar": "crisis", "criterion": criterion, "judge": "j", "role": "panel", "sample": 0,
            "status": status, "error": error, "input_tokens": tokens[0], "output_tokens": tokens[1],
            "cached_input_tokens": tokens[2], "latency_s": latency}  # fmt: skip


ROWS = [
    row("a", "c1", tokens=(500, 40, 400), latency=2.0),
    row("a", "c2", tokens=(500, 40, 400), latency=2.0),
    row("b", "c1", status="failed", error="invalid answer after 3 attempt(s): answer: Invalid JSON",
        tokens=(900, 30, 0), latency=4.0),
    row("c", "c1", status="failed", error="timeout: Request timed out. (gave up after 6 attempts)", latency=9.0),
    row("d", "c1", status="not_applicable", tokens=(100, 10, 100), latency=1.0),
]  # fmt: skip
SUMMARY = {
    "calls": {"planned": 4, "requested": 4, "cache_hits": 0, "resumed": 0, "failed": 2,
              "http_requests_this_process": 10},
    "failures_by_reason": {"invalid_answer": 1, "timeout": 1},
    "tokens_this_run": {"input": 2000, "output": 120, "cached_input": 900, "cache_write": 0},
    "wall_time_s": 4.0,
}  # fmt: skip


def test_figures_from_a_summary_and_its_verdict_rows() -> None:
    f = gpu_check.figures(SUMMARY, ROWS)
    assert (f["calls"], f["calls_per_s"], f["tokens_per_s"], f["output_tokens_per_s"]) == (4, 1.0, 530.0, 30.0)
    assert f["cached_input_share"] == 0.45
    assert f["structured_failures"] == {"invalid_answer": 1, "truncated": 0, "empty_answer": 0}
    assert (f["structured_failure_rate"], f["failed_calls"], f["failed_rate"]) == (0.25, 2, 0.5)
    assert (f["extra_requests"], f["extra_requests_per_call"]) == (6, 1.5)
    assert (f["latency_p50_s"], f["latency_p95_s"]) == (2.0, 9.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tokens_this_run": {"input": 1999, "output": 120, "cached_input": 900}}, "input tokens: summary.json 1999"),
        ({"failures_by_reason": {"timeout": 2}}, "invalid_answer failures: summary.json 0, verdicts.jsonl 1"),
        ({"calls": {**SUMMARY["calls"], "requested": 5}}, "calls: summary.json 5, verdicts.jsonl 4"),
        ({"calls": {**SUMMARY["calls"], "cache_hits": 1}}, "reused answers"),
        ({"wall_time_s": None}, "no wall_time_s"),
    ],
)
def test_figures_refuse_a_run_whose_files_disagree_or_reused_answers(change: dict[str, Any], message: str) -> None:
    with pytest.raises(CheckError, match=message):
        gpu_check.figures({**SUMMARY, **change}, ROWS)


def test_failure_reasons_are_read_from_the_engines_own_error_texts() -> None:
    spec = parse_judge_spec("openai:m@http://127.0.0.1:1/v1")
    texts = {
        "invalid_answer": describe_failure(InvalidAnswerError(ValueError("bad"), 3), "invalid_answer", spec),
        "truncated": describe_failure(ValueError("cut"), "truncated", spec),
        "empty_answer": describe_failure(ValueError("no content"), "empty_answer", spec),
        "other": describe_failure(TimeoutError("slow"), "timeout", spec),
    }
    assert {reason: gpu_check.failure_reason(text) for reason, text in texts.items()} == {r: r for r in texts}


def test_memory_readings_and_their_peak() -> None:
    samples = gpu_check.parse_memory("NVIDIA H100 80GB HBM3, 1200, 81559\n") + gpu_check.parse_memory(
        "NVIDIA H100 80GB HBM3, 74000, 81559\nNVIDIA H100 80GB HBM3, 73000, 81559\n"
    )
    assert gpu_check.memory_figures(samples) == {
        "measured": True, "gpu": "NVIDIA H100 80GB HBM3", "peak_used_mib": 74000, "total_mib": 81559, "samples": 3,
    }  # fmt: skip
    assert gpu_check.memory_figures([]) == {"measured": False}
    with pytest.raises(CheckError, match="not 'name, used MiB, total MiB'"):
        gpu_check.parse_memory("[N/A], [N/A]")


def test_the_workload_cycles_the_examples_with_distinct_ids() -> None:
    examples = gpu_check.read_examples()
    assert len(examples) > 50 and not any("expected" in str(e.get("id")) for e in examples)
    items = gpu_check.workload(examples, 2 * len(examples) + 1)
    ids = [item["id"] for item in items]
    assert len(set(ids)) == len(ids)
    assert ids[len(examples)] == f"{examples[0]['id']}~r1" and ids[-1] == f"{examples[0]['id']}~r2"
    assert items[len(examples)]["response"] == examples[0]["response"]


def test_the_vllm_command_and_the_judges_file(tmp_path: Path) -> None:
    command = gpu_check.vllm_command("Qwen/Q", served_name="Qwen/Q", port=8123, max_model_len=16384,
                                     gpu_memory_utilization=0.8, extra=["--seed", "1"])  # fmt: skip
    assert command[:3] == ["vllm", "serve", "Qwen/Q"] and command[-2:] == ["--seed", "1"]
    assert {"--enable-prefix-caching", "--enable-prompt-tokens-details"} <= set(command)
    assert command[command.index("--max-model-len") + 1] == "16384" and command[command.index("--port") + 1] == "8123"
    path = tmp_path / "judges.toml"
    path.write_text(gpu_check.judges_file("Qwen/Q", "http://127.0.0.1:8123/v1", mode="json_schema", concurrency=48,
                                          max_tokens=1024, timeout_s=300))  # fmt: skip
    judge = load_judges_file(path).judges[gpu_check.JUDGE]
    assert (judge.model, judge.base_url, judge.mode, judge.concurrency, judge.max_tokens, judge.timeout_s) == (
        "Qwen/Q", "http://127.0.0.1:8123/v1", "json_schema", 48, 1024, 300
    )  # fmt: skip


def test_bad_arguments_are_refused_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("")
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.main(["--base-url", "ftp://h", "--out", str(tmp_path / "used"), "--items", "0"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "--items must be at least 1" in err and "must start with http://" in err and "is not empty" in err
    assert not (tmp_path / "used" / "workload.jsonl").exists()


def _mentions(texts: list[str]) -> Any:
    """A request predicate: the request judges one of these responses (its opening words in the prompt)."""
    return lambda req: any(t[:120] in m.text for t in texts for m in req.messages if m.role == "user")


def test_the_check_against_the_loopback_server(
    tmp_path: Path, judge_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    items = gpu_check.workload(gpu_check.read_examples(), 24)
    responses = [i["response"] for i in items if isinstance(i.get("response"), str)]
    crisis = [r for r in responses if responses.count(r) == 1 and sum(r[:120] in o for o in responses) == 1][-6:]
    never, once, cut = crisis[:2], crisis[2:4], crisis[4:5]
    reasked: Any = lambda req: _mentions(once)(req) and not req.is_reask  # noqa: E731
    faults = (
        FaultPlan.when(_mentions(never), Reply.raw_arguments('{"not": "a verdict"}'), times=None)
        + FaultPlan.when(reasked, Reply.raw_arguments("{broken"), times=None)
        + FaultPlan.when(_mentions(cut), Reply.cut_off({"half": "a verdict"}), times=None)
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text('#!/bin/sh\necho "Loopback GPU, 4321, 81559"\n')
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path('/usr/bin')}:{Path('/bin')}")
    out = tmp_path / "check"
    with FakeLLMServer(answerer=scripted_answerer, faults=faults) as server:
        code = gpu_check.main(["--base-url", server.openai_base_url, "--model", "loopback-judge", "--out", str(out),
                               "--items", "24", "--concurrency", "8"])  # fmt: skip
        seen: list[ParsedRequest] = [r.parsed for r in server.requests if r.parsed is not None]
        served_tokens = sum(r.input_tokens + r.output_tokens for r in server.requests)
    printed = capsys.readouterr().out
    assert code == 0, printed
    result = json.loads((out / "gpu_check.json").read_text())
    assert stat.S_IMODE((out / "gpu_check.json").stat().st_mode) == 0o600
    f = result["figures"]
    asked = [r for r in seen if not r.is_reask]
    assert f["calls"] == len(asked) >= result["items"] == len(items)
    assert f["extra_requests"] == len(seen) - len(asked) == 2 * 2 + 2  # two re-asks each for `never`, one for `once`
    assert f["structured_failures"] == {"invalid_answer": 2, "truncated": 1, "empty_answer": 0}
    assert f["structured_failure_rate"] == pytest.approx(3 / len(asked))
    assert f["input_tokens"] + f["output_tokens"] == served_tokens
    assert f["calls_per_s"] == pytest.approx(f["calls"] / f["wall_time_s"])
    assert result["gpu_memory"]["measured"] and result["gpu_memory"]["peak_used_mib"] == 4321
    assert result["vllm_command"] is None and result["trustmh_command"][:2] == ["trustmh", "score"]
    assert "| structured-output failure rate |" in printed and "4,321 / 81,559 MiB" in printed


def test_without_nvidia_smi_gpu_memory_is_not_measured(
    tmp_path: Path, judge_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with FakeLLMServer(answerer=scripted_answerer) as server:
        code = gpu_check.main(["--base-url", server.openai_base_url, "--model", "m", "--out", str(tmp_path / "o"),
                               "--items", "3"])  # fmt: skip
    assert code == 0
    assert json.loads((tmp_path / "o" / "gpu_check.json").read_text())["gpu_memory"] == {
        "measured": False, "why": "nvidia-smi not found"
    }  # fmt: skip
    assert "| GPU memory | not measured | nvidia-smi not found |" in capsys.readouterr().out
