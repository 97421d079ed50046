"""Targets: the chatbots under test, named like judges (`PROVIDER:MODEL[@BASE_URL]`) or in a targets file.

A targets file has `[targets.NAME]` tables with `spec` and the settings of a judge that make sense for a
chatbot (temperature, max tokens, seed, concurrency, limits, prices, retries, timeouts) plus
`system_prompt`: the system message the chatbot is deployed with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judge.bundled import read_toml
from judge.judges import (
    _TOML_FIELDS,
    SETTING_RULES,
    JudgeConfigError,
    JudgeSpec,
    SettingRule,
    load_spec_tables,
    parse_judge_spec,
    resolve_specs,
    spec_fields,
)

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
        }


def parse_target_spec(text: str, name: str | None = None) -> TargetSpec:
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
    return load_spec_tables(path, "targets", data.get("targets") or {}, TargetSpec, _TARGET_FIELDS, _TARGET_RULES)


def resolve_targets(text: str | None, from_file: dict[str, TargetSpec] | None) -> list[TargetSpec]:
    """`--targets a,b`: names from the targets file or inline specs; default: every target in the file."""
    return resolve_specs(text, from_file or {}, parse_target_spec, "target")
