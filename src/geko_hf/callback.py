"""`GEKOCallback`: the epoch-level half of GEKO (repartition, plan, schedule, logs) as an HF TrainerCallback.

Used alone (`Trainer(..., callbacks=[GEKOCallback()])`) it finds the trainer that is initialising it and
mixes `GEKOMixin` into that instance (see trainer.py), so the callback-only path runs the same code as
`GEKOTrainer`.

Event order inside HF's loop (transformers 5.x), and what GEKO does there:
    on_train_begin   check settings that cannot work
    on_epoch_begin   fix this epoch's plan; stretch LR schedule, max_steps and progress bar to the real length
    (sampler)        yields the plan; compute_loss records per-sample loss/correct/confidence
    on_step_end      keep state.epoch truthful (HF divides by the FIRST epoch's length)
    on_epoch_end     gather the records, update the state, repartition, log, stop if nothing is left to train
    on_train_end     the efficiency report
"""

from __future__ import annotations

import inspect
import logging
import math

import numpy as np
import torch
from transformers import TrainerCallback

from .checkpoint import dataset_fingerprint, load_geko_state
from .config import GEKOConfig
from .loop import GEKOLoop, StatsBuffer
from .report import format_report
from .schedule import retarget
from .tracker import GEKOTracker, partition_line

__all__ = ["GEKOCallback", "StatsBuffer"]

logger = logging.getLogger("geko_hf")


class GEKOCallback(TrainerCallback):
    """GEKO for the stock Trainer. Arguments as GEKOTrainer's: config, compute_correctness, compute_confidence,
    compute_sample_loss. One callback per Trainer: a second Trainer needs a new GEKOCallback()."""

    tracker_class = GEKOTracker  # the one extension point: benchmarks plug baseline selection policies here

    def __init__(self, config: GEKOConfig | None = None, compute_correctness=None, compute_confidence=None,
                 compute_sample_loss=None):
        self.explicit_config = config
        self.config: GEKOConfig | None = config
        self.compute_correctness = compute_correctness
        self.compute_confidence = compute_confidence
        self.compute_sample_loss = compute_sample_loss
        self.passes_at_train_begin = 0
        self.trainer = None
        self.loop: GEKOLoop | None = None  # the run: tracker, this epoch's records, persistence
        self.buffer = StatsBuffer()
        self.schedule_warped = False
        self.schedule_total: int | None = None  # the scheduler's original length (kept across resume)
        self.epoch_start_step = 0
        self.steps_this_epoch = 0
        self.in_epoch = False
        self.resume_from: str | None = None
        self.fingerprint: dict | None = None
        self.restored = False  # True once a checkpoint's GEKO state was loaded

    @property
    def tracker(self) -> GEKOTracker | None:
        return None if self.loop is None else self.loop.tracker

    @property
    def pending(self) -> list:
        return [] if self.loop is None else self.loop.pending

    @property
    def hooks(self) -> dict:
        return {"compute_sample_loss": self.compute_sample_loss, "compute_correctness": self.compute_correctness,
                "compute_confidence": self.compute_confidence}

    # -- wiring -------------------------------------------------------------------------------------
    def on_init_end(self, args, state, control, **kwargs):
        trainer = _find_initialising_trainer()
        if trainer is not self.trainer or getattr(trainer, "_geko_callback", None) is not self:
            self.attach(trainer)
        check_train_dataset(trainer.train_dataset)

    def attach(self, trainer) -> None:
        """Make `trainer` a GEKO trainer (mixes GEKOMixin into its class) bound to this callback."""
        from .trainer import geko_class_for

        refuse_unsupported_trainer(trainer)
        if self.trainer is not None and self.trainer is not trainer:
            # Sharing one callback would share one tracker, buffer and schedule between two runs.
            raise ValueError(
                f"This GEKOCallback already belongs to another trainer ({type(self.trainer).__name__} at "
                f"{id(self.trainer):#x}). Pass a new GEKOCallback() to each Trainer (e.g. create it inside your loop "
                "over seeds or folds)."
            )
        trainer.__class__ = geko_class_for(type(trainer))
        trainer._geko_callback = self
        self.trainer = trainer

    def start_run(self, resume_from: str | None) -> None:
        """Called by train(): the next dataloader gets a fresh tracker (restored from resume_from, if given)."""
        self.new_run, self.resume_from = True, resume_from

    def make_tracker(self, trainer) -> GEKOTracker:
        """Create the run's tracker for the FINAL train_dataset (TRL tokenises/filters in __init__).

        Also when the batch changed under the same run (auto_find_batch_size halves it after an OOM and restarts the
        loop): the plans' unit is the batch actually used."""
        unit, batch = data_parallel_batch(trainer)
        same_batch = self.tracker is not None and (self.tracker.unit, self.tracker.batch_size) == (unit, batch)
        if same_batch and not getattr(self, "new_run", True):
            return self.tracker
        args = trainer.args
        self.config = self.explicit_config or getattr(args, "geko_config", None) or GEKOConfig()
        n = len(trainer.train_dataset)
        tracker = self.tracker_class(
            n, self.config, seed=args.data_seed if args.data_seed is not None else args.seed,
            unit=unit, batch_size=batch, **run_length(args, n, unit),
        )
        self.loop = GEKOLoop.for_tracker(tracker, buffer=self.buffer)
        self.fingerprint = dataset_fingerprint(trainer.train_dataset)
        self.schedule_total, self.in_epoch, self.epoch_start_step = None, False, 0
        self.buffer.clear()
        self.restored, self.new_run = False, False
        if self.resume_from is not None:
            self.load_resume_state(self.resume_from)
        return self.tracker

    def sample_weights(self, ids: torch.Tensor) -> torch.Tensor | None:
        return self.loop.weights(ids)

    def passes_this_call(self) -> int:
        """Sample passes trained since this train() call began (HF's throughput metrics are per call)."""
        return self.tracker.totals["sample_passes"] - self.passes_at_train_begin

    # -- events -------------------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kwargs):
        if self.trainer is None or self.tracker is None:
            raise RuntimeError(
                "GEKOCallback was not wired into the trainer (it must be passed to Trainer(callbacks=[...]) at "
                "construction, not added later with add_callback). Or use geko_hf.GEKOTrainer."
            )
        if args.max_steps > 0:
            logger.info(
                "GEKO with max_steps=%d: the number of optimizer steps is fixed, so GEKO saves no compute; it spends "
                "the steps on samples not yet mastered (more, shorter epochs). To save compute, set num_train_epochs "
                "instead.", args.max_steps)
        if args.train_sampling_strategy not in ("random", None):
            raise ValueError(
                f"train_sampling_strategy={args.train_sampling_strategy!r} replaces the training sampler, which "
                "GEKO needs for its epoch plan. Use train_sampling_strategy='random' (the default) with GEKO."
            )
        self.buffer.clear()
        self.passes_at_train_begin = self.tracker.totals["sample_passes"] + sum(len(p[0]) for p in self.pending)

    def on_epoch_begin(self, args, state, control, **kwargs):
        trainer, tracker = self.trainer, self.tracker
        if len(trainer.train_dataset) != tracker.num_samples:
            raise ValueError(
                f"The train_dataset changed length during training, from {tracker.num_samples} to "
                f"{len(trainer.train_dataset)} rows: GEKO's per-sample state is indexed by row. Keep the dataset "
                "fixed while training (add or drop rows between runs, not inside one)."
            )
        epoch = tracker.epoch
        trainer._geko_sampler.set_epoch(epoch)  # also on resume, where HF's skip wrapper hides set_epoch
        planned = len(tracker.plan(epoch))
        self.steps_this_epoch = planned // tracker.unit
        if not self.in_epoch:  # (in_epoch is already True when resuming mid-epoch: keep the saved start)
            self.epoch_start_step = state.global_step
        self.in_epoch = True
        # later epochs: projected from today's buckets, at least one step each (so HF's own max_steps check
        # never ends the run early); re-projected at every epoch start, exact in the last epoch.
        future = sum(max(tracker.projected_length(e) // tracker.unit, 1)
                     for e in range(epoch + 1, tracker.num_epochs))
        end_step = self.epoch_start_step + self.steps_this_epoch + future
        if args.max_steps <= 0:
            state.max_steps = end_step
            if self.schedule_warped:
                warmup = args.get_warmup_steps(self.schedule_total or end_step)
                retarget(trainer.lr_scheduler, state.global_step, end_step, warmup)
            _set_progress_total(trainer, end_step)

    def on_step_end(self, args, state, control, **kwargs):
        if self.steps_this_epoch:
            done = state.global_step - self.epoch_start_step
            share = self.tracker.epoch_share(self.tracker.epoch)
            state.epoch = self.tracker.epoch + share * min(done / self.steps_this_epoch, 1.0)

    def on_epoch_end(self, args, state, control, **kwargs):
        trainer, tracker = self.trainer, self.tracker
        epoch = tracker.epoch
        row = self.loop.end_epoch(trainer.accelerator)  # a collective on N processes: every rank gets here
        self.in_epoch = False
        state.epoch = epoch + tracker.epoch_share(epoch)
        if state.is_world_process_zero and self.config.log_bucket_stats:
            print(partition_line(row), flush=True)
        trainer.log(_log_payload(row, tracker))
        if not control.should_training_stop and len(tracker.plan(tracker.epoch)) == 0 and (
                tracker.epoch < tracker.num_epochs or tracker.fixed_steps):
            msg = (f"[GEKO] Nothing left to train after epoch {tracker.epoch}: every sample is FREEZE, pruned or "
                   f"at max_times_seen. Training ends early ({tracker.epoch}/{tracker.num_epochs} epochs, step "
                   f"{state.global_step}).")
            if state.is_world_process_zero:
                print(msg, flush=True)
            control.should_training_stop = True
            state.max_steps = state.global_step  # the progress total tells the truth about the early end
            _set_progress_total(trainer, state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        if self.tracker is None or not self.tracker.history:
            return
        report = self.efficiency_report()
        if state.is_world_process_zero and self.config.log_bucket_stats:
            print(format_report(report), flush=True)

    # -- persistence (the loop writes the file; the callback adds HF's position) --------------------------
    def drain_to_pending(self) -> None:
        """Move this epoch's device-side records to host (gathered across ranks); collective on N processes."""
        self.loop.flush(self.trainer.accelerator)

    def state_payload(self) -> dict:
        return self.loop.state_payload(fingerprint=self.fingerprint, in_epoch=self.in_epoch,
                                       epoch_start_step=self.epoch_start_step, schedule_total=self.schedule_total)

    def save_state(self, folder: str) -> None:
        if self.loop is None:
            return
        # every rank takes part in the gather; only the main process writes
        self.loop.save(folder, self.trainer.accelerator, is_main_process=self.trainer.args.should_save,
                       fingerprint=self.fingerprint, in_epoch=self.in_epoch, epoch_start_step=self.epoch_start_step,
                       schedule_total=self.schedule_total)

    def load_resume_state(self, folder: str) -> None:
        """Restore everything a checkpoint holds; a stock-Trainer checkpoint gives a warning and fresh state."""
        try:
            payload = load_geko_state(folder)
        except FileNotFoundError:
            logger.warning(
                "Checkpoint %s has no GEKO state (saved by a stock Trainer?): GEKO starts from a fresh state; "
                "the model, optimizer and schedule resume as usual.", folder)
            return
        saved, ours = payload.get("fingerprint") or {}, self.fingerprint
        if saved != ours:
            raise ValueError(
                f"Checkpoint {folder} was saved for a different training dataset: its fingerprint is {saved}, the "
                f"current dataset's is {ours}. Resume with the dataset it was trained on, or start a new run."
            )
        self.loop.load(payload)
        self.in_epoch = bool(payload["in_epoch"])
        self.epoch_start_step = int(payload["epoch_start_step"])
        self.schedule_total = payload.get("schedule_total")
        self.restored = True

    def efficiency_report(self) -> dict:
        if self.tracker is None:
            raise RuntimeError("No GEKO report yet: call trainer.train() first.")
        return self.tracker.efficiency_report()


def refuse_unsupported_trainer(trainer) -> None:
    """TRL trainers other than SFTTrainer do not train one row per sample on token labels: refuse them by name."""
    for cls in type(trainer).__mro__:
        if cls.__module__.split(".")[0] != "trl":
            continue
        if cls.__name__ == "SFTTrainer":
            return
        raise ValueError(
            f"GEKO does not support TRL's {cls.__name__}: its training rows are not one sample each with token labels "
            "(preference pairs, prompt groups or generated completions), so GEKO could neither score a sample nor "
            "skip it without breaking the method. Train it without GEKOCallback; GEKO supports transformers.Trainer "
            "(and its subclasses such as Seq2SeqTrainer) and TRL's SFTTrainer."
        )


def check_train_dataset(dataset) -> None:
    """A map-style, non-empty dataset (None is left to HF: train() without one fails there)."""
    if dataset is None:
        return
    if not hasattr(dataset, "__len__") or isinstance(dataset, torch.utils.data.IterableDataset):
        raise ValueError(
            f"GEKO picks samples by index every epoch, so it needs a map-style train_dataset with a length, got "
            f"{type(dataset).__name__}. Load the data as a `datasets.Dataset` (not streaming, no to_iterable_dataset) "
            "or a torch map-style Dataset, or train this one without GEKO."
        )
    if len(dataset) == 0:
        raise ValueError("The train_dataset is empty (0 rows): GEKO has no samples to track. Check the data loading "
                         "and any filtering (TRL drops rows that end up with no tokens).")


def data_parallel_batch(trainer) -> tuple[int, int]:
    """(samples per optimizer step, samples per global micro-batch) as the Trainer really uses them.

    The micro-batch is `trainer._train_batch_size` (auto_find_batch_size changes it; DataParallel multiplies it by
    the GPUs of one process) times the data-parallel world. Ranks that share a batch (tensor, context or sequence
    parallelism) would record every sample several times and split the sampler's unit: refused.
    """
    sizes = {name: getattr(trainer, f"get_{name}_size", lambda: 1)() for name in ("tp", "cp", "sp")}
    shared = {name: size for name, size in sizes.items() if size and size > 1}
    if shared:
        raise ValueError(
            f"GEKO does not support ranks that share a batch ({', '.join(f'{k}_size={v}' for k, v in shared.items())}"
            "): every sample would be recorded once per rank of the group. Use data parallelism only (DDP, FSDP or "
            "DeepSpeed ZeRO) with GEKO."
        )
    micro = getattr(trainer, "_train_batch_size", None) or trainer.args.per_device_train_batch_size
    batch = micro * max(trainer.args.world_size, 1)
    return batch * trainer.args.gradient_accumulation_steps, batch


def run_length(args, num_samples: int, unit: int) -> dict:
    """How long the run is, in the tracker's terms: whole epochs, the share of the last one, or fixed steps.

    num_train_epochs=1.5 trains one epoch and the first half (in optimizer steps) of the next, as the stock
    Trainer does; max_steps fixes the optimizer steps, and epochs then follow one another until it is reached."""
    if args.max_steps > 0:
        steps_per_full_epoch = max(-(-num_samples // unit), 1)
        return {"num_epochs": max(-(-args.max_steps // steps_per_full_epoch), 1), "last_epoch_fraction": 1.0,
                "fixed_steps": True}
    epochs = float(args.num_train_epochs)
    if epochs <= 0:
        raise ValueError(f"num_train_epochs must be > 0 with GEKO (or set max_steps), got {epochs}.")
    whole = math.ceil(epochs)
    return {"num_epochs": whole, "last_epoch_fraction": epochs - (whole - 1), "fixed_steps": False}


def _log_payload(row: dict, tracker: GEKOTracker) -> dict:
    """Numbers for the HF log stream (report_to: TensorBoard, W&B, ...)."""
    live = max(tracker.num_samples - row["pruned"], 1)
    out = {f"geko/{name.lower()}": row[name] for name in ("FREEZE", "LIGHT", "FOCUS", "HARD")}
    out.update({f"geko/{name.lower()}_share": row[name] / live for name in ("FREEZE", "LIGHT", "FOCUS", "HARD")})
    rep = tracker.efficiency_report()
    out.update({
        "geko/pruned": row["pruned"],
        "geko/epoch_sample_passes": row["sample_passes"],
        "geko/sample_passes": rep["forward_sample_passes"],
        "geko/sample_passes_saved": rep["sample_passes_saved"],
        "geko/tokens_saved": rep["tokens_saved"],
    })
    return out


def _set_progress_total(trainer, total: int) -> None:
    from transformers.trainer_callback import ProgressCallback

    for cb in trainer.callback_handler.callbacks:
        if isinstance(cb, ProgressCallback) and cb.training_bar is not None:
            cb.training_bar.total = total
            cb.training_bar.refresh()


def _find_initialising_trainer():
    """The Trainer whose __init__ is calling on_init_end (walk up the stack to its `self`)."""
    from transformers import Trainer

    frame = inspect.currentframe()
    try:
        while frame is not None:
            candidate = frame.f_locals.get("self")
            if isinstance(candidate, Trainer):
                return candidate
            frame = frame.f_back
    finally:
        del frame
    raise RuntimeError(
        "GEKOCallback could not find the Trainer it was passed to. Pass it at construction "
        "(Trainer(..., callbacks=[GEKOCallback()])), call GEKOCallback().attach(trainer), or use GEKOTrainer."
    )
