"""Slack stays at the edge: only bot/slack and the entry points that start it import Bolt."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "bot"
ENTRY_POINTS = {"server.py", "console.py", "runtime.py"}


CORE = sorted(
    str(p.relative_to(ROOT))
    for p in ROOT.rglob("*.py")
    if p.relative_to(ROOT).parts[0] != "slack" and p.name not in ENTRY_POINTS
)


@pytest.mark.parametrize("path", CORE)
def test_only_the_slack_package_and_entry_points_import_bolt(path):
    tree = ast.parse((ROOT / path).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(name.startswith("slack_bolt") for name in imported), f"{path} imports Bolt"


def module_imports(path: Path) -> set[str]:
    """The bot modules a module imports when it is loaded (not those imported only for type checking)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for inner in ast.walk(node) if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) else ():
            if isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            if isinstance(inner, ast.Import):
                found |= {alias.name for alias in inner.names}
            elif isinstance(inner, ast.ImportFrom) and inner.module and inner.level == 0:
                found.add(inner.module)
                found |= {f"{inner.module}.{alias.name}" for alias in inner.names}
    return {name for name in found if name.startswith("bot")}


def test_no_import_cycle_in_bot():
    """Modules import downwards only (a function may import lazily; type-checking imports do not count)."""
    modules = {}
    for path in ROOT.rglob("*.py"):
        parts = ("bot", *path.relative_to(ROOT).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph = {name: {i for i in module_imports(path) if i in modules and i != name} for name, path in modules.items()}
    cycles, state = [], {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                cycles.append([*trail[trail.index(target) :], target] if target in trail else [name, target])
            elif target not in state:
                visit(target, [*trail, target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []
