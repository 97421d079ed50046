"""trustmh-judge: LLM-as-judge scoring of mental-health trustworthiness along the TrustMH-Bench pillars.

The public names are handed on from the modules that define them, each imported on first use (PEP 562):
`import judge` loads nothing else, so `trustmh score` starts without the suites, the report or calibration.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from judge.version import __version__

# public name -> the module that defines it; strings, so judge never imports calibration until asked to
_EXPORTS = {
    "score": "judge.api",
    "respond": "judge.api",
    "bench": "judge.api",
    "audit": "judge.api",
    "compare": "judge.api",
    "ScoreResult": "judge.api",
    "RespondResult": "judge.api",
    "CompareResult": "judge.api",
    "BenchResult": "judge.suites.bench",
    "AuditResult": "judge.audit.run",
    "calibrate": "calibration.api",
    "Calibration": "calibration.api",
    "validate": "calibration.api",
    "Validation": "calibration.api",
    "RunSettings": "judge.settings",
    "PanelOptions": "judge.panel",
    "Item": "judge.items",
    "Rubric": "judge.rubric",
    "JudgeSpec": "judge.judges",
    "TargetSpec": "judge.respond.targets",
    "read_run": "judge.log",
    "ExitCode": "judge.errors",
    "TrustMHError": "judge.errors",
    "UsageError": "judge.errors",
    "ConfigError": "judge.errors",
    "InputFileError": "judge.errors",
    "RunDirError": "judge.errors",
    "DatasetError": "judge.errors",
}
__all__ = [  # the names of _EXPORTS, spelled out for type checkers and linters (a test keeps the two equal)
    "AuditResult",
    "BenchResult",
    "Calibration",
    "CompareResult",
    "ConfigError",
    "DatasetError",
    "ExitCode",
    "InputFileError",
    "Item",
    "JudgeSpec",
    "PanelOptions",
    "RespondResult",
    "Rubric",
    "RunDirError",
    "RunSettings",
    "ScoreResult",
    "TargetSpec",
    "TrustMHError",
    "UsageError",
    "Validation",
    "__version__",
    "audit",
    "bench",
    "calibrate",
    "compare",
    "read_run",
    "respond",
    "score",
    "validate",
]

if TYPE_CHECKING:  # calibration's names stay strings: judge never imports calibration
    from judge.api import CompareResult, RespondResult, ScoreResult, audit, bench, compare, respond, score
    from judge.audit.run import AuditResult
    from judge.errors import (
        ConfigError,
        DatasetError,
        ExitCode,
        InputFileError,
        RunDirError,
        TrustMHError,
        UsageError,
    )
    from judge.items import Item
    from judge.judges import JudgeSpec
    from judge.log import read_run
    from judge.panel import PanelOptions
    from judge.respond.targets import TargetSpec
    from judge.rubric import Rubric
    from judge.settings import RunSettings
    from judge.suites.bench import BenchResult


def _export(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'judge' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __getattr__(name: str) -> Any:
    value = _export(name)
    globals()[name] = value  # found once; later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


class _PublicModule(types.ModuleType):
    """`judge.score`, `judge.respond`, `judge.audit` and `judge.compare` are the API's functions, although
    importing the submodule of the same name (judge/score.py, judge/respond/, judge/audit/, judge/compare.py)
    sets it on the package."""

    def __getattribute__(self, name: str) -> Any:
        if name in _SHADOWED:
            return _export(name)
        return super().__getattribute__(name)


_SHADOWED = frozenset({"score", "respond", "audit", "compare"})
sys.modules[__name__].__class__ = _PublicModule
