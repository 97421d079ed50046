"""Targets: the chatbots under test, named like judges (`PROVIDER:MODEL[@BASE_URL]`) or in a targets file.

A targets file has `[targets.NAME]` tables with `spec` and the settings of a judge that make sense for a
chatbot (temperature, max tokens, seed, concurrency, limits, prices, retries, timeouts) plus
`system_prompt`: the system message the chatbot is deployed with.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from judge.bundled import read_toml
from judge.judges import (
    _TOML_FIELDS,
    MOCK,
    MOCK_VERSION,
    SETTING_RULES,
    JudgeConfigError,
    JudgeSpec,
    SettingRule,
    load_spec_tables,
    parse_judge_spec,
    public_url,
    resolve_specs,
    spec_fields,
)
from judge.respond.custom_targets import DEFAULT_REPLY, DEFAULT_REQUEST, HTTP, PYTHON, custom_kind, custom_target_fields

# A judge's output mode and re-asks are about structured verdicts; a target answers in free text.
_TARGET_FIELDS = (_TOML_FIELDS - {"mode", "max_reasks"}) | {"system_prompt"}
_TARGET_RULES = {**SETTING_RULES, "system_prompt": SettingRule((str,))}


@dataclass(frozen=True)
class TargetSpec(JudgeSpec):
    system_prompt: str | None = None
    max_tokens: int = 1024

    def decoding_params(self) -> dict[str, Any]:
        """Everything besides the conversation that can change the target's answer (part of the cache key)."""
        return {
            "provider": self.provider,
            "model": self.model,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "system_prompt": self.system_prompt,
            **({"mock": MOCK_VERSION} if self.provider == MOCK else {}),
        }


def parse_target_spec(text: str, name: str | None = None) -> TargetSpec:
    if custom_kind(text):
        return parse_custom_target(text, name)
    try:
        spec = parse_judge_spec(text, name)
    except JudgeConfigError as exc:
        raise JudgeConfigError(str(exc).replace("judge ", "target ", 1)) from exc
    return TargetSpec(**spec_fields(spec))


def load_targets_file(path: Path) -> dict[str, TargetSpec]:
    data = read_toml(path, JudgeConfigError, "targets file")
    unknown_tables = set(data) - {"targets"}
    if unknown_tables:
        raise JudgeConfigError(f"{path}: unknown table(s) {sorted(unknown_tables)}; expected [targets.NAME]")
    tables = data.get("targets") or {}
    if not isinstance(tables, dict) or not any(_is_custom_table(t) for t in tables.values()):
        return load_spec_tables(path, "targets", tables, TargetSpec, _TARGET_FIELDS, _TARGET_RULES)
    specs: dict[str, TargetSpec] = {}
    for name, table in tables.items():  # in the file's order, each kind by its own loader
        if _is_custom_table(table):
            where = f"{path}: [targets.{name}]"
            settings = {k: v for k, v in table.items() if k != "spec"}
            specs[name] = parse_custom_target(str(table["spec"]), name, settings, where)
        else:
            specs |= load_spec_tables(path, "targets", {name: table}, TargetSpec, _TARGET_FIELDS, _TARGET_RULES)
    return specs


def resolve_targets(text: str | None, from_file: dict[str, TargetSpec] | None) -> list[TargetSpec]:
    """`--targets a,b`: names from the targets file or inline specs; default: every target in the file."""
    return resolve_specs(text, from_file or {}, parse_target_spec, "target")


# ---------------------------------------------------------------- targets that are not a chat API


@dataclass(frozen=True)
class HttpTargetSpec(TargetSpec):
    """A chatbot behind its own HTTP API (`http:URL`; judge.respond.custom_targets explains the settings)."""

    url: str = ""  # may hold credentials (a query key): see public_dict
    headers: tuple[tuple[str, str], ...] = ()  # (header, the environment variable that holds its value)
    request: str = json.dumps(DEFAULT_REQUEST)  # the request template, canonical JSON
    reply: str = DEFAULT_REPLY
    version: str | None = None

    def decoding_params(self) -> dict[str, Any]:
        """What can change the answer: the endpoint, the request, the reply path, the system prompt and the
        `version` you raise when the chatbot changes behind the same URL (header values are not in it)."""
        return {"provider": HTTP, "url": self.url, "request": self.request, "reply": self.reply,
                "headers": [header for header, _ in self.headers], "system_prompt": self.system_prompt,
                "version": self.version}  # fmt: skip

    def public_dict(self) -> dict[str, Any]:
        return {**asdict(self), "url": public_url(self.url), "base_url": None}


@dataclass(frozen=True)
class PythonTargetSpec(TargetSpec):
    """A Python callable (`python:pkg.module:function`), sync or async, given the conversation, returning the reply."""

    function: str = ""
    version: str | None = None

    def decoding_params(self) -> dict[str, Any]:
        """The function's name, the system prompt and the `version` you raise when the function's behaviour
        changes (the cache cannot see inside it)."""
        return {"provider": PYTHON, "function": self.function, "system_prompt": self.system_prompt,
                "version": self.version}  # fmt: skip


def parse_custom_target(
    text: str, name: str | None = None, settings: dict[str, Any] | None = None, where: str | None = None
) -> TargetSpec:
    """An `http:` or `python:` target, inline or from a targets-file table (`settings`, at `where`)."""
    fields = custom_target_fields(text, name, settings or {}, where)
    return (HttpTargetSpec if fields["provider"] == HTTP else PythonTargetSpec)(**fields)


def _is_custom_table(table: Any) -> bool:
    return isinstance(table, dict) and isinstance(table.get("spec"), str) and custom_kind(table["spec"]) is not None
