"""Read what a run directory holds into typed records, with errors that name the file and the field.

Three kinds of directory are recognised:
- a bench run: `scorecard.json` (from `trustmh metrics`) and/or `bench.json`, with `respond/` and `score/`
  stage folders beside them;
- a score run: `summary.json` with `verdicts.jsonl` (and, for panels, `panel.jsonl` / `review.jsonl`);
- a calibration directory: `calibration.json`;
- an audit directory: `audit.json` (from `trustmh audit`), with `score/` and `originals/` beside it.

Only reading and validation happens here; the numbers are taken as written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from judge.errors import RunDirError
from judge.rundir import read_jsonl

Kind = Literal["bench", "score", "calibration", "audit"]
Number = int | float


class ReportError(RunDirError):
    """A directory or file the report cannot be made from; the message says which and what to do."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow")


# ----------------------------------------------------------------------------- scorecard.json


class ScorecardResult(_Record):
    target: str
    pillar: str | None = None
    suite: str
    metric: str
    value: Number | None
    ci_low: Number | None = None
    ci_high: Number | None = None
    n: int | None = None
    higher_is_better: bool | None = None
    source: str | None = None
    group: str | None = None


class SuiteRanks(_Record):
    metric: str | None = None
    ranks: dict[str, Number] = {}


class Unparsed(_Record):
    target: str
    suite: str
    id: str
    answer: str | None = None


class Scorecard(_Record):
    results: list[ScorecardResult] = []
    ranks: dict[str, SuiteRanks] = {}
    pillar_ranks: dict[str, dict[str, Number]] = {}
    unparsed: list[Unparsed] = []
    seed: int | None = None
    bootstrap: int | None = None


# ----------------------------------------------------------------------------- summary.json (both stages)


class Tokens(_Record):
    input: int | None = None
    output: int | None = None


class StageSummary(_Record):
    """The parts every stage summary shares: `respond/summary.json` (target calls), `summary.json` (judge calls)."""

    calls: dict[str, int | None] = {}
    failures_by_reason: dict[str, int] = {}
    tokens: Tokens | None = Field(default=None, validation_alias=AliasChoices("tokens_this_run", "tokens"))
    cost_usd: Number | None = Field(default=None, validation_alias=AliasChoices("cost_usd_this_run", "cost_usd"))
    calls_without_cost: dict[str, int] = {}  # {"failed": n, "unpriced": m}: calls not in cost_usd, and why
    wall_time_s: Number | None = None


class MeanScore(_Record):
    pillar: str
    target: str | None
    criterion: str
    judge: str
    mean: Number | None
    n: int
    not_applicable: int = 0
    failed: int = 0


class CriticalRate(_Record):
    pillar: str
    target: str | None
    judge: str
    rate: Number
    n: int


class PairwiseQwk(_Record):
    judges: list[str]
    qwk: Number | None
    n: int


class SelfConsistency(_Record):
    judge: str
    n_samples: int
    n_items: int
    alpha_ordinal: Number | None
    all_agree_share: Number | None


class Agreement(_Record):
    pillar: str
    criterion: str
    judges: list[str]
    n_items: int
    n_units: int
    alpha_ordinal: Number | None
    pairwise_qwk: list[PairwiseQwk] = []
    self_consistency: list[SelfConsistency] = []


class SelfPreference(_Record):
    judge: str
    model: str | None = None
    family: str | None = None
    normalized: bool = False
    n_own: int
    mean_own: Number | None
    n_other: int
    mean_other: Number | None
    difference: Number | None


class PanelCounts(_Record):
    rows: int
    decided: int
    undecided: int
    not_applicable: int
    critical_fail: int
    escalated: int
    decided_by_tiebreak: int = 0


class ScoreSummary(StageSummary):
    items: int | None = None
    rejected: int | None = None
    pillars: list[str] = []
    judges: list[str] = []
    verdicts: dict[str, int] = {}
    mean_scores: list[MeanScore] = []
    critical_failure_rate: list[CriticalRate] = []
    panel: PanelCounts | None = None
    agreement: list[Agreement] = []
    self_preference: list[SelfPreference] = []


class ReviewEntry(_Record):
    """One line of review.jsonl, as far as the report shows it."""

    item_id: str
    pillar: str
    criterion: str
    target: str | None = None
    question: str | None = None
    severity: str | None = None
    scale: dict[str, int] | None = None
    messages: list[dict[str, Any]] = []
    response: str | None = None
    panel: dict[str, Any] = {}
    escalate_reasons: list[str] = []
    why: list[str] = []
    judgments: list[dict[str, Any]] = []


# ----------------------------------------------------------------------------- calibration.json


class CalibrationRecord(_Record):
    criterion: str
    judge: str | None
    level: str
    metric: str
    against: str | None = None
    value: Number | None
    ci_low: Number | None = None
    ci_high: Number | None = None
    n: int | None = None
    reason: str | None = None


class ConfusionMatrix(_Record):
    criterion: str
    judge: str
    against: str | None = None
    level: str = "item"
    labels: list[str]
    matrix: list[list[int]]


class GateCheck(_Record):
    criterion: str
    judge: str | None
    level: str
    value: Number | None
    passed: bool
    reason: str | None = None


class GateResult(_Record):
    gate: str
    metric: str
    op: str
    threshold: Number
    passed: bool
    checks: list[GateCheck] = []


class Calibration(_Record):
    meta: dict[str, Any] = {}
    results: list[CalibrationRecord] = []
    confusion_matrices: list[ConfusionMatrix] = []
    gates: list[GateResult] | None = None


# ----------------------------------------------------------------------------- audit.json


class AuditRecord(_Record):
    """One flat record of audit.json; `variant` null: all the probe's variants together."""

    probe: str
    variant: str | None = None
    judge: str
    pillar: str
    criterion: str
    metric: str
    value: Number | None
    ci_low: Number | None = None
    ci_high: Number | None = None
    n: int | None = None
    reason: str | None = None


class AuditCoverage(_Record):
    """Pairs per probe × judge: the counts (paired, failed, …) are the extra fields, whatever the probe names."""

    probe: str
    judge: str


class Audit(_Record):
    meta: dict[str, Any] = {}
    results: list[AuditRecord] = []
    coverage: list[AuditCoverage] = []


# ----------------------------------------------------------------------------- directories


@dataclass
class ScoreRun:
    directory: Path
    summary: ScoreSummary | None
    run: dict[str, Any]
    review: list[ReviewEntry]
    review_lines: list[int]


@dataclass
class BenchRun:
    directory: Path
    scorecard: Scorecard | None
    bench: dict[str, Any]
    respond: StageSummary | None
    score: ScoreRun | None
    missing: list[str] = field(default_factory=list)


@dataclass
class CalibrationRun:
    directory: Path
    calibration: Calibration


@dataclass
class AuditRun:
    directory: Path
    audit: Audit
    stages: list[tuple[str, StageSummary]]  # (folder, its summary.json) for score/ and originals/


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ReportError(f"{path}: not found") from exc
    except UnicodeDecodeError as exc:
        raise ReportError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); was the run interrupted? "
                          "Run the command that writes it again") from exc
    except OSError as exc:
        raise ReportError(f"{path}: cannot read ({exc.strerror})") from exc


def _parse(model: type[_Record], data: Any, where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:10]:
            location = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".")
            problems.append(f"{where}: field {location or '(top level)'}: {error['msg']}")
        more = exc.error_count() - len(problems)
        if more > 0:
            problems.append(f"{where}: … and {more} more problem(s)")
        raise ReportError("\n".join(problems)) from exc


def _load(model: type[_Record], path: Path) -> Any:
    return _parse(model, _read_json(path), str(path))


def detect_kind(directory: Path) -> Kind:
    """Which kind of run `directory` holds, judged by the files that only that kind writes."""
    if not directory.is_dir():
        raise ReportError(f"{directory}: not a directory; give the --out folder of `trustmh bench`, "
                          "`trustmh score`, `trustmh calibrate` or `trustmh audit`")
    if (directory / "scorecard.json").is_file() or (directory / "bench.json").is_file():
        return "bench"
    if (directory / "calibration.json").is_file():
        return "calibration"
    if (directory / "audit.json").is_file():
        return "audit"
    if (directory / "summary.json").is_file() and (directory / "verdicts.jsonl").is_file():
        return "score"
    if (directory / "summary.json").is_file() and (directory / "calls.jsonl").is_file():
        raise ReportError(f"{directory}: this is the output of `trustmh respond` (calls.jsonl); report on the "
                          "bench run above it, or score its responses.jsonl first")
    raise ReportError(
        f"{directory}: nothing to report on: expected scorecard.json or bench.json (a bench run), "
        "summary.json with verdicts.jsonl (a score run), calibration.json (a calibration directory) or audit.json "
        "(an audit directory)"
    )


def _review(directory: Path) -> tuple[list[ReviewEntry], list[int]]:
    path = directory / "review.jsonl"
    if not path.is_file():
        return [], []
    try:
        rows = read_jsonl(path)
    except RunDirError as exc:
        raise ReportError(str(exc)) from exc
    return [_parse(ReviewEntry, row, f"{path}:{line}") for line, row in rows], [line for line, _ in rows]


def load_score_run(directory: Path) -> ScoreRun:
    summary_path = directory / "summary.json"
    summary = _load(ScoreSummary, summary_path) if summary_path.is_file() else None
    run_path = directory / "run.json"
    run = _read_json(run_path) if run_path.is_file() else {}
    review, lines = _review(directory)
    return ScoreRun(directory, summary, run if isinstance(run, dict) else {}, review, lines)


def load_bench_run(directory: Path) -> BenchRun:
    missing = []
    scorecard_path, bench_path = directory / "scorecard.json", directory / "bench.json"
    scorecard = _load(Scorecard, scorecard_path) if scorecard_path.is_file() else None
    if scorecard is None:
        missing.append("scorecard.json")
    bench = _read_json(bench_path) if bench_path.is_file() else {}
    respond_path = directory / "respond" / "summary.json"
    respond = _load(StageSummary, respond_path) if respond_path.is_file() else None
    score_dir = directory / "score"
    score = load_score_run(score_dir) if score_dir.is_dir() else None
    return BenchRun(directory, scorecard, bench if isinstance(bench, dict) else {}, respond, score, missing)


def load_calibration(directory: Path) -> CalibrationRun:
    return CalibrationRun(directory, _load(Calibration, directory / "calibration.json"))


AUDIT_STAGES = ("score", "originals")  # the folders `trustmh audit` judges into: variants, then new judges' originals


def load_audit(directory: Path) -> AuditRun:
    stages = [(name, _load(StageSummary, directory / name / "summary.json")) for name in AUDIT_STAGES
              if (directory / name / "summary.json").is_file()]
    return AuditRun(directory, _load(Audit, directory / "audit.json"), stages)
