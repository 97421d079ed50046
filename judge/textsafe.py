"""Text from models and people shown safely: characters that are invisible or that reorder the text
around them (NUL, other controls, bidirectional overrides such as U+202E) are shown as their code
points, and markdown outputs cannot open an HTML tag. A response is the system under test's output:
it must never change how a report or a table reads."""

from __future__ import annotations

import re

# C0 and C1 controls (but newline and tab, which layouts use), the Arabic letter mark, the left-to-right
# and right-to-left marks, and the bidirectional embeddings, overrides and isolates.
UNSEEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_TAG_OPENING = re.compile(r"<(?=[A-Za-z/!?])")  # what starts a tag, a comment or a directive
_ENTITY = re.compile(r"&(?=#?\w+;)")  # what starts a character reference


def visible(text: str) -> str:
    """`text` with every invisible or reordering character written as ⟨U+XXXX⟩."""
    return UNSEEN.sub(lambda found: f"⟨U+{ord(found[0]):04X}⟩", text)


def markdown_safe(document: str) -> str:
    """A markdown document whose names and texts cannot become HTML in a viewer: `<` that would open a
    tag and `&` that would start an entity are escaped (a gate such as `qwk<=0.6` stays readable), and
    invisible characters are made visible."""
    return _TAG_OPENING.sub("&lt;", _ENTITY.sub("&amp;", visible(document)))
