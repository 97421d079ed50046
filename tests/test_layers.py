"""The packages' import graph, read from the source (function-level imports included): no cycles, no module
importing a higher layer, judge/ never importing calibration, nothing importing the `judge` package root."""

from __future__ import annotations

from tests.package_imports import PACKAGES, Import, all_imports, module_files

# Lowest first. A module belongs to the first layer with a matching prefix; judge.X modules not listed are
# the core layer. The root `judge` (the public face) counts as the api layer.
BASE = ("judge.errors", "judge.hashing", "judge.bundled", "judge.rundir", "judge.stats", "judge.families",
        "judge.judges", "judge.datasets", "judge.gates", "judge.version")
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", BASE),
    ("calls", ("judge.calls",)),
    ("core", ()),
    ("respond", ("judge.respond",)),
    ("suites", ("judge.suites",)),
    ("audit", ("judge.audit",)),
    ("report", ("judge.report",)),
    ("api", ("judge.api",)),
    ("cli", ("judge.cli",)),
    ("calibration", ("calibration",)),
]


def _matches(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer(module: str) -> int:
    """Index in LAYERS of a module of the packages."""
    if module == "judge":
        return next(i for i, (name, _) in enumerate(LAYERS) if name == "api")
    for index, (name, prefixes) in enumerate(LAYERS):
        if name != "core" and any(_matches(module, p) for p in prefixes):
            return index
    assert module.startswith("judge."), module
    return next(i for i, (name, _) in enumerate(LAYERS) if name == "core")


def _internal() -> list[Import]:
    files = module_files()
    return [i for i in all_imports() if i.target.split(".")[0] in PACKAGES and i.target in files]


def _show(imports: list[Import]) -> str:
    return "\n".join(f"{i.path}:{i.line} ({i.module}) → {i.target}" for i in imports)


def test_every_internal_import_resolves():
    files = module_files()
    unresolved = [i for i in all_imports() if i.target.split(".")[0] in PACKAGES and i.target not in files]
    assert not unresolved, "imports of modules that do not exist:\n" + _show(unresolved)


def test_no_module_imports_a_higher_layer():
    upward = [i for i in _internal() if layer(i.target) > layer(i.module)]
    assert not upward, "imports of a higher layer (layers: " + " < ".join(n for n, _ in LAYERS) + "):\n" + _show(
        upward
    )


def test_judge_never_imports_calibration():
    found = [i for i in _internal() if i.module.startswith("judge") and i.target.startswith("calibration")]
    assert not found, "judge/ importing calibration:\n" + _show(found)


def test_nothing_imports_the_package_root():
    """`judge/__init__.py` is the public API, loaded by users; modules import what they need from below it."""
    found = [i for i in _internal() if i.target == "judge" and i.module != "judge"]
    assert not found, "imports from the `judge` root (import from its modules instead):\n" + _show(found)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (or a module importing itself), by Tarjan."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    imports = _internal()
    edges: dict[str, set[str]] = {}
    for i in imports:
        edges.setdefault(i.module, set()).add(i.target)
    cycles = _cycles(edges)
    detail = [
        _show([i for i in imports if i.module in component and i.target in component]) for component in cycles
    ]
    assert not cycles, "import cycles:\n" + "\n\n".join(detail)


def test_cycle_finder_sees_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
