"""Model families, for the self-preference guard.

A judge tends to favour answers written by its own family of models, so each verdict records whether
judge and target share a family. A family is recognised by name patterns matched case-insensitively at
the start of the model name or right after a separator (`/ : _ . - @` or a space), so "o3" matches
"o3-mini" and "openai:o3" but not "gpt-4o3x"; "llama" matches "meta-llama/Llama-4-Scout".
When patterns of several families match (e.g. "deepseek-r1-distill-llama-70b"), the one found earliest
in the name wins (ties: the longer pattern), because a model is named after its maker first.

The provider prefix and `@BASE_URL` suffix of a judge spec are ignored: `openai:qwen2.5-72b@http://…`
is a Qwen model served through an OpenAI-compatible API, not an OpenAI model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from judge.errors import ConfigError

Families = Mapping[str, tuple[str, ...]]

DEFAULT_FAMILIES: dict[str, tuple[str, ...]] = {
    "openai": ("gpt", "chatgpt", "o1", "o3", "o4", "davinci"),
    "anthropic": ("claude",),
    "google": ("gemini", "gemma", "palm"),
    "meta": ("llama",),
    "qwen": ("qwen", "qwq"),
    "deepseek": ("deepseek",),
    "mistral": ("mistral", "mixtral", "ministral", "codestral", "magistral", "pixtral"),
    "xai": ("grok",),
}

_SEPARATORS = "/:_.@ -"
_PROVIDERS = ("openai", "anthropic", "azure", "bedrock", "vertex", "gemini", "ollama", "litellm")


class FamilyError(ConfigError, ValueError):
    """A `[families]` table that cannot be used; the message says which entry and how to fix it."""


def _model_part(name: str) -> str:
    """The model id of a judge spec or target name: drop `@BASE_URL` and a known `provider:` prefix."""
    text = name.strip().lower().split("@", 1)[0]
    provider, sep, rest = text.partition(":")
    if sep and provider in _PROVIDERS:
        return rest
    return text


def model_family(name: str | None, families: Families | None = None) -> str | None:
    """Family of a model or target name, or None when no pattern matches."""
    if not name:
        return None
    text = _model_part(name)
    best: tuple[int, int, str] | None = None
    for family, patterns in (DEFAULT_FAMILIES if families is None else families).items():
        for pattern in patterns:
            regex = rf"(?:^|(?<=[{re.escape(_SEPARATORS)}])){re.escape(pattern.lower())}"
            match = re.search(regex, text)
            if match and (best is None or (match.start(), -len(pattern)) < best[:2]):
                best = (match.start(), -len(pattern), family)
    return best[2] if best else None


def same_family(judge_model: str | None, target: str | None, families: Families | None = None) -> bool:
    """True when judge and target are known to come from the same family (unknown is never 'same')."""
    judge_family = model_family(judge_model, families)
    return judge_family is not None and judge_family == model_family(target, families)


def families_from_toml(table: Mapping[str, Any], base: Families | None = None) -> dict[str, tuple[str, ...]]:
    """Merge a TOML `[families]` table `{family = ["pattern", …]}` over `base` (default: the built-ins).

    A family named in the table replaces that family's patterns (an empty list removes it); a pattern
    claimed by the table is taken away from every other family, so the user's mapping always wins.
    """
    merged = dict(DEFAULT_FAMILIES if base is None else base)
    problems: list[str] = []
    claimed: dict[str, str] = {}
    for family, patterns in table.items():
        if not isinstance(patterns, list) or not all(isinstance(p, str) and p.strip() for p in patterns):
            problems.append(
                f"[families] {family}: expected a list of non-empty name patterns, e.g. "
                f'{family} = ["{family}"], got {patterns!r}'
            )
            continue
        for pattern in patterns:
            key = pattern.strip().lower()
            if key in claimed and claimed[key] != family:
                problems.append(f"[families] pattern {pattern!r} is given to both {claimed[key]} and {family}")
            claimed[key] = family
    if problems:
        raise FamilyError("\n".join(problems))
    for family, patterns in table.items():
        merged[family] = tuple(dict.fromkeys(p.strip().lower() for p in patterns))
    for family in list(merged):
        if family not in table:
            merged[family] = tuple(p for p in merged[family] if p.lower() not in claimed)
    return {family: patterns for family, patterns in merged.items() if patterns}
