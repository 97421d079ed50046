"""Which worker sends a judge's calls: an LLM judge's (`judge.judge_worker`: instructor and an SDK) or a
mock judge's (`judge.mock_judge`: in-process, no network). `judge.calls.runner.make_workers` calls
`judge_worker` once per judge that has calls to make; only the module a judge needs is imported."""

from __future__ import annotations

from typing import Any

from judge.judges import JudgeSpec, is_mock


def judge_worker(spec: JudgeSpec, default_concurrency: int) -> Any:
    if is_mock(spec):
        from judge.mock_judge import MockJudgeWorker

        return MockJudgeWorker(spec, default_concurrency)
    from judge.judge_worker import JudgeWorker

    return JudgeWorker(spec, default_concurrency)
