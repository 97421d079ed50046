"""docs/providers.md: every provider has an example judges file, and every example there parses as the
judges or targets file it shows, with every setting checked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from judge.judges import MODES_BY_PROVIDER, load_judges_file, parse_judge_spec
from judge.respond.targets import load_targets_file

PAGE = Path(__file__).resolve().parents[1] / "docs" / "providers.md"
TOML_BLOCK = re.compile(r"```toml\n(.*?)```", re.S)
INLINE_SPEC = re.compile(r"`((?:" + "|".join(MODES_BY_PROVIDER) + r"):[^`\s]+)`")


def examples() -> list[str]:
    return TOML_BLOCK.findall(PAGE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("block", examples())
def test_every_example_parses(block: str, tmp_path: Path) -> None:
    path = tmp_path / "example.toml"
    path.write_text(block, encoding="utf-8")
    specs = load_targets_file(path) if block.lstrip().startswith("[targets.") else load_judges_file(path).judges
    assert specs


def test_every_provider_has_an_example_judges_file(tmp_path: Path) -> None:
    shown: set[str] = set()
    for block in examples():
        if block.lstrip().startswith("[judges."):
            path = tmp_path / "judges.toml"
            path.write_text(block, encoding="utf-8")
            shown |= {spec.provider for spec in load_judges_file(path).judges.values()}
    assert shown == set(MODES_BY_PROVIDER)


def test_every_inline_spec_on_the_page_parses() -> None:
    specs = {match for match in INLINE_SPEC.findall(PAGE.read_text(encoding="utf-8")) if "RESOURCE" not in match}
    assert {spec.split(":")[0] for spec in specs} == set(MODES_BY_PROVIDER)
    for text in specs:
        parse_judge_spec(text.replace("MODEL", "m").replace("DEPLOYMENT", "d"))
