"""The project's documents stand alone: no citation of a specification that is not in the repository."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCUMENTED = ["README.md", "docs/*.md", "data/registry.toml", "judge/**/*.py", "calibration/*.py",
              "tests/**/*.py", "tests/perf/*.md", "rubrics/*.yaml", "prompts/*.j2"]  # fmt: skip
CITATION = re.compile("SPEC" + r"\s*§")  # split so that this file does not match itself


def test_no_document_or_docstring_cites_the_spec_by_section() -> None:
    files = sorted({path for pattern in DOCUMENTED for path in REPO.glob(pattern)})
    assert len(files) > 20
    cited = [
        f"{path.relative_to(REPO)}:{number}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if CITATION.search(line)
    ]
    assert not cited, f"explain in place instead of citing the spec: {cited}"
