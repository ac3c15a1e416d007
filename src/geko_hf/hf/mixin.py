"""`GEKOMixin`: the overrides that wire GEKO into any `Trainer` subclass (Trainer, Seq2SeqTrainer, TRL's SFTTrainer).

`GEKOTrainer = GEKOMixin + Trainer` (trainer.py), `GEKOSFTTrainer = GEKOMixin + SFTTrainer` (sft.py); the
callback-only path mixes it into the trainer's class at init (`geko_class_for`). Every override talks to the
trainer's `TrainerRun` (run.py), never to the callback. Documented override points first (`get_train_dataloader`,
`create_scheduler`, `compute_loss`, `train`, `save_model`, `log`); the private ones are checked at init by
contract.py, so a transformers release that changes them fails there with the supported range in the message.
"""

from __future__ import annotations

import logging
import warnings

import torch
from transformers import Trainer

from ..core.checkpoint import STATE_FILE, newest_complete_checkpoint
from ..core.label_issues import tracker_label_issues
from ..training.ids import ID_COLUMN, IdCollator, missing_ids_error, with_ids
from ..training.importance import output_tensor, weight_sample_gradients
from ..training.sampler import GEKOSampler
from ..training.stats import check_one_sample_per_sequence, sample_stats
from .alignment import shifts_labels
from .contract import initial_values_positions
from .preflight import check_train_dataset, data_parallel_batch
from .run import TrainerRun
from .schedule import install_warp

logger = logging.getLogger("geko_hf")


class GEKOMixin:
    """Overrides that wire GEKO into any `Trainer` subclass; each one asks the trainer's `TrainerRun`."""

    geko: TrainerRun  # the run: state, report, data map (the public handle, trainer.geko)

    # -- data ---------------------------------------------------------------------------------------
    def get_train_dataloader(self):
        if self.train_dataset is None:
            return super().get_train_dataloader()  # HF's own error: training requires a train_dataset
        # Checked again here: a train_dataset assigned after init never met the check of on_init_end.
        check_train_dataset(self.train_dataset)
        # Ids must index the FINAL train_dataset (TRL tokenises/filters in __init__), so attach them here.
        self.train_dataset = with_ids(self.train_dataset)
        if not isinstance(self.data_collator, IdCollator):
            self.data_collator = IdCollator(self.data_collator)
        unit, batch = data_parallel_batch(self)
        self.geko.make_tracker(self.args, self.train_dataset, unit, batch)
        return super().get_train_dataloader()

    def _get_train_sampler(self, train_dataset=None):
        # Private (the sampler hook of get_train_dataloader); checked by contract.py. The run keeps a direct
        # reference: accelerate's get_sampler() returns None on N processes.
        run = self.geko
        if run.follows_trainer:  # observe: the stock Trainer's own sampler, order and length
            run.sampler = None
            return super()._get_train_sampler(train_dataset)
        run.sampler = GEKOSampler(run.tracker, epoch=run.tracker.epoch)
        return run.sampler

    def _set_signature_columns_if_needed(self):
        # Private (remove_unused_columns' column list); checked by contract.py.
        super()._set_signature_columns_if_needed()
        if ID_COLUMN not in self._signature_columns:  # else remove_unused_columns drops the ids
            self._signature_columns.append(ID_COLUMN)

    # -- schedule -----------------------------------------------------------------------------------
    def create_scheduler(self, num_training_steps, optimizer=None):
        run = self.geko
        if run.follows_trainer:
            return super().create_scheduler(num_training_steps, optimizer)
        # On resume, rebuild the ORIGINAL schedule: HF recomputes num_training_steps from the resumed
        # (shorter) epoch, but the warp anchors restored from scheduler.pt refer to the original length.
        total = run.schedule_total or num_training_steps
        run.schedule_total = total
        scheduler = super().create_scheduler(total, optimizer)
        run.schedule_warped = install_warp(self.lr_scheduler, total)
        return scheduler

    # -- checkpoints and resume ---------------------------------------------------------------------
    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        if isinstance(resume_from_checkpoint, bool) and resume_from_checkpoint:
            # HF takes the highest checkpoint-N even when a killed save left it incomplete.
            resume_from_checkpoint = newest_complete_checkpoint(self.args.output_dir)
            if resume_from_checkpoint is None:
                raise ValueError(
                    f"No complete checkpoint (with trainer_state.json and {STATE_FILE}) in output_dir "
                    f"{self.args.output_dir!r} to resume from. Pass a checkpoint path, or train without resuming."
                )
        self.geko.start(resume_from_checkpoint or None)
        self._geko_callback_before_the_users()
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def _geko_callback_before_the_users(self):
        """GEKO's callback corrects state.epoch on each step and epoch end: callbacks the user passed run after it,
        so they see the corrected value. transformers' own (flow, reporting, progress) keep their place in front."""
        callbacks = self.callback_handler.callbacks
        ours = self.geko.callback
        if ours in callbacks:
            callbacks.remove(ours)
            first = next((i for i, cb in enumerate(callbacks) if not type(cb).__module__.startswith("transformers.")),
                         len(callbacks))
            callbacks.insert(first, ours)

    def save_model(self, output_dir=None, _internal_call=False):
        super().save_model(output_dir, _internal_call)
        # Inside _save_checkpoint this runs before trainer_state.json is written (the completeness marker). Only
        # HF's own checkpoint saves (_internal_call, on every rank) gather this epoch's records across ranks: a user's
        # save_model() may run on rank 0 only (as the stock Trainer allows under DDP) and must not wait for the others.
        self.geko.save(output_dir or self.args.output_dir, self.accelerator, self.args.should_save,
                            gather=_internal_call)

    def set_initial_training_values(self, args, dataloader):
        # Private (the run's length, computed once from the first epoch); signature and result checked by contract.py.
        values = list(super().set_initial_training_values(args, dataloader))
        if self.geko.follows_trainer:  # observe: the stock Trainer's epochs, steps and max_steps
            return tuple(values)
        epochs_at, steps_at, batches_at = initial_values_positions(values, args, dataloader)
        # HF sizes every epoch like the first epoch of this train() call and silently drops the batches of a
        # longer one. After a resume that first epoch may be a short GEKO epoch: size epochs by the largest
        # possible plan (every sample once) instead; shorter epochs just end early.
        tracker = self.geko.tracker
        longest = -(-tracker.num_samples // tracker.unit)
        if values[steps_at] < longest:
            values[steps_at], values[batches_at] = longest, longest * args.gradient_accumulation_steps
        if args.max_steps > 0:
            # HF turns max_steps into a number of epochs of the FIRST epoch's length; GEKO epochs shrink, so the run
            # would end before max_steps. Every GEKO epoch has at least one step: max_steps epochs always suffice,
            # and HF stops at max_steps (or GEKO, when nothing is left to train).
            values[epochs_at] = args.max_steps
        return tuple(values)

    def log(self, logs, *args, **kwargs):
        run = self.geko
        if "train_samples_per_second" in logs and logs.get("train_runtime") and run.tracker is not None:
            # HF counts full-data epochs here (its num_train_samples); GEKO trains fewer samples.
            logs["train_samples_per_second"] = round(run.passes_this_call() / logs["train_runtime"], 3)
        return super().log(logs, *args, **kwargs)

    def _init_training_state(self, max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint,
                             trial):
        # Private (where a resumed run continues); checked by contract.py.
        epochs_trained, steps_in_epoch = super()._init_training_state(
            max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint, trial)
        run = self.geko
        if resume_from_checkpoint is None:
            return epochs_trained, steps_in_epoch
        if run.follows_trainer:
            # observe: HF's own position (its epochs are the stock ones); an epoch GEKO saw open but HF has finished
            # (saved on its last step, before on_epoch_end) is closed when training begins
            if run.restored and run.in_epoch and epochs_trained > run.tracker.epoch:
                run.close_epoch_at_begin = True
            elif not run.restored:
                run.follow_position(epochs_trained, self.state.global_step,
                                    steps_in_epoch // self.args.gradient_accumulation_steps)
            return epochs_trained, steps_in_epoch
        if not run.restored:
            # A checkpoint without GEKO state (a stock Trainer's): its epochs were full-data ones, so HF's position
            # holds, and GEKO's epoch counter follows it (state.epoch, max_steps and the schedule's end with it).
            run.follow_position(epochs_trained, self.state.global_step,
                                steps_in_epoch // self.args.gradient_accumulation_steps)
            return epochs_trained, steps_in_epoch
        # HF assumes equal epochs (epoch = global_step // steps_per_epoch); GEKO epochs shrink, so the
        # checkpoint's own epoch counter and epoch start decide where to continue.
        tracker = run.tracker
        done = self.state.global_step - run.epoch_start_step if run.in_epoch else 0
        if run.in_epoch and done * tracker.unit >= len(tracker.plan(tracker.epoch)):
            # Saved on the epoch's last step (HF saves before on_epoch_end): the epoch is closed when training
            # begins, and HF starts at the next one, as the uninterrupted run went on. Re-entering the finished
            # epoch found no batch left: HF skipped its RNG restore, and under ignore_data_skip ended the run.
            run.close_epoch_at_begin = True
            return tracker.epoch + 1, 0
        epochs_trained, steps_in_epoch = tracker.epoch, done * self.args.gradient_accumulation_steps
        if self.args.ignore_data_skip:
            # HF would restart the epoch's data from its first batch and train the first part twice (and
            # the run would end `done` steps early). GEKO's sampler starts at the saved position instead:
            # the exact resume of the default path, without fast-forwarding through the dataloader.
            run.sampler.start_at(epochs_trained, done * tracker.unit)
            steps_in_epoch = 0
        return epochs_trained, steps_in_epoch

    # -- per-sample statistics ----------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        ids = inputs.pop(ID_COLUMN, None)  # before model(**inputs): the model has no such argument
        if not model.training:
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        if ids is None:
            raise missing_ids_error(inputs)
        # The parent may pop `labels` (label smoothing, compute_loss_func): the statistics read this copy.
        batch = dict(inputs)
        run = self.geko
        label_name = self._geko_label_name(batch)
        if label_name not in batch and "label" not in batch and not all(run.hooks.values()):
            _warn_no_labels_once(self)
        if not run.sequences_checked:  # a run's first batch: one host sync, later batches come from the same collator
            check_one_sample_per_sequence(batch, len(ids), label_name)
            run.sequences_checked = True
        # The stock loss, unchanged; the statistics come from the SAME outputs, outside the autograd graph.
        loss, outputs, in_graph = self._loss_and_outputs(model, inputs, num_items_in_batch)
        with torch.no_grad():
            stats = sample_stats(outputs, batch, run.hooks, num_samples=len(ids), shift_labels=self._geko_shift(model),
                                 label_name=label_name)
        run.record(ids, stats)
        weights = run.sample_weights(ids)  # a device-side lookup: no host sync per step
        if weights is not None:
            for graph_outputs in in_graph:
                weight_sample_gradients(graph_outputs, batch, weights, num_samples=len(ids))
        return (loss, outputs) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None, **kwargs):
        # evaluate()/predict() on a dataset that carries GEKO's id column (trainer.train_dataset after train()): an
        # unlabelled batch goes straight to model(**inputs), not through compute_loss, so the ids are dropped here.
        if ID_COLUMN in inputs:
            inputs = {k: v for k, v in inputs.items() if k != ID_COLUMN}
        return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys, **kwargs)

    def _geko_label_name(self, batch) -> str:
        """The batch key GEKO's default statistics read the labels from: `labels`, else the one label input the
        Trainer's label_names (TrainingArguments.label_names, or the model's own: QA's start/end positions) finds in
        the batch. Several label inputs and no `labels` cannot be scored by default: refused, not guessed (the
        input_ids fallback would score a prompt the model is not trained on)."""
        if "labels" in batch or "label" in batch:
            return "labels"
        present = [name for name in (getattr(self, "label_names", None) or []) if name in batch]
        if len(present) > 1 and not all(self.geko.hooks.values()):
            raise ValueError(
                f"label_names={present} gives this model {len(present)} label inputs and GEKO's default per-sample "
                "statistics read one label tensor, so pass compute_sample_loss=, compute_correctness= and "
                "compute_confidence= (each maps (outputs, batch) to one value per sample) to the GEKO trainer or "
                "callback."
            )
        return present[0] if len(present) == 1 else "labels"

    def _geko_shift(self, model) -> bool | None:
        """Whether the model's logit t predicts label t + 1 (decided once per trainer; see alignment.py)."""
        if not hasattr(self, "_geko_shift_labels"):
            self._geko_shift_labels = shifts_labels(self.accelerator.unwrap_model(model))
        return self._geko_shift_labels

    def _loss_and_outputs(self, model, inputs, num_items_in_batch):
        """The parent's loss, the outputs of the forward pass it ran (without a second forward), and every output the
        loss was computed from: the gradient-carrying ones (they differ when TRL computes the loss on a logits forward
        and its metrics on a fused one under no_grad: per-sample gradient weights must go to the former; a
        compute_loss with two forwards of the batch, as R-Drop's, needs the weights on both).

        The stock `Trainer.compute_loss` hands its outputs back for free. A parent that overrides compute_loss may
        not: TRL's SFTTrainer runs an EXTRA full-logits forward for `return_outputs=True` (its fused LM head builds
        no logits). There the outputs are taken from the model call itself by a forward hook (the last call wins:
        with compute_loss_func or label smoothing TRL runs a logits forward, then a fused one for its metrics).
        """
        parent = super().compute_loss
        if getattr(parent, "__func__", None) is Trainer.compute_loss:
            loss, outputs = parent(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
            return loss, outputs, [outputs]
        captured = []
        handle = model.register_forward_hook(lambda _module, _args, out: captured.append(out))
        try:
            loss = parent(model, inputs, return_outputs=False, num_items_in_batch=num_items_in_batch)
        finally:
            handle.remove()
        if not captured:
            raise RuntimeError(
                f"GEKO saw no call of the model inside {type(self).__name__}.compute_loss, so it has no outputs to "
                "take per-sample statistics from. A compute_loss override must call `model(**inputs)`, not "
                "`model.forward`."
            )
        in_graph = [out for out in captured if getattr(output_tensor(out)[0], "requires_grad", False)]
        return loss, captured[-1], in_graph or captured[-1:]

    # -- the seed's conveniences --------------------------------------------------------------------
    def get_efficiency_report(self) -> dict:
        return self.geko.efficiency_report()

    def get_pruned_count(self) -> int:
        tracker = self.geko.tracker
        return 0 if tracker is None else int(tracker.state.pruned.sum())

    def get_label_issues(self, k: int | None = None):
        """Every observed training sample, most likely mislabelled first, as a `datasets.Dataset`: its readable fields
        (text, label), `label_issue_score` (higher = more likely wrong) and `label_issue_rank` (1 = first), with the
        data map's statistics; `k` keeps the top k. The same as `trainer.geko.label_issues(k)`; the ranking is
        geko_hf.core.label_issues.DEFAULT_RANKING, chosen by benchmarks/label_issues.py."""
        return self.geko.label_issues(k)

    def get_suspect_samples(self, k: int = 20) -> list[dict]:
        """Deprecated since 0.4 (removed in 0.5): use `get_label_issues(k)`, which returns the same ranking with a
        score for every sample. The k training samples whose label is most likely wrong, each with its row's scalar
        fields (text, label)."""
        warnings.warn("trainer.get_suspect_samples(k) is deprecated and will be removed in geko_hf 0.5: use "
                      "trainer.get_label_issues(k) (the same ranking, a datasets.Dataset with label_issue_score and "
                      "label_issue_rank for every sample).", FutureWarning, stacklevel=2)
        tracker = self.geko.tracker
        if tracker is None:
            raise RuntimeError("No GEKO state yet: call trainer.train() first.")
        rows = tracker_label_issues(tracker, k)
        return [{**r, **_scalar_fields(self.train_dataset, r["id"])} for r in rows]


def _scalar_fields(dataset, i: int) -> dict:
    """A dataset row's strings and numbers (the text and label a reader needs; not token ids)."""
    try:
        row = dataset[int(i)]
    except (IndexError, KeyError, TypeError, ValueError):  # a row that cannot be read just has no text
        return {}
    if not isinstance(row, dict):
        return {}
    return {k: v for k, v in row.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)
            and k != "geko_sample_id"}


def _warn_no_labels_once(trainer) -> None:
    if getattr(trainer, "_geko_warned_no_labels", False):
        return
    trainer._geko_warned_no_labels = True
    logger.warning(
        "The training batch has no `labels` (the model computes its own loss): GEKO scores a token model on its "
        "input_ids as a causal LM would (next-token NLL, padding excluded) and cannot score other heads. If that is "
        "not your model's objective, pass compute_sample_loss=, compute_correctness= and compute_confidence=."
    )
