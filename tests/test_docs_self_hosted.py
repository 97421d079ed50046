"""docs/self-hosted.md: its examples parse as the judges files and specs they show, and what it says about
the cache key and the comma rule holds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from judge.judges import JudgeConfigError, load_judges_file, parse_judge_spec, split_spec_list
from judge.respond.targets import load_targets_file

PAGE = Path(__file__).resolve().parents[1] / "docs" / "self-hosted.md"
TEXT = PAGE.read_text(encoding="utf-8")
TOML_BLOCK = re.compile(r"```toml\n(.*?)```", re.S)


def test_the_example_judges_file_parses_with_its_replicas(tmp_path: Path) -> None:
    (block,) = TOML_BLOCK.findall(TEXT)
    path = tmp_path / "judges.toml"
    path.write_text(block, encoding="utf-8")
    judges = load_judges_file(path).judges
    assert (len(judges["qwen"].base_urls), judges["qwen"].concurrency) == (3, 20)
    assert judges["qwen"].replica_cooldown_s == 10
    assert (len(judges["qwen-even"].base_urls), judges["qwen-even"].concurrency) == (2, 16)
    targets = tmp_path / "targets.toml"  # the same tables as a targets file
    targets.write_text(block.replace("[judges.", "[targets."), encoding="utf-8")
    assert load_targets_file(targets)["qwen"].replica_concurrency == (8, 8, 4)


def test_the_inline_examples_parse_as_the_page_says() -> None:
    command = re.search(r"--judges (\S+)", TEXT)
    assert command is not None
    spec = parse_judge_spec(command[1])
    assert spec.name == "openai:qwen-judge@gpu1:8000+gpu2:8000" and f"`{spec.name}`" in TEXT
    assert split_spec_list("openai:q@http://a/v1,http://b/v1,anthropic:claude-sonnet-4-5") == [
        "openai:q@http://a/v1,http://b/v1",
        "anthropic:claude-sonnet-4-5",
    ]
    assert "`openai:q@http://a/v1,http://b/v1,anthropic:claude-sonnet-4-5`" in TEXT


def test_the_cache_key_holds_the_model_not_the_urls() -> None:
    replicas = parse_judge_spec("openai:qwen-judge@http://gpu1:8000/v1,http://gpu2:8000/v1")
    elsewhere = parse_judge_spec("openai:qwen-judge@http://gpu9:8000/v1")
    assert replicas.decoding_params() == elsewhere.decoding_params()


@pytest.mark.parametrize("provider", ["anthropic:c", "azure:d", "gemini:g", "bedrock:m", "vertex:m"])
def test_only_openai_specs_take_replicas(provider: str) -> None:
    with pytest.raises(JudgeConfigError, match="OpenAI-compatible servers"):
        parse_judge_spec(f"{provider}@https://a.example.com,https://b.example.com")
