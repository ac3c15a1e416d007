"""geko_hf: GEKO per-sample compute routing as a plugin to the HuggingFace Trainer."""

__version__ = "0.3.0"

from .buckets import BUCKET_NAMES, FOCUS, FREEZE, HARD, LIGHT
from .config import GEKO_AGGRESSIVE, GEKO_BALANCED, GEKO_CONSERVATIVE, GEKO_SEED, GEKOConfig, get_preset
from .selection import plan_epoch
from .state import SampleState

__all__ = [
    "BUCKET_NAMES", "FOCUS", "FREEZE", "HARD", "LIGHT",
    "GEKO_AGGRESSIVE", "GEKO_BALANCED", "GEKO_CONSERVATIVE", "GEKO_SEED", "GEKOConfig", "get_preset",
    "plan_epoch", "SampleState",
]

from .callback import GEKOCallback  # noqa: E402
from .ids import IdCollator, with_ids  # noqa: E402
from .importance import weight_sample_gradients  # noqa: E402
from .loop import GEKOLoop  # noqa: E402
from .sampler import GEKOSampler  # noqa: E402
from .stats import sample_stats  # noqa: E402
from .trainer import GEKOMixin, GEKOTrainer  # noqa: E402
from .training_args import GEKOArguments, GEKOTrainingArguments  # noqa: E402

__all__ += ["GEKOCallback", "GEKOSampler", "GEKOMixin", "GEKOTrainer", "GEKOArguments", "GEKOTrainingArguments",
            "GEKOLoop", "IdCollator", "with_ids", "sample_stats", "weight_sample_gradients"]

from .lora import apply_lora, is_peft_available  # noqa: E402  (peft itself is imported only when used)

__all__ += ["apply_lora", "is_peft_available"]

# TRL is an optional extra: the SFT names resolve on first use, so `import geko_hf` works without trl.
_LAZY = {"GEKOSFTTrainer": "sft", "GEKOSFTConfig": "sft"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)  # ImportError names the extra
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
