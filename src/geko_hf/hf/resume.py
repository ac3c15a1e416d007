"""What a resume must match: a checkpoint's GEKO plans were drawn for one optimizer step, config, seed and run
length, and HF resumes by counting steps. Each check refuses a mismatch, naming what changed and the way out."""

from __future__ import annotations

import os

from ..core.config import GEKOConfig
from ..core.tracker import GEKOTracker


def check_same_batch(folder: str, saved: dict, tracker: GEKOTracker) -> None:
    """A checkpoint's plans are rounded to its optimizer step and HF resumes by counting steps: resuming under another
    step size would replay the saved plan under a new unit and skip the wrong batches, so it is refused."""
    then, now = (int(saved["unit"]), int(saved["batch_size"])), (tracker.unit, tracker.batch_size)
    if then != now:
        raise ValueError(
            f"Checkpoint {folder} was saved with {then[0]} samples per optimizer step ({then[1]} per micro-batch over "
            f"all processes), and this run uses {now[0]} ({now[1]} per micro-batch). GEKO's saved epoch plan and HF's "
            "step count only line up under the same step: resume with the same per_device_train_batch_size, "
            "gradient_accumulation_steps and number of processes, or start a new run from the saved model "
            "(model_name_or_path=the checkpoint folder, without resume_from_checkpoint)."
        )


def has_optimizer_state(folder: str) -> bool:
    """Whether HF saved the optimizer/scheduler with the model: optimizer.pt and scheduler.pt, FSDP's optimizer_0,
    or DeepSpeed's global_step* folder (which holds its scheduler)."""
    return any(name.startswith(("optimizer", "scheduler", "global_step")) for name in os.listdir(folder))


# Settings that change what GEKO prints, not what it trains: free to change on resume.
COSMETIC_FIELDS = frozenset({"log_bucket_stats", "data_map"})


def _run_length_words(saved: dict) -> str:
    if saved.get("fixed_steps", False):
        if saved.get("max_steps"):  # (states of geko_hf <= 0.3 kept only the epoch count)
            return f"max_steps={int(saved['max_steps'])}"
        return f"max_steps (about {int(saved['num_epochs'])} full-data epochs)"
    epochs = int(saved["num_epochs"]) - 1 + float(saved.get("last_epoch_fraction", 1.0))
    return f"num_train_epochs={epochs:g}"


def check_same_run(folder: str, saved: dict, tracker: GEKOTracker) -> None:
    """A checkpoint's next plans were drawn, and its curriculum and schedule laid out, under its GEKOConfig, seed
    and run length: continuing under others would train a plan with the new weights (a LIGHT sample drawn at rate
    0.5 weighted 1/0.25), or added epochs at the schedule's end value. Refused, naming what changed."""
    now = tracker.config.to_dict()
    then = GEKOConfig.from_dict(saved.get("config") or {}).to_dict()
    changed = [f"GEKOConfig.{k}={then[k]!r} (now {now[k]!r})" for k in sorted(set(saved.get("config") or {}) & set(now))
               if k not in COSMETIC_FIELDS and then[k] != now[k]]
    if int(saved["seed"]) != tracker.seed:
        changed.append(f"seed={int(saved['seed'])} (now {tracker.seed})")
    here = {"num_epochs": tracker.num_epochs, "last_epoch_fraction": tracker.last_epoch_fraction,
            "fixed_steps": tracker.fixed_steps, "max_steps": tracker.max_steps if saved.get("max_steps") else 0}
    if _run_length_words(saved) != _run_length_words(here):
        changed.append(f"{_run_length_words(saved)} (now {_run_length_words(here)})")
    if changed:
        raise ValueError(
            f"Checkpoint {folder} was saved with {', '.join(changed)}: GEKO's saved plans, curriculum and schedule "
            "were laid out for those. Resume with the settings it was saved with, or start a new run from the saved "
            "model (model_name_or_path=the checkpoint folder, without resume_from_checkpoint)."
        )
