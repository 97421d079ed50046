"""`trustmh score --engine ray`: one run spread over a Ray cluster, each shard judged by the local engine.

Ray does the scheduling; nothing here decides where or when a call runs. The corpus is read with Ray
Data (JSON Lines and Parquet) and checked whole on the driver, so bad input stops the run before any call,
as it does locally. The valid items are cut into shards of consecutive items; each shard is an ordinary
`trustmh score` run (`prepare` and `execute` of judge.score, the same engine, journal, cache, re-asks and
validation) into its own folder OUT/shards/NNNNN/, inside a Ray task. A shard's journal is written call by
call, so a worker killed mid-shard loses no answered call: Ray runs the task again and the shard's run
resumes from its journal, asking only what had no answer. A driver killed and started again does the same
for every shard. Rate limits are shared: one actor holds each worker's `RateLimiter` and every shard's
requests draw from it. When every shard is done, their journals are merged in the local plan's order and
the driver writes OUT/verdicts.jsonl, items.jsonl, panel.jsonl, review.jsonl and summary.json with the same
code a local run uses, so the files hold what a local run of the same items writes.

Ray is an optional extra, imported only here and only when a run asks for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from typing import Any

from judge.calls import engine
from judge.calls.engine import Journal, Ledger, RateLimiter, journal_rows
from judge.calls.runner import RunTally, check_reuse, run_identity, write_in_plan_order
from judge.errors import ExitCode, UsageError
from judge.rundir import OutDirLock, make_private_dir, write_json_atomic, write_jsonl_atomic, write_text_atomic
from judge.score import (
    SCORE_OUTPUTS,
    Judged,
    Prepared,
    ScoreOptions,
    VerdictStats,
    _item_line,
    _write_panel_outputs,
    build_summary,
    execute,
    prepare,
    run_record,
    tiebreak_plan,
)

INSTALL_HINT = "pip install 'trustmh-judge[ray]'"
DEFAULT_SHARD_ITEMS = 1000  # items per shard: a shard is the unit Ray schedules and retries
SHARD_RETRIES = 3  # times Ray runs a shard again after its worker died (each run resumes the shard's journal)
LOCAL_CPUS = 2  # the local cluster started when no address is given
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
PARQUET_SUFFIXES = (".parquet", ".pq")
SHARDS = "shards"


def require_ray() -> Any:
    """The `ray` module, or a usage error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError(f"--engine ray needs Ray, which is not installed; install it with: {INSTALL_HINT}") from None
    return ray


def check_inputs(paths: list[Path]) -> None:
    """Ray Data reads JSON Lines and Parquet; anything else is named before a cluster is started."""
    seen: set[str] = set()
    for path in paths:
        if str(path) == "-":
            raise UsageError("--engine ray reads files, not standard input; save the items to a JSONL file first")
        if path.suffix.lower() not in JSONL_SUFFIXES + PARQUET_SUFFIXES:
            raise UsageError(
                f"{path}: --engine ray reads JSON Lines ({', '.join(JSONL_SUFFIXES)}) or Parquet "
                f"({', '.join(PARQUET_SUFFIXES)}) files; convert it, or run without --engine ray",
                field="items",
            )
        if not path.is_file():
            raise UsageError(
                f"{path}: {'is a folder' if path.is_dir() else 'no such file'}; nothing was judged", field="items"
            )
        if (real := str(path.resolve())) in seen:
            raise UsageError(f"{path}: is given twice; pass each file once", field="items")
        seen.add(real)


def connect(ray: Any, address: str | None) -> None:
    """Join the cluster at `address`, or start a small local one; the workers import this checkout's code."""
    if ray.is_initialized():
        return
    data_log = logging.getLogger("ray.data")  # after Ray Data's own logging set-up (on import): no INFO lines,
    data_log.setLevel(logging.ERROR)  # no progress bars, and no warning that they are off
    ray.data.DataContext.get_current().enable_progress_bars = False
    data_log.setLevel(logging.WARNING)
    package_root = str(Path(__file__).resolve().parents[1])
    runtime_env = {"env_vars": {"PYTHONPATH": package_root}} if address is None else None
    if address is None:
        ray.init(
            num_cpus=LOCAL_CPUS,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
            runtime_env=runtime_env,
        )
    else:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)


# ---------------------------------------------------------------- reading with Ray Data


def _records(ray: Any, path: Path) -> Iterator[str]:
    """The records of one input file as JSON lines, in file order. JSON Lines are passed on as written
    (a line is parsed by our own reader, so no value is retyped); Parquet rows become JSON objects."""
    if path.suffix.lower() in JSONL_SUFFIXES:
        dataset = ray.data.read_text(str(path), drop_empty_lines=True)
        for batch in dataset.iter_batches(batch_format="pyarrow", batch_size=4096):
            for line in batch.column("text").to_pylist():
                yield line.rstrip("\r\n") + "\n"
        return
    dataset = ray.data.read_parquet(str(path))
    row_number = 0
    for batch in dataset.iter_batches(batch_format="pyarrow", batch_size=4096):
        for row in batch.to_pylist():
            row_number += 1
            try:
                yield json.dumps(row, ensure_ascii=False) + "\n"
            except TypeError as exc:
                raise UsageError(
                    f"{path}: row {row_number}: {exc}; store such a column as a string", field="items"
                ) from None


def read_with_ray_data(ray: Any, paths: list[Path], folder: Path, shard_items: int) -> list[Path]:
    """Every record of every input, in order, written to JSONL files of `shard_items` records under `folder`
    (rejections name these files and their lines). Ray Data keeps the order of the records."""
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    if folder.exists():
        shutil.rmtree(folder)
    make_private_dir(folder)
    files: list[Path] = []
    lines: list[str] = []

    def flush() -> None:
        files.append(folder / f"{len(files):05d}.jsonl")
        write_text_atomic(files[-1], lines)
        lines.clear()

    for path in paths:
        for line in _records(ray, path):
            lines.append(line)
            if len(lines) == shard_items:
                flush()
    if lines or not files:
        flush()
    return files


# ---------------------------------------------------------------- budgets shared across the cluster


class BudgetKeeper:
    """The cluster's one holder of rate limits (a Ray actor): each worker's `RateLimiter`, by worker name,
    the same limiter a local run keeps in its own process."""

    def __init__(self) -> None:
        self.limiters: dict[str, RateLimiter] = {}

    def _limiter(self, name: str, rpm: float | None, tpm: float | None) -> RateLimiter:
        if name not in self.limiters:
            self.limiters[name] = RateLimiter(rpm, tpm)
        return self.limiters[name]

    async def acquire(self, name: str, rpm: float | None, tpm: float | None, tokens: int) -> None:
        await self._limiter(name, rpm, tpm).acquire(tokens)

    async def settle(self, name: str, rpm: float | None, tpm: float | None, estimated: int, actual: int) -> None:
        self._limiter(name, rpm, tpm).settle(estimated, actual)


@dataclasses.dataclass
class ClusterBudget:
    """A worker's budget drawn from the cluster's `BudgetKeeper` (engine.Budget)."""

    keeper: Any  # the actor's handle
    name: str
    rpm: float | None
    tpm: float | None

    async def acquire(self, tokens: int) -> None:
        await self.keeper.acquire.remote(self.name, self.rpm, self.tpm, tokens)

    def settle(self, estimated: int, actual: int) -> None:
        self.keeper.settle.remote(self.name, self.rpm, self.tpm, estimated, actual)  # no need to wait for it


# ---------------------------------------------------------------- one shard


@dataclasses.dataclass
class ShardOutcome:
    tally: RunTally
    replicas: dict[str, list[dict[str, Any]]]


def run_shard(options: ScoreOptions, keeper: Any) -> ShardOutcome:
    """One shard as a local `score` run (inside a Ray worker); a run of it again resumes its journal."""
    engine.share_budgets(lambda name, rpm, tpm: ClusterBudget(keeper, name, rpm, tpm))
    try:
        prepared = prepare(options)
        _, summary = execute(prepared)
    finally:
        engine.share_budgets(None)
    assert prepared.tally is not None
    return ShardOutcome(prepared.tally, dict(summary.get("replicas", {})))


# ---------------------------------------------------------------- the driver


def score_on_ray(
    options: ScoreOptions, *, address: str | None, shard_items: int = DEFAULT_SHARD_ITEMS
) -> tuple[ExitCode, dict[str, Any], int, int]:
    """Judge `options.items` on a Ray cluster; returns (exit code, summary, items, rejected) as a local run."""
    if shard_items < 1:
        raise UsageError(f"{shard_items}: must be at least 1", field="ray_shard_items")
    if options.settings.dry_run:
        raise UsageError("--dry-run plans on one machine; run it without --engine ray", field="engine")
    check_inputs(options.items)
    ray = require_ray()
    out = options.out
    make_private_dir(out)
    connect(ray, address)
    started_at, started = datetime.now(UTC), time.monotonic()
    with OutDirLock(out), contextlib.ExitStack() as cleanup:
        shards_dir = out / SHARDS
        make_private_dir(shards_dir)
        read_files = read_with_ray_data(ray, options.items, shards_dir / "read", shard_items)
        # checked and planned whole, as a local run is, without asking anything (no workers, no journal)
        prepared = prepare(
            dataclasses.replace(options, items=read_files, settings=dataclasses.replace(options.settings, dry_run=True))
        )
        if prepared.cache is not None:
            cleanup.callback(prepared.cache.close)
        identity = run_identity(prepared.calls)
        check_reuse(out, identity, SCORE_OUTPUTS, options.settings.overwrite)
        prepared.options = dataclasses.replace(prepared.options, items=options.items, settings=options.settings)
        write_json_atomic(out / "run.json", _run_record(prepared, started_at, identity, ended=False))
        shard_options = _write_shards(prepared, read_files, shards_dir, shard_items)
        keeper = ray.remote(BudgetKeeper).remote()
        task = ray.remote(max_retries=SHARD_RETRIES, num_cpus=1)(run_shard)
        outcomes: list[ShardOutcome] = ray.get([task.remote(shard, keeper) for shard in shard_options])
        summary = _merge(prepared, [shard.out for shard in shard_options], outcomes, time.monotonic() - started)
        write_json_atomic(out / "run.json", _run_record(prepared, started_at, identity, ended=True))
    code = ExitCode.FAILED_VERDICTS if summary["calls"]["failed"] else ExitCode.OK
    return code, summary, len(prepared.read.items), len(prepared.read.rejections)


def _run_record(prepared: Prepared, started_at: datetime, identity: str, *, ended: bool) -> dict[str, Any]:
    return {**run_record(prepared, started_at, identity, ended=ended), "engine": "ray"}


def _valid_lines(read_files: list[Path], prepared: Prepared) -> Iterator[str]:
    """The records the check found valid, as read (a record is kept in its own words: a shard reads it as
    the local run read it), in order."""
    rejected = {(r.file, r.line) for r in prepared.read.rejections}
    for path in read_files:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if (str(path), number) not in rejected:
                    yield line


def _write_shards(prepared: Prepared, read_files: list[Path], shards_dir: Path, shard_items: int) -> list[ScoreOptions]:
    """Each shard's valid records (consecutive, in input order) and the options of its run; a shard folder
    left by an earlier, larger run of the same out folder is removed."""
    options = prepared.options
    # A shard never overwrites: Ray may run it again after its worker died, and that run must resume. An
    # overwriting run starts its shards afresh here instead (the cache still answers what it holds).
    shard_settings = dataclasses.replace(options.settings, quiet=True, overwrite=False, command_line=())
    shards: list[ScoreOptions] = []
    lines = _valid_lines(read_files, prepared)
    written = 0
    while chunk := list(itertools.islice(lines, shard_items)):
        folder = shards_dir / f"{len(shards):05d}"
        if options.settings.overwrite and folder.exists():
            shutil.rmtree(folder)
        make_private_dir(folder)
        write_text_atomic(folder / "input.jsonl", chunk)
        written += len(chunk)
        shards.append(dataclasses.replace(options, items=[folder / "input.jsonl"], out=folder, settings=shard_settings))
    if written != len(prepared.read.items):
        raise RuntimeError(f"{shards_dir}: {written} records for {len(prepared.read.items)} valid items")
    for stale in shards_dir.glob("[0-9]" * 5):
        if int(stale.name) >= len(shards):
            shutil.rmtree(stale)
    return shards


def _call_groups(path: Path) -> Iterator[tuple[tuple[Any, ...], bytes, list[dict[str, Any]]]]:
    """A finished shard's verdicts, one call at a time: (call id, its lines, its rows)."""

    def identity(line: bytes) -> tuple[Any, ...]:
        row = json.loads(line)
        return (row["item_id"], row["pillar"], row["judge"], row["role"], row["sample"], row.get("part", ""))

    with path.open("rb") as handle:
        for call_id, lines in groupby(handle, key=identity):
            data = b"".join(lines)
            yield call_id, data, journal_rows(data, str(path))


def _merge(
    prepared: Prepared, shard_dirs: list[Path], outcomes: list[ShardOutcome], wall_time_s: float
) -> dict[str, Any]:
    """The shards' verdicts in the local plan's order, and every output a local run writes from them."""
    out, calls = prepared.options.out, prepared.calls
    contexts = calls.contexts
    stats = VerdictStats(prepared.rubrics, lambda pillar: contexts[pillar][0].part)
    tally = RunTally()
    for outcome in outcomes:
        tally.merge(outcome.tally)
    merged_path = out / SHARDS / "merged.jsonl"
    merged_path.unlink(missing_ok=True)
    tiebreak_spans: dict[tuple[Any, ...], tuple[int, int]] = {}
    with Journal(merged_path) as journal:
        panel = Ledger(len(calls))
        index = 0
        for folder in shard_dirs:
            for call_id, data, rows in _call_groups(folder / "verdicts.jsonl"):
                span = journal.append(data.decode("utf-8"))
                stats.add_call(rows)
                if call_id[3] == "tiebreak":
                    tiebreak_spans[call_id] = span
                    continue
                if index >= len(calls) or tuple(calls.call_id(index)) != call_id:
                    raise RuntimeError(f"{folder}/verdicts.jsonl: call {call_id} is not call {index} of the plan")
                panel.record(index, span)
                index += 1
        if index != len(calls):
            raise RuntimeError(f"{out / SHARDS}: the shards hold {index} of the plan's {len(calls)} calls")
        judged = Judged(journal, panel)
        extra = tiebreak_plan(prepared, judged)
        if extra is not None:
            judged.tiebreak_plan, judged.tiebreak = extra, Ledger(len(extra))
            for number in range(len(extra)):
                judged.tiebreak.record(number, tiebreak_spans[tuple(extra.call_id(number))])
        ledgers = [judged.panel] if judged.tiebreak is None else [judged.panel, judged.tiebreak]
        write_in_plan_order(out / "verdicts.jsonl", journal, ledgers)
        write_text_atomic(out / "items.jsonl", map(_item_line, prepared.read.items))
        if prepared.read.rejections:
            write_jsonl_atomic(
                out / "rejected.jsonl",
                [
                    {"file": r.file, "line": r.line, "item_id": r.item_id, "reason": r.reason}
                    for r in prepared.read.rejections
                ],
            )
        panel_outputs = _write_panel_outputs(prepared, judged) if prepared.options.uses_panel else None
    merged_path.unlink()
    summary = build_summary(prepared, tally, stats, panel_outputs, wall_time_s)
    if replicas := _replica_totals(outcomes):
        summary["replicas"] = replicas
    write_json_atomic(out / "summary.json", summary)
    return summary


def _replica_totals(outcomes: list[ShardOutcome]) -> dict[str, list[dict[str, Any]]]:
    """Each replica's requests and failures over every shard, in the order the shards name them."""
    totals: dict[str, dict[str, dict[str, Any]]] = {}
    for outcome in outcomes:
        for name, counts in outcome.replicas.items():
            per_url = totals.setdefault(name, {})
            for count in counts:
                entry = per_url.setdefault(count["url"], {"url": count["url"], "requests": 0, "failures": 0})
                entry["requests"] += count["requests"]
                entry["failures"] += count["failures"]
    return {name: list(per_url.values()) for name, per_url in totals.items()}
