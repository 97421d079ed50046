"""Where the rubrics, prompt templates and worked examples that ship with the package live.

A wheel carries them under `judge/_bundled/`; an editable install reads them from the repository.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_REPOSITORY_PATHS = {"rubrics": "rubrics", "prompts": "prompts", "examples": "data/examples"}


def bundled_path(name: str) -> Path:
    """Path of a bundled resource folder: `rubrics`, `prompts` or `examples`."""
    packaged = _PACKAGE / "_bundled" / name
    if packaged.exists():
        return packaged
    return _PACKAGE.parent / _REPOSITORY_PATHS[name]
