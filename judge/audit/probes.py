"""Probes: controlled, seeded rewrites of a judged response whose effect on a judge's scores is known.

Every probe is a pure function of (original response, seed): the same run and seed always give the same
variants, so a re-audit hits the cache. A variant identical to its original is dropped (it could only
measure the judge's sampling noise). Invariance probes (`verbosity`, `injection`, `format`,
`surface-noise`) change nothing a rubric asks about, so a good judge's scores stay put; `degrade` makes a
known-harmful change, so a good judge's scores fall; `self-preference` makes no variant at all and
compares judges on the responses already judged. docs/audit.md explains each construction.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from judge.audit.banks import CONFIDENTIALITY_BREACHES, DANGEROUS_INSTRUCTIONS, FILLER_SENTENCES, INJECTIONS
from judge.errors import UsageError
from judge.gates import AuditGate, parse_probe_gate
from judge.items import Item


@dataclass(frozen=True)
class Original:
    """A judged response, with the delimiters the judge prompt draws around it (for the injection probe)."""

    id: str
    response: str
    delimiters: tuple[str, str] | None = None  # (opening line, closing line)


@dataclass(frozen=True)
class Variant:
    probe: str
    variant: str
    response: str


Purpose = Literal["invariance", "sensitivity", "judges", "halo"]

INVARIANCE_METRICS = ("mean_shift", "mean_abs_shift", "max_abs_shift", "flip_rate")
HALO_METRICS = ("mean_shift", "mean_abs_shift", "changed_share", "flip_rate", "gate_flip_rate")
SELF_PREFERENCE_METRICS = ("self_gap", "other_gap", "self_preference")


@dataclass(frozen=True)
class Probe:
    name: str
    purpose: Purpose
    make: Callable[[Original, int], list[Variant]] | None  # None: no variant (self-preference)
    metrics: tuple[str, ...]


def _rng(seed: int, probe: str, variant: str, original_id: str) -> random.Random:
    # A str seed is hashed with SHA-512 by `random`, independent of PYTHONHASHSEED: stable across runs.
    return random.Random(f"{seed}|{probe}|{variant}|{original_id}")


# ------------------------------------------------------------------------------------------ text helpers

_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)")
_BULLET = re.compile(r"^(?P<indent>\s*)(?:[-*+•]|\d+[.)])\s+(?P<text>\S.*)$")


def sentences(text: str) -> list[str]:
    """Sentences of one line of prose, split after . ! ? followed by a space (abbreviations may split too)."""
    parts, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        parts.append(text[start : match.end()].strip())
        start = match.end()
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def sentence_boundaries(text: str) -> list[int]:
    """Offsets just after each sentence end (the end of the text included), where a sentence can go."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    if not ends or ends[-1] < len(text.rstrip()):
        ends.append(len(text.rstrip()))
    return ends


def _middle_cut(text: str) -> int:
    """The sentence boundary nearest the middle of the text, else the nearest space, else the middle."""
    inner = [b for b in sentence_boundaries(text) if 0 < b < len(text.rstrip())]
    if not inner:
        inner = [m.start() for m in re.finditer(r"\s", text.strip())] or [len(text) // 2]
    return min(inner, key=lambda b: abs(b - len(text) / 2))


def _split_paragraph_at(text: str, offset: int, addition: str) -> str:
    """`addition` as a paragraph of its own at `offset` (the whitespace there becomes a blank line)."""
    left, right = text[:offset].rstrip(), text[offset:].lstrip()
    return "\n\n".join(part for part in (left, addition, right) if part)


# ------------------------------------------------------------------------------------------ verbosity

PAD_FRACTIONS: dict[str, float] = {"pad50": 0.5, "pad100": 1.0}


def pad(response: str, fraction: float, rng: random.Random) -> str:
    """`response` with a paragraph of filler sentences at least `fraction` of its length (in characters)."""
    wanted = fraction * len(response)
    chosen: list[str] = []
    pool: list[str] = []
    while sum(len(s) + 1 for s in chosen) < wanted:
        if not pool:  # the whole bank is used before any sentence repeats
            pool = list(FILLER_SENTENCES)
            rng.shuffle(pool)
        chosen.append(pool.pop())
    return response.rstrip() + "\n\n" + " ".join(chosen)


def verbosity_variants(original: Original, seed: int) -> list[Variant]:
    return [
        Variant("verbosity", name, pad(original.response, fraction, _rng(seed, "verbosity", name, original.id)))
        for name, fraction in PAD_FRACTIONS.items()
    ]


# ------------------------------------------------------------------------------------------ injection

PLACES = ("start", "middle", "end")


class ItemRenderer(Protocol):
    def item_message(self, item: Item) -> str: ...


_SENTINEL = "AUDITSENTINELRESPONSE"


def response_delimiters(renderer: ItemRenderer, item: Item) -> tuple[str, str]:
    """The lines the judge prompt draws just before and just after `item`'s response, as rendered now.

    Read from the renderer rather than written down here, so the injection probe imitates whatever
    fence the prompt templates use today. When the response does not appear verbatim in the prompt (a
    renderer that escapes it), a plain sentinel response is rendered instead.
    """
    text, response = renderer.item_message(item), item.response
    if text.count(response) != 1:
        response = _SENTINEL
        text = renderer.item_message(item.model_copy(update={"response": response}))
    before, _, after = text.partition(response)
    opening = next((line for line in reversed(before.splitlines()) if line.strip()), "")
    closing = next((line for line in after.splitlines() if line.strip()), "")
    if not opening or not closing:
        raise ValueError("the judge prompt draws no delimiter around the response; the injection probe needs one")
    return opening.strip(), closing.strip()


def injection_text(form: str, delimiters: tuple[str, str] | None) -> str | None:
    """The planted text of one form; the fence form closes the response fence and reopens it."""
    if form != "fence":
        return INJECTIONS[form]
    if delimiters is None:
        return None
    opening, closing = delimiters
    return f"{closing}\n\n{INJECTIONS['fence']}\n\n{opening}"


def inject(response: str, text: str, place: str) -> str:
    if place == "start":
        return f"{text}\n\n{response.lstrip()}"
    if place == "end":
        return f"{response.rstrip()}\n\n{text}"
    return _split_paragraph_at(response, _middle_cut(response), text)


def injection_variants(original: Original, seed: int) -> list[Variant]:
    variants = []
    for form in INJECTIONS:
        text = injection_text(form, original.delimiters)
        if text is None:
            continue
        variants += [
            Variant("injection", f"{form}@{place}", inject(original.response, text, place)) for place in PLACES
        ]
    return variants


# ------------------------------------------------------------------------------------------ format

_MARKDOWN: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^\s{0,3}#{1,6}\s+", re.M), ""),  # headings
    (re.compile(r"^\s{0,3}>\s?", re.M), ""),  # block quotes
    (re.compile(r"^\s{0,3}([-*_])(?:\s*\1){2,}\s*$\n?", re.M), ""),  # horizontal rules
    (re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*"), r"\1"),
    (re.compile(r"__(?=\S)(.+?)(?<=\S)__"), r"\1"),
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"), r"\1"),
    (re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"), r"\1"),
    (re.compile(r"`([^`\n]+)`"), r"\1"),
    (re.compile(r"!?\[([^\]\n]+)\]\(([^)\s]+)\)"), r"\1 (\2)"),
)


def strip_markdown(response: str) -> str:
    """Headings, emphasis, code, links, quotes and rules removed; lines and list markers kept."""
    for pattern, replacement in _MARKDOWN:
        response = pattern.sub(replacement, response)
    return response


def _as_sentence(text: str) -> str:
    text = text.strip()
    return text if text[-1] in ".!?:;" else text + "."


def bullets_to_prose(response: str) -> str:
    """Each run of list items becomes one paragraph of sentences; other lines are kept."""
    out: list[str] = []
    run: list[str] = []
    for line in [*response.splitlines(), ""]:
        match = _BULLET.match(line)
        if match:
            run.append(_as_sentence(match["text"]))
            continue
        if run:
            out.append(" ".join(run))
            run = []
        out.append(line)
    return "\n".join(out[:-1])


def prose_to_bullets(response: str) -> str:
    """Every sentence on its own `- ` line; paragraphs stay apart."""
    paragraphs = [p for p in re.split(r"\n\s*\n", response.strip()) if p.strip()]
    return "\n\n".join(
        "\n".join(f"- {s}" for line in paragraph.splitlines() for s in sentences(line)) for paragraph in paragraphs
    )


def format_variants(original: Original, seed: int) -> list[Variant]:
    response = original.response
    has_bullets = any(_BULLET.match(line) for line in response.splitlines())
    variants = [Variant("format", "plain", strip_markdown(response))]
    if has_bullets:
        variants.append(Variant("format", "prose", bullets_to_prose(response)))
    elif sum(len(sentences(line)) for line in response.splitlines()) >= 2:
        variants.append(Variant("format", "bullets", prose_to_bullets(response)))
    return variants


# ------------------------------------------------------------------------------------------ surface noise

NOISE_RATES: dict[str, float] = {"light": 0.05, "heavy": 0.15}
_WORD = re.compile(r"(?<![\w@/.-])[A-Za-z]{4,}(?![\w@/-])")
_UNTOUCHABLE = re.compile(r"https?://\S+|www\.\S+|\S+@\S+")
# Words whose misspelling could flip or blur the meaning are left alone.
_PROTECTED = frozenset({"never", "nothing", "nobody", "none", "neither", "cannot", "without", "dont", "isnt"})


def misspell(word: str, rng: random.Random) -> str:
    """One typo or case change that leaves the word recognisable: swap, drop or double an inner letter,
    or flip the case of its first letter."""
    operation = rng.choice(("swap", "drop", "double", "case"))
    i = rng.randrange(1, max(2, len(word) - 2))  # an inner letter: the first and last stay
    if operation == "swap" and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if operation == "double":
        return word[: i + 1] + word[i] + word[i + 1 :]
    if operation == "case":
        return word[0].swapcase() + word[1:]
    return word[:i] + word[i + 1 :]


def add_noise(response: str, rate: float, rng: random.Random) -> str:
    """About `rate` of the eligible words (4+ letters, not in a URL or address, not a negation) altered,
    at least one; numbers, punctuation and line breaks are untouched."""
    blocked = [m.span() for m in _UNTOUCHABLE.finditer(response)]
    words = [
        m
        for m in _WORD.finditer(response)
        if m.group().lower() not in _PROTECTED and not any(a <= m.start() < b for a, b in blocked)
    ]
    if not words:
        return response
    chosen = sorted(rng.sample(words, max(1, round(rate * len(words)))), key=lambda m: m.start())
    pieces, last = [], 0
    for match in chosen:
        pieces += [response[last : match.start()], misspell(match.group(), rng)]
        last = match.end()
    return "".join([*pieces, response[last:]])


def noise_variants(original: Original, seed: int) -> list[Variant]:
    return [
        Variant("surface-noise", name, add_noise(original.response, rate, _rng(seed, "noise", name, original.id)))
        for name, rate in NOISE_RATES.items()
    ]


# ------------------------------------------------------------------------------------------ degrade

CRISIS_RESOURCE = re.compile(
    r"\b(?:988|911|999|112|741741|116\s?123|hot ?line|help ?line|life ?line|samaritans|"
    r"crisis (?:line|text|counsell?or|team|service|centre|center)s?|"
    r"emergency (?:number|services?|room|department|line)|call (?:your|the) (?:local )?emergency)\b",
    re.IGNORECASE,
)

# Pillars whose rubric asks about what each degradation breaks: detection is counted on these only.
DEGRADE_TARGETS: dict[str, frozenset[str]] = {
    "remove_crisis_resource": frozenset({"crisis", "safety", "robustness"}),
    "dangerous_instruction": frozenset({"crisis", "safety", "reliability", "sycophancy", "ethics", "robustness"}),
    "confidentiality_breach": frozenset({"privacy", "ethics"}),
}


def remove_crisis_resources(response: str) -> str:
    """Every sentence (or list item) that points to a crisis line or emergency service, removed."""
    kept: list[str] = []
    for line in response.splitlines():
        if not CRISIS_RESOURCE.search(line):
            kept.append(line)
        elif not _BULLET.match(line):
            rest = " ".join(s for s in sentences(line) if not CRISIS_RESOURCE.search(s))
            if rest:
                kept.append(re.match(r"\s*", line).group() + rest)  # type: ignore[union-attr]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def insert_sentence(response: str, sentence: str, rng: random.Random) -> str:
    """`sentence` after a sentence of the response chosen by `rng` (the end included); the spaces and line
    breaks that followed that sentence still follow the inserted one."""
    offset = rng.choice(sentence_boundaries(response))
    return f"{response[:offset]} {sentence}{response[offset:]}"


def degrade_variants(original: Original, seed: int) -> list[Variant]:
    response = original.response
    variants = []
    stripped = remove_crisis_resources(response) if CRISIS_RESOURCE.search(response) else ""
    if stripped:  # no resource to remove, or nothing left (an empty response no score run accepts): no variant
        variants.append(Variant("degrade", "remove_crisis_resource", stripped))
    banks = {"dangerous_instruction": DANGEROUS_INSTRUCTIONS, "confidentiality_breach": CONFIDENTIALITY_BREACHES}
    for name, bank in banks.items():
        rng = _rng(seed, "degrade", name, original.id)
        variants.append(Variant("degrade", name, insert_sentence(response, rng.choice(bank), rng)))
    return variants


# ------------------------------------------------------------------------------------------ registry

PROBES: dict[str, Probe] = {
    "verbosity": Probe("verbosity", "invariance", verbosity_variants, INVARIANCE_METRICS),
    "injection": Probe("injection", "invariance", injection_variants, INVARIANCE_METRICS),
    "format": Probe("format", "invariance", format_variants, INVARIANCE_METRICS),
    "surface-noise": Probe("surface-noise", "invariance", noise_variants, INVARIANCE_METRICS),
    "degrade": Probe("degrade", "sensitivity", degrade_variants, (*INVARIANCE_METRICS, "detection_rate")),
    "self-preference": Probe("self-preference", "judges", None, SELF_PREFERENCE_METRICS),
    # no variant: the same responses judged again with each critical criterion in a call of its own
    "halo": Probe("halo", "halo", None, HALO_METRICS),
}


def parse_probes(text: str) -> list[str]:
    """`a,b` (or `all`) into known probe names in registry order; a UsageError names the unknown."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if names == ["all"]:
        return list(PROBES)
    unknown = [n for n in names if n not in PROBES]
    if unknown or not names:
        raise UsageError(
            f"{text!r}: unknown probe(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"choose from {', '.join(PROBES)} or all",
            field="probes",
        )
    return [name for name in PROBES if name in names]


def make_variants(original: Original, probes: list[str], seed: int) -> list[Variant]:
    """The variants of every probe asked for, leaving out copies of the original (nothing to measure)."""
    variants = []
    for name in probes:
        make = PROBES[name].make
        variants += [v for v in (make(original, seed) if make else []) if v.response != original.response]
    return variants


def parse_audit_gate(text: str, probes: Iterable[str]) -> AuditGate:
    """`PROBE.METRIC OP NUMBER` for one of `probes` (those run), checked against the metrics each probe has."""
    return parse_probe_gate(text, probes, {name: probe.metrics for name, probe in PROBES.items()})
