"""`GEKOConfig`: every knob of the GEKO algorithm, with the seed's names and defaults.

The reference is gekolib 0.3.0's public description. Fields marked "geko_hf" are our additions; they are
the named flags behind which the algorithm is improved where measurement showed the seed's constants
cannot deliver what it promises (see the README's algorithm section).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

Q_VALUE_MODES = ("auto", "seed")
MASTERY_RULES = ("confidence", "margin")
BUDGET_MODES = ("active", "weighted")


def _help(text: str) -> dict:
    return {"help": text}


@dataclass
class GEKOConfig:
    """Configuration of GEKO: the selection policy, the bucket rules, how an epoch is planned, and the data map (pure:
    no Trainer settings here). Every field is also `--geko_<name>` in `GEKOTrainingArguments` / `geko-hf`; each
    field's help text (docs/configuration.md) says more.

    Bucket rules (evaluated at every repartition, per sample):
      FREEZE  correct and confidence > freeze_confidence and quality > freeze_quality and Q >= min_q_for_freeze
      LIGHT   correct otherwise, with margin p(label) - max other p > light_margin
      FOCUS   wrong and confidence <= focus_confidence, or correct at margin <= light_margin (at chance)
      HARD    wrong and confidence > focus_confidence

    > Policy and output
        policy, data_map, data_map_burn_out, log_bucket_stats
    > Mastery: when a sample is FREEZE, LIGHT, FOCUS or HARD
        freeze_confidence, freeze_quality, focus_confidence, light_margin, quality_window, mastery, freeze_margin,
        hard_margin, mastery_streak
    > Q-value: the guard against freezing too early
        q_value_lr, min_q_for_freeze, q_value_loss_scale, q_value_mode, freeze_after_observations, q_value_init
    > Epoch plans: how many passes, to whom
        bucket_weights, use_curriculum, epoch_budget, light_sample_rate, target_budget, stratify_by,
        repartition_every, max_times_seen
    > Samples that leave or come back
        prune_frozen_after, stuck_after, stuck_min_gain, stuck_sample_rate, freeze_recheck_rate, final_full_share
    """

    freeze_confidence: float = field(
        default=0.85, metadata=_help("Confidence a correct sample must exceed (strictly) to enter FREEZE.")
    )
    freeze_quality: float = field(
        default=0.80,
        metadata=_help(
            "Loss stability (1 - std of the sample's last quality_window losses) a sample must exceed (strictly) to "
            "enter FREEZE."
        ),
    )
    focus_confidence: float = field(
        default=0.60,
        metadata=_help("Confidence split of wrong samples: <= this is FOCUS (still learning), above is HARD."),
    )
    bucket_weights: list[float] = field(
        default_factory=lambda: [1.0, 1.0, 1.0],
        metadata=_help(
            "Sampling weights (HARD, FOCUS, LIGHT) used when use_curriculum is off. FREEZE is always 0. "
            "gekolib: 3 1 0; geko_hf's default 1 1 1 only skips mastered samples (a LIGHT weight of 0 trains on "
            "wrong samples alone and measurably wrecks accuracy, see README). On the CLI: --geko_bucket_weights 3 1 0."
        ),
    )
    use_curriculum: bool = field(
        default=False,
        metadata=_help(
            "Mountain curriculum: per-phase (HARD, FOCUS, LIGHT) weights replace bucket_weights. gekolib: on; "
            "geko_hf's default is off (its PEAK phase, LIGHT weight 0, wrecks accuracy in short fine-tunes)."
        ),
    )
    q_value_lr: float = field(default=0.1, metadata=_help("EMA rate of the per-sample Q-value update."))
    min_q_for_freeze: float = field(
        default=0.8, metadata=_help("Minimum Q-value (inclusive) for a sample to enter FREEZE.")
    )
    q_value_loss_scale: float = field(
        default=10.0, metadata=_help("Loss normaliser of the Q update: target = 1 - min(loss / scale, 1).")
    )
    repartition_every: int = field(default=1, metadata=_help("Re-partition the buckets every N epochs."))
    log_bucket_stats: bool = field(
        default=True, metadata=_help("Print the per-epoch partition line (the counts always go to the HF logs).")
    )
    max_times_seen: int = field(
        default=50, metadata=_help("Maximum training passes per sample over the whole run; then it is not drawn.")
    )
    prune_frozen_after: int = field(
        default=0,
        metadata=_help("Permanently remove samples frozen for N+ consecutive epochs (0 = disabled)."),
    )
    # geko_hf additions ---------------------------------------------------------------------------
    q_value_mode: str = field(
        default="auto",
        metadata=_help(
            "geko_hf. 'seed': the Q EMA uses q_value_lr as given (a sample needs ~9 near-zero-loss updates to "
            "reach min_q_for_freeze, so a 3-epoch fine-tune freezes nothing). 'auto': the rate is raised, never "
            "lowered, so that freeze_after_observations near-zero-loss observations reach min_q_for_freeze."
        ),
    )
    freeze_after_observations: int = field(
        default=1,
        metadata=_help(
            "geko_hf. With q_value_mode='auto': near-zero-loss observations after which a sample may freeze (an "
            "upper bound: at loss ~0 it may take fewer)."
        ),
    )
    q_value_init: float = field(default=0.5, metadata=_help("Initial Q-value of every sample."))
    epoch_budget: str = field(
        default="active",
        metadata=_help(
            "geko_hf. Passes an epoch plans: 'active' = one per non-FREEZE sample (weights only move passes between "
            "buckets); 'weighted' = each sample's weight relative to FOCUS (LIGHT samples get a fraction of a pass), "
            "never more than 'active'."
        ),
    )
    light_sample_rate: float = field(
        default=0.5,
        metadata=_help(
            "geko_hf. Share of LIGHT samples (correct, not yet mastered) trained each epoch: each takes part with "
            "this probability, drawn afresh every epoch, and a drawn one's gradient is weighted 1 / rate (importance "
            "sampling, as InfoBatch). With equal bucket weights (the default 1 1 1) the epoch's expected gradient then "
            "equals training on all of them for a loss averaged over samples (a loss averaged over tokens: only "
            "approximately, as samples differ in length); with unequal ones it is that gradient times one global "
            "factor, the same for every sample, which the learning rate absorbs (an epoch's passes are spread by "
            "weight over the samples drawn, so thinning scales every expectation alike; the factor depends on the "
            "bucket shares: 0.86 for balanced 3 2 1 with 60 percent LIGHT and 20 each HARD and FOCUS). 1.0 = "
            "every LIGHT sample every epoch (the seed's behaviour); geko_hf's default 0.5 kept the full arm's accuracy "
            "(see README, Performance). Range (0, 1]."
        ),
    )
    light_margin: float = field(
        default=0.1,
        metadata=_help(
            "geko_hf. A correct sample is LIGHT (nearly mastered, thinned by light_sample_rate) only when its margin "
            "p(label) - max other p exceeds this; at or below it stays FOCUS. A model at chance is 'correct' on the "
            "samples of the class it guesses, at a margin near 0 (two classes at p = 0.5: 0), and those are not "
            "nearly mastered. Token heads: the weakest supervised token's margin. -1 = off (the seed: every correct "
            "sample that does not freeze is LIGHT). Range [-1, 1]."
        ),
    )
    quality_window: int = field(
        default=2,
        metadata=_help(
            "geko_hf. Losses in the stability window of `quality` (1 - their std). gekolib uses 5, which blocks "
            "freezing any sample that learned during the run until 5 stable observations; 2 asks that the last "
            "two losses agree (within 0.4 at freeze_quality 0.8). Range 1-5."
        ),
    )

    # geko_hf v2 (issue 14): class-count-free mastery, persistent-wrong samples, re-checks ------------------
    mastery: str = field(
        default="confidence",
        metadata=_help(
            "geko_hf. Which rule decides FREEZE and HARD. 'confidence' (the seed's): top-1 probability > "
            "freeze_confidence, which depends on the number of classes (16 classes rarely reach 0.85). 'margin': "
            "p(label) - max other p > freeze_margin (for token heads the weakest supervised token's), the same "
            "for 2 or 50,000 classes; wrong samples are HARD when another answer leads by more than hard_margin."
        ),
    )
    freeze_margin: float = field(
        default=0.5, metadata=_help("geko_hf. mastery='margin': margin a correct sample must exceed to FREEZE.")
    )
    hard_margin: float = field(
        default=0.2, metadata=_help("geko_hf. mastery='margin': a wrong sample whose margin is below -this is HARD.")
    )
    mastery_streak: int = field(
        default=1,
        metadata=_help(
            "geko_hf. Observations in a row a sample must be correct on before it may FREEZE (any mastery rule); "
            "1 = the seed (one correct observation can freeze)."
        ),
    )
    stuck_after: int = field(
        default=0,
        metadata=_help(
            "geko_hf. A sample wrong on its last N observations whose margin rose by no more than stuck_min_gain "
            "is 'stuck': likely a label error, drawn at stuck_sample_rate and never up-weighted (0 = off). "
            "Measured harmful in a 3-epoch run over 30 percent flipped labels, where half the stuck samples were clean but "
            "not yet learned (README, Performance); get_label_issues() ranks likely label errors either way."
        ),
    )
    stuck_min_gain: float = field(
        default=0.05, metadata=_help("geko_hf. Margin gain since a wrong streak began that still counts as learning.")
    )
    stuck_sample_rate: float = field(
        default=0.1,
        metadata=_help(
            "geko_hf. Share of stuck samples trained each epoch (a fresh draw, gradient weight 1: fitting them is "
            "not the goal; drawn ones are re-observed, so a stuck sample that starts to learn leaves). Range [0, 1]."
        ),
    )
    freeze_recheck_rate: float = field(
        default=0.0,
        metadata=_help(
            "geko_hf. Share of FREEZE samples drawn each epoch anyway (gradient weight 1), so forgetting is seen "
            "and a forgotten sample thaws; 0 = frozen samples are never seen again (the seed). Range [0, 1]."
        ),
    )
    final_full_share: float = field(
        default=0.0,
        metadata=_help(
            "geko_hf. The last share of the run, in epochs of data (a fractional last epoch included), trains every "
            "live sample once, unweighted: the epoch it starts in switches to full data at that point of its plan "
            "(InfoBatch's final full-data phase, Qin et al. ICLR 2024, uses 0.125). 0 = off. Range [0, 1)."
        ),
    )

    target_budget: float | None = field(
        default=None,
        metadata=_help(
            "geko_hf. Share of the full-data sample passes to spend each epoch (0.6 = 60 percent: every epoch plans "
            "round(0.6 x samples) passes, rounded up to whole optimizer steps), exactly, unless the live samples "
            "cannot take that many (pruned, at max_times_seen). Re-check and stuck-sample probes count inside it. The "
            "bucket weights decide who gets the rest (a sample at most ceil(its weight / FOCUS's) passes); passes "
            "those cannot use go one each to the samples of zero-weight buckets (LIGHT at gekolib's 3 1 0), then to "
            "FREEZE re-checks, then to stuck samples. LIGHT thinning and its 1/rate weights are off (the budget sets "
            "every rate); "
            "full-data epochs (final_full_share) are exempt. None = the plan's length follows the buckets. Range (0, 1]."
        ),
    )
    stratify_by: str | None = field(
        default=None,
        metadata=_help(
            "geko_hf. A training-dataset column (e.g. 'label', or a task-family column of an SFT pool): every "
            "rate-based draw (LIGHT thinning, re-checks, stuck samples, and target_budget's: who gets the passes, the "
            "fills) then takes exactly its share (within one sample) from each value of the column, so no class or "
            "family is starved. None = independent draws per sample."
        ),
    )

    data_map: bool = field(
        default=True,
        metadata=_help(
            "geko_hf. Write the data map (every sample's training dynamics, region and label-issue rank) to "
            "output_dir/geko_data_map.parquet, its picture to geko_data_map.png and its page to "
            "geko_data_map.html, at train end. The map is recorded either way (trainer.geko.data_map())."
        ),
    )
    data_map_burn_out: int = field(
        default=0,
        metadata=_help(
            "geko_hf. Also keep the data map's statistics over the first N epochs only (Dataset Cartography's "
            "burn_out): early_confidence, early_variability and early_aum columns, before the model memorises "
            "flipped labels, and the label-issue rankings 'early_aum' and 'early_confidence'. 24 more bytes a "
            "sample. 0 = off."
        ),
    )
    policy: str = field(
        default="geko",
        metadata=_help(
            "geko_hf. The selection policy, by name (geko_hf.core.policies): 'geko' (buckets, the default), "
            "'geko_v2' (geko with the v2 preset's rules for every rule field left at its default), 'observe' (train "
            "exactly as the stock Trainer does and only record: the data map), 'random' (a fresh random "
            "target_budget share every epoch), 'infobatch' (Qin et al., ICLR 2024), 'full' (every sample once an "
            "epoch), or one registered with register_policy."
        ),
    )

    def __post_init__(self):
        self.bucket_weights = [float(w) for w in self.bucket_weights]
        self.validate()

    # -- validation ---------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ValueError naming the field, the value and the valid range."""
        for name in ("use_curriculum", "log_bucket_stats", "data_map"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"`{name}` must be True or False, got {getattr(self, name)!r}.")
        for name in ("freeze_confidence", "focus_confidence", "min_q_for_freeze"):
            _check_range(name, getattr(self, name), 0.0, 1.0, low_open=True)
        _check_range("freeze_quality", self.freeze_quality, -math.inf, 1.0)
        _check_range("q_value_init", self.q_value_init, 0.0, 1.0)
        _check_range("q_value_lr", self.q_value_lr, 0.0, 1.0, low_open=True)
        _check_range("light_sample_rate", self.light_sample_rate, 0.0, 1.0, low_open=True)
        _check_positive("q_value_loss_scale", self.q_value_loss_scale)
        for name in ("repartition_every", "max_times_seen", "freeze_after_observations"):
            _check_int(name, getattr(self, name), minimum=1)
        _check_int("prune_frozen_after", self.prune_frozen_after, minimum=0)
        _check_int("quality_window", self.quality_window, minimum=1)
        if self.quality_window > 5:
            raise ValueError(f"`quality_window` must be in [1, 5], got {self.quality_window}.")
        if self.max_times_seen > 65535:
            raise ValueError(f"`max_times_seen` must be <= 65535 (stored as uint16), got {self.max_times_seen}.")
        if self.focus_confidence >= self.freeze_confidence:
            raise ValueError(
                f"`focus_confidence` ({self.focus_confidence}) must be below `freeze_confidence` "
                f"({self.freeze_confidence}): a wrong sample more confident than a frozen one makes no sense. "
                "Lower focus_confidence or raise freeze_confidence."
            )
        w = self.bucket_weights
        if len(w) != 3 or not all(math.isfinite(x) and x >= 0 for x in w) or sum(w) <= 0:
            raise ValueError(
                f"`bucket_weights` must be three finite non-negative numbers (HARD, FOCUS, LIGHT) with a positive "
                f"sum, got {w}. Example: bucket_weights=(3, 1, 0)."
            )
        if self.stratify_by is not None and not (isinstance(self.stratify_by, str) and self.stratify_by):
            raise ValueError(f"`stratify_by` must be a column name or None, got {self.stratify_by!r}.")
        if self.mastery not in MASTERY_RULES:
            raise ValueError(f"`mastery` must be one of {MASTERY_RULES}, got {self.mastery!r}.")
        _check_range("freeze_margin", self.freeze_margin, -1.0, 1.0)
        _check_range("hard_margin", self.hard_margin, 0.0, 1.0)
        _check_range("light_margin", self.light_margin, -1.0, 1.0)
        _check_range("stuck_min_gain", self.stuck_min_gain, -1.0, 2.0)
        for name in ("stuck_sample_rate", "freeze_recheck_rate"):
            _check_range(name, getattr(self, name), 0.0, 1.0)
        _check_range("final_full_share", self.final_full_share, 0.0, 1.0)
        if self.final_full_share >= 1.0:
            raise ValueError(f"`final_full_share` must be in [0.0, 1.0), got {self.final_full_share!r}: 1 would "
                             "train every epoch on full data; use the stock Trainer for that.")
        _check_int("mastery_streak", self.mastery_streak, minimum=1)
        _check_int("stuck_after", self.stuck_after, minimum=0)
        _check_int("data_map_burn_out", self.data_map_burn_out, minimum=0)
        if self.target_budget is not None:
            _check_range("target_budget", self.target_budget, 0.0, 1.0, low_open=True)
        if self.epoch_budget not in BUDGET_MODES:
            raise ValueError(f"`epoch_budget` must be one of {BUDGET_MODES}, got {self.epoch_budget!r}.")
        if not isinstance(self.policy, str) or not self.policy:
            raise ValueError(f"`policy` must be the name of a selection policy, got {self.policy!r}.")
        from .policies import POLICIES  # (policies imports no config: no cycle)

        if self.policy not in POLICIES:
            raise ValueError(f"`policy` must be a registered selection policy ({', '.join(sorted(POLICIES))}, or one "
                             f"added with geko_hf.core.policies.register_policy), got {self.policy!r}.")
        if self.q_value_mode not in Q_VALUE_MODES:
            raise ValueError(f"`q_value_mode` must be one of {Q_VALUE_MODES}, got {self.q_value_mode!r}.")

    # -- derived values -----------------------------------------------------------------------------
    def effective_q_lr(self) -> float:
        """The EMA rate actually used.

        'auto' solves q_init -> min_q in k updates with a target of (1 + min_q)/2 headroom: from
        q_k = 1 - (1 - q0)(1 - a)^k >= 1 - (1 - min_q)/2 we get a = 1 - ((1 - min_q) / (2 (1 - q0)))^(1/k).
        The factor 2 leaves room for a small but non-zero loss (loss 0.5 at scale 10 still freezes).
        """
        if self.q_value_mode == "seed" or self.q_value_init >= self.min_q_for_freeze:
            return self.q_value_lr
        ratio = (1.0 - self.min_q_for_freeze) / (2.0 * (1.0 - self.q_value_init))
        needed = 1.0 - ratio ** (1.0 / self.freeze_after_observations)
        return float(min(1.0, max(self.q_value_lr, needed)))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GEKOConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def replace(self, **changes) -> "GEKOConfig":
        return dataclasses.replace(self, **changes)


def _check_range(name, value, low, high, low_open=False):
    ok = isinstance(value, (int, float)) and math.isfinite(value) and (value > low if low_open else value >= low)
    if not ok or value > high:
        bracket = "(" if low_open else "["
        raise ValueError(f"`{name}` must be in {bracket}{low}, {high}], got {value!r}.")


def _check_positive(name, value):
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"`{name}` must be a positive number, got {value!r}.")


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")


# Presets: the seed's values. They switch the curriculum off, because with the curriculum on the
# per-phase weights replace bucket_weights and the preset's weights would do nothing (a gekolib flaw).
GEKO_AGGRESSIVE = GEKOConfig(
    freeze_confidence=0.90, freeze_quality=0.85, bucket_weights=[5, 2, 0], use_curriculum=False
)
GEKO_BALANCED = GEKOConfig(
    freeze_confidence=0.85, freeze_quality=0.80, bucket_weights=[3, 2, 1], use_curriculum=False
)
GEKO_CONSERVATIVE = GEKOConfig(
    freeze_confidence=0.80, freeze_quality=0.75, bucket_weights=[2, 2, 1], use_curriculum=False
)
# The seed's own defaults, literally (no geko_hf improvement): for side-by-side comparisons.
GEKO_SEED = GEKOConfig(q_value_mode="seed", quality_window=5, epoch_budget="active", use_curriculum=True,
                       bucket_weights=[3, 1, 0], light_sample_rate=1.0, light_margin=-1.0)

# geko_hf v2 (issue 14): margin mastery with a streak, persistent-wrong samples drawn rarely, frozen samples
# re-checked, InfoBatch's full-data final phase. Measured in the README (Performance, v2).
GEKO_V2 = GEKOConfig(mastery="margin", mastery_streak=2, stuck_after=2, freeze_recheck_rate=0.1,
                     final_full_share=0.125)

# Record everything, train exactly as the stock Trainer does (the data map).
GEKO_OBSERVE = GEKOConfig(policy="observe")

PRESETS = {
    "default": GEKOConfig(),
    "observe": GEKO_OBSERVE,
    "aggressive": GEKO_AGGRESSIVE,
    "balanced": GEKO_BALANCED,
    "conservative": GEKO_CONSERVATIVE,
    "seed": GEKO_SEED,
    "v2": GEKO_V2,
}


def get_preset(name: str) -> GEKOConfig:
    """A fresh copy of a named preset ('aggressive', 'balanced', 'conservative', 'seed', 'default')."""
    key = name.lower()
    if key not in PRESETS:
        raise ValueError(f"Unknown GEKO preset {name!r}; choose one of {sorted(PRESETS)}.")
    return dataclasses.replace(PRESETS[key], bucket_weights=list(PRESETS[key].bucket_weights))
