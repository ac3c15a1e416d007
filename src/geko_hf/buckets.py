"""Where a sample's bucket is decided: the seed's four rules, vectorised."""

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


def counts(buckets: np.ndarray, mask: np.ndarray | None = None) -> dict[str, int]:
    """Number of samples per bucket name (only where mask is True)."""
    b = buckets if mask is None else buckets[mask]
    c = np.bincount(b, minlength=4)
    return {name: int(c[i]) for i, name in enumerate(BUCKET_NAMES)}
