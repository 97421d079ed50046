"""Targets that are not an OpenAI- or Anthropic-style API: a chatbot behind its own HTTP API (`http:URL`)
and a Python callable (`python:pkg.module:function`). Specs and their checks only (pure, no I/O);
`judge.respond.custom_workers` sends their calls, through the same engine as every target.

An `http:` target is best declared in a targets file, since its request and reply rarely have the
default shape:

    [targets.mybot]
    spec = "http:https://bot.example.org/v1/chat"
    headers = { Authorization = "MYBOT_AUTH" }        # header name -> the variable that holds its value
    request = { session = "trustmh", messages = "{{messages}}" }   # default: { messages = "{{messages}}" }
    reply = "choices[0].message.content"               # default: "reply"

In `request`, a string that is exactly `{{messages}}` becomes the conversation (a list of {role, content},
the target's system prompt first when it has one), `{{prompt}}` the last user message's text and
`{{system}}` the system prompt (null without one). `reply` is a path into the JSON answer: keys joined by
dots, each followed by any number of `[INDEX]` (negative from the end), optionally after `$.`.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from judge.judges import SETTING_RULES, JudgeConfigError, SettingRule, check_settings, public_url

HTTP, PYTHON = "http", "python"
CUSTOM_KINDS = (HTTP, PYTHON)
MESSAGES, PROMPT, SYSTEM = "{{messages}}", "{{prompt}}", "{{system}}"
PLACEHOLDERS = (MESSAGES, PROMPT, SYSTEM)
DEFAULT_REQUEST: dict[str, Any] = {"messages": MESSAGES}
DEFAULT_REPLY = "reply"

# What a custom target's table may set: how calls are sent (they have no model, temperature or token
# budget of ours: those belong in the request template, or in the function) plus each kind's own fields.
_SHARED = ("concurrency", "requests_per_minute", "max_attempts", "backoff_initial_s", "backoff_max_s",
           "timeout_s", "deadline_s", "system_prompt", "version")  # fmt: skip
_KIND_FIELDS = {HTTP: ("headers", "request", "reply"), PYTHON: ()}
_RULES = {
    **SETTING_RULES,
    "system_prompt": SettingRule((str,)),
    "version": SettingRule((str,)),
    "headers": SettingRule((dict,)),
    "request": SettingRule((dict, str)),
    "reply": SettingRule((str,)),
}
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_FUNCTION = re.compile(rf"^({_IDENTIFIER}(?:\.{_IDENTIFIER})*):({_IDENTIFIER})$")
_HEADER = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP field name (a token)
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# ---------------------------------------------------------------- the reply path


PathStep = str | int
_SEGMENT = re.compile(r"^([^.\[\]]+)((?:\[-?\d+\])*)$")


def parse_reply_path(path: str) -> tuple[PathStep, ...]:
    """`choices[0].message.content` → ("choices", 0, "message", "content"); a ValueError says what is wrong."""
    text = path.strip().removeprefix("$").removeprefix(".")
    if not text:
        raise ValueError("is empty; give the keys to the reply's text, e.g. reply or choices[0].message.content")
    steps: list[PathStep] = []
    for segment in text.split("."):
        match = _SEGMENT.match(segment)
        if not match:
            raise ValueError(
                f"segment {segment!r} is not KEY or KEY[INDEX]...; write keys joined by dots, each with "
                "any [INDEX] after it (e.g. choices[0].message.content)"
            )
        steps.append(match[1])
        steps += [int(index) for index in re.findall(r"\[(-?\d+)\]", match[2])]
    return tuple(steps)


def follow_reply_path(answer: Any, steps: tuple[PathStep, ...]) -> Any:
    """The value at `steps` in a parsed JSON answer; a LookupError names the first step that is missing."""
    value, seen = answer, ""
    for step in steps:
        where = seen or "the answer"
        if isinstance(step, int):
            if not isinstance(value, list):
                raise LookupError(f"{where} is not a list, so it has no [{step}]")
            if not -len(value) <= step < len(value):
                raise LookupError(f"{where} has {len(value)} element(s), so no [{step}]")
            value, seen = value[step], f"{seen}[{step}]"
        else:
            if not isinstance(value, dict):
                raise LookupError(f"{where} is not an object, so it has no key {step!r}")
            if step not in value:
                keys = ", ".join(map(repr, list(value)[:10])) or "none"
                raise LookupError(f"{where} has no key {step!r} (its keys: {keys})")
            value, seen = value[step], f"{seen}.{step}" if seen else step
    return value


# ---------------------------------------------------------------- the request template


def _placeholders_in(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value} & set(PLACEHOLDERS)
    if isinstance(value, dict):
        return set().union(*map(_placeholders_in, value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*map(_placeholders_in, value)) if value else set()
    return set()


def fill_template(template: Any, conversation: list[dict[str, str]], system_prompt: str | None) -> Any:
    """The request body: the template with each placeholder string replaced by what it stands for."""
    if isinstance(template, str):
        if template == MESSAGES:
            system = [{"role": "system", "content": system_prompt}] if system_prompt else []
            return system + [dict(m) for m in conversation]
        if template == PROMPT:
            return next((m["content"] for m in reversed(conversation) if m["role"] == "user"), "")
        if template == SYSTEM:
            return system_prompt
        return template
    if isinstance(template, dict):
        return {key: fill_template(value, conversation, system_prompt) for key, value in template.items()}
    if isinstance(template, list):
        return [fill_template(value, conversation, system_prompt) for value in template]
    return template


def check_request_template(value: Any, where: str) -> str:
    """The template as canonical JSON text (a spec stays hashable); it must carry the conversation."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise JudgeConfigError(f"{where}: request is not valid JSON ({exc}); write it as a TOML table") from None
    if not isinstance(value, dict):
        raise JudgeConfigError(f"{where}: request must be a JSON object (a TOML table), got {value!r}")
    if not _placeholders_in(value) & {MESSAGES, PROMPT}:
        raise JudgeConfigError(
            f'{where}: request never sends the conversation; put "{MESSAGES}" (the messages) or "{PROMPT}" '
            "(the last user message) where your API expects it"
        )
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


# ---------------------------------------------------------------- the specs' fields


def custom_kind(text: str) -> str | None:
    """`http` or `python` for a spec of those kinds, else None."""
    kind = text.strip().partition(":")[0]
    return kind if kind in CUSTOM_KINDS else None


def custom_target_fields(text: str, name: str | None, settings: dict[str, Any], where: str | None) -> dict[str, Any]:
    """The checked fields of an `http:URL` or `python:pkg.module:function` target (its spec string and the
    settings of its targets-file table); a JudgeConfigError says where and what to change."""
    text = text.strip()
    kind, _, rest = text.partition(":")
    shown = public_url(rest) if kind == HTTP else rest
    where = where or f"target {text if kind == PYTHON else kind + ':' + shown!r}"
    settings = dict(settings)
    check_settings(settings, where, "openai", (*_SHARED, *_KIND_FIELDS[kind]), _RULES)  # no mode or temperature
    fields = {k: settings[k] for k in _SHARED if k in settings}
    if kind == PYTHON:
        if not _FUNCTION.match(rest):
            raise JudgeConfigError(
                f"{where}: expected python:MODULE:FUNCTION, e.g. python:mybot.chat:reply (the module importable "
                "from the current folder or installed; the function takes the conversation and returns the reply)"
            )
        return {"name": name or text, "provider": PYTHON, "model": rest, "function": rest, **fields}
    parts = urlsplit(rest)
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        raise JudgeConfigError(f"{where}: URL {shown!r} is not valid ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise JudgeConfigError(
            f"{where}: expected http:URL with a URL that starts with http:// or https:// and names a host, "
            "e.g. http:https://bot.example.org/v1/chat"
        )
    headers = settings.get("headers", {})
    for header, variable in headers.items():
        if not _HEADER.match(header) or not isinstance(variable, str) or not _ENV_VAR.match(variable):
            raise JudgeConfigError(
                f"{where}: headers.{header} must map an HTTP header name to the NAME of the environment "
                f'variable that holds its value (e.g. Authorization = "MYBOT_AUTH"), got {variable!r}'
            )
    reply = settings.get("reply", DEFAULT_REPLY)
    try:
        parse_reply_path(reply)
    except ValueError as exc:
        raise JudgeConfigError(f"{where}: reply {reply!r} {exc}") from None
    return {
        "name": name or f"{HTTP}:{shown}",
        "provider": HTTP,
        "model": shown,
        "url": rest,
        "headers": tuple(sorted(headers.items())),
        "request": check_request_template(settings.get("request", DEFAULT_REQUEST), where),
        "reply": reply,
        **fields,
    }
