"""The per-sample Q-value ("learnability") EMA and the loss-stability "quality"."""

from __future__ import annotations

import numpy as np


def q_update(q, loss, lr, loss_scale):
    """Q <- (1 - lr) Q + lr (1 - min(loss / loss_scale, 1)), the seed's formula.

    Examples (lr 0.1, scale 10, from 0.5): loss 0 -> 0.55, loss 5 -> 0.50, loss >= 10 -> 0.45.
    """
    target = 1.0 - np.clip(np.asarray(loss, dtype=np.float64) / loss_scale, 0.0, 1.0)  # negative losses: Q <= 1
    return ((1.0 - lr) * np.asarray(q, dtype=np.float64) + lr * target).astype(np.float32)


def quality(history: np.ndarray, n_seen: np.ndarray, window: int | None = None) -> np.ndarray:
    """1 - std of the sample's last `window` losses (population std, gekolib's definition with window 5).

    `history` is a ring buffer [N, K] written at slot n_seen % K; window defaults to K. A sample never observed
    has quality 0 (never freezes); with one observation the std is 0, so quality is 1.
    """
    k = history.shape[1]
    window = k if window is None else min(int(window), k)
    n_seen = np.asarray(n_seen).astype(np.int32)
    filled = np.minimum(n_seen, window).astype(np.float32)
    # One pass per ring slot in float32/int32, no [N, window] gather and no int64/float64 temporaries: at
    # 10 M samples every 80 MB temporary is a fresh mmap whose page faults cost more than the arithmetic.
    # Slot j holds the observation `lag` = (n_seen - 1 - j) mod K steps back; it counts if lag < filled.
    valid = [((n_seen - (1 + j)) % k) < filled for j in range(k)]
    total = np.zeros(len(n_seen), dtype=np.float32)
    for j in range(k):
        total += np.where(valid[j], history[:, j], 0).astype(np.float32)
    denom = np.maximum(filled, 1.0)
    mean = total / denom
    var = np.zeros_like(mean)
    for j in range(k):
        var += np.where(valid[j], (history[:, j].astype(np.float32) - mean) ** 2, 0.0)
    return np.where(filled > 0, 1.0 - np.sqrt(var / denom), 0.0).astype(np.float32)
