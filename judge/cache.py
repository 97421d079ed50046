"""The on-disk verdict store (diskcache) and the key that says when an answer could change.

The key covers exactly what reaches the judge: provider, model and decoding parameters, the rendered
messages (hence rubric and template content), the verdict schema, and the sample index. instructor's own
cache helpers store only the parsed object; we also need the call's usage to account tokens and cost on
a re-run, so the store keeps a small JSON-able record per call.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import diskcache

from judge.rubric import sha256_of

CACHE_ENV = "TRUSTMH_CACHE_DIR"
KEY_VERSION = 1  # bump when the record layout changes, so old records are not misread


def request_key(decoding_params: dict[str, Any], messages: list[dict[str, str]], schema_hash: str, sample: int) -> str:
    return sha256_of(
        {
            "v": KEY_VERSION,
            "params": decoding_params,
            "messages": messages,
            "schema": schema_hash,
            "sample": sample,
        }
    )


def target_request_key(
    decoding_params: dict[str, Any], messages: list[dict[str, str]], followups: list[str], sample: int
) -> str:
    """A target call's key: the chatbot, its decoding parameters and system prompt, the conversation,
    its scripted follow-up turns and the sample index. Target answers share the store with verdicts."""
    return sha256_of(
        {
            "v": KEY_VERSION,
            "kind": "target",
            "params": decoding_params,
            "messages": messages,
            "followups": followups,
            "sample": sample,
        }
    )


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "trustmh-judge" / "verdicts"


class VerdictCache:
    """Owner-only diskcache of judge call records, keyed by `request_key`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        old_umask = os.umask(0o077)
        try:
            # SQLite's memory map (64 MiB by default) and page cache (32 MiB) would grow with every record read
            # or written, into the resident memory of a large run; the system's file cache serves as well.
            self._cache = diskcache.Cache(
                str(directory),
                size_limit=2**40,
                eviction_policy="none",
                sqlite_mmap_size=0,
                sqlite_cache_size=2**10,
            )
        finally:
            os.umask(old_umask)
        self._restrict_permissions()

    def _restrict_permissions(self) -> None:
        os.chmod(self.directory, stat.S_IRWXU)
        for path in self.directory.rglob("*"):
            os.chmod(path, stat.S_IRWXU if path.is_dir() else stat.S_IRUSR | stat.S_IWUSR)

    def get(self, key: str) -> dict[str, Any] | None:
        record = self._cache.get(key)
        return record if isinstance(record, dict) else None

    def __contains__(self, key: str) -> bool:
        return key in self._cache

    def set(self, key: str, record: dict[str, Any]) -> None:
        self._cache.set(key, record)

    def keys(self) -> Iterator[str]:
        return iter(self._cache)

    def stats(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "entries": len(self._cache),
            "size_bytes": self._cache.volume(),
        }

    def clear(self) -> int:
        return self._cache.clear()

    def close(self) -> None:
        self._cache.close()
        self._restrict_permissions()

    def __enter__(self) -> VerdictCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
