"""GPU check: serve a small open model with vLLM on one GPU, judge a fixed workload with `trustmh score`,
and print the throughput (calls/s, tokens/s), the GPU memory and the structured-output failure rate.

Not yet run on a GPU by this project: it is tested against the loopback fake API only
(tests/test_gpu_check.py, with `--base-url`), so its vLLM part is what vLLM's documentation says.

The workload is the project's worked examples (`data/examples/*.jsonl`, every pillar's rubric, in file
order), cycled to `--items` items (copies past the first get the id suffix `~rN` and the same text, which
the server's prefix cache then serves whole). Every figure is computed from the run's own files
(`summary.json`, `verdicts.jsonl`), which are checked against each other first; GPU memory is sampled
with nvidia-smi during the run (its peak), or reported as not measured where there is no nvidia-smi.

Usage:
  python tests/perf/gpu_check.py --model Qwen/Qwen2.5-1.5B-Instruct            # starts `vllm serve`
  python tests/perf/gpu_check.py --base-url http://127.0.0.1:8000/v1 --model NAME   # a running server
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `python tests/perf/gpu_check.py` puts tests/perf/, not the repo, on the path
    sys.path.insert(0, str(REPO))

from judge.bundled import bundled_path  # noqa: E402

DEFAULT_MODEL = "Qwen/Qwen2.5-1.5B-Instruct"
JUDGE = "gpu-check"
# Failures where the server answered but the answer was not a whole verdict: it failed validation after
# every re-ask, stopped at max_tokens, or was empty. The other reasons (timeouts, HTTP errors) are transport.
STRUCTURED_REASONS = ("invalid_answer", "truncated", "empty_answer")
_ERROR_PREFIXES = {
    "invalid answer after ": "invalid_answer",
    "truncated:": "truncated",
    "empty_answer:": "empty_answer",
}
MEMORY_QUERY = ["nvidia-smi", "--query-gpu=name,memory.used,memory.total", "--format=csv,noheader,nounits"]


class CheckError(Exception):
    """A run whose files cannot give the figures (or disagree with each other); says which and why."""


# ---------------------------------------------------------------- the workload and the commands (pure)


def workload(examples: Sequence[dict[str, Any]], items: int) -> list[dict[str, Any]]:
    """The first `items` records of the examples repeated in order; copy N ≥ 1 of a record has the id `ID~rN`."""
    if not examples:
        raise CheckError("no worked examples to build the workload from")
    rows = []
    for index in range(items):
        record = dict(examples[index % len(examples)])
        copy = index // len(examples)
        if copy:
            record["id"] = f"{record['id']}~r{copy}"
        rows.append(record)
    return rows


def vllm_command(
    model: str, *, served_name: str, port: int, max_model_len: int, gpu_memory_utilization: float,
    extra: Sequence[str] = (),
) -> list[str]:  # fmt: skip
    """`vllm serve` with the settings that matter for judging (docs/self-hosted.md): the context length, prefix
    caching on (the rubric is every call's shared prefix), and cached prompt tokens reported in each answer's
    usage, so the run's own token counts show what the prefix cache served. Structured outputs (named tool
    calls, `response_format` schemas) are on in vLLM's OpenAI server by default, with its default backend."""
    return [
        "vllm", "serve", model, "--host", "127.0.0.1", "--port", str(port), "--served-model-name", served_name,
        "--max-model-len", str(max_model_len), "--gpu-memory-utilization", str(gpu_memory_utilization),
        "--enable-prefix-caching", "--enable-prompt-tokens-details", *extra,
    ]  # fmt: skip


def judges_file(model: str, base_url: str, *, mode: str, concurrency: int, max_tokens: int, timeout_s: float) -> str:
    """The judges.toml of the one judge the check runs."""
    return (
        f"[judges.{JUDGE}]\n"
        f"spec = {json.dumps(f'openai:{model}@{base_url}')}\n"
        f"mode = {json.dumps(mode)}\n"
        f"concurrency = {concurrency}\n"
        f"max_tokens = {max_tokens}\n"
        f"timeout_s = {timeout_s:g}\n"
    )


def parse_memory(text: str) -> list[tuple[str, int, int]]:
    """(name, MiB used, MiB total) per GPU from `nvidia-smi --query-gpu=name,memory.used,memory.total
    --format=csv,noheader,nounits`."""
    readings = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            name, used, total = (part.strip() for part in line.rsplit(",", 2))
            readings.append((name, int(used), int(total)))
        except ValueError as exc:
            raise CheckError(f"nvidia-smi printed {line!r}, not 'name, used MiB, total MiB'") from exc
    return readings


def memory_figures(samples: Sequence[tuple[str, int, int]]) -> dict[str, Any]:
    """The peak of the memory samples of one GPU, with its total and name."""
    if not samples:
        return {"measured": False}
    name, _, total = samples[-1]
    return {"measured": True, "gpu": name, "peak_used_mib": max(s[1] for s in samples), "total_mib": total,
            "samples": len(samples)}  # fmt: skip


# ---------------------------------------------------------------- the figures (pure)


def failure_reason(error: str | None) -> str:
    """The structured-output reason of a failed call's error text (judge.calls.client.describe_failure), or
    "other" (a transport failure)."""
    for prefix, reason in _ERROR_PREFIXES.items():
        if (error or "").startswith(prefix):
            return reason
    return "other"


def _calls(rows: Iterable[dict[str, Any]]) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    """verdicts.jsonl's rows grouped by call (one call judges the criteria of one item, pillar and part)."""
    calls: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        key = (row["item_id"], row["pillar"], row["judge"], row["role"], row["sample"], row.get("part"))
        calls.setdefault(key, []).append(row)
    return calls


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank q-th percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def figures(summary: dict[str, Any], rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Throughput and failure figures of one `trustmh score --no-cache` run, from its summary.json and its
    verdicts.jsonl rows, after checking that the two agree on calls, failures and tokens."""
    counts = summary.get("calls") or {}
    tokens = summary.get("tokens_this_run") or {}
    wall = summary.get("wall_time_s")
    if not wall or wall <= 0:
        raise CheckError(f"summary.json has no wall_time_s ({wall!r}): not a finished run")
    if counts.get("cache_hits") or counts.get("resumed"):
        raise CheckError(
            f"the run reused answers (cache hits {counts.get('cache_hits')}, resumed {counts.get('resumed')}): "
            "the figures need every call asked in this run; run into a fresh --out with --no-cache"
        )
    calls = _calls(rows)
    failed = {key: failure_reason(group[0]["error"]) for key, group in calls.items()
              if all(r["status"] == "failed" for r in group)}  # fmt: skip
    by_reason = {reason: sum(1 for r in failed.values() if r == reason) for reason in STRUCTURED_REASONS}
    summed = {name: sum(r[f"{name}_tokens"] or 0 for r in rows) for name in ("input", "output", "cached_input")}
    disagreements = [
        f"{what}: summary.json {want}, verdicts.jsonl {got}"
        for what, want, got in (
            ("calls", counts.get("requested"), len(calls)),
            ("failed calls", counts.get("failed"), len(failed)),
            *((f"{r} failures", (summary.get("failures_by_reason") or {}).get(r, 0), n) for r, n in by_reason.items()),
            *((f"{n} tokens", tokens.get(n) or 0, summed[n]) for n in summed),
        )
        if want != got
    ]
    if disagreements:
        raise CheckError("the run's files disagree: " + "; ".join(disagreements))
    n = len(calls)
    structured = sum(by_reason.values())
    extra = counts.get("http_requests_this_process", n) - n
    latencies = [group[0]["latency_s"] for group in calls.values() if group[0]["latency_s"] is not None]
    total_tokens = summed["input"] + summed["output"]
    return {
        "calls": n,
        "wall_time_s": wall,
        "calls_per_s": n / wall,
        "input_tokens": summed["input"],
        "output_tokens": summed["output"],
        "tokens_per_s": total_tokens / wall,
        "output_tokens_per_s": summed["output"] / wall,
        "cached_input_share": _ratio(summed["cached_input"], summed["input"]),
        "structured_failures": by_reason,
        "structured_failure_rate": _ratio(structured, n),
        "failed_calls": len(failed),
        "failed_rate": _ratio(len(failed), n),
        "extra_requests": extra,
        "extra_requests_per_call": _ratio(extra, n),
        "latency_p50_s": percentile(latencies, 50),
        "latency_p95_s": percentile(latencies, 95),
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def report_rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The printed table: (figure, value, how it was computed)."""
    f, mem = result["figures"], result["gpu_memory"]
    reasons = ", ".join(f"{r} {n}" for r, n in f["structured_failures"].items())
    rows = [
        ("items", f"{result['items']:,}", f"the worked examples, cycled; mode {result['mode']}, "
         f"concurrency {result['concurrency']}"),
        ("calls", f"{f['calls']:,}", "judge calls in verdicts.jsonl (= summary.json calls.requested)"),
        ("wall time", f"{f['wall_time_s']:.2f} s", "summary.json wall_time_s (the run, not start-up)"),
        ("whole process", f"{result['process_s']:.2f} s", "`trustmh score` from spawn to exit"),
        ("calls/s", f"{f['calls_per_s']:.2f}", "calls ÷ wall time"),
        ("tokens/s", f"{f['tokens_per_s']:,.0f}", f"(input {f['input_tokens']:,} + output {f['output_tokens']:,}) "
         "÷ wall time, as the server reported them"),
        ("output tokens/s", f"{f['output_tokens_per_s']:,.0f}", "output tokens ÷ wall time"),
        ("prompt tokens from the prefix cache", _pct(f["cached_input_share"]),
         "cached input tokens ÷ input tokens (the server's usage; 0 where it reports none)"),
        ("structured-output failure rate", _pct(f["structured_failure_rate"]),
         f"calls failed as {' / '.join(STRUCTURED_REASONS)} ÷ calls ({reasons})"),
        ("failed calls, any reason", f"{f['failed_calls']} ({_pct(f['failed_rate'])})", "summary.json calls.failed"),
        ("extra requests", f"{f['extra_requests']} ({f['extra_requests_per_call'] or 0:.2f} a call)",
         "HTTP requests − calls: re-asks of invalid answers and transport retries"),
        ("call latency p50 / p95", f"{f['latency_p50_s'] or 0:.2f} / {f['latency_p95_s'] or 0:.2f} s",
         "latency_s of each call in verdicts.jsonl"),
    ]  # fmt: skip
    if mem.get("measured"):
        rows.append(("GPU memory, peak during the run", f"{mem['peak_used_mib']:,} / {mem['total_mib']:,} MiB",
                     f"nvidia-smi memory.used, {mem['samples']} samples ({mem['gpu']})"))  # fmt: skip
        for name, label in (("idle_mib", "before vLLM started"), ("loaded_mib", "vLLM loaded, before the run")):
            if mem.get(name) is not None:
                rows.append((f"GPU memory, {label}", f"{mem[name]:,} MiB", "nvidia-smi memory.used"))
    else:
        rows.append(("GPU memory", "not measured", mem.get("why", "")))
    return rows


# ---------------------------------------------------------------- processes and files


def read_examples() -> list[dict[str, Any]]:
    """The worked examples `trustmh demo` scores: every data/examples/*.jsonl but the expected scores."""
    records = []
    for path in sorted(bundled_path("examples").glob("*.jsonl")):
        if not path.name.endswith(".expected.jsonl"):
            records += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return records


def write_private(path: Path, text: str) -> None:
    """Owner-only, like every file of a run (the items are conversations)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


@dataclass
class MemorySampler:
    """nvidia-smi's memory.used of one GPU, sampled on a thread every `interval_s` while running."""

    gpu: int
    interval_s: float = 0.5
    samples: list[tuple[str, int, int]] = field(default_factory=list)
    error: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> tuple[str, int, int] | None:
        try:
            done = subprocess.run([*MEMORY_QUERY, "-i", str(self.gpu)], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.error = f"nvidia-smi failed: {exc}"
            return None
        if done.returncode != 0:
            self.error = f"nvidia-smi exited {done.returncode}: {(done.stderr or done.stdout).strip()[:200]}"
            return None
        readings = parse_memory(done.stdout)
        return readings[0] if readings else None

    def _loop(self) -> None:
        while not self._stop.is_set():
            if (reading := self.sample()) is not None:
                self.samples.append(reading)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


@dataclass
class VllmServer:
    """`vllm serve` in its own process group, logging to a file; `stop()` ends the whole group."""

    command: list[str]
    port: int
    log: Path
    gpu: int
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float) -> None:
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": str(self.gpu)}
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CheckError(f"vllm serve exited {self.proc.returncode} before it was ready:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(1)
        raise CheckError(f"vllm serve was not healthy within {timeout_s:g} s (raise --start-timeout-s):\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, grace in ((signal.SIGTERM, 60.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue


def vllm_version() -> str | None:
    try:
        done = subprocess.run(["vllm", "--version"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip().splitlines()[-1] if done.returncode == 0 and done.stdout.strip() else None


def read_run(out: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        with (out / "verdicts.jsonl").open(encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
    except (OSError, ValueError) as exc:
        raise CheckError(f"cannot read the run's files in {out}: {exc}") from exc
    return summary, rows


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="the model vLLM serves (a Hugging Face id or a "
                        "local folder), or with --base-url the model name that server serves")  # fmt: skip
    parser.add_argument("--base-url", help="use this running OpenAI-compatible server (…/v1) instead of vLLM")
    parser.add_argument("--out", type=Path, default=Path("runs/gpu-check"), help="a new folder for every file")
    parser.add_argument("--items", type=int, help="items to judge (default: every worked example once)")
    parser.add_argument("--mode", choices=("tools", "json_schema", "json"), default="tools")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent calls (vLLM batches them)")
    parser.add_argument("--max-tokens", type=int, default=2048, help="the judge's max_tokens")
    parser.add_argument("--timeout-s", type=float, default=600, help="per HTTP request")
    parser.add_argument("--port", type=int, default=8000, help="vLLM's port on 127.0.0.1")
    parser.add_argument("--max-model-len", type=int, default=32768)
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    parser.add_argument("--gpu", type=int, default=0, help="the GPU's index (CUDA_VISIBLE_DEVICES, nvidia-smi -i)")
    parser.add_argument("--start-timeout-s", type=float, default=1200, help="wait this long for vLLM's /health")
    parser.add_argument("--vllm-arg", action="append", default=[], help="one more argument for vllm serve "
                        "(repeatable; write --vllm-arg=--flag for a flag)")  # fmt: skip
    parser.add_argument("--no-gpu-memory", action="store_true", help="do not run nvidia-smi")
    args = parser.parse_args(argv)
    problems = [f"--{name.replace('_', '-')} must be at least 1" for name in ("items", "concurrency", "max_tokens")
                if getattr(args, name) is not None and getattr(args, name) < 1]  # fmt: skip
    if not 0 < args.gpu_memory_utilization <= 1:
        problems.append("--gpu-memory-utilization must be above 0 and at most 1")
    if args.base_url and not args.base_url.startswith(("http://", "https://")):
        problems.append(f"--base-url {args.base_url!r} must start with http:// or https://")
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        problems.append(f"--out {args.out} is not empty; name a new folder (the run must ask every call)")
    if not args.base_url and shutil.which("vllm") is None:
        problems.append("vllm is not installed here: pip install vllm, or pass --base-url of a running server")
    if problems:
        parser.error("; ".join(problems))
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start vLLM (unless --base-url), judge the workload, stop vLLM; the figures and how they were made."""
    out = args.out
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    examples = read_examples()
    items = workload(examples, args.items or len(examples))
    write_private(out / "workload.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in items))
    served = args.model if args.base_url or not Path(args.model).exists() else Path(args.model).name
    base_url = args.base_url or f"http://127.0.0.1:{args.port}/v1"
    write_private(out / "judges.toml", judges_file(served, base_url, mode=args.mode, concurrency=args.concurrency,
                                                   max_tokens=args.max_tokens, timeout_s=args.timeout_s))  # fmt: skip
    nvidia_smi = None if args.no_gpu_memory else shutil.which("nvidia-smi")
    memory: dict[str, Any] = {}
    server = None
    if not args.base_url:
        command = vllm_command(args.model, served_name=served, port=args.port, max_model_len=args.max_model_len,
                               gpu_memory_utilization=args.gpu_memory_utilization, extra=args.vllm_arg)  # fmt: skip
        server = VllmServer(command, args.port, out / "vllm.log", args.gpu)
    score = [sys.executable, "-m", "judge.cli", "score", str(out / "workload.jsonl"), "--judges-file",
             str(out / "judges.toml"), "--judges", JUDGE, "--no-cache", "--concurrency", str(args.concurrency),
             "--out", str(out / "score"), "-q"]  # fmt: skip
    sampler = MemorySampler(args.gpu)
    try:
        if server is not None:
            if nvidia_smi and (idle := sampler.sample()) is not None:
                memory["idle_mib"] = idle[1]
            print("starting:", " ".join(server.command), flush=True)
            server.start(args.start_timeout_s)
            if nvidia_smi and (loaded := sampler.sample()) is not None:
                memory["loaded_mib"] = loaded[1]
        print("running:", " ".join(score), flush=True)
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        started = time.perf_counter()
        with sampler if nvidia_smi else contextlib.nullcontext():
            done = subprocess.run(score, cwd=REPO, env=env, capture_output=True, text=True)
        process_s = time.perf_counter() - started
    finally:
        if server is not None:
            server.stop()
    write_private(out / "trustmh.stderr", done.stderr)
    if done.returncode not in (0, 3):  # 3: some verdicts failed, which is what the failure rate counts
        raise CheckError(f"trustmh score exited {done.returncode}:\n{done.stderr[-3000:]}")
    summary, rows = read_run(out / "score")
    if nvidia_smi:
        memory |= memory_figures(sampler.samples)
        if not memory.get("measured"):
            memory["why"] = sampler.error or "nvidia-smi gave no reading"
    else:
        memory = {"measured": False, "why": "--no-gpu-memory" if args.no_gpu_memory else "nvidia-smi not found"}
    return {
        "model": args.model,
        "served_as": served,
        "base_url": base_url,
        "mode": args.mode,
        "concurrency": args.concurrency,
        "items": len(items),
        "vllm_command": server.command if server is not None else None,
        "vllm_version": vllm_version() if server is not None else None,
        "trustmh_command": ["trustmh", *score[3:]],
        "process_s": round(process_s, 3),
        "figures": figures(summary, rows),
        "gpu_memory": memory,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally block that stops vLLM
    try:
        result = run(args)
    except CheckError as exc:
        print(f"gpu_check: {exc}", file=sys.stderr)
        return 1
    rows = report_rows(result)
    print("| figure | value | how |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    write_private(args.out / "gpu_check.json", json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out / 'gpu_check.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
