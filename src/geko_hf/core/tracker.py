"""`GEKOTracker`: one training run's GEKO bookkeeping (state, epoch plans, compute accounting). Pure numpy.

The HF glue (sampler, callback, trainer) only calls into this; it knows nothing of Trainer.
"""

from __future__ import annotations

import math

import numpy as np

from . import accounting, curriculum
from .buckets import BUCKET_NAMES, counts
from .config import GEKOConfig
from .data_map import DataMap
from .policies import GEKOPolicy, policy_class, resolve_rules
from .run_length import RunLength
from .state import SampleState, fallback_margin


def final_full_start(num_epochs: int, share: float, last_epoch_fraction: float = 1.0) -> float:
    """Where the final full-data phase starts, in epochs of data: at (1 - share) of the run, its fractional last epoch
    included (InfoBatch's annealing, Qin et al., ICLR 2024); inf with no phase. 12.5% of 3 epochs starts at 2.625:
    the last 3/8 of epoch 2's plan is full data (issue 33: starting at whole epochs gave 4.5 epochs no phase at all
    and 8.5 epochs 5.9 percent of the run)."""
    return (1.0 - share) * (num_epochs - 1 + last_epoch_fraction) if share > 0 else math.inf


class GEKOTracker:
    """`num_epochs` epochs, the last one cut to `last_epoch_fraction` of its plan (num_train_epochs=2.5: 3 epochs, the
    last at 0.5); `fixed_steps`: the Trainer's max_steps decides when the run ends, not the epochs (the steps are
    fixed, so the full-data reference is the same number of optimizer steps); `drop_last`: the full-data reference drops each
    epoch's last partial batch, as the stock Trainer does under dataloader_drop_last (GEKO's plans have none);
    `max_steps`: the fixed step count itself, kept so a resume under another one is refused."""

    def __init__(self, num_samples: int, config: GEKOConfig, *, seed: int, num_epochs: int, unit: int,
                 batch_size: int, last_epoch_fraction: float = 1.0, fixed_steps: bool = False,
                 drop_last: bool = False, max_steps: int = 0, policy=None):
        policy_cls = policy_class(config.policy) if policy is None else None
        self.config = config = resolve_rules(config, policy_cls) if policy_cls is not None else config
        self.state = SampleState(num_samples, config)
        # every observation's training dynamics (data_map.py), any policy
        self.data_map = DataMap(num_samples, burn_out=config.data_map_burn_out)
        self.seed, self.num_epochs, self.unit, self.batch_size = int(seed), int(num_epochs), int(unit), int(batch_size)
        self.last_epoch_fraction, self.fixed_steps = float(last_epoch_fraction), bool(fixed_steps)
        self.drop_last, self.max_steps = bool(drop_last), int(max_steps)
        self.epoch = 0  # epochs completed
        self.history: list[dict] = []  # one row per completed epoch
        self.totals = {"sample_passes": 0, "batches": 0, "tokens": 0}
        # training passes that gave no observation: no supervised token (all labels -100, a prompt cut off by
        # max_length), or a non-finite loss/confidence (fp16 overflow, a bad row). Counted, never in the state.
        self.skipped = {"no_supervised_token": 0, "non_finite": 0}
        # every recorded pass of each sample and its supervised tokens, observed or not (12 bytes a sample): the
        # full-data token reference (see full_data_reference)
        self.pass_count = np.zeros(num_samples, dtype=np.uint32)
        self.pass_tokens = np.zeros(num_samples, dtype=np.uint64)
        self._plans: dict[int, np.ndarray] = {}
        self.groups: np.ndarray | None = None  # per-sample stratum of the rate-based draws (see set_groups)
        # the selection policy (policies.py): GEKOConfig.policy by name, or a policy factory of the caller's
        self.policy = policy_cls(self) if policy is None else policy(self)

    @property
    def num_samples(self) -> int:
        return self.state.num_samples

    @property
    def length(self) -> RunLength:
        """How long the run is (epochs, the last one's share, fixed steps), as one value."""
        return RunLength(self.num_epochs, self.last_epoch_fraction, self.fixed_steps, self.max_steps)

    # -- planning -----------------------------------------------------------------------------------
    def phase_and_weights(self, epoch: int):
        """(phase name, (HARD, FOCUS, LIGHT) weights) of an epoch: the curriculum's, or 'full data' in the final
        full-data phase (config.final_full_share)."""
        if self.full_data_epoch(epoch):
            return "full data", (1.0, 1.0, 1.0)
        return curriculum.bucket_weights(epoch, self.num_epochs, self.config.use_curriculum, self.config.bucket_weights)

    def plan(self, epoch: int) -> np.ndarray:
        """The epoch's sample ids in order; computed once per epoch from the state at that time, then fixed."""
        if epoch not in self._plans:
            plan = self.make_plan(epoch)
            self._plans[epoch] = plan[: self._cut_last(epoch, len(plan))]
        return self._plans[epoch]

    def epoch_share(self, epoch: int) -> float:
        """How much of a whole epoch this epoch is: last_epoch_fraction for a fractional last epoch, else 1."""
        last = epoch == self.num_epochs - 1 and not self.fixed_steps
        return self.last_epoch_fraction if last else 1.0

    def _cut_last(self, epoch: int, length: int) -> int:
        """A fractional last epoch trains that share of its optimizer steps (rounded up, as HF's max_steps is)."""
        share = self.epoch_share(epoch)
        return length if share >= 1.0 else math.ceil(share * (length // self.unit)) * self.unit

    def set_groups(self, groups) -> None:
        """Stratify every rate-based draw (LIGHT thinning, re-checks, stuck samples) by a per-sample group: the
        label of a classifier, the task family of an SFT pool. None: plain Bernoulli draws."""
        if groups is not None:
            groups = np.asarray(groups)
            if groups.shape != (self.num_samples,) or groups.dtype.kind not in "iub":
                raise ValueError(f"GEKO groups must be one integer per training sample ({self.num_samples}), got "
                                 f"shape {groups.shape} and dtype {groups.dtype}.")
        self.groups = groups

    def full_data_epoch(self, epoch: int) -> bool:
        """Whether the whole epoch is in the final full-data phase (config.final_full_share; the first epoch needs no
        rule: with no observation yet every sample is in FOCUS)."""
        return self.full_data_share(epoch) >= 1.0

    def full_data_share(self, epoch: int) -> float:
        """Share of the epoch's (whole-epoch) plan in the final full-data phase: 0 before it, 1 inside it, and in the
        epoch where it starts the part after that point (GEKOPolicy.plan switches there). With fixed steps every
        epoch is whole."""
        last = 1.0 if self.fixed_steps else self.last_epoch_fraction
        start = final_full_start(self.num_epochs, self.config.final_full_share, last)
        return float(np.clip(round(epoch + 1 - start, 9), 0.0, 1.0))  # (rounded: 0.875 x 8 is 7, not 7 - 1e-15)

    def make_plan(self, epoch: int) -> np.ndarray:
        """The policy's plan of an epoch (GEKO's selection step under the default policy)."""
        return self.policy.plan(epoch)

    def projected_length(self, epoch: int) -> int:
        """Estimated plan length of a FUTURE epoch, for the LR schedule's length: the policy's projection (GEKO's:
        today's buckets under that epoch's phase weights; only the current epoch's length is exact)."""
        return self._cut_last(epoch, self.policy.projected_length(epoch))

    def weight_table(self) -> np.ndarray | None:
        """This epoch's gradient weight of every sample (float32 [num_samples]), or None when all are 1."""
        return self.policy.weight_table()

    @property
    def follows_trainer(self) -> bool:
        """The policy leaves the Trainer's sampler, schedule and step counts as they are (observe)."""
        return self.policy.follows_trainer

    def loss_weights(self, ids) -> np.ndarray | None:
        """The weights of some sample ids (see weight_table), or None when all are 1."""
        table = self.weight_table()
        return None if table is None or (table[np.asarray(ids)] == 1).all() else table[np.asarray(ids)]

    # -- recording ----------------------------------------------------------------------------------
    def record(self, ids, loss, correct, confidence, tokens, batches: int, margin=None) -> None:
        empty = np.asarray(tokens) == 0
        finite = np.isfinite(np.asarray(loss, dtype=np.float64)) & np.isfinite(np.asarray(confidence, np.float64))
        self.skipped["no_supervised_token"] += int(empty.sum())
        self.skipped["non_finite"] += int((~empty & ~finite).sum())
        self.state.update(ids, loss, correct, confidence, tokens, margin=margin)
        self._map(ids, loss, correct, confidence, margin, ~empty & finite)
        self._count_passes(ids, tokens)
        self.totals["sample_passes"] += int(len(ids))
        self.totals["tokens"] += int(np.sum(tokens))
        self.totals["batches"] += int(batches)

    def _count_passes(self, ids, tokens) -> None:
        """Add the passes to each sample's pass and token counts (bincount: one pass over the ids, repeats summed)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids):
            n = self.num_samples
            self.pass_count += np.bincount(ids, minlength=n).astype(np.uint32)
            tokens = np.asarray(tokens, dtype=np.float64).reshape(-1)  # exact integers below 2**53
            self.pass_tokens += np.bincount(ids, weights=tokens, minlength=n).astype(np.uint64)

    def _map(self, ids, loss, correct, confidence, margin, observed) -> None:
        """The data map gets the observations the state gets (a pass with no supervised token or a non-finite value
        is none), with the same margin (derived from correct and confidence where the record has none)."""
        correct = np.asarray(correct, dtype=bool)
        confidence = np.clip(np.nan_to_num(np.asarray(confidence, np.float64)), 0.0, 1.0)
        margin = fallback_margin(correct, confidence, margin)
        keep = observed & np.isfinite(margin)
        loss = np.maximum(np.asarray(loss, np.float64), 0.0)  # a hook's loss a hair below 0 is a gold probability 1
        self.data_map.update(np.asarray(ids)[keep], self.epoch, loss[keep], correct[keep], margin[keep])

    def end_epoch(self, epoch: int, passes: int, batches: int, tokens: int) -> dict:
        """Close an epoch: repartition when due, log its row, return it."""
        phase, _ = self.phase_and_weights(epoch)
        share = self.trained_share(epoch, passes)
        if (epoch + 1) % self.config.repartition_every == 0:
            self.state.repartition()
        live = ~self.state.pruned
        row = {"epoch": epoch + 1, "phase": phase,
               "sample_passes": passes, "batches": batches, "tokens": tokens, **counts(self.state.bucket, live),
               "pruned": int(self.state.pruned.sum()), "stuck": int(self.state.stuck.sum()), "epoch_share": share}
        self.history.append(row)
        self.epoch = epoch + 1
        self._plans = {e: p for e, p in self._plans.items() if e > epoch}
        return row

    def mastery_out_of_reach(self) -> str | None:
        """Why nothing can freeze, when no sample has been correct in any pass so far on a token head (more than one
        supervised token a sample: run_clm's 32-token blocks are never all top-1); None otherwise."""
        if not isinstance(self.policy, GEKOPolicy) or self.state.correct.any():  # (the cheap test first)
            return None
        stats = self.data_map.statistics()
        observed = stats["observations"] > 0
        trained = self.pass_count > 0
        if not observed.any() or np.nanmax(stats["correctness"]) > 0:
            return None
        tokens = float(np.median(self.pass_tokens[trained] / self.pass_count[trained]))
        if tokens <= 1:
            return None
        return (f"[GEKO] No sample has been correct in any pass so far, at a median of {tokens:g} supervised tokens "
                "a sample: on a token head a sample is correct only when every supervised token is the top-1 "
                "prediction (a margin is its weakest token's, so mastery='margin' asks the same), and only correct "
                "samples reach LIGHT or FREEZE, so every epoch trains every sample and saves nothing (its plan "
                "rounded up to whole optimizer steps may cost a little more). To save compute, pass "
                "compute_correctness= (e.g. token accuracy >= 0.9) and compute_confidence= to GEKOTrainer or "
                "GEKOCallback, or set target_budget (--geko_target_budget 0.7) to spend a fixed share of the passes.")

    def trained_share(self, epoch: int, passes: int) -> float:
        """How much of a full-data epoch this epoch stands for: its share (a fractional last epoch), times the part
        of its plan trained. A run stopped mid-epoch (EarlyStoppingCallback, should_training_stop) is compared with a
        stock run stopped at the same point of its epoch, not with a whole epoch it never trained."""
        planned = len(self._plans.get(epoch, ()))
        done = min(passes / planned, 1.0) if planned else 1.0
        return self.epoch_share(epoch) * done

    # -- accounting (accounting.py) ---------------------------------------------------------------------
    def reference_batches_per_epoch(self) -> int:
        return accounting.reference_batches_per_epoch(self)

    def reference_epochs(self) -> float:
        return accounting.reference_epochs(self)

    def full_data_reference(self) -> dict:
        return accounting.full_data_reference(self)

    def efficiency_report(self) -> dict:
        return accounting.efficiency_report(self)

    # -- persistence --------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "state": self.state.state_dict(),
            "epoch": self.epoch,
            "history": list(self.history),
            "totals": dict(self.totals),
            "skipped": dict(self.skipped),
            "pass_count": self.pass_count.copy(), "pass_tokens": self.pass_tokens.copy(),
            "plans": {int(e): p.copy() for e, p in self._plans.items()},
            "policy": self.policy.name, "policy_state": self.policy.state_dict(),
            "data_map": self.data_map.state_dict(),
            "config": self.config.to_dict(),
            "seed": self.seed, "num_epochs": self.num_epochs, "unit": self.unit, "batch_size": self.batch_size,
            "last_epoch_fraction": self.last_epoch_fraction, "fixed_steps": self.fixed_steps,
            "drop_last": self.drop_last, "max_steps": self.max_steps,
        }

    @classmethod
    def from_state_dict(cls, d: dict) -> "GEKOTracker":
        """The tracker a `state_dict()` was taken from, rebuilt from it alone (no Trainer, no dataset): what
        `geko-hf report` reads out of a checkpoint's geko_state.npz. A state_dict carries its constructor
        arguments; states saved before `last_epoch_fraction` / `fixed_steps` / `drop_last` existed get their
        defaults."""
        tracker = cls(int(d["state"]["num_samples"]), GEKOConfig.from_dict(d["config"]), seed=d["seed"],
                      num_epochs=d["num_epochs"], unit=d["unit"], batch_size=d["batch_size"],
                      last_epoch_fraction=d.get("last_epoch_fraction", 1.0), fixed_steps=d.get("fixed_steps", False),
                      drop_last=d.get("drop_last", False), max_steps=d.get("max_steps", 0))
        tracker.load_state_dict(d)
        return tracker

    def load_state_dict(self, d: dict) -> None:
        self.state.load_state_dict(d["state"])
        self.epoch = int(d["epoch"])
        self.history = list(d["history"])
        self.totals = dict(d["totals"])
        self.skipped = {**self.skipped, **d.get("skipped", {})}
        self._load_pass_counts(d)
        self._plans = {int(e): np.asarray(p, dtype=np.int64) for e, p in d.get("plans", {}).items()}
        self.policy.load_state_dict(d.get("policy_state", {}))
        if "data_map" in d:  # (states of geko_hf <= 0.3 have none: the map starts at the resumed epoch)
            self.data_map.load_state_dict(d["data_map"])


    def _load_pass_counts(self, d: dict) -> None:
        """The pass and token counts; a state saved before they existed (geko_hf <= 0.3) gets what its state implies:
        each observation a pass at the sample's last token count."""
        if "pass_count" in d:
            self.pass_count = np.asarray(d["pass_count"]).astype(np.uint32)
            self.pass_tokens = np.asarray(d["pass_tokens"]).astype(np.uint64)
        else:
            self.pass_count = self.state.times_seen.astype(np.uint32)
            self.pass_tokens = self.state.tokens.astype(np.uint64) * self.pass_count


def partition_line(row: dict) -> str:
    """The seed's per-epoch line: `[GEKO] Epoch 1 Partition: FREEZE:    0 (  0.0%) | LIGHT: ...`."""
    total = max(sum(row[name] for name in BUCKET_NAMES), 1)
    parts = [f"{name}: {row[name]:>4} ({100.0 * row[name] / total:5.1f}%)" for name in BUCKET_NAMES]
    extra = f" | pruned: {row['pruned']}" if row.get("pruned") else ""
    return f"[GEKO] Epoch {row['epoch']} Partition: " + " | ".join(parts) + extra
