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
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


class JsonlError(ValueError):
    """A line of JSON Lines that is not a JSON object: `where` (the file) and `line` (1-based) name it."""

    def __init__(self, where: str, line: int, problem: str, *, decoded: bool) -> None:
        super().__init__(f"{where}:{line}: {problem}")
        self.where, self.line, self.problem = where, line, problem
        self.decoded = decoded  # the line is valid JSON, only not an object


def parse_jsonl(
    data: str | bytes | Iterable[str | bytes], where: str, problems: list[JsonlError] | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of JSONL text, UTF-8 bytes or an open file's lines.

    Lines end at "\n" only (a U+2028 inside a string is not a line break). The first bad line raises
    JsonlError, unless `problems` is given: then every bad line is appended there and skipped.
    """
    lines = data.split("\n" if isinstance(data, str) else b"\n") if isinstance(data, str | bytes) else data
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8") if isinstance(line, bytes) else line)
            error = None if isinstance(row, dict) else JsonlError(
                where, number, f"expected a JSON object, got {type(row).__name__}", decoded=True
            )
        except UnicodeDecodeError as exc:
            error = JsonlError(where, number, f"not valid UTF-8 (byte {exc.start} of the line)", decoded=False)
        except json.JSONDecodeError as exc:
            error = JsonlError(where, number, f"not valid JSON ({exc.msg} at column {exc.colno})", decoded=False)
        except ValueError as exc:  # an integer of more than 4300 digits
            error = JsonlError(where, number, f"not valid JSON ({str(exc).split(';')[0]})", decoded=False)
        except RecursionError:
            error = JsonlError(where, number, "not valid JSON (nested too deeply)", decoded=False)
        if error is None:
            yield number, row
        elif problems is None:
            raise error
        else:
            problems.append(error)


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of a run file; every bad line is reported at once."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RunDirError(f"{path}: not found; is this the --out folder of a finished `trustmh score` run?") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path}: cannot read ({exc})") from exc
    problems: list[JsonlError] = []
    rows = list(parse_jsonl(text, str(path), problems))
    raise_problems([
        str(p) if p.decoded else f"{p}; a truncated line from an interrupted run is completed by running the same "
        "command again"
        for p in problems
    ])
    return rows


def write_atomic(path: Path, write: Callable[[Any], None], encoding: str | None = "utf-8") -> None:
    """Write a temporary file in the same folder, then os.replace it over `path`; `write` gets a text handle,
    or a binary one when `encoding` is None.

    The file is owner-only (0600) and folders it creates are 0700: outputs hold mental-health
    conversations, so they get the same protection as the cache, whatever the umask.
    """
    make_private_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)  # O_CREAT's mode does not apply to a leftover temporary file
        text = encoding is not None
        with open(descriptor, "w" if text else "wb", encoding=encoding, newline="" if text else None) as handle:
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


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Binary content (e.g. a parquet file), replacing `path` atomically, owner-only."""
    write_atomic(path, lambda f: f.write(data), encoding=None)


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


