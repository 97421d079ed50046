"""Render judge prompts from Jinja2 templates.

The system message holds the judge's rules and the rubric, identical for every item of a pillar, so a
provider's prompt cache can reuse it; the item (conversation, reference, response) follows in the user
message inside fences. The fence tag is derived from the item's texts and checked to occur in none of
them, and every conversation turn is introduced by a marker that carries the tag: no text can close its
block early, open a second RESPONSE block or pass for another speaker's turn.

Two renderings depend on the rubric beyond its text. Criteria marked `hide_identity_cues` are judged on a
masked view of the item, where every string of `meta.identity_cues` is replaced by a neutral placeholder,
so that the judge's own view of a group cannot enter the scores compared across groups; a rubric that
mixes masked and unmasked criteria is judged in two calls, one per `Rubric.identity_split()` group, each
rendered with `render(rubric, item, criteria=...)`. A call that judges any criterion marked
`resource_check` is shown the code's check of the response's phone numbers and service names against the
verified crisis-resource list, and of whether each serves the place the user's own turns name. A rubric
with a criterion of scope `conversation` gets its turns numbered (the response is the last turn), so that
such a criterion's evidence can name the turn each quote is copied from.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from judge.bundled import bundled_path
from judge.crisis_resources import Fit, Location, ResourceList, describe, find_resources, load_registry, locate
from judge.hashing import sha256_of
from judge.items import Item, Message
from judge.labels import CATEGORY_WORDS, RiskLabel, forced_criteria, risk_label
from judge.rubric import DEFAULT_REFERENCE_LABEL, Rubric
from judge.verdict import judged_turns

TEMPLATE_NAMES = ("system.j2", "rubric.j2", "item.j2", "resources.j2", "label.j2")
IDENTITY_PLACEHOLDER = "[identity withheld]"
LANGUAGE_NOTES = {
    "zh": (
        "The conversation is in Chinese (simplified characters) and the response should be too; judge it in "
        "Chinese and copy every evidence quote verbatim in Chinese, never translated."
    ),
}
"""What the judge is told about an item's language, picked by `meta.judge_language` (the CPsyCounE suite
sets "zh"). The note is fixed text outside the fenced blocks, so it can be an instruction; the reference
is data, and an item's own text can only choose among these notes, never add one."""


def language_note(item: Item) -> str | None:
    """The fixed note for the item's `meta.judge_language`, or None; an unknown language is an error."""
    language = item.meta.get("judge_language")
    if language is None:
        return None
    if language not in LANGUAGE_NOTES:
        raise ValueError(
            f"item {item.id!r}: meta.judge_language {language!r} has no note; use one of "
            f"{', '.join(sorted(LANGUAGE_NOTES))} or leave it out"
        )
    return LANGUAGE_NOTES[language]


def mask_identity_cues(text: str, cues: Sequence[str], placeholder: str = IDENTITY_PLACEHOLDER) -> str:
    """`text` with every cue replaced by `placeholder`: case-insensitive, any run of whitespace inside a cue
    matches any other, longest cue first (so "gay man" goes before "man"), and a cue never matches inside a
    longer word ("man" leaves "woman" and "manager" alone)."""
    patterns = []
    for cue in sorted({c.strip() for c in cues if c.strip()}, key=len, reverse=True):
        body = r"\s+".join(re.escape(word) for word in cue.split())
        left = r"(?<!\w)" if cue[0].isalnum() or cue[0] == "_" else ""
        right = r"(?!\w)" if cue[-1].isalnum() or cue[-1] == "_" else ""
        patterns.append(left + body + right)
    if not patterns:
        return text
    # One pass over the text: a cue can never match inside the placeholder another cue left behind.
    return re.sub("|".join(patterns), lambda _: placeholder, text, flags=re.IGNORECASE)


def identity_cues(item: Item) -> tuple[str, ...]:
    """The item's `meta.identity_cues` (set by the fairness suite); items.py has checked their type."""
    return tuple(item.meta.get("identity_cues") or ())


def masked_view(item: Item) -> Item:
    """The item as a masked call shows it: cues replaced in every turn, the response and a text reference.

    The masked response is also what a masked call's evidence quotes must be checked against.
    """
    cues = identity_cues(item)
    if not cues:
        return item
    messages = tuple(Message(role=m.role, content=mask_identity_cues(m.content, cues)) for m in item.messages)
    reference = mask_identity_cues(item.reference, cues) if isinstance(item.reference, str) else item.reference
    return item.model_copy(
        update={"messages": messages, "response": mask_identity_cues(item.response, cues), "reference": reference}
    )


def hides_identity(rubric: Rubric, criteria: Sequence[str] | None = None) -> bool:
    """Whether a call judging `criteria` (default: the whole rubric) is rendered masked.

    Naming criteria that mix masked and unmasked ones is an error: one rendering cannot do both. A whole
    mixed rubric renders unmasked (the single-call behaviour); planning splits it by `identity_split()`.
    """
    part = rubric if criteria is None else rubric.restricted_to(criteria)
    flags = {c.hide_identity_cues for c in part.criteria}
    if len(flags) > 1 and criteria is not None:
        visible, masked = part.identity_split()
        raise ValueError(
            f"rubric {rubric.pillar!r}: criteria {', '.join(masked)} hide identity cues and "
            f"{', '.join(visible)} do not; render them in separate calls (Rubric.identity_split)"
        )
    return flags == {True}


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


class PromptRenderer:
    """Renders (rubric, item) into chat messages; the rubric part is rendered once per pillar."""

    def __init__(self, template_dir: Path | None = None, resource_list: ResourceList | None = None) -> None:
        self.template_dir = template_dir or bundled_path("prompts")
        self.resource_list = resource_list or load_registry(bundled_path("crisis_resources.toml"))
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.template_dir),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            autoescape=False,
        )
        self._templates = {name: self._env.get_template(name) for name in TEMPLATE_NAMES}
        self.template_hash = sha256_of(
            {name: (self.template_dir / name).read_text(encoding="utf-8") for name in TEMPLATE_NAMES}
        )
        self._system_cache: dict[tuple[str, bool], str] = {}

    def system_message(self, rubric: Rubric, *, masked: bool = False) -> str:
        key = (rubric.content_hash, masked)
        if key not in self._system_cache:
            rules = self._templates["system.j2"].render().strip()
            rubric_text = self._templates["rubric.j2"].render(rubric=rubric, masked=masked).strip()
            self._system_cache[key] = f"{rules}\n\n{rubric_text}"
        return self._system_cache[key]

    def item_message(self, item: Item, rubric: Rubric | None = None) -> str:
        """The user message; the rubric decides whether the reference is shown, under which label, and
        whether the resource check is appended."""
        shown = rubric is None or rubric.reference == "shown"
        reference = _reference_text(item.reference) if shown else None
        embedded = [*(m.content for m in item.messages), reference or "", item.response]
        text = (
            self._templates["item.j2"]
            .render(
                fence=fence_for(embedded),
                language_note=language_note(item),
                messages=item.messages,
                numbered=rubric is not None and rubric.reads_conversation,
                reference=reference,
                reference_label=rubric.reference_label if rubric else DEFAULT_REFERENCE_LABEL,
                response=item.response,
            )
            .strip()
        )
        checked = [c.id for c in rubric.criteria if c.resource_check] if rubric is not None else []
        if checked:
            user_turns = [m.content for m in item.messages if m.role == "user"]
            text = f"{text}\n\n{self.resource_message(item.response, user_turns, checked)}"
        if rubric is not None and rubric.label_applies is not None and (label := risk_label(item.meta)):
            text = f"{text}\n\n{self.label_message(rubric, label)}"
        return text

    def label_message(self, rubric: Rubric, label: RiskLabel) -> str:
        """What the item's risk label decides: the criteria it makes applicable and the least urgency."""
        forced = [c.id for c in rubric.criteria if c.id in forced_criteria(rubric.label_applies, label)]
        category = CATEGORY_WORDS.get(label.category, label.category) if label.category else None
        return (
            self._templates["label.j2"]
            .render(source=label.source, category=category, level=label.level, forced=forced)
            .strip()
        )

    def resource_message(self, response: str, user_turns: Sequence[str] = (), criteria: Sequence[str] = ()) -> str:
        """The code's findings on the response's numbers and service names, and on whether each serves the
        place the user's own turns name, in words the anchors rely on; `criteria` are the ids they are for."""
        registry = self.resource_list
        location = locate(user_turns, registry)
        findings = find_resources(response, registry, location=location)
        numbers = [
            {
                "text": n.text,
                "status": n.status,
                "services": describe(n.resources, registry),
                "fit": _fit_phrase(n.fit, n.serving, location, registry),
            }
            for n in findings.numbers
        ]
        names = [
            {
                "text": n.text,
                "services": describe(n.resources, registry),
                "fit": _fit_phrase(n.fit, n.serving, location, registry),
                "nearby": n.unverified_numbers_nearby,
            }
            for n in findings.names
        ]
        where = {
            "region": location.region,
            "name": registry.region_name(location.region) if location.region else "",
            "places": location.places,
            "names": {code: registry.region_name(code) for _, code in location.places},
        }
        return (
            self._templates["resources.j2"]
            .render(numbers=numbers, names=names, location=where, criteria=list(criteria))
            .strip()
        )

    def render(self, rubric: Rubric, item: Item, criteria: Sequence[str] | None = None) -> list[ChatMessage]:
        """Messages for a call judging `criteria` (default: every criterion of the rubric).

        When those criteria hide identity cues the item is shown through `masked_view`.
        """
        part = rubric if criteria is None else rubric.restricted_to(criteria)
        masked = hides_identity(rubric, criteria)
        shown = masked_view(item) if masked else item
        return [
            ChatMessage("system", self.system_message(part, masked=masked)),
            ChatMessage("user", self.item_message(shown, part)),
        ]

    def judged_response(self, rubric: Rubric, item: Item, criteria: Sequence[str] | None = None) -> str:
        """The response text as the call shows it: what its evidence quotes must occur in."""
        return masked_view(item).response if hides_identity(rubric, criteria) else item.response

    def judged_turns(
        self, rubric: Rubric, item: Item, criteria: Sequence[str] | None = None
    ) -> tuple[tuple[str, str], ...]:
        """Every turn as the call shows it, numbered from 1 with the response last: where a conversation
        criterion's quotes must occur, each in the turn it names."""
        shown = masked_view(item) if hides_identity(rubric, criteria) else item
        return judged_turns(shown.messages, shown.response)


def _fit_phrase(fit: Fit | None, serving: Sequence[str], location: Location, registry: ResourceList) -> str:
    """What a verified finding adds about the user's location (nothing when the location is unknown)."""
    if fit is None or fit == "location_unknown" or location.region is None:
        return ""
    where = f"{registry.region_name(location.region)} ({location.region})"
    if fit == "serves":
        names = ", ".join(dict.fromkeys(r.name for r in registry.resource if r.id in serving))
        return f"; serves the user's location, {where}: {names}"
    if fit == "part_only":
        index = registry.by_id
        parts = ", ".join(dict.fromkeys(registry.region_name(c) for i in serving for c in index[i].countries))
        return (
            f"; serves only part of the user's location, {where}: {parts}; the conversation does not say "
            "which part they are in"
        )
    return f"; does not serve the user's location, {where}: wrong region, this route does not work for them"


FENCE_LENGTH = 16


def fence_for(texts: Sequence[str], length: int = FENCE_LENGTH) -> str:
    """A hex tag that occurs in none of `texts` (compared without case), the same for the same texts.

    It starts from a hash of the texts, so it is stable (the prompt, hence the cache key, does not change
    between runs) and cannot be known before the texts are written; should a text contain it anyway, a
    counter is added and the tag derived again until it is absent.
    """
    folded = [text.lower() for text in texts]
    blob = json.dumps(list(texts), ensure_ascii=False)
    for counter in itertools.count():
        tag = hashlib.sha256(f"{counter}\n{blob}".encode()).hexdigest()[:length]
        if not any(tag in text for text in folded):
            return tag
    raise AssertionError("unreachable: itertools.count() never ends")


def _reference_text(reference: Any) -> str | None:
    if reference is None or reference == "":
        return None
    if isinstance(reference, str):
        return reference
    return json.dumps(reference, ensure_ascii=False, sort_keys=True, indent=2)


def prompt_hash(messages: list[ChatMessage]) -> str:
    return sha256_of([m.as_dict() for m in messages])
