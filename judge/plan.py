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
    """What every call of one part of a pillar shares: the criteria it judges, their verdict model and hashes.

    A pillar is one part (every criterion) unless its rubric hides identity cues from some criteria and
    not from others: then it is two parts, `visible` and `masked`, judged in two calls, since one
    rendering cannot both show and hide the same words.
    """

    rubric: Rubric  # the criteria this part judges (the whole rubric for a one-part pillar)
    whole: Rubric  # the pillar's rubric
    part: str  # "" for a one-part pillar, else "visible" or "masked"
    model: type[BaseModel]
    schema_hash: str
    schema_chars: int

    @property
    def criteria(self) -> tuple[str, ...] | None:
        """The criteria to render, or None for the whole rubric."""
        return None if not self.part else tuple(c.id for c in self.rubric.criteria)


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
    judged_response: str  # the response as the call shows it (masked in a masked part): evidence must quote it

    @property
    def call_id(self) -> tuple[str, str, str, str, int, str]:
        """Identity of the call within a run, independent of its content."""
        return (self.item.id, self.pillar, self.judge.name, self.role, self.sample, self.context.part)

    @property
    def part(self) -> str:
        return self.context.part

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


def _context(part_rubric: Rubric, whole: Rubric, part: str) -> PillarContext:
    model = verdict_model(part_rubric)
    schema_chars = len(json.dumps(model.model_json_schema()))
    return PillarContext(part_rubric, whole, part, model, schema_hash(model), schema_chars)


def pillar_contexts(rubrics: dict[str, Rubric]) -> dict[str, tuple[PillarContext, ...]]:
    """Each pillar's parts: one, or `visible` and `masked` where only some criteria hide identity cues."""
    contexts: dict[str, tuple[PillarContext, ...]] = {}
    for pillar, rubric in rubrics.items():
        visible, masked = rubric.identity_split()
        if visible and masked:
            contexts[pillar] = (
                _context(rubric.restricted_to(visible), rubric, "visible"),
                _context(rubric.restricted_to(masked), rubric, "masked"),
            )
        else:
            contexts[pillar] = (_context(rubric, rubric, ""),)
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
            for context in contexts[pillar]:
                messages = tuple(renderer.render(context.whole, item, context.criteria))
                judged = renderer.judged_response(context.whole, item, context.criteria)
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
                                judged_response=judged,
                            )
                        )
    return calls
