"""Content hashes: rubrics, prompts, schemas and request keys are named by what they contain, so that a
key changes exactly when what it names could answer differently."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def sha256_of(obj: Any) -> str:
    """Hash of a JSON-able value in canonical form (sorted keys, no insignificant whitespace)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
