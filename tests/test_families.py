"""Model family recognition for the self-preference guard."""

from __future__ import annotations

import pytest

from judge.families import DEFAULT_FAMILIES, FamilyError, families_from_toml, model_family, same_family


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("openai:gpt-4.1-mini", "openai"),
        ("gpt-4o", "openai"),
        ("o3-mini", "openai"),
        ("openai:o4-mini", "openai"),
        ("chatgpt-4o-latest", "openai"),
        ("ft:gpt-4o-mini:acme::abc123", "openai"),
        ("anthropic:claude-sonnet-4-5", "anthropic"),
        ("Claude-3-5-Haiku", "anthropic"),
        ("gemini-2.5-pro", "google"),
        ("google/gemma-3-27b-it", "google"),
        ("meta-llama/Llama-4-Scout", "meta"),
        ("openai:qwen2.5-72b@http://localhost:8000/v1", "qwen"),
        ("Qwen/QwQ-32B", "qwen"),
        ("deepseek-chat", "deepseek"),
        ("deepseek-r1-distill-llama-70b", "deepseek"),
        ("mistralai/Mixtral-8x7B-Instruct", "mistral"),
        ("ministral-8b", "mistral"),
        ("grok-4", "xai"),
        ("my-chatbot-v2", None),
        ("phi-4", None),
        ("", None),
        (None, None),
    ],
)
def test_model_family_defaults(name: str | None, family: str | None) -> None:
    assert model_family(name) == family


def test_o_series_needs_a_boundary() -> None:
    assert model_family("bravo3") is None
    assert model_family("foo1") is None


def test_same_family() -> None:
    assert same_family("openai:gpt-4.1-mini", "gpt-4o")
    assert same_family("anthropic:claude-sonnet-4-5", "claude-3-opus")
    assert not same_family("openai:gpt-4.1-mini", "claude-3-opus")
    # served through an OpenAI-compatible endpoint, still a Llama
    assert not same_family("openai:llama-3.3-70b@http://localhost:8000/v1", "gpt-4o")
    assert not same_family("openai:gpt-4.1", None)
    assert not same_family("my-judge", "my-bot")  # unknown is never "same"


def test_user_mapping_extends_and_overrides() -> None:
    families = families_from_toml({"acme": ["acmebot"], "deepseek": ["llama"], "xai": []})
    assert model_family("acmebot-2", families) == "acme"
    assert model_family("meta-llama/Llama-4-Scout", families) == "deepseek"
    assert model_family("grok-4", families) is None
    assert model_family("gpt-4o", families) == "openai"
    assert "llama" not in families.get("meta", ())
    assert DEFAULT_FAMILIES["meta"] == ("llama",)  # defaults untouched


def test_user_mapping_errors_name_the_entry() -> None:
    with pytest.raises(FamilyError, match=r"\[families\] acme: expected a list"):
        families_from_toml({"acme": "acmebot"})
    with pytest.raises(FamilyError, match="given to both"):
        families_from_toml({"a": ["bot"], "b": ["BOT"]})
