"""`SampleState`: the per-sample learning state, as a handful of flat numpy arrays (48 bytes a sample)."""

from __future__ import annotations

import numpy as np

from .buckets import FOCUS, FREEZE, partition, stuck_mask
from .config import GEKOConfig
from .q_value import q_update, quality

HISTORY = 5  # losses kept for `quality` (gekolib: std of the last 5 losses; the max quality_window)
STATE_VERSION = 2  # 2: margin, margin_sum, streak, streak_margin, stuck (version 1 states load with defaults)
_MAX_SEEN = np.iinfo(np.uint16).max
_F32_MAX = float(np.finfo(np.float32).max)
_CHUNK = 1 << 17  # ids per step of an update (see SampleState._apply)
_F16_MAX = 6.0e4  # losses are stored as float16 in the history ring; clip below its max (65504)

# name -> (dtype, extra shape). The explicit list is what state_dict() saves and load_state_dict() checks.
ARRAYS = {
    "loss": (np.float32, ()),
    "confidence": (np.float32, ()),
    "correct": (np.bool_, ()),
    "q": (np.float32, ()),
    "loss_history": (np.float16, (HISTORY,)),
    "times_seen": (np.uint16, ()),
    "bucket": (np.uint8, ()),
    "frozen_epochs": (np.uint16, ()),
    "pruned": (np.bool_, ()),
    "tokens": (np.uint32, ()),  # supervised tokens in the sample's last pass (for the token accounting)
    "margin": (np.float32, ()),  # last p(label) - max other p (token heads: the weakest token's)
    "margin_sum": (np.float32, ()),  # over every observation: mean margin = margin_sum / times_seen (as AUM)
    "streak": (np.int16, ()),  # consecutive correct (> 0) or wrong (< 0) observations, the last one included
    "streak_margin": (np.float32, ()),  # margin at the first observation of the current wrong streak
    "stuck": (np.bool_, ()),  # wrong for stuck_after observations without a margin gain (set at repartition)
}
_STREAK_MAX = int(np.iinfo(np.int16).max)


class SampleState:
    """Learning state of N samples, indexed by sample id 0..N-1 (the row of the training dataset)."""

    def __init__(self, num_samples: int, config: GEKOConfig | None = None):
        if num_samples < 1:
            raise ValueError(f"`num_samples` must be >= 1, got {num_samples}.")
        self.num_samples = int(num_samples)
        self.config = config or GEKOConfig()
        for name, (dtype, shape) in ARRAYS.items():
            setattr(self, name, np.zeros((self.num_samples, *shape), dtype=dtype))
        self.q[:] = self.config.q_value_init
        self.bucket[:] = FOCUS  # every sample starts in FOCUS (gekolib)
        # `quality` is derived from the history, but kept up to date for the samples each update touches, so a
        # repartition of 10 M samples does not recompute 10 M standard deviations. Not saved: rebuilt on load.
        self._quality = np.zeros(self.num_samples, dtype=np.float32)

    # -- recording ----------------------------------------------------------------------------------
    def update(self, ids, losses, correct, confidence, tokens=None, margin=None) -> int:
        """Record one observation per entry (a training pass of sample ids[i]); returns how many were used.

        Repeated ids are applied in order (a HARD sample seen 3 times in an epoch gets 3 Q updates).
        Non-finite losses or confidences are dropped rather than poisoning the EMA. A missing (None or NaN)
        margin is derived from correct and confidence (see `fallback_margin`).
        """
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        losses = np.asarray(losses, dtype=np.float64).reshape(-1)
        correct = np.asarray(correct, dtype=bool).reshape(-1)
        confidence = np.asarray(confidence, dtype=np.float64).reshape(-1)
        margin = fallback_margin(correct, np.clip(np.nan_to_num(confidence), 0.0, 1.0), margin)
        if not (len(ids) == len(losses) == len(correct) == len(confidence) == len(margin)):
            raise ValueError(
                f"update() needs arrays of one length, got ids {len(ids)}, losses {len(losses)}, "
                f"correct {len(correct)}, confidence {len(confidence)}."
            )
        if len(ids) and (ids.min() < 0 or ids.max() >= self.num_samples):
            bad = ids[(ids < 0) | (ids >= self.num_samples)][0]
            raise IndexError(f"sample id {bad} is outside the state's range [0, {self.num_samples}).")
        if tokens is not None:
            self.tokens[ids] = np.asarray(tokens, dtype=np.int64).reshape(-1).clip(0, np.iinfo(np.uint32).max)
        # float32 storage: a finite float64 beyond float32's range would become inf; treat it as non-finite
        keep = (np.abs(losses) < _F32_MAX) & np.isfinite(confidence)
        confidence = np.clip(confidence, 0.0, 1.0)  # user-supplied confidences may stray outside [0, 1]
        kept = int(keep.sum())
        columns = (ids, losses, correct, confidence, margin)
        if kept < len(keep):
            columns = tuple(c[keep] for c in columns)
        rounds = _occurrence_rounds(columns[0], self.num_samples)
        if rounds is None:  # every id once (a whole epoch's records, usually): one round, no copies
            self._apply(*columns)
        else:
            for rows in rounds:
                self._apply(*(c[rows] for c in columns))
        return kept

    def _apply(self, ids, losses, correct, confidence, margin):
        """One observation for each of a set of UNIQUE ids, a chunk of ids at a time: a dozen temporaries of a chunk,
        reused from the heap and warm in cache, instead of a dozen fresh arrays of a whole epoch's length (each
        page-faulted in: half the time at 10 M samples). The arithmetic is per sample, so chunks change nothing."""
        for start in range(0, len(ids), _CHUNK):
            part = slice(start, start + _CHUNK)
            self._apply_chunk(ids[part], losses[part], correct[part], confidence[part], margin[part])
            self._apply_margin(ids[part], correct[part], margin[part])

    def _apply_margin(self, ids, correct, margin):
        """Margin, its running sum and the correct/wrong streak; a wrong streak remembers its first margin."""
        prev = self.streak[ids].astype(np.int32)
        starts_wrong = ~correct & (prev >= 0)
        self.streak_margin[ids] = np.where(starts_wrong, margin, self.streak_margin[ids])
        self.streak[ids] = np.where(correct, np.maximum(prev, 0) + 1, np.minimum(prev, 0) - 1).clip(
            -_STREAK_MAX, _STREAK_MAX)
        self.margin[ids] = margin
        self.margin_sum[ids] += margin.astype(np.float32)

    def _apply_chunk(self, ids, losses, correct, confidence, margin):
        cfg = self.config
        self.loss[ids] = losses
        self.correct[ids] = correct
        self.confidence[ids] = confidence
        self.q[ids] = q_update(self.q[ids], losses, cfg.effective_q_lr(), cfg.q_value_loss_scale)
        seen = self.times_seen[ids]
        # the ring slot of each id, as a flat index: a 2-D fancy index [ids, slot] is several times slower
        np.put(self.loss_history, ids * HISTORY + seen % HISTORY, np.clip(losses, -_F16_MAX, _F16_MAX))
        seen = np.minimum(seen.astype(np.int64) + 1, _MAX_SEEN)
        self.times_seen[ids] = seen
        # np.take of whole rows: 3-4x faster than loss_history[ids] (numpy's fancy-index path for [N, 5] float16)
        self._quality[ids] = quality(np.take(self.loss_history, ids, axis=0), seen, cfg.quality_window)

    # -- repartition --------------------------------------------------------------------------------
    def quality(self) -> np.ndarray:
        """1 - std of each sample's recent losses (see q_value.quality)."""
        return self._quality

    def repartition(self) -> np.ndarray:
        """Re-bucket every live sample, count consecutive FREEZE epochs, prune; returns the bucket array."""
        cfg = self.config
        live = ~self.pruned
        new = partition(self, cfg)
        np.copyto(self.bucket, new, where=live)  # pruned samples keep their last bucket
        self.stuck[:] = stuck_mask(self.streak, self.margin, self.streak_margin, cfg.stuck_after, cfg.stuck_min_gain)
        self.stuck &= live
        frozen = live & (self.bucket == FREEZE)
        # consecutive FREEZE epochs (each repartition spans repartition_every of them; saturating); in place, no
        # fancy-indexed copies (10 M samples)
        fe, span = self.frozen_epochs, cfg.repartition_every
        np.add(fe, span, out=fe, where=frozen & (fe <= _MAX_SEEN - span))
        np.copyto(fe, 0, where=live & ~frozen)
        if cfg.prune_frozen_after > 0:
            self.pruned |= frozen & (self.frozen_epochs >= cfg.prune_frozen_after)
        return self.bucket

    # -- persistence --------------------------------------------------------------------------------
    def arrays(self) -> dict:
        """The state's arrays by name, not copied (read-only use: reports, suspects)."""
        return {name: getattr(self, name) for name in ARRAYS}

    def state_dict(self) -> dict:
        d = {name: getattr(self, name).copy() for name in ARRAYS}
        d["num_samples"] = self.num_samples
        d["state_version"] = STATE_VERSION
        return d

    def load_state_dict(self, d: dict) -> None:
        if int(d.get("num_samples", -1)) != self.num_samples:
            raise ValueError(
                f"GEKO state holds {d.get('num_samples')} samples but the training dataset has {self.num_samples}: "
                "it was saved for a different dataset. Start without resuming, or resume with the same dataset."
            )
        if int(d.get("state_version", 0)) > STATE_VERSION:
            raise ValueError(
                f"GEKO state version {d['state_version']} is newer than this geko_hf understands "
                f"({STATE_VERSION}): upgrade geko_hf (pip install -U geko_hf)."
            )
        d = _upgrade(d, self.num_samples)
        for name, (dtype, shape) in ARRAYS.items():
            arr = np.asarray(d[name])
            if arr.shape != (self.num_samples, *shape):
                raise ValueError(f"GEKO state array {name!r} has shape {arr.shape}, expected {(self.num_samples, *shape)}.")
            setattr(self, name, arr.astype(dtype, copy=True))
        self._quality = np.empty(self.num_samples, dtype=np.float32)
        for start in range(0, self.num_samples, _CHUNK):  # a chunk at a time, as in _apply
            part = slice(start, start + _CHUNK)
            self._quality[part] = quality(self.loss_history[part], self.times_seen[part], self.config.quality_window)

    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in ARRAYS) + self._quality.nbytes

    def bytes_per_sample(self) -> float:
        return self.nbytes() / self.num_samples


def fallback_margin(correct, confidence, margin=None) -> np.ndarray:
    """The given margins, with each missing one (None, NaN) replaced by the margin a TWO-class head would have at
    that correctness and top-1 probability c: 2c - 1 if correct, 1 - 2c if wrong; clipped to the correct side of
    0 (with more classes c may be under 0.5). For user hooks and records that carry no margin."""
    correct = np.asarray(correct, dtype=bool)
    two_class = np.where(correct, np.maximum(2 * confidence - 1, 0.0), np.minimum(1 - 2 * confidence, 0.0))
    if margin is None:
        return two_class
    margin = np.asarray(margin, dtype=np.float64).reshape(-1)
    return np.where(np.isnan(margin), two_class, np.clip(margin, -1.0, 1.0)) if len(margin) == len(correct) \
        else margin  # a length mismatch is reported by update()


def _upgrade(d: dict, num_samples: int) -> dict:
    """A version-1 state (geko_hf <= 0.3) with the version-2 arrays at what its record implies: margins from its
    correct/confidence, a streak of +-1 for every observed sample (one observation is all it proves), not stuck."""
    if int(d.get("state_version", 1)) >= 2:
        return d
    d = dict(d)
    seen = np.asarray(d["times_seen"]) > 0
    correct = np.asarray(d["correct"], dtype=bool)
    margin = np.where(seen, fallback_margin(correct, np.asarray(d["confidence"], np.float64)), 0.0)
    d["margin"] = margin
    d["margin_sum"] = margin * np.asarray(d["times_seen"], np.float64)
    d["streak"] = np.where(seen, np.where(correct, 1, -1), 0)
    d["streak_margin"] = margin
    d["stuck"] = np.zeros(num_samples, dtype=bool)
    return d


def _occurrence_rounds(ids: np.ndarray, num_samples: int | None = None):
    """None when no id repeats (then one round applies all), else a list of index arrays, round k holding the k-th
    occurrence of every id that has one (so each holds unique ids, and repeats come in their original order).

    Whole epochs (ids ~ num_samples) are checked for repeats with a bincount (0.2 s at 10 M ids, where the stable
    argsort took 2 s), and only the repeated ids are sorted."""
    if len(ids) == 0:
        return []
    if num_samples is not None and len(ids) >= num_samples // 16:
        repeated = np.flatnonzero(np.bincount(ids, minlength=num_samples)[ids] > 1)
        if len(repeated) == 0:
            return None
        occurrence = np.zeros(len(ids), dtype=np.int64)
        occurrence[repeated] = _occurrences(ids[repeated])
    else:
        occurrence = _occurrences(ids)
        if occurrence.max() == 0:
            return None
    return [np.flatnonzero(occurrence == k) for k in range(int(occurrence.max()) + 1)]


def _occurrences(ids: np.ndarray) -> np.ndarray:
    """How many times each entry's id occurred before it (0 for a first occurrence)."""
    order = np.argsort(ids, kind="stable")
    s = ids[order]
    starts = np.r_[True, s[1:] != s[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(len(s)), 0))
    occurrence = np.empty(len(ids), dtype=np.int64)
    occurrence[order] = np.arange(len(s)) - group_start
    return occurrence
