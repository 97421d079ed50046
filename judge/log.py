"""Every run file's format, declared once: the writers build these types and every reader (`read_run`, the
HTML report, `trustmh export`) validates through them, so a field cannot be renamed on one side only.

JSON Lines rows (verdicts.jsonl, panel.jsonl) are TypedDicts: the writer builds a plain dict of the declared
type, which costs nothing per row on the judging path, and a reader checks a row with the same declaration
through pydantic. Whole documents (summary.json, scorecard.json, calibration.json, audit.json) and review rows,
written once per run or per escalated row, are pydantic models the writer builds and dumps with `document`.
Every declaration allows fields it does not name, so a newer writer's file still reads.

Core layer: imports nothing of respond, suites, audit, report, cli or calibration. No `from __future__ import
annotations`: the TypedDicts' NotRequired fields must be seen when the class is made (`__required_keys__`).
"""

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Generic, Literal, NotRequired, Required, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict  # pydantic reads typing.TypedDict only from Python 3.12

from judge.errors import FramesMissingError, RunDirError
from judge.rundir import raise_problems, read_jsonl, write_bytes_atomic, write_jsonl_atomic, write_text_atomic

Number = int | float
Kind = Literal["bench", "score", "calibration", "audit", "compare"]
Status = Literal["ok", "not_applicable", "failed"]
FRAMES_INSTALL = "pip install 'trustmh-judge[frames]'"
EXPORT_FORMATS = ("csv", "parquet", "jsonl")

# defer_build: a model's validator is compiled when first used, not when `trustmh score` imports this module
# (which halves the import's 17 ms); the score run then builds only the summary's, once, at its end.
_OPEN = ConfigDict(extra="allow", defer_build=True)


# ----------------------------------------------------------------------------- verdicts.jsonl, panel.jsonl


@with_config(_OPEN)
class VerdictRow(TypedDict):
    """One line of verdicts.jsonl: one criterion of one judge call, with the call's tokens split over its rows."""

    item_id: str
    pillar: str
    criterion: str
    judge: str
    provider: str
    model: str
    role: str  # "panel", "tiebreak", or "recorded" (a published judge's verdict, `trustmh bench --recorded`)
    sample: int
    status: Status
    score: Number | None  # a judge's is an int; a published one may be a float
    rationale: str | None
    evidence: list[str]
    error: str | None
    rubric_hash: str | None  # the four hashes are null for published verdicts: no prompt or request of ours
    criterion_hash: str | None
    prompt_hash: str | None
    request_key: str | None
    cached: bool
    input_tokens: int | None
    output_tokens: int | None
    cached_input_tokens: int | None
    cache_write_tokens: int | None
    cost_usd: Number | None
    batch: bool
    latency_s: Number | None
    target: str | None
    self_family: bool
    meta: dict[str, Any]
    part: NotRequired[str]  # only for a call judging one part of a pillar (masked item, --split-critical)
    reading: NotRequired[dict[str, str]]  # the judge's reading of the risk {category, risk_level} (label_applies)
    evidence_turns: NotRequired[list[int]]  # a conversation criterion's: the turn each evidence quote is from


@with_config(_OPEN)
class Scale(TypedDict):
    min: int
    max: int


@with_config(_OPEN)
class PanelJudge(TypedDict):
    """One judge's samples of one criterion, reduced with the panel's method, as a panel row holds it."""

    model: str | None
    self_family: bool
    excluded: bool  # dropped by exclude_self (same family as the target)
    status: Status  # of the reduced samples
    score: Number | None  # the reduced samples
    sample_spread: int | None  # max − min of its ok samples
    samples: list[int]  # sample indices; scores and statuses are aligned with them
    scores: list[int | None]  # null where the sample is not ok
    statuses: list[Status]


@with_config(_OPEN)
class PanelRow(TypedDict):
    """One line of panel.jsonl: the panel's decision on one item × pillar × criterion (see judge.panel for how)."""

    item_id: str
    pillar: str
    criterion: str
    severity: str  # severity, scale, fail_below: from the rubric
    scale: Scale
    fail_below: int | None
    target: str | None  # the system that produced the response
    method: str  # method, min_judges: the aggregation settings used
    min_judges: int
    status: Literal["decided", "undecided", "not_applicable"]
    score: Number | None  # the aggregate (int when whole, else rounded to 4 places); null unless decided
    critical_fail: bool | None  # critical criteria: aggregate < fail_below; null otherwise or undecided
    decided_by: Literal["panel", "tiebreak"]
    judges: dict[str, PanelJudge]  # panel judges by name
    tiebreak: dict[str, PanelJudge]  # tie-breaker judges by name ({} when none)
    n_judges: int  # panel judges with any verdict on the row
    n_ok: int  # judges taking part that scored
    n_not_applicable: int  # judges taking part that said n/a
    n_failed: int  # judges with only failed samples
    n_excluded: int  # judges dropped as own-family
    n_failed_samples: int  # failed verdicts among all panel samples
    self_family_judges: list[str]  # panel judges of the target's family
    spread: Number | None  # max − min of the scoring judges' scores
    spread_threshold: int  # disagreement threshold in scale points (judge.panel.spread_threshold_points)
    vote_margin: int | None  # votes for the most common judge score minus the runner-up's
    agreement: bool | None  # false on any disagreement or split; null when fewer than two judgments compared
    escalate: bool  # whether a human should look
    # why: "undecided", "disagreement" (spread ≥ threshold), "inconsistent_samples" (one judge's samples spread
    # ≥ threshold), "applicability_split" (some judges n/a, others scored), "critical_split" (a critical
    # criterion the panel does not fail while a sample of a judge taking part scored below fail_below)
    escalate_reasons: list[str]


# ----------------------------------------------------------------------------- review.jsonl


class Record(BaseModel):
    model_config = _OPEN


@with_config(_OPEN)
class ReviewJudgment(TypedDict, total=False):
    """One judge's sample on an escalated row; the writer sets every field, a reader needs only `judge` (a
    hand-edited review line still shows)."""

    judge: Required[str]
    role: str
    model: str | None
    sample: int
    status: Status
    score: int | None
    rationale: str | None
    evidence: list[str]
    error: str | None
    self_family: bool
    excluded: bool


class ReviewRow(Record):
    """One line of review.jsonl: everything a clinician needs to decide one escalated panel row."""

    item_id: str
    pillar: str
    criterion: str
    severity: str | None = None
    question: str | None = None
    scale: dict[str, int] | None = None
    anchors: dict[str, str] = {}
    fail_below: int | None = None
    target: str | None = None
    messages: list[dict[str, Any]] = []
    response: str | None = None
    reference: str | None = None
    panel: dict[str, Any] = {}
    escalate_reasons: list[str] = []
    why: list[str] = []
    judgments: list[ReviewJudgment] = []


# ----------------------------------------------------------------------------- summary.json (both stages)


class Tokens(Record):
    input: int | None = None
    output: int | None = None
    cached_input: int | None = None
    cache_write: int | None = None


class ReplicaUse(Record):
    url: str  # without credentials
    requests: int
    failures: int


class StageSummary(Record):
    """The parts every stage summary shares: `respond/summary.json` (target calls), `summary.json` (judge calls)."""

    calls: dict[str, int | None] = {}
    failures_by_reason: dict[str, int] = {}
    tokens: Tokens | None = Field(default=None, validation_alias=AliasChoices("tokens_this_run", "tokens"),
                                  serialization_alias="tokens_this_run")
    cost_usd: Number | None = Field(default=None, validation_alias=AliasChoices("cost_usd_this_run", "cost_usd"),
                                    serialization_alias="cost_usd_this_run")
    # Calls whose cost is not in cost_usd, and why: {"failed": failed with no known cost, "unpriced": answered
    # by a model with no price set}.
    calls_without_cost: dict[str, int] = {}
    wall_time_s: Number | None = None
    # The mocks among the targets or judges, each with the note that it is not a model (`mock:` specs).
    not_a_model: dict[str, str] = {}
    # Judges or targets with replica base URLs: per replica, the requests this process sent and those that
    # got no answer (docs/self-hosted.md). Set only when a replica was used.
    replicas: dict[str, list[ReplicaUse]] = {}

    def set_replicas(self, used: dict[str, list[dict[str, Any]]]) -> None:
        """Set `replicas` from the counts of `judge.calls.runner.replica_use`, when there are any (a summary
        without replicas keeps its shape)."""
        if used:
            self.replicas = {name: [ReplicaUse.model_validate(c) for c in counts] for name, counts in used.items()}


class RespondSummary(StageSummary):
    """respond/summary.json of `trustmh respond` (and a bench run's respond stage)."""

    prompts: int | None = None
    targets: list[str] = []
    per_target: dict[str, dict[str, int]] = {}
    recorded: str | None = None  # `trustmh bench --recorded NAME`: the published run the answers come from


class MeanScore(Record):
    pillar: str
    target: str | None
    criterion: str
    judge: str
    mean: Number | None
    n: int
    not_applicable: int = 0
    failed: int = 0


class CriticalRate(Record):
    pillar: str
    target: str | None
    judge: str
    rate: Number
    n: int


class LabelConfusion(Record):
    field: str  # "category" or "level"
    label: str
    read: str  # what the judge read instead
    n: int


class LabelAgreementRecord(Record):
    """Per pillar × judge: how often the judge's reading of the risk differed from the item's risk label."""

    pillar: str
    judge: str
    category_n: int = 0  # readings of labelled items compared on the category
    category_disagree: int = 0
    category_share: Number | None = None
    level_n: int = 0  # ... on the risk level (only labels that give one)
    level_disagree: int = 0
    level_share: Number | None = None
    confusions: list[LabelConfusion] = []


class PairwiseQwk(Record):
    judges: list[str]
    qwk: Number | None
    n: int


class SelfConsistency(Record):
    judge: str
    n_samples: int
    n_items: int
    alpha_ordinal: Number | None
    all_agree_share: Number | None


class Agreement(Record):
    pillar: str
    criterion: str
    judges: list[str]
    n_items: int
    n_units: int
    alpha_ordinal: Number | None
    pairwise_qwk: list[PairwiseQwk] = []
    self_consistency: list[SelfConsistency] = []


class SelfPreference(Record):
    judge: str
    model: str | None = None
    family: str | None = None
    normalized: bool = False
    n_own: int
    mean_own: Number | None
    n_other: int
    mean_other: Number | None
    difference: Number | None


class PanelCounts(Record):
    rows: int
    decided: int
    undecided: int
    not_applicable: int
    critical_fail: int
    escalated: int
    decided_by_tiebreak: int = 0


class ScoreSummary(StageSummary):
    """summary.json of `trustmh score`: counts, tokens and cost, and the statistics of the verdicts."""

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
    label_agreement: list[LabelAgreementRecord] = []
    split_critical: bool = False  # each critical criterion judged in a call of its own (the halo check)


# ----------------------------------------------------------------------------- scorecard.json


class ScorecardResult(Record):
    target: str
    pillar: str | None = None
    suite: str
    metric: str
    value: Number | None
    ci_low: Number | None = None
    ci_high: Number | None = None
    n: int | None = None
    se: Number | None = None
    small_n: bool = False  # the value rests on fewer than `Scorecard.small_n_below` prompts
    higher_is_better: bool | None = None
    source: str | None = None
    group: str | None = None
    reason: str | None = None
    protocol: str | None = None  # "paper" (the authors' protocol) or "rubric" (ours)


class SuiteRanks(Record):
    metric: str | None = None
    ranks: dict[str, Number] = {}


class Unparsed(Record):
    target: str
    suite: str
    id: str
    answer: str | None = None


class ReaskCount(Record):
    """The paper protocol's re-asks of one target on one suite whose authors ask again until their reader
    accepts the answer (bounded here by `max_reasks`)."""

    target: str
    suite: str
    max_reasks: int
    answers: int  # answered calls of the suite
    reasked: int  # answers asked again at least once
    reasks: int  # re-ask calls made
    unparsable: int  # answers the authors' reader still rejects after the re-asks (read as 0, listed in unparsed)


class Scorecard(Record):
    results: list[ScorecardResult] = []
    ranks: dict[str, SuiteRanks] = {}
    pillar_ranks: dict[str, dict[str, Number]] = {}
    unparsed: list[Unparsed] = []
    seed: int | None = None
    bootstrap: int | None = None
    not_a_model: dict[str, str] = {}  # mock targets and judges whose answers or verdicts it holds
    small_n_below: int | None = None  # the small-n threshold (judge.stats.bootstrap.SMALL_N) results are marked by
    protocol: str | None = None  # the run's protocol (--protocol)
    published: dict[str, Any] | None = None  # recorded runs: each published figure beside ours
    reasks: list[ReaskCount] = []  # set only when the run re-asked (paper protocol, judge.suites.reask)
    suite_notes: dict[str, list[str]] = {}  # suite -> where it departs from the paper (judge/suites/provenance.py)


# ----------------------------------------------------------------------------- calibration.json


class CalibrationRecord(Record):
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
    small_n: bool = False  # an interval over fewer than 30 units (judge.stats.bootstrap.SMALL_N)


class ConfusionMatrix(Record):
    criterion: str
    judge: str
    against: str | None = None
    level: str = "item"
    labels: list[str]
    matrix: list[list[int]]
    rows: str = "judge"
    columns: str = "human"


class GateCheck(Record):
    criterion: str
    judge: str | None
    level: str
    value: Number | None
    passed: bool
    reason: str | None = None


class GateResult(Record):
    gate: str
    metric: str
    op: str
    threshold: Number
    passed: bool
    checks: list[GateCheck] = []


class Calibration(Record):
    meta: dict[str, Any] = {}
    results: list[CalibrationRecord] = []
    confusion_matrices: list[ConfusionMatrix] = []
    gates: list[GateResult] | None = None


# ----------------------------------------------------------------------------- audit.json


class AuditRecord(Record):
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
    small_n: bool = False  # an interval over fewer than 30 pairs (judge.stats.bootstrap.SMALL_N)


class AuditCoverage(Record):
    """Pairs per probe × judge: the counts (paired, failed, …) are the extra fields, whatever the probe names."""

    probe: str
    judge: str


class Audit(Record):
    meta: dict[str, Any] = {}
    results: list[AuditRecord] = []
    coverage: list[AuditCoverage] = []


# ----------------------------------------------------------------------------- compare.json


class CompareRunFacts(Record):
    """What a compared run was made with, as its run.json records it (null where it does not say)."""

    directory: str
    kind: str  # "score", or "bench" (its score/ stage is compared)
    source: str  # the file its scores are read from: panel.jsonl (a panel's decisions) or verdicts.jsonl
    version: str | None = None
    started_at: str | None = None
    judges: list[str] = []
    models: list[str] = []
    panel_method: str | None = None
    samples: int | None = None
    rubric_hashes: dict[str, str] = {}
    criterion_hashes: dict[str, dict[str, str]] = {}
    template_hash: str | None = None
    crisis_resources_version: str | None = None


class CriterionChange(Record):
    """One pillar × criterion of a comparison: B − A over the units (item × target) scored in both runs."""

    pillar: str
    criterion: str
    in_a: bool
    in_b: bool
    criterion_changed: bool | None  # the criterion's hash differs between the runs' rubrics (null: unknown)
    units_a: int
    units_b: int
    only_a: int  # units in run A only
    only_b: int
    status_changed: int  # units in both whose status differs (scored in one run, n/a or undecided in the other)
    n: int  # units scored in both: the pairs
    mean_a: Number | None
    mean_b: Number | None
    mean_difference: Number | None
    ci_low: Number | None
    ci_high: Number | None
    small_n: bool
    changed: int
    moved_up: int
    moved_down: int
    changed_share: Number | None
    wilcoxon_statistic: Number | None
    wilcoxon_p: Number | None
    critical: bool  # a critical criterion in either run (it has a fail line)
    failing_a: int | None = None  # of the pairs whose pass/fail is known in both runs
    failing_b: int | None = None
    pass_to_fail: int | None = None
    fail_to_pass: int | None = None
    gate_unknown: int = 0  # pairs of a critical criterion whose pass/fail one run cannot tell


class UnitChange(Record):
    """One item × target × pillar × criterion that differs between the runs, or is in one of them only."""

    item_id: str
    target: str | None
    pillar: str
    criterion: str
    change: Literal["moved", "status", "only_a", "only_b", "gate"]
    status_a: str | None
    score_a: Number | None
    critical_fail_a: bool | None
    status_b: str | None
    score_b: Number | None
    critical_fail_b: bool | None
    difference: Number | None
    gate: Literal["pass_to_fail", "fail_to_pass"] | None = None


class GateFlip(Record):
    """An item × target whose pillar verdict (fails any critical criterion) differs between the runs."""

    item_id: str
    target: str | None
    pillar: str
    failing_a: bool
    failing_b: bool
    criteria: list[str]  # the critical criteria whose own pass/fail flipped


class PillarGates(Record):
    pillar: str
    n: int  # items × targets whose pillar verdict is known in both runs
    failing_a: int
    failing_b: int
    pass_to_fail: int
    fail_to_pass: int


class Comparison(Record):
    """compare.json of `trustmh compare A B`: which scores moved from run A to run B, and how much."""

    meta: dict[str, Any] = {}
    runs: dict[str, CompareRunFacts] = {}  # "a" and "b"
    criteria: list[CriterionChange] = []
    pillars: list[PillarGates] = []
    gate_flips: list[GateFlip] = []
    changes: list[UnitChange] = []
    items_only_a: list[dict[str, Any]] = []  # {item_id, target}: items × targets run B does not have at all
    items_only_b: list[dict[str, Any]] = []


def document(model: BaseModel) -> dict[str, Any]:
    """What a writer puts in the file: the fields it set (a default it left out stays out), by their file names."""
    return model.model_dump(by_alias=True, exclude_unset=True)


# ----------------------------------------------------------------------------- reading


_NUMBER_MEMBERS = ("int", "float")  # pydantic reports a Number (int | float) once per member


def _problems(exc: ValidationError, where: str) -> list[str]:
    """`where: field a.b[2]: problem`, one line for each field at fault."""
    found: dict[str, str] = {}
    for error in exc.errors():
        loc = error["loc"][:-1] if len(error["loc"]) > 1 and error["loc"][-1] in _NUMBER_MEMBERS else error["loc"]
        location = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        found[location or "(top level)"] = error["msg"]  # of a Number, the last member's: "a valid number"
    return [f"{where}: field {location}: {message}" for location, message in found.items()]


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RunDirError(f"{path}: not found") from exc
    except UnicodeDecodeError as exc:
        raise RunDirError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); was the run interrupted? "
                          "Run the command that writes it again") from exc
    except OSError as exc:
        raise RunDirError(f"{path}: cannot read ({exc.strerror})") from exc


M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")


def read_document(model: type[M], path: Path) -> M:
    """A JSON file checked against its model; RunDirError names the file and every field at fault."""
    try:
        return model.model_validate(read_json(path))
    except ValidationError as exc:
        raise_problems(_problems(exc, str(path)))
        raise


def read_rows(row_type: type[R], path: Path) -> list[tuple[int, R]]:
    """(line number, checked row) for each line of a JSON Lines file; every bad line is reported at once,
    as `FILE:LINE: field NAME: problem`."""
    adapter: TypeAdapter[R] = _adapter(row_type)
    rows, problems = [], []
    for line, raw in read_jsonl(path):
        try:
            rows.append((line, adapter.validate_python(raw)))
        except ValidationError as exc:
            problems += _problems(exc, f"{path}:{line}")
    raise_problems(problems)
    return rows


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter(row_type: Any) -> TypeAdapter[Any]:
    if row_type not in _ADAPTERS:  # building one compiles a validator: once per type
        _ADAPTERS[row_type] = TypeAdapter(row_type)
    return _ADAPTERS[row_type]


# ----------------------------------------------------------------------------- tables


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as exc:
        raise FramesMissingError(f"data frames need pandas, an optional extra: {FRAMES_INSTALL}") from exc
    return pandas


class Table(Generic[R]):
    """One table of a run (a JSON Lines file, or the records of a JSON document), read and checked on first
    use; a file the run did not write is an empty table."""

    def __init__(self, name: str, source: Path, load: Callable[[], list[tuple[int, R]]]) -> None:
        self.name, self.source, self._load = name, source, load

    @classmethod
    def jsonl(cls, name: str, path: Path, row_type: type[R]) -> "Table[R]":
        return cls(name, path, lambda: read_rows(row_type, path) if path.is_file() else [])

    @cached_property
    def _numbered(self) -> list[tuple[int, R]]:
        return self._load()

    @property
    def rows(self) -> list[R]:
        return [row for _, row in self._numbered]

    @property
    def lines(self) -> list[int]:
        """Each row's line in its file (for a JSON document: its index in the list)."""
        return [line for line, _ in self._numbered]

    def __iter__(self) -> Iterator[R]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self._numbered)

    def records(self) -> list[dict[str, Any]]:
        """The rows as plain dicts: a document's records with every declared field (null where the file has none),
        so that each table has the same columns on every row."""
        return [row.model_dump(by_alias=True) if isinstance(row, BaseModel) else dict(row) for row in self.rows]

    def to_pandas(self) -> Any:
        """A pandas DataFrame, one column per field; nested fields stay Python objects (needs the frames extra)."""
        return _pandas().DataFrame.from_records(self.records())

    def export(self, path: Path, fmt: str) -> None:
        """Write the table as csv, parquet or jsonl, owner-only; in csv and parquet a nested field (a list or an
        object) is one JSON text cell."""
        if fmt == "jsonl":
            write_jsonl_atomic(path, self.records())
            return
        frame = _pandas().DataFrame.from_records([
            {k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v for k, v in r.items()}
            for r in self.records()
        ])
        if fmt == "csv":
            write_text_atomic(path, [frame.to_csv(index=False)])
        elif fmt == "parquet":
            try:
                import pyarrow  # noqa: F401  (pandas' parquet engine)
            except ImportError as exc:
                raise FramesMissingError(f"parquet needs pyarrow, an optional extra: {FRAMES_INSTALL}") from exc
            buffer = io.BytesIO()
            frame.to_parquet(buffer, index=False)
            write_bytes_atomic(path, buffer.getvalue())
        else:
            raise ValueError(f"format {fmt!r}: expected one of {', '.join(EXPORT_FORMATS)}")


def _listed(name: str, path: Path, records: Callable[[], list[R]]) -> Table[R]:
    return Table(name, path, lambda: list(enumerate(records())))


# ----------------------------------------------------------------------------- run folders


@dataclass
class ScoreRun:
    """A `trustmh score --out DIR`: summary.json, run.json, and the verdict, panel and review tables."""

    directory: Path
    summary: ScoreSummary | None
    run: dict[str, Any]
    verdicts: Table[VerdictRow]
    panel: Table[PanelRow]
    review: Table[ReviewRow]
    kind: Kind = "score"

    def tables(self) -> dict[str, Table[Any]]:
        return {"verdicts": self.verdicts, "panel": self.panel, "review": self.review}


@dataclass
class BenchRun:
    """A `trustmh bench` folder: scorecard.json and bench.json, with its respond/ and score/ stages."""

    directory: Path
    scorecard: Scorecard | None
    bench: dict[str, Any]
    respond: RespondSummary | None
    score: ScoreRun | None
    missing: list[str] = field(default_factory=list)
    kind: Kind = "bench"

    def tables(self) -> dict[str, Table[Any]]:
        card = self.scorecard
        own = {"scorecard": _listed("scorecard", self.directory / "scorecard.json",
                                    lambda: card.results if card else [])}
        return {**own, **(self.score.tables() if self.score else {})}


@dataclass
class CalibrationRun:
    directory: Path
    calibration: Calibration
    kind: Kind = "calibration"

    def tables(self) -> dict[str, Table[Any]]:
        path, doc = self.directory / "calibration.json", self.calibration
        return {"calibration": _listed("calibration", path, lambda: doc.results),
                "confusion": _listed("confusion", path, lambda: doc.confusion_matrices)}


@dataclass
class AuditRun:
    directory: Path
    audit: Audit
    stages: list[tuple[str, ScoreSummary]]  # (folder, its summary.json) for score/ and originals/
    kind: Kind = "audit"

    def tables(self) -> dict[str, Table[Any]]:
        path, doc = self.directory / "audit.json", self.audit
        return {"audit": _listed("audit", path, lambda: doc.results),
                "coverage": _listed("coverage", path, lambda: doc.coverage),
                **{f"{name}_verdicts": Table.jsonl(f"{name}_verdicts", self.directory / name / "verdicts.jsonl",
                                                   VerdictRow) for name, _ in self.stages}}


@dataclass
class CompareRun:
    """A `trustmh compare A B --out DIR` folder: compare.json (and compare.md)."""

    directory: Path
    comparison: Comparison
    kind: Kind = "compare"

    def tables(self) -> dict[str, Table[Any]]:
        path, doc = self.directory / "compare.json", self.comparison
        return {"criteria": _listed("criteria", path, lambda: doc.criteria),
                "changes": _listed("changes", path, lambda: doc.changes),
                "gate_flips": _listed("gate_flips", path, lambda: doc.gate_flips)}


Run = ScoreRun | BenchRun | CalibrationRun | AuditRun | CompareRun
AUDIT_STAGES = ("score", "originals", "halo")  # folders `trustmh audit` judges into: variants, new judges'
# originals, and the halo probe's second judging of the originals (split calls, or one call per pillar)


def detect_kind(directory: Path) -> Kind:
    """Which kind of run `directory` holds, judged by the files that only that kind writes."""
    if not directory.is_dir():
        raise RunDirError(f"{directory}: not a directory; give the --out folder of `trustmh bench`, "
                          "`trustmh score`, `trustmh calibrate` or `trustmh audit`")
    if (directory / "scorecard.json").is_file() or (directory / "bench.json").is_file():
        return "bench"
    if (directory / "calibration.json").is_file():
        return "calibration"
    if (directory / "audit.json").is_file():
        return "audit"
    if (directory / "compare.json").is_file():
        return "compare"
    if (directory / "summary.json").is_file() and (directory / "verdicts.jsonl").is_file():
        return "score"
    if (directory / "summary.json").is_file() and (directory / "calls.jsonl").is_file():
        raise RunDirError(f"{directory}: this is the output of `trustmh respond` (calls.jsonl); give the "
                          "bench run above it, or score its responses.jsonl first")
    raise RunDirError(
        f"{directory}: nothing to report on: expected scorecard.json or bench.json (a bench run), "
        "summary.json with verdicts.jsonl (a score run), calibration.json (a calibration directory), audit.json "
        "(an audit directory) or compare.json (a comparison)"
    )


def _optional(model: type[M], path: Path) -> M | None:
    return read_document(model, path) if path.is_file() else None


def _object(path: Path) -> dict[str, Any]:
    data = read_json(path) if path.is_file() else {}
    return data if isinstance(data, dict) else {}


def read_score_run(directory: Path) -> ScoreRun:
    return ScoreRun(directory, _optional(ScoreSummary, directory / "summary.json"), _object(directory / "run.json"),
                    Table.jsonl("verdicts", directory / "verdicts.jsonl", VerdictRow),
                    Table.jsonl("panel", directory / "panel.jsonl", PanelRow),
                    Table.jsonl("review", directory / "review.jsonl", ReviewRow))


def read_run(directory: Path) -> Run:
    """The run in `directory`, whatever its kind; documents are read now, tables on first use. Errors are
    RunDirError naming the file, line and field."""
    directory = Path(directory)
    kind = detect_kind(directory)
    if kind == "score":
        return read_score_run(directory)
    if kind == "bench":
        scorecard = _optional(Scorecard, directory / "scorecard.json")
        score = directory / "score"
        return BenchRun(directory, scorecard, _object(directory / "bench.json"),
                        _optional(RespondSummary, directory / "respond" / "summary.json"),
                        read_score_run(score) if score.is_dir() else None,
                        [] if scorecard else ["scorecard.json"])
    if kind == "calibration":
        return CalibrationRun(directory, read_document(Calibration, directory / "calibration.json"))
    if kind == "compare":
        return CompareRun(directory, read_document(Comparison, directory / "compare.json"))
    stages = [(name, read_document(ScoreSummary, directory / name / "summary.json")) for name in AUDIT_STAGES
              if (directory / name / "summary.json").is_file()]
    return AuditRun(directory, read_document(Audit, directory / "audit.json"), stages)
