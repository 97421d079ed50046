"""Every import statement of the installed packages (judge/, calibration/), read with `ast`, for the tests that
check layering and declared dependencies without importing anything."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("judge", "calibration")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. judge.calls.runner
    path: str  # its file, relative to the repository
    line: int
    target: str  # the imported module (a submodule when `from pkg import sub` names one), e.g. judge.rundir
    names: tuple[str, ...]  # for `from X import a, b`: a, b; empty for `import X` and submodules
    in_function: bool  # inside a function body: imported when it runs, not when the module loads


@cache
def module_files() -> dict[str, Path]:
    """Dotted module name → file, for every module of the packages."""
    files = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = path
    return files


def _is_package(module: str, files: dict[str, Path]) -> bool:
    return module in files and files[module].name == "__init__.py"


def _absolute(node: ast.ImportFrom, module: str, files: dict[str, Path]) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not _is_package(module, files):
        base.pop()
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


@cache
def all_imports() -> tuple[Import, ...]:
    """Every import of every module, function-level ones included (parsed once per test session)."""
    files = module_files()
    found = []
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        deferred = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            for inner in ast.walk(node)
        }
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.append(Import(module, rel, node.lineno, alias.name, (), id(node) in deferred))
            elif isinstance(node, ast.ImportFrom):
                source = _absolute(node, module, files)
                names = tuple(alias.name for alias in node.names)
                submodules = [f"{source}.{name}" for name in names if f"{source}.{name}" in files]
                rest = tuple(name for name in names if f"{source}.{name}" not in files)
                for target in submodules:
                    found.append(Import(module, rel, node.lineno, target, (), id(node) in deferred))
                if rest or not submodules:
                    found.append(Import(module, rel, node.lineno, source, rest, id(node) in deferred))
    return tuple(found)
