"""Every third-party package the installed packages import is a declared dependency with a range, and every
declared dependency is imported: read from the source with `ast`, mapped to distributions by the metadata of
this environment. An optional extra's package may be imported only inside a function."""

from __future__ import annotations

import importlib.metadata
import re
import sys
import tomllib
from collections import defaultdict

from tests.package_imports import PACKAGES, ROOT, Import, all_imports

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> tuple[dict[str, str], dict[str, str]]:
    """(dependency name → requirement, extra dependency name → requirement), names normalised."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    required = {_normal(_NAME.match(r).group(1)): r for r in project["dependencies"]}  # type: ignore[union-attr]
    extras = {
        _normal(_NAME.match(r).group(1)): r  # type: ignore[union-attr]
        for name, reqs in project.get("optional-dependencies", {}).items()
        if name != "dev"
        for r in reqs
    }
    return required, extras


def _third_party() -> dict[str, list[Import]]:
    """Distribution (normalised) → the imports that need it."""
    distributions = importlib.metadata.packages_distributions()
    needed: dict[str, list[Import]] = defaultdict(list)
    for found in all_imports():
        top = found.target.split(".")[0]
        if top in sys.stdlib_module_names or top in PACKAGES:
            continue
        names = distributions.get(top)
        if not names and found.in_function:
            needed[_normal(top)].append(found)  # an extra not installed here: named by its module
            continue
        assert names, f"{found.path}:{found.line}: `{top}` is installed by no distribution in this environment"
        needed[_normal(names[0])].append(found)
    return needed


def _where(imports: list[Import]) -> str:
    return ", ".join(f"{i.path}:{i.line}" for i in imports[:3]) + (" …" if len(imports) > 3 else "")


def test_every_imported_package_is_declared():
    required, extras = _declared()
    missing = []
    for distribution, imports in sorted(_third_party().items()):
        if distribution in required:
            continue
        eager = [i for i in imports if not i.in_function]
        if distribution in extras and not eager:
            continue
        why = "imported at module level but only an extra" if distribution in extras else "not declared"
        missing.append(f"{distribution}: {why} ({_where(eager or imports)})")
    assert not missing, "pyproject.toml [project] dependencies lack:\n" + "\n".join(missing)


def test_every_declared_dependency_is_imported():
    required, _ = _declared()
    unused = sorted(set(required) - set(_third_party()))
    assert not unused, f"declared but never imported by {', '.join(PACKAGES)}: {unused}"


def test_every_dependency_has_a_range():
    required, extras = _declared()
    loose = [r for r in [*required.values(), *extras.values()] if not (">=" in r and "<" in r.replace("<=", ""))]
    assert not loose, f"give these a lower and an upper bound: {loose}"
