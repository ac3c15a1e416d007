"""The benchmark scripts (benchmarks/*.py) can be checked end to end with `--quick`, and their results then go to
`*_quick.*` files (never over the committed full results). Read from the source, so this runs in milliseconds;
running the scripts themselves takes minutes (see benchmarks/README.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"
SCRIPTS = ["savings", "tradeoff", "overhead", "scale", "state_store", "label_errors", "label_issues"]
MODULES = ["baselines", "gekolib_arm"]  # imported by the scripts, not run


def top_level_imports(name: str) -> set[str]:
    """Modules imported when `name` is imported (module-level statements only; lazy imports in functions are not)."""
    tree = ast.parse((BENCHMARKS / f"{name}.py").read_text())
    out = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_every_script_is_listed():
    assert sorted(p.stem for p in BENCHMARKS.glob("*.py")) == sorted(SCRIPTS + MODULES)


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_has_quick_and_writes_quick_files(name):
    source = (BENCHMARKS / f"{name}.py").read_text()
    assert '"--quick"' in source, f"benchmarks/{name}.py has no --quick"
    assert "_quick" in source, f"benchmarks/{name}.py --quick must write *_quick.* results"


def test_gekolib_arm_and_savings_do_not_import_each_other_at_import_time():
    """savings imports gekolib_arm inside run_arm and gekolib_arm imports savings.Meter inside run_gekolib: a
    module-level import either way would be a cycle (and make savings need the optional gekolib package)."""
    assert "savings" not in top_level_imports("gekolib_arm")
    assert "gekolib_arm" not in top_level_imports("savings")
    assert "geko" not in top_level_imports("gekolib_arm")  # gekolib itself (optional) is imported lazily too
