"""Judge specifications (`PROVIDER:MODEL[@BASE_URL]`, judges.toml), prices and API keys.

No network here: `client.py` builds the clients. API keys are read from the environment when a client
is built and are never stored on a JudgeSpec, so they cannot leak into a cache key, an output file or
a log.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Provider = Literal["openai", "anthropic"]
OutputMode = Literal["tools", "json_schema", "json"]
# json_schema is OpenAI's `response_format`; Anthropic has tool use and plain JSON.
MODES_BY_PROVIDER: dict[str, tuple[str, ...]] = {
    "openai": ("tools", "json_schema", "json"),
    "anthropic": ("tools", "json"),
}

# List prices in USD per million tokens (input, output), as published by the providers in 2025.
# They change: set `price_input_per_mtok` / `price_output_per_mtok` in judges.toml to override.
# A model missing here gets cost null, never 0.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-sonnet-4-0": (3.00, 15.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-opus-4-1": (15.00, 75.00),
}

_SPEC = re.compile(r"^(?P<provider>[a-z]+):(?P<model>[^@\s]+)(?:@(?P<base_url>\S+))?$")
_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
_BASE_URL_ENV = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL"}


class JudgeConfigError(Exception):
    """A judge that cannot be used as given; the message says where and what to do."""


@dataclass(frozen=True)
class JudgeSpec:
    name: str
    provider: Provider
    model: str
    base_url: str | None = None
    mode: OutputMode = "tools"
    temperature: float = 0.0
    max_tokens: int = 2048
    seed: int | None = None
    concurrency: int | None = None
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    price_input_per_mtok: float | None = None
    price_output_per_mtok: float | None = None
    price_cached_input_per_mtok: float | None = None  # OpenAI cached input; Anthropic's follows from input
    max_reasks: int = 2
    max_attempts: int = 6
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    timeout_s: float = 120.0
    deadline_s: float = 600.0
    api_key_env: str | None = None

    def decoding_params(self) -> dict[str, Any]:
        """Everything besides the prompt that can change the judge's answer (part of the cache key)."""
        return {
            "provider": self.provider,
            "model": self.model,
            "mode": self.mode,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }

    def prices(self) -> tuple[float, float] | None:
        if self.price_input_per_mtok is not None and self.price_output_per_mtok is not None:
            return (self.price_input_per_mtok, self.price_output_per_mtok)
        return DEFAULT_PRICES.get(self.model)

    def cost_usd(self, input_tokens: int | None, output_tokens: int | None) -> float | None:
        prices = self.prices()
        if prices is None or input_tokens is None or output_tokens is None:
            return None
        return round((input_tokens * prices[0] + output_tokens * prices[1]) / 1_000_000, 10)

    def public_dict(self) -> dict[str, Any]:
        """Settings for run.json: everything except secrets (which a spec never holds anyway)."""
        return asdict(self)

    def key_env(self) -> str:
        return self.api_key_env or _KEY_ENV[self.provider]

    def effective_base_url(self) -> str | None:
        return self.base_url or os.environ.get(_BASE_URL_ENV[self.provider]) or None


_NUMBER = (int, float)
_SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "mode": (str,),
    "api_key_env": (str,),
    "seed": (int,),
    "max_tokens": (int,),
    "concurrency": (int,),
    "max_reasks": (int,),
    "max_attempts": (int,),
    **{
        k: _NUMBER
        for k in (
            "temperature",
            "requests_per_minute",
            "tokens_per_minute",
            "price_input_per_mtok",
            "price_output_per_mtok",
            "price_cached_input_per_mtok",
            "backoff_initial_s",
            "backoff_max_s",
            "timeout_s",
            "deadline_s",
        )
    },
}
_TOML_FIELDS = {f for f in JudgeSpec.__dataclass_fields__ if f not in ("name", "provider", "model", "base_url")}


def parse_judge_spec(text: str, name: str | None = None) -> JudgeSpec:
    match = _SPEC.match(text.strip())
    if not match:
        raise JudgeConfigError(
            f"judge {text!r}: expected PROVIDER:MODEL or PROVIDER:MODEL@BASE_URL, "
            "e.g. openai:gpt-4.1-mini, anthropic:claude-sonnet-4-5, openai:qwen2.5-72b@http://localhost:8000/v1"
        )
    provider = match["provider"]
    if provider not in _KEY_ENV:
        raise JudgeConfigError(
            f"judge {text!r}: unknown provider {provider!r}; use openai (also for any OpenAI-compatible "
            "server such as vLLM, Ollama, llama.cpp or LiteLLM, with @BASE_URL) or anthropic"
        )
    base_url = match["base_url"]
    if base_url and not base_url.startswith(("http://", "https://")):
        raise JudgeConfigError(f"judge {text!r}: base URL {base_url!r} must start with http:// or https://")
    return JudgeSpec(name=name or text.strip(), provider=provider, model=match["model"], base_url=base_url)


@dataclass
class JudgesFile:
    judges: dict[str, JudgeSpec] = field(default_factory=dict)
    families: dict[str, list[str]] = field(default_factory=dict)


def read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise JudgeConfigError(f"{path}: cannot read {what} ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise JudgeConfigError(f"{path}: not valid TOML ({exc})") from exc


def load_judges_file(path: Path) -> JudgesFile:
    """Read judges.toml: `[judges.NAME]` tables with `spec = "PROVIDER:MODEL[@URL]"` and settings."""
    data = read_toml(path, "judges file")
    unknown_tables = set(data) - {"judges", "families"}
    if unknown_tables:
        raise JudgeConfigError(f"{path}: unknown table(s) {sorted(unknown_tables)}; expected [judges.NAME], [families]")
    result = JudgesFile()
    result.judges = load_spec_tables(path, "judges", data.get("judges") or {}, JudgeSpec, _TOML_FIELDS, _SETTING_TYPES)
    families = data.get("families") or {}
    for family, patterns in families.items():
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise JudgeConfigError(f"{path}: [families] {family} must be a list of name patterns")
    result.families = {k: list(v) for k, v in families.items()}
    return result


def load_spec_tables(
    path: Path,
    table_name: str,
    tables: dict[str, Any],
    spec_type: type[JudgeSpec],
    fields: set[str],
    types: dict[str, tuple[type, ...]],
) -> dict[str, Any]:
    """`[TABLE.NAME]` tables of a judges or targets file, each a spec string plus settings, checked."""
    specs: dict[str, Any] = {}
    for name, table in tables.items():
        where = f"{path}: [{table_name}.{name}]"
        if not isinstance(table, dict) or "spec" not in table:
            raise JudgeConfigError(f'{where}: needs spec = "PROVIDER:MODEL[@BASE_URL]"')
        try:
            spec = parse_judge_spec(str(table["spec"]), name=name)
        except JudgeConfigError as exc:
            raise JudgeConfigError(f"{where}: {exc}") from exc
        settings = {k: v for k, v in table.items() if k != "spec"}
        if "api_key" in settings:
            raise JudgeConfigError(f"{where}: keys are read from the environment only; use api_key_env")
        unknown = sorted(set(settings) - fields)
        if unknown:
            raise JudgeConfigError(f"{where}: unknown setting(s) {unknown}; known: {sorted(fields)}")
        for key, value in settings.items():
            expected = types[key]
            if isinstance(value, bool) or not isinstance(value, expected):
                kind = " or ".join(t.__name__ for t in expected)
                raise JudgeConfigError(f"{where}: {key} must be a {kind}, got {value!r}")
        modes = MODES_BY_PROVIDER[spec.provider]
        if settings.get("mode", "tools") not in modes:
            raise JudgeConfigError(f"{where}: mode for {spec.provider} must be one of {', '.join(modes)}")
        specs[name] = spec_type(
            name=spec.name, provider=spec.provider, model=spec.model, base_url=spec.base_url, **settings
        )
    return specs


def resolve_judges(text: str | None, judges_file: JudgesFile | None) -> list[JudgeSpec]:
    """`--judges a,b` where each is a name from the judges file or an inline spec; default: the file's."""
    named = judges_file.judges if judges_file else {}
    if not text:
        if named:
            return list(named.values())
        raise JudgeConfigError("no judge given: pass --judges PROVIDER:MODEL[,...] or --judges-file judges.toml")
    parts = [part.strip() for part in text.split(",") if part.strip()]
    specs = [named[part] if part in named else parse_judge_spec(part) for part in parts]
    if not specs:
        raise JudgeConfigError(f"--judges {text!r} names no judge; give PROVIDER:MODEL[,...]")
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise JudgeConfigError(f"judge(s) {duplicates} given twice in --judges")
    return specs


def api_key_for(spec: JudgeSpec) -> str:
    key = os.environ.get(spec.key_env())
    if key:
        return key
    if spec.effective_base_url():
        return "not-needed"  # local OpenAI-compatible servers accept any key
    raise JudgeConfigError(
        f"judge {spec.name}: {spec.key_env()} is not set; export it, or point the judge at an "
        "OpenAI-compatible server with openai:MODEL@http://localhost:8000/v1"
    )
