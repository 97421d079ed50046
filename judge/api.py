"""The library's entry points: `score`, `respond`, `bench` and `audit` as plain functions with keyword
arguments, returning typed results; the `trustmh` commands are thin wrappers over them.

An argument that cannot be used raises a `judge.errors.TrustMHError` whose `field` names the argument
(`field="pillars"`) before anything is sent or written; the command line shows the option instead.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from judge.bundled import bundled_path
from judge.errors import ExitCode, TrustMHError, UsageError
from judge.families import DEFAULT_FAMILIES, Families, families_from_toml
from judge.items import Item, Prompt, format_rejections, item_file_problems
from judge.judges import JudgesFile, JudgeSpec, check_samples, load_judges_file, resolve_judges
from judge.panel import PanelOptions
from judge.rundir import write_jsonl_atomic
from judge.score import ScoreOptions, dry_run_plan, execute, prepare
from judge.settings import RunSettings

if TYPE_CHECKING:
    from judge.audit.run import AuditResult
    from judge.gates import AuditGate
    from judge.log import Comparison
    from judge.respond.targets import TargetSpec
    from judge.suites.bench import BenchResult

Records = Path | str | Iterable[Path | str | Mapping[str, Any] | Item | Prompt]
Judges = str | JudgeSpec | Sequence[str | JudgeSpec]


@dataclass(frozen=True)
class ScoreResult:
    """A score run: its exit code and summary.json, or with `dry_run` the plan per judge (and no summary)."""

    out: Path
    exit_code: ExitCode
    items: int  # valid items judged (or, for a dry run, to judge)
    rejected: int  # invalid records left out (`skip_invalid`), listed in OUT/rejected.jsonl
    summary: dict[str, Any] | None = None
    plan: list[dict[str, Any]] | None = None  # dry run: per judge, calls, what is known, estimated tokens and cost


@dataclass(frozen=True)
class RespondResult:
    """A respond run: its exit code and summary.json, or with `dry_run` the plan per target."""

    out: Path
    exit_code: ExitCode
    prompts: int
    summary: dict[str, Any] | None = None
    plan: list[dict[str, Any]] | None = None


def score(
    items: Records,
    *,
    judges: Judges | None,
    out: Path | str,
    judges_file: Path | None = None,
    rubrics: Path | None = None,
    pillars: Sequence[str] | None = None,
    samples: int = 1,
    skip_invalid: bool = False,
    panel: PanelOptions | None = None,
    tiebreak: str | JudgeSpec | None = None,
    split_critical: bool = False,
    settings: RunSettings | None = None,
    engine: Literal["local", "ray"] = "local",
    ray_address: str | None = None,
    ray_shard_items: int = 1000,
) -> ScoreResult:
    """Judge responses (JSONL/CSV/TSV files, or item dicts / `Item`s) against the pillar rubrics.

    `judges`: "PROVIDER:MODEL[@BASE_URL]" strings, names from `judges_file`, or JudgeSpecs (None: the file's).
    Writes OUT/verdicts.jsonl, items.jsonl, summary.json (and panel.jsonl, review.jsonl for a panel);
    a run into the same `out` resumes it. `split_critical`: judge each critical criterion in a call of its
    own (the halo check; `audit(probes="halo")` compares the two ways). `engine="ray"`: the items (JSONL or
    Parquet) are judged in shards of `ray_shard_items` on the Ray cluster at `ray_address` (None: a small
    local one), each shard by the same engine, and merged into the same files (docs/scale.md)."""
    settings = settings or RunSettings()
    if engine not in ("local", "ray"):
        raise UsageError(f"{engine!r}: unknown engine; use local or ray", field="engine")
    if engine == "ray":
        from judge.distributed import require_ray

        require_ray()  # before anything is read: say how to install it
    out = _out_folder(out)
    specs, loaded = _judges(judges, judges_file)
    tiebreak_spec = _judges(tiebreak, judges_file, field="tiebreak")[0][0] if tiebreak else None
    check_samples(specs, samples)
    with contextlib.ExitStack() as scratch:
        paths = _record_files(items, "items", scratch)
        if engine == "ray":
            from judge.distributed import check_inputs

            check_inputs(paths)  # JSON Lines or Parquet, each an existing file given once
        elif problems := item_file_problems(paths):  # even with skip_invalid: that skips records, not files
            raise UsageError(format_rejections(problems) + "\nnothing was judged; check the file names")
        options = ScoreOptions(
            items=paths,
            judges=specs,
            rubrics_dir=rubrics or bundled_path("rubrics"),
            out=out,
            settings=settings,
            pillars=list(pillars) if pillars else None,
            samples=samples,
            skip_invalid=skip_invalid,
            families=_families(loaded, judges_file),
            panel=panel or PanelOptions(),
            tiebreak=tiebreak_spec,
            split_critical=split_critical,
        )
        if engine == "ray":
            from judge.distributed import score_on_ray

            with _os_errors_under(out):
                code, summary, *counts = score_on_ray(options, address=ray_address, shard_items=ray_shard_items)
            return ScoreResult(out, code, *counts, summary=summary)
        prepared = prepare(options)
        counts = len(prepared.read.items), len(prepared.read.rejections)
        if settings.dry_run:
            return ScoreResult(out, ExitCode.OK, *counts, plan=dry_run_plan(prepared))
        with _os_errors_under(out):
            code, summary = execute(prepared)
    return ScoreResult(out, code, *counts, summary=summary)


def respond(
    prompts: Records,
    *,
    targets: Judges | None,
    out: Path | str,
    targets_file: Path | None = None,
    rubrics: Path | None = None,
    samples: int = 1,
    settings: RunSettings | None = None,
) -> RespondResult:
    """Send every prompt (files `trustmh suites build` writes, or prompt dicts) to every target; writes
    OUT/responses.jsonl, items `score` accepts. `rubrics`: the rubrics whose pillars prompts may name."""
    from judge.respond.pipeline import RespondOptions, execute_responses, prepare_responses, respond_dry_run

    settings = settings or RunSettings()
    out = _out_folder(out)
    with contextlib.ExitStack() as scratch:
        options = RespondOptions(
            prompts=_record_files(prompts, "prompts", scratch),
            targets=_targets(targets, targets_file),
            out=out,
            known_pillars=_known_pillars(rubrics),
            samples=samples,
            settings=settings,
        )
        prepared = prepare_responses(options)
        if settings.dry_run:
            return RespondResult(out, ExitCode.OK, len(prepared.prompts), plan=respond_dry_run(prepared))
        with _os_errors_under(out):
            code, summary = execute_responses(prepared)
    return RespondResult(out, code, len(prepared.prompts), summary=summary)


def bench(
    *,
    suites: str | Sequence[str] | None = None,
    targets: Judges | None = None,
    judges: Judges | None = None,
    out: Path | str,
    targets_file: Path | None = None,
    judges_file: Path | None = None,
    recorded: str | None = None,
    limit: int | None = None,
    seed: int | None = None,
    samples: int = 1,
    rubrics: Path | None = None,
    bootstrap: int | None = None,
    report: bool = True,
    split_critical: bool = False,
    answers: Path | str | None = None,
    settings: RunSettings | None = None,
    protocol: str = "rubric",
    reparse: bool = False,
    first: int | None = None,
    paper_decoding: bool = True,
    validity: Path | str | None = None,
    max_reasks: int | None = None,
) -> BenchResult:
    """TrustMH-Bench suites on chatbots: build the prompts, the targets answer, the judges judge, the scorecard
    (OUT/scorecard.json, scorecard.md) and, with `report`, OUT/report.html. With `recorded`, import a
    published run instead (offline), given only `out`, `bootstrap` and `seed` (and `protocol`, `reparse`).
    With `answers` (a JSONL or CSV file of prompt_id, target, response), the answers of your own harness to
    the same prompts are judged instead of asking targets. `protocol="paper"`: the authors' readers, judge
    prompts and decoding where they published them (see docs/benchmark.md, "Paper protocol"); `first`: the
    first N prompts of each suite instead of `limit`. `validity`: the out folder of a `validate` run; the
    scorecard's bench.json and report then say whether each judge was validated (docs/validity.md).
    `max_reasks` (paper protocol, targets asked live): how often an answer the authors' reader rejects is
    asked again, as the authors do without bound (None: judge.suites.paper.DEFAULT_MAX_REASKS; 0: ask once)."""
    from judge.suites.bench import BenchOptions, run_bench, run_recorded_bench
    from judge.suites.paper import DEFAULT_MAX_REASKS
    from judge.suites.scorecard import DEFAULT_BOOTSTRAP, DEFAULT_SEED

    out = _out_folder(out)
    seed = DEFAULT_SEED if seed is None else seed
    bootstrap = DEFAULT_BOOTSTRAP if bootstrap is None else bootstrap
    if answers is not None and (recorded is not None or targets or targets_file):
        raise UsageError(
            "the answers file names its targets and holds their answers: give `answers=` without `targets=`, "
            "`targets_file=` or `recorded=`",
            field="answers",
        )
    if max_reasks is not None and (protocol != "paper" or recorded is not None or answers is not None):
        raise UsageError(
            "--max-reasks bounds the paper protocol's re-asks of the targets: use it with --protocol paper and "
            "--targets (a recorded run or an answers file asks no target)",
            field="max_reasks",
        )
    if recorded is not None:
        if suites or targets or targets_file or judges or judges_file or validity is not None:
            raise UsageError(
                "imports a published run: give it only `out=` (and `bootstrap=`, `seed=`)", field="recorded"
            )
        result = run_recorded_bench(recorded, out, bootstrap, seed, protocol=protocol, reparse=reparse)
    else:
        if reparse:
            raise UsageError("--reparse re-reads a recorded run's raw answers: use it with --recorded", field="reparse")
        names = [s.strip() for s in suites.split(",")] if isinstance(suites, str) else list(suites or [])
        if not [name for name in names if name]:
            raise UsageError("name the suites to run (see `trustmh suites list`), or use `recorded=`", field="suites")
        specs, loaded = _judges(judges, judges_file)
        options = BenchOptions(
            suites=[name for name in names if name],
            targets=[] if answers is not None else _targets(targets, targets_file),
            judges=specs,
            out=out,
            rubrics_dir=rubrics or bundled_path("rubrics"),
            limit=limit,
            seed=seed,
            samples=samples,
            bootstrap=bootstrap,
            families=_families(loaded, judges_file),
            split_critical=split_critical,
            answers=None if answers is None else _answers_file(Path(answers)),
            settings=settings or RunSettings(),
            protocol=protocol,
            first=first,
            paper_decoding=paper_decoding,
            validity=None if validity is None else Path(validity),
            max_reasks=DEFAULT_MAX_REASKS if max_reasks is None else max_reasks,
        )
        with _os_errors_under(out):
            result = run_bench(options)
    if report and result.scorecard is not None:
        result = replace(result, files=(*result.files, _write_report(out)))
    return result


def audit(
    run: Path | str,
    *,
    probes: str | Sequence[str],
    out: Path | str,
    judges: Judges | None = None,
    judges_file: Path | None = None,
    gates: Sequence[str | AuditGate] = (),
    max_items: int | None = None,
    seed: int = 0,
    bootstrap: int = 1000,
    report: bool = True,
    settings: RunSettings | None = None,
) -> AuditResult:
    """Probe the judges of a finished `score` run (`run`, its out folder) with controlled variants of the
    responses they judged; writes OUT/audit.json, audit.md and, with `report`, OUT/report.html.
    `gates`: "PROBE.METRIC OP NUMBER" conditions; a failed one makes the exit code GATE."""
    from judge.audit.probes import parse_audit_gate, parse_probes
    from judge.audit.run import AuditOptions, run_audit

    chosen = parse_probes(probes if isinstance(probes, str) else ",".join(probes))
    checked = [parse_audit_gate(g, chosen) if isinstance(g, str) else g for g in gates]
    specs, loaded = _judges(judges, judges_file) if judges or judges_file else (None, None)
    options = AuditOptions(
        run_dir=Path(run),
        probes=chosen,
        out=_out_folder(out),
        judges=specs,
        families=_families(loaded, judges_file),
        gates=checked,
        seed=seed,
        n_bootstrap=bootstrap,
        max_items=max_items,
        settings=settings or RunSettings(),
    )
    result = run_audit(options)
    return replace(result, report=_write_report(options.out)) if report else result


@dataclass(frozen=True)
class CompareResult:
    """A comparison of two runs: compare.json's content and the files written (compare.json, compare.md, and
    with `report` report.html)."""

    out: Path
    comparison: Comparison
    files: tuple[Path, ...]


def compare(
    run_a: Path | str,
    run_b: Path | str,
    *,
    out: Path | str,
    bootstrap: int = 1000,
    seed: int = 0,
    report: bool = True,
) -> CompareResult:
    """Which scores moved from run A to run B (two `score` or `bench` out folders over the same items, e.g.
    before and after a rubric or judge change): per criterion the mean paired difference B − A with its
    bootstrap interval, the Wilcoxon signed-rank test, the share of items changed and the critical gates that
    flipped; per item every unit that moved, and what only one run has. Writes OUT/compare.json, compare.md
    and, with `report`, OUT/report.html."""
    from judge.compare import compare_runs

    out = _out_folder(out)
    comparison = compare_runs(Path(run_a), Path(run_b), out, n_bootstrap=bootstrap, seed=seed)
    files = (out / "compare.json", out / "compare.md")
    return CompareResult(out, comparison, (*files, _write_report(out)) if report else files)


# ---------------------------------------------------------------- arguments


def _answers_file(path: Path) -> Path:
    if not path.is_file():
        raise UsageError(f"{path}: no such file; give the JSONL or CSV file of your harness's answers", field="answers")
    return path


def _out_folder(out: Path | str) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: is a file, not a folder; give a folder for the run's outputs", field="out")
    return out


def _judges(
    judges: Judges | None, judges_file: Path | None, field: str = "judges"
) -> tuple[list[JudgeSpec], JudgesFile | None]:
    """Judge specs from strings (inline specs or names in the judges file) and JudgeSpecs; None: the file's."""
    loaded = load_judges_file(judges_file) if judges_file else None
    return _specs(judges, lambda text: resolve_judges(text, loaded), JudgeSpec, field), loaded


def _targets(targets: Judges | None, targets_file: Path | None) -> list[TargetSpec]:
    from judge.respond.targets import TargetSpec, load_targets_file, resolve_targets

    loaded = load_targets_file(targets_file) if targets_file else None
    return _specs(targets, lambda text: resolve_targets(text, loaded), TargetSpec, "targets")


def _specs(given: Judges | None, resolve: Callable[[str | None], list[Any]], kind: type, field: str) -> list[Any]:
    """Specs of `kind` as given, and the specs that strings name (`resolve`); errors name `field`."""
    entries = [given] if given is None or isinstance(given, (str, JudgeSpec)) else list(given)
    specs: list[Any] = []
    for entry in entries:
        if isinstance(entry, JudgeSpec) and not isinstance(entry, kind):
            raise UsageError(f"{entry.name}: a {type(entry).__name__}, not a {kind.__name__}", field=field)
        try:
            specs += [entry] if isinstance(entry, kind) else resolve(entry)
        except UsageError as exc:
            raise type(exc)(exc.message, field=field) from exc
    return specs


def _families(loaded: JudgesFile | None, judges_file: Path | None) -> Families:
    """The model families of the judges file's `[families]`, else the built-in ones."""
    if not (loaded and loaded.families):
        return DEFAULT_FAMILIES
    try:
        return families_from_toml(loaded.families)
    except UsageError as exc:
        raise type(exc)(f"{judges_file}: {exc.message}", field="judges_file") from exc


def _known_pillars(rubrics: Path | None) -> set[str]:
    """Pillar names a prompt may carry: those the rubrics used for scoring define."""
    from judge.rubric import load_rubric_dir

    return set(load_rubric_dir(rubrics or bundled_path("rubrics")))


def _record_files(records: Records, field: str, scratch: contextlib.ExitStack) -> list[Path]:
    """Paths as given; records given in memory (dicts, Items, Prompts) written to one private temporary
    JSONL file, read like any other (so they are checked the same way)."""
    entries = [records] if isinstance(records, (str, Path)) else list(records)
    paths, rows = [], []
    for entry in entries:
        if isinstance(entry, (str, Path)):
            paths.append(Path(entry))
        elif isinstance(entry, (Item, Prompt)):
            row = entry.model_dump(mode="json", exclude={"source"}, exclude_none=True)
            if "pillars" in row:  # a record names them `pillar`, one or a list
                row["pillar"] = row.pop("pillars")
            rows.append(row)
        elif isinstance(entry, Mapping):
            rows.append(dict(entry))
        else:
            raise UsageError(f"{type(entry).__name__}: give paths, or dicts or models of records", field=field)
    if rows:
        folder = Path(scratch.enter_context(tempfile.TemporaryDirectory(prefix=f"trustmh-{field}-")))
        paths.append(folder / f"{field}.jsonl")
        write_jsonl_atomic(paths[-1], rows)
        scratch.enter_context(_named_in_memory(paths[-1], field))
    if not paths:
        raise UsageError("none given", field=field)
    return paths


@contextlib.contextmanager
def _named_in_memory(path: Path, field: str) -> Any:
    """A problem of a record given in memory named as `items[3]` (its index), not by the temporary file."""
    try:
        yield
    except TrustMHError as exc:
        if str(path) not in exc.message:
            raise
        message = re.sub(rf"{re.escape(str(path))}:(\d+)", lambda m: f"{field}[{int(m[1]) - 1}]", exc.message)
        raise type(exc)(message, field=exc.field) from exc


@contextlib.contextmanager
def _os_errors_under(out: Path) -> Any:
    """An OS error that names no file (a full disk under the journal) placed under `out`."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(out)
        raise


def _write_report(out: Path) -> Path:
    """OUT/report.html at the end of a run that has just written OUT (matplotlib loads only now)."""
    from judge.report import ReportError, write_report

    try:
        return write_report(out)
    except ReportError as exc:
        raise UsageError(f"{out}: the report could not be written: {exc}") from exc
