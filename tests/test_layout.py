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
# The layers, lowest first: a module may import its own folder and the folders before it, never one after it.
LAYERS = ["core", "training", "hf", "report", "cli"]
# report sits above hf only for the order of the CLI: it imports neither torch nor hf (see test_report_imports_no_glue)
NO_TORCH_FOLDERS = ["core", "report"]

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
from geko_hf.core.checkpoint import load_geko_state, save_geko_state
from geko_hf.report.text import format_report
from geko_hf.core.tracker import GEKOTracker
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


def test_core_runs_an_epoch_without_torch():
    out = _python(NO_TORCH + CORE_RUN)
    assert out.returncode == 0, out.stderr


def test_glue_names_still_import_from_the_package():
    out = _python("from geko_hf import GEKOTrainer, GEKOCallback, GEKOLoop, with_ids; print(GEKOTrainer.__name__)")
    assert out.returncode == 0 and out.stdout.strip() == "GEKOTrainer", out.stderr


def _modules() -> list[str]:
    """Every module of the package as a dotted path below it: `core.tracker`, `hf.callback`, `__init__`, `_moved`."""
    found = []
    for folder, _, files in os.walk(SRC):
        rel = os.path.relpath(folder, SRC)
        for f in files:
            if f.endswith(".py"):
                name = f[:-3]
                found.append(name if rel == "." else f"{rel.replace(os.sep, '.')}.{name}")
    return sorted(found)


def _resolve(module: str, node: ast.ImportFrom) -> list[str]:
    """The package modules an import statement of `module` names (relative or absolute)."""
    if node.level == 0:
        if not (node.module or "").startswith("geko_hf"):
            return []
        base = node.module.split(".")[1:]
    else:
        here = module.split(".")[:-1] if not module.endswith("__init__") else module.split(".")[:-1]
        base = here[: len(here) - (node.level - 1)] + (node.module.split(".") if node.module else [])
    targets = []
    for alias in node.names:  # `from .core import config` names a module; `from .config import X` does not
        candidate = ".".join(base + [alias.name])
        targets.append(candidate if candidate in _modules() else ".".join(base))
    return [t or "__init__" for t in targets]


def _folder(module: str) -> str:
    return module.split(".")[0] if "." in module else "(top)"


def _graph() -> dict[str, set[str]]:
    graph = {}
    modules = set(_modules())
    for m in modules:
        tree = ast.parse(open(os.path.join(SRC, *m.split(".")) + ".py").read())
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                for t in _resolve(m, node):
                    deps.add(t if t in modules else (t + ".__init__" if t + ".__init__" in modules else t))
        graph[m] = deps - {m}
    return graph


def _torch_imports(path: str) -> set[str]:
    heavy = {"torch", "transformers", "accelerate", "datasets", "trl", "peft"}
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names} & heavy
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found |= {(node.module or "").split(".")[0]} & heavy
    return found


def test_every_module_lives_in_a_layer_folder():
    loose = [m for m in _modules() if "." not in m and m not in {"__init__", "_moved"}]
    assert not loose, f"modules outside the layer folders {LAYERS}: {loose}"
    assert {_folder(m) for m in _modules()} <= set(LAYERS) | {"(top)"}


@pytest.mark.parametrize("folder", NO_TORCH_FOLDERS)
def test_folder_imports_no_torch(folder):
    """The rule, read off the source (a function-level import counts too): core and report need numpy only."""
    bad = {m: _torch_imports(os.path.join(SRC, *m.split(".")) + ".py") for m in _modules() if _folder(m) == folder}
    assert not any(bad.values()), {m: v for m, v in bad.items() if v}


@pytest.mark.parametrize("module", [m for m in _modules() if _folder(m) in NO_TORCH_FOLDERS])
def test_no_torch_module_imports_without_torch(module):
    out = _python(NO_TORCH + f"import geko_hf.{module.removesuffix('.__init__')}")
    assert out.returncode == 0, out.stderr


def test_nothing_imports_upward():
    """A module imports its own folder and the layers below it only: core <- training <- hf <- cli, and report
    (no torch) imports core alone."""
    allowed = {"core": {"core"}, "training": {"core", "training"}, "hf": {"core", "training", "hf", "report"},
               "report": {"core", "report"}, "cli": set(LAYERS)}
    for module, deps in _graph().items():
        if _folder(module) == "(top)":
            continue
        upward = {d for d in deps if _folder(d) not in allowed[_folder(module)] and d != "__init__"}
        assert not upward, f"{module} imports {sorted(upward)} (above its layer)"


def test_layer_check_sees_an_upward_import(tmp_path):
    """The control: the resolver finds `from ..hf.callback import X` in a core module."""
    node = ast.parse("from ..hf.callback import GEKOCallback").body[0]
    assert _resolve("core.tracker", node) == ["hf.callback"]
    node = ast.parse("from .state import SampleState").body[0]
    assert _resolve("core.tracker", node) == ["core.state"]


def test_old_module_paths_import_and_warn():
    """0.3's flat paths still work for one minor release: the same module object, with a FutureWarning."""
    out = _python("import warnings; warnings.simplefilter('error', FutureWarning)\n"
                  "try:\n    import geko_hf.tracker\nexcept FutureWarning as w:\n    print('warned', w)\n"
                  "warnings.simplefilter('ignore')\n"
                  "import geko_hf.tracker, geko_hf.core.tracker\n"
                  "from geko_hf.callback import GEKOCallback\nfrom geko_hf.hf.callback import GEKOCallback as G\n"
                  "print(geko_hf.tracker is geko_hf.core.tracker, GEKOCallback is G)")
    assert out.returncode == 0, out.stderr
    assert "warned `geko_hf.tracker` moved to `geko_hf.core.tracker`" in out.stdout
    assert out.stdout.strip().endswith("True True")


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
    """(the package's and folders' __init__ are left out: they re-export, and `from .. import __version__` reads a
    constant)"""
    graph = {m: {d for d in deps if not d.endswith("__init__")} for m, deps in _graph().items()
             if not m.endswith("__init__")}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


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
        assert trainer.geko is callback.run and callback.trainer is trainer
        assert callback.tracker.epoch == 2
    (a, ca), (b, cb) = trainers
    assert type(a) is type(b)  # one derived class per user class, cached
    assert ca.tracker is not cb.tracker
