"""One process of the multi-process tests: `torchrun ... tests/mp_worker.py OUT '{json options}'` writes
OUT/rank<RANK>.json; `train(...)` runs the same thing in this process (the 1-process reference).

The per-sample statistics come from `RowStatistics` (a pure function of the row and the epoch), so GEKO's state
depends only on which passes are recorded and in which order: a 2-process run and a 1-process run with the same
global batch must end with the same state, bit for bit, whatever the float arithmetic of the model does.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
from hf_helpers import RowStatistics, make_args, tiny_gpt2, toy_lm_dataset  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from geko_hf import GEKOConfig, GEKOTrainer  # noqa: E402
from geko_hf.training.ids import ID_COLUMN  # noqa: E402

CONFIG = dict(bucket_weights=[2.5, 1, 1])  # HARD samples are drawn up to 3 times in an epoch: repeats
EPOCHS, ROWS = 6, 64


def state_digest(tracker) -> str:
    return _digest(tracker.state.state_dict())


def map_digest(tracker) -> str:
    """The data map's arrays (every observation's dynamics), gathered in global order."""
    return _digest(tracker.data_map.state_dict())


def _digest(state: dict) -> str:
    return hashlib.sha1(b"".join(state[k].tobytes() for k in sorted(state) if hasattr(state[k], "tobytes"))).hexdigest()


class Spy(TrainerCallback):
    """What each rank trained (ids per micro-batch, with the global step), what the tracker recorded (one array
    per epoch end, in the order applied) and each epoch's plan."""

    def __init__(self, trainer, rank0_save_step=None, save_dir=None):
        self.trainer, self.rank0_save_step, self.save_dir = trainer, rank0_save_step, save_dir
        self.seen, self.records, self.plans = [], [], {}
        original = trainer.compute_loss

        def compute_loss(model, inputs, *args, **kwargs):
            if ID_COLUMN in inputs and model.training:
                self.seen.append([trainer.state.global_step, inputs[ID_COLUMN].tolist()])
            return original(model, inputs, *args, **kwargs)

        trainer.compute_loss = compute_loss

    def on_train_begin(self, args, state, control, **kwargs):
        tracker = self.trainer.geko.tracker
        record = tracker.record

        def spy(ids, *a, **k):
            self.records.append(np.asarray(ids).tolist())
            return record(ids, *a, **k)

        tracker.record = spy

    def on_epoch_begin(self, args, state, control, **kwargs):
        tracker = self.trainer.geko.tracker
        self.plans[tracker.epoch] = tracker.plan(tracker.epoch).tolist()

    def on_step_end(self, args, state, control, **kwargs):
        # a user's save on the main process only, mid-epoch (the stock Trainer allows it under DDP)
        if state.global_step == self.rank0_save_step and self.trainer.is_world_process_zero():
            self.trainer.save_model(self.save_dir)


def train(out, batch: int, resume: str | None = None, save_steps: int | None = None,
          rank0_save_step: int | None = None, reverse_plan_rank: int | None = None, args: dict | None = None) -> dict:
    """`args`: more TrainingArguments (an engine: fsdp=..., deepspeed=..., use_cpu=False on a GPU)."""
    if reverse_plan_rank is not None and int(os.environ.get("RANK", 0)) == reverse_plan_rank:
        from geko_hf.core.tracker import GEKOTracker

        make_plan = GEKOTracker.make_plan
        GEKOTracker.make_plan = lambda self, epoch: make_plan(self, epoch)[::-1].copy()  # this rank plans apart
    rows = RowStatistics()
    saving = dict(save_strategy="steps", save_steps=save_steps) if save_steps else {}
    training_args = make_args(Path(out), num_train_epochs=EPOCHS, per_device_train_batch_size=batch,
                              **{**saving, **(args or {})})
    training_args.output_dir = str(out)
    trainer = GEKOTrainer(model=tiny_gpt2(), args=training_args, train_dataset=toy_lm_dataset(n=ROWS, random_every=4),
                          callbacks=[rows], geko_config=GEKOConfig(**CONFIG), **rows.hooks())
    spy = Spy(trainer, rank0_save_step, os.path.join(out, "rank0_save"))
    trainer.add_callback(spy)
    trainer.train(resume_from_checkpoint=resume)
    tracker = trainer.geko.tracker
    return {"digest": state_digest(tracker), "map_digest": map_digest(tracker),
            "map_observations": int(tracker.data_map.statistics()["observations"].sum()), "history": tracker.history, "seen": spy.seen, "records": spy.records,
            "plans": {str(e): p for e, p in spy.plans.items()}, "global_step": trainer.state.global_step,
            "engine": type(trainer.model_wrapped).__name__, "distributed_type": str(trainer.accelerator.distributed_type)}


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    out, options = sys.argv[1], json.loads(sys.argv[2])
    result = train(out, **options)
    with open(os.path.join(out, f"rank{os.environ['RANK']}.json"), "w") as f:
        json.dump(result, f)
