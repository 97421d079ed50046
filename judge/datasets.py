"""Registered public datasets: where each file comes from and how to get a verified local copy.

``data/registry.toml`` pins every dataset to a repository commit and lists each file used with its
sha256. A file is read from ``$TRUSTMH_DATA_MIRROR/<dataset>/<path>`` when that variable is set,
otherwise downloaded once from the pinned commit into a per-user cache. Either way the bytes are
checked against the registry, so a stale mirror or a moved upstream file fails loudly.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from judge.bundled import bundled_path
from judge.errors import DatasetError

REGISTRY_PATH = bundled_path("registry.toml")
MIRROR_ENV = "TRUSTMH_DATA_MIRROR"
CACHE_ENV = "TRUSTMH_DATA_CACHE"


@dataclass(frozen=True)
class Dataset:
    name: str
    repository: str
    commit: str
    licence: str
    citation: str
    files: dict[str, str]  # upstream relative path -> sha256

    def raw_url(self, path: str) -> str:
        return f"https://raw.githubusercontent.com/{self.repository}/{self.commit}/{path}"


@cache
def load_registry(path: Path = REGISTRY_PATH) -> dict[str, Dataset]:
    """Parse the registry; a missing or malformed registry is a DatasetError naming the file."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the dataset registry: {exc}") from exc
    datasets: dict[str, Dataset] = {}
    for name, entry in raw.get("datasets", {}).items():
        try:
            datasets[name] = Dataset(
                name=name,
                repository=entry["repository"],
                commit=entry["commit"],
                licence=entry["licence"],
                citation=entry["citation"],
                files=dict(entry["files"]),
            )
        except KeyError as exc:
            raise DatasetError(f"{path}: dataset {name!r} lacks field {exc.args[0]!r}") from exc
    return datasets


def get_dataset(name: str) -> Dataset:
    registry = load_registry()
    if name not in registry:
        raise DatasetError(f"unknown dataset {name!r}; registered: {', '.join(sorted(registry))}")
    return registry[name]


@cache
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    """Hash once per file version (size and mtime are part of the cache key)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, expected: str, origin: str) -> Path:
    stat = path.stat()
    actual = _sha256(path, stat.st_size, stat.st_mtime_ns)
    if actual != expected:
        raise DatasetError(
            f"{path}: sha256 {actual} does not match the registry ({expected}) for this {origin} file; "
            f"the copy is not the pinned version — refresh it or point {MIRROR_ENV} at a correct mirror"
        )
    return path


def cache_dir() -> Path:
    """Per-user download cache (``$TRUSTMH_DATA_CACHE`` or the XDG cache directory)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "trustmh" / "datasets"


def _urlopen_fetch(url: str, destination: Path) -> None:
    with urllib.request.urlopen(url, timeout=60) as response:
        destination.write_bytes(response.read())


Fetch = Callable[[str, Path], None]


def dataset_file(name: str, path: str, fetch: Fetch = _urlopen_fetch) -> Path:
    """Local, checksum-verified path of one registered file of dataset ``name``."""
    dataset = get_dataset(name)
    if path not in dataset.files:
        raise DatasetError(f"{path!r} is not registered for dataset {name!r} in {REGISTRY_PATH}")
    expected = dataset.files[path]
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        local = Path(mirror) / name / path
        if not local.is_file():
            raise DatasetError(
                f"{local}: not found; {MIRROR_ENV}={mirror} must hold <dataset>/<upstream path> "
                f"as in the source repository {dataset.repository}@{dataset.commit[:12]}"
            )
        return _verify(local, expected, "mirror")
    local = cache_dir() / name / dataset.commit / path
    if local.is_file():
        return _verify(local, expected, "cached")
    url = dataset.raw_url(path)
    local.parent.mkdir(parents=True, exist_ok=True)
    partial = local.with_name(local.name + ".part")
    try:
        fetch(url, partial)
    except (OSError, urllib.error.URLError) as exc:
        partial.unlink(missing_ok=True)
        raise DatasetError(
            f"cannot download {url}: {exc}. Without network access, set {MIRROR_ENV} to a folder holding "
            f"{name}/{path} (the upstream layout of {dataset.repository}@{dataset.commit[:12]})"
        ) from exc
    try:
        _verify(partial, expected, "downloaded")
    except DatasetError:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(local)
    return local
