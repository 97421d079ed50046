"""Turn items, rubrics and judges into the list of judge calls, each with its content-derived key.

Pure: no I/O. The order of the plan is the order of the final `verdicts.jsonl`, so a resumed or
concurrent run writes the same file as a sequential one.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from judge.calls.cache import KEY_VERSION, request_key
from judge.calls.engine import BuiltOnAccess
from judge.errors import UsageError
from judge.items import Item
from judge.judges import JudgeSpec
from judge.labels import forced_criteria, risk_label
from judge.prompts import ChatMessage, PromptRenderer, prompt_hash
from judge.rubric import Rubric
from judge.verdict import schema_hash, verdict_model

Role = Literal["panel", "tiebreak"]
# Characters of rendered item messages a plan keeps (the system message is shared by every group of a part):
# the run then sends them without rendering them a second time, and every judge and sample of a group asks
# the same ones. A budget in characters, not a count of groups, bounds the memory whatever the items' size.
RECENT_CHARS = 4_000_000


@dataclass(frozen=True)
class PillarContext:
    """What every call of one part of a pillar shares: the criteria it judges, their verdict model and hashes.

    A pillar is one part (every criterion) unless its rubric hides identity cues from some criteria and
    not from others: then it is two parts, `visible` and `masked`, judged in two calls, since one
    rendering cannot both show and hide the same words.
    """

    rubric: Rubric  # the criteria this part judges (the whole rubric for a one-part pillar)
    whole: Rubric  # the pillar's rubric
    part: str  # "" for a one-part pillar, else "visible", "masked", "critical:ID", "others" (see pillar_parts)
    model: type[BaseModel]
    schema_hash: str
    schema_chars: int
    forced: frozenset[str] = frozenset()  # criteria an item's risk label makes applicable (no `applicable` field)

    def labelled(self, forced: frozenset[str]) -> PillarContext:
        """This part as an item whose risk label makes `forced` applicable sees it: its own verdict model
        and schema hash (so its cache key differs from an unlabelled item's)."""
        forced = forced & {c.id for c in self.rubric.criteria}
        if forced == self.forced:
            return self
        return _context(self.rubric, self.whole, self.part, forced)

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
    judged_turns: tuple[tuple[str, str], ...] = ()  # every turn as shown, response last: conversation evidence

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


class PlanError(UsageError):
    """Items and options that cannot be planned (a usage error)."""


def pillars_for(item: Item, requested: Sequence[str] | None) -> tuple[str, ...]:
    """An item's own pillars, narrowed to `--pillars` when given; `--pillars` alone when it has none."""
    if item.pillars:
        return tuple(p for p in item.pillars if not requested or p in requested)
    return tuple(requested or ())


def _context(part_rubric: Rubric, whole: Rubric, part: str, forced: frozenset[str] = frozenset()) -> PillarContext:
    model = verdict_model(part_rubric, forced)
    schema = model.model_json_schema()
    return PillarContext(part_rubric, whole, part, model, schema_hash(schema), len(json.dumps(schema)), forced)


OTHERS_PART = "others"
CRITICAL_PART = "critical:"


def _critical_groups(criteria: tuple[str, ...], rubric: Rubric) -> list[tuple[str, tuple[str, ...]]]:
    """(part name, criteria) for one call per critical criterion, then one for the rest, in rubric order."""
    critical = [cid for cid in criteria if rubric.criterion(cid).severity == "critical"]
    others = tuple(cid for cid in criteria if cid not in critical)
    groups = [(f"{CRITICAL_PART}{cid}", (cid,)) for cid in critical]
    return groups + ([(OTHERS_PART, others)] if others else [])


def pillar_parts(rubric: Rubric, *, split_critical: bool = False) -> tuple[PillarContext, ...]:
    """A pillar's parts: one, or `visible` and `masked` where only some criteria hide identity cues.

    With `split_critical` (the halo check) every critical criterion is judged in a call of its own and
    the other criteria in one more (inside each identity part: `masked/critical:ID`). A part judges fewer
    criteria than the whole rubric, so its system message, hence its cache key, differs from the one
    call's; a pillar with nothing to split (no critical criterion, or one criterion) keeps its one call.
    """
    visible, masked = rubric.identity_split()
    identity = [("visible", visible), ("masked", masked)] if visible and masked else [("", visible or masked)]
    parts: list[tuple[str, tuple[str, ...]]] = []
    for name, criteria in identity:
        groups = _critical_groups(criteria, rubric) if split_critical else []
        if len(groups) < 2:
            parts.append((name, criteria))
        else:
            parts += [(f"{name}/{sub}" if name else sub, ids) for sub, ids in groups]
    if len(parts) == 1:
        return (_context(rubric, rubric, ""),)
    return tuple(_context(rubric.restricted_to(ids), rubric, name) for name, ids in parts)


class PillarContexts(Mapping[str, tuple[PillarContext, ...]]):
    """Every rubric's parts, each built (verdict model, schema, hash) the first time a call needs it:
    a run over one pillar does not pay at start-up for the models of the other seven."""

    def __init__(self, rubrics: Mapping[str, Rubric], split_critical: bool = False) -> None:
        self.rubrics = rubrics
        self.split_critical = split_critical
        self._built: dict[str, tuple[PillarContext, ...]] = {}

    def __getitem__(self, pillar: str) -> tuple[PillarContext, ...]:
        if (parts := self._built.get(pillar)) is None:
            parts = self._built[pillar] = pillar_parts(self.rubrics[pillar], split_critical=self.split_critical)
        return parts

    def __iter__(self) -> Iterator[str]:
        return iter(self.rubrics)

    def __len__(self) -> int:
        return len(self.rubrics)


def pillar_contexts(rubrics: Mapping[str, Rubric], *, split_critical: bool = False) -> PillarContexts:
    return PillarContexts(rubrics, split_critical)


def _canonical(value: Any) -> str:
    """JSON as `judge.hashing.sha256_of` writes it before hashing."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class PillarHashes:
    """`request_key` and `prompt_hash` of one pillar's calls, with the system message hashed once.

    Every call of a pillar starts with the same system message (the rubric, several kilobytes), and
    both digests hash canonical JSON that starts with it; the hash state after that shared start is
    kept and copied. The digests are exactly those of `judge.calls.cache.request_key` and
    `judge.prompts.prompt_hash` (tested); prompts of another shape are hashed by those functions.
    """

    def __init__(self, system: str, schema_hash: str) -> None:
        self.system = system
        head = '{"content":' + _canonical(system) + ',"role":"system"}'
        self._key_start = hashlib.sha256(('{"messages":[' + head).encode("utf-8"))
        self._prompt_start = hashlib.sha256(("[" + head).encode("utf-8"))
        self._tail = ',"schema":' + _canonical(schema_hash) + ',"v":' + _canonical(KEY_VERSION) + "}"
        self.schema_hash = schema_hash

    def digests(
        self, messages: Sequence[ChatMessage], params: Sequence[dict[str, Any]], samples: int
    ) -> tuple[bytes, list[bytes]]:
        """(prompt hash, [request key of each params × sample]) as raw 32-byte digests."""
        wire = [m.as_dict() for m in messages]
        if len(messages) < 1 or messages[0].role != "system" or messages[0].content != self.system:
            keys = [
                bytes.fromhex(request_key(p, wire, self.schema_hash, sample))
                for p in params
                for sample in range(samples)
            ]
            return bytes.fromhex(prompt_hash(list(messages))), keys
        rest = "".join("," + _canonical(m) for m in wire[1:]).encode("utf-8")
        prompt = self._prompt_start.copy()
        prompt.update(rest + b"]")
        conversation = self._key_start.copy()
        conversation.update(rest + b'],"params":')
        keys = []
        for decoding in params:
            with_params = conversation.copy()
            with_params.update(_canonical(decoding).encode("utf-8"))
            for sample in range(samples):
                key = with_params.copy()
                key.update(f',"sample":{_canonical(sample)}{self._tail}'.encode())
                keys.append(key.digest())
        return prompt.digest(), keys


class CallPlan(BuiltOnAccess[PlannedCall]):
    """Judge calls in plan order, held compactly so that a run's memory does not grow with its calls.

    Per item × pillar × part group it keeps the item's index (the item itself stays in the caller's
    store), the pillar and part, the prompt's size and hash; per call its 32-byte request key. A
    `PlannedCall`, with its rendered messages, is built when asked for and forgotten after. The most
    recent groups' messages are kept, as every judge and sample of a group asks for the same ones; so
    are the first groups', from planning, where they were rendered to be keyed, since a run asks for
    those first. Calls of group g are the
    `per_group` consecutive indices from g × per_group: judge-major, then sample.
    """

    def __init__(
        self,
        items: Sequence[Item],
        contexts: Mapping[str, tuple[PillarContext, ...]],
        judges: Sequence[JudgeSpec],
        renderer: PromptRenderer,
        *,
        samples: int = 1,
        role: Role = "panel",
    ) -> None:
        self.items, self.contexts, self.judges, self.renderer = items, contexts, list(judges), renderer
        self.samples, self.role = samples, role
        self.per_group = len(self.judges) * samples
        self.pillar_names = sorted(contexts)
        self._pillar_index = {p: i for i, p in enumerate(self.pillar_names)}
        self._params = [judge.decoding_params() for judge in self.judges]
        self.group_item = array("q")
        self.group_pillar = array("H")
        self.group_part = array("B")
        self.group_context = array("H")  # index in self._context_list: the part, as the item's label shapes it
        self._context_list: list[PillarContext] = []
        self._context_index: dict[tuple[str, int, frozenset[str]], int] = {}
        self.group_chars = array("q")  # characters of the rendered messages, for token estimates
        self._prompt_hashes = bytearray()
        self._keys = bytearray()
        self._recent: OrderedDict[int, tuple[ChatMessage, ...]] = OrderedDict()
        self._recent_chars = 0
        self._hashes: dict[int, PillarHashes] = {}

    def add_group(
        self, item_index: int, pillar: str, item: Item | None = None, parts: Sequence[int] | None = None
    ) -> None:
        """Plan every part (or the given `parts`) × judge × sample of one item × pillar, rendering each
        part's prompt once to key its calls."""
        item = self.items[item_index] if item is None else item
        for part, context in enumerate(self.contexts[pillar]):
            if parts is not None and part not in parts:
                continue
            index = self._labelled(pillar, part, context, item)
            context = self._context_list[index]
            messages = self._render(item, context)
            hashes = self._hashes.get(index)
            if hashes is None:  # every call of a part starts with the same system message
                hashes = self._hashes[index] = PillarHashes(messages[0].content, context.schema_hash)
            p_hash, keys = hashes.digests(messages, self._params, self.samples)
            if self._recent_chars + _item_chars(messages) <= RECENT_CHARS:  # the run starts with these
                self._keep(len(self.group_item), messages)
            self.group_item.append(item_index)
            self.group_pillar.append(self._pillar_index[pillar])
            self.group_part.append(part)
            self.group_context.append(index)
            self.group_chars.append(sum(len(m.content) for m in messages))
            self._prompt_hashes += p_hash
            for key in keys:
                self._keys += key

    def _labelled(self, pillar: str, part: int, context: PillarContext, item: Item) -> int:
        """Index of the part as this item sees it: the criteria its risk label makes applicable are forced."""
        forced = (
            forced_criteria(context.whole.label_applies, risk_label(item.meta))
            if context.whole.label_applies
            else frozenset()
        )
        key = (pillar, part, forced)
        if (index := self._context_index.get(key)) is None:
            index = self._context_index[key] = len(self._context_list)
            self._context_list.append(context.labelled(forced))
        return index

    def _render(self, item: Item, context: PillarContext) -> tuple[ChatMessage, ...]:
        return tuple(self.renderer.render(context.whole, item, context.criteria))

    @property
    def groups(self) -> int:
        return len(self.group_item)

    def __len__(self) -> int:
        return self.groups * self.per_group

    def _split(self, index: int) -> tuple[int, int, int]:
        """(group, judge index, sample) of a call index."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        group, rest = divmod(index, self.per_group)
        judge, sample = divmod(rest, self.samples)
        return group, judge, sample

    def pillar_of_group(self, group: int) -> str:
        return self.pillar_names[self.group_pillar[group]]

    def context_of_group(self, group: int) -> PillarContext:
        return self._context_list[self.group_context[group]]

    def item_id_of_group(self, group: int) -> str:
        item = self.group_item[group]
        ids = getattr(self.items, "ids", None)
        return ids[item] if ids is not None else self.items[item].id

    def request_key(self, index: int) -> str:
        return self._keys[32 * index : 32 * index + 32].hex()

    def call_id(self, index: int) -> tuple[str, str, str, str, int, str]:
        group, judge, sample = self._split(index)
        part = self.context_of_group(group).part
        return (
            self.item_id_of_group(group),
            self.pillar_of_group(group),
            self.judges[judge].name,
            self.role,
            sample,
            part,
        )

    def worker_name(self, index: int) -> str:
        return self.judges[self._split(index)[1]].name

    def judge_of(self, index: int) -> JudgeSpec:
        return self.judges[self._split(index)[1]]

    def input_chars(self, index: int) -> int:
        """Characters of the call's prompt and its verdict schema (what `estimate_input_tokens` counts)."""

        group = self._split(index)[0]
        return self.group_chars[group] + self.context_of_group(group).schema_chars

    def _messages(self, group: int, item: Item, context: PillarContext) -> tuple[ChatMessage, ...]:
        if (messages := self._recent.get(group)) is None:
            messages = self._render(item, context)
            self._keep(group, messages)
            while self._recent_chars > RECENT_CHARS and len(self._recent) > 1:
                self._recent_chars -= _item_chars(self._recent.popitem(last=False)[1])
        return messages

    def _keep(self, group: int, messages: tuple[ChatMessage, ...]) -> None:
        self._recent[group] = messages
        self._recent_chars += _item_chars(messages)

    def _build(self, index: int) -> PlannedCall:
        group, judge, sample = self._split(index)
        item = self.items[self.group_item[group]]
        pillar = self.pillar_of_group(group)
        context = self.context_of_group(group)
        return PlannedCall(
            item=item,
            pillar=pillar,
            judge=self.judges[judge],
            role=self.role,
            sample=sample,
            messages=self._messages(group, item, context),
            prompt_hash=self._prompt_hashes[32 * group : 32 * group + 32].hex(),
            request_key=self.request_key(index),
            context=context,
            judged_response=self.renderer.judged_response(context.whole, item, context.criteria),
            judged_turns=self.renderer.judged_turns(context.whole, item, context.criteria),
        )


def build_plan(
    items: Sequence[Item],
    contexts: Mapping[str, tuple[PillarContext, ...]],
    judges: Sequence[JudgeSpec],
    renderer: PromptRenderer,
    *,
    requested_pillars: Sequence[str] | None = None,
    samples: int = 1,
    role: Role = "panel",
) -> CallPlan:
    """Every item × pillar × part × judge × sample, in that order; raises PlanError for items with no pillar."""
    plan = CallPlan(items, contexts, judges, renderer, samples=samples, role=role)
    unplanned: list[str] = []
    for index, item in enumerate(items):
        pillars = pillars_for(item, requested_pillars)
        if not pillars and requested_pillars is None:
            unplanned.append(item.id)
        for pillar in pillars:
            plan.add_group(index, pillar, item)
    if unplanned:
        shown = ", ".join(unplanned[:5]) + (" …" if len(unplanned) > 5 else "")
        raise PlanError(f"{len(unplanned)} item(s) name no pillar ({shown}); add a `pillar` field or pass `pillars=`")
    return plan


def _item_chars(messages: tuple[ChatMessage, ...]) -> int:
    """Characters a group's rendered messages hold of their own (the system message is shared)."""
    return sum(len(m.content) for m in messages[1:])
