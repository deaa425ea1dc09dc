"""The layer rule of docs/architecture.md: each package imports only from the layers below it, at module top level.

Three checks: import-linter's ``layers`` contract in pyproject.toml (packages), no import cycle between any two
modules of ``src/ganfit`` (grimp's graph counts every import statement, function-local ones too), and no
function-local import of a ganfit module except the listed ones.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import grimp
from importlinter.cli import lint_imports

import ganfit

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(ganfit.__file__).resolve().parent

# (importing module, imported module) pairs allowed inside a function, and why (docs/architecture.md lists them too).
DEFERRED_IMPORTS: dict[tuple[str, str], str] = {
    ("ganfit.launch", "ganfit.cli"): "the OpenMP wait policy must be set before the command's first `import torch`",
    ("ganfit.jobs.fit_job", "ganfit.jobs.wandb_log"): "wandb is a heavy import, needed only with wandb=true",
}


def test_layers_contract_is_kept() -> None:
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0


def _strongly_connected(adjacency: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one member (import cycles)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(adjacency[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(adjacency):
        if node not in index:
            visit(node)
    return cycles


def test_no_import_cycle_between_modules() -> None:
    graph = grimp.build_graph("ganfit")
    adjacency = {module: set(graph.find_modules_directly_imported_by(module)) for module in graph.modules}
    assert _strongly_connected(adjacency) == []


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level == 0:
        return [node.module or ""]
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return [".".join([*base, node.module] if node.module else base)]


@cache
def _function_local_imports() -> frozenset[tuple[str, str]]:
    """(module, imported ganfit module) for every import statement inside a function body."""
    found: set[tuple[str, str]] = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        is_package = path.name == "__init__.py"
        pending: list[tuple[ast.AST, bool]] = [(ast.parse(path.read_text(encoding="utf-8")), False)]
        while pending:
            node, inside_function = pending.pop()
            if inside_function and isinstance(node, ast.Import | ast.ImportFrom):
                for name in _imported_modules(node, module, is_package):
                    if name == "ganfit" or name.startswith("ganfit."):
                        found.add((module, name))
            nested = inside_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            pending.extend((child, nested) for child in ast.iter_child_nodes(node))
    return frozenset(found)


def test_ganfit_modules_are_imported_at_module_top_level() -> None:
    unexpected = sorted(_function_local_imports() - set(DEFERRED_IMPORTS))
    assert unexpected == [], f"function-local imports of ganfit modules (move them to the top): {unexpected}"


def test_the_scan_resolves_imports_and_every_listed_exception_exists() -> None:
    relative = ast.parse("from ..render import camera").body[0]
    assert isinstance(relative, ast.ImportFrom)
    assert _imported_modules(relative, "ganfit.fitting.fitter", False) == ["ganfit.render"]
    assert _imported_modules(relative, "ganfit.fitting", True) == ["ganfit.render"]
    assert set(DEFERRED_IMPORTS) <= _function_local_imports(), "a listed exception no longer exists: drop it"
