"""Registered public datasets: where each file comes from and how to get a verified local copy.

``data/registry.toml`` pins every dataset to a repository commit and lists each file used with its
sha256. A file is read from ``$TRUSTMH_DATA_MIRROR/<dataset>/<path>`` when that variable is set,
otherwise downloaded once from the pinned commit into a per-user cache. Either way the bytes are
checked against the registry, so a stale mirror or a moved upstream file fails loudly.

Its ``[published.NAME]`` tables name data the benchmark uses that is not in the mirror: where it is
published (the page the benchmark's authors link), and, where the exact file and its sha256 are known,
the URL ``trustmh data fetch NAME`` downloads. ``fetch`` puts every file where ``dataset_file`` looks.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from judge.bundled import bundled_path
from judge.errors import DatasetError
from judge.rundir import make_private_dirs

REGISTRY_PATH = bundled_path("registry.toml")
MIRROR_ENV = "TRUSTMH_DATA_MIRROR"
CACHE_ENV = "TRUSTMH_DATA_CACHE"
DOWNLOAD_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Dataset:
    name: str
    repository: str
    commit: str
    licence: str
    citation: str
    files: dict[str, str]  # upstream relative path -> sha256
    files_url: str | None = None  # where the files are downloaded from (the path is appended); None: GitHub raw

    def raw_url(self, path: str) -> str:
        base = self.files_url or f"https://raw.githubusercontent.com/{self.repository}/{self.commit}/"
        return base.rstrip("/") + "/" + path


@dataclass(frozen=True)
class Published:
    """Data the benchmark uses that is not in the mirror: where it is published and, when known exactly,
    the file to download and its sha256 (either may be None: then `trustmh data fetch` refuses and says
    where to get it by hand)."""

    name: str
    title: str
    page: str  # the record or page the benchmark's authors link
    named_by: str  # who names that page (e.g. the authors' README)
    suites: tuple[str, ...]  # the suites that would read it
    url: str | None = None
    sha256: str | None = None
    file: str | None = None  # where it goes under <data dir>/<name>/ (default: the URL's last part)
    git_blob: str | None = None  # its git blob id in the authors' tree, when it is a file of that tree
    note: str = ""

    @property
    def local_name(self) -> str | None:
        if self.file:
            return self.file
        return unquote(PurePosixPath(urlsplit(self.url).path).name) if self.url else None

    @property
    def where(self) -> str:
        """One line for `suites list` and the refusals: where it is published, and that it is not here."""
        return f"{self.title} is published at {self.page} ({self.named_by}); not in the dataset mirror"


def _read_registry(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the dataset registry: {exc}") from exc


@cache
def load_registry(path: Path = REGISTRY_PATH) -> dict[str, Dataset]:
    """Parse the registry; a missing or malformed registry is a DatasetError naming the file."""
    raw = _read_registry(path)
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
                files_url=entry.get("files_url"),
            )
        except KeyError as exc:
            raise DatasetError(f"{path}: dataset {name!r} lacks field {exc.args[0]!r}") from exc
    return datasets


_PUBLISHED_FIELDS = ("title", "page", "named_by", "suites", "url", "sha256", "file", "git_blob", "note")


@cache
def load_published(path: Path = REGISTRY_PATH) -> dict[str, Published]:
    """The registry's `[published.NAME]` tables; an unknown or missing field names the file and the table."""
    raw = _read_registry(path)
    published: dict[str, Published] = {}
    for name, entry in raw.get("published", {}).items():
        where = f"{path}: [published.{name}]"
        unknown = sorted(set(entry) - set(_PUBLISHED_FIELDS))
        if unknown:
            raise DatasetError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(_PUBLISHED_FIELDS)}")
        missing = [k for k in ("title", "page", "named_by", "suites") if k not in entry]
        if missing:
            raise DatasetError(f"{where}: lacks field(s) {', '.join(missing)}")
        sha = entry.get("sha256")
        if sha is not None and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
            raise DatasetError(f"{where}: sha256 {sha!r} is not 64 lower-case hex digits")
        published[name] = Published(name=name, title=entry["title"], page=entry["page"], named_by=entry["named_by"],
                                    suites=tuple(entry["suites"]), url=entry.get("url"), sha256=sha,
                                    file=entry.get("file"), git_blob=entry.get("git_blob"),
                                    note=entry.get("note", ""))
    return published


def published_for(suite_id: str, path: Path = REGISTRY_PATH) -> tuple[Published, ...]:
    """The published data a suite would read, in registry order (none: its data is in the mirror)."""
    return tuple(p for p in load_published(path).values() if suite_id in p.suites)


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


def data_dir() -> Path:
    """Where the data is read from: the mirror when ``$TRUSTMH_DATA_MIRROR`` is set, else the download cache."""
    mirror = os.environ.get(MIRROR_ENV)
    return Path(mirror) if mirror else cache_dir()


def local_path(name: str, path: str, commit: str | None) -> Path:
    """Where `dataset_file` looks for one file: ``$TRUSTMH_DATA_MIRROR/<name>/<path>``, or in the cache
    ``<cache>/<name>/<commit>/<path>`` (a published file, which has no commit: ``<cache>/<name>/<path>``)."""
    if os.environ.get(MIRROR_ENV) or commit is None:
        return data_dir() / name / path
    return cache_dir() / name / commit / path


def _httpx_fetch(url: str, destination: Path) -> None:
    """Stream `url` into `destination` (memory does not grow with the file); an HTTP error status raises."""
    import httpx  # only a download needs it

    with httpx.stream("GET", url, timeout=DOWNLOAD_TIMEOUT_S, follow_redirects=True) as response:
        response.raise_for_status()
        with destination.open("wb") as handle:
            for block in response.iter_bytes(1 << 20):
                handle.write(block)


Fetch = Callable[[str, Path], None]


def _download_errors() -> tuple[type[BaseException], ...]:
    import httpx

    return (OSError, httpx.HTTPError)


def _download_verified(url: str, expected: str, local: Path, fetch: Fetch, hint: str) -> Path:
    """Download `url` to a temporary owner-only file beside `local`, check its sha256, then rename it to
    `local`: a failed or mismatching download leaves nothing behind (and an older `local` untouched)."""
    make_private_dirs(local.parent)
    descriptor, temporary = tempfile.mkstemp(dir=local.parent, prefix=f".{local.name}.", suffix=".part")
    os.close(descriptor)  # mkstemp's file is already 0600
    partial = Path(temporary)
    try:
        try:
            fetch(url, partial)
        except _download_errors() as exc:
            raise DatasetError(f"cannot download {url}: {_describe(exc)}. {hint}") from exc
        stat = partial.stat()
        actual = _sha256(partial, stat.st_size, stat.st_mtime_ns)
        if actual != expected:
            raise DatasetError(
                f"{url}: the download's sha256 {actual} does not match the registry's {expected} for {local}; "
                "it was removed and nothing was written. The file at that address is not the registered "
                "version (or the registry is wrong): do not use it"
            )
        os.chmod(partial, 0o600)
        partial.replace(local)
    finally:
        partial.unlink(missing_ok=True)
    return local


def _describe(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "status_code", None):
        return f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
    return str(exc) or type(exc).__name__


def dataset_file(name: str, path: str, fetch: Fetch = _httpx_fetch) -> Path:
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
    local = local_path(name, path, dataset.commit)
    if local.is_file():
        return _verify(local, expected, "cached")
    return _download_verified(dataset.raw_url(path), expected, local, fetch, _offline_hint(dataset, path))


def _offline_hint(dataset: Dataset, path: str) -> str:
    return (f"Without network access, set {MIRROR_ENV} to a folder holding {dataset.name}/{path} "
            f"(the upstream layout of {dataset.repository}@{dataset.commit[:12]})")


# ---------------------------------------------------------------- trustmh data fetch


class NotDownloadable(DatasetError):
    """Registered data without an exact file URL or sha256: it can only be fetched by hand."""


@dataclass(frozen=True)
class Fetched:
    """One file `fetch` made available: where it is, and whether it was downloaded or already there."""

    name: str
    path: Path
    status: Literal["downloaded", "present"]


def fetch_data(name: str, registry: Path = REGISTRY_PATH, download: Fetch = _httpx_fetch) -> list[Fetched]:
    """Download registered data `name` (every file of a dataset, or a published file) to where the suites read
    it (`local_path`), each file sha256-checked before it is renamed into place; a file already there that
    matches is kept. Published data without a URL or a sha256 raises `NotDownloadable`, saying where it is."""
    datasets, published = load_registry(registry), load_published(registry)
    if name in datasets:
        dataset = datasets[name]
        return [_fetch_one(name, path, sha, dataset.commit, dataset.raw_url(path), download,
                           _offline_hint(dataset, path)) for path, sha in dataset.files.items()]
    if name not in published:
        known = ", ".join(sorted({*datasets, *published}))
        raise DatasetError(f"unknown dataset {name!r} in {registry}; registered: {known}")
    entry = published[name]
    lacking = [f for f, v in (("url", entry.url), ("sha256", entry.sha256)) if not v]
    if lacking:
        blob = (f" Its git blob id in the authors' tree is {entry.git_blob}: `git hash-object FILE` on a copy "
                "must print it." if entry.git_blob else "")
        raise NotDownloadable(
            f"{name}: {registry} has no {' and no '.join(lacking)} for it, so it cannot be downloaded and "
            f"checked here. {entry.where}.{blob} Fetch it by hand, put it in a folder DIR/{name}/ and set "
            f"{MIRROR_ENV}=DIR"
            + (f"; {entry.note}" if entry.note else "")
        )
    assert entry.url is not None and entry.sha256 is not None and entry.local_name
    return [_fetch_one(name, entry.local_name, entry.sha256, None, entry.url, download,
                       f"{entry.where}; fetch it by hand into {data_dir() / name}")]


def _fetch_one(name: str, path: str, expected: str, commit: str | None, url: str, download: Fetch,
               hint: str) -> Fetched:
    local = local_path(name, path, commit)
    if local.is_file():
        try:
            _verify(local, expected, "present")
            return Fetched(name, local, "present")
        except DatasetError:
            pass  # replaced below, only by a download that matches
    return Fetched(name, _download_verified(url, expected, local, download, hint), "downloaded")
