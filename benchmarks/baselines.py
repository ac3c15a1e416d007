"""Baseline selection policies for the savings benchmarks, run through the SAME GEKO machinery (sampler,
schedule stretching, pass counting), so arms differ only in which samples an epoch trains on.

- FullTracker:     every sample once per epoch (the stock Trainer's data), plus GEKO's per-pass records,
                   used to measure the "waste" of full training (passes on samples already correct).
- RandomTracker:   a fresh random subset per epoch, of the size GEKO used in that epoch (equal budget).
- InfoBatchTracker: InfoBatch (Qin et al., ICLR 2024) from its description: samples whose latest loss is
                   below the mean are pruned with probability r, kept ones get loss weight 1/(1-r). r is set
                   per epoch so the epoch has GEKO's pass count (equal budget); with 3 epochs there is no
                   room for the paper's full-data final epochs at that budget, so none are used.
- InfoBatchPaperTracker: InfoBatch at its OWN design point (r = 0.5, full data in epoch 1 and in the last
                   12.5% of training), no budget: it saves what it saves.
"""

from __future__ import annotations

import numpy as np

from geko_hf.core.tracker import GEKOTracker


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

    def weight_table(self):
        return None  # the stock Trainer's data and loss


class BudgetTracker(GEKOTracker):
    budget: list[int] = []  # passes per epoch, set by with_budget()

    def weight_table(self):
        return None  # plain (unweighted) training on the chosen samples, whatever the GEKO config says

    def epoch_budget(self, epoch):
        return self.budget[epoch] if epoch < len(self.budget) else 0

    def projected_length(self, epoch):
        # The budget is known in advance, so the LR schedule is stretched onto the run's real length, as the stock
        # curve's is. (Inherited, GEKO's projection from today's buckets assumed ~every sample in each later epoch:
        # the schedule decayed too slowly until the last epoch, so the arm differed from the others in its LR.)
        budget = self.epoch_budget(epoch)
        return budget - budget % self.unit


def with_budget(cls, budget):
    return type(cls.__name__, (cls,), {"budget": list(budget)})


class RandomTracker(BudgetTracker):
    def make_plan(self, epoch):
        perm = np.random.default_rng([self.seed, epoch, 2]).permutation(self.num_samples)
        return _cut(perm[: self.epoch_budget(epoch)], self.unit)


class StockOrderTracker(BudgetTracker):
    """The stock Trainer's sample stream (one fresh permutation per pass over the data, back to back) cut into
    the budget's epochs: a control that differs from a stock curve run only in GEKO's machinery, and from
    RandomTracker only in the order (every sample once before any sample twice)."""

    def make_plan(self, epoch):
        start = sum(self.epoch_budget(e) for e in range(epoch))
        stop = start + self.epoch_budget(epoch)
        laps = range(start // self.num_samples, -(-stop // self.num_samples))
        stream = np.concatenate([np.random.default_rng([self.seed, lap, 5]).permutation(self.num_samples)
                                 for lap in laps])
        offset = start - laps.start * self.num_samples
        return _cut(stream[offset: offset + stop - start], self.unit)


class InfoBatchTracker(BudgetTracker):
    """Kept well-learned samples train with gradient weight 1/(1-r), through GEKO's own per-sample weighting."""

    loss_weight: np.ndarray | None = None

    def weight_table(self):
        return self.loss_weight

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



class InfoBatchPaperTracker(GEKOTracker):
    """InfoBatch as published (Qin et al., ICLR 2024; NUS-HPC-AI-Lab/InfoBatch, infobatch/infobatch.py): each
    epoch, of the samples whose latest loss is below the mean, a random half (`prune`) is left out and the kept
    half gets gradient weight 1/(1-prune). Epoch 1 trains every sample (InfoBatch starts all scores equal, so
    nothing is below the mean), and so does the last `anneal` share of training, counted in epochs of data: the
    epoch that straddles that point prunes only in the first part of its shuffled order (InfoBatch's own code
    switches at whole epochs, which with 3-8 epochs would put the switch at the very end or nowhere)."""

    prune, anneal = 0.5, 0.125
    loss_weight: np.ndarray | None = None

    def weight_table(self):
        return self.loss_weight

    def pruning_share(self, epoch: int) -> float:
        """Share of the epoch's order in which samples may be pruned: 1 before the annealing point, 0 after."""
        total = self.num_epochs - 1 + self.last_epoch_fraction
        return float(np.clip((1.0 - self.anneal) * total - epoch, 0.0, 1.0))

    def well_learned(self) -> np.ndarray:
        seen, loss = self.state.times_seen > 0, self.state.loss
        return seen & (loss < loss[seen].mean()) if seen.any() else np.zeros(self.num_samples, dtype=bool)

    def make_plan(self, epoch):
        n, rng = self.num_samples, np.random.default_rng([self.seed, epoch, 4])
        order = rng.permutation(n)
        self.loss_weight = np.ones(n, dtype=np.float32)
        head = order[: int(round(self.pruning_share(epoch) * n))]
        candidates = head[self.well_learned()[head]]
        if len(candidates):
            kept = rng.choice(candidates, int((1.0 - self.prune) * len(candidates)), replace=False)
            self.loss_weight[kept] = 1.0 / (1.0 - self.prune)
            order = order[~np.isin(order, np.setdiff1d(candidates, kept))]
        return _cut(order, self.unit)

    def projected_length(self, epoch):  # for the LR schedule's length: today's below-mean share
        n = self.num_samples - int(self.prune * self.well_learned().sum() * self.pruning_share(epoch))
        return self._cut_last(epoch, n - n % self.unit)
