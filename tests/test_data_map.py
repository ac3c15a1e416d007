"""DataMap: streaming per-sample training dynamics (Cartography, AUM, forgetting) against hand computations."""

import numpy as np
import pytest

from geko_hf.core.data_map import REGIONS, DataMap, region_thresholds

# Toy run: 4 samples x 4 epochs. Per epoch: (gold probability, correct, margin); None = not seen that epoch.
# Sample 0 learns at epoch 1 and stays learned; sample 1 is correct, forgotten, correct again (one forgetting
# event, learned again at epoch 2); sample 2 is skipped in epoch 3 and ends wrong; sample 3 is never observed.
TOY = {
    0: [(0.2, False, -0.3), (0.5, True, 0.1), (0.8, True, 0.6), (0.9, True, 0.8)],
    1: [(0.6, True, 0.2), (0.3, False, -0.4), (0.7, True, 0.4), (0.8, True, 0.6)],
    2: [(0.1, False, -0.8), (0.2, True, 0.05), (0.15, False, -0.7), None],
}


def _run_toy(dm: DataMap, epochs=range(4)) -> DataMap:
    for epoch in epochs:
        seen = [(i, obs[epoch]) for i, obs in TOY.items() if obs[epoch] is not None]
        dm.update([i for i, _ in seen], epoch, loss=[-np.log(o[0]) for _, o in seen],
                  correct=[o[1] for _, o in seen], margin=[o[2] for _, o in seen])
    return dm


def test_toy_run_every_statistic_by_hand():
    s = _run_toy(DataMap(4)).statistics()
    assert all(v.shape == (4,) for v in s.values())
    np.testing.assert_array_equal(s["observations"], [4, 4, 3, 0])
    # confidence: (0.2+0.5+0.8+0.9)/4, (0.6+0.3+0.7+0.8)/4, (0.1+0.2+0.15)/3
    np.testing.assert_allclose(s["confidence"][:3], [0.6, 0.6, 0.15], rtol=1e-12)
    # variability, population std: sample 0 sqrt((.16+.01+.04+.09)/4); sample 2 over its 3 observations only
    np.testing.assert_allclose(s["variability"][:3], [np.sqrt(0.075), np.sqrt(0.035), np.sqrt(0.005 / 3)],
                               rtol=1e-12)
    np.testing.assert_allclose(s["correctness"][:3], [0.75, 0.75, 1 / 3], rtol=1e-12)
    np.testing.assert_allclose(s["aum"][:3], [0.3, 0.2, -0.4833333333], rtol=1e-6)
    np.testing.assert_allclose(s["mean_loss"][:3], [-np.mean(np.log([0.2, 0.5, 0.8, 0.9])),
                                                    -np.mean(np.log([0.6, 0.3, 0.7, 0.8])),
                                                    -np.mean(np.log([0.1, 0.2, 0.15]))], rtol=1e-6)
    np.testing.assert_allclose(s["last_loss"][:3], -np.log([0.9, 0.8, 0.15]), rtol=1e-6)
    np.testing.assert_array_equal(s["forgetting"], [0, 1, 1, 0])
    np.testing.assert_array_equal(s["learned_epoch"], [1, 2, -1, -1])
    np.testing.assert_array_equal(s["last_epoch"], [3, 3, 2, -1])
    for name in ("confidence", "variability", "correctness", "aum", "mean_loss", "last_loss"):
        assert np.isnan(s[name][3]), name
    assert not any(k.startswith("early_") for k in s)


def test_one_observation_has_zero_variability():
    dm = DataMap(2)
    dm.update([0], 0, loss=[-np.log(0.4)], correct=[False], margin=[-0.1])
    s = dm.statistics()
    assert s["variability"][0] == 0.0 and np.isnan(s["variability"][1])
    assert s["confidence"][0] == pytest.approx(0.4)


def test_duplicates_in_one_call_are_applied_in_order():
    dm = DataMap(3)
    # sample 0: T, F, T (one forgetting event, learned again); sample 1: T, T, F (forgotten at the end);
    # sample 2: F, T, T (learned, never forgotten). Interleaved in one call.
    ids = [0, 1, 2, 0, 1, 2, 0, 1, 2]
    correct = [True, True, False, False, True, True, True, False, True]
    dm.update(ids, 5, loss=np.full(9, 0.5), correct=correct, margin=np.zeros(9))
    s = dm.statistics()
    np.testing.assert_array_equal(s["observations"], [3, 3, 3])
    np.testing.assert_array_equal(s["forgetting"], [1, 1, 0])
    np.testing.assert_array_equal(s["learned_epoch"], [5, -1, 5])


def test_one_call_equals_one_observation_at_a_time():
    rng = np.random.default_rng(0)
    batched, single = DataMap(7), DataMap(7)
    for epoch in range(3):
        ids = rng.integers(0, 6, 40)  # many duplicates; sample 6 never seen
        loss, correct, margin = rng.exponential(1.0, 40), rng.random(40) < 0.5, rng.uniform(-1, 1, 40)
        batched.update(ids, epoch, loss, correct, margin)
        for k in range(40):
            single.update(ids[k:k + 1], epoch, loss[k:k + 1], correct[k:k + 1], margin[k:k + 1])
    a, b = batched.statistics(), single.statistics()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-12, err_msg=name)
    assert a["forgetting"].sum() > 0


def test_non_finite_entries_are_ignored():
    dm = DataMap(3)
    dm.update([0, 0, 1, 2], 0, loss=[np.nan, -np.log(0.5), np.inf, 0.1], correct=[True, False, True, True],
              margin=[0.1, -0.2, 0.3, np.nan])
    s = dm.statistics()
    np.testing.assert_array_equal(s["observations"], [1, 0, 0])
    assert s["confidence"][0] == pytest.approx(0.5) and s["correctness"][0] == 0.0
    assert s["forgetting"][0] == 0 and s["learned_epoch"][0] == -1


@pytest.mark.parametrize("bad", [-1, 5])
def test_bad_ids_raise_and_change_nothing(bad):
    dm = DataMap(5)
    with pytest.raises(IndexError, match=rf"{bad}.*\[0, 5\)"):
        dm.update([0, bad], 0, loss=[0.1, 0.1], correct=[True, True], margin=[0.5, 0.5])
    assert dm.statistics()["observations"].sum() == 0


def test_mismatched_lengths_and_negative_loss_raise():
    dm = DataMap(3)
    with pytest.raises(ValueError, match="lengths"):
        dm.update([0, 1], 0, loss=[0.1], correct=[True, True], margin=[0.1, 0.1])
    with pytest.raises(ValueError, match="loss"):
        dm.update([0], 0, loss=[-1.0], correct=[True], margin=[0.1])


def _two_epochs(pairs) -> DataMap:
    """A DataMap whose sample k saw gold probabilities pairs[k] in epochs 0 and 1 (None: never seen)."""
    dm = DataMap(len(pairs))
    for epoch in range(2):
        ids = [k for k, pq in enumerate(pairs) if pq is not None]
        p = np.array([pairs[k][epoch] for k in ids])
        dm.update(ids, epoch, loss=-np.log(p), correct=p > 0.5, margin=2 * p - 1)
    return dm


def test_regions_on_a_known_map():
    # confidence, variability (= |p1 - p2| / 2): two of high variability, two confident and steady,
    # two unconfident and steady, one never seen.
    dm = _two_epochs([(0.1, 0.9), (0.2, 0.8), (0.9, 0.95), (0.85, 0.85), (0.1, 0.1), (0.05, 0.15), None])
    assert list(dm.regions()) == ["ambiguous", "ambiguous", "easy-to-learn", "easy-to-learn",
                                  "hard-to-learn", "hard-to-learn", ""]
    t = region_thresholds(dm.statistics())
    # variability sorted [0, 0, .025, .05, .3, .4]: 2/3 quantile at position 10/3 -> .05 + (1/3)(.25)
    assert t["variability_cutoff"] == pytest.approx(0.05 + 0.25 / 3)
    assert t["confidence_cutoff"] == 0.5  # absolute: below even odds for the gold label
    assert region_thresholds()["ambiguous_variability_quantile"] == pytest.approx(2 / 3)


def test_ties_and_tiny_maps():
    steady = _two_epochs([(0.3, 0.3), (0.9, 0.9), (0.6, 0.6)])  # all variability 0: no sample is ambiguous
    assert list(steady.regions()) == ["hard-to-learn", "easy-to-learn", "easy-to-learn"]
    assert list(_two_epochs([(0.2, 0.4)]).regions()) == ["hard-to-learn"]  # difficulty is absolute
    assert list(_two_epochs([(0.2, 0.2)] * 5).regions()) == ["hard-to-learn"] * 5  # all noise: none "easy"
    assert list(DataMap(2).regions()) == ["", ""]


def test_every_observed_sample_gets_one_region():
    rng = np.random.default_rng(1)
    dm = DataMap(500)
    for epoch in range(4):
        ids = rng.choice(500, 300, replace=False)
        dm.update(ids, epoch, rng.exponential(1.0, 300), rng.random(300) < 0.6, rng.uniform(-1, 1, 300))
    seen = dm.statistics()["observations"] > 0
    r = dm.regions()
    assert set(r[seen]) <= set(REGIONS) and set(r[~seen]) <= {""}
    assert 0 < seen.sum() < 500


def _assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.parametrize("burn_out", [0, 2])
def test_state_dict_round_trip_and_file(tmp_path, burn_out):
    dm = _run_toy(DataMap(4, burn_out=burn_out), epochs=range(3))
    fresh = DataMap(4, burn_out=burn_out)
    fresh.load_state_dict(dm.state_dict())
    _assert_same(dm.statistics(), fresh.statistics())

    np.savez(tmp_path / "map.npz", **dm.state_dict())
    with np.load(tmp_path / "map.npz") as f:
        from_file = DataMap(4, burn_out=burn_out)
        from_file.load_state_dict(dict(f))
    _assert_same(dm.statistics(), from_file.statistics())
    # the restored map goes on exactly as the original (learned flags, Welford moments survive)
    _run_toy(dm, epochs=[3])
    _run_toy(from_file, epochs=[3])
    _assert_same(dm.statistics(), from_file.statistics())


def test_load_checks_num_samples_version_and_burn_out():
    state = _run_toy(DataMap(4)).state_dict()
    with pytest.raises(ValueError, match="num_samples=4 in the state but num_samples=5"):
        DataMap(5).load_state_dict(state)
    with pytest.raises(ValueError, match="version=99"):
        DataMap(4).load_state_dict({**state, "version": 99})
    with pytest.raises(ValueError, match="burn_out"):
        DataMap(4, burn_out=2).load_state_dict(state)
    with pytest.raises(ValueError, match="mean_p"):
        DataMap(4).load_state_dict({k: v for k, v in state.items() if k != "mean_p"})


def test_burn_out_uses_only_early_epochs():
    s = _run_toy(DataMap(4, burn_out=2)).statistics()
    np.testing.assert_array_equal(s["early_observations"], [2, 2, 2, 0])
    np.testing.assert_allclose(s["early_confidence"][:3], [0.35, 0.45, 0.15], rtol=1e-12)
    np.testing.assert_allclose(s["early_variability"][:3], [0.15, 0.15, 0.05], rtol=1e-12)
    np.testing.assert_allclose(s["early_aum"][:3], [-0.1, -0.1, -0.375], rtol=1e-6)
    assert np.isnan(s["early_confidence"][3]) and np.isnan(s["early_aum"][3])
    np.testing.assert_allclose(s["confidence"][:3], [0.6, 0.6, 0.15], rtol=1e-12)  # full run unchanged


def _state_nbytes(dm: DataMap) -> int:
    return sum(v.nbytes for v in dm.state_dict().values() if isinstance(v, np.ndarray))


@pytest.mark.parametrize("burn_out", [0, 3])
def test_memory_does_not_grow_with_epochs(burn_out):
    rng = np.random.default_rng(2)
    dm = DataMap(100, burn_out=burn_out)
    sizes = {}
    for epoch in range(20):
        dm.update(np.arange(100), epoch, rng.exponential(1.0, 100), rng.random(100) < 0.5, rng.uniform(-1, 1, 100))
        if epoch + 1 in (2, 20):
            sizes[epoch + 1] = _state_nbytes(dm)
    assert sizes[2] == sizes[20] == 100 * dm.memory_bytes_per_sample()
    assert dm.memory_bytes_per_sample() == (48 if burn_out == 0 else 72)


def test_large_update_runs():
    rng = np.random.default_rng(3)
    n = 200_000
    dm = DataMap(150_000)
    ids = rng.integers(0, 150_000, n)  # with duplicates
    dm.update(ids, 0, rng.exponential(1.0, n), rng.random(n) < 0.5, rng.uniform(-1, 1, n))
    s = dm.statistics()
    assert s["observations"].sum() == n
    np.testing.assert_array_equal(s["observations"], np.bincount(ids, minlength=150_000))
