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
