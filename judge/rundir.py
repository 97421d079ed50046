"""Run folders on disk: private folders, atomic writes, the out-directory lock, and JSON Lines read and
written one way for every run file (the journal, items, panel, review, scorecard, calibration, audit).

Files are replaced atomically (a crash leaves the old file or the new one, never half of each) and are
readable by their owner only: they hold people's mental-health conversations.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from judge.errors import RunDirError, UsageError

LOCK_NAME = ".lock"
MAX_PROBLEMS = 50  # problems listed at once; the rest are counted

# Built once: json.dumps with options builds a new encoder for every row, a tenth of a row's cost.
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode


def json_line(row: Mapping[str, Any]) -> str:
    """The row and its newline; NaN and Infinity, which JSON cannot hold, raise ValueError."""
    return _encode(row) + "\n"


def raise_problems(problems: list[str]) -> None:
    if problems:
        more = len(problems) - MAX_PROBLEMS
        shown = problems[:MAX_PROBLEMS] + ([f"… and {more} more problem(s)"] if more > 0 else [])
        raise RunDirError("\n".join(shown))


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; every bad line is reported at once."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RunDirError(f"{path}: not found; is this the --out folder of a finished `trustmh score` run?") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path}: cannot read ({exc})") from exc
    rows, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(
                f"{path}:{number}: not valid JSON ({exc.msg}); a truncated line from an interrupted "
                "run is completed by running the same command again"
            )
            continue
        if not isinstance(row, dict):
            problems.append(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            continue
        rows.append((number, row))
    raise_problems(problems)
    return rows


def write_atomic(path: Path, write: Callable[[TextIO], None], encoding: str = "utf-8") -> None:
    """Write a temporary file in the same folder, then os.replace it over `path`.

    The file is owner-only (0600) and folders it creates are 0700: outputs hold mental-health
    conversations, so they get the same protection as the cache, whatever the umask.
    """
    make_private_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)  # O_CREAT's mode does not apply to a leftover temporary file
        with open(descriptor, "w", encoding=encoding, newline="") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def make_private_dirs(folder: Path) -> None:
    """Create `folder` and its missing parents as 0700; folders that exist are left as they are."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)  # mkdir's mode is reduced by the umask


def write_jsonl_atomic(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """One JSON object per line, replacing `path` atomically; NaN / Infinity (not JSON) raise, never get written."""
    write_text_atomic(path, map(json_line, rows))


def write_text_atomic(path: Path, chunks: Iterable[str]) -> None:
    """Text already serialised (e.g. JSONL lines), replacing `path` atomically."""
    write_atomic(path, lambda f: f.writelines(chunks))


def make_private_dir(path: Path) -> None:
    """An out directory readable by its owner only (its files hold people's conversations)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


class OutDirLock:
    """An exclusive lock on an out directory; a second run on it stops at once, naming the holder."""

    def __init__(self, out: Path) -> None:
        self.path = out / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> OutDirLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 400).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise UsageError(
                f"{self.path.parent}: another run is using this out directory ({holder}); wait for it to "
                "finish, or choose another folder (`out=`)"
            ) from None
        os.ftruncate(fd, 0)
        started = datetime.now(UTC).isoformat(timespec="seconds")
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, [json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"])


