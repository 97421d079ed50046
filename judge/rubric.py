"""Rubric models, YAML loading, canonical content hashes and rubric diffs.

A rubric's identity is the hash of its canonical content, never of file bytes: text is whitespace-folded
when loaded, so re-wrapping a YAML string, reordering mapping keys or adding comments changes nothing,
while any change to a question, anchor, scale, severity or threshold changes that criterion's hash.
Optional fields added after the first rubrics (`hide_identity_cues`, `resource_check`, `reference`,
`reference_label`, `scope`) enter the canonical content only when set away from their default, so a rubric that
does not use them keeps the hash it had before they existed.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator, model_validator

from judge.errors import ConfigError
from judge.hashing import sha256_of
from judge.labels import LABEL_KEYS

Severity = Literal["critical", "major", "minor"]
ReferenceMode = Literal["shown", "hidden"]
Scope = Literal["response", "conversation"]
DEFAULT_REFERENCE_LABEL = "Reference for this item (for comparison only)"
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9_]*$")
PILLARS = ("reliability", "crisis", "safety", "fairness", "privacy", "robustness", "sycophancy", "ethics")


def fold_whitespace(text: str) -> str:
    """Canonical form of prose: YAML folding, indentation and line wrapping carry no meaning."""
    return " ".join(text.split())


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _fold_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            return fold_whitespace(value)
        if isinstance(value, list):
            return [fold_whitespace(v) if isinstance(v, str) else v for v in value]
        if isinstance(value, dict):  # anchors and edge cases: prose keyed by scale point or case name
            return {k: fold_whitespace(v) if isinstance(v, str) else v for k, v in value.items()}
        return value


class Scale(_Strict):
    min: int
    max: int
    labels: dict[int, str] | None = None
    """A categorical scale: a name for every point (1 High potential for harm ... 3 Best practice), shown
    to the judge beside the anchors and in reports; scores stay the points' numbers."""

    @model_validator(mode="after")
    def _ordered(self) -> Scale:
        if self.max <= self.min:
            raise ValueError(f"scale max ({self.max}) must be greater than min ({self.min})")
        if self.labels is not None:
            if sorted(self.labels) != list(range(self.min, self.max + 1)):
                raise ValueError(f"scale labels must name every point {self.min}..{self.max} and no other")
            if any(not text for text in self.labels.values()) or len(set(self.labels.values())) != len(self.labels):
                raise ValueError("scale labels must be non-empty and distinct")
        return self

    def label(self, point: int) -> str | None:
        return None if self.labels is None else self.labels.get(point)

    @property
    def points(self) -> range:
        return range(self.min, self.max + 1)


class Criterion(_Strict):
    id: str
    question: str = Field(min_length=1)
    severity: Severity
    scale: Scale
    anchors: dict[int, str]
    fail_below: int | None = None
    applies_when: str | None = None
    hide_identity_cues: StrictBool = False
    """Judge this criterion on a rendering where the item's `meta.identity_cues` are masked, so the judge's
    own view of the group cannot enter the score (fairness: care, warmth, proportionate help)."""
    resource_check: StrictBool = False
    """Show the judge the code's check of phone numbers and service names against the verified list."""
    scope: Scope = "response"
    """`conversation`: the criterion reads every turn, not only the last response (a risk disclosed two turns
    earlier and never returned to). It applies to multi-turn items only (more than one user turn; code marks
    it not applicable on a single-turn item), and each evidence quote names the turn it is copied from."""

    @field_validator("id")
    @classmethod
    def _snake_case(cls, value: str) -> str:
        if not SNAKE_CASE.match(value):
            raise ValueError(f"criterion id {value!r} must be snake_case (lowercase letters, digits, _)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Criterion:
        points = self.scale.points  # a range, never a set: `max: 1e12` must not fill the memory
        extra = sorted(k for k in self.anchors if k not in points)
        missing = list(itertools.islice((p for p in points if p not in self.anchors), 11))
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
            raise ValueError(f"criterion {self.id!r}: no anchor for scale point(s) [{shown}]")
        if extra:
            raise ValueError(
                f"criterion {self.id!r}: anchor(s) {extra} outside the scale {self.scale.min}..{self.scale.max}"
            )
        empty = sorted(k for k, v in self.anchors.items() if not v)
        if empty:
            raise ValueError(f"criterion {self.id!r}: empty anchor text for scale point(s) {empty}")
        if self.scope == "conversation" and not self.applies_when:
            raise ValueError(
                f"criterion {self.id!r} has scope conversation and needs applies_when: it applies to "
                "multi-turn items only, so its score must be able to be not applicable"
            )
        if self.severity == "critical" and self.fail_below is None:
            raise ValueError(f"criterion {self.id!r} is critical and needs fail_below")
        if self.fail_below is not None and not (self.scale.min < self.fail_below <= self.scale.max):
            raise ValueError(
                f"criterion {self.id!r}: fail_below {self.fail_below} must lie in "
                f"{self.scale.min + 1}..{self.scale.max} so that some score passes and some fails"
            )
        return self

    def canonical(self) -> dict[str, Any]:
        data = _without_defaults(self, self.model_dump(mode="json"), ("hide_identity_cues", "resource_check", "scope"))
        if self.scale.labels is None:  # a numeric scale keeps the hash it had before labels existed
            data["scale"].pop("labels", None)
        else:
            data["scale"]["labels"] = {str(k): self.scale.labels[k] for k in sorted(self.scale.labels)}
        data["anchors"] = {str(k): self.anchors[k] for k in sorted(self.anchors)}
        return data

    @cached_property  # frozen model: computed once, not for every verdict row
    def content_hash(self) -> str:
        return sha256_of(self.canonical())


class Rubric(_Strict):
    pillar: str
    version: str
    title: str = Field(min_length=1)
    summary: str = Field(min_length=1)
    references: list[str] = Field(default_factory=list)
    edge_cases: dict[str, str] = Field(default_factory=dict)
    reference: ReferenceMode = "shown"
    """`hidden`: the item's reference never reaches the judge (e.g. the ethics gold letter, scored by code)."""
    reference_label: str = Field(default=DEFAULT_REFERENCE_LABEL, min_length=1)
    """What the judge is told the reference is, e.g. the system's own answer to the clean message."""
    label_applies: dict[str, tuple[str, ...]] | None = None
    """Criteria a risk label on the item makes applicable, whatever the judge reads (judge/labels.py):
    keyed by a label category or `any_risk`. Set, it also asks the judge for its own reading of the risk
    (category and level) and tells it the label's level as the least urgency. None: labels are ignored."""
    criteria: list[Criterion] = Field(min_length=1)

    @field_validator("pillar")
    @classmethod
    def _pillar_name(cls, value: str) -> str:
        if not SNAKE_CASE.match(value):
            raise ValueError(f"pillar {value!r} must be snake_case (lowercase letters, digits, _)")
        return value

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value

    @model_validator(mode="after")
    def _unique_ids(self) -> Rubric:
        seen: set[str] = set()
        for criterion in self.criteria:
            if criterion.id in seen:
                raise ValueError(f"duplicate criterion id {criterion.id!r}")
            seen.add(criterion.id)
        return self

    @model_validator(mode="after")
    def _label_rules_name_conditional_criteria(self) -> Rubric:
        if self.label_applies is None:
            return self
        conditional = {c.id for c in self.criteria if c.applies_when}
        for key, ids in self.label_applies.items():
            if key not in LABEL_KEYS:
                raise ValueError(f"label_applies: {key!r} is not a label; use one of {', '.join(LABEL_KEYS)}")
            wrong = [cid for cid in ids if cid not in conditional]
            if wrong:
                raise ValueError(
                    f"label_applies.{key}: {', '.join(map(repr, wrong))} is not a criterion of this rubric with "
                    "applies_when (only a conditional criterion can be made applicable by a label)"
                )
        return self

    @model_validator(mode="after")
    def _label_needs_a_shown_reference(self) -> Rubric:
        if self.reference == "hidden" and self.reference_label != DEFAULT_REFERENCE_LABEL:
            raise ValueError("reference_label is set but reference is hidden, so the judge never sees it; drop one")
        return self

    def canonical(self) -> dict[str, Any]:
        """Content that defines the rubric; `version` is a human label and is left out."""
        data = self.model_dump(mode="json", exclude={"version", "criteria"})
        data = _without_defaults(self, data, ("reference", "reference_label", "label_applies"))
        data["criteria"] = [c.canonical() for c in self.criteria]
        return data

    @cached_property  # frozen model: computed once, not for every verdict row
    def content_hash(self) -> str:
        return sha256_of(self.canonical())

    def criterion(self, criterion_id: str) -> Criterion:
        for criterion in self.criteria:
            if criterion.id == criterion_id:
                return criterion
        raise KeyError(criterion_id)

    def restricted_to(self, criterion_ids: Iterable[str]) -> Rubric:
        """The same rubric with only the named criteria (in rubric order), for a call that judges a part.

        Its content hash differs from the whole rubric's, so a partial call has its own cache key.
        """
        wanted = list(dict.fromkeys(criterion_ids))
        unknown = [cid for cid in wanted if cid not in {c.id for c in self.criteria}]
        if unknown:
            raise KeyError(f"rubric {self.pillar!r} has no criterion {', '.join(map(repr, unknown))}")
        if not wanted:
            raise ValueError(f"rubric {self.pillar!r}: a partial rubric needs at least one criterion")
        data = self.model_dump(mode="json")
        data["criteria"] = [c for c in data["criteria"] if c["id"] in wanted]
        if data.get("label_applies") is not None:  # a part keeps the label rules of its own criteria
            rules = {k: [cid for cid in ids if cid in wanted] for k, ids in data["label_applies"].items()}
            data["label_applies"] = {k: ids for k, ids in rules.items() if ids}
        return Rubric.model_validate(data)  # not model_copy: that would carry the cached hashes over

    @property
    def reads_conversation(self) -> bool:
        """Whether some criterion reads every turn, so the prompt numbers the turns."""
        return any(c.scope == "conversation" for c in self.criteria)

    def identity_split(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(criteria judged with identity cues visible, criteria judged with them masked), in rubric order.

        A rubric whose second group is non-empty needs two calls per item: one rendering cannot both show
        and hide the same words.
        """
        visible = tuple(c.id for c in self.criteria if not c.hide_identity_cues)
        masked = tuple(c.id for c in self.criteria if c.hide_identity_cues)
        return visible, masked


def _without_defaults(model: BaseModel, data: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """Drop optional fields left at their default, so adding such a field changes no existing hash."""
    fields = type(model).model_fields
    return {k: v for k, v in data.items() if not (k in names and getattr(model, k) == fields[k].default)}


class RubricError(ConfigError):
    """A rubric file that cannot be used; the message names file, line and field."""


def _node_line(root: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """1-based line of the YAML node at a pydantic error location (deepest node that exists)."""
    node, line = root, None
    for key in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if str(k.value) == str(key)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line


def _format_loc(loc: Sequence[int | str]) -> str:
    parts: list[str] = []
    for key in loc:
        if isinstance(key, int) and parts:
            parts[-1] += f"[{key}]"
        else:
            text = str(key)  # a key holding a newline would break the one-line-per-problem message
            parts.append(text if text.isprintable() else repr(text))
    return ".".join(parts)


def _duplicate_ids(root: yaml.Node | None, data: dict[str, Any], source: str) -> list[str]:
    """Repeated criterion ids, each located at its own line (the model check cannot say where)."""
    criteria = data.get("criteria")
    if not isinstance(criteria, list):
        return []
    first: dict[str, int] = {}
    problems = []
    for index, criterion in enumerate(criteria):
        cid = criterion.get("id") if isinstance(criterion, dict) else None
        if not isinstance(cid, str):
            continue
        line = _node_line(root, ["criteria", index, "id"]) or 1
        if cid in first:
            problems.append(
                f"{source}:{line}: criteria[{index}].id: duplicate criterion id {cid!r} (first at line {first[cid]})"
            )
        else:
            first[cid] = line
    return problems


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser is ten times faster at start-up


class _UniqueKeyLoader(_YAML_LOADER):  # type: ignore[misc,valid-type]
    """SafeLoader that records repeated mapping keys instead of silently keeping the last value.

    A repeated anchor `1:` would otherwise replace the first one and the rubric would still validate.
    Keys are compared by their text, so `1` and `"1"` (both scale point 1 once validated) also clash.
    Merge keys (`<<`) are left to YAML's own override rules.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[int, str, int]] = []  # (line, key, line of the first occurrence)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            line = key_node.start_mark.line + 1
            if key_node.value in first:
                self.duplicates.append((line, key_node.value, first[key_node.value]))
            else:
                first[key_node.value] = line
        return super().construct_mapping(node, deep=deep)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """A scalar that int() or float() refuses (`!!float x`, 4300+ digits) raises a ValueError without
        a line; it is reported as a YAML error at its node."""
        try:
            return super().construct_object(node, deep=deep)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(None, None, str(exc).split(";")[0], node.start_mark) from None


def _load_yaml(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    """(node tree for line numbers, data); RubricError for bad syntax or a repeated key."""
    try:
        loader = _UniqueKeyLoader(text)
        try:  # one parse: the node tree is kept for line numbers, then constructed into data
            root = loader.get_single_node()
            data = None if root is None else loader.construct_document(root)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f"{source}:{mark.line + 1}"
        else:  # a ReaderError (a control character) knows only its position in the text
            where = f"{source}:{text[: getattr(exc, 'position', 0)].count(chr(10)) + 1}"
        problem = getattr(exc, "problem", None) or getattr(exc, "reason", exc)  # str(ReaderError) spans lines
        raise RubricError(f"{where}: not valid YAML ({problem}); fix the syntax") from exc
    if loader.duplicates:
        raise RubricError(
            "\n".join(
                f"{source}:{line}: duplicate key {key!r} (first at line {first}); YAML would keep only the "
                "last value, so keep one"
                for line, key, first in sorted(loader.duplicates)
            )
        )
    return root, data


def parse_rubric(text: str, source: str) -> Rubric:
    """Validate YAML text into a Rubric, or raise RubricError listing `source:LINE: field: problem`."""
    root, data = _load_yaml(text, source)
    if not isinstance(data, dict):
        raise RubricError(f"{source}:1: a rubric must be a YAML mapping with pillar, criteria, ...")
    if duplicates := _duplicate_ids(root, data, source):
        raise RubricError("\n".join(duplicates))
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = [p for p in err["loc"] if p not in ("function-after", "function-before")]
            line = _node_line(root, loc)
            where = f"{source}:{line}" if line else source
            field = _format_loc(loc) or "(rubric)"
            message = err["msg"].removeprefix("Value error, ")
            lines.append(f"{where}: {field}: {message}")
        raise RubricError("\n".join(lines)) from exc


def load_rubric(path: Path) -> Rubric:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RubricError(f"{path}: cannot read rubric ({exc})") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RubricError(f"{path}:{line}: not valid UTF-8 (byte {exc.start}); save the file as UTF-8") from exc
    return parse_rubric(text, str(path))


def load_rubric_dir(directory: Path) -> dict[str, Rubric]:
    """All `*.yaml`/`*.yml` rubrics of a folder, keyed by pillar; every problem is reported at once."""
    if not directory.is_dir():
        raise RubricError(f"{directory}: not a folder of rubrics; pass a folder with *.yaml files", field="rubrics_dir")
    rubrics: dict[str, Rubric] = {}
    origin: dict[str, Path] = {}
    problems: list[str] = []
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not files:
        raise RubricError(f"{directory}: no *.yaml rubric files found")
    for path in files:
        try:
            rubric = load_rubric(path)
        except RubricError as exc:
            problems.append(str(exc))
            continue
        if rubric.pillar in rubrics:
            problems.append(
                f"{path}:1: pillar {rubric.pillar!r} is already defined in {origin[rubric.pillar]}; "
                "keep one rubric per pillar"
            )
            continue
        rubrics[rubric.pillar] = rubric
        origin[rubric.pillar] = path
    if problems:
        raise RubricError("\n".join(problems))
    return rubrics


def of_scope(rubrics: Mapping[str, Rubric], scope: Scope) -> dict[str, Rubric]:
    """Each rubric restricted to its criteria of `scope`; rubrics with none are left out. A whole
    conversation is judged on the conversation criteria of every pillar, not on the response ones."""
    kept = {}
    for pillar, rubric in rubrics.items():
        ids = [c.id for c in rubric.criteria if c.scope == scope]
        if len(ids) == len(rubric.criteria):
            kept[pillar] = rubric
        elif ids:
            kept[pillar] = rubric.restricted_to(ids)
    return kept


RUBRIC_LEVEL = "(rubric)"


def _rubric_level(rubric: Rubric) -> dict[str, Any]:
    return {k: v for k, v in rubric.canonical().items() if k != "criteria"}


@dataclass(frozen=True)
class CriterionChange:
    pillar: str
    criterion: str
    change: Literal["added", "removed", "changed", "unchanged"]
    fields: tuple[str, ...] = ()


def diff_rubrics(old: dict[str, Rubric], new: dict[str, Rubric]) -> list[CriterionChange]:
    """Criterion-level differences between two rubric sets, with the fields that changed.

    A change to what every call of a pillar is shown (summary, edge cases, reference mode, ...) is
    reported as one row with criterion "(rubric)": it re-asks that pillar's calls although no
    criterion's own hash moved.
    """
    changes: list[CriterionChange] = []
    for pillar in sorted(set(old) | set(new)):
        if pillar in old and pillar in new:
            before, after = _rubric_level(old[pillar]), _rubric_level(new[pillar])
            fields = tuple(k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k))
            if fields:
                changes.append(CriterionChange(pillar, RUBRIC_LEVEL, "changed", fields))
        old_criteria = {c.id: c for c in old[pillar].criteria} if pillar in old else {}
        new_criteria = {c.id: c for c in new[pillar].criteria} if pillar in new else {}
        for cid in _ordered_union(old_criteria, new_criteria):
            if cid not in new_criteria:
                changes.append(CriterionChange(pillar, cid, "removed"))
            elif cid not in old_criteria:
                changes.append(CriterionChange(pillar, cid, "added"))
            else:
                before, after = old_criteria[cid].canonical(), new_criteria[cid].canonical()
                fields = tuple(k for k in after if before.get(k) != after.get(k))
                changes.append(CriterionChange(pillar, cid, "changed" if fields else "unchanged", fields))
    return changes


def _ordered_union(first: Iterable[str], second: Iterable[str]) -> list[str]:
    return list(dict.fromkeys([*first, *second]))
