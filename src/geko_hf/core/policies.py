"""Selection policies: which samples an epoch trains, with what gradient weight, chosen by name.

A policy is the one part of a run that differs between GEKO and its baselines; everything else (the per-sample
state and data map, the sampler, the schedule stretch, pass counting, checkpoints) is shared, so arms compared in
a benchmark differ only in their policy. Registered the way PEFT registers a method (`register_peft_method`) and
shaped like a Composer `Algorithm`: a small protocol, a name, and `state_dict` / `load_state_dict`.

    @register_policy("my_policy")
    class MyPolicy(SelectionPolicy):
        def plan(self, epoch):                  # this epoch's sample ids, in training order
            ...
    GEKOConfig(policy="my_policy")             # or --geko_policy my_policy

Built in: `geko` (the default: buckets, curriculum, LIGHT thinning), `geko_v2` (geko with v2's rules as
defaults), `observe` (trains exactly as the stock Trainer does and only records: the data map),
`random` (a fresh random subset of `target_budget` of the samples every epoch), `infobatch` (Qin et al.,
ICLR 2024, at its own design point), `full` (every sample once an epoch through GEKO's machinery).
Pure numpy.
"""

from __future__ import annotations

import numpy as np

from .buckets import FOCUS, LIGHT
from .selection import plan_epoch, planned_length

POLICIES: dict[str, type] = {}


def register_policy(name: str):
    """Class decorator: make a SelectionPolicy subclass available as GEKOConfig(policy=name)."""

    def add(cls):
        if name in POLICIES and POLICIES[name] is not cls:
            raise ValueError(f"A selection policy named {name!r} is already registered ({POLICIES[name].__name__}).")
        cls.name = name
        POLICIES[name] = cls
        return cls

    return add


def policy_class(name: str) -> type:
    if name not in POLICIES:
        raise ValueError(f"Unknown GEKO policy {name!r}; registered: {sorted(POLICIES)}. Register your own with "
                         "geko_hf.core.policies.register_policy.")
    return POLICIES[name]


class SelectionPolicy:
    """The protocol. `tracker` gives the per-sample state (`tracker.state`), the run's shape (`num_samples`,
    `unit`, `num_epochs`, `seed`) and the config; a policy reads it and never writes it.

    `follows_trainer = True` declares a policy that leaves the Trainer's own sampler, schedule and step counts
    untouched (observe): its plan is then only the set of samples an epoch trains, for the accounting."""

    name = "base"
    follows_trainer = False
    rule_defaults: dict = {}  # config fields a policy name implies where the user left the default (geko_v2)

    def __init__(self, tracker):
        self.tracker = tracker

    def plan(self, epoch: int) -> np.ndarray:
        """The epoch's sample ids in training order, a multiple of tracker.unit long (a fractional last epoch is
        cut by the tracker)."""
        raise NotImplementedError

    def projected_length(self, epoch: int) -> int:
        """The plan length of a FUTURE epoch as known today (for the LR schedule's length); exact is best."""
        return len(self.plan(epoch)) if epoch == self.tracker.epoch else self.tracker.num_samples

    def weight_table(self) -> np.ndarray | None:
        """This epoch's gradient weight per sample (float32 [num_samples]), or None when all are 1."""
        return None

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, d: dict) -> None:
        pass


def whole_steps(plan: np.ndarray, unit: int) -> np.ndarray:
    """The plan cut to whole optimizer steps."""
    return plan[: len(plan) - len(plan) % unit]


@register_policy("geko")
class GEKOPolicy(SelectionPolicy):
    """GEKO: buckets under the curriculum's (or the config's) weights, LIGHT thinning with 1/rate weights, probes
    of stuck and FREEZE samples, a target budget, a final full-data phase (see selection.plan_epoch)."""

    def plan_args(self, epoch: int, full: bool = False) -> dict:
        """The selection arguments of an epoch: its phase's weights and the config's rates; a full-data epoch (or
        `full`) plans every live sample once (all FOCUS, no thinning, no probes). The epoch where the full-data phase
        starts plans without thinning: its 1/rate weights are per sample, and a sample may train in both parts."""
        t = self.tracker
        cfg, s = t.config, t.state
        _, weights = t.phase_and_weights(epoch)
        args = dict(buckets=s.bucket, pruned=s.pruned, times_seen=s.times_seen, weights=weights,
                    max_times_seen=cfg.max_times_seen, unit=t.unit, budget_mode=cfg.epoch_budget,
                    light_rate=cfg.light_sample_rate, stuck=s.stuck if cfg.stuck_after else None,
                    stuck_rate=cfg.stuck_sample_rate, recheck_rate=cfg.freeze_recheck_rate)
        if full or t.full_data_epoch(epoch):
            args.update(buckets=np.full(t.num_samples, FOCUS, dtype=np.uint8), weights=(1.0, 1.0, 1.0),
                        budget_mode="active", light_rate=1.0, stuck=None, recheck_rate=0.0)
        elif cfg.target_budget is not None:  # the budget sets the epoch's length and, through it, every rate
            target = int(round(cfg.target_budget * t.num_samples))
            args.update(target=-(-target // t.unit) * t.unit, light_rate=1.0)
        if 0.0 < t.full_data_share(epoch) < 1.0:
            args.update(light_rate=1.0)
        return args

    def plan(self, epoch: int) -> np.ndarray:
        t = self.tracker
        plan = plan_epoch(**self.plan_args(epoch), seed=t.seed, epoch=epoch, groups=t.groups)
        if not 0.0 < t.full_data_share(epoch) < 1.0:
            return plan
        full = plan_epoch(**self.plan_args(epoch, full=True), seed=t.seed, epoch=epoch, groups=t.groups)
        keep, start = self._switch(epoch, len(plan), len(full))
        return np.concatenate([plan[:keep], full[start:]])

    def _switch(self, epoch: int, length: int, full_length: int) -> tuple[int, int]:
        """The epoch where the full-data phase starts (issue 33): the first (1 - share) of GEKO's plan, then a
        full-data plan from the same point on, each cut at a whole optimizer step. (kept, where full data starts)."""
        unit, before = self.tracker.unit, 1.0 - self.tracker.full_data_share(epoch)
        return round(before * length / unit) * unit, round(before * full_length / unit) * unit

    def projected_length(self, epoch: int) -> int:
        """Today's buckets under that epoch's phase weights (only the current epoch's length is exact)."""
        length = planned_length(**self.plan_args(epoch))
        if not 0.0 < self.tracker.full_data_share(epoch) < 1.0:
            return length
        full = planned_length(**self.plan_args(epoch, full=True))
        keep, start = self._switch(epoch, length, full)
        return keep + full - start

    def weight_table(self) -> np.ndarray | None:
        """With light_sample_rate r < 1 only a share r of the LIGHT samples trains each epoch; weighting each by 1/r
        keeps the epoch's expected gradient that of all of them, exactly with equal bucket weights and otherwise up
        to one global factor (issue 33; tests/test_exactness.py computes it). Buckets do not move within an epoch, so
        the bucket a sample was drawn from is its bucket now."""
        t = self.tracker
        rate = t.config.light_sample_rate
        if rate >= 1.0 or t.full_data_share(t.epoch) > 0 or t.config.target_budget is not None:
            return None
        light = t.state.bucket == LIGHT
        return np.where(light, np.float32(1.0 / rate), np.float32(1.0)) if light.any() else None


@register_policy("geko_v2")
class GEKOV2Policy(GEKOPolicy):
    """GEKO with v2's rules (margin mastery with a streak of 2, stuck samples, 10% FREEZE re-checks, InfoBatch's
    final full-data eighth) for every rule field the config leaves at its default; the `v2` preset spells them
    out. Measured on four workloads in benchmarks/README.md: on the stock curve, like geko."""

    rule_defaults = dict(mastery="margin", mastery_streak=2, stuck_after=2, freeze_recheck_rate=0.1,
                         final_full_share=0.125)


@register_policy("observe")
class ObservePolicy(SelectionPolicy):
    """Train exactly as the stock Trainer does (its sampler, order, schedule and step counts) and only record:
    every sample is trained once an epoch and observed at every pass, which fills the data map at no extra
    pass. The plan is the set an epoch trains (all samples), for the accounting; the order is the Trainer's."""

    follows_trainer = True

    def plan(self, epoch: int) -> np.ndarray:
        return np.arange(self.tracker.num_samples, dtype=np.int64)

    def projected_length(self, epoch: int) -> int:
        return self.tracker.num_samples


@register_policy("full")
class FullPolicy(SelectionPolicy):
    """Every sample once an epoch in a fresh (seed, epoch) order, through GEKO's own sampler and accounting: the
    stock Trainer's data under GEKO's machinery, the control of a benchmark."""

    def plan(self, epoch: int) -> np.ndarray:
        t = self.tracker
        return whole_steps(np.random.default_rng([t.seed, epoch, 1]).permutation(t.num_samples), t.unit)

    def projected_length(self, epoch: int) -> int:
        t = self.tracker
        return t.num_samples - t.num_samples % t.unit


class BudgetPolicy(SelectionPolicy):
    """A policy that spends a fixed number of passes an epoch: `budget` (a list, passes per epoch, e.g. the pass
    counts of a paired GEKO run) or else round(target_budget x samples) rounded up to whole optimizer steps."""

    def __init__(self, tracker, budget=None):
        super().__init__(tracker)
        self.budget = None if budget is None else [int(b) for b in budget]

    def epoch_budget(self, epoch: int) -> int:
        t = self.tracker
        if self.budget is not None:
            return self.budget[epoch] if epoch < len(self.budget) else 0
        share = t.config.target_budget
        if share is None:
            raise ValueError(f"GEKOConfig.policy={self.name!r} spends a budget: set target_budget (e.g. 0.6 for 60 "
                             "percent of the full-data passes an epoch).")
        return -(-int(round(share * t.num_samples)) // t.unit) * t.unit

    def projected_length(self, epoch: int) -> int:
        # the budget is known in advance, so the LR schedule is stretched onto the run's real length
        length = min(self.epoch_budget(epoch), self.tracker.num_samples)
        return length - length % self.tracker.unit

    def state_dict(self) -> dict:
        return {} if self.budget is None else {"budget": np.asarray(self.budget, dtype=np.int64)}

    def load_state_dict(self, d: dict) -> None:
        if "budget" in d:
            self.budget = [int(b) for b in np.asarray(d["budget"])]


@register_policy("random")
class RandomPolicy(BudgetPolicy):
    """A fresh uniformly random subset of the budget's size every epoch, unweighted: the baseline any selection
    policy must beat at equal compute."""

    def plan(self, epoch: int) -> np.ndarray:
        t = self.tracker
        perm = np.random.default_rng([t.seed, epoch, 2]).permutation(t.num_samples)
        return whole_steps(perm[: self.epoch_budget(epoch)], t.unit)


@register_policy("infobatch")
class InfoBatchPolicy(SelectionPolicy):
    """InfoBatch as published (Qin et al., ICLR 2024; NUS-HPC-AI-Lab/InfoBatch): each epoch, of the samples whose
    latest loss is below the mean, a random share `prune` is left out and the kept ones get gradient weight
    1/(1-prune). Epoch 1 trains every sample (all scores start equal), and so does the last `anneal` share of
    training, counted in epochs of data: the epoch that straddles that point prunes only in the first part of its
    shuffled order (InfoBatch's code switches at whole epochs, which with 3-8 epochs would put the switch at the
    very end or nowhere). Reimplemented from the paper's description: its code breaks under accelerate."""

    prune, anneal = 0.5, 0.125

    def __init__(self, tracker):
        super().__init__(tracker)
        self.loss_weight: np.ndarray | None = None

    def weight_table(self) -> np.ndarray | None:
        return self.loss_weight

    def pruning_share(self, epoch: int) -> float:
        """Share of the epoch's order in which samples may be pruned: 1 before the annealing point, 0 after."""
        t = self.tracker
        total = t.num_epochs - 1 + t.last_epoch_fraction
        return float(np.clip((1.0 - self.anneal) * total - epoch, 0.0, 1.0))

    def well_learned(self) -> np.ndarray:
        s = self.tracker.state
        seen = s.times_seen > 0
        return seen & (s.loss < s.loss[seen].mean()) if seen.any() else np.zeros(s.num_samples, dtype=bool)

    def plan(self, epoch: int) -> np.ndarray:
        t = self.tracker
        n, rng = t.num_samples, np.random.default_rng([t.seed, epoch, 4])
        order = rng.permutation(n)
        self.loss_weight = np.ones(n, dtype=np.float32)
        head = order[: int(round(self.pruning_share(epoch) * n))]
        candidates = head[self.well_learned()[head]]
        if len(candidates):
            kept = rng.choice(candidates, int((1.0 - self.prune) * len(candidates)), replace=False)
            self.loss_weight[kept] = 1.0 / (1.0 - self.prune)
            order = order[~np.isin(order, np.setdiff1d(candidates, kept))]
        return whole_steps(order, t.unit)

    def projected_length(self, epoch: int) -> int:  # today's below-mean share
        t = self.tracker
        n = t.num_samples - int(self.prune * self.well_learned().sum() * self.pruning_share(epoch))
        return n - n % t.unit

    def state_dict(self) -> dict:
        return {} if self.loss_weight is None else {"loss_weight": self.loss_weight.copy()}

    def load_state_dict(self, d: dict) -> None:
        self.loss_weight = None if "loss_weight" not in d else np.asarray(d["loss_weight"], dtype=np.float32)


def resolve_rules(config, policy_cls):
    """The config with the rule fields a policy name implies (geko_v2), where the user left the default."""
    defaults = type(config)()
    changes = {k: v for k, v in policy_cls.rule_defaults.items() if getattr(config, k) == getattr(defaults, k)}
    return config.replace(**changes) if changes else config

