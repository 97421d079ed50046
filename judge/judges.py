"""Judge specifications (`PROVIDER:MODEL[@BASE_URL[,BASE_URL...]]`, judges.toml), prices and API keys.

No network here: `client.py` builds the clients. API keys are read from the environment when a client
is built and are never stored on a JudgeSpec, so they cannot leak into a cache key, an output file or
a log.
"""

from __future__ import annotations

import base64
import math
import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from judge.bundled import read_toml
from judge.errors import ConfigError

Provider = Literal["openai", "anthropic", "azure", "bedrock", "vertex", "gemini"]
OutputMode = Literal["tools", "json_schema", "json"]
# json_schema is OpenAI's `response_format`; Anthropic has tool use and plain JSON. Azure OpenAI serves
# OpenAI's API; Claude on Bedrock and Vertex serves Anthropic's. Gemini's OpenAI-compatible endpoint
# takes tools and `response_format` json_schema (docs/providers.md).
MODES_BY_PROVIDER: dict[str, tuple[str, ...]] = {
    "openai": ("tools", "json_schema", "json"),
    "anthropic": ("tools", "json"),
    "azure": ("tools", "json_schema", "json"),
    "bedrock": ("tools", "json"),
    "vertex": ("tools", "json"),
    "gemini": ("tools", "json_schema"),
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
    # Gemini Developer API, paid tier; Gemini 2.5 Pro's price for prompts up to 200k tokens.
    "gemini-2.5-pro": (1.25, 10.00),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-flash-lite": (0.10, 0.40),
    "gemini-2.0-flash": (0.10, 0.40),
}

# ---------------------------------------------------------------- cloud providers (docs/providers.md)

Wire = Literal["openai", "anthropic"]
# The API each provider speaks: Azure OpenAI and Gemini's OpenAI-compatible endpoint speak OpenAI's Chat
# Completions, Claude on Amazon Bedrock and on Google Vertex AI speaks Anthropic's Messages API.
WIRE: dict[str, Wire] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure": "openai",
    "gemini": "openai",
    "bedrock": "anthropic",
    "vertex": "anthropic",
}
# The variables the providers' own SDKs and tools read. Bedrock's is an Amazon Bedrock API key: without
# it, each request is signed with AWS credentials. Vertex has no key: an access token is read from
# `api_key_env` when the judges file names one, else from Google's application default credentials.
CLOUD_KEY_ENV = {"azure": "AZURE_OPENAI_API_KEY", "bedrock": "AWS_BEARER_TOKEN_BEDROCK", "gemini": "GEMINI_API_KEY"}
CLOUD_BASE_URL_ENV = {
    "azure": "AZURE_OPENAI_ENDPOINT",
    "bedrock": "ANTHROPIC_BEDROCK_BASE_URL",
    "vertex": "ANTHROPIC_VERTEX_BASE_URL",
}
DEFAULT_BASE_URLS = {"gemini": "https://generativelanguage.googleapis.com/v1beta/openai"}
# Azure OpenAI's latest generally available data-plane inference version (structured outputs included).
AZURE_API_VERSION = "2024-10-21"
AZURE_TOKEN_ENV = "AZURE_OPENAI_AD_TOKEN"  # a Microsoft Entra ID token, read by the SDK itself
# Settings that only mean something for some providers.
PROVIDER_SETTINGS = {"api_version": ("azure",), "region": ("bedrock", "vertex"), "project": ("vertex",)}
# The providers whose batch APIs `--batch` drives.
BATCH_PROVIDERS = ("openai", "anthropic")
# The providers whose judges and targets may name several replica base URLs: OpenAI-compatible servers
# (vLLM, SGLang, Ollama, llama.cpp...) that one runs oneself, each replica serving the same weights.
REPLICA_PROVIDERS = ("openai",)
REPLICA_COOLDOWN_S = 30.0  # how long an unreachable replica is left alone before it is tried again
# A Vertex model id carries its version after an @ (claude-sonnet-4-5@20250929); a base URL follows a
# second @ and starts with http(s)://.
_VERTEX_SPEC = re.compile(r"^vertex:(?P<model>[^@\s]+(?:@(?!https?://)[^@\s]+)?)(?:@(?P<base_url>\S+))?$")
_AZURE_PATH = re.compile(r"^(?P<prefix>.*?)/openai(?:/deployments/(?P<deployment>[^/]+)(?:/chat/completions)?)?/?$")


def azure_endpoint(shown: str, model: str, base_url: str) -> tuple[str, str | None]:
    """(the resource endpoint, the api-version) of an Azure OpenAI URL as the portal shows it: the
    endpoint alone (https://RESOURCE.openai.azure.com), or a deployment's target URI
    (.../openai/deployments/NAME/chat/completions?api-version=V), whose deployment must be MODEL."""
    parts = urlsplit(base_url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    other = sorted(set(query) - {"api-version"})
    if other or parts.fragment:
        raise JudgeConfigError(
            f"judge {shown!r}: an Azure OpenAI URL takes only ?api-version=...; drop {other or ['the fragment']} "
            "(the key goes in AZURE_OPENAI_API_KEY or the variable api_key_env names)"
        )
    path = parts.path.rstrip("/")
    match = _AZURE_PATH.match(path) if "/openai" in path else None
    if match is not None:
        if match["deployment"] and unquote(match["deployment"]) != model:
            raise JudgeConfigError(
                f"judge {shown!r}: the URL names deployment {unquote(match['deployment'])!r} but the spec "
                f"names {model!r}; write azure:DEPLOYMENT@https://RESOURCE.openai.azure.com"
            )
        path = match["prefix"]
    elif path:
        raise JudgeConfigError(
            f"judge {shown!r}: an azure: URL is the resource endpoint (https://RESOURCE.openai.azure.com) or a "
            f"deployment's target URI, not the path {path!r}; for Azure's /openai/v1 API use "
            "openai:MODEL@https://RESOURCE.openai.azure.com/openai/v1 with api_key_env = \"AZURE_OPENAI_API_KEY\""
        )
    endpoint = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    return endpoint, query.get("api-version") or None


def check_provider_settings(settings: Mapping[str, Any], where: str, provider: str) -> None:
    """Refuse a setting that the judge's provider does not have (api_version, region, project)."""
    for key, providers in PROVIDER_SETTINGS.items():
        if key in settings and provider not in providers:
            raise JudgeConfigError(f"{where}: {key} is a setting of {' and '.join(providers)} judges, not {provider}")


_SPEC = re.compile(r"^(?P<provider>[a-z]+):(?P<model>[^@\s]+)(?:@(?P<base_url>\S+))?$")
_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", **CLOUD_KEY_ENV}
_BASE_URL_ENV = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL", **CLOUD_BASE_URL_ENV}


class JudgeConfigError(ConfigError):
    """A judge that cannot be used as given; the message says where and what to do."""


DECODING_FIELDS = ("provider", "model", "mode", "temperature", "max_tokens", "seed")
"""The settings that can change a judge's answer besides its prompt: the cache key's and a validation's match."""


@dataclass(frozen=True)
class JudgeSpec:
    name: str
    provider: Provider
    model: str
    base_url: str | None = field(default=None, repr=False)  # may hold credentials: see public_url()
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
    api_version: str | None = None  # Azure OpenAI's api-version
    region: str | None = None  # Bedrock's AWS region, Vertex's Google Cloud location
    project: str | None = None  # Vertex's Google Cloud project
    # Replicas of a self-hosted model (docs/self-hosted.md): two or more base URLs, base_url the first;
    # the requests are spread over them. Not in decoding_params: every replica serves the same weights.
    base_urls: tuple[str, ...] = field(default=(), repr=False)
    replica_concurrency: tuple[int, ...] = ()  # per replica; () shares `concurrency` evenly
    replica_cooldown_s: float = REPLICA_COOLDOWN_S

    def __post_init__(self) -> None:
        if self.base_urls and self.base_url is None:  # a spec built in Python with base_urls only
            object.__setattr__(self, "base_url", self.base_urls[0])
        if self.base_urls and self.base_url != self.base_urls[0]:
            raise JudgeConfigError(f"judge {self.name}: base_url must be the first of base_urls (or left out)")
        if self.replica_concurrency and len(self.replica_concurrency) != len(self.base_urls):
            raise JudgeConfigError(
                f"judge {self.name}: replica_concurrency has {len(self.replica_concurrency)} value(s) for "
                f"{len(self.base_urls)} replica URL(s); give one for each"
            )

    def replica_urls(self) -> tuple[str | None, ...]:
        """The base URLs requests go to: the replicas, or the one effective base URL (None: the provider's API)."""
        return self.base_urls or (self.effective_base_url(),)

    def decoding_params(self) -> dict[str, Any]:
        """Everything besides the prompt that can change the judge's answer (part of the cache key)."""
        return {
            **{name: getattr(self, name) for name in DECODING_FIELDS},
            **({"mock": MOCK_VERSION} if self.provider == MOCK else {}),
        }

    def prices(self) -> tuple[float, float] | None:
        if self.price_input_per_mtok is not None and self.price_output_per_mtok is not None:
            return (self.price_input_per_mtok, self.price_output_per_mtok)
        if self.provider == MOCK:  # answered in-process: nothing to pay
            return (0.0, 0.0)
        return DEFAULT_PRICES.get(self.model)

    def cost_usd(self, input_tokens: int | None, output_tokens: int | None) -> float | None:
        prices = self.prices()
        if prices is None or input_tokens is None or output_tokens is None:
            return None
        return round((input_tokens * prices[0] + output_tokens * prices[1]) / 1_000_000, 10)

    def public_dict(self) -> dict[str, Any]:
        """Settings for run.json: never a secret (API keys are not on a spec; URL credentials are removed)."""
        return {
            **asdict(self),
            "base_url": public_url(self.base_url) if self.base_url else None,
            "base_urls": [public_url(url) for url in self.base_urls],
        }

    def key_env(self) -> str | None:
        """The variable holding the key (None: a Vertex judge without api_key_env, which uses Google's
        default credentials)."""
        return self.api_key_env or _KEY_ENV.get(self.provider)

    def custom_base_url(self) -> str | None:
        """The base URL given in the spec or the provider's variable, if any."""
        return self.base_url or os.environ.get(_BASE_URL_ENV.get(self.provider, ""), "") or None

    def effective_base_url(self) -> str | None:
        return self.custom_base_url() or DEFAULT_BASE_URLS.get(self.provider)

    @property
    def wire(self) -> Wire | None:
        """The API the provider speaks: "openai" (Chat Completions) or "anthropic" (Messages); None for what
        is not reached through an SDK (a mock, an `http:` or `python:` target)."""
        return WIRE.get(self.provider)


# ---------------------------------------------------------------- base URLs may carry credentials

REDACTED = "REDACTED"
_URL_IN_TEXT = re.compile(r"https?://[^\s,'\"]+")
_USERINFO = re.compile(r"//[^/?#]*@")


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host  # IPv6 literal
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: keep what was written after the host
        return parts.netloc.rpartition("@")[2]
    return f"{host}:{port}" if port is not None else host


def public_url(url: str) -> str:
    """`url` safe to write anywhere: user:password@ removed and every query value replaced by REDACTED.

    Proxies and gateways take keys in either place (`http://user:key@host/v1`, `...?api-key=...`); the
    scheme, host, port and path are kept so a reader still sees which server was used.
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL (an unclosed IPv6 bracket): still never show what precedes an @
        return _USERINFO.sub("//", url).partition("?")[0]
    query = urlencode([(k, REDACTED) for k, _ in parse_qsl(parts.query, keep_blank_values=True)], safe=REDACTED)
    return urlunsplit((parts.scheme, _host_port(url), parts.path, query, ""))


def without_credentials(url: str | None) -> tuple[str | None, dict[str, str]]:
    """(`url` without user:password@, the headers that send them): a proxy that takes credentials in the
    URL expects them as HTTP basic auth, and the SDKs' HTTP clients refuse a URL that carries them."""
    if url is None:
        return None, {}
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, {}
    userinfo = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    token = base64.b64encode(userinfo.encode("utf-8")).decode("ascii")
    return urlunsplit((parts.scheme, _host_port(url), parts.path, parts.query, parts.fragment)), {
        "Authorization": f"Basic {token}"
    }


def redact_urls(text: str) -> str:
    """Every http(s) URL inside `text` (a command line, a message) in its public form."""
    return _URL_IN_TEXT.sub(lambda match: public_url(match[0]), text)


def inline_judge_name(provider: str, model: str, base_url: str | None, replicas: tuple[str, ...] = ()) -> str:
    """`provider:model@host[:port]`: short enough for a table, and free of the URL's credentials and path;
    with replicas, their hosts joined by `+` (`openai:m@gpu1:8000+gpu2:8000`)."""
    hosts = "+".join(_host_port(url) for url in replicas or ((base_url,) if base_url else ()))
    return f"{provider}:{model}" + (f"@{hosts}" if hosts else "")


# ---------------------------------------------------------------- settings: types and ranges


@dataclass(frozen=True)
class SettingRule:
    """What one judges.toml setting accepts: its types and, for numbers, the range that makes sense."""

    types: tuple[type, ...]
    check: Callable[[Any], bool] | None = None
    rule: str = ""  # the range in words, for the message


def _at_least(low: float) -> Callable[[Any], bool]:
    return lambda v: v >= low


def _above(low: float) -> Callable[[Any], bool]:
    return lambda v: v > low


_NUMBER = (int, float)
SETTING_RULES: dict[str, SettingRule] = {
    "mode": SettingRule((str,)),
    "api_key_env": SettingRule((str,)),
    "seed": SettingRule((int,)),
    "temperature": SettingRule(_NUMBER, lambda v: 0 <= v <= 2, "between 0 and 2"),
    "max_tokens": SettingRule((int,), _at_least(1), "at least 1"),
    "concurrency": SettingRule((int,), _at_least(1), "at least 1"),
    "max_reasks": SettingRule((int,), _at_least(0), "0 or more"),
    "max_attempts": SettingRule((int,), _at_least(1), "at least 1"),
    "requests_per_minute": SettingRule(_NUMBER, _above(0), "greater than 0 (leave it out for no limit)"),
    "tokens_per_minute": SettingRule(_NUMBER, _above(0), "greater than 0 (leave it out for no limit)"),
    "price_input_per_mtok": SettingRule(_NUMBER, _at_least(0), "0 or more"),
    "price_output_per_mtok": SettingRule(_NUMBER, _at_least(0), "0 or more"),
    "backoff_initial_s": SettingRule(_NUMBER, _at_least(0), "0 or more"),
    "backoff_max_s": SettingRule(_NUMBER, _at_least(0), "0 or more"),
    "timeout_s": SettingRule(_NUMBER, _above(0), "greater than 0"),
    "deadline_s": SettingRule(_NUMBER, _above(0), "greater than 0"),
    "price_cached_input_per_mtok": SettingRule(_NUMBER, _at_least(0), "0 or more"),
    "api_version": SettingRule((str,)),
    "region": SettingRule((str,)),
    "project": SettingRule((str,)),
    # Replicas: each element is checked by replica_fields.
    "base_urls": SettingRule((list,)),
    "replica_concurrency": SettingRule((int, list)),
    "replica_cooldown_s": SettingRule(_NUMBER, _above(0), "greater than 0"),
}
# The providers' documented ranges; Bedrock and Vertex serve Anthropic's models, Azure OpenAI's.
MAX_TEMPERATURE = {"openai": 2.0, "anthropic": 1.0, "azure": 2.0, "bedrock": 1.0, "vertex": 1.0, "gemini": 2.0}
_TOML_FIELDS = {f for f in JudgeSpec.__dataclass_fields__ if f not in ("name", "provider", "model", "base_url")}


def check_settings(
    settings: Mapping[str, Any],
    where: str,
    provider: str,
    known: Collection[str] = frozenset(_TOML_FIELDS),
    rules: Mapping[str, SettingRule] = SETTING_RULES,
) -> None:
    """Refuse unknown keys, wrong types and out-of-range values of one judge table (not `spec`).

    `where` is "FILE: [judges.NAME]"; `known` and `rules` let another table of the same shape (with
    fields of its own) reuse the checks.
    """
    if "api_key" in settings:
        raise JudgeConfigError(f"{where}: keys are read from the environment only; use api_key_env")
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise JudgeConfigError(f"{where}: unknown setting(s) {unknown}; known: {sorted(known)}")
    for key, value in settings.items():
        rule = rules[key]
        if isinstance(value, bool) or not isinstance(value, rule.types):
            kind = " or ".join(t.__name__ for t in rule.types)
            raise JudgeConfigError(f"{where}: {key} must be a {kind}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise JudgeConfigError(f"{where}: {key} must be a finite number, got {value!r}")
        if rule.check is not None and not rule.check(value):
            raise JudgeConfigError(f"{where}: {key} must be {rule.rule}, got {value!r}")
    check_provider_settings(settings, where, provider)
    modes = MODES_BY_PROVIDER[provider]
    if settings.get("mode", "tools") not in modes:
        raise JudgeConfigError(f"{where}: mode for {provider} must be one of {', '.join(modes)}")
    top = MAX_TEMPERATURE[provider]
    if settings.get("temperature", 0) > top:
        raise JudgeConfigError(f"{where}: temperature for {provider} must be between 0 and {top:g}")
    initial = settings.get("backoff_initial_s", JudgeSpec.backoff_initial_s)
    if settings.get("backoff_max_s", max(initial, JudgeSpec.backoff_max_s)) < initial:
        raise JudgeConfigError(f"{where}: backoff_max_s must be at least backoff_initial_s ({initial!r})")


def check_samples(judges: Iterable[JudgeSpec], samples: int, noun: str = "judge") -> None:
    """K > 1 samples at temperature 0 would pay K times for the same answer: refuse, saying how to fix it."""
    if samples <= 1:
        return
    greedy = [j.name for j in judges if j.temperature == 0]
    if greedy:
        raise JudgeConfigError(
            f"{samples}: {noun}(s) {', '.join(greedy)} run at temperature 0, so every sample would be "
            f"the same answer paid again; set temperature > 0 for them in a `{noun}s_file=` "
            f"([{noun}s.NAME] temperature = 0.7), or use 1 sample",
            field="samples",
        )


def parse_judge_spec(text: str, name: str | None = None) -> JudgeSpec:
    """`PROVIDER:MODEL[@BASE_URL]`, or `openai:MODEL@URL1,URL2,...` for replicas of a self-hosted model; an
    inline judge is named `provider:model@host[:port]` (see inline_judge_name)."""
    stripped = text.strip()
    match = (_VERTEX_SPEC if stripped.startswith("vertex:") else _SPEC).match(stripped)
    shown = redact_urls(text)
    if not match:
        raise JudgeConfigError(
            f"judge {shown!r}: expected PROVIDER:MODEL or PROVIDER:MODEL@BASE_URL, "
            "e.g. openai:gpt-4.1-mini, anthropic:claude-sonnet-4-5, openai:qwen2.5-72b@http://localhost:8000/v1"
        )
    provider = "vertex" if stripped.startswith("vertex:") else match["provider"]
    if provider == MOCK:
        return mock_spec(JudgeSpec, match["model"], match["base_url"], name, shown)
    if provider not in MODES_BY_PROVIDER:
        raise JudgeConfigError(
            f"judge {shown!r}: unknown provider {provider!r}; use openai (also for any OpenAI-compatible "
            "server such as vLLM, Ollama, llama.cpp or LiteLLM, with @BASE_URL), anthropic, azure (Azure OpenAI), "
            "bedrock or vertex (Claude on Amazon Bedrock or Google Vertex AI) or gemini (docs/providers.md)"
        )
    model = match["model"]
    urls = match["base_url"].split(",") if match["base_url"] else []
    if len(urls) > 1:
        return replicas_spec(JudgeSpec, provider, model, urls, name, shown)
    base_url = urls[0] if urls else None
    api_version = None
    if base_url:
        check_base_url(shown, base_url)
    if base_url and provider == "azure":
        base_url, api_version = azure_endpoint(shown, model, base_url)
    if base_url and provider != "azure":
        check_plain_base_url(shown, model, base_url)
    return JudgeSpec(
        name=name or inline_judge_name(provider, model, base_url),
        provider=provider,  # type: ignore[arg-type]
        model=model,
        base_url=base_url,
        api_version=api_version,
    )


def check_base_url(shown: str, base_url: str) -> None:
    """Refuse a base URL that is not an http(s) URL with a host and a valid port."""
    if not base_url.startswith(("http://", "https://")):
        raise JudgeConfigError(
            f"judge {shown!r}: base URL {redact_urls(base_url)!r} must start with http:// or https://"
        )
    try:
        urlsplit(base_url).port  # noqa: B018 - parsing the port is the check (a bracket left open, 99999)
    except ValueError as exc:
        raise JudgeConfigError(
            f"judge {shown!r}: base URL {public_url(base_url)!r} is not a valid URL ({exc}); write it as "
            "http://HOST:PORT/PATH with a port from 1 to 65535 (an IPv6 host in brackets: http://[::1]:8000/v1)"
        ) from None
    if not urlsplit(base_url).hostname:
        raise JudgeConfigError(f"judge {shown!r}: base URL {public_url(base_url)!r} names no host")


def check_plain_base_url(shown: str, model: str, base_url: str) -> None:
    """Refuse what the SDKs would mangle in a base URL that is not Azure's: a query string or a fragment."""
    if "api-version" in urlsplit(base_url).query:
        raise JudgeConfigError(
            f"judge {shown!r}: an Azure OpenAI URL (with ?api-version=) is an azure: judge; write "
            f"azure:{model}@{urlsplit(base_url).scheme}://{_host_port(base_url)} (the portal's target URI "
            "with its ?api-version= is accepted there too; docs/providers.md)"
        )
    if urlsplit(base_url).query or urlsplit(base_url).fragment:
        raise JudgeConfigError(
            f"judge {shown!r}: base URL {public_url(base_url)!r} has a query string or fragment, which the SDKs "
            "would turn into part of the request path; drop it, and pass a key through the provider's variable "
            "(OPENAI_API_KEY, ANTHROPIC_API_KEY) or api_key_env in a judges file"
        )


# ---------------------------------------------------------------- replicas of a self-hosted model


def _replica_identity(url: str) -> tuple[str, str, int | None, str]:
    """What makes two replica URLs the same server: scheme, host, port and path (credentials and a final
    slash aside)."""
    parts = urlsplit(url)
    default_port = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port or default_port, parts.path.rstrip("/")


def check_replica_urls(shown: str, provider: str, model: str, urls: list[str]) -> tuple[str, ...]:
    """Replica base URLs, each checked as a base URL: none empty, none twice, and only for the providers
    that serve a model one runs oneself (REPLICA_PROVIDERS)."""
    if provider not in REPLICA_PROVIDERS:
        raise JudgeConfigError(
            f"judge {shown!r}: several base URLs (replicas) are for OpenAI-compatible servers one runs oneself "
            f"(vLLM, SGLang, Ollama...), written openai:MODEL@URL1,URL2; {provider} judges take one base URL "
            "(docs/self-hosted.md)"
        )
    seen: dict[tuple[str, str, int | None, str], int] = {}
    urls = [url.strip() for url in urls]
    for number, url in enumerate(urls, start=1):
        if not url.strip():
            raise JudgeConfigError(
                f"judge {shown!r}: replica URL {number} of {len(urls)} is empty; list the base URLs separated "
                "by single commas, e.g. openai:MODEL@http://gpu1:8000/v1,http://gpu2:8000/v1"
            )
        check_base_url(shown, url)
        check_plain_base_url(shown, model, url)
        identity = _replica_identity(url)
        if identity in seen:
            raise JudgeConfigError(
                f"judge {shown!r}: replica URL {number} ({public_url(url)}) repeats replica URL {seen[identity]}; "
                "list each server once"
            )
        seen[identity] = number
    return tuple(urls)


def replicas_spec(
    spec_type: type[JudgeSpec], provider: str, model: str, urls: list[str], name: str | None, shown: str
) -> Any:
    """A judge or target spec whose requests are spread over two or more replica base URLs."""
    replicas = check_replica_urls(shown, provider, model, urls)
    return spec_type(
        name=name or inline_judge_name(provider, model, None, replicas),
        provider=provider,  # type: ignore[arg-type]
        model=model,
        base_url=replicas[0],
        base_urls=replicas,
    )


def replica_fields(spec: JudgeSpec, settings: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The replica settings of one judges- or targets-file table (`base_urls`, `replica_concurrency`,
    `replica_cooldown_s`), checked against its spec and each other, as JudgeSpec fields.

    `replica_concurrency` is one number for every replica or a list of one per replica; the judge's
    concurrency is then their sum, so it cannot be set as well.
    """
    fields: dict[str, Any] = {}
    replicas = spec.base_urls
    listed = settings.get("base_urls")
    if listed is not None:
        if spec.base_url is not None:
            raise JudgeConfigError(
                f"{where}: base_urls and a base URL in spec both name servers; give them once, either "
                'spec = "openai:MODEL" with base_urls = [...] or spec = "openai:MODEL@URL1,URL2"'
            )
        if not listed or not all(isinstance(url, str) for url in listed):
            raise JudgeConfigError(
                f'{where}: base_urls must be a list of base URLs, e.g. ["http://gpu1:8000/v1", "http://gpu2:8000/v1"]'
            )
        try:
            replicas = check_replica_urls(f"{spec.provider}:{spec.model}", spec.provider, spec.model, listed)
        except JudgeConfigError as exc:
            raise JudgeConfigError(f"{where}: base_urls: {exc}") from exc
        replicas = replicas if len(replicas) > 1 else ()  # one URL is a plain base URL
        fields |= {"base_url": listed[0].strip(), "base_urls": replicas}
    for key in ("replica_concurrency", "replica_cooldown_s"):
        if key in settings and len(replicas) < 2:
            raise JudgeConfigError(
                f"{where}: {key} needs two or more replica base URLs "
                '(base_urls = [...] or spec = "openai:MODEL@URL1,URL2")'
            )
    shares = settings.get("replica_concurrency")
    if shares is not None:
        if "concurrency" in settings:
            raise JudgeConfigError(
                f"{where}: set concurrency (shared evenly by the replicas) or replica_concurrency (per replica; "
                "the judge's concurrency is their sum), not both"
            )
        values = [shares] * len(replicas) if isinstance(shares, int) else list(shares)
        if len(values) != len(replicas) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values
        ):
            raise JudgeConfigError(
                f"{where}: replica_concurrency must be a whole number of at least 1, or a list of {len(replicas)} "
                f"of them (one per replica URL, in order), got {shares!r}"
            )
        fields |= {"replica_concurrency": tuple(values), "concurrency": sum(values)}
    return fields


def split_spec_list(text: str) -> list[str]:
    """`--judges` / `--targets` split into specs at commas, except a comma before another base URL, which
    continues one spec's replica list (`openai:m@http://a/v1,http://b/v1,anthropic:c`). Empty parts are
    dropped; an empty replica entry stays inside its spec, whose parser refuses it."""
    return [part.strip() for part in re.split(r",(?![\s,]*https?://)", text) if part.strip()]


def spec_fields(spec: JudgeSpec) -> dict[str, Any]:
    """What a parsed spec string sets, to build a judge or target spec of another type from it."""
    fields = {"name": spec.name, "provider": spec.provider, "model": spec.model, "base_url": spec.base_url}
    return fields | ({"api_version": spec.api_version} if spec.api_version else {}) | (
        {"base_urls": spec.base_urls} if spec.base_urls else {}
    )


@dataclass
class JudgesFile:
    judges: dict[str, JudgeSpec] = field(default_factory=dict)
    families: dict[str, list[str]] = field(default_factory=dict)


def load_judges_file(path: Path) -> JudgesFile:
    """Read judges.toml: `[judges.NAME]` tables with `spec = "PROVIDER:MODEL[@URL]"` and settings."""
    data = read_toml(path, JudgeConfigError, "judges file")
    unknown_tables = set(data) - {"judges", "families"}
    if unknown_tables:
        raise JudgeConfigError(f"{path}: unknown table(s) {sorted(unknown_tables)}; expected [judges.NAME], [families]")
    result = JudgesFile()
    result.judges = load_spec_tables(path, "judges", data.get("judges") or {}, JudgeSpec, _TOML_FIELDS, SETTING_RULES)
    families = data.get("families") or {}
    if not isinstance(families, dict):
        raise JudgeConfigError(f"{path}: [families] must be a table of `FAMILY = [name patterns]`")
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
    rules: Mapping[str, SettingRule],
) -> dict[str, Any]:
    """`[TABLE.NAME]` tables of a judges or targets file, each a spec string plus settings, checked."""
    specs: dict[str, Any] = {}
    if not isinstance(tables, dict):
        raise JudgeConfigError(f'{path}: [{table_name}] must hold tables [{table_name}.NAME] with spec = "..."')
    for name, table in tables.items():
        where = f"{path}: [{table_name}.{name}]"
        if not isinstance(table, dict) or "spec" not in table:
            raise JudgeConfigError(f'{where}: needs spec = "PROVIDER:MODEL[@BASE_URL]"')
        try:
            spec = parse_judge_spec(str(table["spec"]), name=name)
        except JudgeConfigError as exc:
            raise JudgeConfigError(f"{where}: {exc}") from exc
        settings = {k: v for k, v in table.items() if k != "spec"}
        check_settings(settings, where, spec.provider, fields, rules)
        settings |= replica_fields(spec, settings, where)
        if spec.api_version and settings.get("api_version", spec.api_version) != spec.api_version:
            raise JudgeConfigError(
                f"{where}: api_version {settings['api_version']!r} differs from the URL's {spec.api_version!r}; "
                "keep one"
            )
        specs[name] = spec_type(**(spec_fields(spec) | settings))
    return specs


def resolve_judges(text: str | None, judges_file: JudgesFile | None) -> list[JudgeSpec]:
    """`--judges a,b` where each is a name from the judges file or an inline spec; default: the file's."""
    return resolve_specs(text, judges_file.judges if judges_file else {}, parse_judge_spec, "judge")


def resolve_specs(text: str | None, named: Mapping[str, Any], parse: Callable[[str], Any], noun: str) -> list[Any]:
    """`--judges` / `--targets`: names from the file or inline specs, comma-separated; default: the file's."""
    option = f"{noun}s"
    if not text:
        if named:
            return list(named.values())
        raise JudgeConfigError(f"no {noun} given: pass `{option}=PROVIDER:MODEL[,...]` or `{option}_file={noun}s.toml`")
    parts = split_spec_list(text)
    specs = [named[part] if part in named else parse(part) for part in parts]
    if not specs:
        raise JudgeConfigError(f"{redact_urls(text)!r} names no {noun}; give PROVIDER:MODEL[,...]", field=option)
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise JudgeConfigError(
            f"{noun}(s) {duplicates} given twice (an inline {noun} is named PROVIDER:MODEL@HOST[:PORT]; "
            f"to use two endpoints of one host, name them in a `{option}_file=`)",
            field=option,
        )
    return specs


def api_key_for(spec: JudgeSpec) -> str | None:
    """The judge's key from the environment; None where the SDK authenticates by other means (Bedrock's
    AWS credentials, Vertex's Google credentials, an Entra ID token for Azure)."""
    env = spec.key_env()
    key = os.environ.get(env) if env else None
    if key:
        return key
    if spec.provider in ("bedrock", "vertex"):
        return None
    if spec.provider == "azure":
        if os.environ.get(AZURE_TOKEN_ENV):
            return None
        raise JudgeConfigError(
            f"judge {spec.name}: {env} is not set; export the Azure OpenAI resource's key, or a Microsoft Entra ID "
            f"token in {AZURE_TOKEN_ENV} (az account get-access-token --resource https://cognitiveservices.azure.com)"
        )
    if spec.custom_base_url():
        return "not-needed"  # local OpenAI-compatible servers accept any key
    if spec.provider == "gemini":
        raise JudgeConfigError(f"judge {spec.name}: {env} is not set; export a Gemini API key (Google AI Studio)")
    raise JudgeConfigError(
        f"judge {spec.name}: {env} is not set; export it, or point the judge at an "
        "OpenAI-compatible server with openai:MODEL@http://localhost:8000/v1"
    )


# ---------------------------------------------------------------- mock: a stand-in that is not a model

MOCK = "mock"
NOT_A_MODEL = "not a model: a deterministic stand-in for trying trustmh offline; its answers and scores mean nothing"
MOCK_VERSION = 1  # part of a mock call's cache key: raise it when the mock's answers change
MODES_BY_PROVIDER[MOCK] = ("tools",)  # a mock judge builds the typed verdict itself, whatever the mode
MAX_TEMPERATURE[MOCK] = 2.0
_MOCK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def is_mock(spec: JudgeSpec) -> bool:
    return spec.provider == MOCK


def mock_spec(spec_type: type[JudgeSpec], model: str, base_url: str | None, name: str | None, shown: str) -> Any:
    """`mock:NAME`, as a judge or a target: answered in-process, free (see JudgeSpec.prices), no key, no URL."""
    if base_url is not None or not _MOCK_NAME.match(model):
        raise JudgeConfigError(
            f"judge {shown!r}: a mock is `mock:NAME` with NAME of letters, digits, `.`, `_` or `-` "
            "(e.g. mock:a as a target, mock:j as a judge); it takes no @BASE_URL"
        )
    return spec_type(
        name=name or f"{MOCK}:{model}",
        provider=MOCK,  # type: ignore[arg-type]
        model=model,
    )


def not_a_model_names(specs: Iterable[JudgeSpec]) -> list[str]:
    """The names of the mocks among `specs`, for the "not a model" label of every output."""
    return [spec.name for spec in specs if is_mock(spec)]
