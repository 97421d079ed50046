"""One JSON object per line, as every JSONL output of a run writes it (the journal, items, panel, review)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# Built once: json.dumps with options builds a new encoder for every row, a tenth of a row's cost.
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode


def json_line(row: Mapping[str, Any]) -> str:
    """The row and its newline; NaN and Infinity, which JSON cannot hold, raise ValueError."""
    return _encode(row) + "\n"
