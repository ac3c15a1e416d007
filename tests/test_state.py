"""SampleState: recording observations, repartition (freeze, frozen_epochs, prune), persistence, footprint."""

import numpy as np
import pytest

from geko_hf.core.buckets import FOCUS, FREEZE, HARD, LIGHT
from geko_hf.core.config import GEKOConfig
from geko_hf.core.q_value import q_update
from geko_hf.core.state import ARRAYS, HISTORY, STATE_VERSION, SampleState

N = 16


def _observe(st, ids, loss=0.0, correct=True, confidence=0.95):
    """One observation of each id in `ids` with a constant loss / correctness / confidence."""
    ids = np.asarray(ids, dtype=np.int64)
    n = len(ids)
    return st.update(ids, np.full(n, loss), np.full(n, correct), np.full(n, confidence))


# -- construction -------------------------------------------------------------------------------------------
def test_starts_all_focus_with_q_init():
    st = SampleState(N)
    assert (st.bucket == FOCUS).all()
    np.testing.assert_array_equal(st.q, np.float32(0.5))
    assert (st.times_seen == 0).all() and not st.pruned.any() and (st.frozen_epochs == 0).all()


def test_custom_q_init():
    st = SampleState(N, GEKOConfig(q_value_init=0.3))
    np.testing.assert_array_equal(st.q, np.float32(0.3))


def test_array_dtypes_and_shapes():
    st = SampleState(N)
    for name, (dtype, shape) in ARRAYS.items():
        arr = getattr(st, name)
        assert arr.dtype == dtype, name
        assert arr.shape == (N, *shape), name


@pytest.mark.parametrize("bad", [0, -1])
def test_num_samples_must_be_positive(bad):
    with pytest.raises(ValueError, match=rf"`num_samples` must be >= 1, got {bad}"):
        SampleState(bad)


# -- update -------------------------------------------------------------------------------------------------
def test_update_records_everything():
    st = SampleState(N, GEKOConfig(q_value_mode="seed"))
    used = st.update([2, 5], [1.0, 4.0], [True, False], [0.9, 0.3])
    assert used == 2
    np.testing.assert_allclose(st.loss[[2, 5]], [1.0, 4.0])
    np.testing.assert_array_equal(st.correct[[2, 5]], [True, False])
    np.testing.assert_allclose(st.confidence[[2, 5]], [0.9, 0.3], rtol=1e-6)
    np.testing.assert_allclose(st.q[[2, 5]], [0.45 + 0.09, 0.45 + 0.06], atol=1e-6)
    np.testing.assert_array_equal(st.times_seen, np.isin(np.arange(N), [2, 5]).astype(np.uint16))
    np.testing.assert_array_equal(st.loss_history[2], [1.0, 0, 0, 0, 0])
    # the bucket only changes at repartition
    assert (st.bucket == FOCUS).all()


def test_repeated_ids_applied_in_order():
    cfg = GEKOConfig(q_value_mode="seed")
    st = SampleState(N, cfg)
    used = st.update([3, 7, 3, 3, 7], [1.0, 9.0, 2.0, 3.0, 8.0], [False, False, False, True, True],
                     [0.1, 0.2, 0.3, 0.4, 0.5])
    assert used == 5
    assert st.times_seen[3] == 3 and st.times_seen[7] == 2
    expected = np.float32(0.5)
    for loss in (1.0, 2.0, 3.0):
        expected = q_update(expected, loss, cfg.effective_q_lr(), cfg.q_value_loss_scale)
    assert st.q[3] == expected  # same float32 path, bit for bit
    np.testing.assert_array_equal(st.loss_history[3], [1.0, 2.0, 3.0, 0, 0])
    np.testing.assert_array_equal(st.loss_history[7], [9.0, 8.0, 0, 0, 0])
    # the last occurrence wins for the latest-value fields
    assert st.loss[3] == 3.0 and bool(st.correct[3]) is True and st.confidence[3] == np.float32(0.4)
    assert st.loss[7] == 8.0 and st.confidence[7] == np.float32(0.5)


def test_repeat_equals_sequential_updates():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, N, 64)
    losses = rng.uniform(0, 12, 64)
    correct = rng.random(64) < 0.5
    conf = rng.random(64)
    batch, seq = SampleState(N), SampleState(N)
    batch.update(ids, losses, correct, conf)
    for i in range(64):
        seq.update(ids[i:i + 1], losses[i:i + 1], correct[i:i + 1], conf[i:i + 1])
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(batch, name), getattr(seq, name), err_msg=name)


def test_ring_buffer_wraps():
    st = SampleState(N)
    for loss in range(1, HISTORY + 3):  # 7 observations
        _observe(st, [0], loss=float(loss))
    np.testing.assert_array_equal(st.loss_history[0], [6.0, 7.0, 3.0, 4.0, 5.0])
    assert st.times_seen[0] == HISTORY + 2


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_losses_dropped(bad):
    st = SampleState(N)
    used = st.update([0, 1, 2], [0.5, bad, 1.0], [True, True, True], [0.9, 0.9, 0.9])
    assert used == 2
    assert st.times_seen[1] == 0 and st.q[1] == np.float32(0.5) and st.loss[1] == 0
    assert (st.loss_history[1] == 0).all()
    assert st.times_seen[0] == 1 and st.times_seen[2] == 1
    assert np.isfinite(st.loss).all() and np.isfinite(st.q).all()


def test_non_finite_confidence_dropped():
    st = SampleState(N)
    assert st.update([0, 1], [0.5, 0.5], [True, True], [np.nan, 0.9]) == 1
    assert st.times_seen[0] == 0 and st.times_seen[1] == 1


def test_huge_finite_loss_is_clipped_in_history():
    st = SampleState(N)
    _observe(st, [0], loss=1e30)
    assert np.isfinite(st.loss_history[0]).all()
    assert st.q[0] == np.float32(q_update(0.5, 1e30, st.config.effective_q_lr(), 10.0))


@pytest.mark.parametrize("bad_id", [-1, N, N + 5])
def test_out_of_range_id_raises_index_error(bad_id):
    st = SampleState(N)
    before = st.state_dict()
    with pytest.raises(IndexError, match=rf"sample id {bad_id} is outside the state's range \[0, {N}\)"):
        st.update([0, bad_id], [0.1, 0.1], [True, True], [0.9, 0.9])
    # nothing was recorded (validated before any write)
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(st, name), before[name])


def test_length_mismatch_raises():
    st = SampleState(N)
    with pytest.raises(ValueError, match=r"one length.*ids 2, losses 1"):
        st.update([0, 1], [0.1], [True, True], [0.9, 0.9])


def test_empty_update():
    st = SampleState(N)
    assert st.update([], [], [], []) == 0
    assert (st.times_seen == 0).all()


def test_tokens_recorded_and_clipped():
    st = SampleState(N)
    st.update([0, 1, 2], [0.1, 0.2, 0.3], [True] * 3, [0.9] * 3, tokens=[17, -5, 2**40])
    assert list(st.tokens[:3]) == [17, 0, np.iinfo(np.uint32).max]
    assert st.tokens.dtype == np.uint32
    st.update([0], [0.1], [True], [0.9])  # no tokens given: left as they were
    assert st.tokens[0] == 17


def test_times_seen_saturates_at_uint16_max():
    st = SampleState(N)
    st.times_seen[0] = np.iinfo(np.uint16).max - 1
    _observe(st, [0, 0, 0])
    assert st.times_seen[0] == np.iinfo(np.uint16).max


# -- repartition --------------------------------------------------------------------------------------------
def test_repartition_assigns_each_bucket():
    st = SampleState(N)  # auto mode, freeze_after_observations=1: one good observation reaches min_q
    _observe(st, [0, 1], loss=0.0, correct=True, confidence=0.95)  # -> FREEZE
    _observe(st, [2], loss=0.0, correct=True, confidence=0.85)  # confidence not above 0.85 -> LIGHT
    _observe(st, [3], loss=9.0, correct=True, confidence=0.95)  # Q too low -> LIGHT
    _observe(st, [4], loss=3.0, correct=False, confidence=0.60)  # -> FOCUS
    _observe(st, [5], loss=3.0, correct=False, confidence=0.61)  # -> HARD
    out = st.repartition()
    assert out is st.bucket
    assert list(st.bucket[:6]) == [FREEZE, FREEZE, LIGHT, LIGHT, FOCUS, HARD]
    assert (st.bucket[6:] == FOCUS).all()  # never seen: wrong, confidence 0


def test_unstable_loss_blocks_freeze():
    st = SampleState(N)
    _observe(st, [0], loss=0.0)
    _observe(st, [0], loss=1.0)  # std 0.5 -> quality 0.5 <= 0.80
    st.repartition()
    assert st.bucket[0] == LIGHT


def test_seed_mode_does_not_freeze_after_one_epoch():
    st = SampleState(N, GEKOConfig(q_value_mode="seed"))
    _observe(st, np.arange(N), loss=0.0)
    st.repartition()
    assert (st.bucket == LIGHT).all()


def test_frozen_epochs_counted_consecutively_and_reset():
    st = SampleState(N)
    _observe(st, [0, 1], loss=0.0)
    for epoch in range(1, 4):
        st.repartition()
        assert st.frozen_epochs[0] == epoch and st.frozen_epochs[1] == epoch
        assert (st.frozen_epochs[2:] == 0).all()
    # sample 1 is now wrong: leaves FREEZE, its count resets; sample 0 keeps counting
    _observe(st, [1], loss=5.0, correct=False, confidence=0.3)
    st.repartition()
    assert st.bucket[1] == FOCUS and st.frozen_epochs[1] == 0
    assert st.bucket[0] == FREEZE and st.frozen_epochs[0] == 4
    assert not st.pruned.any()  # prune_frozen_after=0: disabled


def test_forgetting_is_seen_by_repartition():
    # FREEZE samples are re-checked (gekolib never re-checks them).
    st = SampleState(N)
    _observe(st, [0], loss=0.0)
    st.repartition()
    assert st.bucket[0] == FREEZE
    _observe(st, [0], loss=4.0, correct=False, confidence=0.9)
    st.repartition()
    assert st.bucket[0] == HARD


def test_prune_after_two_consecutive_freeze_repartitions():
    st = SampleState(N, GEKOConfig(prune_frozen_after=2))
    _observe(st, [0, 1, 2], loss=0.0)
    st.repartition()
    assert st.frozen_epochs[0] == 1 and not st.pruned.any()
    st.repartition()
    np.testing.assert_array_equal(np.flatnonzero(st.pruned), [0, 1, 2])
    assert (st.bucket[:3] == FREEZE).all()
    # pruned samples keep their bucket and stay pruned, even if a later observation says they forgot
    _observe(st, [0], loss=9.0, correct=False, confidence=0.9)
    for _ in range(3):
        st.repartition()
    assert st.pruned[:3].all() and (st.bucket[:3] == FREEZE).all()
    assert (st.frozen_epochs[:3] == 2).all()  # no longer counted once pruned
    assert not st.pruned[3:].any()


def test_prune_counts_epochs_when_repartitioning_every_other_epoch():
    # prune_frozen_after counts epochs (the seed's meaning): with repartition_every=2 one FREEZE repartition spans
    # 2 epochs. Before: it counted repartitions, so pruning took twice the epochs asked for.
    st = SampleState(N, GEKOConfig(prune_frozen_after=2, repartition_every=2))
    _observe(st, [0], loss=0.0)
    st.repartition()
    assert st.frozen_epochs[0] == 2 and st.pruned[0]


def test_prune_needs_consecutive_epochs():
    st = SampleState(N, GEKOConfig(prune_frozen_after=2))
    _observe(st, [0], loss=0.0)
    st.repartition()  # FREEZE 1
    _observe(st, [0], loss=0.0, correct=False, confidence=0.3)
    st.repartition()  # FOCUS: reset
    assert st.frozen_epochs[0] == 0
    _observe(st, [0], loss=0.0)  # correct again (losses all 0: quality 1)
    st.repartition()  # FREEZE 1
    assert not st.pruned[0]
    st.repartition()  # FREEZE 2 -> pruned
    assert st.pruned[0]


# -- persistence --------------------------------------------------------------------------------------------
def _busy_state(cfg=None):
    st = SampleState(N, cfg or GEKOConfig(prune_frozen_after=2))
    rng = np.random.default_rng(1)
    for _ in range(4):
        ids = rng.integers(0, N, 40)
        st.update(ids, rng.uniform(0, 3, 40), rng.random(40) < 0.7, rng.random(40))
        st.repartition()
    return st


def test_state_dict_round_trip():
    st = _busy_state()
    d = st.state_dict()
    assert d["num_samples"] == N and d["state_version"] == STATE_VERSION
    assert set(d) == set(ARRAYS) | {"num_samples", "state_version"}
    new = SampleState(N, GEKOConfig(prune_frozen_after=2))
    new.load_state_dict(d)
    for name, (dtype, _) in ARRAYS.items():
        arr = getattr(new, name)
        assert arr.dtype == dtype, name
        np.testing.assert_array_equal(arr, getattr(st, name), err_msg=name)
        assert arr is not d[name]  # loaded arrays are copies
    # and it behaves identically afterwards
    for s in (st, new):
        _observe(s, [1, 2, 3], loss=0.2)
        s.repartition()
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(new, name), getattr(st, name), err_msg=name)


def test_state_dict_is_a_copy():
    st = _busy_state()
    d = st.state_dict()
    d["q"][:] = 0.0
    assert not (st.q == 0).all()


def test_load_state_dict_casts_to_stored_dtypes():
    st = _busy_state()
    d = {k: (v.astype(np.float64) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v)
         for k, v in st.state_dict().items()}
    new = SampleState(N)
    new.load_state_dict(d)
    for name, (dtype, _) in ARRAYS.items():
        assert getattr(new, name).dtype == dtype, name


def test_load_wrong_num_samples_mentions_both_sizes():
    d = SampleState(N + 4).state_dict()
    with pytest.raises(ValueError, match=rf"holds {N + 4} samples but the training dataset has {N}"):
        SampleState(N).load_state_dict(d)


def test_load_newer_version_asks_to_upgrade():
    d = SampleState(N).state_dict()
    d["state_version"] = STATE_VERSION + 1
    with pytest.raises(ValueError, match=rf"version {STATE_VERSION + 1} is newer.*upgrade geko_hf"):
        SampleState(N).load_state_dict(d)


def test_load_wrong_array_shape():
    d = SampleState(N).state_dict()
    d["loss_history"] = np.zeros((N, HISTORY + 1), np.float16)
    with pytest.raises(ValueError, match=r"'loss_history' has shape \(16, 6\), expected \(16, 5\)"):
        SampleState(N).load_state_dict(d)


def test_bytes_per_sample_at_most_64():
    st = SampleState(N)
    assert st.bytes_per_sample() <= 64
    assert st.nbytes() == sum(getattr(st, name).nbytes for name in ARRAYS) + st.quality().nbytes  # + the cache
    assert st.bytes_per_sample() == st.nbytes() / N
