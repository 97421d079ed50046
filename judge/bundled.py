"""Where the rubrics, prompt templates and worked examples that ship with the package live.

A wheel carries them under `judge/_bundled/`; an editable install reads them from the repository.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent
_REPOSITORY_PATHS = {
    "rubrics": "rubrics",
    "prompts": "prompts",
    "examples": "data/examples",
    "crisis_resources.toml": "data/crisis_resources.toml",
    "fairness_personas.toml": "data/fairness_personas.toml",
    "registry.toml": "data/registry.toml",
    "paper_rank_table.toml": "data/paper_rank_table.toml",
    "conversation": "data/conversation",
}


def bundled_path(name: str) -> Path:
    """Path of a bundled resource: the folders `rubrics`, `prompts`, `examples`, or `crisis_resources.toml`,
    `fairness_personas.toml`, `registry.toml`, `paper_rank_table.toml` (the paper's rank table), and the
    folder `conversation` (persona cards, the simulated user's prompt)."""
    packaged = _PACKAGE / "_bundled" / name
    if packaged.exists():
        return packaged
    return _PACKAGE.parent / _REPOSITORY_PATHS[name]


def read_toml(path: Path, error: type[Exception], what: str) -> dict[str, Any]:
    """A TOML file's content, or `error` saying which file could not be read or parsed and why."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read {what} ({exc})") from exc
    except ValueError as exc:  # TOMLDecodeError, or an integer of more than 4300 digits
        raise error(f"{path}: not valid TOML ({str(exc).split(';')[0]})") from exc
    except RecursionError as exc:  # tomllib parses nested arrays by recursion
        raise error(f"{path}: not valid TOML (arrays or tables nested too deeply)") from exc
