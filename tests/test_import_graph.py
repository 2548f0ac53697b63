"""No import circles in src/seqlab: no module imports, at its top or inside a function, a module
that imports it back (directly or through others). Imports under `if TYPE_CHECKING:` count too:
they never run, but a circle through one is still a circle in the design (a Protocol names what
a module needs instead). Read from the source, nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "src"


def module_files() -> dict[str, Path]:
    files = {}
    for path in sorted((SOURCE / "seqlab").rglob("*.py")):
        parts = path.relative_to(SOURCE).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def imports(path: Path, modules: set[str]) -> set[str]:
    """The seqlab modules `path` imports anywhere in its text (`from a import b` counts a.b when b is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module in modules:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & modules
            found.update(submodules or {node.module})
            if len(submodules) < len(node.names):
                found.add(node.module)
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imports(path, set(files)) - {name} for name, path in files.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                groups.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return groups


def test_no_module_imports_one_that_imports_it_back():
    graph = import_graph()
    # The package itself re-exports the public API, so every seqlab module reaches it; leave it out.
    graph = {name: targets - {"seqlab"} for name, targets in graph.items() if name != "seqlab"}
    assert circles(graph) == []


def test_prediction_depends_on_neither_explanation_nor_export():
    graph = import_graph()
    assert not graph["seqlab.predict"] & {"seqlab.explain", "seqlab.export"}
    assert "seqlab.predict" in graph["seqlab.explain"] and "seqlab.predict" in graph["seqlab.export"]
