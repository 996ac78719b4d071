"""The list of planted bugs (tools/mutants.py) is kept up to date: every snippet still found once.

This runs no mutant (that is `python tools/mutants.py`, minutes); it only fails when code moved or
changed under a mutant, so whoever moved it re-points the mutant's `path` or `find` in the same change.
"""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_mutants():
    spec = importlib.util.spec_from_file_location("mutants", ROOT / "tools" / "mutants.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_mutant_still_finds_its_snippet_exactly_once():
    mutants = load_mutants()
    assert mutants.stale(mutants.MUTANTS) == []


def test_the_list_covers_the_rules_it_is_for():
    mutants = load_mutants().MUTANTS
    assert len(mutants) >= 40
    areas = {m.name.split("-")[0] for m in mutants}
    rules = "role confirm rule undo safety escape audit outbox api channel lease response csv blocks typed"
    assert set(rules.split()) <= areas
