"""The arithmetic of docs/scale.md: calls, tokens, cost, wall time and cluster size of a large re-grading,
every figure computed here from the inputs it prints (nothing is sent anywhere).

Measured here: the tokens of a call per pillar (the project's worked examples, planned for the judge as
`trustmh score --dry-run` plans them: 4 characters a token in, 150 tokens a criterion out, capped by the
judge's max_tokens), the part of a prompt that is the same for every call of a pillar (the system
message: the rubric, which a provider's prompt cache can serve), and the driver's planning time per call.
Taken from the command line: the corpus size, the judge, the account's rate limits, the latency of a call,
and the CPU time a call costs the local engine and the extra it costs on Ray (`run_bench.py --only ray`).

Usage:  .venv/bin/python tests/perf/scale.py --local-ms MS --ray-overhead-ms MS [--items N] ...
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from judge.bundled import bundled_path  # noqa: E402
from judge.calls.pricing import Usage, usage_cost  # noqa: E402
from judge.judges import parse_judge_spec  # noqa: E402
from judge.score import ScoreOptions, dry_run_plan, prepare  # noqa: E402
from judge.settings import RunSettings  # noqa: E402

PILLARS = ("crisis", "ethics", "fairness", "privacy", "reliability", "robustness", "safety", "sycophancy")
OPENAI_CACHE_MIN, OPENAI_CACHE_STEP = 1024, 128  # OpenAI caches a prefix of 1,024 tokens or more, by 128


def plan(items: list[Path], judge: str, out: Path) -> object:
    return prepare(
        ScoreOptions(
            items=items,
            judges=[parse_judge_spec(judge)],
            rubrics_dir=bundled_path("rubrics"),
            out=out,
            settings=RunSettings(dry_run=True, quiet=True),
        )
    )


def per_pillar(judge: str, work: Path) -> dict[str, dict[str, float]]:
    """Per pillar: mean input and output tokens of a call, and the cacheable (system message) tokens."""
    figures = {}
    for pillar in PILLARS:
        prepared = plan([REPO / "data" / "examples" / f"{pillar}.jsonl"], judge, work / pillar)
        row = dry_run_plan(prepared)[0]  # type: ignore[arg-type]
        calls = prepared.calls  # type: ignore[attr-defined]
        system = sum(len(calls[i].messages[0].content) for i in range(len(calls))) / len(calls) / 4
        figures[pillar] = {
            "calls": row["calls"],
            "input": row["est_input_tokens"] / row["calls"],
            "output": row["est_output_tokens"] / row["calls"],
            "system": system,
        }
    return figures


def cacheable(system_tokens: float) -> int:
    """Tokens of the shared prefix a provider's prompt cache can serve (OpenAI's rule)."""
    if system_tokens < OPENAI_CACHE_MIN:
        return 0
    return int(system_tokens // OPENAI_CACHE_STEP) * OPENAI_CACHE_STEP


def planning_us_per_call(judge: str, work: Path, items: int) -> float:
    """The driver's check and plan of `items` items (read, validate, render, key every call), per call."""
    path = work / "plan.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for i in range(items):
            handle.write(json.dumps({
                "id": f"p{i}", "pillar": "crisis", "prompt": f"I feel low (case {i}).",
                "response": f"Case {i}: I'm sorry you feel this way. Call or text 988 if you are in danger.",
            }) + "\n")  # fmt: skip
    started = time.perf_counter()
    prepared = plan([path], judge, work / "plan-out")
    elapsed = time.perf_counter() - started
    return elapsed * 1e6 / len(prepared.calls)  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000_000, help="conversations to re-grade")
    parser.add_argument("--judge", default="openai:gpt-4.1-mini")
    parser.add_argument("--rpm", type=float, default=30_000, help="the account's requests per minute")
    parser.add_argument("--tpm", type=float, default=150_000_000, help="the account's tokens per minute")
    parser.add_argument("--latency-s", type=float, default=3.0, help="seconds a judge call takes, answered")
    parser.add_argument("--local-ms", type=float, required=True, help="measured CPU ms a call costs locally")
    parser.add_argument("--ray-overhead-ms", type=float, required=True, help="measured extra ms a call costs on Ray")
    parser.add_argument("--shard-items", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent calls per judge in a shard")
    parser.add_argument("--plan-items", type=int, default=20_000, help="items the planning time is measured on")
    args = parser.parse_args(argv)

    spec = parse_judge_spec(args.judge)
    with tempfile.TemporaryDirectory(prefix="trustmh-scale-") as tmp:
        pillars = per_pillar(args.judge, Path(tmp))
        plan_us = planning_us_per_call(args.judge, Path(tmp), args.plan_items)

    calls = args.items * len(PILLARS)
    input_tokens = sum(round(args.items * f["input"]) for f in pillars.values())
    output_tokens = sum(round(args.items * f["output"]) for f in pillars.values())
    cached_tokens = sum(args.items * min(cacheable(f["system"]), math.floor(f["input"])) for f in pillars.values())
    list_cost = usage_cost(spec, Usage(input=input_tokens, output=output_tokens))
    cached_cost = usage_cost(spec, Usage(input=input_tokens, output=output_tokens, cached_input=cached_tokens))
    batch_cost = usage_cost(spec, Usage(input=input_tokens, output=output_tokens), batch=True)
    batch_cached_cost = usage_cost(
        spec, Usage(input=input_tokens, output=output_tokens, cached_input=cached_tokens), batch=True
    )
    minutes_rpm = calls / args.rpm
    minutes_tpm = (input_tokens + output_tokens) / args.tpm
    minutes = max(minutes_rpm, minutes_tpm)
    calls_per_s = calls / (minutes * 60)
    in_flight = calls_per_s * args.latency_s  # Little's law
    cpu_ms = args.local_ms + args.ray_overhead_ms
    cores = calls_per_s * cpu_ms / 1000
    shards = math.ceil(args.items / args.shard_items)
    shards_at_once = math.ceil(in_flight / args.concurrency)

    print("inputs:", json.dumps({k: v for k, v in vars(args).items()}, sort_keys=True))
    print(f"pillars (per call, from data/examples): {json.dumps(pillars, indent=None)}")
    rows = [
        ("calls", f"{args.items:,} items × {len(PILLARS)} pillars × 1 judge", f"{calls:,}"),
        ("input tokens", "Σ over pillars of items × mean input tokens of a call", f"{input_tokens:,}"),
        ("output tokens", "Σ over pillars of items × mean output tokens of a call", f"{output_tokens:,}"),
        ("cacheable input tokens", "Σ over pillars of items × the system message, rounded down to 128s "
         "(0 under 1,024)", f"{cached_tokens:,} ({cached_tokens / input_tokens:.1%} of input)"),
        ("cost, live, list prices", f"{spec.model} at {spec.prices()} USD per 1M in/out", f"${list_cost:,.0f}"),
        ("cost, live, prompt cache", "cacheable tokens at the cached-input price", f"${cached_cost:,.0f}"),
        ("cost, batch", "half the live price", f"${batch_cost:,.0f}"),
        ("cost, batch + prompt cache", "half the cached live price", f"${batch_cached_cost:,.0f}"),
        ("wall time, request limit", f"calls ÷ {args.rpm:,.0f} RPM", f"{minutes_rpm / 60 / 24:,.1f} days"),
        ("wall time, token limit", f"tokens ÷ {args.tpm:,.0f} TPM", f"{minutes_tpm / 60 / 24:,.1f} days"),
        ("wall time (live)", "the larger of the two", f"{minutes / 60 / 24:,.1f} days at {calls_per_s:,.0f} calls/s"),
        ("calls in flight", f"calls/s × {args.latency_s} s latency", f"{in_flight:,.0f}"),
        ("shards running at once", f"in flight ÷ concurrency {args.concurrency}", f"{shards_at_once:,}"),
        ("CPU cores for the calls", f"calls/s × ({args.local_ms} + {args.ray_overhead_ms}) ms", f"{cores:,.1f}"),
        ("shards", f"items ÷ {args.shard_items:,}", f"{shards:,}"),
        ("driver: check and plan", f"{plan_us:.1f} µs a call (measured on {args.plan_items:,} items) × calls",
         f"{plan_us * calls / 1e6 / 3600:,.1f} hours on one core"),
    ]  # fmt: skip
    print("| figure | how | value |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
