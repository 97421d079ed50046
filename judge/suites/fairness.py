"""Fairness suite: TrustMH-Bench's 11 ESConv_fair dialogues, each rendered once per demographic persona
(race, gender, age including a minor, religion, sexual orientation, disability and first language;
data/fairness_personas.toml). The persona's statement is the only text
that differs between the variants of a dialogue; the target writes the next supporter turn, which is
judged with the `support` rubric (support quality and whether it engaged or declined) and the
`fairness` rubric (stereotyping and group-based gatekeeping). Per group means and their spread across
groups (standard deviation of group means, the paper's metric, and the largest gap) are the metrics,
with intervals from a bootstrap over dialogues."""

from __future__ import annotations

import json
import tomllib
import warnings
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from judge.bundled import bundled_path
from judge.errors import Note
from judge.suites.prompt_records import prompt_record
from judge.suites.reliability import (
    ENGAGEMENT_CRITERION,
    REFUSAL_RATE,
    SUPPORT_RUBRIC,
    SUPPORT_SCORE,
    Turn,
    conversation_messages,
    declined,
    support_cut,
    support_score_rule,
)
from judge.suites.sources import read_bytes
from judge.suites.spec import CompositeRule, CriterionMeansRule, DisparityRule, MetricSpec

DATASET = "trustmh-bench"
FAIR_FILE = "dataset/ESConv_fair.json"
PERSONAS_FILE = "fairness_personas.toml"
DIMENSIONS = ("race", "gender", "age", "religion", "sexual_orientation", "disability", "language")
MIN_GROUPS = 3
CUE_TURN_MIN_WORDS = 4
"""The statement goes into the seeker's first turn of at least this many words: past the greeting."""


DISPARITY_SD = MetricSpec(
    name="disparity_sd",
    kind="disparity",
    higher_is_better=False,
    source="judge",
    description="support score: standard deviation of the group means (mean over the dimensions; "
    "group dimension:<name> per dimension)",
)
MAX_GAP = MetricSpec(
    name="max_gap",
    kind="disparity",
    higher_is_better=False,
    source="judge",
    description="support score: largest difference between two group means of a dimension (largest over "
    "dimensions; group dimension:<name> per dimension)",
)
REFUSAL_DISPARITY_SD = MetricSpec(
    name="refusal_disparity_sd",
    kind="disparity",
    higher_is_better=False,
    source="judge",
    description="refusal rate: standard deviation of the group means",
)
REFUSAL_MAX_GAP = MetricSpec(
    name="refusal_max_gap",
    kind="disparity",
    higher_is_better=False,
    source="judge",
    description="refusal rate: largest difference between two group means of a dimension",
)
MEAN_SCORE = MetricSpec(
    name="mean_score",
    kind="mean",
    higher_is_better=True,
    source="judge",
    description="mean judged score per criterion of both rubrics (group criterion:<id>)",
)
METRICS = (DISPARITY_SD, MAX_GAP, SUPPORT_SCORE, REFUSAL_RATE, REFUSAL_DISPARITY_SD, REFUSAL_MAX_GAP, MEAN_SCORE)


@dataclass(frozen=True)
class Persona:
    id: str
    dimension: str
    group: str
    statement: str
    cues: tuple[str, ...]

    @property
    def label(self) -> str:
        """The scorecard's group label, e.g. "race:Black"."""
        return f"{self.dimension}:{self.group}"


def parse_personas(text: str, where: str) -> tuple[Persona, ...]:
    """The persona table; every problem names the file and the persona, so a bad edit stops the build."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{where}: not valid TOML ({exc})") from exc
    personas = []
    for number, entry in enumerate(raw.get("persona", []), start=1):
        at = f"{where}: persona {number} ({entry.get('id', 'no id')})"
        missing = [k for k in ("id", "dimension", "group", "statement", "cues") if not entry.get(k)]
        if missing:
            raise ValueError(f"{at}: missing {', '.join(missing)}")
        if entry["dimension"] not in DIMENSIONS:
            raise ValueError(f"{at}: dimension {entry['dimension']!r} is not one of {', '.join(DIMENSIONS)}")
        cues = tuple(entry["cues"])
        absent = [c for c in cues if not isinstance(c, str) or c not in entry["statement"]]
        if absent:
            raise ValueError(f"{at}: cue(s) {absent} are not words of its statement {entry['statement']!r}")
        personas.append(Persona(entry["id"], entry["dimension"], str(entry["group"]), entry["statement"], cues))
    ids = [p.id for p in personas]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{where}: persona ids must be unique")
    for dimension in DIMENSIONS:
        groups = {p.group for p in personas if p.dimension == dimension}
        if len(groups) < MIN_GROUPS:
            raise ValueError(f"{where}: dimension {dimension} has {len(groups)} groups; at least {MIN_GROUPS} needed")
    return tuple(personas)


def load_personas() -> tuple[Persona, ...]:
    path = bundled_path(PERSONAS_FILE)
    return parse_personas(path.read_text(encoding="utf-8"), str(path))


def fair_dialogues(raw: bytes) -> list[dict[int, Turn]]:
    """ESConv_fair: a JSON list of dialogues, each a `dialog` list of {speaker, content, annotation}."""
    dialogues = []
    for number, entry in enumerate(json.loads(raw.decode("utf-8"))):
        turns = {}
        for index, turn in enumerate(entry.get("dialog") or []):
            speaker = turn.get("speaker")
            if speaker not in ("seeker", "supporter"):
                raise ValueError(f"{FAIR_FILE}: dialogue {number}, turn {index}: speaker {speaker!r}")
            strategy = (turn.get("annotation") or {}).get("strategy")
            turns[index] = Turn(index, speaker, str(turn.get("content", "")).strip(), strategy)
        dialogues.append(turns)
    return dialogues


def cue_turn(dialogue: Mapping[int, Turn], cut: int) -> int:
    """The seeker turn that carries the statement: the first of at least CUE_TURN_MIN_WORDS words before the
    cut, else the seeker turn just before it."""
    seeker = [i for i in range(cut) if dialogue[i].speaker == "seeker"]
    long_enough = [i for i in seeker if len(dialogue[i].text.split()) >= CUE_TURN_MIN_WORDS]
    return (long_enough or seeker[-1:])[0]


def variant_records(raw: bytes, personas: Sequence[Persona]) -> list[dict[str, Any]]:
    """Every dialogue × persona: the same conversation (cut as the emotional-support suite cuts ESConv) with
    the persona's statement opening one seeker turn; ids "<dialogue>-<persona id>"."""
    prompts = []
    for number, dialogue in enumerate(fair_dialogues(raw)):
        cut = support_cut(dialogue)
        if cut is None:
            raise ValueError(f"{FAIR_FILE}: dialogue {number} has no supporter turn after a seeker turn")
        carrier = cue_turn(dialogue, cut)
        gold = dialogue[cut]
        for persona in personas:
            turns = [
                (dialogue[i].speaker, f"{persona.statement} {dialogue[i].text}" if i == carrier else dialogue[i].text)
                for i in range(cut)
            ]
            messages = conversation_messages(turns)
            prompts.append(
                prompt_record(
                    "fairness/demographics",
                    f"{number}-{persona.id}",
                    messages[-1]["content"],
                    {
                        "dialogue": number,
                        "scenario": number,
                        "persona": persona.id,
                        "dimension": persona.dimension,
                        "group": persona.label,
                        "identity_cues": list(persona.cues),
                        "cue_turn": carrier,
                        "cut_turn": cut,
                        "language": "en",
                    },
                    pillar=[SUPPORT_RUBRIC, "fairness"],
                    history=messages[:-1],
                    dataset=DATASET,
                    reference=f"The ESConv supporter's actual next turn (strategy: {gold.strategy}): {gold.text}",
                )
            )
    return prompts


def build_demographics() -> list[dict[str, Any]]:
    return variant_records(read_bytes(DATASET, FAIR_FILE), load_personas())


def judged_rules() -> tuple[DisparityRule | CriterionMeansRule, ...]:
    """Support score and refusal, each per group and spread across groups; the mean of every criterion."""
    return (
        DisparityRule(support_score_rule(), DISPARITY_SD.name, MAX_GAP.name),
        DisparityRule(
            CompositeRule(REFUSAL_RATE.name, (ENGAGEMENT_CRITERION,), failure_value=1.0, hit=declined),
            REFUSAL_DISPARITY_SD.name,
            REFUSAL_MAX_GAP.name,
        ),
        CriterionMeansRule(),
    )


class LimitNote(Note):
    """What a `--limit` sample left out of a balanced design."""


def balanced_sample(
    prompts: Sequence[dict[str, Any]], limit: int | None, seed: int, suite: str
) -> list[dict[str, Any]]:
    """`--limit` for a design that must stay balanced: whole groups × whole dialogues, never loose variants.

    Group means are only comparable when every group is asked the same dialogues. When `limit` holds one
    dialogue for every group, every group of every dimension is kept and fewer dialogues are drawn (with
    the seed). Below that, whole dimensions are taken, in a seeded order, while all their groups still fit,
    and a `LimitNote` warning names the dimensions left out. The draw depends only on the seed, the suite
    id and the prompts, and keeps the prompts' order.
    """
    if limit is None or limit >= len(prompts):
        return list(prompts)
    if limit < 0:
        raise ValueError("limit must be at least 0")
    rng = np.random.default_rng([seed, zlib.crc32(suite.encode("utf-8"))])
    groups_of: dict[str, list[str]] = {}
    for prompt in prompts:
        groups = groups_of.setdefault(prompt["meta"]["dimension"], [])
        if prompt["meta"]["group"] not in groups:
            groups.append(prompt["meta"]["group"])
    order = [sorted(groups_of)[int(i)] for i in rng.permutation(len(groups_of))]
    chosen: list[str] = []
    for dimension in order:
        if len(chosen) + len(groups_of[dimension]) <= limit:
            chosen += groups_of[dimension]
    dropped = [d for d in sorted(groups_of) if not set(groups_of[d]) <= set(chosen)]
    if dropped:
        warnings.warn(
            LimitNote(
                f"{suite}: --limit {limit} holds fewer prompts than the {sum(map(len, groups_of.values()))} groups; "
                f"left out the dimension(s) {', '.join(dropped)} whole, so that every group kept is asked the same "
                "dialogues"
            ),
            stacklevel=2,
        )
    if not chosen:
        return []
    dialogues = sorted({p["meta"]["dialogue"] for p in prompts})
    count = min(len(dialogues), limit // len(chosen))
    kept_dialogues = {dialogues[int(i)] for i in rng.choice(len(dialogues), size=count, replace=False)}
    kept_groups = set(chosen)
    return [p for p in prompts if p["meta"]["dialogue"] in kept_dialogues and p["meta"]["group"] in kept_groups]
