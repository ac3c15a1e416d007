"""geko_hf: GEKO per-sample compute routing as a plugin to the HuggingFace Trainer."""

__version__ = "0.1.0"

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
from .sampler import GEKOSampler  # noqa: E402
from .trainer import GEKOMixin, GEKOTrainer  # noqa: E402
from .training_args import GEKOArguments, GEKOTrainingArguments  # noqa: E402

__all__ += ["GEKOCallback", "GEKOSampler", "GEKOMixin", "GEKOTrainer", "GEKOArguments", "GEKOTrainingArguments"]
