"""The five-phase "mountain curriculum": which (HARD, FOCUS, LIGHT) weights apply at a point of training."""

from __future__ import annotations

PHASES = ("warmup", "ascent", "peak", "descent", "consolidate")
# Phase starts as training progress in [0, 1]; an exact boundary belongs to the next phase.
PHASE_STARTS = (0.0, 0.15, 0.35, 0.65, 0.85)
# (HARD, FOCUS, LIGHT) per phase, from the seed's table. FREEZE is always 0.
PHASE_WEIGHTS = {
    "warmup": (1.0, 2.0, 3.0),
    "ascent": (2.0, 3.0, 1.0),
    "peak": (5.0, 2.0, 0.0),
    "descent": (2.0, 3.0, 1.0),
    "consolidate": (1.0, 2.0, 3.0),
}


def phase_at(progress: float) -> str:
    """Phase name at training progress in [0, 1] (values outside are clamped)."""
    p = min(max(float(progress), 0.0), 1.0)
    name = PHASES[0]
    for phase, start in zip(PHASES, PHASE_STARTS):
        if p >= start:
            name = phase
    return name


def epoch_progress(epoch: int, num_epochs: int) -> float:
    """Progress used to pick an epoch's phase: the epoch's MIDPOINT.

    gekolib uses the epoch's start, so a 3-epoch run sits at 0, 0.33, 0.67 and never reaches PEAK. The
    midpoint (0.17, 0.5, 0.83) walks a 3-epoch run through ascent, peak and descent.
    """
    return (epoch + 0.5) / max(num_epochs, 1)


def bucket_weights(epoch: int, num_epochs: int, use_curriculum: bool, fixed=(3.0, 1.0, 0.0)):
    """(phase name, (HARD, FOCUS, LIGHT) weights) for an epoch."""
    if not use_curriculum:
        return "fixed", tuple(float(w) for w in fixed)
    phase = phase_at(epoch_progress(epoch, num_epochs))
    return phase, PHASE_WEIGHTS[phase]
