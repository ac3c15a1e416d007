"""The package layout keeps its promises: the algorithm runs without torch or transformers, no module imports a
module that imports it back, and the callback-only path leaves the user's class recognisable and reusable."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

from hf_helpers import make_args, tiny_gpt2, toy_lm_dataset

SRC = os.path.join(os.path.dirname(__file__), "..", "src", "geko_hf")
CORE = ["buckets", "checkpoint", "config", "curriculum", "plot", "q_value", "report", "selection", "state", "tracker"]

NO_TORCH = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "transformers", "accelerate", "datasets", "trl", "peft"}:
            raise ImportError(f"{name} is hidden in this test")
sys.meta_path.insert(0, Block())
"""

CORE_RUN = """
import tempfile
import numpy as np
import geko_hf
from geko_hf import GEKOConfig, get_preset
from geko_hf.checkpoint import load_geko_state, save_geko_state
from geko_hf.report import format_report
from geko_hf.tracker import GEKOTracker
t = GEKOTracker(40, GEKOConfig(), seed=0, num_epochs=3, unit=8, batch_size=8)
for epoch in range(2):
    ids = t.plan(epoch)
    n = len(ids)
    t.record(ids, np.full(n, 0.1), np.ones(n, bool), np.full(n, 0.99), np.ones(n, np.int64), -(-n // 8))
    t.end_epoch(epoch, passes=n, batches=-(-n // 8), tokens=n)
folder = tempfile.mkdtemp()
save_geko_state(folder, {"tracker": t.state_dict()})
print(format_report(t.efficiency_report()).splitlines()[0])
assert "torch" not in sys.modules and "transformers" not in sys.modules
"""


def _python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.path.join(SRC, ".."))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_hiding_torch_works():
    """The control: the blocker really hides torch (else the next test could not fail)."""
    out = _python(NO_TORCH + "import torch")
    assert out.returncode != 0 and "torch is hidden" in out.stderr


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_without_torch(module):
    out = _python(NO_TORCH + f"import geko_hf.{module}")
    assert out.returncode == 0, out.stderr


def test_core_runs_an_epoch_without_torch():
    out = _python(NO_TORCH + CORE_RUN)
    assert out.returncode == 0, out.stderr


def test_glue_names_still_import_from_the_package():
    out = _python("from geko_hf import GEKOTrainer, GEKOCallback, GEKOLoop, with_ids; print(GEKOTrainer.__name__)")
    assert out.returncode == 0 and out.stdout.strip() == "GEKOTrainer", out.stderr


def _imports(path: str, package: str) -> set[str]:
    """Modules of the package that `path` imports (at top level or inside functions): `from .x import` and
    `from . import x`; `from . import __version__` is the package itself."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found |= {a.name if a.name in _modules() else "__init__" for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(package + "."):
            found.add(node.module.split(".")[1])
    return found


def _modules() -> list[str]:
    return sorted(f[:-3] for f in os.listdir(SRC) if f.endswith(".py"))


def _graph() -> dict[str, set[str]]:
    graph = {m: _imports(os.path.join(SRC, m + ".py"), "geko_hf") - {m} for m in _modules()}
    lazy = ast.literal_eval(_lazy_table())  # __init__'s PEP 562 names import these modules on first use
    graph["__init__"] |= set(lazy.values())
    return graph


def _lazy_table() -> str:
    src = open(os.path.join(SRC, "__init__.py")).read()
    tree = ast.parse(src)
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_LAZY":
            return ast.get_source_segment(src, node.value)
    raise AssertionError("__init__ has no _LAZY table")


def _cycle(graph):
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path + [node, nxt]
            if nxt not in state and (found := visit(nxt, path + [node])):
                return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [])):
            return found
    return None


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    """(the package itself is left out: `from . import __version__` reads a constant, and __init__'s own imports
    are the torch-free core)"""
    graph = {m: deps - {"__init__"} for m, deps in _graph().items() if m != "__init__"}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_core_imports_no_glue():
    graph = _graph()
    glue = set(_modules()) - set(CORE) - {"__init__"}
    for module in CORE:
        assert not graph[module] & glue, f"{module} imports {graph[module] & glue}"


def test_callback_path_keeps_the_users_class_and_serves_two_trainers(tmp_path):
    """The one `__class__` change left (the callback-only path; see geko_class_for): the class keeps its name, the
    trainer stays an instance of it, and two trainers of one class with their own callbacks train independently."""
    from transformers import Trainer

    from geko_hf import GEKOCallback

    class MyTrainer(Trainer):
        def my_method(self):
            return "mine"

    trainers = []
    for seed in (0, 1):
        callback = GEKOCallback()
        trainer = MyTrainer(model=tiny_gpt2(seed), args=make_args(tmp_path / str(seed), num_train_epochs=2, seed=seed),
                            train_dataset=toy_lm_dataset(n=32), callbacks=[callback])
        trainers.append((trainer, callback))
    for trainer, callback in trainers:
        trainer.train()
        assert isinstance(trainer, MyTrainer) and type(trainer).__name__ == "MyTrainer"
        assert trainer.my_method() == "mine"
        assert trainer._geko_run is callback.run and callback.trainer is trainer
        assert callback.tracker.epoch == 2
    (a, ca), (b, cb) = trainers
    assert type(a) is type(b)  # one derived class per user class, cached
    assert ca.tracker is not cb.tracker
