"""Robustness suites: the reliability prompts again, each once clean and once per perturbation level
(judge/suites/perturb.py), so a run measures the paired change of the same target on the same item.

- `robustness/knowledge`: USMLE-Mental questions (a stand-in for the paper's diagnosis data, D4 and SWMH, which is
  not in the dataset mirror); only the question stem is perturbed — the options and the answer instruction
  stay verbatim, so the gold letter stays the right answer. Metric: paired change of accuracy.
- `robustness/emotional-support`: ESConv conversations; the help-seeker's last turn is perturbed, the
  earlier turns are kept. Metric: paired change of the judged support score (support rubric).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from judge.suites import reliability
from judge.suites.metrics import CLEAN_LEVEL
from judge.suites.perturb import LEVELS, perturb
from judge.suites.spec import CompositeRule, MetricSpec, Observation, Observed

INTENSITY = 0.1
"""The suites' intensity at every level: each operation touches about one word in ten (at least one)."""

DELTA_ACCURACY = MetricSpec(
    name="delta_accuracy",
    kind="paired_delta",
    higher_is_better=True,
    source="deterministic",
    description="change of accuracy from the clean question, per level (group level:<name>)",
)
DELTA_SUPPORT_SCORE = MetricSpec(
    name="delta_support_score",
    kind="paired_delta",
    higher_is_better=True,
    source="judge",
    description="change of the judged support score from the clean turn, per level (level:<name>)",
)

_STEM_START = "Question:\n"
_STEM_END = "\n\nOptions:\n"


def perturbation_seed(clean_id: str) -> int:
    """Each clean prompt's own seed: the same prompt is always perturbed the same way, whatever the sample."""
    return zlib.crc32(clean_id.encode("utf-8"))


def _variants(
    suite: str, source: Mapping[str, Any], perturb_part: Callable[[str, str, int], str]
) -> list[dict[str, Any]]:
    """The clean copy of one reliability prompt and one variant per level, its last user turn changed by
    `perturb_part(content, level, seed)`; all share meta.clean_id (the clean copy's id)."""
    local = source["id"].split(":", 1)[1]
    clean_id = f"{suite}:{local}"
    seed = perturbation_seed(clean_id)
    records = []
    for level in (CLEAN_LEVEL, *LEVELS):
        record = {k: v for k, v in source.items() if k not in ("id", "messages", "meta")}
        messages = [dict(m) for m in source["messages"]]
        if level != CLEAN_LEVEL:
            messages[-1]["content"] = perturb_part(messages[-1]["content"], level, seed)
        record = {"id": clean_id if level == CLEAN_LEVEL else f"{clean_id}:{level}", **record, "messages": messages}
        record["meta"] = {
            **source["meta"],
            "suite": suite,
            "clean_id": clean_id,
            "source_id": source["id"],
            "perturbation": {
                "level": level,
                "intensity": 0.0 if level == CLEAN_LEVEL else INTENSITY,
                "seed": None if level == CLEAN_LEVEL else seed,
            },
        }
        records.append(record)
    return records


def perturb_stem(content: str, level: str, seed: int) -> str:
    """The knowledge prompt with only its question stem perturbed (the text between "Question:" and
    "Options:"); a prompt without that layout is refused, since its options could not be kept intact."""
    start, end = content.find(_STEM_START), content.find(_STEM_END)
    if start < 0 or end < start:
        raise ValueError("a knowledge prompt must hold 'Question:' then 'Options:' (its options stay verbatim)")
    start += len(_STEM_START)
    return content[:start] + perturb(content[start:end], level, INTENSITY, seed).text + content[end:]


def perturb_turn(content: str, level: str, seed: int) -> str:
    return perturb(content, level, INTENSITY, seed).text


def knowledge_records(sources: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [r for source in sources for r in _variants("robustness/knowledge", source, perturb_stem)]


def emotional_support_records(sources: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [r for source in sources for r in _variants("robustness/emotional-support", source, perturb_turn)]


def build_knowledge() -> list[dict[str, Any]]:
    return knowledge_records(reliability.knowledge_prompts())


def build_emotional_support() -> list[dict[str, Any]]:
    return emotional_support_records(reliability.emotional_support_prompts())


def read_knowledge(call: Mapping[str, Any]) -> Observed:
    """Correct (1) or not (0), read as reliability/knowledge reads it; unreadable or failed → 0."""
    observed = reliability.read_knowledge(call)
    values = (Observation(DELTA_ACCURACY.name, o.value) for o in observed.observations)
    return Observed(tuple(values), unparsed=observed.unparsed)


def support_delta_rule() -> CompositeRule:
    """Per answer the support score (mean of the four quality criteria); a failed call: 1, the worst."""
    return CompositeRule(DELTA_SUPPORT_SCORE.name, reliability.SUPPORT_QUALITY_CRITERIA, failure_value=1.0)


def sample_whole_groups(
    prompts: Sequence[dict[str, Any]], limit: int | None, seed: int, suite: str
) -> list[dict[str, Any]]:
    """`--limit` in clean-prompt groups (a clean prompt and its variants), so the prompts kept can be
    paired: exactly `limit` prompts from ceil(limit / group size) groups drawn with the seed and the suite
    id, in suite order; every group is whole except the last, which keeps its first prompts (the clean
    one first, so it still pairs)."""
    if limit is None or limit >= len(prompts):
        return list(prompts)
    if limit < 0:
        raise ValueError("limit must be at least 0")
    groups: dict[str, list[dict[str, Any]]] = {}
    for prompt in prompts:
        groups.setdefault(prompt["meta"]["clean_id"], []).append(prompt)
    size = max(len(g) for g in groups.values())
    count = -(-limit // size)
    rng = np.random.default_rng([seed, zlib.crc32(suite.encode("utf-8"))])
    keys = list(groups)
    chosen = sorted(int(i) for i in rng.choice(len(keys), size=min(count, len(keys)), replace=False))
    kept = [p for i in chosen for p in groups[keys[i]]]
    return kept[:limit]
