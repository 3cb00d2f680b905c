"""evalkit's modules import each other without a cycle, read with ast: neither at import time nor counting the
imports inside functions (a deferred import that closes a cycle only hides it)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "evalkit"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(tree: ast.Module):
    """Import statements run at import time: module level, and in module-level if/try blocks
    (an `if TYPE_CHECKING:` block never runs, so it is left out)."""
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
            yield from _top_level_imports(ast.Module(body=node.body + node.orelse, type_ignores=[]))
        elif isinstance(node, ast.Try):
            handlers = [stmt for handler in node.handlers for stmt in handler.body]
            yield from _top_level_imports(ast.Module(body=node.body + handlers + node.orelse, type_ignores=[]))


def _targets(node, module: str, is_package: bool, modules: set[str]) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    base = module if is_package else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    source = node.module if node.level == 0 else ".".join(filter(None, [base, node.module]))
    submodules = {f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in modules}
    # `from package import submodule` imports the submodule; the package counts only for other names
    names_from_package = source in modules and len(submodules) < len(node.names)
    return submodules | ({source} if names_from_package else set())


def _all_imports(node: ast.AST):
    """Every import statement that can run: at module level and inside functions and classes (an
    `if TYPE_CHECKING:` block never runs, so it is left out)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            yield from (stmt for branch in child.orelse for stmt in _all_imports(ast.Module(body=[branch])))
        else:
            yield from _all_imports(child)


def import_graph(deferred: bool = False) -> dict[str, set[str]]:
    """Module -> the evalkit modules it imports: at import time, or with `deferred` also inside functions."""
    paths = {_module_name(path): path for path in PACKAGE.rglob("*.py") if "_data" not in path.parts}
    graph = {}
    for module, path in paths.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        imports = _all_imports(tree) if deferred else _top_level_imports(tree)
        graph[module] = set().union(*(_targets(node, module, is_package, set(paths)) for node in imports)) - {module}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component larger than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 100 and "evalkit.codecs.base" in graph["evalkit.codecs"]
    assert find_cycles(graph) == []


def test_no_cycle_hides_behind_a_deferred_import():
    """A function-level import that closes a cycle works only because of when it runs; the modules
    still depend on each other. Counted with those imports, there is no cycle either."""
    graph = import_graph(deferred=True)
    assert "evalkit.report.sections_listening" in graph["evalkit.report.sections"]  # inside build_sections
    assert "evalkit.report.sections_listening" not in import_graph()["evalkit.report.sections"]
    assert find_cycles(graph) == []


def test_deferred_imports_are_read_and_type_only_ones_left_out():
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from . import typed\n"
        "def f():\n    from .late import x\n"
        "class C:\n    def g(self):\n        import evalkit.deep\n"
    )
    found = {ast.unparse(node) for node in _all_imports(tree)}
    assert found == {"from typing import TYPE_CHECKING", "from .late import x", "import evalkit.deep"}


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []
