"""The module paths of geko_hf <= 0.3 (one flat package), kept importable for one minor release.

`import geko_hf.config` (or `from geko_hf.callback import GEKOCallback`) still works: it warns with a
FutureWarning naming the new path and hands back the new module itself, so a monkeypatch or an isinstance check
through the old path reaches the same objects. Removed in 0.5.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

# old module -> new module (layers as folders: core, training, hf, report, cli)
OLD_PATHS = {
    "buckets": "core.buckets", "checkpoint": "core.checkpoint", "config": "core.config",
    "curriculum": "core.curriculum", "q_value": "core.q_value", "selection": "core.selection",
    "state": "core.state", "tracker": "core.tracker", "suspects": "core.label_issues",
    "ids": "training.ids", "stats": "training.stats", "importance": "training.importance",
    "sampler": "training.sampler", "ranks": "training.ranks", "loop": "training.loop",
    "mixin": "hf.mixin", "callback": "hf.callback", "run": "hf.run", "schedule": "hf.schedule",
    "trainer": "hf.trainer", "training_args": "hf.training_args", "sft": "hf.sft", "lora": "hf.lora",
    "contract": "hf.contract", "alignment": "hf.alignment",
    "plot": "report.plot", "banner": "report.banner",
    "cli_sft": "cli.sft", "cli_data": "cli.data", "console": "cli.console", "device": "cli.device",
    "run_files": "cli.run_files", "assets": "cli.assets",
}


def new_path(old: str) -> str:
    return f"{__package__}.{OLD_PATHS[old]}"


def load_old(old: str):
    """The new module behind an old path, with the FutureWarning a user of the old path gets."""
    warnings.warn(f"`{__package__}.{old}` moved to `{new_path(old)}`; the old path is removed in geko_hf 0.5.",
                  FutureWarning, stacklevel=3)
    return importlib.import_module(new_path(old))


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        package, _, leaf = name.rpartition(".")
        if package == __package__ and leaf in OLD_PATHS:
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return load_old(spec.name.rpartition(".")[2])

    def exec_module(self, module):  # the new module is already executed
        pass


def install() -> None:
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.append(_Alias())
