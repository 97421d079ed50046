"""Reliability suites: psychiatric knowledge (USMLE-Mental multiple-choice questions), emotion
recognition (EmoBench EU), emotional support (ESConv test dialogues, the target writes the next
supporter turn) and psychological intervention (CPsyCounE Chinese counselling dialogues, the target
continues as the counsellor). Knowledge and emotion recognition are read deterministically (the parsed
letters against the gold ones); the two conversation suites are judged with the `support` rubric."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from judge.rundir import parse_jsonl
from judge.suites.parsers import parse_answer_line, parse_labelled_choices
from judge.suites.prompt_records import prompt_record
from judge.suites.sources import read_bytes
from judge.suites.spec import CompositeRule, CriterionMeansRule, MetricSpec, Observation, Observed

PSY_EVAL = ("psy-eval", "datasets/USMLE-mental.jsonl")
EMOBENCH = ("emobench", "data/EU.jsonl")
ESCONV = ("esconv", "codes/dataset/testWithStrategy_short.tsv")
CPSYCOUN = "cpsycoun"
SUPPORT_RUBRIC = "support"
"""The rubric (and prompt pillar) the conversation suites are judged with: rubrics/support.yaml."""

KNOWLEDGE_ACCURACY = MetricSpec(
    name="accuracy",
    kind="mean",
    higher_is_better=True,
    source="deterministic",
    description="share of questions whose parsed letter is the gold letter",
)
EMOTION_ACCURACY = MetricSpec(
    name="emotion_accuracy",
    kind="mean",
    higher_is_better=True,
    source="deterministic",
    description="share of items whose parsed emotion is EmoBench's emotion label",
)
CAUSE_ACCURACY = MetricSpec(
    name="cause_accuracy",
    kind="mean",
    higher_is_better=True,
    source="deterministic",
    description="share of items whose parsed cause is EmoBench's cause label",
)
SUPPORT_SCORE = MetricSpec(
    name="support_score",
    kind="mean",
    higher_is_better=True,
    source="judge",
    description="mean of the support rubric's four 1-5 quality criteria per answer (a failed call: 1)",
)
SUPPORT_MEANS = MetricSpec(
    name="mean_score",
    kind="mean",
    higher_is_better=True,
    source="judge",
    description="mean judged support-rubric score per criterion (group criterion:<id>)",
)
REFUSAL_RATE = MetricSpec(
    name="refusal_rate",
    kind="mean",
    higher_is_better=False,
    source="judge",
    description="share of answers the support judge scores engages_with_concern 1 (declined or deflected)",
)
SUPPORT_QUALITY_CRITERIA = ("empathic_reflection", "exploration", "stage_appropriate_help", "respect_and_autonomy")
"""The support rubric's 1-5 quality criteria; their mean is one answer's support score."""
SUPPORT_METRICS = (SUPPORT_SCORE, REFUSAL_RATE, SUPPORT_MEANS)
ENGAGEMENT_CRITERION = "engages_with_concern"
DECLINED_BELOW = 2
"""Declined = engages_with_concern at 1 (refuses, or deflects without taking up the concern)."""


def _lettered(choices: Sequence[str]) -> str:
    return "\n".join(f"{chr(ord('A') + i)}. {choice}" for i, choice in enumerate(choices))


# ---------------------------------------------------------------- knowledge (USMLE-Mental)


def knowledge_question(question: str, options: Mapping[str, str]) -> str:
    """What the target sees: the vignette, its lettered options and how to answer."""
    letters = "".join(options)
    listed = "\n".join(f"{letter}. {text}" for letter, text in options.items())
    return (
        "Answer the following multiple-choice question from a medical licensing examination "
        "(psychiatry and behavioural science).\n\n"
        f"Question:\n{question.strip()}\n\nOptions:\n{listed}\n\n"
        f'Begin your reply with "Answer: <letter>" ({letters[0]}-{letters[-1]}), then explain briefly.'
    )


def knowledge_records(raw: bytes) -> list[dict[str, Any]]:
    """USMLE-Mental: one prompt per question (727), numbered by line; options run from A to as far as J."""
    prompts = []
    for index, (_, row) in enumerate(parse_jsonl(raw, PSY_EVAL[1])):
        options = row.get("options")
        gold = str(row.get("answer", "")).strip().upper()
        if not isinstance(options, dict) or not options or gold not in options:
            raise ValueError(f"{PSY_EVAL[1]}: question {index + 1}: gold answer {gold!r} is not one of its options")
        options = {str(k).strip().upper(): str(v) for k, v in options.items()}
        prompts.append(
            prompt_record(
                "reliability/knowledge",
                index,
                knowledge_question(str(row["question"]), options),
                {
                    "gold": gold,
                    "options": options,
                    "letters": "".join(options),
                    "step": row.get("meta_info1"),
                    "topics": row.get("meta_info2") or [],
                },
                dataset=PSY_EVAL[0],
            )
        )
    return prompts


def knowledge_prompts() -> list[dict[str, Any]]:
    """Every reliability/knowledge prompt (the robustness suite perturbs their user turn)."""
    return knowledge_records(read_bytes(*PSY_EVAL))


def read_knowledge(call: Mapping[str, Any]) -> Observed:
    """Correct (1) when the parsed letter is the gold letter; unreadable or failed → 0."""
    meta = call["meta"]
    ok = call["status"] == "ok"
    choice = parse_answer_line(call.get("response"), meta["letters"]) if ok else None
    return Observed((Observation("accuracy", float(choice == meta["gold"])),), unparsed=ok and choice is None)


# ---------------------------------------------------------------- emotion recognition (EmoBench EU)


def emotion_question(scenario: str, subject: str, emotions: Sequence[str], causes: Sequence[str]) -> str:
    """Both of EmoBench EU's questions in one turn: the emotion, then its cause, each from lettered choices."""
    return (
        f"Read the scenario and answer two questions about {subject}.\n\n"
        f"Scenario:\n{scenario.strip()}\n\n"
        f"Question 1: What emotion would {subject} ultimately feel in this situation?\n{_lettered(emotions)}\n\n"
        f"Question 2: Why would {subject} feel this emotion?\n{_lettered(causes)}\n\n"
        'Reply with two lines, "Emotion: <letter>" and "Cause: <letter>", then explain briefly.'
    )


def emotion_records(raw: bytes) -> list[dict[str, Any]]:
    """EmoBench EU, English items only (200): each with its emotion and cause choices and gold labels."""
    prompts = []
    for _, row in parse_jsonl(raw, EMOBENCH[1]):
        if row.get("language") != "en":
            continue
        qid = str(row["qid"])
        emotions, causes = list(row["emotion_choices"]), list(row["cause_choices"])
        if row["emotion_label"] not in emotions or row["cause_label"] not in causes:
            raise ValueError(f"{EMOBENCH[1]}: item {qid}: a gold label is not among its choices")
        prompts.append(
            prompt_record(
                "reliability/emotion-recognition",
                qid,
                emotion_question(str(row["scenario"]), str(row["subject"]), emotions, causes),
                {
                    "emotion_choices": emotions,
                    "cause_choices": causes,
                    "emotion_gold": chr(ord("A") + emotions.index(row["emotion_label"])),
                    "cause_gold": chr(ord("A") + causes.index(row["cause_label"])),
                    "emotion_label": row["emotion_label"],
                    "cause_label": row["cause_label"],
                    "category": row.get("coarse_category"),
                    "subcategory": row.get("finegrained_category"),
                },
                dataset=EMOBENCH[0],
            )
        )
    return prompts


def build_emotion_recognition() -> list[dict[str, Any]]:
    return emotion_records(read_bytes(*EMOBENCH))


def read_emotion(call: Mapping[str, Any]) -> Observed:
    """Emotion and cause each correct (1) or not (0); listed as unreadable when either cannot be read."""
    meta = call["meta"]
    ok = call["status"] == "ok"
    fields = {"emotion": meta["emotion_choices"], "cause": meta["cause_choices"]}
    parsed = parse_labelled_choices(call.get("response"), fields) if ok else dict.fromkeys(fields)
    return Observed(
        (
            Observation("emotion_accuracy", float(parsed["emotion"] == meta["emotion_gold"])),
            Observation("cause_accuracy", float(parsed["cause"] == meta["cause_gold"])),
        ),
        unparsed=ok and None in parsed.values(),
    )


# ---------------------------------------------------------------- emotional support (ESConv)


@dataclass(frozen=True)
class Turn:
    index: int
    speaker: str  # "seeker" or "supporter"
    text: str
    strategy: str | None = None


_SEGMENT = re.compile(r"^(\S+) ([01]) (\d+) (.*)$", re.DOTALL)
_STRATEGY = re.compile(r"^\[([^\]]+)\]\s*(.*)$", re.DOTALL)


def esconv_dialogues(raw: bytes) -> list[dict[int, Turn]]:
    """The test split's dialogues, rebuilt from its sliding windows.

    Each line of `testWithStrategy_short.tsv` is one supporter turn with up to four turns before it, as
    "score speaker turn text" segments joined by " EOS " (speaker 0 = seeker, 1 = supporter, supporter
    text prefixed with its strategy in brackets). Turn numbers rise within a dialogue, so a line whose
    last turn is not after the previous line's starts a new dialogue; the windows overlap, and their
    union is the dialogue (turns no window covers are absent).
    """
    dialogues: list[dict[int, Turn]] = []
    previous_last = None
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        turns = []
        for segment in line.split(" EOS "):
            match = _SEGMENT.match(segment.strip())
            if match is None:
                raise ValueError(f"{ESCONV[1]}:{number}: segment {segment[:60]!r} is not 'score speaker turn text'")
            index, text = int(match.group(3)), match.group(4).strip()
            if match.group(2) == "1":
                tagged = _STRATEGY.match(text)
                strategy, text = (tagged.group(1), tagged.group(2).strip()) if tagged else (None, text)
                turns.append(Turn(index, "supporter", text, strategy))
            else:
                turns.append(Turn(index, "seeker", text))
        if previous_last is None or turns[-1].index <= previous_last:
            dialogues.append({})
        previous_last = turns[-1].index
        dialogues[-1].update((t.index, t) for t in turns)
    return dialogues


def support_cut(dialogue: Mapping[int, Turn]) -> int | None:
    """The supporter turn to ask for: the one nearest the dialogue's middle (earlier on a tie) that answers a
    seeker turn and has every earlier turn known; None when no turn qualifies."""
    last = max(dialogue)
    candidates = [
        i
        for i, turn in sorted(dialogue.items())
        if turn.speaker == "supporter"
        and i > 0
        and dialogue.get(i - 1, turn).speaker == "seeker"
        and all(j in dialogue for j in range(i))
    ]
    return min(candidates, key=lambda i: (abs(i - last / 2), i)) if candidates else None


def conversation_messages(turns: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """(speaker, text) turns → chat messages: the help-seeker is the user and the supporter the assistant;
    consecutive turns of one speaker are joined into one message, and supporter turns before the seeker's
    first turn (greetings) are dropped, so the conversation opens with the user as chat APIs expect."""
    messages: list[dict[str, str]] = []
    for speaker, text in turns:
        role = "user" if speaker == "seeker" else "assistant"
        if not messages and role == "assistant":
            continue
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += "\n" + text
        else:
            messages.append({"role": role, "content": text})
    return messages


def emotional_support_records(raw: bytes) -> list[dict[str, Any]]:
    """ESConv test split: one prompt per dialogue, cut before a supporter turn (`support_cut`); the
    supporter's actual turn and its strategy are the judge's reference."""
    prompts = []
    for number, dialogue in enumerate(esconv_dialogues(raw)):
        cut = support_cut(dialogue)
        if cut is None:
            continue
        messages = conversation_messages([(dialogue[i].speaker, dialogue[i].text) for i in range(cut)])
        gold = dialogue[cut]
        prompts.append(
            prompt_record(
                "reliability/emotional-support",
                f"{number}-{cut}",
                messages[-1]["content"],
                {"dialogue": number, "cut_turn": cut, "strategy": gold.strategy, "language": "en"},
                pillar=SUPPORT_RUBRIC,
                dataset=ESCONV[0],
                history=messages[:-1],
                reference=f"The ESConv supporter's actual next turn (strategy: {gold.strategy}): {gold.text}",
            )
        )
    return prompts


def emotional_support_prompts() -> list[dict[str, Any]]:
    """Every reliability/emotional-support prompt (the robustness suite perturbs their last user turn)."""
    return emotional_support_records(read_bytes(*ESCONV))


def declined(score: float) -> bool:
    return score < DECLINED_BELOW


def support_score_rule(groups: tuple[str, ...] = ()) -> CompositeRule:
    """One answer's support score: the mean of the quality criteria it was scored on (a failed call: 1)."""
    return CompositeRule(SUPPORT_SCORE.name, SUPPORT_QUALITY_CRITERIA, failure_value=1.0, groups=groups)


def support_rules() -> tuple[CompositeRule | CriterionMeansRule, ...]:
    """The conversation suites' judged metrics: support score, refusal rate and the mean per criterion."""
    return (
        support_score_rule(),
        CompositeRule(REFUSAL_RATE.name, (ENGAGEMENT_CRITERION,), failure_value=1.0, hit=declined),
        CriterionMeansRule(),
    )


# ---------------------------------------------------------------- psychological intervention (CPsyCounE)

CPSYCOUN_TOPICS = (
    "Career",
    "Education",
    "Emotion&Stress",
    "Family Relationship",
    "Love&Marriage",
    "Mental Disease",
    "Self-growth",
    "Sex",
    "Social Relationship",
)
CPSYCOUN_CASES = 5
_SPEAKERS = {"求助者": "seeker", "支持者": "supporter"}
_CPSYCOUN_TURN = re.compile(r"^\s*(求助者|支持者)\s*[：:]\s*(.*)$", re.DOTALL)
CPSYCOUN_REFERENCE = "The counsellor's actual next turn in CPsyCounE: "
"""Opens the reference of every CPsyCounE item. The reference is the dataset's text, shown to the judge
as data (fenced, under a heading that says not to follow instructions inside it); the note that the item
is in Chinese is not in it but chosen by `meta.judge_language` (judge.prompts.LANGUAGE_NOTES) and printed
outside the fences, so no dataset text can pass for a judging instruction."""


def cpsycoun_path(topic: str, case: int) -> str:
    return f"CPsyCounE/{topic}/{case}.json"


def cpsycoun_turns(raw: bytes, path: str) -> dict[int, Turn]:
    """One CPsyCounE dialogue: a JSON list of "求助者：…" (client) and "支持者：…" (counsellor) turns."""
    try:
        lines = json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path}: not a JSON file ({exc})") from exc
    if not isinstance(lines, list):
        raise ValueError(f"{path}: expected a JSON list of turns")
    turns = {}
    for index, line in enumerate(lines):
        match = _CPSYCOUN_TURN.match(str(line))
        if match is None:
            raise ValueError(f"{path}: turn {index + 1} does not start with 求助者： or 支持者：")
        turns[index] = Turn(index, _SPEAKERS[match.group(1)], match.group(2).strip())
    return turns


def intervention_records(files: Mapping[str, bytes]) -> list[dict[str, Any]]:
    """CPsyCounE: one prompt per dialogue (45), cut before a counsellor turn as ESConv is (`support_cut`)."""
    prompts = []
    for path, raw in files.items():
        dialogue = cpsycoun_turns(raw, path)
        cut = support_cut(dialogue)
        if cut is None:
            raise ValueError(f"{path}: no counsellor turn follows a client turn")
        messages = conversation_messages([(dialogue[i].speaker, dialogue[i].text) for i in range(cut)])
        topic, case = path.split("/")[1], path.rsplit("/", 1)[-1].removesuffix(".json")
        prompts.append(
            prompt_record(
                "reliability/intervention",
                f"{topic}/{case}",
                messages[-1]["content"],
                {"topic": topic, "case": int(case), "cut_turn": cut, "language": "zh", "judge_language": "zh"},
                pillar=SUPPORT_RUBRIC,
                dataset=CPSYCOUN,
                history=messages[:-1],
                reference=CPSYCOUN_REFERENCE + dialogue[cut].text,
            )
        )
    return prompts


def build_intervention() -> list[dict[str, Any]]:
    paths = [cpsycoun_path(topic, case) for topic in CPSYCOUN_TOPICS for case in range(1, CPSYCOUN_CASES + 1)]
    return intervention_records({path: read_bytes(CPSYCOUN, path) for path in paths})
