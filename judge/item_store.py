"""Valid items (or prompts) kept on disk, not in memory, for runs over corpora of any size.

A run reads its input whole before anything is sent (every bad record is reported at once), then
needs each item again when its calls are sent and when the outputs are written. Holding a million
validated items would take gigabytes; the store writes each one, as JSON, to an anonymous temporary
file (removed by the system when closed, readable by this process only) and keeps just its id and
where it lies. An item is validated again when read back (about 20 µs); the few most recently read
stay in memory, since a run asks for the same item for each of its pillars, judges and samples.
"""

from __future__ import annotations

import os
import tempfile
from array import array
from collections import OrderedDict
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from judge.calls.engine import BuiltOnAccess
from judge.items import DEFAULT_MAX_RESPONSE_CHARS, ITEM_SHAPE, Item, Prompt, RecordShape, Rejection, iter_read

Record = TypeVar("Record", Item, Prompt)
RECENT = 256  # items kept decoded: enough for every worker's current item at any concurrency in use


class ItemStore(BuiltOnAccess[Record], Generic[Record]):
    """Items in input order, spooled to a temporary file; indexable and iterable like a list."""

    def __init__(self, model: type[Record]) -> None:
        self.model = model
        self.ids: list[str] = []
        self._file = tempfile.TemporaryFile(prefix="trustmh-items-")  # noqa: SIM115 (lives as long as the store)
        self._ends = array("q")
        self._size = 0
        self._recent: OrderedDict[int, Record] = OrderedDict()

    def append(self, item: Record) -> None:
        data = item.model_dump_json().encode("utf-8") + b"\n"
        self._file.write(data)
        self._size += len(data)
        self._ends.append(self._size)
        self.ids.append(item.id)

    def __len__(self) -> int:
        return len(self.ids)

    def _build(self, index: int) -> Record:
        if (item := self._recent.get(index)) is not None:
            self._recent.move_to_end(index)
            return item
        self._file.flush()
        start = self._ends[index - 1] if index else 0
        item = self.model.model_validate_json(os.pread(self._file.fileno(), self._ends[index] - start, start))
        self._recent[index] = item
        if len(self._recent) > RECENT:
            self._recent.popitem(last=False)
        return item

    def __iter__(self) -> Iterator[Record]:
        """Every item in order, read sequentially (faster than one read per item)."""
        self._file.flush()
        fd, position, pending = self._file.fileno(), 0, b""
        while position < self._size:
            block = os.pread(fd, min(1 << 20, self._size - position), position)
            position += len(block)
            *lines, pending = (pending + block).split(b"\n")
            for line in lines:
                yield self.model.model_validate_json(line)

    def close(self) -> None:
        self._file.close()


@dataclass
class StoredRead(Generic[Record]):
    """What `read_into_store` found: the valid items on disk, the bad records in memory."""

    items: ItemStore[Record]
    rejections: list[Rejection] = field(default_factory=list)


def read_into_store(
    paths: Sequence[Path],
    known_pillars: Collection[str],
    *,
    max_response_chars: int = DEFAULT_MAX_RESPONSE_CHARS,
    shape: RecordShape = ITEM_SHAPE,
) -> StoredRead:
    """`read_items`, with the valid items written to an `ItemStore` as they are read."""
    read: StoredRead = StoredRead(ItemStore(shape.model))
    for entry in iter_read(paths, known_pillars, max_response_chars=max_response_chars, shape=shape):
        if isinstance(entry, Rejection):
            read.rejections.append(entry)
        else:
            read.items.append(entry)
    return read
