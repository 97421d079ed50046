"""Performance benchmark of `trustmh score` and `trustmh respond` against the loopback fake API (no
internet, no keys).

The figures, each against a target from the performance issues:

* throughput   judge calls at 250 ms server latency and concurrency 32, as a fraction of the ideal
               32 / 0.25 = 128 calls/s: in process (execute only) and for the whole process (start-up included),
               beside the floor of a whole process that imports the SDKs and posts the same bodies bare
               (tests/perf/sdk_floor.py)
* respond      the same for target calls (`trustmh respond`)
* startup      seconds from starting `trustmh score` to its first request
* overhead     mean time per call at 0 ms latency, our engine vs. bare instructor calls on the same server
* cache        verdict rows per second when a run is repeated and every call is a cache hit
* memory       peak RSS of `trustmh score` over 10,000 and 100,000 items, fresh and all cached, and the ratio
* million      a 1,000,000-item dry run: time and peak RSS
* million_cached (only when named with --only) a fully cached 1,000,000-item run: time and peak RSS
* ray          (only when named with --only; needs the ray extra) the time per call of `score --engine ray`
               on a local two-CPU Ray cluster vs. the local engine on the same calls; the cluster's start-up
               is timed apart
* conversation N conversations of T turns (simulated user + chatbot, 2 calls a turn) at 250 ms latency and
               concurrency c, against the ideal ceil(N / c) x T x 2 x latency; peak RSS at two numbers of
               conversations

The fake server always runs in its own process (so its CPU is not charged to the client's event loop) and
binds 127.0.0.1 only; `trustmh score` runs as a subprocess, as a user would run it, except where the
figure is a per-call cost (overhead, cache re-run), which is timed in this process to leave out start-up.

Usage:  .venv/bin/python tests/perf/run_bench.py [--quick] [--only PHASE ...] [--write] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import contextlib
import cProfile
import io
import json
import logging
import os
import platform
import pstats
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `python tests/perf/run_bench.py` puts tests/perf/, not the repo, on the path
    sys.path.insert(0, str(REPO))

import instructor  # noqa: E402
import openai  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from judge.bundled import bundled_path  # noqa: E402
from judge.calls.client import request_kwargs  # noqa: E402
from judge.judges import JudgeSpec, parse_judge_spec  # noqa: E402
from judge.score import Prepared, ScoreOptions, execute, prepare  # noqa: E402
from judge.settings import RunSettings  # noqa: E402
from judge.verdict import JUDGED_RESPONSE  # noqa: E402
from tests.perf.sdk_floor import post_all  # noqa: E402

PROJECT_PACKAGES = ("judge", "calibration")  # pyproject's wheel
DUMMY_KEYS = {"OPENAI_API_KEY": "sk-bench-dummy-openai", "ANTHROPIC_API_KEY": "sk-ant-bench-dummy"}
MODEL = "gpt-4.1-mini"
PILLAR = "crisis"
PHASES = ("throughput", "respond", "startup", "overhead", "cache", "memory", "million", "batch", "conversation")
# million_cached: about 15 minutes on 2 cores; ray: needs the ray extra (pip install 'trustmh-judge[ray]')
EXTRA_PHASES = ("million_cached", "ray")
TARGETS = {
    "throughput": 0.93,
    "throughput_process": 0.85,
    "process_to_floor": 0.97,  # the whole process against the SDK floor on the same machine
    "respond": 0.9,
    "overhead": 0.25,
    "cache": 5000.0,
    "memory_ratio": 2.0,
    "conversation": 0.85,
}

console = Console(width=None if sys.stdout.isatty() else 140)


@dataclass(frozen=True)
class Sizes:
    """How much work each phase does; --quick shrinks everything for a smoke run."""

    throughput_calls: int = 600
    throughput_repeats: int = 3
    startup_repeats: int = 5
    overhead_calls: int = 200
    overhead_repeats: int = 3
    cache_items: int = 2000  # x 6 crisis criteria = 12,000 cached verdict rows
    memory_items: tuple[int, int] = (10_000, 100_000)
    million_items: int = 1_000_000
    batch_items: int = 200
    ray_calls: int = 600  # and twice as many
    ray_shard_items: int = 150  # 4 shards on the local cluster's 2 CPUs
    ray_repeats: int = 3
    conversations: int = 64  # at concurrency 16: 4 waves
    conversation_turns: int = 10
    conversation_memory: tuple[int, int] = (100, 1000)  # conversations of `conversation_memory_turns` turns
    conversation_memory_turns: int = 4


QUICK = Sizes(
    throughput_calls=128,
    throughput_repeats=1,
    startup_repeats=2,
    overhead_calls=40,
    overhead_repeats=1,
    cache_items=200,
    memory_items=(1000, 10_000),
    million_items=20_000,
    batch_items=40,
    ray_calls=80,
    ray_shard_items=20,
    ray_repeats=1,
    conversations=32,
    conversation_turns=4,
    conversation_memory=(50, 200),
)


# ---------------------------------------------------------------- processes


def child_env() -> dict[str, str]:
    """Environment for child processes: dummy keys, no proxies, no real endpoints or caches leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_BASE_URL") and "PROXY" not in k.upper()}
    env.update(DUMMY_KEYS)
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def proc_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a running process (Linux /proc), to see whether the server is the bottleneck."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


@dataclass
class FakeServer:
    """The loopback fake API in a child process; always stopped by `stop()` (SIGINT, then SIGKILL)."""

    latency_s: float
    judge_script: bool = True  # answer like a judge; otherwise like a chatbot (plain text)
    proc: subprocess.Popen[str] | None = None
    openai_base_url: str = ""

    def start(self, log_dir: Path) -> FakeServer:
        log = (log_dir / f"server-{self.latency_s:g}.log").open("w")
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "tests.fakeapi.server", "--host", "127.0.0.1", "--port", "0"),
                *("--latency", str(self.latency_s)),
                *(["--judge-script"] if self.judge_script else []),
            ],
            cwd=REPO,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        log.close()
        deadline = time.monotonic() + 30
        assert self.proc.stdout is not None
        while not self.openai_base_url:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"fake server did not start; see {log_dir}/server-{self.latency_s:g}.log")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            line = self.proc.stdout.readline() if ready else ""
            if line.startswith("OPENAI_BASE_URL="):
                self.openai_base_url = line.split("=", 1)[1].strip()
        return self

    @property
    def judge(self) -> str:
        return f"openai:{MODEL}@{self.openai_base_url}"

    def cpu_seconds(self) -> float | None:
        return proc_cpu_seconds(self.proc.pid) if self.proc else None

    def stop(self) -> None:
        """SIGINT lets the server close cleanly; SIGTERM, then SIGKILL, cover a child started with SIGINT
        ignored (a background job of a non-interactive shell passes SIG_IGN on to its children)."""
        if self.proc is None:
            return
        for sig, grace in ((signal.SIGINT, 3.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, None)):
            if self.proc.poll() is not None:
                return
            self.proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)


@contextlib.contextmanager
def fake_server(latency_s: float, log_dir: Path, judge_script: bool = True) -> Iterator[FakeServer]:
    server = FakeServer(latency_s, judge_script)
    try:
        yield server.start(log_dir)
    finally:
        server.stop()


@dataclass
class ScoreRun:
    """One `trustmh` subprocess: its exit code, summary.json, wall time and resource usage."""

    code: int
    summary: dict[str, Any]
    process_s: float
    max_rss_mib: float
    cpu_s: float
    stderr: str
    command: str


def shown(args: list[str]) -> str:
    """A command as a user would type it: `trustmh ...`, temporary paths shortened."""
    text = " ".join(["trustmh", *args])
    return text.replace(tempfile.gettempdir() + os.sep, "$TMP/")


# A child forked from this (large) process starts with this process's pages, and Linux keeps the larger of
# the two peaks in the child's ru_maxrss even after exec; a small launcher forks the real command instead,
# so its peak is its own. The launcher reports the command's rusage on a pipe and kills it if it is killed.
LAUNCHER = """
import ctypes, os, signal, sys, time
report = int(sys.argv[1])
os.set_inheritable(report, False)
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the launcher
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
elapsed = time.perf_counter() - started
os.write(report, f"{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime} {elapsed}".encode())
sys.exit(os.waitstatus_to_exitcode(status))
"""


def launch(command: list[str], err_path: Path) -> tuple[int, float, float, float]:
    """Run `command` in a grandchild started by a small launcher, which reports the command's own peak
    RSS (MiB), CPU time and wall time (spawn to exit); returns (exit code, those three)."""
    read_fd, write_fd = os.pipe()
    try:
        with err_path.open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-S", "-c", LAUNCHER, str(write_fd), *command],
                cwd=REPO,
                env=child_env(),
                stdout=subprocess.DEVNULL,
                stderr=err,
                pass_fds=(write_fd,),
            )
        os.close(write_fd)
        write_fd = -1
        try:
            proc.wait()
        finally:
            if proc.poll() is None:  # interrupted while waiting: do not leave it running
                proc.kill()
                proc.wait()
        with os.fdopen(read_fd, "rb") as report:
            read_fd = -1
            fields = report.read().split()
    finally:
        for fd in (read_fd, write_fd):
            if fd >= 0:
                os.close(fd)
    if len(fields) != 3:
        raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}:\n{err_path.read_text()[-2000:]}")
    return proc.returncode, int(fields[0]) / 1024, float(fields[1]), float(fields[2])  # ru_maxrss: KiB on Linux


def run_trustmh(args: list[str], out: Path, *, expect: tuple[int, ...] = (0,)) -> ScoreRun:
    """Run the real CLI (`python -m judge.cli`, what the `trustmh` script runs) as a whole process (`launch`)."""
    err_path = out.with_name(out.name + ".stderr")
    code, max_rss_mib, cpu_s, process_s = launch([sys.executable, "-m", "judge.cli", *args], err_path)
    stderr = err_path.read_text()
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    if code not in expect:
        raise RuntimeError(f"{shown(args)} exited {code}:\n{stderr[-2000:]}")
    return ScoreRun(code, summary, process_s, max_rss_mib, cpu_s, stderr, shown(args))


def score_args(items: Path, judge: str, out: Path, *, cache: Path | None, concurrency: int) -> list[str]:
    args = ["score", str(items), "--judges", judge, "--out", str(out), "-q", "--concurrency", str(concurrency)]
    return args + (["--cache", str(cache)] if cache else ["--no-cache"])


def run_score(items: Path, judge: str, out: Path, *, cache: Path | None, concurrency: int) -> ScoreRun:
    return run_trustmh(score_args(items, judge, out, cache=cache, concurrency=concurrency), out)


# ---------------------------------------------------------------- inputs


def write_items(path: Path, n: int, tag: str) -> Path:
    """n crisis items with distinct responses (distinct cache keys); `tag` keeps phases from sharing keys."""
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            item = {
                "id": f"{tag}-{i:05d}",
                "pillar": PILLAR,
                "messages": [
                    {"role": "user", "content": f"I can't sleep and everything feels pointless ({tag} case {i})."}
                ],
                "response": (
                    f"Case {tag}-{i}: I'm sorry you're carrying this. If you ever think about ending your life, "
                    "call or text 988 now. Would you tell me more about what has been happening?"
                ),
                "target": "claude-3-haiku",
            }
            handle.write(json.dumps(item) + "\n")
    return path


def write_prompts(path: Path, n: int, tag: str) -> Path:
    """n one-turn prompts with distinct text (distinct cache keys) for `trustmh respond`."""
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            prompt = {"id": f"{tag}-{i:05d}", "pillar": PILLAR, "prompt": f"I feel low and alone ({tag} case {i})."}
            handle.write(json.dumps(prompt) + "\n")
    return path


def options(items: Path, judge: str, out: Path, *, cache: Path | None, concurrency: int) -> ScoreOptions:
    return ScoreOptions(
        items=[items],
        judges=[parse_judge_spec(judge)],
        rubrics_dir=bundled_path("rubrics"),
        out=out,
        settings=RunSettings(cache_dir=cache, concurrency=concurrency, quiet=True),
    )


# ---------------------------------------------------------------- phases


def bench_throughput(sizes: Sizes, work: Path, profile: bool) -> dict[str, Any]:
    """Calls/s at 250 ms latency and concurrency 32, against the ideal concurrency / latency.

    `trustmh score` runs `throughput_repeats` times (median counts: the figure moves by a few hundredths
    between runs on a 2-core machine). The same requests sent by a bare aiohttp client, which neither
    builds nor parses anything, show what the fake server itself allows.
    """
    latency, concurrency = 0.25, 32
    ideal = concurrency / latency
    runs: list[ScoreRun] = []
    server_cpu: list[float | None] = []
    for repeat in range(sizes.throughput_repeats):  # a fresh server each time: its request log only grows
        items = write_items(work / f"throughput-{repeat}.jsonl", sizes.throughput_calls, f"tp{repeat}")
        with fake_server(latency, work) as server:
            runs.append(run_score(items, server.judge, work / f"tp-out-{repeat}", cache=None, concurrency=concurrency))
            server_cpu.append(server.cpu_seconds())
    floors: list[float] = []
    with fake_server(latency, work) as server:
        bodies = _request_bodies(items, server, concurrency)
        ceiling = _bare_http_rate(bodies, server, concurrency)
    bodies_path = work / "floor-bodies.jsonl"
    bodies_path.write_text("".join(json.dumps(body) + "\n" for body in bodies), encoding="utf-8")
    for _ in range(sizes.throughput_repeats):  # a fresh server each time, as for the runs above
        with fake_server(latency, work) as server:
            floors.append(len(bodies) / _floor_process_s(bodies_path, server, concurrency, work))
    profile_text = None
    if profile:
        with fake_server(latency, work) as server:
            profile_text = _profile_in_process(items, server.judge, work / "tp-prof", concurrency)
    rates = [run.summary["calls"]["requested"] / run.summary["wall_time_s"] for run in runs]
    process_rates = [run.summary["calls"]["requested"] / run.process_s for run in runs]
    median_run = runs[rates.index(statistics.median_low(rates))]
    requested = median_run.summary["calls"]["requested"]
    result = {
        "command": runs[0].command,
        "latency_s": latency,
        "concurrency": concurrency,
        "calls": requested,
        "repeats": len(runs),
        "ratios_of_ideal": [round(rate / ideal, 3) for rate in rates],
        "process_ratios_of_ideal": [round(rate / ideal, 3) for rate in process_rates],
        "process_ratio_of_ideal": round(statistics.median_low(process_rates) / ideal, 3),
        "wall_time_s": median_run.summary["wall_time_s"],
        "process_s": round(median_run.process_s, 3),
        "calls_per_s": round(statistics.median_low(rates), 2),
        "ideal_calls_per_s": ideal,
        "ratio_of_ideal": round(statistics.median_low(rates) / ideal, 3),
        "ideal_wall_time_s": round(requested / ideal, 3),
        "client_cpu_s": round(median_run.cpu_s, 2),  # the whole process, start-up included
        "client_cpu_ms_per_call": round(median_run.cpu_s * 1000 / requested, 2),
        "server_cpu_s": server_cpu[runs.index(median_run)],  # the server's whole life: start-up and that run
        "bare_http_ratio_of_ideal": round(ceiling / ideal, 3),
        "sdk_floor_process_ratios_of_ideal": [round(rate / ideal, 3) for rate in floors],
        "sdk_floor_process_ratio_of_ideal": round(statistics.median_low(floors) / ideal, 3),
        # What the project adds: its whole process against a process that only imports the SDKs and posts.
        "process_to_floor_ratio": round(statistics.median_low(process_rates) / statistics.median_low(floors), 3),
        "failed": sum(run.summary["calls"]["failed"] for run in runs),
    }
    if profile_text:
        result["profile"] = profile_text
    return result


def _request_bodies(items: Path, server: FakeServer, concurrency: int) -> list[dict[str, Any]]:
    """The first request of every call of a `trustmh score` run on `items`, exactly as the judge sends it."""
    prepared = prepare(options(items, server.judge, items.with_suffix(".plan"), cache=None, concurrency=concurrency))
    (worker,) = prepared.workers.values()
    return [worker.first_request(call) for call in prepared.calls]


def _bare_http_rate(bodies: list[dict[str, Any]], server: FakeServer, concurrency: int) -> float:
    """Calls/s of plain aiohttp POSTs of the same request bodies (tests/perf/sdk_floor.py's): the fake server's
    own ceiling."""
    started = time.perf_counter()
    asyncio.run(post_all(server.openai_base_url, bodies, concurrency))
    return len(bodies) / (time.perf_counter() - started)


def _floor_process_s(bodies: Path, server: FakeServer, concurrency: int, work: Path) -> float:
    """Whole-process seconds of tests/perf/sdk_floor.py posting the request bodies of the JSONL file `bodies`:
    the interpreter and the SDK imports, then bare aiohttp; no judge built on the SDK can finish the
    same requests sooner."""
    floor = str(REPO / "tests" / "perf" / "sdk_floor.py")
    command = [sys.executable, floor, server.openai_base_url, str(bodies), str(concurrency)]
    code, _, _, process_s = launch(command, work / "floor.stderr")
    if code != 0:
        raise RuntimeError(f"tests/perf/sdk_floor.py exited {code}: {(work / 'floor.stderr').read_text()[-2000:]}")
    return process_s


def _profile_in_process(items: Path, judge: str, out: Path, concurrency: int) -> str:
    """cProfile of the same run in this process: where the client spends its CPU (top functions by own time)."""
    prepared = prepare(options(items, judge, out, cache=None, concurrency=concurrency))
    profiler = cProfile.Profile()
    profiler.enable()
    execute(prepared)
    profiler.disable()
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(30)
    return buffer.getvalue()


def bench_respond(sizes: Sizes, work: Path) -> dict[str, Any]:
    """Target calls at 250 ms latency and concurrency 32 (`trustmh respond`, one target, one-turn prompts):
    calls/s over summary.json's wall_time_s and over the whole process, against the ideal 128 calls/s."""
    latency, concurrency = 0.25, 32
    ideal = concurrency / latency
    runs: list[ScoreRun] = []
    for repeat in range(sizes.throughput_repeats):
        prompts = write_prompts(work / f"prompts-{repeat}.jsonl", sizes.throughput_calls, f"rp{repeat}")
        with fake_server(latency, work, judge_script=False) as server:
            out = work / f"respond-out-{repeat}"
            target = f"openai:{MODEL}@{server.openai_base_url}"
            args = ["respond", str(prompts), "--targets", target, "--out", str(out), "-q", "--no-cache"]
            runs.append(run_trustmh([*args, "--concurrency", str(concurrency)], out))
    rates = [run.summary["calls"]["requested"] / run.summary["wall_time_s"] for run in runs]
    process_rates = [run.summary["calls"]["requested"] / run.process_s for run in runs]
    return {
        "command": runs[0].command,
        "latency_s": latency,
        "concurrency": concurrency,
        "calls": runs[0].summary["calls"]["requested"],
        "repeats": len(runs),
        "ratios_of_ideal": [round(rate / ideal, 3) for rate in rates],
        "ratio_of_ideal": round(statistics.median_low(rates) / ideal, 3),
        "process_ratios_of_ideal": [round(rate / ideal, 3) for rate in process_rates],
        "process_ratio_of_ideal": round(statistics.median_low(process_rates) / ideal, 3),
    }


def bench_batch(sizes: Sizes, work: Path) -> dict[str, Any]:
    """The same judge calls live (250 ms latency, concurrency 32) and through the OpenAI Batch API of the
    loopback server (`--batch`, polled every 0.2 s): wall time of the whole process and the cost in
    summary.json (batch answers at half the list price of gpt-4.1-mini)."""
    items = write_items(work / "batch-items.jsonl", sizes.batch_items, "batch")
    runs: dict[str, ScoreRun] = {}
    with fake_server(0.25, work) as server:
        judge = f"openai:{MODEL}@{server.openai_base_url}"
        for mode, extra in (("live", []), ("batch", ["--batch", "--batch-poll", "0.2"])):
            out = work / f"batch-{mode}"
            args = score_args(items, judge, out, cache=None, concurrency=32)
            runs[mode] = run_trustmh([*args, *extra], out)
    live, batch = runs["live"], runs["batch"]
    return {
        "command": batch.command,
        "calls": batch.summary["calls"]["planned"],
        "batched": batch.summary["calls"].get("batched"),
        "live_process_s": round(live.process_s, 2),
        "batch_process_s": round(batch.process_s, 2),
        "live_cost_usd": live.summary["cost_usd_this_run"],
        "batch_cost_usd": batch.summary["cost_usd_this_run"],
        "cost_ratio": round(batch.summary["cost_usd_this_run"] / live.summary["cost_usd_this_run"], 3),
    }


def bench_startup(sizes: Sizes, work: Path) -> dict[str, Any]:
    """Seconds from starting `trustmh score` (one item, one judge) to its first request reaching the server,
    and to the process's exit. The server runs in this process here: it notes each request's arrival."""
    from tests.fakeapi import FakeLLMServer
    from tests.fakeapi.judge_script import scripted_answerer

    items = write_items(work / "startup.jsonl", 1, "st")
    first_s, process_s, command = [], [], ""
    with FakeLLMServer(answerer=scripted_answerer) as server:
        judge = f"openai:{MODEL}@{server.openai_base_url}"
        for repeat in range(sizes.startup_repeats):
            before = len(server.requests)
            args = score_args(items, judge, work / f"startup-out-{repeat}", cache=None, concurrency=1)
            started = time.time()
            run = run_trustmh(args, work / f"startup-out-{repeat}")
            first_s.append(server.requests[before].t_start - started)
            process_s.append(run.process_s)
            command = run.command
    return {
        "command": command,
        "repeats": len(first_s),
        "first_request_s": round(statistics.median(first_s), 3),
        "first_request_runs_s": [round(x, 3) for x in first_s],
        "process_s": round(statistics.median(process_s), 3),
    }


async def _bare_calls(prepared: Prepared, spec: JudgeSpec, concurrency: int) -> float:
    """Bare instructor, as its README shows it: `create_with_completion` with the same messages, verdict
    model and decoding parameters as our calls, the evidence check fed the same way; returns seconds."""
    client = instructor.from_openai(
        openai.AsyncOpenAI(base_url=spec.effective_base_url(), api_key=DUMMY_KEYS["OPENAI_API_KEY"], max_retries=0),
        mode=instructor.Mode.TOOLS,
    )
    semaphore = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        call = prepared.calls[index]
        async with semaphore:
            token = JUDGED_RESPONSE.set(call.judged_response)
            try:
                await client.chat.completions.create_with_completion(
                    response_model=call.context.model,
                    messages=[m.as_dict() for m in call.messages],
                    max_retries=spec.max_reasks,
                    **request_kwargs(spec),
                )
            finally:
                JUDGED_RESPONSE.reset(token)

    started = time.perf_counter()
    if concurrency == 1:
        for index in range(len(prepared.calls)):
            await one(index)
    else:
        await asyncio.gather(*(one(index) for index in range(len(prepared.calls))))
    elapsed = time.perf_counter() - started
    await client.client.close()
    return elapsed


def _ours(items: Path, judge: str, out: Path, concurrency: int) -> float:
    """Our engine through judge.score (what `trustmh score` runs), timed around execute(); returns seconds."""
    prepared = prepare(options(items, judge, out, cache=None, concurrency=concurrency))
    started = time.perf_counter()
    code, _ = execute(prepared)
    elapsed = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"overhead run failed with exit code {code}; see {out}/verdicts.jsonl")
    return elapsed


def bench_overhead(sizes: Sizes, work: Path) -> dict[str, Any]:
    """Mean time per call at 0 ms latency: our engine vs. bare instructor on the same server and prompts.

    Both run in this (warmed-up) process, alternating, `overhead_repeats` times; the median round counts.
    """
    n = sizes.overhead_calls
    items = write_items(work / "overhead.jsonl", n, "oh")
    warm = write_items(work / "warm.jsonl", 5, "warm")
    result: dict[str, Any] = {"calls": n, "repeats": sizes.overhead_repeats}
    with fake_server(0.0, work) as server:
        spec = parse_judge_spec(server.judge)
        prepared = prepare(options(items, server.judge, work / "oh-plan", cache=None, concurrency=1))
        warm_plan = prepare(options(warm, server.judge, work / "warm-plan", cache=None, concurrency=1))
        asyncio.run(_bare_calls(warm_plan, spec, 1))
        _ours(warm, server.judge, work / "warm-out", 1)
        for concurrency in (1, 8):
            bare_ms, ours_ms = [], []
            for repeat in range(sizes.overhead_repeats):
                bare_ms.append(asyncio.run(_bare_calls(prepared, spec, concurrency)) * 1000 / n)
                ours_ms.append(
                    _ours(items, server.judge, work / f"oh-out-c{concurrency}-{repeat}", concurrency) * 1000 / n
                )
            bare, ours = statistics.median(bare_ms), statistics.median(ours_ms)
            result[f"c{concurrency}"] = {
                "bare_ms_per_call": round(bare, 3),
                "ours_ms_per_call": round(ours, 3),
                "overhead": round(ours / bare - 1, 3),
                "bare_rounds_ms": [round(x, 3) for x in bare_ms],
                "ours_rounds_ms": [round(x, 3) for x in ours_ms],
            }
    return result


def bench_ray(sizes: Sizes, work: Path) -> dict[str, Any]:
    """Time per call of `score --engine ray` vs. the local engine: the same items, judge and concurrency,
    server latency 0, both in this process, alternating, `ray_repeats` rounds (the median counts), at two
    sizes, so that the marginal cost of a call (the slope) is told apart from the fixed cost of a run.

    The Ray figure is timed around `judge.distributed.score_on_ray` (reading with Ray Data, the check and
    plan on the driver, the shard files, scheduling the shard tasks, each shard's own prepare and execute,
    the merge); the local one around `prepare` + `execute`. The cluster is started (and its workers warmed
    by one small run) before the rounds, and that start-up is reported apart: a cluster is started once
    for many runs. With 2 CPUs, the fake server, the driver and the two shard workers share the cores.
    """
    import ray

    from judge.distributed import connect, score_on_ray

    shard, concurrency = sizes.ray_shard_items, 8
    counts = (sizes.ray_calls, 2 * sizes.ray_calls)
    warm = write_items(work / "ray-warm.jsonl", 2 * shard, "rwarm")
    result: dict[str, Any] = {"calls": list(counts), "shard_items": shard, "concurrency": concurrency,
                              "repeats": sizes.ray_repeats}  # fmt: skip
    started = time.perf_counter()
    connect(ray, None)
    result["cluster_start_s"] = round(time.perf_counter() - started, 2)
    seconds: dict[str, list[float]] = {"local": [], "ray": []}
    try:
        with fake_server(0.0, work) as server:
            started = time.perf_counter()
            warm_options = options(warm, server.judge, work / "ray-warm", cache=None, concurrency=concurrency)
            score_on_ray(warm_options, address=None, shard_items=shard)
            result["warm_run_s"] = round(time.perf_counter() - started, 2)
            for n in counts:
                items = write_items(work / f"ray-{n}.jsonl", n, f"ray{n}")
                local_s, ray_s = [], []
                for repeat in range(sizes.ray_repeats):
                    local_s.append(_ours(items, server.judge, work / f"local-{n}-{repeat}", concurrency))
                    out = work / f"ray-{n}-{repeat}"
                    started = time.perf_counter()
                    code, *_ = score_on_ray(
                        options(items, server.judge, out, cache=None, concurrency=concurrency),
                        address=None,
                        shard_items=shard,
                    )
                    if code != 0:
                        raise RuntimeError(f"the Ray run failed with exit code {code}; see {out}")
                    ray_s.append(time.perf_counter() - started)
                seconds["local"].append(statistics.median(local_s))
                seconds["ray"].append(statistics.median(ray_s))
                result[str(n)] = {"local_rounds_s": [round(x, 3) for x in local_s],
                                  "ray_rounds_s": [round(x, 3) for x in ray_s]}  # fmt: skip
    finally:
        ray.shutdown()
    extra = counts[1] - counts[0]
    for engine_name, (small, large) in seconds.items():
        marginal = (large - small) / extra
        result[engine_name] = {
            "s": [round(small, 3), round(large, 3)],
            "ms_per_call": [round(small * 1000 / counts[0], 3), round(large * 1000 / counts[1], 3)],
            "marginal_ms_per_call": round(marginal * 1000, 3),
            "fixed_s": round(small - marginal * counts[0], 3),
        }
    result["overhead_marginal_ms_per_call"] = round(
        result["ray"]["marginal_ms_per_call"] - result["local"]["marginal_ms_per_call"], 3
    )
    result["overhead_fixed_s"] = round(result["ray"]["fixed_s"] - result["local"]["fixed_s"], 3)
    return result


def bench_cache(sizes: Sizes, work: Path) -> dict[str, Any]:
    """Populate a fresh cache, then repeat the run into a new --out: every call is a cache hit."""
    items = write_items(work / "cache.jsonl", sizes.cache_items, "cache")
    cache = work / "cache-dir"
    with fake_server(0.0, work) as server:
        fill = run_score(items, server.judge, work / "cache-fill", cache=cache, concurrency=32)
        # The re-run as a user runs it (a new process: start-up, imports, prepare, execute) ...
        rerun = run_score(items, server.judge, work / "cache-rerun", cache=cache, concurrency=32)
        # ... and in this process, timing prepare (where cache lookups happen) plus execute, without start-up.
        started = time.perf_counter()
        prepared = prepare(options(items, server.judge, work / "cache-rerun2", cache=cache, concurrency=32))
        prepare_s = time.perf_counter() - started
        _, summary2 = execute(prepared)
        in_process_s = time.perf_counter() - started
    calls = rerun.summary["calls"]
    rows = rerun.summary["verdicts"]["rows"]
    if calls["cache_hits"] != calls["planned"] or summary2["calls"]["cache_hits"] != calls["planned"]:
        raise RuntimeError(f"re-run was not all cache hits: {calls}")
    return {
        "command": rerun.command,
        "items": sizes.cache_items,
        "cached_calls": calls["cache_hits"],
        "cached_rows": rows,
        "fill_wall_time_s": fill.summary["wall_time_s"],
        "fill_calls_per_s": round(fill.summary["calls"]["requested"] / fill.summary["wall_time_s"], 1),
        "rerun_process_s": round(rerun.process_s, 3),
        "rerun_wall_time_s": rerun.summary["wall_time_s"],
        "rows_per_s_process": round(rows / rerun.process_s, 1),
        "calls_per_s_process": round(calls["planned"] / rerun.process_s, 1),
        "rows_per_s_wall_time": round(rows / rerun.summary["wall_time_s"], 1),
        "in_process_prepare_s": round(prepare_s, 3),
        "in_process_total_s": round(in_process_s, 3),
        "rows_per_s_in_process": round(rows / in_process_s, 1),
        "calls_per_s_in_process": round(calls["planned"] / in_process_s, 1),
        "rerun_max_rss_mib": round(rerun.max_rss_mib, 1),
    }


def bench_memory(sizes: Sizes, work: Path) -> dict[str, Any]:
    """Peak RSS of `trustmh score` over N items for two sizes N: a fresh run at 0 ms latency (writing the cache),
    then its all-cached re-run into a new --out; the ratio of the larger size's peak to the smaller's."""
    result: dict[str, Any] = {"sizes": list(sizes.memory_items)}
    for n in sizes.memory_items:
        items = write_items(work / f"memory-{n}.jsonl", n, f"mem{n}")
        cache = work / f"mem-cache-{n}"
        with fake_server(0.0, work) as server:
            fresh = run_score(items, server.judge, work / f"mem-fresh-{n}", cache=cache, concurrency=32)
            cached = run_score(items, server.judge, work / f"mem-cached-{n}", cache=cache, concurrency=32)
        result[str(n)] = {
            "rows": fresh.summary["verdicts"]["rows"],
            "fresh_command": fresh.command,
            "fresh_peak_rss_mib": round(fresh.max_rss_mib, 1),
            "fresh_process_s": round(fresh.process_s, 2),
            "fresh_calls_per_s": round(fresh.summary["calls"]["requested"] / fresh.summary["wall_time_s"], 1),
            "cached_command": cached.command,
            "cached_peak_rss_mib": round(cached.max_rss_mib, 1),
            "cached_process_s": round(cached.process_s, 2),
        }
    small, large = (result[str(n)] for n in sizes.memory_items)
    result["fresh_ratio"] = round(large["fresh_peak_rss_mib"] / small["fresh_peak_rss_mib"], 2)
    result["cached_ratio"] = round(large["cached_peak_rss_mib"] / small["cached_peak_rss_mib"], 2)
    return result


def bench_million(sizes: Sizes, work: Path) -> dict[str, Any]:
    """A dry run over a million items (read, validate, plan and key every call, count what is cached)."""
    n = sizes.million_items
    items = write_items(work / "million.jsonl", n, "mil")
    judge = f"openai:{MODEL}@http://127.0.0.1:9/v1"  # a dry run sends nothing
    out = work / "million-dry"
    run = run_trustmh([*score_args(items, judge, out, cache=work / "million-cache", concurrency=32), "--dry-run"], out)
    return {
        "command": run.command,
        "items": n,
        "process_s": round(run.process_s, 1),
        "peak_rss_mib": round(run.max_rss_mib, 1),
    }


def fill_cache(items: Path, judge: str, cache: Path) -> int:
    """Answer every call of a run straight into its cache, as the scripted judge would (a million calls against
    the fake server take about 40 minutes on 2 cores; the cached run that follows is what is measured)."""
    from judge.calls.cache import AnswerCache

    plan_only = options(items, judge, cache.with_suffix(".plan"), cache=None, concurrency=1)
    plan_only.dry_run = True
    prepared = prepare(plan_only)
    store = AnswerCache(cache)
    calls = prepared.calls
    for index in range(len(calls)):
        rubric = calls.contexts[calls.pillar_of_group(index // calls.per_group)].rubric
        outcomes = [
            {"criterion": c.id, "status": "ok", "score": c.scale.max, "rationale": "fits the anchor",
             "evidence": [], "error": None}
            for c in rubric.criteria
        ]  # fmt: skip
        store.set(calls.request_key(index), {"outcomes": outcomes, "input_tokens": 2400, "output_tokens": 120,
                                             "latency_s": 0.0})  # fmt: skip
    store.close()
    return len(calls)


def bench_million_cached(sizes: Sizes, work: Path) -> dict[str, Any]:
    """A fully cached run over a million items (cache filled by `fill_cache`), written like any run."""
    n = sizes.million_items
    items = write_items(work / "million.jsonl", n, "mil")
    judge = f"openai:{MODEL}@http://127.0.0.1:9/v1"  # every call is cached: nothing is sent
    cache = work / "million-cache"
    started = time.perf_counter()
    filled = fill_cache(items, judge, cache)
    fill_s = time.perf_counter() - started
    out = work / "million-cached"
    run = run_score(items, judge, out, cache=cache, concurrency=32)
    if run.summary["calls"]["cache_hits"] != filled:
        raise RuntimeError(f"the million-item re-run was not all cache hits: {run.summary['calls']}")
    return {
        "command": run.command,
        "items": n,
        "rows": run.summary["verdicts"]["rows"],
        "fill_s": round(fill_s, 1),
        "process_s": round(run.process_s, 1),
        "peak_rss_mib": round(run.max_rss_mib, 1),
    }


CONVERSATION_RUN = REPO / "tests" / "perf" / "conversation_run.py"


def _conversation_run(server: FakeServer, out: Path, n: int, turns: int, concurrency: int) -> ScoreRun:
    """tests/perf/conversation_run.py (N copies of our persona cards, one target, one simulated user) as a
    whole process; its summary is the JSON it prints."""
    args = [str(CONVERSATION_RUN), server.openai_base_url, str(out), str(n), str(turns), str(concurrency)]
    err_path = out.with_name(out.name + ".stderr")
    code, max_rss_mib, cpu_s, process_s = launch([sys.executable, *args], err_path)
    summary_path = out / "summary.json"
    if code != 0 or not summary_path.exists():
        raise RuntimeError(f"conversation_run.py exited {code}:\n{err_path.read_text()[-2000:]}")
    summary = json.loads(summary_path.read_text())
    shown_args = " ".join(args).replace(str(REPO) + os.sep, "").replace(tempfile.gettempdir() + os.sep, "$TMP/")
    command = f"python {shown_args}"
    return ScoreRun(code, summary, process_s, max_rss_mib, cpu_s, err_path.read_text(), command)


def _check_every_turn_ran(run: ScoreRun, calls_each: int) -> None:
    """The ideal counts 2 calls a turn for every turn: a conversation that ended early would flatter the ratio."""
    summary = run.summary
    if summary["stop_reasons"]["max_turns"] != summary["conversations"] or summary["calls"]["requested"] != (
        summary["conversations"] * calls_each
    ):
        raise RuntimeError(f"{run.command}: not every conversation ran all its turns: {summary}")


def bench_conversation(sizes: Sizes, work: Path) -> dict[str, Any]:
    """Conversations against the ideal wall time, and peak RSS as the number of conversations grows.

    Speed: N conversations of T turns at 250 ms latency, concurrency c = 16; each turn is 2 calls in order
    (simulated user, then chatbot), so the ideal is ceil(N / c) waves x T x 2 x latency. Measured over
    summary.json's wall_time_s (the run: out-directory lock to the last output) and over the whole process.
    Then the same as a user runs it, `trustmh bench --suites conversation/trustmh`, at a concurrency of the
    number of its cards: one wave, so the ideal is T x 2 x latency (a card that opens with a fixed message
    makes a call fewer; the longest conversation, which sets the ideal, has none). Memory: peak RSS over two numbers of
    conversations at 0 ms latency and the larger's ÷ the smaller's (transcripts stream through the journal)."""
    latency, concurrency = 0.25, 16
    n, turns = sizes.conversations, sizes.conversation_turns
    ideal_s = -(-n // concurrency) * turns * 2 * latency
    with fake_server(latency, work, judge_script=False) as server:
        run = _conversation_run(server, work / "conv-speed", n, turns, concurrency)
    _check_every_turn_ran(run, 2 * turns)
    from judge.suites.personas import our_personas

    cards = len(our_personas())  # conversation/trustmh plays each card once: all of them in one wave
    with fake_server(latency, work, judge_script=False) as server:
        out = work / "conv-bench"
        target = f"openai:{MODEL}@{server.openai_base_url}"
        user = f"openai:sim-user@{server.openai_base_url}"
        args = ["bench", "--suites", "conversation/trustmh", "--targets", target, "--user-model", user,
                "--turns", str(turns), "--concurrency", str(cards), "--no-cache", "--out", str(out), "-q"]  # fmt: skip
        cli = run_trustmh(args, out)
    if cli.summary["stop_reasons"]["max_turns"] != cards:
        raise RuntimeError(f"{cli.command}: expected {cards} conversations, each to its last turn: {cli.summary}")
    cli_ideal_s = turns * 2 * latency
    result: dict[str, Any] = {
        "command": run.command,
        "conversations": n,
        "turns": turns,
        "latency_s": latency,
        "concurrency": concurrency,
        "calls": run.summary["calls"]["requested"],
        "ideal_wall_time_s": ideal_s,
        "wall_time_s": run.summary["wall_time_s"],
        "process_s": round(run.process_s, 3),
        "ratio_of_ideal": round(ideal_s / run.summary["wall_time_s"], 3),
        "process_ratio_of_ideal": round(ideal_s / run.process_s, 3),
        "client_cpu_ms_per_call": round(run.cpu_s * 1000 / run.summary["calls"]["requested"], 2),
        "cli_command": cli.command,
        "cli_conversations": cli.summary["conversations"],
        "cli_ideal_wall_time_s": cli_ideal_s,
        "cli_wall_time_s": cli.summary["wall_time_s"],
        "cli_ratio_of_ideal": round(cli_ideal_s / cli.summary["wall_time_s"], 3),
        "cli_process_ratio_of_ideal": round(cli_ideal_s / cli.process_s, 3),
        "memory_sizes": list(sizes.conversation_memory),
        "memory_turns": sizes.conversation_memory_turns,
    }
    with fake_server(0.0, work, judge_script=False) as server:
        for size in sizes.conversation_memory:
            turns = sizes.conversation_memory_turns
            run = _conversation_run(server, work / f"conv-mem-{size}", size, turns, 32)
            _check_every_turn_ran(run, 2 * turns)
            result[f"memory_{size}"] = {
                "command": run.command,
                "peak_rss_mib": round(run.max_rss_mib, 1),
                "process_s": round(run.process_s, 2),
                "calls": run.summary["calls"]["requested"],
            }
    small, large = (result[f"memory_{size}"]["peak_rss_mib"] for size in sizes.conversation_memory)
    result["memory_ratio"] = round(large / small, 2)
    return result


# ---------------------------------------------------------------- report


def verdict(ok: bool) -> str:
    return "[green]met[/green]" if ok else "[red]NOT met[/red]"


def _ratios(values: list[float]) -> str:
    """Each run's ratio to the ideal, as the table shows them."""
    return ", ".join(f"{r:.2f}" for r in values)


def print_report(results: dict[str, Any]) -> None:
    table = Table(
        title=f"trustmh-judge benchmark ({results['machine']['cpus']} CPUs, Python {results['machine']['python']})"
    )
    for column in ("figure", "measured", "target", ""):
        table.add_column(column)
    commands: list[tuple[str, str]] = []
    if tp := results.get("throughput"):
        commands.append(("throughput", tp["command"]))
        table.add_row(
            f"judge calls @ {tp['latency_s'] * 1000:g} ms, concurrency {tp['concurrency']}, in process "
            f"({tp['calls']} calls, median of {tp['repeats']})",
            f"{tp['calls_per_s']} calls/s = {tp['ratio_of_ideal']:.2f} × ideal {tp['ideal_calls_per_s']:g}",
            f"≥ {TARGETS['throughput']} × ideal",
            verdict(tp["ratio_of_ideal"] >= TARGETS["throughput"]),
        )
        table.add_row(
            "  whole process (start-up included)",
            f"{tp['process_ratio_of_ideal']:.2f} × ideal ({tp['process_s']} s for the median run)",
            f"≥ {TARGETS['throughput_process']} × ideal",
            verdict(tp["process_ratio_of_ideal"] >= TARGETS["throughput_process"]),
        )
        table.add_row(
            "  each run in process / whole; bare aiohttp on the same server",
            f"{_ratios(tp['ratios_of_ideal'])} / "
            f"{_ratios(tp['process_ratios_of_ideal'])}; "
            f"{tp['bare_http_ratio_of_ideal']:.2f} × ideal",
            "",
            "",
        )
        table.add_row(
            "  floor: SDK imports + bare aiohttp, whole process (tests/perf/sdk_floor.py)",
            f"{tp['sdk_floor_process_ratio_of_ideal']:.2f} × ideal (runs "
            f"{_ratios(tp['sdk_floor_process_ratios_of_ideal'])})",
            "",
            "",
        )
        table.add_row(
            "  whole process ÷ floor (the project's own overhead; start-up to first request: see below)",
            f"{tp['process_to_floor_ratio']:.3f}",
            f"≥ {TARGETS['process_to_floor']}",
            verdict(tp["process_to_floor_ratio"] >= TARGETS["process_to_floor"]),
        )
        table.add_row(
            "  wall vs ideal; CPU of client / server",
            f"{tp['wall_time_s']} s vs {tp['ideal_wall_time_s']} s; {tp['client_cpu_s']} s "
            f"({tp['client_cpu_ms_per_call']} ms/call) / {tp['server_cpu_s']} s",
            "",
            "",
        )
    if rp := results.get("respond"):
        commands.append(("respond", rp["command"]))
        table.add_row(
            f"target calls @ {rp['latency_s'] * 1000:g} ms, concurrency {rp['concurrency']}, in process "
            f"({rp['calls']} calls, median of {rp['repeats']})",
            f"{rp['ratio_of_ideal']:.2f} × ideal (runs {_ratios(rp['ratios_of_ideal'])})",
            f"≥ {TARGETS['respond']} × ideal",
            verdict(rp["ratio_of_ideal"] >= TARGETS["respond"]),
        )
        table.add_row(
            "  whole process",
            f"{rp['process_ratio_of_ideal']:.2f} × ideal (runs {_ratios(rp['process_ratios_of_ideal'])})",
            "",
            "",
        )
    if bt := results.get("batch"):
        commands.append(("batch", bt["command"]))
        table.add_row(
            f"batch vs live ({bt['calls']} judge calls, loopback Batch API; live at 250 ms, concurrency 32)",
            f"wall {bt['batch_process_s']} s vs {bt['live_process_s']} s live; cost ${bt['batch_cost_usd']} vs "
            f"${bt['live_cost_usd']} = {bt['cost_ratio']:.2f} × live ({bt['batched']} calls batched)",
            "(reported)",
            "",
        )
    if st := results.get("startup"):
        commands.append(("startup", st["command"]))
        table.add_row(
            f"start-up to first request (1 item, median of {st['repeats']})",
            f"{st['first_request_s']} s (runs {', '.join(map(str, st['first_request_runs_s']))}); "
            f"whole process {st['process_s']} s",
            "(reported)",
            "",
        )
    if oh := results.get("overhead"):
        for key, label in (("c1", "concurrency 1"), ("c8", "concurrency 8")):
            row = oh[key]
            table.add_row(
                f"per-call time @ 0 ms, {label} ({oh['calls']} calls)",
                f"ours {row['ours_ms_per_call']:.2f} ms vs bare instructor {row['bare_ms_per_call']:.2f} ms "
                f"= {row['overhead'] * 100:+.1f} %",
                f"≤ +{TARGETS['overhead'] * 100:g} %",
                verdict(row["overhead"] <= TARGETS["overhead"]),
            )
    if ca := results.get("cache"):
        commands.append(("cache", ca["command"]))
        table.add_row(
            f"cache-hit re-run, in process ({ca['cached_rows']:,} rows)",
            f"{ca['rows_per_s_in_process']:,.0f} rows/s ({ca['calls_per_s_in_process']:,.0f} calls/s)",
            f"≥ {TARGETS['cache']:,.0f} rows/s",
            verdict(ca["rows_per_s_in_process"] >= TARGETS["cache"]),
        )
        table.add_row(
            "  whole process (start-up included)",
            f"{ca['rows_per_s_process']:,.0f} rows/s ({ca['calls_per_s_process']:,.0f} calls/s), "
            f"{ca['rerun_process_s']} s",
            f"≥ {TARGETS['cache']:,.0f} rows/s",
            verdict(ca["rows_per_s_process"] >= TARGETS["cache"]),
        )
        table.add_row(
            "  summary wall_time_s (execute only)",
            f"{ca['rows_per_s_wall_time']:,.0f} rows/s, {ca['rerun_wall_time_s']} s",
            "",
            "",
        )
    if me := results.get("memory"):
        for n in me["sizes"]:
            row = me[str(n)]
            commands += [(f"memory {n:,} fresh", row["fresh_command"]), (f"memory {n:,} cached", row["cached_command"])]
            table.add_row(
                f"peak RSS, {n:,} items fresh @ 0 ms / all cached",
                f"{row['fresh_peak_rss_mib']} MiB ({row['fresh_process_s']} s) / "
                f"{row['cached_peak_rss_mib']} MiB ({row['cached_process_s']} s)",
                "(reported)",
                "",
            )
        small, large = me["sizes"]
        for kind in ("fresh", "cached"):
            table.add_row(
                f"  peak RSS {large:,} ÷ {small:,} items, {kind}",
                f"{me[f'{kind}_ratio']:.2f}",
                f"≤ {TARGETS['memory_ratio']:g}",
                verdict(me[f"{kind}_ratio"] <= TARGETS["memory_ratio"]),
            )
    if cv := results.get("conversation"):
        commands += [("conversation", cv["command"]), ("conversation, trustmh bench", cv["cli_command"])]
        table.add_row(
            f"{cv['conversations']} conversations × {cv['turns']} turns @ {cv['latency_s'] * 1000:g} ms, "
            f"concurrency {cv['concurrency']} ({cv['calls']} calls)",
            f"ideal {cv['ideal_wall_time_s']:g} s ÷ {cv['wall_time_s']} s = {cv['ratio_of_ideal']:.2f}; whole "
            f"process {cv['process_s']} s = {cv['process_ratio_of_ideal']:.2f}; "
            f"client CPU {cv['client_cpu_ms_per_call']} ms/call",
            f"≥ {TARGETS['conversation']}",
            verdict(cv["ratio_of_ideal"] >= TARGETS["conversation"]),
        )
        table.add_row(
            f"  trustmh bench --suites conversation/trustmh ({cv['cli_conversations']} conversations, one wave)",
            f"ideal {cv['cli_ideal_wall_time_s']:g} s ÷ {cv['cli_wall_time_s']} s = {cv['cli_ratio_of_ideal']:.2f}; "
            f"whole process {cv['cli_process_ratio_of_ideal']:.2f}",
            "(reported)",
            "",
        )
        small, large = cv["memory_sizes"]
        for size in cv["memory_sizes"]:
            commands.append((f"conversation memory {size:,}", cv[f"memory_{size}"]["command"]))
        table.add_row(
            f"  peak RSS, {small:,} / {large:,} conversations × {cv['memory_turns']} turns @ 0 ms",
            f"{cv[f'memory_{small}']['peak_rss_mib']} / {cv[f'memory_{large}']['peak_rss_mib']} MiB "
            f"= {cv['memory_ratio']:.2f}",
            f"≤ {TARGETS['memory_ratio']:g}",
            verdict(cv["memory_ratio"] <= TARGETS["memory_ratio"]),
        )
    for key, label in (("million", "dry run"), ("million_cached", "fully cached run")):
        if mi := results.get(key):
            commands.append((key, mi["command"]))
            table.add_row(
                f"{mi['items']:,} items, {label}",
                f"{mi['process_s']} s, peak RSS {mi['peak_rss_mib']} MiB"
                + (f" (cache filled in {mi['fill_s']} s)" if "fill_s" in mi else ""),
                "completes",
                verdict(True),
            )
    if ry := results.get("ray"):
        small, large = ry["calls"]
        table.add_row(
            f"--engine ray vs local, {small} and {large} calls @ 0 ms, shards of {ry['shard_items']}, "
            f"c{ry['concurrency']}",
            f"ray {ry['ray']['ms_per_call'][0]} / {ry['ray']['ms_per_call'][1]} ms/call, local "
            f"{ry['local']['ms_per_call'][0]} / {ry['local']['ms_per_call'][1]} ms/call; a call costs "
            f"{ry['overhead_marginal_ms_per_call']:+} ms more on Ray, a run {ry['overhead_fixed_s']:+} s "
            f"(cluster start {ry['cluster_start_s']} s, apart)",
            "(reported)",
            "",
        )
    console.print(table)
    for name, command in commands:
        console.print(f"[bold]{name}[/bold]: {command}", soft_wrap=True, highlight=False)
    loads = {k: v["load_avg_1min"] for k, v in results.items() if isinstance(v, dict) and "load_avg_1min" in v}
    console.print(f"1-min load average before/after each phase: {loads}")
    if results.get("bytecode_compiled"):
        console.print("The project's modules ran from compiled bytecode, as an installed copy does.")
    if tp and "profile" in tp:
        console.print(tp["profile"], markup=False, highlight=False)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen phases; print the table; write tests/perf/results.json only with --write."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a smoke run, not a measurement")
    parser.add_argument(
        "--only", action="append", choices=PHASES + EXTRA_PHASES, help="run only this phase (repeatable)"
    )
    parser.add_argument("--write", action="store_true", help="write the figures to tests/perf/results.json")
    parser.add_argument("--profile", action="store_true", help="also cProfile the throughput run in process")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    phases = args.only or list(PHASES)

    os.environ.update(DUMMY_KEYS)  # in-process runs must never pick up a real key
    for name in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        os.environ.pop(name, None)
    logging.getLogger("instructor").setLevel(logging.CRITICAL)
    # execute() leaves its SDK clients for the garbage collector, which then reports "Event loop is closed"
    # from a later asyncio.run; harmless in the CLI (the process exits), noise when runs repeat in process.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks that stop the servers

    # A user's installed copy runs from compiled bytecode (pip compiles it on install); a source checkout
    # under PYTHONDONTWRITEBYTECODE=1 (set on this project's machines) would compile every module again
    # at each start. So the start-up figures are measured from bytecode, compiled here first.
    compiled = all(compileall.compile_dir(REPO / package, quiet=1) for package in PROJECT_PACKAGES)
    results: dict[str, Any] = {
        "bytecode_compiled": compiled,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "instructor": instructor.__version__ if hasattr(instructor, "__version__") else None,
            "openai": openai.__version__,
        },
        "quick": args.quick,
        "sizes": sizes.__dict__,
    }
    runners = {
        "throughput": lambda work: bench_throughput(sizes, work, args.profile),
        "overhead": lambda work: bench_overhead(sizes, work),
        "cache": lambda work: bench_cache(sizes, work),
        "memory": lambda work: bench_memory(sizes, work),
        "respond": lambda work: bench_respond(sizes, work),
        "startup": lambda work: bench_startup(sizes, work),
        "million": lambda work: bench_million(sizes, work),
        "million_cached": lambda work: bench_million_cached(sizes, work),
        "batch": lambda work: bench_batch(sizes, work),
        "ray": lambda work: bench_ray(sizes, work),
        "conversation": lambda work: bench_conversation(sizes, work),
    }
    with tempfile.TemporaryDirectory(prefix="trustmh-bench-") as tmp:
        for phase in phases:
            work = Path(tmp) / phase
            work.mkdir()
            console.print(f"[bold]{phase}[/bold] …")
            load_before = os.getloadavg()[0]
            if load_before > 0.5:
                console.print(f"  [yellow]load average {load_before:.2f}: other work on this machine skews figures")
            started = time.perf_counter()
            results[phase] = runners[phase](work)
            results[phase]["load_avg_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
            console.print(f"  done in {time.perf_counter() - started:.1f} s")
    print_report(results)
    if args.write:
        path = REPO / "tests" / "perf" / "results.json"
        path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
