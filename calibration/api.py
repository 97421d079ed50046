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
