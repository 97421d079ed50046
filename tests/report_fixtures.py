"""Bench run folders written by hand to the lead's contract (scorecard.json, respond/ and score/ summaries).

The numbers are arbitrary but deterministic; ranks and pillar ranks are derived here the way the
scorecard defines them, so the report has a consistent run to draw and the tests something to compare.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from statistics import fmean
from typing import Any

TARGETS = ["gpt-4o-mini", "claude-3-haiku", "qwen2.5-7b"]
# (suite, primary metric, higher is better, source)
SUITES = [
    ("reliability/knowledge", "accuracy", True, "deterministic"),
    ("reliability/emotion", "accuracy", True, "deterministic"),
    ("crisis/identification", "accuracy", True, "deterministic"),
    ("safety/jailbreak", "refusal_rate", True, "judge"),
    ("fairness/esconv", "disparity_sd", False, "judge"),
    ("privacy/tier1", "pearson_r", True, "deterministic"),
    ("privacy/leakage", "leak_rate", False, "deterministic"),
    ("robustness/emotional-support", "delta_support_score", True, "judge"),
    ("sycophancy/oeq", "validation_rate", False, "judge"),
    ("ethics/reasoning", "accuracy", True, "deterministic"),
]
BREAKDOWNS = {
    "safety/jailbreak": ["method:role_play", "method:prefix_injection", "method:refusal_suppression"],
    "fairness/esconv": ["race:Black", "race:White", "race:Asian", "gender:female", "gender:male"],
    "robustness/emotional-support": ["level:character", "level:word", "level:sentence"],
}


def _result(target: str, suite: str, metric: str, value: float | None, better: bool, source: str,
            group: str | None, rng: random.Random, with_ci: bool = True) -> dict[str, Any]:
    width = round(rng.uniform(0.01, 0.08), 4)
    return {"target": target, "pillar": suite.split("/")[0], "suite": suite, "metric": metric, "value": value,
            "ci_low": None if value is None or not with_ci else round(value - width, 4),
            "ci_high": None if value is None or not with_ci else round(value + width, 4),
            "n": rng.randint(20, 60), "higher_is_better": better, "source": source, "group": group}


def _ranks(values: dict[str, float], higher_is_better: bool) -> dict[str, float]:
    """Average ranks (ties share the mean of their positions), 1 = best."""
    order = sorted(values, key=lambda t: -values[t] if higher_is_better else values[t])
    ranks: dict[str, float] = {}
    position = 0
    while position < len(order):
        tied = [t for t in order if values[t] == values[order[position]]]
        mean = fmean(range(position + 1, position + len(tied) + 1))
        for t in tied:
            ranks[t] = int(mean) if mean == int(mean) else mean
        position += len(tied)
    return ranks


def scorecard(targets: list[str], seed: int = 7, failed: bool = False) -> dict[str, Any]:
    rng = random.Random(seed)
    results: list[dict[str, Any]] = []
    ranks: dict[str, Any] = {}
    for index, (suite, metric, better, source) in enumerate(SUITES):
        values = {}
        for target in targets:
            value = 0.0 if failed else round(rng.uniform(-0.3, 0.0) if metric == "mean_delta" else rng.random(), 4)
            values[target] = value
            results.append(_result(target, suite, metric, value, better, source, None, rng,
                                   with_ci=not failed and index != 2))
        for group in BREAKDOWNS.get(suite, []):
            for target in targets:
                value = 0.0 if failed else round(rng.uniform(-0.4, 0.1) if group.startswith("level:")
                                                 else rng.random(), 4)
                results.append(_result(target, suite, "mean" if suite.startswith("fairness") else metric, value,
                                       better, source, group, rng, with_ci=not failed))
        ranks[suite] = {"metric": metric, "ranks": _ranks(values, better)}
    pillar_ranks: dict[str, dict[str, float]] = {}
    for suite, entry in ranks.items():
        pillar = suite.split("/")[0]
        for target, rank in entry["ranks"].items():
            pillar_ranks.setdefault(pillar, {}).setdefault(target, []).append(rank)  # type: ignore[arg-type]
    pillar_ranks = {p: {t: fmean(r) for t, r in ts.items()} for p, ts in pillar_ranks.items()}  # type: ignore[arg-type]
    unparsed = [] if failed else [
        {"target": targets[0], "suite": "reliability/knowledge", "id": "reliability/knowledge:17",
         "answer": "I would rather not pick one of <these> options & explain why."},
        {"target": targets[-1], "suite": "ethics/reasoning", "id": "ethics/reasoning:3", "answer": ""},
    ]
    return {"results": results, "ranks": ranks, "pillar_ranks": pillar_ranks, "unparsed": unparsed, "seed": 0,
            "bootstrap": 1000}


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def bench_json(targets: list[str]) -> dict[str, Any]:
    return {"suites": [s for s, *_ in SUITES], "targets": targets, "judges": ["openai:gpt-4.1-mini"], "limit": 20,
            "seed": 0, "command_line": ["trustmh", "bench", "--suites", "all", "--targets", ",".join(targets)]}


def write_bench_run(out: Path, targets: list[str], score_run: Path | None = None) -> Path:
    """A finished bench run: scorecard, bench.json, respond summary and (optionally) a real score run."""
    _write(out / "scorecard.json", scorecard(targets))
    _write(out / "bench.json", bench_json(targets))
    _write(out / "respond" / "summary.json", {
        "calls": {"planned": 600, "requested": 590, "cache_hits": 6, "resumed": 4, "failed": 5},
        "failures_by_reason": {"rate_limited": 2, "timeout": 3},
        "tokens_this_run": {"input": 152_340, "output": 98_765},
        "cost_usd_this_run": 0.0731, "wall_time_s": 81.25})
    if score_run is not None:
        shutil.copytree(score_run, out / "score")
    return out


def write_failed_bench_run(out: Path, targets: list[str]) -> Path:
    """Every target call failed (bad key): metrics count them as failures; nothing was judged."""
    _write(out / "scorecard.json", scorecard(targets, failed=True))
    _write(out / "bench.json", bench_json(targets))
    _write(out / "respond" / "summary.json", {
        "calls": {"planned": 60, "requested": 60, "cache_hits": 0, "resumed": 0, "failed": 60},
        "failures_by_reason": {"auth": 60}, "tokens": {"input": None, "output": None}, "cost_usd": None})
    return out


def write_empty_bench_run(out: Path) -> Path:
    _write(out / "scorecard.json", {"results": [], "ranks": {}, "pillar_ranks": {}, "unparsed": [], "seed": 0,
                                    "bootstrap": 1000})
    _write(out / "bench.json", bench_json([]))
    _write(out / "respond" / "summary.json", {"calls": {"planned": 0, "requested": 0, "cache_hits": 0, "resumed": 0,
                                                        "failed": 0}, "failures_by_reason": {}})
    return out


def write_recorded_like_run(out: Path) -> Path:
    """Shaped like `bench --recorded trustmh-bench`: two pillars, 12 targets on ethics and only 6 of them on
    privacy, no tokens (answers imported, not requested)."""
    rng = random.Random(3)
    targets = [f"model-{k:02d}" for k in range(12)]
    results, ranks = [], {}
    for suite, metric, members in (("privacy/tier1", "pearson_r", targets[:6]),
                                   ("privacy/tier2a", "pearson_r", targets[:6]),
                                   ("ethics/reasoning", "accuracy", targets)):
        values = {t: round(rng.random(), 4) for t in members}
        results += [_result(t, suite, metric, v, True, "deterministic", None, rng) for t, v in values.items()]
        ranks[suite] = {"metric": metric, "ranks": _ranks(values, True)}
    pillar_ranks: dict[str, dict[str, Any]] = {}
    for suite, entry in ranks.items():
        for target, rank in entry["ranks"].items():
            pillar_ranks.setdefault(suite.split("/")[0], {}).setdefault(target, []).append(rank)
    _write(out / "scorecard.json", {"results": results, "ranks": ranks, "unparsed": [], "seed": 0, "bootstrap": 1000,
                                    "pillar_ranks": {p: {t: fmean(r) for t, r in ts.items()}
                                                     for p, ts in pillar_ranks.items()}})
    _write(out / "bench.json", {"recorded": "trustmh-bench", "targets": targets})
    _write(out / "respond" / "summary.json", {"calls": {"planned": 1860, "requested": 0, "cache_hits": 0, "resumed": 0,
                                                        "failed": 0}, "failures_by_reason": {},
                                              "tokens": {"input": None, "output": None}, "cost_usd": None})
    return out


def _jsonl_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_jsonl(path: Path, rows: Any) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_item_run(out: Path, base: Path, n_items: int, hostile: str | None = None) -> Path:
    """A score run of `n_items` items made from a real one (`base`, a `trustmh score --out` folder): item k is
    base item k mod n under the id `item-k`, with that item's verdict and panel rows (critical failures kept on
    every fourth item only, not-applicable verdicts on every fifth, so that filters pick some). summary.json and the
    review queue are the base run's, so only the item browser sees the larger run. With `hostile`, the first
    item's message, response and target, and its first verdict's judge, rationale and evidence, are that text."""
    shutil.copytree(base, out)
    items = _jsonl_rows(base / "items.jsonl")
    verdicts, panel = _jsonl_rows(base / "verdicts.jsonl"), _jsonl_rows(base / "panel.jsonl")
    by_item: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {
        i["id"]: ([v for v in verdicts if v["item_id"] == i["id"]], [p for p in panel if p["item_id"] == i["id"]])
        for i in items}

    def copies(k: int) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
        source = items[k % len(items)]
        new_id = f"item-{k:05d}"
        item = {**source, "id": new_id}
        rows, decisions = by_item[source["id"]]
        rows = [{**v, "item_id": new_id} for v in rows]
        decisions = [{**p, "item_id": new_id} for p in decisions]
        if k % 4:  # only every fourth item keeps its critical failures, so the verdict filter picks some
            decisions = [{**p, "critical_fail": False if p["critical_fail"] else p["critical_fail"]} for p in decisions]
        if k % 5:  # and only every fifth its not-applicable verdicts (the others scored 3)
            rows = [{**v, "status": "ok", "score": 3} if v["status"] == "not_applicable" else v for v in rows]
        if hostile is not None and k == 0:
            item["messages"] = [{"role": "user", "content": hostile}]
            item["response"], item["target"] = hostile, hostile
            rows[0] = {**rows[0], "judge": hostile, "rationale": hostile, "evidence": [hostile], "target": hostile}
        return item, rows, decisions

    _write_jsonl(out / "items.jsonl", (copies(k)[0] for k in range(n_items)))
    _write_jsonl(out / "verdicts.jsonl", (v for k in range(n_items) for v in copies(k)[1]))
    _write_jsonl(out / "panel.jsonl", (p for k in range(n_items) for p in copies(k)[2]))
    (out / "report.html").unlink(missing_ok=True)
    return out
