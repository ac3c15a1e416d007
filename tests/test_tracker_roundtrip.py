"""GEKOTracker.from_state_dict: a tracker rebuilt from its state_dict alone (what `geko-hf report` reads from a
checkpoint) plans, accounts and reports as the one that ran."""

from __future__ import annotations

import numpy as np
import pytest

from geko_hf.core.checkpoint import load_geko_state, save_geko_state
from geko_hf.core.config import GEKOConfig
from geko_hf.core.state import ARRAYS
from geko_hf.core.tracker import GEKOTracker

N = 40


def _run(tracker: GEKOTracker, until: int) -> GEKOTracker:
    """Epochs up to `until` of made-up observations: samples with an even id learn, the odd ones stay confidently
    wrong, so the buckets spread out (FREEZE/LIGHT and HARD) and later plans differ from the first."""
    rng = np.random.default_rng(tracker.epoch)
    for epoch in range(tracker.epoch, until):
        plan = tracker.plan(epoch)
        for start in range(0, len(plan), tracker.batch_size):
            ids = plan[start:start + tracker.batch_size]
            good = ids % 2 == 0
            loss = np.where(good, 0.05, 2.5) + rng.uniform(0, 0.01, len(ids))
            conf = np.where(good, 0.99, 0.9)
            tokens = rng.integers(5, 50, len(ids))
            tracker.record(ids, loss, good, conf, tokens, batches=1)
        tracker.end_epoch(epoch, passes=len(plan), batches=-(-len(plan) // tracker.batch_size),
                          tokens=int(tracker.state.tokens[plan].sum()))
    if until < tracker.num_epochs:
        tracker.plan(until)  # the next epoch's plan is fixed now: it must survive the round trip
    return tracker


def _assert_same(a: GEKOTracker, b: GEKOTracker):
    assert type(b) is GEKOTracker
    assert b.config == a.config
    assert (b.num_samples, b.seed, b.num_epochs, b.unit, b.batch_size) == (
        a.num_samples, a.seed, a.num_epochs, a.unit, a.batch_size)
    assert (b.last_epoch_fraction, b.fixed_steps) == (a.last_epoch_fraction, a.fixed_steps)
    assert (b.epoch, b.history, b.totals, b.skipped) == (a.epoch, a.history, a.totals, a.skipped)
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(b.state, name), getattr(a.state, name), err_msg=name)
    assert sorted(b._plans) == sorted(a._plans) == [a.epoch]
    for epoch in range(a.epoch, a.num_epochs):  # the stored plan, and the ones still to be drawn
        np.testing.assert_array_equal(b.plan(epoch), a.plan(epoch))
        assert b.projected_length(epoch) == a.projected_length(epoch)
    assert b.efficiency_report() == a.efficiency_report()


@pytest.mark.parametrize("config,kwargs", [
    (GEKOConfig(), {}),
    (GEKOConfig(bucket_weights=[3, 2, 1], use_curriculum=False, light_sample_rate=0.5, prune_frozen_after=1),
     {"last_epoch_fraction": 0.5, "fixed_steps": False}),
    (GEKOConfig(freeze_confidence=0.9), {"fixed_steps": True}),
])
def test_from_state_dict_reproduces_the_tracker(config, kwargs):
    ran = _run(GEKOTracker(N, config, seed=3, num_epochs=4, unit=2, batch_size=4, **kwargs), until=2)
    assert ran.epoch == 2 and ran.history[-1]["HARD"] > 0  # the run moved samples out of FOCUS
    again = GEKOTracker.from_state_dict(ran.state_dict())
    _assert_same(ran, again)
    _run(ran, 4), _run(again, 4)  # and both train on in step to the end of the run
    assert again.history == ran.history and again.efficiency_report() == ran.efficiency_report()


def test_from_state_dict_after_the_checkpoint_file(tmp_path):
    """Through geko_state.npz (numpy scalars, JSON lists) as `geko-hf report` reads it."""
    ran = _run(GEKOTracker(N, GEKOConfig(), seed=1, num_epochs=3, unit=1, batch_size=5, last_epoch_fraction=0.5),
               until=2)
    save_geko_state(str(tmp_path), {"tracker": ran.state_dict()})
    _assert_same(ran, GEKOTracker.from_state_dict(load_geko_state(str(tmp_path))["tracker"]))


def test_from_state_dict_of_a_state_saved_before_fractional_epochs():
    """States written before last_epoch_fraction / fixed_steps existed: the constructor's defaults."""
    sd = _run(GEKOTracker(N, GEKOConfig(), seed=0, num_epochs=3, unit=2, batch_size=4), until=1).state_dict()
    del sd["last_epoch_fraction"], sd["fixed_steps"]
    again = GEKOTracker.from_state_dict(sd)
    assert (again.last_epoch_fraction, again.fixed_steps) == (1.0, False)
    assert again.efficiency_report()["forward_sample_passes"] == sd["totals"]["sample_passes"]


def test_run_length_is_one_value_from_any_way_in():
    """num_train_epochs (fractional too) and max_steps give one RunLength; the tracker, the resume check and the
    loop read the same value, and it survives the state file."""
    from types import SimpleNamespace

    from geko_hf.core.run_length import RunLength

    assert RunLength.from_epochs(2.5) == RunLength(3, 0.5) and RunLength.from_epochs(2.5).epochs == 2.5
    assert RunLength.from_max_steps(25, num_samples=40, unit=8) == RunLength(5, 1.0, True, 25)
    args = SimpleNamespace(max_steps=-1, num_train_epochs=1.5)
    assert RunLength.from_args(args, 40, 8).words() == "num_train_epochs=1.5"
    with pytest.raises(ValueError, match="num_train_epochs must be > 0"):
        RunLength.from_epochs(0)
    tracker = GEKOTracker(40, GEKOConfig(), seed=0, unit=8, batch_size=8, **RunLength(5, 1.0, True, 25).as_kwargs())
    assert tracker.length == RunLength.from_state(tracker.state_dict()) == RunLength(5, 1.0, True, 25)
    assert tracker.length.words() == "max_steps=25"
