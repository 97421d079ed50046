"""Chaos: `trustmh score` over thousands of items against a loopback server that answers with 429, 500,
529 and hangs, stopped again and again (SIGKILL at random moments, SIGTERM, SIGINT, a disk that fills up
under the out folder), then resumed until it finishes. For each way of stopping it prints whether the final
files hold what a clean run's hold, and how many answered requests were paid for twice.

    .venv/bin/python tests/chaos/run_chaos.py [--items 3000] [--seed 1] [--only sigkill --only sigterm ...]

Paid twice = first requests of a call (re-asks aside) that the server answered in full more than once,
across the stopped-and-resumed runs, beyond those of a clean run through the same kind of faults (an
answer that hangs past the client's timeout is sent again by design, and not counted).
The full-disk case mounts a small tmpfs for the out folder (root only; skipped otherwise). Not part of
`make test`: it takes minutes and kills processes on purpose.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `python tests/chaos/run_chaos.py` puts tests/chaos/, not the repo, on the path
    sys.path.insert(0, str(REPO))

from tests.conftest import make_items, write_jsonl  # noqa: E402
from tests.fakeapi import FakeLLMServer, FaultPlan, Reply  # noqa: E402
from tests.fakeapi.judge_script import scripted_answerer  # noqa: E402

STABLE_FIELDS = ("item_id", "pillar", "criterion", "judge", "sample", "status", "score", "rationale", "evidence",
                 "error", "request_key")  # what must not depend on how the run was stopped  # fmt: skip
MODES = ("sigkill", "sigterm", "sigint", "full_disk")
JUDGES_TOML = """[judges.chaos]
spec = "openai:gpt-4.1-mini@{url}"
timeout_s = 2
deadline_s = 60
max_attempts = 8
"""


def faults(seed: int) -> FaultPlan:
    """About one request in ten faulted: rate limits, server errors, overload, and answers that hang."""
    return (
        FaultPlan.rate(0.04, Reply.rate_limited(retry_after=0), seed=seed)
        + FaultPlan.rate(0.03, Reply.server_error(500), seed=seed + 1)
        + FaultPlan.rate(0.02, Reply.overloaded(), seed=seed + 2)
        + FaultPlan.rate(0.01, Reply.slow(5.0), seed=seed + 3)  # past timeout_s: the request is sent again
    )


class Run:
    """One scoring run's folders and command, against one server."""

    def __init__(self, work: Path, items: Path, server: FakeLLMServer, out: Path) -> None:
        self.out, self.cache = out, work / f"cache-{out.name}"
        judges = work / "judges.toml"
        judges.write_text(JUDGES_TOML.format(url=server.openai_base_url))
        self.args = [sys.executable, "-m", "judge.cli", "score", str(items), "--judges-file", str(judges),
                     "--judges", "chaos", "--out", str(out), "--cache", str(self.cache), "--concurrency", "32",
                     "-q"]  # fmt: skip
        self.env = {**os.environ, "OPENAI_API_KEY": "sk-chaos"}

    def start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(self.args, cwd=REPO, env=self.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip

    def finish(self) -> int:
        return self.start().wait()


def answered(server: FakeLLMServer) -> int:
    return sum(r.method == "POST" and r.status == 200 for r in server.requests)


def paid_twice(server: FakeLLMServer) -> int:
    """First requests answered in full (no fault) whose messages had been answered in full before."""
    seen: set[str] = set()
    twice = 0
    for r in server.requests:
        if r.method != "POST" or r.status != 200 or r.faulted or r.is_reask or not isinstance(r.body, dict):
            continue
        key = json.dumps(r.body.get("messages"), sort_keys=True)
        twice += key in seen
        seen.add(key)
    return twice


def stable_rows(out: Path) -> list[tuple[object, ...]]:
    rows = [json.loads(line) for line in (out / "verdicts.jsonl").read_text(encoding="utf-8").splitlines()]
    return [tuple(json.dumps(row.get(f), sort_keys=True) for f in STABLE_FIELDS) for row in rows]


def stop_and_resume(run: Run, server: FakeLLMServer, rng: random.Random, stop: Callable[[subprocess.Popen[str]],
                    None], stops: int) -> int:  # fmt: skip
    """Start the run, stop it `stops` times at random moments, then let it finish; the number of stops made."""
    made = 0
    for _ in range(stops):
        before = answered(server)
        child = run.start()
        target = before + rng.randint(20, 200)
        deadline = time.monotonic() + 120
        while child.poll() is None and answered(server) < target and time.monotonic() < deadline:
            time.sleep(0.005)
        if child.poll() is not None:
            break
        stop(child)
        child.wait(timeout=120)
        made += 1
    code = run.finish()
    if code != 0:
        raise SystemExit(f"the resumed run exited {code}")
    return made


def signal_stop(number: int) -> Callable[[subprocess.Popen[str]], None]:
    return lambda child: child.send_signal(number)


def full_disk(work: Path, items: Path, seed: int) -> tuple[int, int, int] | None:
    """The out folder on a tmpfs that fills up mid-run; then it is grown and the run resumed."""
    mount = work / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True).returncode:
        return None
    try:
        with FakeLLMServer(0.02, answerer=scripted_answerer, faults=faults(seed)) as server:
            run = Run(work, items, server, mount / "out")
            code = run.finish()
            stops = int(code == 2)
            subprocess.run(["mount", "-o", "remount,size=512m", str(mount)], check=True)
            if run.finish() != 0:
                raise SystemExit("the run resumed after the disk filled up did not finish")
            return stops, answered(server), paid_twice(server)
    finally:
        result_copy = work / "full_disk-out"
        if (mount / "out").exists():
            shutil.copytree(mount / "out", result_copy, dirs_exist_ok=True)
        subprocess.run(["umount", str(mount)], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stops", type=int, default=4, help="stops per signal mode before the run may finish")
    parser.add_argument("--only", action="append", choices=MODES)
    options = parser.parse_args()
    modes = options.only or list(MODES)
    rng = random.Random(options.seed)
    with tempfile.TemporaryDirectory(prefix="trustmh-chaos-") as tmp:
        work = Path(tmp)
        items = write_jsonl(work / "items.jsonl", make_items(options.items))
        with FakeLLMServer(0.02, answerer=scripted_answerer, faults=faults(options.seed)) as server:
            clean = Run(work, items, server, work / "clean")
            started = time.monotonic()
            if clean.finish() != 0:
                raise SystemExit("the clean run did not finish")
            baseline, clean_twice, clean_s = answered(server), paid_twice(server), time.monotonic() - started
        expected = sorted(stable_rows(clean.out))
        print(f"clean run: {options.items} items, {baseline} answered requests, {clean_s:.1f} s")
        print(f"{'stopped by':<10} {'stops':>5} {'answered':>9} {'paid twice':>10}  final verdicts")
        for mode in modes:
            if mode == "full_disk":
                outcome = full_disk(work, items, options.seed)
                if outcome is None:
                    print(f"{mode:<10} skipped: mounting a tmpfs needs root")
                    continue
                stops, paid, twice = outcome
                out = work / "full_disk-out"
            else:
                number = {"sigkill": signal.SIGKILL, "sigterm": signal.SIGTERM, "sigint": signal.SIGINT}[mode]
                with FakeLLMServer(0.02, answerer=scripted_answerer, faults=faults(options.seed)) as server:
                    run = Run(work, items, server, work / mode)
                    stops = stop_and_resume(run, server, rng, signal_stop(number), options.stops)
                    paid, twice = answered(server), paid_twice(server)
                out = work / mode
            same = sorted(stable_rows(out)) == expected
            extra = twice - clean_twice
            print(f"{mode:<10} {stops:>5} {paid:>9} {extra:>10}  {'identical' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
