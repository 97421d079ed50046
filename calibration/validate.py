"""The human-rated sets `trustmh validate` judges: their items, their human ratings, the judges the dataset
itself records, and how a verdict of ours becomes a score comparable with the humans' (the mapping).

Each set answers "which rubric criterion measures what these humans rated?". Where a human dimension has
no criterion measuring the same construct it is listed in `unmapped` with the reason, never forced.

- llms-mental-health-crisis: the answer judged for each of the 206 posts, scored 1-5 by two humans
  (H1, H2; 190 scored by both) → the crisis rubric's `overall_appropriateness` (the same 1-5 levels of
  the authors' protocol); the posts' crisis categories by four humans (H1-H4) → the category the crisis
  judge reads before scoring (the `reading` of its verdict rows). The items carry no label, so the
  judge reads the category from the messages alone. Recorded judges: gpt-4o-mini, gpt-5-nano,
  Llama-4-Scout and the jury (appropriateness), and the three models' labels (category).
- empathic-communication: three experts' ratings of EPITOME (0-2) and Lend an Ear (1-5) conversations
  → the support rubric's criteria below; the experts' scale is mapped linearly onto the criterion's
  (reversed where the dimension measures the opposite). Recorded judges: GPT-4o, Claude 3.7 Sonnet,
  Gemini 2.5 Pro (their ratings, mapped the same way).
- elephant-oeq: ELEPHANT's labels of the 10 human answers to open-ended questions → the sycophancy
  suite's decisions (judge.suites.sycophancy.OEQ_CALIBRATION); one label per answer, so no
  human–human agreement exists and every row says "not enough data".
- a long annotation file of the user's (`--annotations FILE --rubric R`).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calibration.annotations import (
    CRISIS,
    CRISIS_LABELS,
    ELEPHANT_OEQ_FILE,
    EMPATHIC,
    Annotation,
    InputError,
    JudgeScore,
    Scale,
    _crisis_item_id,
    _load_json,
    _number,
    _records,
    _text,
    load_crisis,
    load_empathic,
)
from judge.datasets import dataset_file
from judge.labels import CATEGORIES
from judge.rubric import Rubric

VerdictRow = dict[str, Any]


@dataclass(frozen=True)
class Mapping:
    """One human measure and the rubric criterion that measures the same construct."""

    criterion: str  # the validity criterion (the row's name)
    rubric_criterion: str
    human_measure: str
    why: str


@dataclass
class ValidationSet:
    """Everything `validate` needs of one human-rated set."""

    name: str
    pillar: str
    items: list[dict[str, Any]]
    human: list[Annotation]
    scales: dict[str, Scale]
    mappings: list[Mapping]
    unmapped: list[dict[str, str]]
    critical: frozenset[str]
    to_scores: Callable[[Iterable[VerdictRow]], list[JudgeScore]]
    published: list[JudgeScore] = field(default_factory=list)
    rationale_of: dict[str, str] = field(default_factory=dict)  # validity criterion -> rubric criterion

    def limited(self, limit: int | None) -> ValidationSet:
        """The first `limit` items (in the set's order) and only their ratings."""
        if limit is None or limit >= len(self.items):
            return self
        keep = {item["id"] for item in self.items[:limit]}
        self.items = self.items[:limit]
        self.human = [a for a in self.human if a.item_id in keep]
        self.published = [s for s in self.published if s.item_id in keep]
        return self


def _ok_scores(rows: Iterable[VerdictRow], wanted: dict[str, str], items: set[str]) -> list[JudgeScore]:
    """JudgeScores of ok verdict rows: `wanted` maps a rubric criterion to the validity criterion."""
    out = []
    for row in rows:
        if row.get("item_id") in items and row.get("status") == "ok" and row.get("criterion") in wanted:
            out.append(JudgeScore(str(row["item_id"]), wanted[row["criterion"]], str(row["judge"]),
                                  float(row["score"]), int(row.get("sample") or 0)))
    return out


# --------------------------------------------------------------------------- llms-mental-health-crisis

CRISIS_SAMPLED = "data/llm_evaluator/sampled/sampled_lowest_scores_n200.json"
APPROPRIATENESS = "overall_appropriateness"
CATEGORY = "crisis_category"
NO_LABEL = "(no label)"
"""How a recorded labeler's empty or unreadable label is shown: a category of its own, so it disagrees."""


def crisis_set() -> ValidationSet:
    posts = _load_json(CRISIS, CRISIS_SAMPLED)
    items = []
    for index, post in enumerate(posts):
        turns = post["inputs"] if isinstance(post["inputs"], list) else [post["inputs"]]
        items.append({"id": _crisis_item_id(index), "pillar": "crisis",
                      "messages": [{"role": "user", "content": "\n".join(str(t) for t in turns)}],
                      "response": post["answer"],
                      "meta": {"dataset": CRISIS, "upstream_index": index, "validation": CRISIS}})
    upstream = load_crisis()
    # The category scale: the crisis rubric's eight categories, and "no label" if a recorded labeler gave one.
    seen = {CRISIS_LABELS[int(a.score)] for a in upstream.human if a.criterion == "crisis_label"}
    seen |= {CRISIS_LABELS[int(s.score)] for s in upstream.judged if s.criterion == "crisis_label"}
    labels = (*CATEGORIES, *((NO_LABEL,) if "" in seen else ()))
    unknown = seen - set(CATEGORIES) - {""}
    if unknown:
        raise InputError([f"{CRISIS}: crisis label(s) {sorted(unknown)} are not categories of the crisis rubric "
                          f"({', '.join(CATEGORIES)})"])

    def code(value: float) -> float:
        name = CRISIS_LABELS[int(value)]
        return float(labels.index(name or NO_LABEL))

    human = [Annotation(a.item_id, APPROPRIATENESS, a.rater, a.score, a.target) if a.criterion == "appropriateness"
             else Annotation(a.item_id, CATEGORY, a.rater, code(a.score)) for a in upstream.human]
    published = [JudgeScore(s.item_id, APPROPRIATENESS, f"{s.judge} (published)", s.score, s.sample)
                 if s.criterion == "appropriateness" else
                 JudgeScore(s.item_id, CATEGORY, f"{s.judge} (published)", code(s.score), s.sample)
                 for s in upstream.judged]
    ids = {item["id"] for item in items}

    def to_scores(rows: Iterable[VerdictRow]) -> list[JudgeScore]:
        out: list[JudgeScore] = []
        read: set[tuple[str, str, int]] = set()
        for row in rows:
            item = row.get("item_id")
            if item not in ids or row.get("pillar") != "crisis":
                continue
            key = (str(item), str(row["judge"]), int(row.get("sample") or 0))
            if row.get("criterion") == APPROPRIATENESS and row.get("status") == "ok":
                out.append(JudgeScore(key[0], APPROPRIATENESS, key[1], float(row["score"]), key[2]))
            reading = row.get("reading")
            if reading and key not in read and reading.get("category") in labels:
                read.add(key)
                out.append(JudgeScore(key[0], CATEGORY, key[1], float(labels.index(reading["category"])), key[2]))
        return out

    mappings = [
        Mapping(APPROPRIATENESS, APPROPRIATENESS, "H1, H2: 1-5 appropriateness of the answer (the authors' protocol)",
                "the criterion's five levels are the protocol's appropriateness levels"),
        Mapping(CATEGORY, "risk_reading.category", "H1-H4: crisis category of the post (7 classes)",
                "the crisis judge's own reading of the category, made before it scores"),
    ]
    return ValidationSet(CRISIS, "crisis", items, human,
                         {APPROPRIATENESS: Scale("ordinal", ("1", "2", "3", "4", "5")),
                          CATEGORY: Scale("nominal", labels)},
                         mappings, [], frozenset({APPROPRIATENESS, CATEGORY}), to_scores, published,
                         {APPROPRIATENESS: APPROPRIATENESS, CATEGORY: "risk_recognition"})


# --------------------------------------------------------------------------- empathic-communication

EMPATHIC_EXPERTS = ("expert1", "expert2", "expert3")
EMPATHIC_PUBLISHED = {"gpt": "GPT-4o", "claude": "Claude 3.7 Sonnet", "gemini": "Gemini 2.5 Pro"}
EMPATHIC_TEXTS = {"epitome": "original_data/sample_epitome.csv",
                  "lend_an_ear": "original_data/sample_lend_an_ear_conversations.csv"}


@dataclass(frozen=True)
class DimensionMap:
    subset: str
    dimension: str
    criterion: str  # a support criterion
    low: float  # the dimension's scale
    high: float
    reversed: bool
    why: str


EMPATHIC_MAP = (
    DimensionMap("epitome", "level_explorations", "exploration", 0, 2, False,
                 "EPITOME explorations: the responder asks about the seeker's experience and feelings"),
    DimensionMap("epitome", "level_interpretations", "empathic_reflection", 0, 2, False,
                 "EPITOME interpretations: the responder communicates an understanding of the seeker's "
                 "feelings and experience"),
    DimensionMap("lend_an_ear", "encouraging_elaboration", "exploration", 1, 5, False,
                 "invitations to say more about the situation and feelings"),
    DimensionMap("lend_an_ear", "demonstrating_understanding", "empathic_reflection", 1, 5, False,
                 "showing accurate understanding of what the person said and feels"),
    DimensionMap("lend_an_ear", "dismissing_emotions", "respect_and_autonomy", 1, 5, True,
                 "dismissing emotions is the minimising the criterion scores low (reversed)"),
)
EMPATHIC_UNMAPPED = (
    ("epitome/level_emotional_reactions", "warmth, compassion and concern: the support rubric has no warmth "
                                          "criterion (the crisis rubric's warmth_validation judges crisis answers)"),
    ("lend_an_ear/validating_emotions", "validation of feelings: no support criterion scores validation as such"),
    ("lend_an_ear/advice_giving", "unsolicited advice is one way help misses the stage, but "
                                  "stage_appropriate_help also scores help that fits: the constructs differ"),
    ("lend_an_ear/self_oriented", "the supporter turning the talk to themselves: no support criterion"),
    ("empatheticdialogues/empathy", "a global empathy rating: no single support criterion"),
    ("empatheticdialogues/relevance", "relevance of the reply: conversational_fit judges form and register, "
                                      "not topical relevance"),
    ("empatheticdialogues/fluency", "fluency: no support criterion"),
    *((f"perceived_empathy/{d}", "the Perceived Empathy conversations are not public: nothing to judge")
      for d in ("m_understood", "m_validated", "m_affirmed", "m_seen", "m_accepted", "m_caredfor", "m_emotional",
                "m_practical", "m_motivation")),
)
_SPEAKER = re.compile(r"^\s*(Seeker|Supporter):\s?", re.M)


def conversation_turns(text: str) -> list[dict[str, str]]:
    """'Seeker: …\\nSupporter: …' as chat turns (seeker = user, supporter = assistant), blank turns left out."""
    parts = _SPEAKER.split(text)
    turns = []
    for speaker, content in zip(parts[1::2], parts[2::2], strict=True):
        if content.strip():
            turns.append({"role": "user" if speaker == "Seeker" else "assistant", "content": content.strip()})
    return turns


def _on_scale(value: float, dim: DimensionMap, low: int, high: int) -> float:
    share = (value - dim.low) / (dim.high - dim.low)
    return high - share * (high - low) if dim.reversed else low + share * (high - low)


def empathic_sets(support: Rubric) -> list[ValidationSet]:
    """One set per subset with conversation texts (EPITOME, Lend an Ear)."""
    criteria = {c.id: c for c in support.criteria}
    upstream = load_empathic()
    sets = []
    for subset, path in EMPATHIC_TEXTS.items():
        items = _empathic_items(subset, path)
        ids = {item["id"] for item in items}
        dims = [d for d in EMPATHIC_MAP if d.subset == subset]
        by_key = {f"{subset}/{d.dimension}": d for d in dims}
        human, published = [], []
        for a in upstream.human:
            dim = by_key.get(a.criterion)
            if dim is None or a.rater not in EMPATHIC_EXPERTS or f"empathic/{a.item_id}" not in ids:
                continue
            c = criteria[dim.criterion]
            human.append(Annotation(f"empathic/{a.item_id}", dim.criterion, a.rater,
                                    _on_scale(a.score, dim, c.scale.min, c.scale.max)))
        for s in upstream.judged:
            dim = by_key.get(s.criterion)
            if dim is None or f"empathic/{s.item_id}" not in ids:
                continue
            c = criteria[dim.criterion]
            published.append(JudgeScore(f"empathic/{s.item_id}", dim.criterion,
                                        f"{EMPATHIC_PUBLISHED[s.judge]} (published)",
                                        _on_scale(s.score, dim, c.scale.min, c.scale.max)))
        mappings = [Mapping(d.criterion, d.criterion,
                            f"{d.dimension} ({d.low:g}-{d.high:g}, three experts"
                            f"{', reversed' if d.reversed else ''}, linear onto "
                            f"{criteria[d.criterion].scale.min}-{criteria[d.criterion].scale.max})", d.why)
                    for d in dims]
        wanted = {d.criterion: d.criterion for d in dims}
        scales = {d.criterion: Scale("ordinal", tuple(str(v) for v in range(criteria[d.criterion].scale.min,
                                                                              criteria[d.criterion].scale.max + 1)))
                  for d in dims}
        unmapped = [{"dimension": name, "why": why} for name, why in EMPATHIC_UNMAPPED if name.startswith(subset)]

        def to_scores(rows: Iterable[VerdictRow], wanted: dict[str, str] = wanted,
                      ids: set[str] = ids) -> list[JudgeScore]:
            return _ok_scores(rows, wanted, ids)

        critical = frozenset(d.criterion for d in dims if criteria[d.criterion].severity == "critical")
        sets.append(ValidationSet(f"{EMPATHIC}/{subset}", "support", items, human, scales, mappings, unmapped,
                                  critical, to_scores, published, dict(wanted)))
    others = [{"dimension": name, "why": why} for name, why in EMPATHIC_UNMAPPED
              if not name.startswith(tuple(EMPATHIC_TEXTS))]
    sets[-1].unmapped.extend(others)
    return sets


def _empathic_items(subset: str, path: str) -> list[dict[str, Any]]:
    local = dataset_file(EMPATHIC, path)
    with local.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    items = []
    for row in rows:
        if subset == "epitome":
            messages = [{"role": "user", "content": row["seeker_post"].strip()}]
            response, key = row["response_post"].strip(), row["sp_id"]
        else:
            turns = conversation_turns(row["full_conversation"])
            while turns and turns[-1]["role"] == "user":  # the rated supporter's last turn is the response
                turns.pop()
            if len(turns) < 2:
                continue
            messages, response, key = turns[:-1], turns[-1]["content"], row["conversation_id"]
        if not response or messages[0]["role"] != "user":
            continue
        items.append({"id": f"empathic/{subset}/{key}", "pillar": "support", "messages": messages,
                      "response": response, "meta": {"dataset": EMPATHIC, "subset": subset, "upstream_id": key}})
    return items


# --------------------------------------------------------------------------- elephant-oeq


def elephant_set() -> ValidationSet:
    from calibration.annotations import ELEPHANT_OEQ, ELEPHANT_RATER, elephant_oeq_items
    from judge.suites.sycophancy import (
        CALIBRATION_PREFIX,
        OEQ_CALIBRATION,
        SYCOPHANTIC_BELOW,
        oeq_judged_label,
        oeq_rows,
    )

    items = elephant_oeq_items()
    ids = {item["id"] for item in items}
    rows = oeq_rows(dataset_file(*ELEPHANT_OEQ_FILE).read_bytes())
    human = [Annotation(f"{CALIBRATION_PREFIX}:{row[''].strip()}", label, ELEPHANT_RATER,
                        float(row[f"{label}_human"])) for row in rows for label in OEQ_CALIBRATION]

    def to_scores(verdicts: Iterable[VerdictRow]) -> list[JudgeScore]:
        out = []
        for row in verdicts:
            if row.get("item_id") not in ids:
                continue
            for label, criterion in OEQ_CALIBRATION.items():
                if row.get("criterion") != criterion:
                    continue
                value = oeq_judged_label(label, str(row.get("status")), row.get("score"))
                if value is not None:
                    out.append(JudgeScore(str(row["item_id"]), label, str(row["judge"]), value,
                                          int(row.get("sample") or 0)))
        return out

    mappings = [Mapping(label, criterion, f"ELEPHANT annotators' {label} (1: the answer does it)",
                        f"{criterion} below {SYCOPHANTIC_BELOW[criterion]:g} is the behaviour")
                for label, criterion in OEQ_CALIBRATION.items()]
    unmapped = [{"dimension": "emotional_validation",
                 "why": "ELEPHANT marks any validation; warranted_validation scores only unwarranted validation, "
                        "which the annotators did not label"}]
    binary = Scale("nominal", ("0", "1"))
    return ValidationSet(ELEPHANT_OEQ, "sycophancy", items, human, dict.fromkeys(OEQ_CALIBRATION, binary), mappings,
                         unmapped, frozenset(), to_scores, [], dict(OEQ_CALIBRATION))


# --------------------------------------------------------------------------- the user's annotations

ANNOTATION_FIELDS = "item_id, criterion, rater, score, prompt (or messages), response"


def annotations_set(path: Path, rubric: Rubric) -> ValidationSet:
    """A long annotation file: one record per (item, criterion, rater) score, each carrying the item's
    `prompt` (or `messages`, a JSON list of turns) and `response`, the same on every record of an item.
    Criteria are the rubric's; scores must lie on the criterion's scale."""
    criteria = {c.id: c for c in rubric.criteria}
    problems: list[str] = []
    texts: dict[str, tuple[Any, str, str]] = {}  # item -> (messages, response, where first given)
    human: list[Annotation] = []
    seen: set[tuple[str, str, str]] = set()
    for line, record in _records(path):
        where = f"{path}:{line}"
        if isinstance(record, str):
            problems.append(f"{where}: {record}")
            continue
        try:
            item, criterion, rater = (_text(record, "item_id"), _text(record, "criterion"), _text(record, "rater"))
            assert item is not None and criterion is not None and rater is not None
            if criterion not in criteria:
                raise ValueError(f"criterion {criterion!r} is not in the {rubric.pillar} rubric "
                                 f"({', '.join(criteria)})")
            scale = criteria[criterion].scale
            score = _number(record, "score")
            if not (scale.min <= score <= scale.max):
                raise ValueError(f"score {score:g} is outside {criterion}'s scale {scale.min}-{scale.max}")
            messages = _messages(record)
            response = _text(record, "response")
            if (item, criterion, rater) in seen:
                raise ValueError(f"a second score of {rater} for {item} on {criterion}; give each once")
            seen.add((item, criterion, rater))
            if item in texts and texts[item][:2] != (messages, response):
                raise ValueError(f"item {item!r} has another prompt or response than at {texts[item][2]}; "
                                 "every record of an item must carry the same texts")
            texts.setdefault(item, (messages, str(response), where))
            human.append(Annotation(item, criterion, rater, score))
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
        if len(problems) >= 50:
            break
    if problems:
        raise InputError(problems)
    if not human:
        raise InputError([f"{path}: no annotation found; expected records with {ANNOTATION_FIELDS}"])
    items = [{"id": item, "pillar": rubric.pillar, "messages": messages, "response": response,
              "meta": {"validation": str(path)}} for item, (messages, response, _) in texts.items()]
    used = sorted({a.criterion for a in human})
    scales = {c: Scale("ordinal", tuple(str(v) for v in range(criteria[c].scale.min, criteria[c].scale.max + 1)))
              for c in used}
    wanted = {c: c for c in used}
    ids = set(texts)
    mappings = [Mapping(c, c, f"{path.name}: {c}", "named by the annotation file") for c in used]
    critical = frozenset(c for c in used if criteria[c].severity == "critical")
    return ValidationSet(f"annotations:{path.name}", rubric.pillar, items, human, scales, mappings, [], critical,
                         lambda rows: _ok_scores(rows, wanted, ids), [], dict(wanted))


def _messages(record: dict[str, Any]) -> list[dict[str, str]]:
    raw = record.get("messages")
    if raw not in (None, ""):
        turns = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(turns, list) or not all(isinstance(t, dict) and {"role", "content"} <= set(t)
                                                  for t in turns):
            raise ValueError("field 'messages' must be a list of {role, content} turns")
        return [{"role": str(t["role"]), "content": str(t["content"])} for t in turns]
    prompt = _text(record, "prompt")
    return [{"role": "user", "content": str(prompt)}]


def iter_verdicts(path: Path) -> Iterator[VerdictRow]:
    """verdicts.jsonl one line at a time (a validation run can be long: it is never held whole)."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)

