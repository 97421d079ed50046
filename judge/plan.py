"""Turn items, rubrics and judges into the list of judge calls, each with its content-derived key.

Pure: no I/O. The order of the plan is the order of the final `verdicts.jsonl`, so a resumed or
concurrent run writes the same file as a sequential one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from judge.cache import request_key
from judge.items import Item
from judge.judges import JudgeSpec
from judge.prompts import ChatMessage, PromptRenderer, prompt_hash
from judge.rubric import Rubric
from judge.verdict import schema_hash, verdict_model

Role = Literal["panel", "tiebreak"]


@dataclass(frozen=True)
class PillarContext:
    """What every call of one pillar shares: the rubric, its verdict model and their hashes."""

    rubric: Rubric
    model: type[BaseModel]
    schema_hash: str
    schema_chars: int


@dataclass(frozen=True)
class PlannedCall:
    item: Item
    pillar: str
    judge: JudgeSpec
    role: Role
    sample: int
    messages: tuple[ChatMessage, ...]
    prompt_hash: str
    request_key: str
    context: PillarContext

    @property
    def call_id(self) -> tuple[str, str, str, str, int]:
        """Identity of the call within a run, independent of its content."""
        return (self.item.id, self.pillar, self.judge.name, self.role, self.sample)

    @property
    def rubric(self) -> Rubric:
        return self.context.rubric

    @property
    def worker_name(self) -> str:
        return self.judge.name


class PlanError(Exception):
    """Items and options that cannot be planned (a usage error)."""


def pillars_for(item: Item, requested: Sequence[str] | None) -> tuple[str, ...]:
    """An item's own pillars, narrowed to `--pillars` when given; `--pillars` alone when it has none."""
    if item.pillars:
        return tuple(p for p in item.pillars if not requested or p in requested)
    return tuple(requested or ())


def pillar_contexts(rubrics: dict[str, Rubric]) -> dict[str, PillarContext]:
    contexts = {}
    for pillar, rubric in rubrics.items():
        model = verdict_model(rubric)
        schema_chars = len(json.dumps(model.model_json_schema()))
        contexts[pillar] = PillarContext(rubric, model, schema_hash(model), schema_chars)
    return contexts


def plan_calls(
    items: Sequence[Item],
    contexts: dict[str, PillarContext],
    judges: Sequence[JudgeSpec],
    renderer: PromptRenderer,
    *,
    requested_pillars: Sequence[str] | None = None,
    samples: int = 1,
    role: Role = "panel",
) -> list[PlannedCall]:
    unplanned = [item.id for item in items if not pillars_for(item, requested_pillars)]
    if unplanned and requested_pillars is None:
        shown = ", ".join(unplanned[:5]) + (" …" if len(unplanned) > 5 else "")
        raise PlanError(f"{len(unplanned)} item(s) name no pillar ({shown}); add a `pillar` field or pass --pillars")
    calls = []
    for item in items:
        for pillar in pillars_for(item, requested_pillars):
            context = contexts[pillar]
            messages = tuple(renderer.render(context.rubric, item))
            wire = [m.as_dict() for m in messages]
            p_hash = prompt_hash(list(messages))
            for judge in judges:
                params = judge.decoding_params()
                for sample in range(samples):
                    calls.append(
                        PlannedCall(
                            item=item,
                            pillar=pillar,
                            judge=judge,
                            role=role,
                            sample=sample,
                            messages=messages,
                            prompt_hash=p_hash,
                            request_key=request_key(params, wire, context.schema_hash, sample),
                            context=context,
                        )
                    )
    return calls
