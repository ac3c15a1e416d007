"""`GEKOCallback`: the epoch-level half of GEKO (repartition, plan, schedule, logs) as an HF TrainerCallback.

It holds the run's `TrainerRun` (run.py, the public handle `trainer.geko`) and binds it to the trainer at init.
Used alone (`Trainer(..., callbacks=[GEKOCallback()])`) it finds the trainer that is initialising it and swaps in
a class with `GEKOMixin` in front (class_swap.py; the sampler, loss and checkpoint hooks are Trainer methods no
callback event can replace), so the callback-only path runs the same code as `GEKOTrainer`.

Callbacks observe; this one is the deliberate exception. Everything it changes in the Trainer's state, and why
(under the `observe` policy: none of it, the Trainer's run is the stock one):
    trainer.__class__       the class swap above (callback-only path), once, at init
    trainer.geko            the run (the public handle), at init
    state.max_steps         at each epoch start: the real run's end (GEKO's epochs shrink); at an early end: the step
                            reached (without max_steps; with max_steps it is the user's and stays)
    state.logging_steps, state.eval_steps, state.save_steps
                            re-converted from fractional *_steps against the real run's length (compute_steps)
    state.epoch             after each step and at each epoch end: epochs of GEKO's plan done (HF divides by the
                            first epoch's length)
    lr_scheduler            its lambdas' time axis is re-targeted at each epoch start so the schedule ends with the
                            run (schedule.py; the lambdas were wrapped once, in create_scheduler)
    progress bar total      the real run's steps (ProgressCallback's bar)
    control.should_training_stop
                            set when nothing is left to train (every sample FREEZE, pruned or exhausted)
    the callback order      GEKO's callback runs before the user's, so theirs see the corrected state (mixin.train)

Event order inside HF's loop (transformers 5.x), and what GEKO does there:
    on_train_begin   check settings that cannot work
    on_epoch_begin   fix this epoch's plan (checked equal on every rank); stretch LR schedule, max_steps and
                     progress bar to the real length
    (sampler)        yields the plan; compute_loss records per-sample loss/correct/confidence
    on_step_end      keep state.epoch truthful (HF divides by the FIRST epoch's length)
    on_epoch_end     gather the records, update the state and the data map, repartition, log, stop if nothing is
                     left to train
    on_train_end     the efficiency report; the data map written to output_dir
"""
from __future__ import annotations

import inspect
import logging

import numpy as np
from transformers import TrainerCallback

from ..core.buckets import FREEZE
from ..core.config import GEKOConfig
from ..core.policies import GEKOPolicy
from ..core.tracker import GEKOTracker, partition_line
from ..report.banner import run_banner, run_summary
from ..report.text import data_map_line, format_report, region_shares
from .class_swap import swap_in_geko
from .contract import check_private_methods, check_transformers_version
from .mixin import GEKOMixin
from .preflight import check_train_dataset, refuse_unsupported_trainer
from .run import TrainerRun
from .schedule import retarget

__all__ = ["GEKOCallback"]

logger = logging.getLogger("geko_hf")


class GEKOCallback(TrainerCallback):
    """GEKO for the stock Trainer. Arguments as GEKOTrainer's: config, compute_correctness, compute_confidence,
    compute_sample_loss. One callback per Trainer: a second Trainer needs a new GEKOCallback()."""

    def __init__(self, config: GEKOConfig | None = None, compute_correctness=None, compute_confidence=None,
                 compute_sample_loss=None, observe_only: bool = False):
        self.run = TrainerRun(config, hooks={"compute_sample_loss": compute_sample_loss,
                                             "compute_correctness": compute_correctness,
                                             "compute_confidence": compute_confidence}, observe_only=observe_only)
        self.trainer = None

    @classmethod
    def bound_to(cls, trainer, config: GEKOConfig | None = None, **hooks) -> "GEKOCallback":
        """A new callback bound to `trainer`, a GEKOMixin class in its __init__: the setup GEKOTrainer and
        GEKOSFTTrainer share (no need to find the trainer on the stack)."""
        callback = cls(config, **hooks)
        callback.bind(trainer)
        return callback

    # the run's parts, as attributes of the callback (tests, benchmarks and user code read them here)
    @property
    def tracker_class(self):
        return self.run.tracker_class

    @tracker_class.setter
    def tracker_class(self, cls):  # the one extension point: benchmarks plug baseline selection policies here
        self.run.tracker_class = cls

    @property
    def tracker(self) -> GEKOTracker | None:
        return self.run.tracker

    @property
    def loop(self):
        return self.run.loop

    @property
    def buffer(self):
        return self.run.buffer

    @property
    def config(self) -> GEKOConfig | None:
        return self.run.config

    @property
    def hooks(self) -> dict:
        return self.run.hooks

    # -- wiring -------------------------------------------------------------------------------------
    def on_init_end(self, args, state, control, **kwargs):
        trainer = _find_initialising_trainer()
        if trainer is not self.trainer or getattr(trainer, "geko", None) is not self.run:
            self.attach(trainer)
        check_train_dataset(trainer.train_dataset)

    def attach(self, trainer) -> None:
        """Make `trainer` a GEKO trainer (mixes GEKOMixin into its class) bound to this callback's run."""
        refuse_unsupported_trainer(trainer)
        swap_in_geko(trainer)
        self.bind(trainer)

    def bind(self, trainer) -> None:
        """Bind this callback's run to `trainer` (a GEKOMixin trainer), after checking the trainer's contract."""
        if self.trainer is not None and self.trainer is not trainer:
            # Sharing one callback would share one tracker, buffer and schedule between two runs.
            raise ValueError(
                f"This GEKOCallback already belongs to another trainer ({type(self.trainer).__name__} at "
                f"{id(self.trainer):#x}). Pass a new GEKOCallback() to each Trainer (e.g. create it inside your loop "
                "over seeds or folds)."
            )
        check_transformers_version()
        check_private_methods(trainer, GEKOMixin)
        trainer.geko = self.run
        self.run.callback, self.run.trainer = self, trainer
        self.trainer = trainer

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
        _warn_epochwise_under_max_steps(args, self.run.follows_trainer)
        if args.train_sampling_strategy not in ("random", None) and not self.run.follows_trainer:
            raise ValueError(
                f"train_sampling_strategy={args.train_sampling_strategy!r} replaces the training sampler, which "
                "GEKO needs for its epoch plan. Use train_sampling_strategy='random' (the default) with GEKO."
            )
        if args.max_steps <= 0 and not self.run.schedule_warped and not self.run.follows_trainer:
            scheduler = kwargs.get("lr_scheduler")
            logger.warning(
                "GEKO cannot stretch this learning-rate scheduler (%s: only LambdaLR schedules, which every "
                "lr_scheduler_type of TrainingArguments builds, are stretched). It keeps counting toward the full-data "
                "run's length, so when GEKO's epochs shrink the run ends before the schedule does and the LR never "
                "reaches its end value. Use a TrainingArguments lr_scheduler_type (or a LambdaLR) for a schedule "
                "that ends with the run%s.", type(scheduler).__name__,
                " (with DeepSpeed: remove `scheduler` from the DeepSpeed config, and HF builds one)"
                if getattr(args, "deepspeed", None) else "")
        self.run.begin_train()
        if state.is_world_process_zero and self.config.log_bucket_stats and self.run.banner:
            print(run_banner(args, self.trainer.model, self.tracker), flush=True)
        if self.run.close_epoch_at_begin:  # resumed from a checkpoint of an epoch's last step: close it now
            self.run.close_epoch_at_begin = False
            self.on_epoch_end(args, state, control, **kwargs)

    def on_epoch_begin(self, args, state, control, lr_scheduler=None, **kwargs):
        trainer, run, tracker = self.trainer, self.run, self.tracker
        if len(trainer.train_dataset) != tracker.num_samples:
            raise ValueError(
                f"The train_dataset changed length during training, from {tracker.num_samples} to "
                f"{len(trainer.train_dataset)} rows: GEKO's per-sample state is indexed by row. Keep the dataset "
                "fixed while training (add or drop rows between runs, not inside one)."
            )
        epoch = tracker.epoch
        if run.follows_trainer:  # observe: the stock epoch, untouched; only where it starts is kept
            if not run.in_epoch:
                run.epoch_start_step = state.global_step
            run.in_epoch = True
            return
        run.sampler.set_epoch(epoch)  # also on resume, where HF's skip wrapper hides set_epoch
        self.loop.check_plan(trainer.accelerator)  # a collective on N processes (skipped if end_epoch did it)
        planned = len(tracker.plan(epoch))
        run.steps_this_epoch = planned // tracker.unit
        if not run.in_epoch:  # (in_epoch is already True when resuming mid-epoch: keep the saved start)
            run.epoch_start_step = state.global_step
        run.in_epoch = True
        # later epochs: projected from today's buckets, at least one step each (so HF's own max_steps check
        # never ends the run early); re-projected at every epoch start, exact in the last epoch.
        future = sum(max(tracker.projected_length(e) // tracker.unit, 1)
                     for e in range(epoch + 1, tracker.num_epochs))
        end_step = run.epoch_start_step + run.steps_this_epoch + future
        if args.max_steps <= 0:
            state.max_steps = end_step
            # fractional logging/eval/save_steps are shares of the run: HF converts them once, from the full-data
            # step count (TrainerState.compute_steps); re-converted from the shortened run's
            state.compute_steps(args, end_step)
            if run.schedule_warped:  # a ratio warmup is a share of the run trained (HF's docs), not of the
                # full-data count the schedule was built with (issue 33: 0.3 became 47 percent of a shortened run)
                built = args.get_warmup_steps(run.schedule_total or end_step)
                retarget(lr_scheduler or trainer.lr_scheduler, state.global_step, end_step,
                         args.get_warmup_steps(end_step), built)
            _set_progress_total(trainer, end_step)

    def on_step_end(self, args, state, control, **kwargs):
        run = self.run
        if run.steps_this_epoch and not run.follows_trainer:
            done = state.global_step - run.epoch_start_step
            share = self.tracker.epoch_share(self.tracker.epoch)
            state.epoch = self.tracker.epoch + share * min(done / run.steps_this_epoch, 1.0)

    def on_epoch_end(self, args, state, control, **kwargs):
        trainer, tracker = self.trainer, self.tracker
        epoch = tracker.epoch
        row = self.loop.end_epoch(trainer.accelerator)  # a collective on N processes: every rank gets here
        self.run.in_epoch = False
        if not self.run.follows_trainer:
            state.epoch = epoch + row["epoch_share"]  # a run stopped mid-epoch ends at its fraction
        shares = region_shares(tracker.data_map)
        if state.is_world_process_zero and self.config.log_bucket_stats:
            # observe routes nothing: its buckets are no news; the map is
            print(data_map_line(row["epoch"], shares) if self.run.follows_trainer else partition_line(row), flush=True)
        trainer.log({**_log_payload(row, tracker), **{f"geko/{k}_share": v for k, v in shares.items()}})
        if not control.should_training_stop and not self.run.follows_trainer and nothing_left(tracker):
            where = (f"step {state.global_step} of max_steps={args.max_steps}" if args.max_steps > 0 else
                     f"{tracker.epoch}/{tracker.num_epochs} epochs, step {state.global_step}")
            msg = f"[GEKO] After epoch {tracker.epoch}: {early_end_reason(tracker)}. Training ends early ({where})."
            if state.is_world_process_zero:
                print(msg, flush=True)
            control.should_training_stop = True
            state.max_steps = state.global_step  # the progress total tells the truth about the early end
            _set_progress_total(trainer, state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        if self.tracker is None or not self.tracker.history:
            return
        report = self.run.efficiency_report()
        paths = self.run.write_data_map(args.output_dir) if state.is_world_process_zero and self.config.data_map else []
        if state.is_world_process_zero and self.config.log_bucket_stats:
            if paths:
                print(f"[GEKO] Data map of {self.tracker.num_samples:,} samples: {', '.join(paths)}", flush=True)
            if not self.run.follows_trainer:  # (observe trains what the stock run trains: nothing saved to report)
                print(format_report(report), flush=True)
            if self.run.banner:
                print(run_summary(report, state.log_history), flush=True)

    def efficiency_report(self) -> dict:
        return self.run.efficiency_report()


def nothing_left(tracker: GEKOTracker) -> bool:
    """Whether the run has epochs to go but no sample left to train in the next one."""
    return len(tracker.plan(tracker.epoch)) == 0 and (tracker.epoch < tracker.num_epochs or tracker.fixed_steps)


def early_end_reason(tracker: GEKOTracker) -> str:
    """Why the next epoch's plan is empty, in words true of the state. An empty random draw never empties a plan
    (selection.one_step); issue 34's run printed "every sample is FREEZE ..." with one LIGHT sample left."""
    if not isinstance(tracker.policy, GEKOPolicy):
        return f"Nothing left to train: the selection policy {tracker.policy.name!r} planned no sample"
    cfg, s = tracker.config, tracker.state
    left = ~s.pruned & (s.bucket != FREEZE) & (s.times_seen < cfg.max_times_seen)
    n = int(left.sum())
    if n == 0:
        return "Nothing left to train: every sample is FREEZE, pruned or at max_times_seen"
    if cfg.stuck_after and cfg.stuck_sample_rate == 0 and not (left & ~s.stuck).any():
        return (f"Nothing left to train: the {n} samples not FREEZE are all stuck (wrong without progress, likely "
                "label errors) and stuck_sample_rate is 0")
    passes = int((cfg.max_times_seen - s.times_seen[left].astype(np.int64)).sum())
    return (f"Not one optimizer step left to train: the {n} samples not FREEZE have {passes} passes left under "
            f"max_times_seen={cfg.max_times_seen}, and a step takes {tracker.unit}")


def _warn_epochwise_under_max_steps(args, follows_trainer: bool) -> None:
    """Under max_steps GEKO runs more, shorter epochs than the stock Trainer (down to one optimizer step when few
    samples are left to train), so what HF does once an epoch (eval_strategy / save_strategy 'epoch') runs more
    often: issue 34's max_steps=90 run evaluated and saved far more often than the stock run."""
    epochwise = [name for name in ("eval_strategy", "save_strategy") if getattr(args, name, None) == "epoch"]
    if args.max_steps > 0 and epochwise and not follows_trainer:
        logger.warning(
            "GEKO with max_steps=%d and %s='epoch': GEKO's epochs shrink as samples are mastered (to one optimizer "
            "step when few are left), so this runs once per GEKO epoch, more often than in the stock run. Use 'steps' "
            "with eval_steps / save_steps to keep their number.", args.max_steps, "='epoch' and ".join(epochwise))


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
