"""geko_hf: GEKO per-sample compute routing as a plugin to the HuggingFace Trainer.

Two layers, one direction (the glue imports the algorithm, never the reverse):

- the algorithm, pure numpy, importable without torch or transformers: `config` (GEKOConfig, presets), `state`
  (per-sample SampleState), `q_value`, `buckets`, `curriculum`, `selection` (an epoch's plan), `tracker` (state +
  plans + compute accounting), `checkpoint` (the state file), `report`, `plot`;
- the glue to torch / HuggingFace: `stats` (per-sample statistics off a forward pass), `importance`, `ids`,
  `sampler`, `schedule`, `loop` (GEKOLoop, the run controller), `run` (its HF half), `contract` (what GEKO
  requires of transformers, checked at init), `mixin`, `callback`, `trainer`, `training_args`, `sft` (TRL),
  `lora` (peft);
- the `geko-hf` command: `cli` (parsing, dispatch), `cli_sft`, `cli_data`, `console`, `device`, `run_files`.

`import geko_hf` loads only the algorithm; the glue names below resolve on first use, so the algorithm works in
an environment without torch and `import geko_hf` stays fast.
"""

__version__ = "0.3.0"

from .buckets import BUCKET_NAMES, FOCUS, FREEZE, HARD, LIGHT
from .config import GEKO_AGGRESSIVE, GEKO_BALANCED, GEKO_CONSERVATIVE, GEKO_SEED, GEKO_V2, GEKOConfig, get_preset
from .selection import plan_epoch
from .state import SampleState

# name -> module that defines it; imported on first access (PEP 562), so torch/transformers load only when needed
_LAZY = {
    "GEKOCallback": "callback", "GEKOSampler": "sampler", "GEKOMixin": "mixin", "GEKOTrainer": "trainer",
    "GEKOArguments": "training_args", "GEKOTrainingArguments": "training_args", "GEKOLoop": "loop",
    "IdCollator": "ids", "with_ids": "ids", "sample_stats": "stats", "weight_sample_gradients": "importance",
    "apply_lora": "lora", "is_peft_available": "lora",
    "GEKOSFTTrainer": "sft", "GEKOSFTConfig": "sft",  # TRL is an optional extra: the ImportError names it
    "GEKOTracker": "tracker",
}

__all__ = [
    "BUCKET_NAMES", "FOCUS", "FREEZE", "HARD", "LIGHT",
    "GEKO_AGGRESSIVE", "GEKO_BALANCED", "GEKO_CONSERVATIVE", "GEKO_SEED", "GEKO_V2", "GEKOConfig", "get_preset",
    "plan_epoch", "SampleState", *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later lookups skip this hook
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
