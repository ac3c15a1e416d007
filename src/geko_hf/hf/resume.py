"""What a resume must match: a checkpoint's GEKO plans were drawn for one optimizer step, config, seed and run
length, and HF resumes by counting steps. Each check refuses a mismatch, naming what changed and the way out."""

from __future__ import annotations

import os

from ..core.config import GEKOConfig
from ..core.run_length import RunLength
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
    then_length, now_length = RunLength.from_state(saved), tracker.length
    if not saved.get("max_steps"):  # a state of geko_hf <= 0.3 kept no max_steps: compare what it kept
        now_length = RunLength(now_length.num_epochs, now_length.last_epoch_fraction, now_length.fixed_steps)
    if then_length.words() != now_length.words():
        changed.append(f"{then_length.words()} (now {now_length.words()})")
    if changed:
        raise ValueError(
            f"Checkpoint {folder} was saved with {', '.join(changed)}: GEKO's saved plans, curriculum and schedule "
            "were laid out for those. Resume with the settings it was saved with, or start a new run from the saved "
            "model (model_name_or_path=the checkpoint folder, without resume_from_checkpoint)."
        )
