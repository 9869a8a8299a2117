"""The picture of the house (ARCHITECTURE.md) holds: who may import what, and no cycles.

Imports are read from the source, those inside functions included, so a cycle cannot hide
in a late import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "webapp"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path) -> set[str]:
    """Every module (of any package) this module imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
    return found


GRAPH = {
    name: {i for i in _imports(name, path) if i in MODULES and i != name} for name, path in MODULES.items()
}


def _external(name: str) -> set[str]:
    return {i.split(".")[0] for i in _imports(name, MODULES[name]) if not i.startswith("webapp")}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read():
    assert "webapp.services.lifecycle" in GRAPH["webapp.services.renders"]
    assert "webapp.queue" in GRAPH["webapp.tasks"]


def test_no_import_cycle_in_webapp():
    assert _cycles() == []


def _in(prefix: str) -> list[str]:
    return [name for name in MODULES if name == prefix or name.startswith(prefix + ".")]


@pytest.mark.parametrize("module", _in("webapp.render"))
def test_the_renderer_knows_nothing_of_the_app(module):
    assert not {i for i in GRAPH[module] if not i.startswith("webapp.render")}
    assert not _external(module) & {"flask", "flask_login", "sqlalchemy", "rq", "redis", "werkzeug"}


@pytest.mark.parametrize("module", _in("webapp.storage"))
def test_the_stores_know_nothing_of_the_app(module):
    assert not {i for i in GRAPH[module] if not i.startswith("webapp.storage")}
    assert not _external(module) & {"flask", "flask_login", "sqlalchemy", "rq", "redis", "werkzeug"}


@pytest.mark.parametrize("module", _in("webapp.services"))
def test_services_import_no_views_tasks_or_request_state(module):
    assert not {i for i in GRAPH[module] if i.startswith(("webapp.views", "webapp.tasks", "webapp.cli"))}
    assert "flask_login" not in _external(module)  # services take the acting user as an argument


@pytest.mark.parametrize("module", [*_in("webapp.services"), *_in("webapp.views")])
def test_services_and_views_speak_of_renders_not_of_rq(module):
    """Every RQ call (and the Redis errors it raises) goes through webapp/queue.py."""
    assert "rq" not in _external(module)
    if module.startswith("webapp.services") and module != "webapp.services.throttle":
        assert "redis" not in _external(module)


def test_models_import_only_extensions():
    assert GRAPH["webapp.models"] <= {"webapp.extensions"}


@pytest.mark.parametrize("module", _in("webapp.views"))
def test_views_do_not_import_tasks(module):
    assert "webapp.tasks" not in GRAPH[module]


MAX_LINES = 400


def test_no_module_in_webapp_is_over_400_lines():
    """A module past 400 lines has grown more than one concern: split it by concern (issue 8)."""
    lines = {path: len(path.read_text().splitlines()) for path in sorted(PACKAGE.rglob("*.py"))}
    too_long = {str(path.relative_to(PACKAGE.parent)): n for path, n in lines.items() if n > MAX_LINES}
    assert not too_long, f"over {MAX_LINES} lines: {too_long}"
