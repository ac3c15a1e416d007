"""The benchmarks' baseline selection policies, run through the SAME GEKO machinery (sampler, pass counting) as
GEKO itself. A baseline "at GEKO's budget" is paired with one GEKO run (same seed) and replays it exactly: the same
number of passes in every epoch (`PairedBudget`) and the same learning rate at every optimizer step
(`ReplayedSchedule`, recorded by `LRTrace`), so the arms differ only in which samples an epoch trains (issue 33:
fitting each arm's schedule to its own budget gave random a mean LR factor of 0.500 against GEKO's 0.555 on minilm
seed 0, and cut its first epoch to 1,984 passes where GEKO rounds up to 2,016). The general policies are registered in
geko_hf.core.policies (`full`, `random`, `infobatch`); the ones here exist for the benchmarks' controls:

- random at GEKO's budget:  `PairedRandomPolicy`, a fresh random subset of exactly the paired run's size each epoch.
- infobatch_budget:         InfoBatch (Qin et al., ICLR 2024) from its description, forced to GEKO's per-epoch
                            budget: of the samples whose latest loss is below the mean, exactly as many are left out
                            as the budget needs (a share r), the kept ones get loss weight 1/(1-r); with 3 epochs
                            there is no room for the paper's full-data final epochs at that budget.
- stock_order:              the stock Trainer's sample stream cut into the budget's epochs (a control).
- infobatch (registered):   InfoBatch at its OWN design point (r = 0.5, full data in epoch 1 and in the last 12.5%).
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import torch
from transformers import TrainerCallback

from geko_hf import GEKOTrainer
from geko_hf.core.policies import (BudgetPolicy, FullPolicy, InfoBatchPolicy, RandomPolicy,  # noqa: F401
                                   register_policy)

MAX_PRUNE = 0.95  # infobatch_budget's prune share r where enough samples were seen: kept ones weigh <= 1/(1 - r) = 20


def with_budget(policy_cls, budget):
    """A policy factory (tracker -> policy) spending `budget[e]` passes in epoch e."""
    return functools.partial(policy_cls, budget=list(budget))


def laps(rng, n: int, length: int, order=None) -> np.ndarray:
    """`order` (default: a permutation of the n samples from rng) cut or topped up to exactly `length` passes, the
    top-up a fresh permutation after another: a paired GEKO epoch can be longer than the data (its plans round UP to
    whole optimizer steps: 2,000 samples at batch 32 train 2,016 passes), and a baseline must train as many."""
    parts = [rng.permutation(n) if order is None else np.asarray(order, dtype=np.int64)]
    while sum(map(len, parts)) < length:
        parts.append(rng.permutation(n))
    return np.concatenate(parts)[:length].astype(np.int64)


class PairedBudget(BudgetPolicy):
    """A baseline whose epochs are EXACTLY `budget[e]` passes long (a paired run's per-epoch passes, already whole
    optimizer steps), so its future epoch lengths, and with them HF's step counts, are known exactly."""

    def __init__(self, tracker, budget=None):
        if budget is not None and tracker.last_epoch_fraction < 1.0:
            raise ValueError("A paired budget is the paired run's trained passes, its last epoch already cut: pair "
                             f"runs of whole epochs (this one has a last epoch of {tracker.last_epoch_fraction}).")
        super().__init__(tracker, budget)

    def projected_length(self, epoch: int) -> int:
        return self.epoch_budget(epoch)  # every plan is exactly this long


class PairedRandomPolicy(PairedBudget, RandomPolicy):
    """RandomPolicy's draw (the same generator: where the budget fits in the data, the same subset), topped up past
    the data's size with a second permutation instead of cut to whole steps below the budget."""

    def plan(self, epoch):
        t = self.tracker
        return laps(np.random.default_rng([t.seed, epoch, 2]), t.num_samples, self.epoch_budget(epoch))


@register_policy("stock_order")
class StockOrderPolicy(PairedBudget):
    """The stock Trainer's sample stream (one fresh permutation per pass over the data, back to back) cut into
    the budget's epochs: a control that differs from a stock curve run only in GEKO's machinery, and from
    RandomPolicy only in the order (every sample once before any sample twice)."""

    def plan(self, epoch):
        t = self.tracker
        start = sum(self.epoch_budget(e) for e in range(epoch))
        stop = start + self.epoch_budget(epoch)
        laps_ = range(start // t.num_samples, -(-stop // t.num_samples))
        stream = np.concatenate([np.random.default_rng([t.seed, lap, 5]).permutation(t.num_samples)
                                 for lap in laps_] or [np.zeros(0, dtype=np.int64)])
        offset = start - laps_.start * t.num_samples
        return stream[offset: offset + stop - start].astype(np.int64)


@register_policy("infobatch_budget")
class InfoBatchBudgetPolicy(PairedBudget):
    """Kept well-learned samples train with gradient weight 1/(1-r), through GEKO's own per-sample weighting. The
    epoch leaves out exactly n - budget samples (InfoBatch draws each with probability r, which would make the epoch's
    length random): drawn among the seen samples whose latest loss is below the mean, widened to the lowest-loss ones
    where that set is too small for r <= MAX_PRUNE. A budget above the data's size keeps every sample and tops up."""

    def __init__(self, tracker, budget=None):
        super().__init__(tracker, budget)
        self.loss_weight: np.ndarray | None = None

    def weight_table(self):
        return self.loss_weight

    def plan(self, epoch):
        t = self.tracker
        n, budget, rng = t.num_samples, self.epoch_budget(epoch), np.random.default_rng([t.seed, epoch, 3])
        self.loss_weight = np.ones(n, dtype=np.float32)
        keep = np.ones(n, dtype=bool)
        seen = np.flatnonzero(t.state.times_seen > 0)
        cut = n - budget
        if cut > 0 and len(seen):
            score = t.state.loss
            by_loss = seen[np.argsort(score[seen], kind="stable")]  # the below-mean samples are a prefix
            well = int((score[seen] < score[seen].mean()).sum())
            candidates = by_loss[: max(well, min(len(seen), int(np.ceil(cut / MAX_PRUNE))))]
            pruned = rng.choice(candidates, min(cut, len(candidates)), replace=False)
            keep[pruned] = False
            r = len(pruned) / len(candidates)
            if r < 1.0:
                self.loss_weight[candidates[keep[candidates]]] = 1.0 / (1.0 - r)
        # a cut the seen samples could not cover (none seen yet) falls on the end of the random order
        return laps(rng, n, budget, order=rng.permutation(np.flatnonzero(keep)))

    def state_dict(self):
        out = super().state_dict()
        return out if self.loss_weight is None else {**out, "loss_weight": self.loss_weight.copy()}

    def load_state_dict(self, d):
        super().load_state_dict(d)
        self.loss_weight = None if "loss_weight" not in d else np.asarray(d["loss_weight"], dtype=np.float32)


# -- the paired run's learning rates, step by step ------------------------------------------------------------
class LRTrace(TrainerCallback):
    """Every param group's learning rate at each optimizer step (read just before the step: the rate it trains
    with), then once more at the end (where the scheduler was left): `lrs`, a results row's `lr_steps`."""

    def __init__(self):
        self.lrs: list[list[float]] = []

    def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        self.lrs.append([float(g["lr"]) for g in optimizer.param_groups])

    def on_train_end(self, args, state, control, optimizer=None, **kwargs):
        self.lrs.append([float(g["lr"]) for g in optimizer.param_groups])


class ReplayedSchedule(torch.optim.lr_scheduler.LRScheduler):
    """Sets every param group's learning rate to the paired run's at the same optimizer step (`lrs`, an LRTrace):
    the values themselves, not factors of the base rate, so the replay is bit for bit. A run longer than the paired
    one has no rate to replay and stops with an error."""

    def __init__(self, optimizer, lrs):
        self.lrs = [[float(x) for x in step] for step in lrs]
        if not self.lrs or len(self.lrs[0]) != len(optimizer.param_groups):
            raise ValueError(f"The replayed schedule has {len(self.lrs[0]) if self.lrs else 0} learning rates a step "
                             f"for an optimizer with {len(optimizer.param_groups)} param groups: pair runs of the "
                             "same model and optimizer settings.")
        super().__init__(optimizer)

    def get_lr(self):
        if self.last_epoch >= len(self.lrs):
            raise RuntimeError(f"Optimizer step {self.last_epoch}: the paired run had {len(self.lrs) - 1} steps, so "
                               "there is no learning rate to replay; the two runs' epochs differ in length.")
        return list(self.lrs[self.last_epoch])


class _NotStretched(logging.Filter):
    def filter(self, record):
        return not record.getMessage().startswith("GEKO cannot stretch this learning-rate scheduler")


class ReplayTrainer(GEKOTrainer):
    """GEKOTrainer whose learning rates are a paired run's, step for step (`lrs`, see ReplayedSchedule)."""

    def __init__(self, *args, lrs, **kwargs):
        self.replay_lrs = lrs
        super().__init__(*args, **kwargs)

    def create_scheduler(self, num_training_steps, optimizer=None):
        # Not GEKOMixin's: it wraps a LambdaLR so that each epoch start re-times the schedule onto GEKO's projection
        # of the run (callback.on_epoch_begin -> schedule.retarget). The replay must not be re-timed: it is no
        # LambdaLR, so run.schedule_warped stays False and no epoch start touches it.
        if self.lr_scheduler is None:
            self.lr_scheduler = ReplayedSchedule(optimizer or self.optimizer, self.replay_lrs)
        return self.lr_scheduler

    def train(self, *args, **kwargs):
        # GEKO warns that it cannot stretch a schedule that is not a LambdaLR, so the LR would not reach its end with
        # the run; the replay ends with the run by construction (it is the paired run's, which did).
        quiet, logger = _NotStretched(), logging.getLogger("geko_hf")
        logger.addFilter(quiet)
        try:
            return super().train(*args, **kwargs)
        finally:
            logger.removeFilter(quiet)


def waste_of_full_training(tracker) -> float | None:
    """Share of full training's passes on samples already correct in that very forward pass (from the data map:
    correct observations over all observations)."""
    stats = tracker.data_map.statistics()
    seen = stats["observations"] > 0
    total = stats["observations"][seen].sum()
    return float((stats["correctness"][seen] * stats["observations"][seen]).sum() / total) if total else None
