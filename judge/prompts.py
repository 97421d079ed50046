"""Render judge prompts from Jinja2 templates.

The system message holds the judge's rules and the rubric, identical for every item of a pillar, so a
provider's prompt cache can reuse it; the item (conversation, reference, response) follows in the user
message inside fences. The fence tag is derived from the item's texts and checked to occur in none of
them, and every conversation turn is introduced by a marker that carries the tag: no text can close its
block early, open a second RESPONSE block or pass for another speaker's turn.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from judge.items import Item
from judge.resources import bundled_path
from judge.rubric import Rubric, sha256_of

TEMPLATE_NAMES = ("system.j2", "rubric.j2", "item.j2")


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


class PromptRenderer:
    """Renders (rubric, item) into chat messages; the rubric part is rendered once per pillar."""

    def __init__(self, template_dir: Path | None = None) -> None:
        self.template_dir = template_dir or bundled_path("prompts")
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
        self._system_cache: dict[str, str] = {}

    def system_message(self, rubric: Rubric) -> str:
        key = rubric.content_hash
        if key not in self._system_cache:
            rules = self._templates["system.j2"].render().strip()
            rubric_text = self._templates["rubric.j2"].render(rubric=rubric).strip()
            self._system_cache[key] = f"{rules}\n\n{rubric_text}"
        return self._system_cache[key]

    def item_message(self, item: Item) -> str:
        reference = _reference_text(item.reference)
        embedded = [*(m.content for m in item.messages), reference or "", item.response]
        return (
            self._templates["item.j2"]
            .render(fence=fence_for(embedded), messages=item.messages, reference=reference, response=item.response)
            .strip()
        )

    def render(self, rubric: Rubric, item: Item) -> list[ChatMessage]:
        return [
            ChatMessage("system", self.system_message(rubric)),
            ChatMessage("user", self.item_message(item)),
        ]


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
