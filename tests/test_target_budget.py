"""`GEKOConfig.target_budget`: "spend this share of the full-data passes" lands on it exactly, every epoch, and
the bucket weights still decide who gets the passes (numpy only, plus one Trainer run)."""

from __future__ import annotations

import numpy as np
import pytest

from geko_hf import GEKOConfig
from geko_hf.core.buckets import FOCUS, FREEZE, HARD, LIGHT
from geko_hf.core.selection import plan_epoch, planned_length
from geko_hf.core.tracker import GEKOTracker

N, UNIT = 1000, 8


def _state(seed, freeze_share):
    rng = np.random.default_rng(seed)
    live = rng.choice([LIGHT, FOCUS, HARD], size=N, p=[0.5, 0.3, 0.2]).astype(np.uint8)
    buckets = np.where(rng.random(N) < freeze_share, np.uint8(FREEZE), live)
    return dict(buckets=buckets, pruned=np.zeros(N, bool), times_seen=np.ones(N, np.int64), max_times_seen=50)


def _plan(state, weights, target, seed=0, epoch=1):
    return plan_epoch(**state, weights=weights, seed=seed, epoch=epoch, unit=UNIT, target=target)


@pytest.mark.parametrize("weights", [(1, 1, 1), (2.5, 1, 0.5), (3, 1, 0)])
@pytest.mark.parametrize("share", [0.2, 0.5, 0.8])
@pytest.mark.parametrize("freeze_share", [0.0, 0.4, 0.9])
def test_the_plan_lands_on_the_target_and_planned_length_knows_it(weights, share, freeze_share):
    state = _state(int(share * 10), freeze_share)
    target = -(-round(share * N) // UNIT) * UNIT
    plan = _plan(state, weights, target)
    assert len(plan) == target == planned_length(**state, weights=weights, unit=UNIT, target=target)
    counts = np.bincount(plan, minlength=N)
    b = state["buckets"]
    # a zero-weight bucket (LIGHT at 3 1 0) takes one pass each, only once the weighted buckets are full (issue 33:
    # this test asserted it took none, and the plan fell short of the target)
    cap = {HARD: int(np.ceil(weights[0] / weights[1])), FOCUS: 1, LIGHT: int(np.ceil(weights[2] / weights[1]))}
    weighted = sum(int((b == code).sum()) * most for code, most in cap.items())
    cap = {code: max(most, 1) for code, most in cap.items()}
    for code, most in cap.items():
        assert counts[b == code].max(initial=0) <= most
    assert counts[b == FREEZE].max(initial=0) <= 1
    assert (counts[b == LIGHT].sum() > 0) == (weights[2] > 0 or target > weighted)
    # FREEZE samples are drawn only for passes the unmastered ones cannot take
    capacity = sum(int((b == code).sum()) * most for code, most in cap.items())
    assert (counts[b == FREEZE].sum() > 0) == (target > capacity)
    if target > capacity:
        assert all((counts[b == code] == most).all() for code, most in cap.items())


def test_weights_decide_who_gets_the_passes():
    """Below capacity, each bucket's expected passes per sample follow its weight (mean over 200 epochs)."""
    state = _state(1, 0.3)
    b = state["buckets"]
    totals = np.zeros(N)
    for epoch in range(200):
        totals += np.bincount(_plan(state, (2, 1, 0.5), target=400, epoch=epoch), minlength=N)
    per = {code: totals[b == code].mean() / 200 for code in (HARD, FOCUS, LIGHT)}
    assert per[HARD] == pytest.approx(2 * per[FOCUS], rel=0.05)
    assert per[LIGHT] == pytest.approx(0.5 * per[FOCUS], rel=0.05)
    assert totals[b == FREEZE].sum() == 0


def test_a_tracker_spends_the_share_every_epoch_without_light_weights():
    tracker = GEKOTracker(N, GEKOConfig(target_budget=0.6, light_sample_rate=0.5), seed=0, num_epochs=4, unit=UNIT,
                          batch_size=UNIT)
    for epoch in range(4):
        plan = tracker.plan(epoch)
        assert len(plan) == 600 == tracker.projected_length(epoch)
        assert tracker.weight_table() is None  # no 1/rate up-weighting: the budget sets the rates
        correct = np.arange(len(plan)) % 3 > 0
        tracker.record(plan, np.full(len(plan), 0.1), correct, np.full(len(plan), 0.99), np.ones(len(plan), int), 1)
        tracker.end_epoch(epoch, passes=len(plan), batches=len(plan) // UNIT, tokens=len(plan))
    assert tracker.efficiency_report()["sample_passes_saved"] == pytest.approx(0.4)


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, float("nan")])
def test_bad_target_budget_names_the_field(bad):
    with pytest.raises(ValueError, match="target_budget"):
        GEKOConfig(target_budget=bad)


def test_a_trainer_run_spends_exactly_the_target(tmp_path, one_thread):
    from hf_helpers import make_args, tiny_gpt2, toy_lm_dataset

    from geko_hf import GEKOTrainer

    args = make_args(tmp_path, num_train_epochs=3, per_device_train_batch_size=8)
    trainer = GEKOTrainer(model=tiny_gpt2(), args=args, train_dataset=toy_lm_dataset(n=64, random_every=4),
                          geko_config=GEKOConfig(target_budget=0.5))
    trainer.train()
    report = trainer.get_efficiency_report()
    assert [row["sample_passes"] for row in report["history"]] == [32, 32, 32]
    assert report["sample_passes_saved"] == 0.5 and trainer.state.global_step == 12


def test_pruned_samples_never_fill_the_budget():
    """Passes the unmastered samples cannot use re-check FREEZE samples, but never pruned ones."""
    state = _state(2, 0.9)
    frozen = np.flatnonzero(state["buckets"] == FREEZE)
    state["pruned"][frozen[: len(frozen) // 2]] = True
    plan = _plan(state, (1, 1, 1), target=-(-900 // UNIT) * UNIT)
    assert not np.isin(plan, np.flatnonzero(state["pruned"])).any()
    assert np.isin(plan, frozen).any()  # the other frozen samples did fill it
