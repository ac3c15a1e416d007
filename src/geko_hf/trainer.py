"""`GEKOTrainer`: the stock `transformers.Trainer` plus GEKO, through a handful of short overrides.

`GEKOMixin` holds the overrides; `GEKOTrainer = GEKOMixin + Trainer`. The callback-only path
(`Trainer(..., callbacks=[GEKOCallback()])`) mixes the same class into the trainer instance at init, so
both ways in run literally the same code.
"""

from __future__ import annotations

import logging

import torch
from transformers import Trainer

from .callback import GEKOCallback
from .checkpoint import STATE_FILE, newest_complete_checkpoint
from .alignment import shifts_labels
from .ids import ID_COLUMN, IdCollator, missing_ids_error, with_ids
from .importance import output_tensor, weight_sample_gradients
from .sampler import GEKOSampler
from .schedule import install_warp
from .stats import sample_stats

logger = logging.getLogger("geko_hf")


class GEKOMixin:
    """Overrides that wire GEKO into any `Trainer` subclass (Trainer, TRL's SFTTrainer, ...)."""

    _geko_callback: GEKOCallback

    # -- data ---------------------------------------------------------------------------------------
    def get_train_dataloader(self):
        # Ids must index the FINAL train_dataset (TRL tokenises/filters in __init__), so attach them here.
        self.train_dataset = with_ids(self.train_dataset)
        if not isinstance(self.data_collator, IdCollator):
            self.data_collator = IdCollator(self.data_collator)
        self._geko_callback.make_tracker(self)
        return super().get_train_dataloader()

    def _get_train_sampler(self, train_dataset=None):
        # Keep a direct reference: accelerate's get_sampler() returns None on N processes.
        self._geko_sampler = GEKOSampler(self._geko_callback.tracker, epoch=self._geko_callback.tracker.epoch)
        return self._geko_sampler

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if ID_COLUMN not in self._signature_columns:  # else remove_unused_columns drops the ids
            self._signature_columns.append(ID_COLUMN)

    # -- schedule -----------------------------------------------------------------------------------
    def create_scheduler(self, num_training_steps, optimizer=None):
        cb = self._geko_callback
        # On resume, rebuild the ORIGINAL schedule: HF recomputes num_training_steps from the resumed
        # (shorter) epoch, but the warp anchors restored from scheduler.pt refer to the original length.
        total = cb.schedule_total or num_training_steps
        cb.schedule_total = total
        scheduler = super().create_scheduler(total, optimizer)
        cb.schedule_warped = install_warp(self.lr_scheduler, total)
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
        self._geko_callback.start_run(resume_from_checkpoint or None)
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def save_model(self, output_dir=None, _internal_call=False):
        super().save_model(output_dir, _internal_call)
        # Inside _save_checkpoint this runs before trainer_state.json is written (the completeness marker).
        self._geko_callback.save_state(output_dir or self.args.output_dir)

    def set_initial_training_values(self, args, dataloader):
        values = list(super().set_initial_training_values(args, dataloader))
        # HF sizes every epoch like the first epoch of this train() call and silently drops the batches of a
        # longer one. After a resume that first epoch may be a short GEKO epoch: size epochs by the largest
        # possible plan (every sample once) instead; shorter epochs just end early.
        tracker = self._geko_callback.tracker
        longest = -(-tracker.num_samples // tracker.unit)
        if values[1] < longest:
            values[1], values[5] = longest, longest * args.gradient_accumulation_steps
        if args.max_steps > 0:
            # HF turns max_steps into a number of epochs of the FIRST epoch's length; GEKO epochs shrink, so the run
            # would end before max_steps. Every GEKO epoch has at least one step: max_steps epochs always suffice,
            # and HF stops at max_steps (or GEKO, when nothing is left to train).
            values[0] = args.max_steps
        return tuple(values)

    def log(self, logs, *args, **kwargs):
        cb = self._geko_callback
        if "train_samples_per_second" in logs and logs.get("train_runtime") and cb.tracker is not None:
            # HF counts full-data epochs here (its num_train_samples); GEKO trains fewer samples.
            logs["train_samples_per_second"] = round(cb.passes_this_call() / logs["train_runtime"], 3)
        return super().log(logs, *args, **kwargs)

    def _init_training_state(self, max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint,
                             trial):
        epochs_trained, steps_in_epoch = super()._init_training_state(
            max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint, trial)
        cb = self._geko_callback
        if resume_from_checkpoint is not None and cb.restored:
            # HF assumes equal epochs (epoch = global_step // steps_per_epoch); GEKO epochs shrink, so the
            # checkpoint's own epoch counter and epoch start decide where to continue.
            epochs_trained = cb.tracker.epoch
            done = self.state.global_step - cb.epoch_start_step if cb.in_epoch else 0
            steps_in_epoch = 0 if self.args.ignore_data_skip else done * self.args.gradient_accumulation_steps
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
        cb = self._geko_callback
        if "labels" not in batch and "label" not in batch and not all(cb.hooks.values()):
            _warn_no_labels_once(self)
        # The stock loss, unchanged; the statistics come from the SAME outputs, outside the autograd graph.
        loss, outputs, graph_outputs = self._loss_and_outputs(model, inputs, num_items_in_batch)
        with torch.no_grad():
            stats = sample_stats(outputs, batch, cb.hooks, num_samples=len(ids), shift_labels=self._geko_shift(model))
        cb.buffer.add(ids, stats)
        weights = cb.sample_weights(ids)  # a device-side lookup: no host sync per step
        if weights is not None:
            weight_sample_gradients(graph_outputs, batch, weights, num_samples=len(ids))
        return (loss, outputs) if return_outputs else loss

    def _geko_shift(self, model) -> bool | None:
        """Whether the model's logit t predicts label t + 1 (decided once per trainer; see alignment.py)."""
        if not hasattr(self, "_geko_shift_labels"):
            self._geko_shift_labels = shifts_labels(self.accelerator.unwrap_model(model))
        return self._geko_shift_labels

    def _loss_and_outputs(self, model, inputs, num_items_in_batch):
        """The parent's loss, the outputs of the forward pass it ran (without a second forward), and the outputs the
        loss was computed from (they differ when TRL computes the loss on a logits forward and its metrics on a
        fused one under no_grad: per-sample gradient weights must go to the former).

        The stock `Trainer.compute_loss` hands its outputs back for free. A parent that overrides compute_loss may
        not: TRL's SFTTrainer runs an EXTRA full-logits forward for `return_outputs=True` (its fused LM head builds
        no logits). There the outputs are taken from the model call itself by a forward hook (the last call wins:
        with compute_loss_func or label smoothing TRL runs a logits forward, then a fused one for its metrics).
        """
        parent = super().compute_loss
        if getattr(parent, "__func__", None) is Trainer.compute_loss:
            loss, outputs = parent(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
            return loss, outputs, outputs
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
        return loss, captured[-1], (in_graph or captured)[-1]

    # -- the seed's conveniences --------------------------------------------------------------------
    def get_efficiency_report(self) -> dict:
        return self._geko_callback.efficiency_report()

    def get_pruned_count(self) -> int:
        tracker = self._geko_callback.tracker
        return 0 if tracker is None else int(tracker.state.pruned.sum())


def _warn_no_labels_once(trainer) -> None:
    if getattr(trainer, "_geko_warned_no_labels", False):
        return
    trainer._geko_warned_no_labels = True
    logger.warning(
        "The training batch has no `labels` (the model computes its own loss): GEKO scores a token model on its "
        "input_ids as a causal LM would (next-token NLL, padding excluded) and cannot score other heads. If that is "
        "not your model's objective, pass compute_sample_loss=, compute_correctness= and compute_confidence=."
    )


def geko_class_for(cls):
    """`cls` with GEKOMixin in front (cached), for the callback-only path."""
    if issubclass(cls, GEKOMixin):
        return cls
    if cls not in _CLASS_CACHE:
        _CLASS_CACHE[cls] = type(f"GEKO{cls.__name__}", (GEKOMixin, cls), {"__module__": cls.__module__})
    return _CLASS_CACHE[cls]


_CLASS_CACHE: dict = {}


class GEKOTrainer(GEKOMixin, Trainer):
    """`transformers.Trainer` with GEKO.

    Extra arguments (the seed's API): `geko_config` (a GEKOConfig; default: from GEKOTrainingArguments'
    geko_ fields, else GEKOConfig()), `compute_correctness(outputs, batch) -> BoolTensor[B]`,
    `compute_confidence(outputs, batch) -> Tensor[B]`, `lora_config` (a peft LoraConfig, applied to the model);
    and `compute_sample_loss(outputs, batch) -> Tensor[B]`: with all three hooks any head works (regression, QA).
    """

    def __init__(self, model=None, args=None, *more, geko_config=None, compute_correctness=None,
                 compute_confidence=None, compute_sample_loss=None, lora_config=None, callbacks=None, **kwargs):
        callback = GEKOCallback(config=geko_config, compute_correctness=compute_correctness,
                                compute_confidence=compute_confidence, compute_sample_loss=compute_sample_loss)
        callback.trainer = self  # no need to find us on the stack
        self._geko_callback = callback
        if lora_config is not None:
            from .lora import apply_lora

            model = apply_lora(model, lora_config)
        super().__init__(model, args, *more, callbacks=[*(callbacks or []), callback], **kwargs)
