"""The benchmark's baseline trackers (benchmarks/baselines.py) run through GEKO's machinery: a budgeted baseline must
stretch the LR schedule onto its own real length, or its arm differs from the others in its LR, not its data."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))

from baselines import RandomTracker, with_budget  # noqa: E402

from geko_hf import GEKOConfig  # noqa: E402


def test_a_budgeted_baseline_projects_its_own_epoch_lengths():
    budget = [1216, 1000, 640]
    tracker = with_budget(RandomTracker, budget)(2000, GEKOConfig(), seed=0, num_epochs=3, unit=32, batch_size=32)
    assert [tracker.projected_length(e) for e in range(3)] == [1216, 992, 640]  # whole optimizer steps
    assert [len(tracker.plan(e)) for e in range(3)] == [1216, 992, 640]
