"""Persona cards: the people a simulated user plays in a conversation suite, as validated, hashed data.

A card says who the person is, what they disclose and from which turn, their risk level and category,
how they react to the chatbot and push back, and when they stop. Our cards are in
`data/conversation/personas.toml`; VERA-MH's ten clinician-written personas are read from the dataset
mirror (`data/personas.tsv`, registered with its licence). A card's identity is the hash of its
canonical content, like a rubric's: the simulated user's prompt is rendered from it, so a changed card
changes the prompt and with it every cache key of its conversations.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Literal

import jinja2
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from judge.bundled import bundled_path, read_toml
from judge.errors import ConfigError, DatasetError
from judge.hashing import sha256_of
from judge.rubric import fold_whitespace
from judge.suites.sources import read_bytes

RiskLevel = Literal["none", "low", "high", "imminent"]
RISK_LEVELS: tuple[RiskLevel, ...] = ("none", "low", "high", "imminent")
STOP_PHRASE = "Thank you, I'm done."
"""What the simulated user says to end the conversation (VERA-MH's own phrase, so both prompts agree)."""
MIN_TURNS_BEFORE_STOP = 3
PERSONAS_FOLDER = "conversation"
OUR_PERSONAS = "personas.toml"
USER_PROMPT = "simulated_user.j2"
VERA_DATASET = "vera-mh"
VERA_PERSONAS = "data/personas.tsv"
VERA_TEMPLATE = "data/persona_prompt_template.txt"
VERA_LICENSE = "LICENSE"
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class PersonaError(ConfigError):
    """A persona file that cannot be used; the message names the file, the persona and the field."""


class Disclosure(BaseModel):
    """Something the person reveals, not before `from_turn` (1-based), and only as their style allows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    from_turn: int = Field(ge=1, le=30)
    what: str = Field(min_length=1)

    _fold = field_validator("what")(lambda cls, v: fold_whitespace(v))


class PersonaCard(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str = Field(min_length=1)
    age: int = Field(ge=8, le=110)
    pronouns: str = Field(min_length=1)
    background: str = Field(min_length=1)
    mental_health: str = Field(min_length=1)
    risk_level: RiskLevel
    risk_category: str = Field(min_length=1)
    style: str = Field(min_length=1)
    discloses: tuple[Disclosure, ...] = Field(min_length=1)
    reacts: str = Field(min_length=1)
    pushback: str = Field(min_length=1)
    stop_when: str = Field(min_length=1)
    opening: str | None = None
    """What the person first writes, when the card fixes it; otherwise the simulated user opens."""
    source: str = "trustmh"
    fields: dict[str, str] = Field(default_factory=dict)
    """The source's own columns (VERA-MH's), which its meta-prompt is filled from."""

    @field_validator("id")
    @classmethod
    def _id_form(cls, value: str) -> str:
        if not ID_PATTERN.match(value):
            raise ValueError(f"persona id {value!r} must be lowercase letters, digits and dashes")
        return value

    @field_validator("*", mode="before")
    @classmethod
    def _fold_text(cls, value: Any) -> Any:
        return fold_whitespace(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _disclosures_in_order(self) -> PersonaCard:
        turns = [d.from_turn for d in self.discloses]
        if turns != sorted(turns):
            raise ValueError(f"persona {self.id!r}: discloses must be listed by from_turn, earliest first")
        return self

    @property
    def minor(self) -> bool:
        return self.age < 18

    def canonical(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @cached_property
    def content_hash(self) -> str:
        return sha256_of(self.canonical())

    def public_dict(self) -> dict[str, Any]:
        """The card as `conversations.jsonl` and the report show it, with its hash."""
        return {**self.canonical(), "minor": self.minor, "hash": self.content_hash}


# ---------------------------------------------------------------- loading


def _located(problem: dict[str, Any], source: str, persona: str) -> str:
    field = ".".join(str(p) for p in problem["loc"]) or "(card)"
    return f"{source}: persona {persona!r}: field `{field}`: {problem['msg'].removeprefix('Value error, ')}"


def parse_cards(tables: Mapping[str, Any], source: str) -> list[PersonaCard]:
    """Cards from `[personas.ID]` tables; every problem is reported at once, naming file, persona, field."""
    cards, problems = [], []
    for persona_id, table in tables.items():
        if not isinstance(table, dict):
            problems.append(f"{source}: persona {persona_id!r}: must be a table [personas.{persona_id}]")
            continue
        try:
            cards.append(PersonaCard.model_validate({"id": persona_id, **table}))
        except ValidationError as exc:
            problems += [_located(p, source, persona_id) for p in exc.errors()]
    if problems:
        raise PersonaError("\n".join(problems) + "\nFix the persona file and run again.")
    return cards


def load_persona_file(path: Path) -> list[PersonaCard]:
    data = read_toml(path, PersonaError, "persona file")
    unknown = set(data) - {"personas"}
    if unknown or not data.get("personas"):
        raise PersonaError(f"{path}: expected only [personas.ID] tables (found {sorted(unknown) or 'none'})")
    return parse_cards(data["personas"], str(path))


def our_personas() -> list[PersonaCard]:
    return load_persona_file(bundled_path(PERSONAS_FOLDER) / OUR_PERSONAS)


VERA_STOP_WHEN = "Received sufficient information, or it is clear the chatbot will not give the support sought."
VERA_RISK = {"None": "none", "Low": "low", "High": "high", "Imminent": "imminent"}


def vera_personas() -> list[PersonaCard]:
    """VERA-MH's personas from the registered mirror file, one card per row, its columns kept verbatim."""
    text = read_bytes(VERA_DATASET, VERA_PERSONAS).decode("utf-8")
    cards, problems = [], []
    for line, row in enumerate(csv.DictReader(io.StringIO(text), delimiter="\t"), start=2):
        where = f"{VERA_DATASET}/{VERA_PERSONAS}:{line}"
        level = VERA_RISK.get((row.get("Current Risk Level") or "").strip())
        if level is None:
            problems.append(
                f"{where}: Current Risk Level {row.get('Current Risk Level')!r} is not one of {list(VERA_RISK)}"
            )
            continue
        name = (row.get("Name") or "").strip()
        try:
            cards.append(
                PersonaCard(
                    id=f"vera-{name.lower()}",
                    name=name,
                    age=int(row["Age"]),
                    pronouns=row["Pronouns"],
                    background=row["Background"],
                    mental_health=row["Mental Health Context"],
                    risk_level=level,  # type: ignore[arg-type]
                    risk_category="suicide",
                    style=row["Communication Style"],
                    discloses=(
                        Disclosure(
                            from_turn=1, what=row["Current Suicidal Thoughts and Behaviors, Reasons for Living"]
                        ),
                    ),
                    reacts=row["Reaction to Chatbot Responses"],
                    pushback=row["Disclosure of Suicide Risk"],
                    stop_when=VERA_STOP_WHEN,
                    source=VERA_DATASET,
                    fields={k.strip(): (v or "").strip() for k, v in row.items() if k},
                )
            )
        except (ValidationError, KeyError, ValueError) as exc:
            problems.append(f"{where}: persona {name!r} cannot be read ({exc})")
    if problems:
        raise DatasetError("\n".join(problems))
    return cards


def vera_licence() -> str:
    """VERA-MH's licence and disclaimer, which go with any copy of its personas or meta-prompt."""
    return read_bytes(VERA_DATASET, VERA_LICENSE).decode("utf-8")


# ---------------------------------------------------------------- the simulated user's prompt

UserPrompt = Literal["trustmh", "vera-mh"]


@cache
def _user_template() -> jinja2.Template:
    """Our simulated user's prompt template, compiled once a process: a run renders it once per
    conversation, and compiling it anew each time cost about 9 ms a conversation."""
    folder = bundled_path(PERSONAS_FOLDER)
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder), undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
        autoescape=False,
    )  # fmt: skip
    return environment.get_template(USER_PROMPT)


def vera_fields(card: PersonaCard) -> dict[str, str]:
    """VERA-MH's placeholders for a card: its own columns, or ours mapped onto them."""
    if card.fields:
        return dict(card.fields)
    return {
        "Name": card.name,
        "Age": str(card.age),
        "Race/Ethnicity": "person",
        "Pronouns": card.pronouns,
        "Background": card.background,
        "Mental Health Context": card.mental_health,
        "Communication Style": card.style,
        "Recent Stressors/Risk Factors": card.background,
        "Disclosure of Suicide Risk": "; ".join(f"from turn {d.from_turn}: {d.what}" for d in card.discloses),
        "Current Suicidal Thoughts and Behaviors, Reasons for Living": card.mental_health,
        "Current Risk Level": card.risk_level.capitalize(),
        "Reaction to Chatbot Responses": f"{card.reacts} {card.pushback}",
        "Sample Prompts": card.opening or "",
    }


PLACEHOLDER = re.compile(r"\{([^{}\n]+)\}")


def render_vera_template(template: str, fields: Mapping[str, str]) -> str:
    """VERA-MH's meta-prompt with its `{Column}` placeholders filled; an unknown placeholder is an error."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in fields:
            raise DatasetError(f"{VERA_DATASET}/{VERA_TEMPLATE}: placeholder {{{name}}} has no persona column")
        return fields[name]

    return PLACEHOLDER.sub(fill, template)


def user_system_prompt(card: PersonaCard, prompt: UserPrompt = "trustmh") -> str:
    """The simulated user's system prompt for `card`: ours (data/conversation/simulated_user.j2) or
    VERA-MH's meta-prompt read from the mirror."""
    if prompt == "vera-mh":
        return render_vera_template(read_bytes(VERA_DATASET, VERA_TEMPLATE).decode("utf-8"), vera_fields(card))
    return _user_template().render(card=card, stop_phrase=STOP_PHRASE, min_turns=MIN_TURNS_BEFORE_STOP)


def is_stop(text: str, turn: int) -> bool:
    """Whether the simulated user's message at `turn` (1-based) ends the conversation: the stop phrase,
    never before turn MIN_TURNS_BEFORE_STOP."""
    return turn >= MIN_TURNS_BEFORE_STOP and fold_whitespace(STOP_PHRASE).lower().rstrip(".") in _plain(text)


def _plain(text: str) -> str:
    return fold_whitespace(text.replace("\u2019", "'")).lower()
