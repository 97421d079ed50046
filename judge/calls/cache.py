"""The on-disk verdict store (diskcache) and the key that says when an answer could change.

The key covers exactly what reaches the judge: provider, model and decoding parameters, the rendered
messages (hence rubric and template content), the verdict schema, and the sample index. instructor's own
cache helpers store only the parsed object; we also need the call's usage to account tokens and cost on
a re-run, so the store keeps a small JSON-able record per call.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import diskcache

from judge.errors import UsageError
from judge.hashing import sha256_of

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


class CacheError(UsageError):
    """The cache folder cannot be used; the message names the path and what to do (exit 2 at the CLI)."""


DB_NAME = "cache.db"
_DB_FILES = (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm")
_VALUE_DIR = re.compile(r"^[0-9a-f]{2}$")  # diskcache keeps large values in DIR/ab/cd/<name>.val


def _damaged(exc: BaseException | None) -> bool:
    """sqlite's verdict that cache.db is not (or no longer) a database, as opposed to a locked or full one."""
    codes = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
    return isinstance(exc, sqlite3.DatabaseError) and getattr(exc, "sqlite_errorcode", None) in codes


def _full(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno == errno.ENOSPC
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


def _unusable(directory: Path, exc: BaseException) -> CacheError:
    """The message for a cache that failed: corrupt database, a file in the way, a full disk."""
    if _damaged(exc):
        return CacheError(
            f"{directory / DB_NAME}: the cache database is damaged ({exc}); empty it with `trustmh cache clear` "
            "(judge.calls.cache.clear_cache; cached answers are lost and asked again), or use another cache folder",
            field="cache_dir",
        )
    if _full(exc):
        return CacheError(
            f"{directory}: no space left for the cache ({exc}); free space or use another cache folder, then run "
            "the same command again (answers already received are in OUT/verdicts.jsonl and are not asked again)",
            field="cache_dir",
        )
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return CacheError(
        f"{directory}: cannot use the cache folder ({reason}); name a folder you can write, or run without a cache",
        field="cache_dir",
    )


class AnswerCache:
    """Owner-only diskcache of answered calls, judges' verdicts and targets' answers alike, keyed by their
    request key (`request_key`, `judge.respond.plan.target_request_key`).

    Every failure of the store (a damaged database, a file where the folder should be, a full disk) is
    raised as CacheError naming the folder, never as a bare sqlite or OS error.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        if directory.exists() and not directory.is_dir():
            raise CacheError(
                f"{directory}: is a file, not a cache folder; name a folder (or run without a cache)",
                field="cache_dir",
            )
        old_umask = os.umask(0o077)
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            # SQLite's memory map (64 MiB by default) and page cache (32 MiB) would grow with every record read
            # or written, into the resident memory of a large run; the system's file cache serves as well.
            self._cache = diskcache.Cache(
                str(directory),
                size_limit=2**40,
                eviction_policy="none",
                sqlite_mmap_size=0,
                sqlite_cache_size=2**10,
            )
        except (sqlite3.Error, OSError) as exc:
            raise _unusable(directory, exc) from exc
        finally:
            os.umask(old_umask)
        self._restrict_permissions()

    def _restrict_permissions(self) -> None:
        os.chmod(self.directory, stat.S_IRWXU)
        for path in self.directory.rglob("*"):
            os.chmod(path, stat.S_IRWXU if path.is_dir() else stat.S_IRUSR | stat.S_IWUSR)

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            record = self._cache.get(key)
        except (sqlite3.Error, OSError) as exc:
            raise _unusable(self.directory, exc) from exc
        return record if isinstance(record, dict) else None

    def __contains__(self, key: str) -> bool:
        try:
            return key in self._cache
        except (sqlite3.Error, OSError) as exc:
            raise _unusable(self.directory, exc) from exc

    def set(self, key: str, record: dict[str, Any]) -> None:
        try:
            self._cache.set(key, record)
        except (sqlite3.Error, OSError) as exc:
            raise _unusable(self.directory, exc) from exc

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

    def clear(self) -> int:
        try:
            return self._cache.clear()
        except (sqlite3.Error, OSError) as exc:
            raise _unusable(self.directory, exc) from exc

    def close(self) -> None:
        self._cache.close()
        self._restrict_permissions()

    def __enter__(self) -> AnswerCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_stats(directory: Path) -> dict[str, Any]:
    """Entries and bytes on disk of a cache folder, opened read-only: a missing cache is reported, not created."""
    database = directory / DB_NAME
    if directory.exists() and not directory.is_dir():
        raise CacheError(f"{directory}: is a file, not a cache folder; name a folder", field="cache_dir")
    if not database.is_file():
        return {"directory": str(directory), "exists": False, "entries": 0, "size_bytes": 0}
    try:
        connection = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
        try:
            (entries,) = connection.execute("SELECT COUNT(*) FROM Cache").fetchone()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise _unusable(directory, exc) from exc
    size = sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())
    return {"directory": str(directory), "exists": True, "entries": int(entries), "size_bytes": size}


def clear_cache(directory: Path) -> tuple[int | None, bool]:
    """Empty the cache folder: (entries removed or None when unknown, whether it was damaged).

    A damaged database cannot be emptied entry by entry, so its files (and only diskcache's own files)
    are deleted; the next run creates a fresh cache. A folder that does not exist is left uncreated.
    """
    if not directory.exists():
        return 0, False
    try:
        with AnswerCache(directory) as store:
            return store.clear(), False
    except CacheError as exc:
        if not _damaged(exc.__cause__):
            raise
    for name in _DB_FILES:
        (directory / name).unlink(missing_ok=True)
    for sub in directory.iterdir():
        if sub.is_dir() and _VALUE_DIR.match(sub.name):
            shutil.rmtree(sub)
    return None, True
