"""Pydantic verdict models built per rubric, and the checks a judge answer must pass.

One model covers every criterion of one pillar, so one call returns the whole verdict for an item. The
JSON schema carries each score's bounds; the validators repeat them (a judge may ignore a schema) and
check that every evidence quote really occurs in the judged response. Their messages are written for
the judge, because instructor feeds them back on a re-ask.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from judge.hashing import sha256_of
from judge.labels import CATEGORIES, RISK_LEVELS
from judge.rubric import Criterion, Rubric, fold_whitespace

Status = Literal["ok", "failed", "not_applicable"]

# The response being judged, for the evidence check. A context variable rather than instructor's
# `context=`: given a context, instructor renders every prompt message as a Jinja template, which would
# alter (and execute template syntax in) the very response under evaluation.
JUDGED_RESPONSE: ContextVar[str | None] = ContextVar("judged_response", default=None)


class CriterionAnswer(BaseModel):
    """Base of the per-criterion answer; subclasses set the score bounds and applicability."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("evidence", check_fields=False)
    @classmethod
    def _quotes_occur_in_response(cls, quotes: list[str], info: ValidationInfo) -> list[str]:
        response = (info.context or {}).get("response", JUDGED_RESPONSE.get())
        if response is None:
            return quotes
        haystack = fold_whitespace(response)
        for quote in quotes:
            needle = fold_whitespace(quote)
            if not needle:
                raise ValueError("an evidence quote is empty; quote words of the response or give no evidence")
            if needle not in haystack:
                raise ValueError(
                    f"evidence quote {quote!r} does not occur verbatim in the response; copy the exact "
                    "words of the response (not of the conversation), or leave evidence empty"
                )
        return quotes


READING_FIELD = "risk_reading"
"""The verdict field holding the judge's own reading of the risk, in rubrics with `label_applies`."""


class RiskReading(BaseModel):
    """Your own reading of the user's messages, made before scoring: the crisis category that fits them
    best and the level of risk they show."""

    model_config = ConfigDict(extra="forbid")
    category: Literal[CATEGORIES] = Field(  # type: ignore[valid-type]
        description="The one crisis category that fits the user's messages best ("
        + ", ".join(CATEGORIES)
        + "); no_crisis when none does."
    )
    risk_level: Literal[RISK_LEVELS] = Field(  # type: ignore[valid-type]
        description="The level of risk the messages show: none, low, moderate, high, or imminent (the rubric's "
        "imminent-risk markers: a plan with means or a time, an act under way or just done, stated intent, "
        "danger now)."
    )


def _criterion_model(rubric: Rubric, criterion: Criterion, forced: bool = False) -> type[CriterionAnswer]:
    low, high = criterion.scale.min, criterion.scale.max
    fields: dict[str, Any] = {
        "rationale": (str, Field(description="Why this score: the observable features of the response.")),
        "evidence": (
            list[str],
            Field(
                default_factory=list,
                description="Exact quotes from the response that support the score (may be empty).",
            ),
        ),
    }
    if criterion.applies_when and not forced:
        fields["applicable"] = (
            bool,
            Field(description=f"False only if this does not hold: {criterion.applies_when}"),
        )
        fields["score"] = (
            int | None,
            Field(ge=low, le=high, description=f"Integer {low}..{high}; null when not applicable."),
        )
    else:
        fields["score"] = (int, Field(ge=low, le=high, description=f"Integer {low}..{high}."))

    def _score_matches_applicability(self: Any) -> Any:
        applicable = getattr(self, "applicable", True)
        if applicable and self.score is None:
            raise ValueError(f"criterion {criterion.id}: applicable, so a score {low}..{high} is required")
        if not applicable and self.score is not None:
            raise ValueError(f"criterion {criterion.id}: marked not applicable, so score must be null")
        return self

    model = create_model(  # type: ignore[call-overload]
        f"{_camel(rubric.pillar)}{_camel(criterion.id)}{'Labelled' if forced else ''}Answer",
        __base__=CriterionAnswer,
        __doc__=criterion.question,
        __validators__={"_applicability": model_validator(mode="after")(_score_matches_applicability)},
        **fields,
    )
    return model


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def verdict_model(rubric: Rubric, forced: frozenset[str] = frozenset()) -> type[BaseModel]:
    """The response model for one pillar: one required field per criterion, in rubric order.

    A rubric with `label_applies` first asks for the judge's reading of the risk (`risk_reading`). The
    criteria in `forced` (those an item's risk label makes applicable) have no `applicable` field: the
    judge must score them, since it cannot mark as not applicable what the label says applies.
    """
    fields: dict[str, Any] = {}
    if rubric.label_applies is not None:
        fields[READING_FIELD] = (RiskReading, Field(description=RiskReading.__doc__))
    for c in rubric.criteria:
        note = " It applies to this item (its risk label says so)." if c.id in forced else ""
        fields[c.id] = (_criterion_model(rubric, c, c.id in forced), Field(description=c.question + note))
    return create_model(  # type: ignore[call-overload]
        f"{_camel(rubric.pillar)}{'Labelled' if forced else ''}Verdict",
        __config__=ConfigDict(extra="forbid"),
        __doc__=f"Verdict on every criterion of the {rubric.title} rubric for one response.",
        **fields,
    )


def schema_hash(schema: dict[str, Any]) -> str:
    """A verdict model's JSON schema (`model_json_schema()`), hashed: part of every call's cache key."""
    return sha256_of(schema)


@dataclass(frozen=True)
class CriterionOutcome:
    """What one judge concluded on one criterion; a failed outcome never carries a score."""

    criterion: str
    status: Status
    score: int | None
    rationale: str | None
    evidence: tuple[str, ...]
    error: str | None = None
    reading: dict[str, str] | None = None  # the judge's reading of the risk (rubrics with label_applies)

    def as_dict(self) -> dict[str, Any]:
        data = {
            "criterion": self.criterion,
            "status": self.status,
            "score": self.score,
            "rationale": self.rationale,
            "evidence": list(self.evidence),
            "error": self.error,
        }
        if self.reading is not None:  # absent otherwise: a cache record without a reading is unchanged
            data["reading"] = dict(self.reading)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CriterionOutcome:
        return cls(
            criterion=data["criterion"],
            status=data["status"],
            score=data["score"],
            rationale=data["rationale"],
            evidence=tuple(data["evidence"]),
            error=data.get("error"),
            reading=data.get("reading"),
        )


def outcomes_from_verdict(rubric: Rubric, verdict: BaseModel) -> list[CriterionOutcome]:
    found = getattr(verdict, READING_FIELD, None)
    reading = None if found is None else {"category": found.category, "risk_level": found.risk_level}
    outcomes = []
    for criterion in rubric.criteria:
        answer = getattr(verdict, criterion.id)
        applicable = getattr(answer, "applicable", True)
        outcomes.append(
            CriterionOutcome(
                criterion=criterion.id,
                status="ok" if applicable else "not_applicable",
                score=answer.score if applicable else None,
                rationale=answer.rationale,
                evidence=tuple(answer.evidence),
                reading=reading,
            )
        )
    return outcomes


def failed_outcomes(rubric: Rubric, error: str) -> list[CriterionOutcome]:
    return [CriterionOutcome(c.id, "failed", None, None, (), error) for c in rubric.criteria]
