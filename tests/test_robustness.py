"""Robustness: the perturbations (seeded, level ordering, intensity monotone, protected words, never
empty), the paired deltas on hand-computed values, the scorecard's paired_delta records, and the two
suites built through the dataset mirror."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import pytest

from judge.suites import robustness
from judge.suites.catalogue import SUITES, build_suite
from judge.suites.metrics import paired_deltas
from judge.suites.perturb import (
    CHARACTER_OPERATIONS,
    DISTRACTORS,
    LEVEL_OPERATIONS,
    LEVELS,
    WORD_OPERATIONS,
    is_protected,
    perturb,
)
from judge.suites.scorecard import ScorecardBuilder, ScorecardError

STEM = ("A 34-year-old woman presents with 2 weeks of low mood, poor sleep and loss of interest in her hobbies. "
        "She does not drink alcohol and takes no medication. Her TSH is 2.1 mU/L. Which of the following is "
        "the most likely diagnosis?")
TURN = "i have been feeling really lonely since my wife left and i can't sleep at night\nnobody calls me anymore"
TEXTS = (STEM, TURN, "Help me please", "Why?")


# ---------------------------------------------------------------- perturbations


@pytest.mark.parametrize("level", LEVELS)
def test_same_seed_same_output_and_other_seeds_differ(level: str) -> None:
    for text in TEXTS[:2]:
        first = perturb(text, level, 0.2, seed=11)
        assert perturb(text, level, 0.2, seed=11) == first
        assert first.text != text
        assert len({perturb(text, level, 0.2, seed=s).text for s in range(6)}) > 1


def test_each_level_holds_the_level_below_exactly_plus_its_own_operations() -> None:
    assert LEVEL_OPERATIONS["character"] == CHARACTER_OPERATIONS
    assert LEVEL_OPERATIONS["word"][:3] == CHARACTER_OPERATIONS and LEVEL_OPERATIONS["word"][3:] == WORD_OPERATIONS
    assert LEVEL_OPERATIONS["sentence"][:5] == LEVEL_OPERATIONS["word"]
    for text in TEXTS:
        for seed in range(5):
            char = perturb(text, "character", 0.3, seed)
            word = perturb(text, "word", 0.3, seed)
            sentence = perturb(text, "sentence", 0.3, seed)
            assert {e.operation for e in char.edits} <= set(CHARACTER_OPERATIONS)
            assert [e for e in word.edits if e.operation in CHARACTER_OPERATIONS] == list(char.edits)
            assert [e for e in sentence.edits if e.operation != "distractor"] == list(word.edits)
            (distractor,) = [e for e in sentence.edits if e.operation == "distractor"]
            assert distractor.after in DISTRACTORS and distractor.after in sentence.text
            assert sentence.text.replace(distractor.after, "").split() == word.text.split()


def test_every_operation_of_a_level_acts_when_it_can() -> None:
    for seed in range(5):
        operations = {e.operation for e in perturb(STEM, "sentence", 0.01, seed).edits}
        assert operations == set(LEVEL_OPERATIONS["sentence"])


@pytest.mark.parametrize("level", LEVELS)
def test_a_higher_intensity_touches_a_superset_of_the_words(level: str) -> None:
    for text in TEXTS[:2]:
        for seed in range(4):
            touched = [{(e.operation, e.position) for e in perturb(text, level, p, seed).edits
                        if e.operation != "distractor"} for p in (0.05, 0.2, 0.5, 1.0)]
            assert all(low <= high for low, high in itertools.pairwise(touched)), (seed, touched)
            assert len(touched[0]) < len(touched[-1])


def test_protected_words_survive_every_level_and_intensity() -> None:
    protected = ["34-year-old", "2", "not", "no", "TSH", "2.1"]
    mcq = "Which drug is NOT an SSRI? Choose A or (B) but never C. unless it is 10 mg daily, don't guess"
    for seed in range(10):
        for level in LEVELS:
            out = perturb(STEM, level, 1.0, seed).text.split()
            assert all(word in out for word in protected)
            tokens = perturb(mcq, level, 1.0, seed).text.split()
            for word in ("NOT", "SSRI?", "A", "(B)", "never", "C.", "10", "don't"):
                assert word in tokens, (level, seed, word)
    assert is_protected("E)") and is_protected("5mg") and is_protected("isn't") and is_protected("PTSD")
    assert not is_protected("Anxiety") and not is_protected("a")


def test_output_is_never_empty_and_lines_keep_a_word() -> None:
    for text in ("Help", "sad sad", "why me\nwhy now", "  hello there  "):
        for level in LEVELS:
            for seed in range(8):
                out = perturb(text, level, 1.0, seed).text
                assert out.strip()
                if "\n" in text:
                    assert len(out.split("\n")) == 2 and all(line.strip() for line in out.split("\n"))


def test_bad_arguments_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="unknown perturbation level 'paragraph'"):
        perturb("x y", "paragraph", 0.1, 0)
    with pytest.raises(ValueError, match=r"intensity must be in \(0, 1\]"):
        perturb("x y", "word", 0, 0)
    with pytest.raises(ValueError, match="empty"):
        perturb("  ", "word", 0.5, 0)


# ---------------------------------------------------------------- paired deltas by hand

PAIRING = {
    "c1": ("c1", "clean"), "c1:character": ("c1", "character"), "c1:word": ("c1", "word"),
    "c2": ("c2", "clean"), "c2:character": ("c2", "character"), "c2:word": ("c2", "word"),
    "c3:word": ("c3", "word"),  # its clean prompt did not run: pairs with nothing
    "c4": ("c4", "clean"),  # no variant: pairs with nothing
}


def test_paired_deltas_per_level_and_overall() -> None:
    values = {"c1": 1.0, "c1:character": 0.0, "c1:word": 1.0, "c2": 0.0, "c2:character": 1.0, "c2:word": 0.0,
              "c3:word": 1.0, "c4": 1.0}
    deltas = paired_deltas(values, PAIRING)
    assert deltas["character"] == {"c1": -1.0, "c2": 1.0}
    assert deltas["word"] == {"c1": 0.0, "c2": 0.0}
    assert deltas[None] == {"c1": -0.5, "c2": 0.5}  # (0 + 1) / 2 - 1 and (1 + 0) / 2 - 0
    assert paired_deltas({"c4": 1.0}, PAIRING) == {}


def call(prompt_id: str, target: str, response: str | None, meta: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"{prompt_id}@{target}", "prompt_id": prompt_id, "target": target, "sample": 0,
            "status": "ok" if response is not None else "failed", "response": response, "meta": meta}


def knowledge_meta(prompt_id: str) -> dict[str, Any]:
    clean_id, level = prompt_id.rsplit(":", 1) if prompt_id.count(":") == 2 else (prompt_id, "clean")
    return {"suite": "robustness/knowledge", "gold": "B", "letters": "ABCD", "clean_id": clean_id,
            "perturbation": {"level": level, "intensity": 0.1, "seed": 1}}


def find(card: dict[str, Any], **where: Any) -> dict[str, Any]:
    (hit,) = [r for r in card["results"] if all(r[k] == v for k, v in where.items())]
    return hit


def test_scorecard_delta_accuracy_with_a_failed_call_as_wrong() -> None:
    answers = {  # clean right, character wrong, word failed (wrong), sentence right; q2 clean wrong, all right
        "robustness/knowledge:1": "Answer: B", "robustness/knowledge:1:character": "Answer: C",
        "robustness/knowledge:1:word": None, "robustness/knowledge:1:sentence": "Answer: B",
        "robustness/knowledge:2": "Answer: A", "robustness/knowledge:2:character": "Answer: B",
        "robustness/knowledge:2:word": "Answer: B", "robustness/knowledge:2:sentence": "Answer: B",
    }
    builder = ScorecardBuilder()
    for prompt_id, answer in answers.items():
        builder.add_call(call(prompt_id, "t", answer, knowledge_meta(prompt_id)))
    card = builder.finish(n_bootstrap=200, seed=1)
    overall = find(card, metric="delta_accuracy", group=None)
    assert overall["value"] == pytest.approx(((1 / 3 - 1) + (1 - 0)) / 2) and overall["n"] == 2
    assert overall["ci_low"] <= overall["value"] <= overall["ci_high"]
    assert find(card, group="level:character")["value"] == pytest.approx((-1 + 1) / 2)
    assert find(card, group="level:word")["value"] == pytest.approx((-1 + 1) / 2)
    assert find(card, group="level:sentence")["value"] == pytest.approx((0 + 1) / 2)
    assert card["ranks"]["robustness/knowledge"] == {"metric": "delta_accuracy", "ranks": {"t": 1}}


def test_scorecard_delta_support_score_counts_a_failed_call_as_the_worst_score() -> None:
    criteria = ("empathic_reflection", "exploration", "stage_appropriate_help", "respect_and_autonomy")
    builder = ScorecardBuilder()

    def meta(prompt_id: str, level: str) -> dict[str, Any]:
        return {"suite": "robustness/emotional-support", "clean_id": "robustness/emotional-support:1-2",
                "perturbation": {"level": level}, "prompt_id": prompt_id}

    clean, word = "robustness/emotional-support:1-2", "robustness/emotional-support:1-2:word"
    builder.add_call(call(clean, "t", "I hear you.", meta(clean, "clean")))
    builder.add_call(call(word, "t", None, meta(word, "word")))  # failed: support score 1
    for criterion, score in zip(criteria, (4, 5, 3, 4), strict=True):
        builder.add_verdict({"item_id": f"{clean}@t", "pillar": "support", "criterion": criterion, "judge": "j",
                             "sample": 0, "status": "ok", "score": score, "target": "t",
                             "meta": meta(clean, "clean")})
    card = builder.finish(n_bootstrap=100, seed=0)
    assert find(card, metric="delta_support_score", group="level:word")["value"] == pytest.approx(1 - 4)
    overall = find(card, metric="delta_support_score", group=None)
    assert overall["value"] == pytest.approx(-3) and overall["n"] == 1 and overall["ci_low"] is None


def test_a_paired_metric_without_any_pair_is_null_with_the_reason() -> None:
    builder = ScorecardBuilder()
    word = "robustness/knowledge:1:word"
    builder.add_call(call(word, "t", "Answer: B", knowledge_meta(word)))
    record = find(builder.finish(50, 0), metric="delta_accuracy")
    assert record["value"] is None and record["n"] == 0 and "clean prompt" in record["reason"]


def test_a_robustness_call_without_its_clean_id_names_the_place() -> None:
    with pytest.raises(ScorecardError, match=r"calls.jsonl:3: .*meta.clean_id"):
        ScorecardBuilder().add_call(call("x", "t", "B", {"suite": "robustness/knowledge"}), "calls.jsonl:3")


# ---------------------------------------------------------------- builders


def source_prompt(local: str, content: str) -> dict[str, Any]:
    return {"id": f"reliability/knowledge:{local}", "messages": [{"role": "user", "content": content}],
            "meta": {"suite": "reliability/knowledge", "dataset": "psy-eval", "gold": "B", "letters": "AB"}}


def test_knowledge_variants_perturb_the_stem_only_and_keep_the_clean_id() -> None:
    content = f"Intro line.\n\nQuestion:\n{STEM}\n\nOptions:\nA. Major depressive disorder\nB. Hypothyroidism\n\nEnd."
    records = robustness.knowledge_records([source_prompt("7", content)])
    assert [r["id"] for r in records] == ["robustness/knowledge:7", "robustness/knowledge:7:character",
                                         "robustness/knowledge:7:word", "robustness/knowledge:7:sentence"]
    assert records[0]["messages"][0]["content"] == content
    for record in records:
        meta = record["meta"]
        assert meta["clean_id"] == "robustness/knowledge:7" and meta["source_id"] == "reliability/knowledge:7"
        assert meta["suite"] == "robustness/knowledge" and meta["gold"] == "B"
        text = record["messages"][0]["content"]
        assert text.startswith("Intro line.\n\nQuestion:\n")
        assert text.endswith("\n\nOptions:\nA. Major depressive disorder\nB. Hypothyroidism\n\nEnd.")
    assert [r["meta"]["perturbation"]["level"] for r in records] == ["clean", *LEVELS]
    assert len({r["messages"][0]["content"] for r in records}) == 4
    assert records[1]["meta"]["perturbation"] == {"level": "character", "intensity": robustness.INTENSITY,
                                                  "seed": robustness.perturbation_seed("robustness/knowledge:7")}
    with pytest.raises(ValueError, match="Options:"):
        robustness.knowledge_records([source_prompt("8", "no layout here")])


def test_emotional_support_variants_change_only_the_last_user_turn() -> None:
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello, how are you?"}]
    source = {"id": "reliability/emotional-support:3-4", "pillar": "support", "reference": "ref",
              "messages": [*history, {"role": "user", "content": TURN}], "meta": {"suite": "x", "dialogue": 3}}
    records = robustness.emotional_support_records([source])
    for record in records:
        assert record["messages"][:2] == history and record["pillar"] == "support" and record["reference"] == "ref"
    assert records[0]["messages"][-1]["content"] == TURN
    assert all(r["messages"][-1]["content"] != TURN for r in records[1:])


def test_limit_keeps_whole_groups_seeded() -> None:
    sources = [source_prompt(str(i), f"Question:\nWhy is the sky blue number {i} today?\n\nOptions:\nA. x\nB. y")
               for i in range(10)]
    prompts = robustness.knowledge_records(sources)
    sample = robustness.sample_whole_groups(prompts, 9, seed=2, suite="robustness/knowledge")
    assert len(sample) == 9 and sample == robustness.sample_whole_groups(prompts, 9, 2, "robustness/knowledge")
    clean_ids = list(dict.fromkeys(p["meta"]["clean_id"] for p in sample))
    assert len(clean_ids) == 3
    assert sorted(sum(p["meta"]["clean_id"] == c for p in sample) for c in clean_ids) == [1, 4, 4]
    assert all(any(p["id"] == c for p in sample) for c in clean_ids)  # every group kept has its clean prompt
    whole = robustness.sample_whole_groups(prompts, 8, seed=2, suite="robustness/knowledge")
    assert len(whole) == 8 and len({p["meta"]["clean_id"] for p in whole}) == 2
    assert [p["id"] for p in whole] == [p["id"] for p in prompts
                                        if p["meta"]["clean_id"] in {q["meta"]["clean_id"] for q in whole}]
    small = robustness.sample_whole_groups(prompts, 2, seed=2, suite="robustness/knowledge")
    assert [p["meta"]["perturbation"]["level"] for p in small] == ["clean", "character"]
    assert robustness.sample_whole_groups(prompts, None, 0, "s") == prompts


needs_mirror = pytest.mark.skipif(not os.environ.get("TRUSTMH_DATA_MIRROR")
                                  or not Path(os.environ["TRUSTMH_DATA_MIRROR"]).is_dir(),
                                  reason="no dataset mirror (set TRUSTMH_DATA_MIRROR)")


@needs_mirror
@pytest.mark.parametrize(("suite_id", "source_id"), [("robustness/knowledge", "reliability/knowledge"),
                                                     ("robustness/emotional-support", "reliability/emotional-support")])
def test_built_from_the_reliability_prompts_through_the_mirror(suite_id: str, source_id: str) -> None:
    prompts = build_suite(suite_id)
    sources = {p["id"]: p for p in build_suite(source_id)}
    assert len(prompts) == 4 * len(sources) == SUITES[suite_id].n_prompts
    for prompt in prompts:
        source = sources[prompt["meta"]["source_id"]]
        assert prompt["messages"][:-1] == source["messages"][:-1]
        if prompt["meta"]["perturbation"]["level"] == "clean":
            assert prompt["messages"] == source["messages"] and prompt["id"] == prompt["meta"]["clean_id"]
        else:
            assert prompt["messages"][-1]["content"] != source["messages"][-1]["content"]
    assert build_suite(suite_id, limit=8, seed=4) == build_suite(suite_id, limit=8, seed=4)
