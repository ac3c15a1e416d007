"""Issue 33, "Exact where it says exact": each promise the config help makes about a number holds exactly (or the
help says precisely what holds). One test or more per item of the issue, named after it."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geko_hf import GEKOConfig
from geko_hf.core.buckets import FOCUS, FREEZE, HARD, LIGHT
from geko_hf.core.selection import plan_epoch, planned_length
from geko_hf.core.tracker import GEKOTracker

N, UNIT = 1000, 8
CODE = {"HARD": HARD, "FOCUS": FOCUS, "LIGHT": LIGHT}


def _buckets(shares: dict, seed: int = 0) -> np.ndarray:
    """N bucket codes in those shares (the rest FREEZE), in random order."""
    codes = np.concatenate([np.full(int(share * N), CODE.get(name, FREEZE), np.uint8) for name, share in shares.items()])
    codes = np.concatenate([codes, np.full(N - len(codes), FREEZE, np.uint8)])
    return np.random.default_rng(seed).permutation(codes)


def _state(buckets, pruned=None):
    return dict(buckets=buckets, pruned=np.zeros(len(buckets), bool) if pruned is None else pruned,
                times_seen=np.ones(len(buckets), np.int64), max_times_seen=50)


# -- item 1: a zero bucket weight does not shorten a target-budget epoch -------------------------------------------
@pytest.mark.parametrize("weights, zero", [((3, 1, 0), LIGHT), ((5, 2, 0), LIGHT), ((0, 1, 1), HARD)])
def test_item1_target_budget_is_reached_with_a_zero_bucket_weight(weights, zero):
    """80% of the samples in the zero-weight bucket, none frozen: asked for 0.6 of an epoch, the plan spends 0.6."""
    others = [name for name, code in CODE.items() if code != zero]
    state = _state(_buckets({[k for k, c in CODE.items() if c == zero][0]: 0.8, others[0]: 0.1, others[1]: 0.1}))
    plan = plan_epoch(**state, weights=weights, seed=0, epoch=1, unit=UNIT, target=600)
    assert len(plan) == 600 == planned_length(**state, weights=weights, unit=UNIT, target=600)
    counts = np.bincount(plan, minlength=N)
    b = state["buckets"]
    caps = np.ceil(np.asarray(weights, float) / weights[1]).astype(int)  # (HARD, FOCUS, LIGHT) by weight / FOCUS's
    for code, cap in zip((HARD, FOCUS, LIGHT), caps):  # the weighted buckets are filled to their caps first ...
        if code != zero:
            assert (counts[b == code] == cap).all()
    assert counts[b == zero].max() == 1  # ... then the zero-weight bucket fills the rest, one pass each
    assert counts[b == zero].sum() == 600 - sum(int((b == c).sum()) * cap for c, cap in zip((HARD, FOCUS, LIGHT), caps)
                                                if c != zero)


def test_item1_a_tracker_at_the_curriculum_peak_spends_its_target():
    """The curriculum's PEAK phase (5, 2, 0) with most samples LIGHT: every epoch spends round(0.6 x samples)."""
    tracker = GEKOTracker(N, GEKOConfig(target_budget=0.6, use_curriculum=True), seed=0, num_epochs=10, unit=UNIT,
                          batch_size=UNIT)
    tracker.state.bucket[:] = _buckets({"LIGHT": 0.85, "FOCUS": 0.1, "HARD": 0.05})
    peak = [e for e in range(10) if tracker.phase_and_weights(e)[1] == (5.0, 2.0, 0.0)]
    assert peak
    for epoch in peak:
        assert len(tracker.plan(epoch)) == 600 == tracker.projected_length(epoch)


# -- item 4: probes count inside the target; planned_length is the plan's length --------------------------------
def test_item4_probes_count_inside_the_target():
    """90% FREEZE re-checked at 0.9 would be ~810 probes: a target of 304 passes plans 304."""
    state = _state(_buckets({"FREEZE": 0.9, "FOCUS": 0.1}))
    kw = dict(weights=(1, 1, 1), unit=UNIT, recheck_rate=0.9, target=304)
    plan = plan_epoch(**state, seed=0, epoch=1, **kw)
    assert len(plan) == 304 == planned_length(**state, **kw)


def test_item4_planned_length_counts_a_rechecked_freeze_sample_once():
    """Target out of reach (70% pruned): the plan is every live sample once; planned_length says the same."""
    buckets = _buckets({"FOCUS": 0.1, "FREEZE": 0.9})
    pruned = (buckets == FREEZE) & (np.arange(N) % 9 < 7)
    state = _state(buckets, pruned)
    kw = dict(weights=(1, 1, 1), unit=UNIT, recheck_rate=0.5, target=600)
    plan = plan_epoch(**state, seed=0, epoch=1, **kw)
    live = int((~pruned).sum())
    assert len(plan) == -(-live // UNIT) * UNIT
    assert planned_length(**state, **kw) == len(plan)


@st.composite
def target_inputs(draw):
    n = draw(st.integers(1, 120))
    ints = lambda lo, hi: np.array(draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n)))  # noqa: E731
    weight = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 1e6])
    weights = draw(st.tuples(weight, weight, weight).filter(lambda w: sum(w) > 0))
    return dict(buckets=ints(0, 3).astype(np.uint8), pruned=ints(0, 1).astype(bool),
                times_seen=ints(0, 6).astype(np.uint16), max_times_seen=draw(st.integers(1, 6)), weights=weights,
                unit=draw(st.integers(1, 8)), light_rate=draw(st.sampled_from([0.3, 1.0])),
                stuck=ints(0, 1).astype(bool) if draw(st.booleans()) else None,
                stuck_rate=draw(st.sampled_from([0.0, 0.5, 1.0])), recheck_rate=draw(st.sampled_from([0.0, 0.3, 1.0])),
                target=draw(st.integers(1, 2 * n)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target_inputs(), st.integers(0, 2**32 - 1), st.booleans())
def test_item4_planned_length_is_the_plan_length_in_any_state(inp, seed, stratified):
    groups = np.arange(len(inp["buckets"])) % 3 if stratified else None
    plan = plan_epoch(**inp, seed=seed, epoch=3, groups=groups)
    assert planned_length(**inp) == len(plan)
    assert len(plan) % inp["unit"] == 0 or len(plan) == 0


# -- item 5: what LIGHT thinning's 1/rate weights keep --------------------------------------------------------------
def _weighted_passes_per_sample(buckets, weights, light_rate, epochs=400):
    """Mean gradient weight x passes per sample and bucket over many epochs (the epoch's expected gradient per
    sample, as a multiple of that sample's gradient)."""
    state = _state(buckets)
    total = np.zeros(len(buckets))
    for epoch in range(epochs):
        counts = np.bincount(plan_epoch(**state, weights=weights, seed=0, epoch=epoch, light_rate=light_rate),
                             minlength=len(buckets))
        total += counts * np.where(buckets == LIGHT, 1.0 / light_rate, 1.0)
    return {code: total[buckets == code].mean() / epochs for code in (HARD, FOCUS, LIGHT)}


@pytest.mark.parametrize("weights", [(1, 1, 1), (3, 2, 1), (2, 2, 1)])
def test_item5_light_thinning_keeps_the_expected_gradient_up_to_the_factor_its_help_states(weights):
    buckets = _buckets({"HARD": 0.2, "FOCUS": 0.2, "LIGHT": 0.6})
    thinned, full = (_weighted_passes_per_sample(buckets, weights, rate) for rate in (0.5, 1.0))
    ratios = [thinned[c] / full[c] for c in (HARD, FOCUS, LIGHT)]
    n = {c: (buckets == c).sum() for c in (HARD, FOCUS, LIGHT)}
    w = dict(zip((HARD, FOCUS, LIGHT), weights))
    passes, mass = sum(n.values()), sum(w[c] * n[c] for c in n)  # passes, and their weight, without thinning
    passes_t, mass_t = passes - 0.5 * n[LIGHT], mass - 0.5 * w[LIGHT] * n[LIGHT]  # ... with LIGHT at rate 0.5
    factor = (passes_t / mass_t) / (passes / mass)
    assert ratios == pytest.approx([factor] * 3, rel=0.03)  # one global factor: every bucket keeps its share
    assert (factor == 1.0) == (len(set(weights)) == 1)  # exact only with equal bucket weights
    help_text = {f.name: f.metadata["help"] for f in dataclasses.fields(GEKOConfig)}["light_sample_rate"]
    assert "global factor" in help_text and "equal bucket weights" in help_text


# -- item 6: the final full-data phase is its share of the run, fractional last epoch included ---------------------
@pytest.mark.parametrize("epochs", [4.5, 8.5, 3.0])
def test_item6_final_full_share_is_that_share_of_the_run_in_epochs_of_data(epochs):
    """Every sample FREEZE, so GEKO plans nothing and the run's passes are exactly its full-data phase."""
    n, share = 1024, 0.125
    whole = math.ceil(epochs)
    tracker = GEKOTracker(n, GEKOConfig(final_full_share=share), seed=0, num_epochs=whole, unit=UNIT, batch_size=UNIT,
                          last_epoch_fraction=epochs - (whole - 1))
    tracker.state.bucket[:] = FREEZE
    passes = 0
    for epoch in range(whole):
        plan = tracker.plan(epoch)
        assert tracker.projected_length(epoch) == len(plan)
        assert np.bincount(plan, minlength=n).max(initial=0) <= 1  # the phase trains each sample once
        passes += len(plan)
    assert passes / n / epochs == pytest.approx(share, abs=2 * UNIT / n / epochs)


# -- item 7: a ratio warmup is that share of the run actually trained -------------------------------------------------
def test_item7_a_ratio_warmup_is_that_share_of_the_run_actually_trained(tmp_path, one_thread):
    """HF counts 4 epochs at the first one's length (target_budget 0.5: 4 steps, 16 in all), but the last epoch is
    the full-data phase (8 steps): 20 steps are trained, and warmup_steps=0.3 ends at step ceil(0.3 x 20)."""
    from hf_helpers import LRRecorder, make_args, tiny_gpt2, toy_lm_dataset

    from geko_hf import GEKOTrainer

    recorder = LRRecorder()
    args = make_args(tmp_path, num_train_epochs=4, warmup_steps=0.3, lr_scheduler_type="linear")
    trainer = GEKOTrainer(model=tiny_gpt2(), args=args, train_dataset=toy_lm_dataset(n=64, random_every=4),
                          geko_config=GEKOConfig(target_budget=0.5, final_full_share=0.25), callbacks=[recorder])
    trainer.train()
    assert (trainer.geko.schedule_total, trainer.state.global_step) == (16, 20)
    warmup_end = int(np.argmax(recorder.lrs)) + 1  # the step after which the LR is at its peak
    assert warmup_end == math.ceil(0.3 * 20)
    assert recorder.lrs[warmup_end - 1] == pytest.approx(args.learning_rate)
    assert recorder.lrs[-1] == 0.0


# -- item 8: target-budget draws are stratified by stratify_by -------------------------------------------------------
GROUP_SHARES = [0.6, 0.25, 0.1, 0.04, 0.01]


def _groups(n, seed=1):
    return np.random.default_rng(seed).choice(len(GROUP_SHARES), size=n, p=GROUP_SHARES)


def _assert_each_group_gets_its_share(chosen, pool, groups, k):
    """`chosen` (passes per sample) over `pool`: each group within one pass of k x its share of the pool."""
    for g in np.unique(groups[pool]):
        expected = k * np.count_nonzero(pool & (groups == g)) / np.count_nonzero(pool)
        assert abs(chosen[pool & (groups == g)].sum() - expected) < 1, (g, chosen[pool & (groups == g)].sum(), expected)


@pytest.mark.parametrize("epoch", range(5))
def test_item8_who_gets_the_budget_is_stratified(epoch):
    n = 2000
    groups, state = _groups(n), _state(np.full(n, FOCUS, np.uint8))
    counts = np.bincount(plan_epoch(**state, weights=(1, 1, 1), seed=0, epoch=epoch, target=1000, groups=groups),
                         minlength=n)
    _assert_each_group_gets_its_share(counts, np.ones(n, bool), groups, 1000)


@pytest.mark.parametrize("epoch", range(5))
def test_item8_the_freeze_recheck_fill_is_stratified(epoch):
    n = 2000
    groups = _groups(n)
    buckets = np.where(np.random.default_rng(2).random(n) < 0.2, np.uint8(FOCUS), np.uint8(FREEZE))
    counts = np.bincount(plan_epoch(**_state(buckets), weights=(1, 1, 1), seed=0, epoch=epoch, target=1200,
                                    groups=groups), minlength=n)
    frozen = buckets == FREEZE
    assert (counts[~frozen] == 1).all()
    _assert_each_group_gets_its_share(counts, frozen, groups, 1200 - np.count_nonzero(~frozen))


def test_item8_a_tracker_passes_its_groups_to_the_target_draws():
    n = 2000
    tracker = GEKOTracker(n, GEKOConfig(target_budget=0.5), seed=0, num_epochs=3, unit=1, batch_size=1)
    groups = _groups(n)
    tracker.set_groups(groups)
    counts = np.bincount(tracker.plan(0), minlength=n)
    _assert_each_group_gets_its_share(counts, np.ones(n, bool), groups, 1000)
