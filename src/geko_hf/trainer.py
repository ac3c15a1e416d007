"""`GEKOTrainer`: the stock `transformers.Trainer` plus GEKO, through a handful of short overrides.

`GEKOMixin` holds the overrides; `GEKOTrainer = GEKOMixin + Trainer`. The callback-only path
(`Trainer(..., callbacks=[GEKOCallback()])`) mixes the same class into the trainer instance at init, so
both ways in run literally the same code.
"""

from __future__ import annotations

import torch
from transformers import Trainer

from .callback import GEKOCallback
from .ids import ID_COLUMN, IdCollator, with_ids
from .sampler import GEKOSampler
from .schedule import install_warp
from .stats import sample_stats


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
        scheduler = super().create_scheduler(num_training_steps, optimizer)
        self._geko_callback.schedule_warped = install_warp(self.lr_scheduler, num_training_steps)
        return scheduler

    # -- per-sample statistics ----------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        ids = inputs.pop(ID_COLUMN, None)  # before model(**inputs): the model has no such argument
        if ids is None or not model.training:
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        # The stock loss, unchanged; the statistics come from the SAME outputs, outside the autograd graph.
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        cb = self._geko_callback
        with torch.no_grad():
            stats = sample_stats(outputs, inputs, cb.compute_correctness, cb.compute_confidence)
        cb.buffer.add(ids, stats)
        return (loss, outputs) if return_outputs else loss

    # -- the seed's conveniences --------------------------------------------------------------------
    def get_efficiency_report(self) -> dict:
        return self._geko_callback.efficiency_report()

    def get_pruned_count(self) -> int:
        tracker = self._geko_callback.tracker
        return 0 if tracker is None else int(tracker.state.pruned.sum())


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
    `compute_confidence(outputs, batch) -> Tensor[B]`, `lora_config` (a peft LoraConfig, applied to the model).
    """

    def __init__(self, model=None, args=None, *more, geko_config=None, compute_correctness=None,
                 compute_confidence=None, lora_config=None, callbacks=None, **kwargs):
        callback = GEKOCallback(config=geko_config, compute_correctness=compute_correctness,
                                compute_confidence=compute_confidence)
        callback.trainer = self  # no need to find us on the stack
        self._geko_callback = callback
        if lora_config is not None:
            from .lora import apply_lora

            model = apply_lora(model, lora_config)
        super().__init__(model, args, *more, callbacks=[*(callbacks or []), callback], **kwargs)
