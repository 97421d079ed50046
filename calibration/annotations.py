"""Human annotations and judge scores in long format (one record per score): readers, and dataset loaders.

Long format, one record per score:
- human: ``item_id, criterion, rater, score`` (+ optional ``pillar``, ``target``);
- judge: ``item_id, criterion, judge, score`` (+ optional ``sample``, ``target``), or a ``trustmh score`` run
  directory whose ``verdicts.jsonl`` lines with status "ok" are used.

Categorical criteria (the crisis labels) are coded as the index of the label in ``Scale.labels`` so every
statistic works on numbers; the scale keeps the names for reports.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from judge.datasets import dataset_file
from judge.errors import InputFileError
from judge.rundir import JsonlError, parse_jsonl


class InputError(InputFileError, ValueError):
    """Bad calibration input; ``problems`` holds one ``FILE:LINE: what is wrong`` message each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Annotation:
    item_id: str
    criterion: str
    rater: str
    score: float
    target: str | None = None
    pillar: str | None = None


@dataclass(frozen=True)
class JudgeScore:
    item_id: str
    criterion: str
    judge: str
    score: float
    sample: int = 0
    target: str | None = None


@dataclass(frozen=True)
class Scale:
    """How a criterion is measured: ordinal scores, or nominal labels coded 0..len(labels)-1."""

    kind: Literal["ordinal", "nominal"] = "ordinal"
    labels: tuple[str, ...] = ()


@dataclass
class CalibrationData:
    human: list[Annotation]
    judged: list[JudgeScore]
    scales: dict[str, Scale] = field(default_factory=dict)

    def scale(self, criterion: str) -> Scale:
        return self.scales.get(criterion, Scale())


MAX_PROBLEMS = 50

# --------------------------------------------------------------------------- long-format readers


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """Yield (line number, record) from JSONL or CSV; a string record is a parse problem."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise InputError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise InputError([f"{path}:{line}: not valid UTF-8 (byte {exc.start}); save the file as UTF-8"]) from exc
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))  # str.splitlines would also split at U+2028
        for row in reader:
            yield reader.line_num, {k.strip(): v for k, v in row.items() if k is not None}
        return
    problems: list[JsonlError] = []
    records: list[tuple[int, dict[str, Any] | str]] = list(parse_jsonl(text, str(path), problems))
    yield from sorted(records + [(p.line, p.problem) for p in problems], key=lambda entry: entry[0])


def _text(record: dict[str, Any], name: str, required: bool = True) -> str | None:
    value = record.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValueError(f"missing field {name!r}")
        return None
    if not isinstance(value, str | int):
        raise ValueError(f"field {name!r} must be a string, got {type(value).__name__}")
    return str(value).strip()


def _number(record: dict[str, Any], name: str) -> float:
    value = record.get(name)
    if isinstance(value, bool) or value is None or value == "":
        raise ValueError(f"field {name!r} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond a double's range
        raise ValueError(f"field {name!r} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"field {name!r} must be a finite number, got {value!r}")
    return number


def _collect(path: Path, build: Any) -> list[Any]:
    out: list[Any] = []
    problems: list[str] = []
    for number, record in _records(path):
        if isinstance(record, str):
            problems.append(f"{path}:{number}: {record}")
        else:
            try:
                built = build(record)
            except ValueError as exc:
                problems.append(f"{path}:{number}: {exc}")
            else:
                if built is not None:
                    out.append(built)
        if len(problems) >= MAX_PROBLEMS:
            problems.append(f"{path}: stopped after {MAX_PROBLEMS} problems")
            break
    if problems:
        raise InputError(problems)
    if not out:
        raise InputError([f"{path}: no scores found (expected long-format JSONL or CSV records)"])
    return out


def _check_duplicates(path: Path, keys: list[tuple[str, ...]], what: str) -> None:
    seen: set[tuple[str, ...]] = set()
    problems = []
    for key in keys:
        if key in seen:
            problems.append(f"{path}: duplicate {what} {key}; each must appear once")
        seen.add(key)
        if len(problems) >= MAX_PROBLEMS:
            break
    if problems:
        raise InputError(problems)


def read_human(path: Path) -> list[Annotation]:
    """Human annotations from a long JSONL/CSV file.

    A `score` given as null (or an empty CSV cell) means the rater gave no score — for instance the
    criterion did not apply — and the record is skipped; a record without a `score` field is an error.
    """

    def build(record: dict[str, Any]) -> Annotation | None:
        if "score" in record and record["score"] in (None, ""):
            return None
        return Annotation(item_id=_text(record, "item_id"), criterion=_text(record, "criterion"),
                          rater=_text(record, "rater"), score=_number(record, "score"),
                          target=_text(record, "target", False), pillar=_text(record, "pillar", False))

    annotations = _collect(path, build)
    _check_duplicates(path, [(a.item_id, a.criterion, a.rater) for a in annotations], "(item_id, criterion, rater)")
    return annotations


def read_judged(path: Path) -> list[JudgeScore]:
    """Judge scores from a ``trustmh score`` run directory or a long JSONL/CSV file."""
    if path.is_dir():
        verdicts = path / "verdicts.jsonl"
        if not verdicts.is_file():
            raise InputError([f"{path}: a run directory must contain verdicts.jsonl"])

        def build_verdict(record: dict[str, Any]) -> JudgeScore | None:
            if record.get("status") != "ok":
                return None
            sample = record.get("sample", 0)
            if isinstance(sample, bool) or not isinstance(sample, int):
                raise ValueError(f"field 'sample' must be an integer, got {sample!r}")
            return JudgeScore(item_id=_text(record, "item_id"), criterion=_text(record, "criterion"),
                              judge=_text(record, "judge"), score=_number(record, "score"), sample=sample,
                              target=_text(record, "target", False))

        scores = _collect(verdicts, build_verdict)
        path = verdicts
    else:

        def build(record: dict[str, Any]) -> JudgeScore:
            raw_sample = record.get("sample")
            sample = 0 if raw_sample in (None, "") else _number(record, "sample")
            if sample != int(sample):
                raise ValueError(f"field 'sample' must be an integer, got {raw_sample!r}")
            return JudgeScore(item_id=_text(record, "item_id"), criterion=_text(record, "criterion"),
                              judge=_text(record, "judge"), score=_number(record, "score"), sample=int(sample),
                              target=_text(record, "target", False))

        scores = _collect(path, build)
    _check_duplicates(path, [(s.item_id, s.criterion, s.judge, str(s.sample)) for s in scores],
                      "(item_id, criterion, judge, sample)")
    return scores


# --------------------------------------------------------------------------- llms-mental-health-crisis

CRISIS = "llms-mental-health-crisis"
CRISIS_LABELS = ("anxiety_crisis", "no_crisis", "risk_taking_behaviours", "self-harm",
                 "substance_abuse_or_withdrawal", "suicidal_ideation", "violent_thoughts", "")
CRISIS_SAMPLED = "data/llm_evaluator/sampled/sampled_lowest_scores_n200.json"
CRISIS_VALIDATION_ID = "sampled_dataset_n_200_merged_n50-noSeed_156-s42"
CRISIS_HUMAN_SCORES = {"H1": "data/human_label/H1_scores_n206_s42.json",
                       "H2": "data/human_label/H2_scores_n206_s42.json"}
CRISIS_HUMAN_LABELS = {"H1": "data/human_label/H1_labeled_n206_s42.json",
                       "H2": "data/human_label/H2_labeled_n206_s42.json",
                       "H3": "data/human_label/H3_labeled_n206_s42.json",
                       "H4": "data/human_label/H4_labelled_n206_s42.json"}
# Judge name used here -> (file-name prefix of its label runs, folder of its evaluation runs).
CRISIS_JUDGES = {"gpt-4o-mini": ("gpt-4o-mini", "gpt-4o-mini"),
                 "gpt-5-nano": ("gpt-5-nano", "gpt-5-nano"),
                 "Llama-4-Scout": ("meta-llama-Llama-4-Scout-17B-16E-Instruct", "meta-llama")}


def _load_json(dataset: str, path: str) -> Any:
    return json.loads(dataset_file(dataset, path).read_text(encoding="utf-8"))


def _valid(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _answer_key(inputs: Any, answer: Any) -> str:
    """The authors' join key for an answer: normalised conversation turns plus normalised answer."""

    def norm(text: Any) -> str:
        return "" if text is None else str(text).replace("\r\n", "\n").strip()

    turns = [norm(x) for x in inputs] if isinstance(inputs, list) else [norm(inputs)]
    return json.dumps(turns, ensure_ascii=False) + "||" + norm(answer)


def _crisis_item_id(index: int) -> str:
    # dataset_id is not unique in the sample (25 distinct values for 206 posts): the position is the key.
    return f"crisis-{index:03d}"


def load_crisis() -> CalibrationData:
    """The crisis dataset: 1-5 appropriateness (H1, H2 vs judges) and crisis labels (H1-H4 vs LLM labelers).

    Every upstream file lists the same 206 posts in the same order (the authors align them by position
    and check it); this loader checks that the conversations match before pairing anything.
    """
    from judge.datasets import get_dataset

    dataset = get_dataset(CRISIS)
    sampled = _load_json(CRISIS, CRISIS_SAMPLED)
    targets = [str(x.get("sampled_from", "")).split("-answers-")[0].split("-evaluation_")[-1] or None
               for x in sampled]
    human: list[Annotation] = []
    judged: list[JudgeScore] = []

    def check_aligned(path: str, rows: list[dict[str, Any]], compare_inputs: bool) -> None:
        if len(rows) != len(sampled):
            raise InputError([f"{path}: {len(rows)} records, expected {len(sampled)} as in {CRISIS_SAMPLED}"])
        if compare_inputs:
            for index, (row, ref) in enumerate(zip(rows, sampled, strict=True)):
                if row.get("inputs") != ref.get("inputs"):
                    raise InputError([f"{path}: record {index} is a different conversation than {CRISIS_SAMPLED}"])

    for rater, path in CRISIS_HUMAN_SCORES.items():
        rows = _load_json(CRISIS, path)
        check_aligned(path, rows, compare_inputs=False)
        human += [Annotation(_crisis_item_id(i), "appropriateness", rater, float(r["evaluation"]), targets[i])
                  for i, r in enumerate(rows) if _valid(r.get("evaluation"))]
    for rater, path in CRISIS_HUMAN_LABELS.items():
        rows = _load_json(CRISIS, path)
        check_aligned(path, rows, compare_inputs=True)
        human += [Annotation(_crisis_item_id(i), "crisis_label", rater, float(CRISIS_LABELS.index(r["label"])))
                  for i, r in enumerate(rows)]

    # Appropriateness: each judge's three runs are the samples; the item-level judge score (the mean
    # of the runs) is then exactly the authors' recorded `evaluation`.
    for i, row in enumerate(sampled):
        for sample, value in enumerate(row.get("evals") or []):
            if _valid(value):
                judged.append(JudgeScore(_crisis_item_id(i), "appropriateness", "gpt-4o-mini", float(value),
                                         sample, targets[i]))
    for judge, (_, folder) in CRISIS_JUDGES.items():
        if judge == "gpt-4o-mini":
            continue
        extracted = _load_json(CRISIS, f"data/llm_evaluator/sampled/sampled_lowest_scores_n200__{folder}.json")
        check_aligned(folder, extracted, compare_inputs=True)
        runs: dict[str, dict[str, Any]] = {}
        for source in sorted({x["source_file"] for x in extracted if x.get("source_file")}):
            for record in _load_json(CRISIS, f"data/llm_evaluator/{folder}/n_200/merged/{source}"):
                runs.setdefault(_answer_key(record.get("inputs"), record.get("answer")), record)
        for i, row in enumerate(extracted):
            record = runs.get(_answer_key(row.get("inputs"), row.get("answer")))
            if record is None or not _valid(row.get("evaluation")):
                continue
            evals = record.get("evals")
            evals = json.loads(evals) if isinstance(evals, str) else evals
            for sample, value in enumerate(evals or []):
                if _valid(value):
                    judged.append(JudgeScore(_crisis_item_id(i), "appropriateness", judge, float(value),
                                             sample, targets[i]))
    jury = _load_json(CRISIS, "data/llm_evaluator/sampled/sampled_lowest_scores_n200__jury.json")
    check_aligned("jury", jury, compare_inputs=True)
    judged += [JudgeScore(_crisis_item_id(i), "appropriateness", "jury", float(r["evaluation"]), 0, targets[i])
               for i, r in enumerate(jury) if _valid(r.get("evaluation"))]

    for judge, (prefix, _) in CRISIS_JUDGES.items():
        label_runs = _label_runs(dataset.files, prefix)
        for sample, path in enumerate(label_runs):
            rows = _load_json(CRISIS, path)
            check_aligned(path, rows, compare_inputs=True)
            judged += [JudgeScore(_crisis_item_id(i), "crisis_label", judge,
                                  float(CRISIS_LABELS.index(r.get("label") or "")), sample)
                       for i, r in enumerate(rows)]
    scales = {"appropriateness": Scale("ordinal", ("1", "2", "3", "4", "5")),
              "crisis_label": Scale("nominal", CRISIS_LABELS)}
    return CalibrationData(human, judged, scales)


def _label_runs(files: Iterable[str], prefix: str) -> list[str]:
    """One labeler's timestamped runs on the 206 validation posts (not its merged file, not the test set)."""
    run = re.compile(rf"data/llm_label/{re.escape(prefix)}-labeled-{CRISIS_VALIDATION_ID}-\d{{8}}-\d{{6}}\.json")
    return sorted(p for p in files if run.fullmatch(p))


# --------------------------------------------------------------------------- empathic-communication

EMPATHIC = "empathic-communication"
EMPATHIC_SUBSETS = {
    "lend_an_ear": ("conversation_id", ("validating_emotions", "encouraging_elaboration",
                                        "demonstrating_understanding", "advice_giving", "self_oriented",
                                        "dismissing_emotions")),
    "perceived_empathy": ("id", ("m_understood", "m_validated", "m_affirmed", "m_seen", "m_accepted",
                                 "m_caredfor", "m_emotional", "m_practical", "m_motivation")),
    "empatheticdialogues": ("conv_id", ("empathy", "relevance", "fluency")),
    "epitome": ("sp_id", ("level_emotional_reactions", "level_explorations", "level_interpretations")),
}
EMPATHIC_HUMANS = ("expert1", "expert2", "expert3", "crowd")
EMPATHIC_JUDGES = ("gpt", "claude", "gemini")


def load_empathic() -> CalibrationData:
    """Empathic-communication: 21 dimensions over 4 subsets, joined by column name and conversation id.

    Criteria are named ``<subset>/<dimension>``; the crowd rating is the crowd mean published upstream
    (not an integer), kept as is.
    """
    human: list[Annotation] = []
    judged: list[JudgeScore] = []
    for subset, (id_column, dimensions) in EMPATHIC_SUBSETS.items():
        for rater in EMPATHIC_HUMANS + EMPATHIC_JUDGES:
            path = f"annotations/{subset}/{rater}_ratings.csv"
            local = dataset_file(EMPATHIC, path)
            with local.open(encoding="utf-8-sig", newline="") as handle:
                reader = csv.DictReader(handle)
                missing = [c for c in (id_column, *dimensions) if c not in (reader.fieldnames or [])]
                if missing:
                    raise InputError([f"{local}:1: missing column(s) {', '.join(missing)}"])
                for row in reader:
                    item_id = f"{subset}/{row[id_column]}"
                    for dimension in dimensions:
                        raw = (row[dimension] or "").strip()
                        if not raw:
                            continue
                        value = float(raw)
                        if math.isnan(value):
                            continue
                        criterion = f"{subset}/{dimension}"
                        if rater in EMPATHIC_JUDGES:
                            judged.append(JudgeScore(item_id, criterion, rater, value))
                        else:
                            human.append(Annotation(item_id, criterion, rater, value))
    return CalibrationData(human, judged)


# --------------------------------------------------------------------------- elephant-oeq

ELEPHANT_OEQ = "elephant-oeq"
ELEPHANT_OEQ_FILE = ("elephant", "datasets/OEQ_sample.csv")
ELEPHANT_RATER = "elephant-annotators"


def elephant_oeq_items() -> list[dict[str, Any]]:
    """The score items to judge before calibrating on ELEPHANT OEQ (the human answers as responses)."""
    from judge.suites.sycophancy import oeq_calibration_items

    return oeq_calibration_items(dataset_file(*ELEPHANT_OEQ_FILE).read_bytes())


def load_elephant_oeq(judged: Path) -> CalibrationData:
    """ELEPHANT's human labels of the OEQ human answers against a judge's decisions on the same answers.

    `judged` is a ``trustmh score`` run directory (or its verdicts.jsonl) over ``elephant_oeq_items()``.
    Each label is compared with the decision the sycophancy suite makes from the matching criterion
    (``judge.suites.sycophancy.OEQ_CALIBRATION``, thresholds ``SYCOPHANTIC_BELOW``), both coded 0/1.
    """
    from judge.suites.sycophancy import CALIBRATION_PREFIX, OEQ_CALIBRATION, oeq_judged_label, oeq_rows

    rows = oeq_rows(dataset_file(*ELEPHANT_OEQ_FILE).read_bytes())
    human = [Annotation(f"{CALIBRATION_PREFIX}:{row[''].strip()}", label, ELEPHANT_RATER,
                        float(row[f"{label}_human"]))
             for row in rows for label in OEQ_CALIBRATION]
    items = {a.item_id for a in human}
    verdicts = judged / "verdicts.jsonl" if judged.is_dir() else judged
    if not verdicts.is_file():
        raise InputError([f"{judged}: no verdicts.jsonl; give the `trustmh score` run directory that judged the "
                          "items written by `trustmh calibrate --dataset elephant-oeq --write-items FILE`"])
    scores: list[JudgeScore] = []
    problems: list[str] = []
    for number, record in _records(verdicts):
        if isinstance(record, str):
            problems.append(f"{verdicts}:{number}: {record}")
            continue
        if record.get("item_id") not in items:
            continue
        for label, criterion in OEQ_CALIBRATION.items():
            if record.get("criterion") != criterion:
                continue
            value = oeq_judged_label(label, str(record.get("status")), record.get("score"))
            if value is not None:
                scores.append(JudgeScore(str(record["item_id"]), label, str(record.get("judge")), value,
                                         int(record.get("sample") or 0)))
    if problems:
        raise InputError(problems[:MAX_PROBLEMS])
    if not scores:
        raise InputError([f"{verdicts}: no verdict on the elephant-oeq items (ids {CALIBRATION_PREFIX}:<n>); judge "
                          "the items from `trustmh calibrate --dataset elephant-oeq --write-items FILE` first"])
    _check_duplicates(verdicts, [(s.item_id, s.criterion, s.judge, str(s.sample)) for s in scores],
                      "(item_id, criterion, judge, sample)")
    binary = Scale("nominal", ("0", "1"))
    return CalibrationData(human, scores, dict.fromkeys(OEQ_CALIBRATION, binary))


DATASETS = {CRISIS: load_crisis, EMPATHIC: load_empathic}
JUDGED_DATASETS = {ELEPHANT_OEQ: load_elephant_oeq}
"""Datasets that hold human labels only: the judge side is a run the user made with ``judged``."""


def load_dataset(name: str, judged: Path | None = None) -> CalibrationData:
    if name in JUDGED_DATASETS:
        if judged is None:
            raise InputError([f"`dataset={name}`: holds human labels only; write its items with `write_items=FILE`, "
                              "judge them with `trustmh score FILE --out RUN`, then give `judged=RUN`"])
        return JUDGED_DATASETS[name](judged)
    if name not in DATASETS:
        known = ", ".join([*DATASETS, *JUDGED_DATASETS])
        raise InputError([f"`dataset={name}`: no calibration loader; choose one of {known}"])
    if judged is not None:
        raise InputError([f"`dataset={name}`: brings its own judge scores; `judged=` goes with `human=`, or with "
                          f"`dataset=` {', '.join(JUDGED_DATASETS)}"])
    return DATASETS[name]()

