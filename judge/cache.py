"""The on-disk verdict store (diskcache) and the key that says when an answer could change.

The key covers exactly what reaches the judge: provider, model and decoding parameters, the rendered
messages (hence rubric and template content), the verdict schema, and the sample index. instructor's own
cache helpers store only the parsed object; we also need the call's usage to account tokens and cost on
a re-run, so the store keeps a small JSON-able record per call.
"""

from __future__ import annotations

import os
import socket
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


CLAIM_PREFIX = "claim:"


def claim_holder() -> str:
    """Who holds a claim: this machine and process (a run's engine claims for all its calls)."""
    return f"{socket.gethostname()}|{os.getpid()}"


def holder_alive(holder: str) -> bool:
    """False only for a holder known to be gone: a process of this machine that no longer exists."""
    host, _, pid = holder.partition("|")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
            self._cache = diskcache.Cache(str(directory), size_limit=2**40, eviction_policy="none")
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
        return (key for key in self._cache if not str(key).startswith(CLAIM_PREFIX))

    # -- claims: runs sharing this cache ask each call once -------------------------------------------

    def claim(self, key: str, holder: str, ttl_s: float) -> bool:
        """Take the right to ask the call with this key; False while another run holds it. Atomic across
        processes (one SQLite transaction); a claim lapses after `ttl_s` (its holder's per-call deadline),
        and one left by a process that died on this machine is taken over at once. A holder's own claim
        is granted again (a call its batch submitted, now replayed by its engine)."""
        claim_key = CLAIM_PREFIX + key
        if self._cache.add(claim_key, holder, expire=ttl_s):
            return True
        current = self._cache.get(claim_key)
        if current == holder:
            return True
        if isinstance(current, str) and not holder_alive(current):
            with self._cache.transact():
                if self._cache.get(claim_key) == current:
                    self._cache.set(claim_key, holder, expire=ttl_s)
                    return True
        return False

    def release(self, key: str, holder: str) -> None:
        claim_key = CLAIM_PREFIX + key
        with self._cache.transact():
            if self._cache.get(claim_key) == holder:
                self._cache.delete(claim_key)

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
