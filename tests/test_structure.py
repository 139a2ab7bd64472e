"""The shape of the code base: no import cycle among first-party modules, no oversized file.

An import cycle means two modules can only be understood (and loaded) together; the layers
are engine → server/db, server/observability → areas (each through its `service`) → the top
(app, worker tasks, cli). The walk below reads every `import` of `engine/` and `server/`
with `ast`, including imports inside functions (a lazy import is still a dependency); only
imports under `if TYPE_CHECKING:` are left out, since they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "server")
SERVER_LINE_LIMIT = 600


def module_files(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Dotted module name → file, for every .py under the given packages."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    """ids of every node under an `if TYPE_CHECKING:` (or `typing.TYPE_CHECKING`) block."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                skipped.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return skipped


def _targets(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    """Every dotted name an import statement may load (`from a import b` may load a.b)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The first-party modules `name` imports (its own submodules excluded for a package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skipped = _type_checking_nodes(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped or not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        for target in _targets(node, package):
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and not target.startswith(name + "."):
                found.add(target)
    return found


def import_graph(root: Path, packages: tuple[str, ...]) -> dict[str, set[str]]:
    files = module_files(root, packages)
    known = set(files)
    return {name: imports_of(name, path, known) for name, path in files.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path a → … → a) per strongly connected group, by iterative DFS."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    cycles: list[list[str]] = []
    in_reported: set[str] = set()
    for start in sorted(graph):
        if start in state:
            continue
        path: list[str] = [start]
        pending = [iter(sorted(graph[start]))]
        state[start] = 1
        while pending:
            target = next(pending[-1], None)
            if target is None:
                state[path.pop()] = 2
                pending.pop()
                continue
            if state.get(target) == 1:
                cycle = [*path[path.index(target):], target]
                if not in_reported.intersection(cycle):
                    cycles.append(cycle)
                    in_reported.update(cycle)
            elif target not in state:
                state[target] = 1
                path.append(target)
                pending.append(iter(sorted(graph.get(target, ()))))
    return cycles


def _write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_walk_finds_lazy_and_relative_cycles_but_not_type_checking_ones(tmp_path: Path):
    _write(tmp_path, {
        "pkg/__init__.py": "from pkg import a\n",
        "pkg/a.py": "from pkg.b import thing\n",
        "pkg/b.py": "def f():\n    from . import c\n",
        "pkg/c.py": "import pkg.a\n",
        "pkg/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import e\n",
        "pkg/e.py": "from pkg.d import x\n",
    })
    graph = import_graph(tmp_path, ("pkg",))
    assert graph["pkg"] == set()  # a package importing its own submodules is not a cycle
    assert graph["pkg.b"] == {"pkg", "pkg.c"}  # a lazy, relative import counts
    cycles = find_cycles(graph)
    assert cycles == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]


def test_no_import_cycle_among_engine_and_server_modules():
    graph = import_graph(ROOT, PACKAGES)
    assert len(graph) > 100, "the walk did not see the code base"
    assert "engine.check" in graph["engine.plan"]  # it reads real imports
    cycles = find_cycles(graph)
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_engine_imports_nothing_from_server():
    graph = import_graph(ROOT, PACKAGES)
    offenders = sorted(
        f"{name} -> {target}"
        for name, targets in graph.items() if name.startswith("engine")
        for target in targets if target.startswith("server")
    )
    assert offenders == []


def test_no_file_under_server_exceeds_the_line_limit():
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in (ROOT / "server").rglob("*.py")
    }
    assert len(sizes) > 50
    too_long = {path: lines for path, lines in sizes.items() if lines > SERVER_LINE_LIMIT}
    assert too_long == {}, f"files over {SERVER_LINE_LIMIT} lines: {too_long}"
