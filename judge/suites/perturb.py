"""Seeded text perturbations at three levels, as in TrustMH-Bench's robustness figure: character (case
flips, typos, inserted symbols), word (the character operations plus word shuffles and word drops) and
sentence (the word operations plus one distracting sentence).

Pure functions: the output depends only on the text, the level, the intensity and the seed. Why no
augmentation library: nlpaug (the maintained-looking candidate; last release 2022) installs offline and
its character and word augmenters need no model, but it draws from Python's global random state (no
per-call seed), re-joins its tokens with spaces (so "34-year-old" becomes "34 - year - old" even where
nothing was perturbed) and has no distracting-sentence operation; textattack needs torch and
transformers and does not install here. See docs/benchmark.md.

Design, so the levels and intensities compare cleanly:
- Each operation draws from its own random stream (seed, operation), and every candidate word gets its
  draw whatever the intensity. A word is touched when its draw is below the intensity, so a higher
  intensity touches a superset of the words a lower one touches, with the same edits; every operation
  touches at least its lowest-drawn candidate, so a variant always differs from the clean text when it can.
- Operations run in a fixed order (character, then word, then sentence ones), so a level's output holds
  exactly the edits of the level below it, plus its own.
- Protected words are never edited, moved or dropped: anything with a digit (ages, doses, lab values,
  durations), a lone capital option letter ("A", "(B)", "C."), negations ("not", "never", "without",
  "except", "don't"...) and all-capital words (acronyms such as SSRI, emphasis such as NOT or EXCEPT).
  These are the words whose change could make a multiple-choice gold answer wrong or reverse what a
  person says. Line breaks stay where they are; words move and drop only within a line.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Level = Literal["character", "word", "sentence"]
LEVELS: tuple[Level, ...] = ("character", "word", "sentence")

CHARACTER_OPERATIONS = ("case_flip", "typo", "symbol")
WORD_OPERATIONS = ("word_shuffle", "word_drop")
SENTENCE_OPERATIONS = ("distractor",)
LEVEL_OPERATIONS: dict[str, tuple[str, ...]] = {
    "character": CHARACTER_OPERATIONS,
    "word": CHARACTER_OPERATIONS + WORD_OPERATIONS,
    "sentence": CHARACTER_OPERATIONS + WORD_OPERATIONS + SENTENCE_OPERATIONS,
}
"""Each level's operations, in the order they run: every level starts with the level below's."""

SYMBOLS = "#$%&*@^~|+"
"""Inserted symbols: no letters, digits or sentence punctuation, so no word, number or sentence is invented."""

DISTRACTORS = (
    "By the way, the train was late again this morning.",
    "Also, my neighbour just painted their fence bright blue.",
    "Unrelated, but the library near me changed its opening hours.",
    "On another note, it rained all afternoon here yesterday.",
    "Side note: I still have to return a parcel at the post office.",
    "Oh, and the printer at work jammed twice today.",
)
"""Distracting sentences: everyday asides with nothing clinical in them (no symptom, substance, sleep,
food, mood or relationship), so they cannot change a diagnosis question's answer or what a help-seeker needs."""

_QWERTY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS: dict[str, str] = {}
for _r, _row in enumerate(_QWERTY_ROWS):
    for _c, _key in enumerate(_row):
        _near = [_row[j] for j in (_c - 1, _c + 1) if 0 <= j < len(_row)]
        _near += [_QWERTY_ROWS[r][_c] for r in (_r - 1, _r + 1) if 0 <= r < 3 and _c < len(_QWERTY_ROWS[r])]
        _NEIGHBOURS[_key] = "".join(_near)

_TOKEN = re.compile(r"\S+")
_OPTION_LETTER = re.compile(r"^[\(\[]?[A-J][\)\]\.:,]?$")
_PLAIN_WORD = re.compile(r"^[^\W\d_]+(?:['’-][^\W\d_]+)*$")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")
NEGATIONS = frozenset(
    {
        "no",
        "not",
        "nor",
        "never",
        "none",
        "nothing",
        "nobody",
        "neither",
        "without",
        "except",
        "cannot",
        "nowhere",
        "noone",
    }
)


@dataclass(frozen=True)
class Edit:
    """One applied operation: the word it touched (index among the clean text's words; for a distractor,
    the number of words before it) and that word's text before and after."""

    operation: str
    position: int
    before: str
    after: str


@dataclass(frozen=True)
class Perturbed:
    text: str
    edits: tuple[Edit, ...]


def is_protected(word: str) -> bool:
    """Never touched: numbers, option letters, negations, all-capital words (see the module docstring)."""
    if any(ch.isdigit() for ch in word) or _OPTION_LETTER.match(word):
        return True
    core = word.strip("\"'“”‘’()[]{}.,;:!?").lower()
    if core in NEGATIONS or core.endswith(("n't", "n’t")):
        return True
    letters = [ch for ch in word if ch.isalpha()]
    return len(letters) >= 2 and all(ch.isupper() for ch in letters)


def _stream(seed: int, operation: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(operation.encode("utf-8"))])


def _chosen(draws: np.ndarray, intensity: float) -> list[int]:
    """Candidates whose draw is below the intensity, and always the lowest-drawn one."""
    if draws.size == 0:
        return []
    picked = set(np.flatnonzero(draws < intensity).tolist()) | {int(np.argmin(draws))}
    return sorted(picked)


def _letter_positions(word: str) -> list[int]:
    return [i for i, ch in enumerate(word) if ch.isalpha()]


def _case_flip(word: str, u: float) -> str:
    spots = _letter_positions(word)
    i = spots[int(u * len(spots))]
    return word[:i] + word[i].swapcase() + word[i + 1 :]


def _typo(word: str, u: float, v: float) -> str:
    """A keyboard-neighbour substitution, a swap of two adjacent letters or a dropped letter."""
    spots = _letter_positions(word)
    i = spots[int(u * len(spots))]
    kind = int(v * 3)
    if kind == 0 and word[i].lower() in _NEIGHBOURS:
        near = _NEIGHBOURS[word[i].lower()]
        new = near[int(v * 3 % 1 * len(near))]
        return word[:i] + (new.upper() if word[i].isupper() else new) + word[i + 1 :]
    adjacent = [j for j in spots if j + 1 < len(word) and word[j + 1].isalpha() and word[j] != word[j + 1]]
    if kind == 1 and adjacent:
        j = adjacent[int(u * len(adjacent))]
        return word[:j] + word[j + 1] + word[j] + word[j + 2 :]
    if len(spots) >= 4:
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i].swapcase() + word[i + 1 :]


def _symbol(word: str, u: float, v: float) -> str:
    at = 1 + int(u * (len(word) - 1))  # inside the word, never before its first character
    return word[:at] + SYMBOLS[int(v * len(SYMBOLS))] + word[at:]


def perturb(text: str, level: str, intensity: float, seed: int) -> Perturbed:
    """`text` perturbed at `level` ("character", "word" or "sentence") with `intensity` in (0, 1]: the
    chance that each operation touches each word it may touch (at least one per operation)."""
    if level not in LEVELS:
        raise ValueError(f"unknown perturbation level {level!r}; the levels are {', '.join(LEVELS)}")
    if not 0 < intensity <= 1:
        raise ValueError(f"perturbation intensity must be in (0, 1], got {intensity}")
    if not text.strip():
        raise ValueError("nothing to perturb: the text is empty")
    tokens = list(_TOKEN.finditer(text))
    words = [t.group(0) for t in tokens]
    gaps = [text[: tokens[0].start()]] + [text[a.end() : b.start()] for a, b in itertools.pairwise(tokens)]
    trailing = text[tokens[-1].end() :]
    protected = [is_protected(w) for w in words]
    edits: list[Edit] = []
    operations = LEVEL_OPERATIONS[level]

    # ---- character operations: on unprotected words with at least two letters
    lettered = [i for i, w in enumerate(words) if not protected[i] and len(_letter_positions(w)) >= 2]
    for operation in CHARACTER_OPERATIONS:
        draws = _stream(seed, operation).random((len(lettered), 3))
        for k in _chosen(draws[:, 0], intensity):
            i = lettered[k]
            u, v = float(draws[k, 1]), float(draws[k, 2])
            before = words[i]
            if operation == "case_flip":
                words[i] = _case_flip(before, u)
            elif operation == "typo":
                words[i] = _typo(before, u, v)
            else:
                words[i] = _symbol(before, u, v)
            edits.append(Edit(operation, i, before, words[i]))

    order = list(range(len(words)))  # word slots → which word sits there
    dropped: set[int] = set()
    if "word_shuffle" in operations:
        plain = [not protected[i] and bool(_PLAIN_WORD.match(tokens[i].group(0))) for i in range(len(words))]
        pairs = []  # disjoint neighbours on one line, fixed by the clean text
        i = 0
        while i + 1 < len(words):
            if plain[i] and plain[i + 1] and "\n" not in gaps[i + 1]:
                pairs.append(i)
                i += 2
            else:
                i += 1
        draws = _stream(seed, "word_shuffle").random(len(pairs))
        for k in _chosen(draws, intensity):
            i = pairs[k]
            order[i], order[i + 1] = order[i + 1], order[i]
            edits.append(Edit("word_shuffle", i, f"{words[i]} {words[i + 1]}", f"{words[i + 1]} {words[i]}"))
        droppable = [i for i in range(len(words)) if plain[i]]
        draws = _stream(seed, "word_drop").random(len(droppable))
        dropped = _drops(droppable, draws, intensity, gaps, len(words))
        edits += [Edit("word_drop", i, words[i], "") for i in sorted(dropped)]

    pieces: list[str] = []
    for slot in range(len(words)):
        word = order[slot]
        if word in dropped:
            if "\n" in gaps[slot] and slot + 1 < len(words) and "\n" not in gaps[slot + 1]:
                gaps[slot + 1] = gaps[slot]  # keep the line break, lose the space after the dropped word
            continue
        pieces.append(gaps[slot] if pieces or slot == 0 else gaps[slot].lstrip(" \t"))
        pieces.append(words[word])
    rendered_words = pieces

    if "distractor" in operations:
        rendered_words = _with_distractor(pieces, seed, edits)
    return Perturbed("".join(rendered_words) + trailing, tuple(edits))


def _drops(droppable: Sequence[int], draws: np.ndarray, intensity: float, gaps: Sequence[str], n: int) -> set[int]:
    """The words to drop: chosen as any operation's, but every line keeps at least one word (of a line
    whose every word would go, the last-drawn stays, so a higher intensity still drops a superset)."""
    chosen = {droppable[k]: float(draws[k]) for k in _chosen(draws, intensity)}
    line_of, line = [], 0
    for i in range(n):
        line += "\n" in gaps[i] and i > 0
        line_of.append(line)
    for number in set(line_of):
        on_line = [i for i in range(n) if line_of[i] == number]
        if all(i in chosen for i in on_line):
            del chosen[max(on_line, key=chosen.__getitem__)]
    return set(chosen)


def _with_distractor(pieces: list[str], seed: int, edits: list[Edit]) -> list[str]:
    """One distracting sentence, at the start or after a sentence-ending word (drawn with the seed), so it
    never splits a sentence and no punctuation has to be added."""
    words_at = [k for k in range(1, len(pieces), 2)]
    boundaries = [0] + [n + 1 for n, k in enumerate(words_at) if _SENTENCE_END.search(pieces[k])]
    rng = _stream(seed, "distractor")
    sentence = DISTRACTORS[int(rng.integers(len(DISTRACTORS)))]
    at = boundaries[int(rng.integers(len(boundaries)))]
    edits.append(Edit("distractor", at, "", sentence))
    if at == 0:
        return [pieces[0], sentence + " ", *pieces[1:]]
    cut = 2 * at  # after the at-th word
    return [*pieces[:cut], " " + sentence, *pieces[cut:]]
