"""The wheel holds the two packages and their bundled data, nothing of the repository besides, and declares
the `trustmh` script: built here without network (hatchling from the dev extra, no build isolation)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator

import pytest

from judge.bundled import _REPOSITORY_PATHS
from tests.package_imports import ROOT

BUNDLED = [
    "judge/_bundled/registry.toml",
    "judge/_bundled/crisis_resources.toml",
    "judge/_bundled/fairness_personas.toml",
]
BUNDLED_FOLDERS = {"rubrics": ROOT / "rubrics", "prompts": ROOT / "prompts", "examples": ROOT / "data" / "examples"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    out = tmp_path_factory.mktemp("wheel")
    pytest.importorskip("hatchling", reason="hatchling (dev extra) builds the wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        check=True, capture_output=True, timeout=240,
    )  # fmt: skip
    (path,) = out.glob("trustmh_judge-*.whl")
    with zipfile.ZipFile(path) as archive:
        yield archive


def test_only_the_two_packages_and_the_dist_info_are_at_the_top(wheel: zipfile.ZipFile) -> None:
    tops = {name.split("/")[0] for name in wheel.namelist()}
    dist_info = [t for t in tops if t.endswith(".dist-info")]
    assert len(dist_info) == 1 and tops - set(dist_info) == {"judge", "calibration"}, sorted(tops)


def test_every_file_of_the_packages_is_inside(wheel: zipfile.ZipFile) -> None:
    """Modules and package data (the report's template, stylesheet and script)."""
    files = {
        str(p.relative_to(ROOT))
        for package in ("judge", "calibration")
        for p in (ROOT / package).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert any(f.endswith(".j2") for f in files)
    assert files <= set(wheel.namelist()), sorted(files - set(wheel.namelist()))


def test_the_bundled_data_is_inside(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert set(BUNDLED) <= names
    for folder, source in BUNDLED_FOLDERS.items():
        expected = {f"judge/_bundled/{folder}/{p.relative_to(source)}" for p in source.rglob("*") if p.is_file()}
        assert expected and expected <= names, (folder, sorted(expected - names))


def test_the_trustmh_script_is_declared(wheel: zipfile.ZipFile) -> None:
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "[console_scripts]" in text and "trustmh = judge.cli.__main__:run" in text


def test_the_wheel_bundles_what_bundled_path_reads_from_a_checkout() -> None:
    """pyproject's force-include and judge.bundled name the same resources and source paths."""
    build = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["hatch"]["build"]
    included = {target: source for source, target in build["targets"]["wheel"]["force-include"].items()}
    assert included == {f"judge/_bundled/{name}": source for name, source in _REPOSITORY_PATHS.items()}
