"""geko_hf: per-sample training dynamics (the data map, label issues) and GEKO's per-sample compute routing, as a
plugin to the HuggingFace Trainer.

Five layers, each a folder, each importing only the ones before it:

- `core/`: the algorithm, pure numpy, importable without torch or transformers (config, state, buckets, selection,
  policies, tracker, accounting, data map, label issues, checkpoint);
- `training/`: GEKO in any torch loop (sample ids, per-sample statistics, importance weights, sampler, GEKOLoop);
- `hf/`: the glue to transformers / TRL / peft (GEKOCallback, GEKOTrainer, GEKOSFTTrainer, arguments);
- `report/`: text tables, plots, banners (no torch);
- `cli/`: the `geko-hf` command.

`import geko_hf` loads only the algorithm; the glue names below resolve on first use, so the algorithm works in
an environment without torch and `import geko_hf` stays fast. The flat module paths of 0.3 (`geko_hf.callback`,
`geko_hf.config`, ...) still import, with a FutureWarning (see _moved.py).
"""

__version__ = "0.4.0"

from . import _moved
from .core.buckets import BUCKET_NAMES, FOCUS, FREEZE, HARD, LIGHT
from .core.config import GEKO_AGGRESSIVE, GEKO_BALANCED, GEKO_CONSERVATIVE, GEKO_SEED, GEKO_V2, GEKOConfig, get_preset
from .core.selection import plan_epoch
from .core.state import SampleState

# name -> module that defines it; imported on first access (PEP 562), so torch/transformers load only when needed
_LAZY = {
    "GEKOCallback": "hf.callback", "GEKOSampler": "training.sampler", "GEKOMixin": "hf.mixin",
    "GEKOTrainer": "hf.trainer", "GEKOArguments": "hf.training_args", "GEKOTrainingArguments": "hf.training_args",
    "GEKOLoop": "training.loop", "IdCollator": "training.ids", "with_ids": "training.ids",
    "sample_stats": "training.stats", "weight_sample_gradients": "training.importance",
    "apply_lora": "hf.lora", "is_peft_available": "hf.lora",
    "GEKOSFTTrainer": "hf.sft", "GEKOSFTConfig": "hf.sft",  # TRL is an optional extra: the ImportError names it
    "GEKOTracker": "core.tracker",
}

__all__ = [
    "BUCKET_NAMES", "FOCUS", "FREEZE", "HARD", "LIGHT",
    "GEKO_AGGRESSIVE", "GEKO_BALANCED", "GEKO_CONSERVATIVE", "GEKO_SEED", "GEKO_V2", "GEKOConfig", "get_preset",
    "plan_epoch", "SampleState", *_LAZY,
]


_moved.install()


def __getattr__(name):
    if name in _moved.OLD_PATHS:  # `geko_hf.config` as an attribute, without importing it first
        return _moved.load_old(name)
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later lookups skip this hook
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
