"""Baseline selection policies for the savings benchmarks, run through the SAME GEKO machinery (sampler,
schedule stretching, pass counting), so arms differ only in which samples an epoch trains on.

- FullTracker:     every sample once per epoch (the stock Trainer's data), plus GEKO's per-pass records,
                   used to measure the "waste" of full training (passes on samples already correct).
- RandomTracker:   a fresh random subset per epoch, of the size GEKO used in that epoch (equal budget).
- InfoBatchTracker: InfoBatch (Qin et al., ICLR 2024) from its description: samples whose latest loss is
                   below the mean are pruned with probability r, kept ones get loss weight 1/(1-r). r is set
                   per epoch so the epoch has GEKO's pass count (equal budget); with 3 epochs there is no
                   room for the paper's full-data final epochs at that budget, so none are used.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from geko_hf import GEKOTrainer
from geko_hf.ids import ID_COLUMN
from geko_hf.tracker import GEKOTracker


def _cut(plan, unit):
    return plan[: len(plan) - len(plan) % unit]


class FullTracker(GEKOTracker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.correct_log = []  # per-pass correctness, for the waste of full training

    def record(self, ids, loss, correct, confidence, tokens, batches):
        self.correct_log.append(np.asarray(correct, dtype=bool))
        super().record(ids, loss, correct, confidence, tokens, batches)

    def make_plan(self, epoch):
        return _cut(np.random.default_rng([self.seed, epoch, 1]).permutation(self.num_samples), self.unit)


class BudgetTracker(GEKOTracker):
    budget: list[int] = []  # passes per epoch, set by with_budget()

    def epoch_budget(self, epoch):
        return self.budget[epoch] if epoch < len(self.budget) else 0


def with_budget(cls, budget):
    return type(cls.__name__, (cls,), {"budget": list(budget)})


class RandomTracker(BudgetTracker):
    def make_plan(self, epoch):
        perm = np.random.default_rng([self.seed, epoch, 2]).permutation(self.num_samples)
        return _cut(perm[: self.epoch_budget(epoch)], self.unit)


class InfoBatchTracker(BudgetTracker):
    loss_weight: np.ndarray | None = None

    def make_plan(self, epoch):
        n, rng = self.num_samples, np.random.default_rng([self.seed, epoch, 3])
        self.loss_weight = np.ones(n, dtype=np.float32)
        seen = self.state.times_seen > 0
        keep = np.ones(n, dtype=bool)
        if seen.any():
            score = self.state.loss
            well = seen & (score < score[seen].mean())
            r = float(np.clip((n - self.epoch_budget(epoch)) / max(well.sum(), 1), 0.0, 0.95))
            pruned = well & (rng.random(n) < r)
            keep = ~pruned
            self.loss_weight[well & keep] = 1.0 / (1.0 - r)
        return _cut(rng.permutation(np.flatnonzero(keep)), self.unit)


class InfoBatchTrainer(GEKOTrainer):
    """GEKOTrainer whose loss rescales kept well-learned samples by 1/(1-r) (InfoBatch's unbiased gradient)."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        ids = inputs.get(ID_COLUMN)
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        tracker = self._geko_callback.tracker
        if ids is not None and model.training and tracker.loss_weight is not None:
            w = torch.as_tensor(tracker.loss_weight[ids.cpu().numpy()], device=outputs.logits.device)
            loss = weighted_loss(outputs.logits, inputs["labels"], w, num_items_in_batch)
        return (loss, outputs) if return_outputs else loss


def weighted_loss(logits, labels, w, num_items_in_batch=None):
    if logits.dim() == 2:  # classification
        return (F.cross_entropy(logits.float(), labels, reduction="none") * w).mean()
    shift_logits, shift_labels = logits[:, :-1].float(), labels[:, 1:]
    tok = F.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1),
                          reduction="none", ignore_index=-100).view(shift_labels.shape)
    total = (tok.sum(1) * w).sum()
    denom = num_items_in_batch if num_items_in_batch is not None else (shift_labels != -100).sum()
    return total / denom
