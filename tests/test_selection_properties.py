"""Property tests (hypothesis) of the selection step (plan_epoch, sample_weights) and of SampleState.update."""

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from geko_hf.core.buckets import FOCUS, FREEZE, HARD, LIGHT
from geko_hf.core.config import GEKOConfig
from geko_hf.core.selection import plan_epoch, sample_weights
from geko_hf.core.state import SampleState

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

weight = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def selection_inputs(draw):
    """Random (buckets, pruned, times_seen, weights, max_times_seen, seed, epoch, unit)."""
    n = draw(st.integers(1, 200))
    buckets = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), dtype=np.uint8)
    pruned = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    times_seen = np.array(draw(st.lists(st.integers(0, 60), min_size=n, max_size=n)), dtype=np.uint16)
    weights = tuple(draw(st.tuples(weight, weight, weight)))
    max_times_seen = draw(st.integers(1, 60))
    seed = draw(st.integers(0, 2**32 - 1))
    epoch = draw(st.integers(0, 1000))
    unit = draw(st.integers(1, 16))
    return dict(buckets=buckets, pruned=pruned, times_seen=times_seen, weights=weights,
                max_times_seen=max_times_seen, seed=seed, epoch=epoch, unit=unit)


def _plan(inp):
    return plan_epoch(inp["buckets"], inp["pruned"], inp["times_seen"], inp["weights"], inp["max_times_seen"],
                      seed=inp["seed"], epoch=inp["epoch"], unit=inp["unit"])


def _remaining(inp):
    return np.maximum(inp["max_times_seen"] - inp["times_seen"].astype(np.int64), 0)


def _trainable(inp):
    return (inp["buckets"] != FREEZE) & ~inp["pruned"] & (_remaining(inp) > 0)


# -- plan_epoch -----------------------------------------------------------------------------------------------
@FAST
@given(selection_inputs())
def test_plan_is_valid_ids(inp):
    plan = _plan(inp)
    assert plan.dtype == np.int64 and plan.ndim == 1
    if len(plan):
        assert plan.min() >= 0 and plan.max() < len(inp["buckets"])


@FAST
@given(selection_inputs())
def test_freeze_and_pruned_never_planned(inp):
    plan = _plan(inp)
    assert not (inp["buckets"][plan] == FREEZE).any()
    assert not inp["pruned"][plan].any()


@FAST
@given(selection_inputs())
def test_per_sample_count_within_remaining_passes(inp):
    plan = _plan(inp)
    count = np.bincount(plan, minlength=len(inp["buckets"]))
    assert (count <= _remaining(inp)).all()


@FAST
@given(selection_inputs())
def test_length_is_multiple_of_unit(inp):
    assert len(_plan(inp)) % inp["unit"] == 0


@FAST
@given(selection_inputs())
def test_fewer_trainable_than_unit_gives_empty_or_one_unit(inp):
    trainable = int(_trainable(inp).sum())
    plan = _plan(inp)
    if trainable < inp["unit"]:
        assert len(plan) in (0, inp["unit"])
    if trainable == 0:
        assert len(plan) == 0


# The explicit example: 2 HARD samples (weight 1) + 1 LIGHT (weight 0): expected passes (1.5, 1.5, 0); rounding
# each fractional part independently could draw 2 + 2 = 4 passes for a budget of 3.
_OVERSHOOT = dict(buckets=np.array([HARD, HARD, LIGHT], np.uint8), pruned=np.zeros(3, bool),
                  times_seen=np.zeros(3, np.uint16), weights=(1.0, 0.0, 0.0), max_times_seen=50, seed=3, epoch=0,
                  unit=1)


@FAST
@given(selection_inputs())
@example(_OVERSHOOT)
def test_plan_not_longer_than_trainable_count_rounded_up_to_whole_steps(inp):
    # the remainder of an epoch is trained (as the stock Trainer's last partial step does), never dropped and
    # reported as saved: the plan is the trainable count rounded UP to the unit, never more
    trainable = int(_trainable(inp).sum())
    unit = inp["unit"]
    assert len(_plan(inp)) <= -(-trainable // unit) * unit


@pytest.mark.parametrize("n, unit", [(60, 16), (61, 8), (7, 4), (100, 32)])
def test_remainder_is_trained_not_cut(n, unit):
    """60 samples, unit 16: all 60 train (plus 4 repeats to fill the last step), none is silently dropped."""
    inp = dict(buckets=np.full(n, FOCUS, np.uint8), pruned=np.zeros(n, bool), times_seen=np.zeros(n, np.uint16),
               weights=(1.0, 1.0, 1.0), max_times_seen=50, seed=0, epoch=0, unit=unit)
    plan = _plan(inp)
    assert len(plan) == -(-n // unit) * unit
    assert set(plan.tolist()) == set(range(n))
    assert np.bincount(plan, minlength=n).max() <= 2


@pytest.mark.parametrize("seed", range(40))
def test_plan_length_is_exactly_the_budget_when_no_cap_binds(seed):
    inp = dict(_OVERSHOOT, seed=seed)
    plan = _plan(inp)
    assert len(plan) == 3
    assert set(np.bincount(plan, minlength=3)[:2]) <= {1, 2}  # each count is floor or ceil of 1.5
    assert np.bincount(plan, minlength=3)[2] == 0


@FAST
@given(selection_inputs())
def test_plan_deterministic_in_seed_epoch_state(inp):
    a = _plan(inp)
    copy = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in inp.items()}
    b = _plan(copy)
    np.testing.assert_array_equal(a, b)


@FAST
@given(selection_inputs())
def test_plan_does_not_mutate_inputs_or_global_rng(inp):
    before = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in inp.items()}
    np.random.seed(123)
    _plan(inp)
    assert np.random.random() == np.random.RandomState(123).random_sample()
    for k, v in before.items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(inp[k], v)


def test_different_epochs_usually_differ():
    n = 200
    buckets = np.array([HARD, FOCUS, LIGHT, FOCUS] * (n // 4), np.uint8)
    plans = [plan_epoch(buckets, np.zeros(n, bool), np.zeros(n, np.uint16), (3.0, 2.0, 1.0), 50,
                        seed=0, epoch=e, unit=8) for e in range(10)]
    distinct = {p.tobytes() for p in plans}
    assert len(distinct) >= 9
    other_seed = plan_epoch(buckets, np.zeros(n, bool), np.zeros(n, np.uint16), (3.0, 2.0, 1.0), 50,
                            seed=1, epoch=0, unit=8)
    assert not np.array_equal(other_seed, plans[0])


@pytest.mark.parametrize("target", [None, 500])
def test_which_samples_share_a_rounding_is_random_not_their_id_order(target):
    """Equal weights, half the passes: any half must be possible. Rounding in id order picked a fixed id
    pattern (rate 1/2: all even or all odd ids, whatever the seed or epoch), so neighbours were never drawn
    together, every epoch drew one of a handful of subsets, and data stored in order (by class, source or
    length) would be thinned in lockstep with it."""
    n = 1000
    if target is None:  # the default budget (one pass per trainable sample): FOCUS expects 4/3 passes, LIGHT 2/3
        buckets, weights = np.array([FOCUS, LIGHT] * (n // 2), np.uint8), (2.0, 2.0, 1.0)
    else:  # half the passes over equal weights: each sample expects 1/2
        buckets, weights = np.full(n, LIGHT, np.uint8), (1.0, 1.0, 1.0)
    together, subsets = [], set()
    for epoch in range(40):
        plan = plan_epoch(buckets, np.zeros(n, bool), np.zeros(n, np.uint16), weights, 50, seed=0, epoch=epoch,
                          target=target)
        chosen = np.bincount(plan, minlength=n) > 0
        light = np.flatnonzero(buckets == LIGHT)
        pairs = chosen[light[:-1]] & chosen[light[1:]]  # neighbouring LIGHT ids both drawn
        together.append(pairs.mean())
        subsets.add(chosen[light].tobytes())
    p = chosen[light].mean()  # ~ the per-sample inclusion rate; independent draws pair at ~p^2
    assert len(subsets) == 40
    assert abs(np.mean(together) - p * p) < 0.05


@FAST
@given(selection_inputs())
def test_sample_weights_finite_non_negative(inp):
    w = sample_weights(inp["buckets"], inp["pruned"], inp["times_seen"], inp["weights"], inp["max_times_seen"])
    assert w.shape == inp["buckets"].shape
    assert np.isfinite(w).all() and (w >= 0).all()
    assert (w[~_trainable(inp)] == 0).all()
    table = {HARD: inp["weights"][0], FOCUS: inp["weights"][1], LIGHT: inp["weights"][2]}
    for i in np.flatnonzero(_trainable(inp)):
        assert w[i] == table[int(inp["buckets"][i])]


@st.composite
def uniform_inputs(draw):
    """Nothing frozen/pruned/exhausted, equal weights, N a multiple of unit."""
    unit = draw(st.integers(1, 16))
    n = unit * draw(st.integers(1, max(1, 200 // unit)))
    w = draw(weight)
    max_times_seen = draw(st.integers(1, 60))
    return dict(
        buckets=np.array(draw(st.lists(st.sampled_from([HARD, FOCUS, LIGHT]), min_size=n, max_size=n)), np.uint8),
        pruned=np.zeros(n, bool),
        times_seen=np.array(draw(st.lists(st.integers(0, max_times_seen - 1), min_size=n, max_size=n)), np.uint16),
        weights=(w, w, w), max_times_seen=max_times_seen, seed=draw(st.integers(0, 2**32 - 1)),
        epoch=draw(st.integers(0, 1000)), unit=unit,
    )


@FAST
@given(uniform_inputs())
def test_equal_weights_nothing_frozen_plans_every_sample_once(inp):
    plan = _plan(inp)
    np.testing.assert_array_equal(np.sort(plan), np.arange(len(inp["buckets"])))


def test_plan_uniform_fallback_when_all_trainable_weights_zero():
    # Only LIGHT left at PEAK (LIGHT weight 0): training continues, uniformly.
    n = 32
    plan = plan_epoch(np.full(n, LIGHT, np.uint8), np.zeros(n, bool), np.zeros(n, np.uint16), (5.0, 2.0, 0.0), 50,
                      seed=0, epoch=0, unit=8)
    np.testing.assert_array_equal(np.sort(plan), np.arange(n))


def test_plan_with_huge_finite_weights():
    cfg = GEKOConfig(bucket_weights=[1e308, 1e308, 0.0], use_curriculum=False)  # validation accepts it
    n = 16
    buckets = np.array([HARD, FOCUS] * (n // 2), np.uint8)
    plan = plan_epoch(buckets, np.zeros(n, bool), np.zeros(n, np.uint16), tuple(cfg.bucket_weights), 50,
                      seed=0, epoch=0, unit=1)
    assert len(plan) == n


# -- SampleState.update ---------------------------------------------------------------------------------------
loss_values = st.one_of(
    st.floats(min_value=0.0, max_value=1e30, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, 1e-8, 0.5, 10.0, 1e4, 6e4, 7e4, 1e30, np.nan, np.inf, -np.inf]),
)
conf_values = st.one_of(st.floats(0.0, 1.0), st.sampled_from([np.nan, np.inf]))


@st.composite
def update_batches(draw):
    n = draw(st.integers(1, 64))
    batches = []
    for _ in range(draw(st.integers(1, 4))):
        m = draw(st.integers(0, 80))
        batches.append((
            np.array(draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m)), np.int64),
            np.array(draw(st.lists(loss_values, min_size=m, max_size=m)), np.float64),
            np.array(draw(st.lists(st.booleans(), min_size=m, max_size=m)), bool),
            np.array(draw(st.lists(conf_values, min_size=m, max_size=m)), np.float64),
        ))
    mode = draw(st.sampled_from(["auto", "seed"]))
    k = draw(st.integers(1, 5))
    return n, GEKOConfig(q_value_mode=mode, freeze_after_observations=k), batches


@FAST
@given(update_batches())
def test_update_keeps_state_sane(data):
    n, cfg, batches = data
    s = SampleState(n, cfg)
    for ids, losses, correct, conf in batches:
        before = s.times_seen.astype(np.int64).copy()
        used = s.update(ids, losses, correct, conf)
        keep = np.isfinite(losses) & np.isfinite(conf)
        assert used == int(keep.sum())
        # times_seen is monotone and grows by exactly the kept observations of each id
        np.testing.assert_array_equal(s.times_seen.astype(np.int64) - before,
                                      np.bincount(ids[keep], minlength=n))
        assert ((s.q >= 0) & (s.q <= 1)).all()
        for name in ("loss", "confidence", "q", "loss_history"):
            assert np.isfinite(getattr(s, name)).all(), name
        s.repartition()
        assert np.isin(s.bucket, [FREEZE, LIGHT, FOCUS, HARD]).all()
    assert ((s.quality() <= 1) & np.isfinite(s.quality())).all()


def test_update_negative_loss_keeps_q_in_unit_interval():
    s = SampleState(4)
    for _ in range(3):
        s.update([0], [-50.0], [True], [0.9])
    assert 0.0 <= s.q[0] <= 1.0


def test_update_loss_beyond_float32_range():
    s = SampleState(4)
    s.update([0], [1e39], [False], [0.2])
    assert np.isfinite(s.loss).all()


def test_weighted_budget_gives_light_a_fraction_and_never_exceeds_active():
    b = np.array([FREEZE, LIGHT, LIGHT, FOCUS, FOCUS, HARD] * 10, dtype=np.uint8)
    z, t = np.zeros(60, bool), np.zeros(60, np.uint16)
    active = plan_epoch(b, z, t, (2, 3, 1), 50, seed=0, epoch=1, budget_mode="active")
    weighted = plan_epoch(b, z, t, (2, 3, 1), 50, seed=0, epoch=1, budget_mode="weighted")
    assert len(active) == 50  # one pass per non-FREEZE sample
    assert len(weighted) == round(20 * 1 / 3 + 20 + 10 * 2 / 3)  # LIGHT 1/3, FOCUS 1, HARD 2/3 of a pass
    assert not np.isin(weighted, np.flatnonzero(b == FREEZE)).any()
