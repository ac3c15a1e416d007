"""Q-value EMA, loss-stability quality, and the EMA rate GEKOConfig actually uses (effective_q_lr)."""

import numpy as np
import pytest

from geko_hf.core.config import GEKOConfig
from geko_hf.core.q_value import q_update, quality
from geko_hf.core.state import HISTORY, SampleState


# -- q_update: the seed's examples (lr 0.1, scale 10, from q = 0.5) ----------------------------------------
@pytest.mark.parametrize(
    "loss, scale, expected",
    [
        (0.0, 10.0, 0.55),
        (5.0, 10.0, 0.50),
        (10.0, 10.0, 0.45),
        (11.0, 10.0, 0.45),
        (1e6, 10.0, 0.45),
        (2.0, 2.0, 0.45),
    ],
)
def test_q_update_seed_examples(loss, scale, expected):
    out = q_update(np.full(16, 0.5, np.float32), np.full(16, loss), 0.1, scale)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)


def test_q_update_scalar_and_elementwise():
    q = np.array([0.5, 0.5, 0.5, 0.0, 1.0], np.float32)
    loss = np.array([0.0, 5.0, 10.0, 0.0, 10.0])
    np.testing.assert_allclose(q_update(q, loss, 0.1, 10.0), [0.55, 0.50, 0.45, 0.1, 0.9], atol=1e-6)
    assert float(q_update(0.5, 0.0, 0.1, 10.0)) == pytest.approx(0.55, abs=1e-6)


def test_seed_loss_2_never_reaches_freeze():
    # peer-gekolib.md: at loss 2 (scale 10) the target is 0.8, so Q approaches 0.8 from below and never gets there.
    q = np.full(16, 0.5, np.float32)
    for _ in range(200):
        q = q_update(q, np.full(16, 2.0), 0.1, 10.0)
    assert (q < 0.8).all()


# -- quality: 1 - population std of the last HISTORY losses --------------------------------------------------
def test_quality_zero_observations_is_zero():
    hist = np.zeros((16, HISTORY), np.float16)
    np.testing.assert_array_equal(quality(hist, np.zeros(16, np.uint16)), 0.0)


def test_quality_one_observation_is_one():
    hist = np.zeros((16, HISTORY), np.float16)
    hist[:, 0] = np.arange(16)  # any single loss: std 0
    q = quality(hist, np.ones(16, np.uint16))
    assert q.dtype == np.float32
    np.testing.assert_array_equal(q, 1.0)


def test_quality_ignores_unfilled_slots():
    hist = np.zeros((16, HISTORY), np.float16)
    hist[:, :2] = [1.0, 3.0]
    hist[:, 2:] = 100.0  # garbage in unfilled slots must not count
    np.testing.assert_allclose(quality(hist, np.full(16, 2, np.uint16)), 1.0 - 1.0)  # std(1, 3) = 1


def test_quality_full_ring_population_std():
    rng = np.random.default_rng(0)
    hist = rng.uniform(0, 2, (16, HISTORY)).astype(np.float16)
    expected = 1.0 - hist.astype(np.float64).std(axis=1)  # ddof=0, gekolib's definition
    for seen in (HISTORY, HISTORY + 1, 1000):
        np.testing.assert_allclose(quality(hist, np.full(16, seen, np.uint16)), expected, rtol=1e-6)


def test_quality_window_uses_latest_losses_in_ring_order():
    # 7 observations 1..7 written at slot n % 5: the ring is [6, 7, 3, 4, 5]; the latest two are 7 and 6.
    hist = np.tile(np.array([6, 7, 3, 4, 5], np.float16), (16, 1))
    seen = np.full(16, 7, np.uint16)
    np.testing.assert_allclose(quality(hist, seen, window=2), 1.0 - 0.5)
    np.testing.assert_allclose(quality(hist, seen, window=3), 1.0 - np.std([5, 6, 7]), rtol=1e-6)
    np.testing.assert_allclose(quality(hist, seen, window=5), 1.0 - np.std([3, 4, 5, 6, 7]), rtol=1e-6)
    np.testing.assert_allclose(quality(hist, seen, window=1), 1.0)
    np.testing.assert_allclose(quality(hist, seen, window=99), quality(hist, seen))  # capped at K


def test_quality_window_with_few_observations():
    hist = np.zeros((16, HISTORY), np.float16)
    hist[:, :3] = [1.0, 5.0, 3.0]
    seen = np.full(16, 3, np.uint16)
    np.testing.assert_allclose(quality(hist, seen, window=2), 1.0 - 1.0)  # (5, 3)
    np.testing.assert_allclose(quality(hist, seen, window=5), 1.0 - np.std([1, 5, 3]), rtol=1e-6)


def test_quality_std_of_last_5_through_state_ring_buffer():
    # 7 observations 1..7: the ring holds 3..7 (std sqrt(2)); 1 and 2 were overwritten.
    st = SampleState(16, GEKOConfig(quality_window=5))
    ids = np.arange(16)
    for loss in range(1, 8):
        st.update(ids, np.full(16, float(loss)), np.ones(16, bool), np.full(16, 0.9))
    np.testing.assert_allclose(st.quality(), 1.0 - np.std([3, 4, 5, 6, 7]), rtol=1e-6)


def test_quality_state_default_window_is_last_two():
    st = SampleState(16)
    ids = np.arange(16)
    for loss in (9.0, 1.0, 2.0):
        st.update(ids, np.full(16, loss), np.ones(16, bool), np.full(16, 0.9))
    np.testing.assert_allclose(st.quality(), 1.0 - 0.5)  # std(1, 2); the 9 is outside the window


def test_quality_state_partial_ring():
    st = SampleState(16, GEKOConfig(quality_window=5))
    st.update(np.arange(8), np.full(8, 2.0), np.ones(8, bool), np.full(8, 0.9))
    st.update(np.arange(4), np.full(4, 4.0), np.ones(4, bool), np.full(4, 0.9))
    q = st.quality()
    np.testing.assert_allclose(q[:4], 0.0)  # losses (2, 4): std 1
    np.testing.assert_allclose(q[4:8], 1.0)  # one observation
    np.testing.assert_allclose(q[8:], 0.0)  # never seen


# -- effective_q_lr ---------------------------------------------------------------------------------------
def _updates_to_reach(cfg: GEKOConfig, loss: float, limit: int = 200) -> int:
    """Number of Q updates at a constant loss until q >= min_q_for_freeze, through the stored float32 path."""
    q = np.full(16, cfg.q_value_init, np.float32)
    lr = cfg.effective_q_lr()
    for n in range(1, limit + 1):
        q = q_update(q, np.full(16, loss), lr, cfg.q_value_loss_scale)
        if (q >= cfg.min_q_for_freeze).all():
            return n
    return limit + 1


def test_seed_mode_returns_q_value_lr():
    assert GEKOConfig(q_value_mode="seed").effective_q_lr() == 0.1
    assert GEKOConfig(q_value_mode="seed", q_value_lr=0.37).effective_q_lr() == 0.37
    assert GEKOConfig(q_value_mode="seed", freeze_after_observations=1).effective_q_lr() == 0.1


def test_seed_mode_needs_9_updates_at_loss_0():
    assert _updates_to_reach(GEKOConfig(q_value_mode="seed"), loss=0.0) == 9


@pytest.mark.parametrize("k", [1, 2, 3])
def test_auto_reaches_freeze_after_exactly_k_updates_at_loss_half(k):
    cfg = GEKOConfig(q_value_mode="auto", freeze_after_observations=k)
    assert _updates_to_reach(cfg, loss=0.5) == k


@pytest.mark.parametrize("k", [1, 2, 3])
def test_auto_k_through_sample_state(k):
    cfg = GEKOConfig(q_value_mode="auto", freeze_after_observations=k)
    st = SampleState(16, cfg)
    ids = np.arange(16)
    for n in range(1, k + 1):
        assert (st.q < cfg.min_q_for_freeze).all(), f"reached min_q after {n - 1} < {k} updates"
        st.update(ids, np.full(16, 0.5), np.ones(16, bool), np.full(16, 0.95))
    assert (st.q >= cfg.min_q_for_freeze).all()


def test_auto_default_is_one_observation():
    cfg = GEKOConfig()
    assert cfg.q_value_mode == "auto" and cfg.freeze_after_observations == 1
    assert _updates_to_reach(cfg, loss=0.5) == 1


def test_auto_never_lowers_the_rate():
    cfg = GEKOConfig(q_value_mode="auto", q_value_lr=0.95, freeze_after_observations=3)
    assert cfg.effective_q_lr() == 0.95


def test_auto_rate_is_at_most_one():
    cfg = GEKOConfig(q_value_mode="auto", freeze_after_observations=1, min_q_for_freeze=1.0)
    lr = cfg.effective_q_lr()
    assert 0 < lr <= 1.0


def test_auto_when_init_already_above_min_q_returns_q_value_lr():
    cfg = GEKOConfig(q_value_mode="auto", q_value_init=0.9, min_q_for_freeze=0.8)
    assert cfg.effective_q_lr() == cfg.q_value_lr


def test_auto_rate_decreases_with_k():
    rates = [GEKOConfig(freeze_after_observations=k).effective_q_lr() for k in (1, 2, 3, 5, 9)]
    assert rates == sorted(rates, reverse=True)
    assert all(r >= 0.1 for r in rates)
