"""The layout is the architecture: `scheduler` (the domain: data, rules, execution) imports
neither `web` nor `tasks`; `tasks` (Dramatiq) imports the domain only; `web` (HTTP, CLI and the
composition root) sits on both. No module takes part in an import circle, counting the imports
made inside functions too: a circle hidden in a function is still a circle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("scheduler", "tasks", "web")
ALLOWED = {"scheduler": set(), "tasks": {"scheduler"}, "web": {"scheduler", "tasks"}}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Every module of the three packages, and the project modules it imports."""
    graph: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = module_name(path)
            found: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    found |= {alias.name for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.add(node.module)
                    found |= {f"{node.module}.{alias.name}" for alias in node.names}
            graph[name] = found
    return {name: {m for m in found if m in graph and m != name} for name, found in graph.items()}


def upward(graph: dict[str, set[str]]) -> list[str]:
    """Imports that go against the layers."""
    return [
        f"{name} imports {target}"
        for name, targets in sorted(graph.items())
        for target in sorted(targets)
        if target.split(".")[0] != name.split(".")[0]
        and target.split(".")[0] not in ALLOWED[name.split(".")[0]]
    ]


def circles(graph: dict[str, set[str]]) -> list[str]:
    """Every import circle found by a depth-first walk. A package's __init__ importing its own
    submodules (or a submodule its package) is how Python packages work, not a circle."""
    edges = {
        name: {t for t in targets if not t.startswith(name + ".") and not name.startswith(t + ".")}
        for name, targets in graph.items()
    }
    found: list[str] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                found.append(" -> ".join([*stack[stack.index(target) :], target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_each_package_imports_only_the_layers_below_it():
    assert upward(imports()) == []


def test_no_import_circle():
    assert circles(imports()) == []


def test_the_checks_find_what_they_look_for():
    """The old circle (tasks.actors -> tasks.runtime -> web -> tasks.dispatch -> tasks.actors)
    and a domain module importing the shell are both caught."""
    old = {
        "tasks.actors": {"tasks.runtime"},
        "tasks.runtime": {"web"},
        "web": {"tasks.dispatch"},
        "tasks.dispatch": {"tasks.actors"},
    }
    assert circles(old) == [
        "tasks.actors -> tasks.runtime -> web -> tasks.dispatch -> tasks.actors"
    ]
    assert upward(old) == ["tasks.runtime imports web"]
    assert upward({"scheduler.sweep": {"web.models"}}) == ["scheduler.sweep imports web.models"]
