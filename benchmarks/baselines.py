"""The benchmarks' baseline selection policies, run through the SAME GEKO machinery (sampler, schedule stretching,
pass counting) as GEKO itself, so arms differ only in which samples an epoch trains on. The general ones are
registered in geko_hf.core.policies (`full`, `random`, `infobatch`); the two here exist for the benchmarks' controls:

- random at GEKO's budget:  RandomPolicy with the paired GEKO run's per-epoch pass counts (`with_budget`).
- infobatch_budget:         InfoBatch (Qin et al., ICLR 2024) from its description, forced to GEKO's per-epoch
                            budget: samples whose latest loss is below the mean are pruned with probability r, kept
                            ones get loss weight 1/(1-r), r set per epoch so the epoch has GEKO's pass count; with 3
                            epochs there is no room for the paper's full-data final epochs at that budget.
- stock_order:              the stock Trainer's sample stream cut into the budget's epochs (a control).
- infobatch (registered):   InfoBatch at its OWN design point (r = 0.5, full data in epoch 1 and in the last 12.5%).
"""

from __future__ import annotations

import functools

import numpy as np

from geko_hf.core.policies import (BudgetPolicy, FullPolicy, InfoBatchPolicy, RandomPolicy,  # noqa: F401
                                   register_policy, whole_steps)


def with_budget(policy_cls, budget):
    """A policy factory (tracker -> policy) spending `budget[e]` passes in epoch e."""
    return functools.partial(policy_cls, budget=list(budget))


@register_policy("stock_order")
class StockOrderPolicy(BudgetPolicy):
    """The stock Trainer's sample stream (one fresh permutation per pass over the data, back to back) cut into
    the budget's epochs: a control that differs from a stock curve run only in GEKO's machinery, and from
    RandomPolicy only in the order (every sample once before any sample twice)."""

    def plan(self, epoch):
        t = self.tracker
        start = sum(self.epoch_budget(e) for e in range(epoch))
        stop = start + self.epoch_budget(epoch)
        laps = range(start // t.num_samples, -(-stop // t.num_samples))
        stream = np.concatenate([np.random.default_rng([t.seed, lap, 5]).permutation(t.num_samples)
                                 for lap in laps])
        offset = start - laps.start * t.num_samples
        return whole_steps(stream[offset: offset + stop - start], t.unit)


@register_policy("infobatch_budget")
class InfoBatchBudgetPolicy(BudgetPolicy):
    """Kept well-learned samples train with gradient weight 1/(1-r), through GEKO's own per-sample weighting."""

    def __init__(self, tracker, budget=None):
        super().__init__(tracker, budget)
        self.loss_weight: np.ndarray | None = None

    def weight_table(self):
        return self.loss_weight

    def plan(self, epoch):
        t = self.tracker
        n, rng = t.num_samples, np.random.default_rng([t.seed, epoch, 3])
        self.loss_weight = np.ones(n, dtype=np.float32)
        seen = t.state.times_seen > 0
        keep = np.ones(n, dtype=bool)
        if seen.any():
            score = t.state.loss
            well = seen & (score < score[seen].mean())
            r = float(np.clip((n - self.epoch_budget(epoch)) / max(well.sum(), 1), 0.0, 0.95))
            keep = ~(well & (rng.random(n) < r))
            self.loss_weight[well & keep] = 1.0 / (1.0 - r)
        return whole_steps(rng.permutation(np.flatnonzero(keep)), t.unit)

    def state_dict(self):
        out = super().state_dict()
        return out if self.loss_weight is None else {**out, "loss_weight": self.loss_weight.copy()}

    def load_state_dict(self, d):
        super().load_state_dict(d)
        self.loss_weight = None if "loss_weight" not in d else np.asarray(d["loss_weight"], dtype=np.float32)


def waste_of_full_training(tracker) -> float | None:
    """Share of full training's passes on samples already correct in that very forward pass (from the data map:
    correct observations over all observations)."""
    stats = tracker.data_map.statistics()
    seen = stats["observations"] > 0
    total = stats["observations"][seen].sum()
    return float((stats["correctness"][seen] * stats["observations"][seen]).sum() / total) if total else None
