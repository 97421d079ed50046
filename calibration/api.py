"""`calibrate`: agreement of judges with human annotations as a library call (`judge.calibrate` resolves here).

Every bad argument raises a `judge.errors.TrustMHError` naming its field before anything is written;
`trustmh calibrate` is a thin wrapper that prints the table and exits with the result's code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from calibration.annotations import (
    JUDGED_DATASETS,
    CalibrationData,
    InputError,
    elephant_oeq_items,
    load_dataset,
    read_human,
    read_judged,
)
from judge.errors import ExitCode, InputFileError, UsageError
from judge.rundir import write_jsonl_atomic

if TYPE_CHECKING:
    from calibration.compute import CalibrationResult
    from judge.gates import Gate


@dataclass(frozen=True)
class Calibration:
    """A calibration: every metric's records (`result`), the gates that failed and the files written."""

    out: Path
    exit_code: ExitCode  # GATE when a gate failed
    result: CalibrationResult
    gate_failures: list[str]
    json_path: Path
    markdown_path: Path


def calibrate(
    *,
    out: Path | str,
    human: Path | None = None,
    judged: Path | None = None,
    dataset: str | None = None,
    level: Literal["item", "target"] = "item",
    gates: Sequence[str] = (),
    bootstrap: int = 200,
    seed: int = 0,
    epsilon: float = 0.2,
) -> Calibration:
    """Measure how well judges agree with humans: `human` annotations and `judged` (a `score` run folder or a
    long file), or a registered `dataset`; writes OUT/calibration.json and calibration.md."""
    from calibration.compute import calibrate as compute_agreement
    from calibration.outputs import write_reports
    from judge.gates import gate_failures, gate_results, parse_gate

    if level not in ("item", "target"):
        raise UsageError(f"{level!r}: choose item or target", field="level")
    parsed: list[Gate] = [parse_gate(g) for g in gates]
    data, source = _data(human, judged, dataset)
    shared = {s.criterion for s in data.judged} & {a.criterion for a in data.human}
    if not shared:
        raise InputFileError(f"{judged or dataset}: no criterion is both judged and human-annotated; check the "
                             "criterion names on both sides")
    result = compute_agreement(data, level=level, n_bootstrap=bootstrap, seed=seed, epsilon=epsilon)
    if not result.records:
        raise UsageError(f"{human or dataset}: the target level needs a `target` on the items (which system "
                         "answered)", field="level")
    recorded_gates, unknown = gate_results(result.records, parsed)
    if unknown:
        raise UsageError("; ".join(f"no metric named {name!r} in the results" for name in unknown), field="gate")
    meta = {**source, "level": level, "bootstrap": bootstrap, "seed": seed, "epsilon": epsilon,
            "created": datetime.now(UTC).isoformat(timespec="seconds")}
    json_path, md_path = write_reports(Path(out), result, meta, recorded_gates)
    failures = gate_failures(recorded_gates)
    return Calibration(Path(out), ExitCode.GATE if failures else ExitCode.OK, result, failures, json_path, md_path)


def write_dataset_items(dataset: str | None, path: Path) -> int:
    """The items of a dataset that brings human labels but no judge scores (elephant-oeq), written to `path`
    for `score` to judge; returns how many."""
    if dataset not in JUDGED_DATASETS:
        raise UsageError(f"`write_items=` goes with `dataset=` {', '.join(JUDGED_DATASETS)}")
    items = elephant_oeq_items()
    write_jsonl_atomic(path, items)  # owner-only, like every output
    return len(items)


def _data(human: Path | None, judged: Path | None, dataset: str | None) -> tuple[CalibrationData, dict[str, Any]]:
    """The annotations and judge scores to compare, and where they came from (for calibration.json)."""
    if dataset and human:
        raise UsageError("replaces `human=`: give one or the other", field="dataset")
    if not dataset and not (human and judged):
        raise UsageError("give `human=FILE` and `judged=FILE_OR_RUN_DIR`, or `dataset=NAME`")
    if dataset:
        if judged is not None and not judged.exists():
            raise InputError([f"{judged}: no such file or directory"])
        source = {"dataset": dataset} | ({"judged": str(judged)} if judged else {})
        return load_dataset(dataset, judged), source
    assert human is not None and judged is not None
    problems: list[str] = []
    human_records, judged_records = [], []
    for reader, path, sink in ((read_human, human, human_records), (read_judged, judged, judged_records)):
        if not path.exists():
            problems.append(f"{path}: no such file or directory")
            continue
        try:
            sink.extend(reader(path))
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    return CalibrationData(human_records, judged_records), {"human": str(human), "judged": str(judged)}


# --------------------------------------------------------------------------- validate

VALIDATION_SETS = ("crisis", "empathic", "elephant")
"""The mirror's human-rated sets `validate` judges (names of `datasets=`)."""


@dataclass(frozen=True)
class Validation:
    """A validation: the validity table (`rows`), the gate's failures, the files written, or with a dry run
    the plan of the judge calls (and no table)."""

    out: Path
    exit_code: ExitCode
    items: int
    rows: list[Any]  # calibration.validity.ValidityRow
    gate_failures: list[str]
    files: tuple[Path, ...] = ()
    plan: list[dict[str, Any]] | None = None


def validate(
    *,
    judges: Any,
    out: Path | str,
    datasets: Sequence[str] | None = None,
    annotations: Path | None = None,
    rubric: str | None = None,
    judges_file: Path | None = None,
    rubrics: Path | None = None,
    limit: int | None = None,
    samples: int = 1,
    gate: bool = False,
    tolerance: float | None = None,
    min_items: int | None = None,
    bootstrap: int = 200,
    seed: int = 0,
    epsilon: float = 0.2,
    report: bool = True,
    settings: Any = None,
) -> Validation:
    """Judge the human-rated sets with our rubrics (through `judge.api.score`: cache, resume, batch, dry run)
    and compare each judge with the humans: OUT/summary.json (the validity table), validity.md and, with
    `report`, validity.html; OUT/judged is the score run. `gate`: exit GATE when a critical criterion's
    judge is not as close to the humans as they are to each other (within `tolerance`)."""
    from calibration.validity import DEFAULT_MIN_ITEMS, DEFAULT_TOLERANCE, validity_rows
    from calibration.validity import gate_failures as validity_gate_failures
    from judge import api as judge_api
    from judge.settings import RunSettings

    settings = settings or RunSettings()
    tolerance = DEFAULT_TOLERANCE if tolerance is None else tolerance
    min_items = DEFAULT_MIN_ITEMS if min_items is None else min_items
    if tolerance < 0:
        raise UsageError(f"{tolerance}: must be 0 or more", field="tolerance")
    if min_items < 1:
        raise UsageError(f"{min_items}: must be at least 1", field="min_items")
    if limit is not None and limit < 1:
        raise UsageError(f"{limit}: must be at least 1", field="limit")
    sets = _validation_sets(datasets, annotations, rubric, rubrics, limit)
    items = [item for s in sets for item in s.items]
    out = Path(out)
    judged = out / "judged"
    result = judge_api.score(items, judges=judges, judges_file=judges_file, out=judged, rubrics=rubrics,
                             samples=samples, settings=settings)
    if result.summary is None:  # a dry run
        return Validation(out, ExitCode.OK, result.items, [], [], plan=result.plan)
    from calibration.annotations import CalibrationData
    from calibration.validate import iter_verdicts
    from calibration.validity import disagreements

    rows, worst = [], []
    verdicts = judged / "verdicts.jsonl"
    validated = _validated_settings(judged, {s.pillar for s in sets})
    asked = [judge["name"] for judge in validated["judge_settings"]]
    for s in sets:
        ours = s.to_scores(iter_verdicts(verdicts))
        data = CalibrationData(s.human, ours + s.published, s.scales)
        found = validity_rows(data, dataset=s.name, critical=s.critical,
                              published=frozenset(p.judge for p in s.published), tolerance=tolerance,
                              min_items=min_items, n_bootstrap=bootstrap, seed=seed, epsilon=epsilon, judges=asked)
        measures = {m.criterion: m for m in s.mappings}
        for row in found:
            row.rubric_criterion = measures[row.criterion].rubric_criterion
            row.human_measure = measures[row.criterion].human_measure
        rows += found
        worst += disagreements(data, dataset=s.name, judges=sorted({j.judge for j in ours}))
    failures = validity_gate_failures(rows) if gate else []
    from calibration.validity_outputs import write_validity

    meta = {"judges": sorted(asked), "datasets": [s.name for s in sets],
            "limit": limit, "samples": samples, "tolerance": tolerance, "min_items": min_items,
            "bootstrap": bootstrap, "seed": seed, "epsilon": epsilon, "gate": gate,
            "judged": str(judged), "created": datetime.now(UTC).isoformat(timespec="seconds"),
            **validated}
    files = write_validity(out, rows, worst, sets, meta, failures, verdicts, report=report)
    code = ExitCode.GATE if failures else ExitCode(result.exit_code)
    return Validation(out, code, result.items, rows, failures, files)


def _validated_settings(judged: Path, pillars: set[str]) -> dict[str, Any]:
    """What a bench needs to tell whether its judges were the ones validated (`bench --validity`): each judge's
    settings and the content hashes of the rubrics of the pillars judged, as the score run recorded them."""
    from judge.log import read_score_run

    run = read_score_run(judged).run
    hashes = run.get("rubric_hashes") or {}
    return {"judge_settings": run.get("judges", []),
            "rubric_hashes": {p: hashes[p] for p in sorted(pillars) if p in hashes}}


def _validation_sets(datasets: Sequence[str] | None, annotations: Path | None, rubric: str | None,
                     rubrics: Path | None, limit: int | None) -> list[Any]:
    """The sets to judge: the named mirror sets (all of them unless an annotation file is given) and the file."""
    from calibration.validate import annotations_set, crisis_set, elephant_set, empathic_sets
    from judge.bundled import bundled_path
    from judge.rubric import load_rubric_dir

    if (annotations is None) != (rubric is None):
        raise UsageError("`annotations=` and `rubric=` go together: the file's criteria are the rubric's",
                         field="annotations" if annotations is None else "rubric")
    names = list(datasets) if datasets is not None else ([] if annotations else list(VALIDATION_SETS))
    unknown = [n for n in names if n not in VALIDATION_SETS]
    if unknown:
        raise UsageError(f"{', '.join(unknown)}: choose from {', '.join(VALIDATION_SETS)}", field="datasets")
    known = load_rubric_dir(rubrics or bundled_path("rubrics"))  # a RubricError names the file and line
    sets: list[Any] = []
    for name in dict.fromkeys(names):
        if name == "crisis":
            sets.append(crisis_set())
        elif name == "empathic":
            if "support" not in known:
                raise UsageError("the empathic set is judged with the support rubric, which the rubric folder lacks",
                                 field="rubrics")
            sets += empathic_sets(known["support"])
        else:
            sets.append(elephant_set())
    if annotations is not None:
        if not annotations.is_file():
            raise InputFileError(f"{annotations}: no such file; give a long annotation file (JSONL or CSV)")
        if str(rubric) not in known:
            raise UsageError(f"{rubric}: not a pillar of the rubric folder ({', '.join(sorted(known))}); a rubric of "
                             "your own goes in a folder given with `rubrics=`", field="rubric")
        sets.append(annotations_set(annotations, known[str(rubric)]))
    if not sets:
        raise UsageError("nothing to validate: name datasets or give an annotation file", field="datasets")
    return [s.limited(limit) for s in sets]
