"""Where a sample's bucket is decided: the seed's four rules, the class-count-free margin rules, the at-chance floor
of LIGHT, the "stuck" flag."""

from __future__ import annotations

import numpy as np

# Bucket codes, stored as uint8 in the state. Order is the seed's display order.
FREEZE, LIGHT, FOCUS, HARD = 0, 1, 2, 3
BUCKET_NAMES = ("FREEZE", "LIGHT", "FOCUS", "HARD")


def classify(correct, confidence, quality, q, *, freeze_confidence, freeze_quality, focus_confidence,
             min_q_for_freeze) -> np.ndarray:
    """Bucket of each sample.

    Boundaries follow gekolib exactly: confidence must EXCEED freeze_confidence (0.85 -> LIGHT), quality must
    exceed freeze_quality, Q must REACH min_q_for_freeze (0.80 -> FREEZE), and a wrong sample at exactly
    focus_confidence is FOCUS (0.60 -> FOCUS, 0.61 -> HARD).
    """
    correct = np.asarray(correct, dtype=bool)
    confidence = np.asarray(confidence)
    frozen = correct & (confidence > freeze_confidence) & (quality > freeze_quality) & (q >= min_q_for_freeze)
    out = np.where(confidence > focus_confidence, np.uint8(HARD), np.uint8(FOCUS))  # uint8: no int64 temp
    out[correct] = LIGHT
    out[frozen] = FREEZE
    return out


def classify_margin(correct, margin, streak, q, *, freeze_margin, hard_margin, mastery_streak,
                    min_q_for_freeze) -> np.ndarray:
    """Bucket of each sample by its MARGIN, p(label) - max other p, which means the same for 2 or 50,000 classes
    (a top-1 probability of 0.85 does not: with 16 classes it is rarely reached by samples long learned).

    FREEZE  correct, margin > freeze_margin, correct on the last `mastery_streak` observations, Q >= min_q
    LIGHT   correct otherwise
    HARD    wrong and margin < -hard_margin (another answer is preferred by a clear margin)
    FOCUS   wrong otherwise
    """
    correct = np.asarray(correct, dtype=bool)
    margin = np.asarray(margin)
    frozen = correct & (margin > freeze_margin) & (np.asarray(streak) >= mastery_streak) & (q >= min_q_for_freeze)
    out = np.where(margin < -hard_margin, np.uint8(HARD), np.uint8(FOCUS))
    out[correct] = LIGHT
    out[frozen] = FREEZE
    return out


def partition(state, cfg) -> np.ndarray:
    """Every sample's bucket under the config's `mastery` rule ('confidence': the seed's; 'margin'); a correct
    sample at a margin of at most `light_margin` is FOCUS, not LIGHT, under either (see at_chance)."""
    if cfg.mastery == "margin":
        out = classify_margin(state.correct, state.margin, state.streak, state.q, freeze_margin=cfg.freeze_margin,
                              hard_margin=cfg.hard_margin, mastery_streak=cfg.mastery_streak,
                              min_q_for_freeze=cfg.min_q_for_freeze)
        return at_chance(out, state.margin, cfg.light_margin)
    out = classify(state.correct, state.confidence, state.quality(), state.q,
                   freeze_confidence=cfg.freeze_confidence, freeze_quality=cfg.freeze_quality,
                   focus_confidence=cfg.focus_confidence, min_q_for_freeze=cfg.min_q_for_freeze)
    if cfg.mastery_streak > 1:  # one lucky observation does not make a sample mastered
        out[(out == FREEZE) & (state.streak < cfg.mastery_streak)] = LIGHT
    return at_chance(out, state.margin, cfg.light_margin)


def at_chance(buckets, margin, light_margin: float) -> np.ndarray:
    """LIGHT samples whose margin p(label) - max other p is at most `light_margin` moved to FOCUS (in place).

    "Correct" alone has no lower bound: a model that answers one class for everybody is correct on that class's
    samples, at top-1 probability ~1/2 on a balanced binary task, and LIGHT thinning then skipped half of them, so
    GEKO left a chance-level plateau later than the stock Trainer (issue 34). The margin is class-count free (near 0
    for such a guess with 2 or 50,000 classes), where 1/num_classes is not known to the state. -1: off (the seed)."""
    buckets[(buckets == LIGHT) & (np.asarray(margin) <= light_margin)] = FOCUS
    return buckets


def stuck_mask(streak, margin, streak_margin, stuck_after: int, min_gain: float) -> np.ndarray:
    """Persistently wrong samples: wrong on the last `stuck_after` observations with the margin up by no more than
    `min_gain` since the wrong streak began. Samples that stay wrong without improving are mostly label errors
    ("hard-to-learn" in Dataset Cartography, Swayamdipta et al. 2020; low AUM, Pleiss et al. 2020; not
    learnable in RHO-LOSS, Mindermann et al. 2022): training them more fits noise. 0 = off."""
    if stuck_after <= 0:
        return np.zeros(len(streak), dtype=bool)
    return (np.asarray(streak) <= -stuck_after) & (np.asarray(margin) - np.asarray(streak_margin) <= min_gain)


def counts(buckets: np.ndarray, mask: np.ndarray | None = None) -> dict[str, int]:
    """Number of samples per bucket name (only where mask is True)."""
    b = buckets if mask is None else buckets[mask]
    c = np.bincount(b, minlength=4)
    return {name: int(c[i]) for i, name in enumerate(BUCKET_NAMES)}
