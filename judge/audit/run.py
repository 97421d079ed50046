"""`trustmh audit`: variants of a finished run's responses, judged by the score pipeline, paired effects.

The audit copies no engine logic. It writes the variants as ordinary items (OUT/variants.jsonl) and
judges them with `judge.score`'s ScoreOptions → prepare → execute into OUT/score/, with the run's rubrics
and samples and the same judges, so the cache, crash-safe resume and every later improvement of the
score pipeline apply: a repeated audit sends no request. Original scores come from the run's own
verdicts; a judge the run did not have (`--judges`) first judges the originals into OUT/originals/.

Everything that can be wrong with the input (run folder, probes, gates, judges) is found before any
call: a usage error exits 2 and judges nothing.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from judge.audit.effects import Cell, CellKey, Effects, VariantRef, cells_from_verdicts, compute_effects
from judge.audit.outputs import render
from judge.audit.probes import PROBES, Original, make_variants, response_delimiters
from judge.errors import ExitCode, RunDirError, UsageError
from judge.families import Families
from judge.gates import AuditGate, audit_gate_failures, audit_gate_results
from judge.items import Item
from judge.judges import JudgeSpec
from judge.prompts import PromptRenderer
from judge.review import load_run_rubrics
from judge.rubric import Rubric
from judge.rundir import read_jsonl, write_jsonl_atomic, write_text_atomic
from judge.score import ScoreOptions, execute, prepare
from judge.settings import RunSettings

VARIANT_SEPARATOR = "~"
ITEM_FIELDS = ("id", "messages", "response", "target", "reference", "meta")


@dataclass(kw_only=True)
class AuditOptions:
    run_dir: Path
    probes: list[str]
    out: Path
    judges: list[JudgeSpec] | None = None  # None: the run's judges
    families: Families | None = None
    gates: list[AuditGate] = field(default_factory=list)
    seed: int = 0
    n_bootstrap: int = 1000
    max_items: int | None = None
    settings: RunSettings = field(default_factory=RunSettings)  # the score stages' (cache, concurrency, quiet)


@dataclass
class ScoredRun:
    """What the audit needs from a finished `trustmh score` run folder."""

    run: dict[str, Any]
    rubrics: dict[str, Rubric]
    judges: list[JudgeSpec]
    items: list[Item]
    pillars: dict[str, list[str]]  # item id → pillars its verdicts cover
    verdicts: list[dict[str, Any]]


@dataclass(frozen=True)
class AuditResult:
    """What an audit did: its exit code, the paired effects, failed gates and the files written."""

    out: Path
    exit_code: ExitCode
    effects: Effects
    gate_failures: list[str]
    json_path: Path
    markdown_path: Path
    calls: dict[str, dict[str, Any]]  # score folder name → its summary's call counts
    report: Path | None = None  # report.html, written by judge.api


def _judge_from_settings(settings: Any, where: str) -> JudgeSpec:
    known = {f.name for f in fields(JudgeSpec)}
    if not isinstance(settings, dict) or not {"name", "provider", "model"} <= settings.keys():
        raise UsageError(f"{where}: a judge entry needs name, provider and model; got {settings!r}")
    return JudgeSpec(**{k: v for k, v in settings.items() if k in known})


def load_scored_run(run_dir: Path) -> ScoredRun:
    """The run's settings, rubrics (refused if changed since), judges, items and verdicts."""
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: not a folder; give the out folder of a finished `trustmh score` run")
    try:
        rubrics = load_run_rubrics(run_dir)
        run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        verdicts = [v for _, v in read_jsonl(run_dir / "verdicts.jsonl")]
        item_lines = read_jsonl(run_dir / "items.jsonl")
    except RunDirError as exc:
        raise UsageError(str(exc)) from exc
    judges = [_judge_from_settings(j, f"{run_dir / 'run.json'}: judges") for j in run.get("judges") or []]
    if not judges:
        raise UsageError(f"{run_dir / 'run.json'}: names no judge; pass `judges=`")
    items, problems = [], []
    for number, record in item_lines:
        try:
            items.append(Item.model_validate({k: record[k] for k in ITEM_FIELDS if k in record}))
        except ValueError as exc:
            problems.append(f"{run_dir / 'items.jsonl'}:{number}: not an item as `trustmh score` writes it ({exc})")
    if problems:
        raise UsageError("\n".join(problems[:50]))
    pillars: dict[str, list[str]] = {}
    for v in verdicts:
        if v.get("role", "panel") == "panel" and v.get("pillar") in rubrics:
            pillars.setdefault(v["item_id"], [])
            if v["pillar"] not in pillars[v["item_id"]]:
                pillars[v["item_id"]].append(v["pillar"])
    return ScoredRun(run, rubrics, judges, items, pillars, verdicts)


def _same_judge(a: JudgeSpec, b: JudgeSpec) -> bool:
    return a.name == b.name and a.decoding_params() == b.decoding_params()


def choose_items(items: list[Item], pillars: dict[str, list[str]], max_items: int | None, seed: int) -> list[Item]:
    """The judged items, or a seeded sample of `max_items` of them (in file order)."""
    judged = [item for item in items if pillars.get(item.id)]
    if max_items is None or max_items >= len(judged):
        return judged
    keep = set(random.Random(seed).sample([item.id for item in judged], max_items))
    return [item for item in judged if item.id in keep]


def item_record(item: Item, pillars: list[str], response: str, item_id: str, meta: dict[str, Any]) -> dict[str, Any]:
    """An input line for `trustmh score` (SPEC item format)."""
    record: dict[str, Any] = {
        "id": item_id,
        "pillar": pillars,
        "messages": [m.model_dump() for m in item.messages],
        "response": response,
        "meta": meta,
    }
    if item.target is not None:
        record["target"] = item.target
    if item.reference is not None:
        record["reference"] = item.reference
    return record


def build_variants(
    items: list[Item], pillars: dict[str, list[str]], probes: list[str], seed: int, renderer: PromptRenderer
) -> tuple[list[dict[str, Any]], list[VariantRef]]:
    """Variant item lines and their links to the originals; meta.audit = {probe, variant, original_id}."""
    records, refs = [], []
    for item in items:
        delimiters = response_delimiters(renderer, item) if "injection" in probes else None
        for variant in make_variants(Original(item.id, item.response, delimiters), probes, seed):
            variant_id = f"{item.id}{VARIANT_SEPARATOR}{variant.probe}{VARIANT_SEPARATOR}{variant.variant}"
            link = {"probe": variant.probe, "variant": variant.variant, "original_id": item.id}
            records.append(
                item_record(item, pillars[item.id], variant.response, variant_id, {**item.meta, "audit": link})
            )
            refs.append(VariantRef(variant_id, item.id, variant.probe, variant.variant))
    return records, refs


def _score_options(
    options: AuditOptions,
    scored: ScoredRun,
    judges: list[JudgeSpec],
    items: Path,
    out: Path,
    longest: int,
    split_critical: bool | None = None,
) -> ScoreOptions:
    """A score stage with the run's rubrics and samples; `split_critical` None: the run's own way of calling."""
    return ScoreOptions(
        items=[items],
        judges=judges,
        rubrics_dir=Path(scored.run["rubrics_dir"]),
        out=out,
        samples=int(scored.run.get("samples") or 1),
        # the variants are our own text: a padded response may exceed the run's limit, and must be judged
        settings=replace(
            options.settings, max_response_chars=max(int(scored.run.get("max_response_chars") or 0), longest)
        ),
        families=options.families,
        split_critical=_run_split(scored) if split_critical is None else split_critical,
    )


def _run_split(scored: ScoredRun) -> bool:
    """Whether the run judged each critical criterion in a call of its own (`--split-critical`)."""
    return bool(scored.run.get("split_critical"))


def _prepare_runs(
    options: AuditOptions,
    scored: ScoredRun,
    judges: list[JudgeSpec],
    new_judges: list[JudgeSpec],
    items: list[Item],
    records: list[dict[str, Any]],
) -> list[tuple[str, Any]]:
    """(folder name, prepared score run) for the variants and, for judges the run lacked, the originals.

    Every run is prepared before any is executed, so a usage error in either comes before any call.
    """
    plans = []
    if records:
        path = options.out / "variants.jsonl"
        write_jsonl_atomic(path, records)
        longest = max(len(r["response"]) for r in records)
        plans.append(("score", prepare(_score_options(options, scored, judges, path, options.out / "score", longest))))
    if new_judges:
        path = options.out / "originals.jsonl"
        write_jsonl_atomic(path, [item_record(i, scored.pillars[i.id], i.response, i.id, i.meta) for i in items])
        longest = max(len(i.response) for i in items)
        originals = _score_options(options, scored, new_judges, path, options.out / "originals", longest)
        plans.append(("originals", prepare(originals)))
    if "halo" in options.probes:  # the same responses, judged the other way: split if the run was not
        path = options.out / "halo.jsonl"
        write_jsonl_atomic(path, [item_record(i, scored.pillars[i.id], i.response, i.id, i.meta) for i in items])
        longest = max(len(i.response) for i in items)
        halo = _score_options(options, scored, judges, path, options.out / "halo", longest, not _run_split(scored))
        plans.append(("halo", prepare(halo)))
    return plans


def run_audit(options: AuditOptions) -> AuditResult:
    """Build, judge and measure; raises UsageError (exit 2) before any call when the input is unusable."""
    if options.settings.dry_run:
        raise UsageError("an audit has no dry run; `trustmh score --dry-run` prices a run", field="dry_run")
    scored = load_scored_run(options.run_dir)
    judges = options.judges or scored.judges
    names = [j.name for j in judges]
    items = choose_items(scored.items, scored.pillars, options.max_items, options.seed)
    if not items:
        raise UsageError(f"{options.run_dir}: no judged item to audit (verdicts.jsonl names none of items.jsonl)")
    records, refs = build_variants(items, scored.pillars, options.probes, options.seed, PromptRenderer())
    needs_variants = any(PROBES[p].make is not None for p in options.probes)
    if needs_variants and not records:
        raise UsageError(f"{options.run_dir}: the probes {', '.join(options.probes)} changed no response")
    new_judges = [j for j in judges if not any(_same_judge(j, r) for r in scored.judges)]

    created = not options.out.exists()
    options.out.mkdir(parents=True, exist_ok=True)
    if created:
        os.chmod(options.out, 0o700)  # the variants quote the judged conversations: owner only
    try:
        plans = _prepare_runs(options, scored, judges, new_judges, items, records)
    except UsageError:
        if created:  # a usage error leaves nothing half-written behind
            shutil.rmtree(options.out, ignore_errors=True)
        raise
    codes, calls = [], {}
    for name, prepared in plans:
        code, summary = execute(prepared)
        codes.append(code)
        calls[name] = summary.get("calls", {})

    kept = {j.name for j in judges if j not in new_judges}
    original_rows = [v for v in scored.verdicts if v.get("judge") in kept]
    if new_judges:
        original_rows += [v for _, v in read_jsonl(options.out / "originals" / "verdicts.jsonl")]
    chosen = {item.id for item in items}
    originals: dict[CellKey, Cell] = {k: c for k, c in cells_from_verdicts(original_rows).items() if k[0] in chosen}
    variants = (
        cells_from_verdicts(v for _, v in read_jsonl(options.out / "score" / "verdicts.jsonl")) if records else {}
    )
    halo = None
    if "halo" in options.probes:  # one call per pillar against split calls, whichever way the run went
        other = {k: c for k, c in cells_from_verdicts(v for _, v in read_jsonl(options.out / "halo" / "verdicts.jsonl"))
                 .items() if k[0] in chosen}  # fmt: skip
        halo = (originals, other) if not _run_split(scored) else (other, originals)
    effects = compute_effects(
        options.probes,
        refs,
        originals,
        variants,
        scored.rubrics,
        names,
        n_bootstrap=options.n_bootstrap,
        seed=options.seed,
        halo=halo,
    )
    gate_results = audit_gate_results(effects.records, options.gates)
    failures = audit_gate_failures(gate_results)
    meta = {
        "run_dir": str(options.run_dir),
        "probes": options.probes,
        "judges": names,
        "items": len(items),
        "variants": len(records),
        "seed": options.seed,
        "bootstrap": options.n_bootstrap,
        "gates": [str(g) for g in options.gates],
        "gate_results": gate_results,
        "calls": calls,
    }
    json_text, markdown = render(effects, meta, failures)
    json_path, markdown_path = options.out / "audit.json", options.out / "audit.md"
    write_text_atomic(json_path, [json_text])
    write_text_atomic(markdown_path, [markdown])
    failed = ExitCode.FAILED_VERDICTS if ExitCode.FAILED_VERDICTS in codes else ExitCode.OK
    code = ExitCode.GATE if failures else failed
    return AuditResult(options.out, code, effects, failures, json_path, markdown_path, calls)
