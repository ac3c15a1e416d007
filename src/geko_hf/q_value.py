"""The per-sample Q-value ("learnability") EMA and the loss-stability "quality"."""

from __future__ import annotations

import numpy as np


def q_update(q, loss, lr, loss_scale):
    """Q <- (1 - lr) Q + lr (1 - min(loss / loss_scale, 1)), the seed's formula.

    Examples (lr 0.1, scale 10, from 0.5): loss 0 -> 0.55, loss 5 -> 0.50, loss >= 10 -> 0.45.
    """
    target = 1.0 - np.minimum(np.asarray(loss, dtype=np.float64) / loss_scale, 1.0)
    return ((1.0 - lr) * np.asarray(q, dtype=np.float64) + lr * target).astype(np.float32)


def quality(history: np.ndarray, n_seen: np.ndarray) -> np.ndarray:
    """1 - std of the last len(history[0]) losses (population std, gekolib's definition).

    `history` is a ring buffer [N, K]; only the first min(n_seen, K) slots hold data. A sample with fewer than
    one observation has quality 0 (never freezes); with one observation the std is 0, so quality is 1.
    """
    k = history.shape[1]
    filled = np.minimum(n_seen, k).astype(np.float64)
    valid = np.arange(k)[None, :] < filled[:, None]
    h = np.where(valid, history.astype(np.float64), 0.0)
    denom = np.maximum(filled, 1.0)
    mean = h.sum(1) / denom
    var = np.where(valid, (h - mean[:, None]) ** 2, 0.0).sum(1) / denom
    return np.where(filled > 0, 1.0 - np.sqrt(var), 0.0).astype(np.float32)
