"""benchmarks/label_issues.py's parts with known answers: the two kinds of label noise it draws, the statistics it
recomputes from a run's recorded passes (they must be the data map's), and its scoring (issue 32)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))

import label_issues as bench  # noqa: E402


def test_uniform_noise_gives_each_chosen_row_another_class_and_is_seeded():
    labels = np.arange(400) % 8
    ids, new = bench.draw_noise("uniform", None, labels, 8, 0.25, seed=3)
    assert len(ids) == 100 and len(set(ids.tolist())) == 100
    assert np.all(new != labels[ids]) and set(new.tolist()) == set(range(8))  # any other class, every class used
    again = bench.draw_noise("uniform", None, labels, 8, 0.25, seed=3)
    assert np.array_equal(ids, again[0]) and np.array_equal(new, again[1])


def test_feature_noise_flips_the_most_confusable_rows_to_the_likeliest_wrong_class(monkeypatch):
    labels = np.array([0, 1, 2, 0, 1, 2])
    probs = np.array([[0.9, 0.05, 0.05],  # sure and right
                      [0.6, 0.3, 0.1],  # p(true) 0.3: confusable, likeliest wrong class 0
                      [0.2, 0.7, 0.1],  # p(true) 0.1: the most confusable, likeliest wrong class 1
                      [0.8, 0.1, 0.1],
                      [0.1, 0.8, 0.1],
                      [0.1, 0.1, 0.8]])
    monkeypatch.setattr(bench, "bow_oos_probs", lambda texts, labels, classes, seed: probs)
    ids, new = bench.draw_noise("feature", ["t"] * 6, labels, 3, 2 / 6)
    assert ids.tolist() == [1, 2] and new.tolist() == [0, 1]


def test_statistics_from_recorded_passes_are_the_data_maps():
    probs = np.array([[[0.7, 0.3], [0.2, 0.8], [0.6, 0.4]],  # epoch 0: rows 0-2, labels 0, 0, 1
                      [[0.9, 0.1], [0.4, 0.6], [0.3, 0.7]]])  # epoch 1
    labels = np.array([0, 0, 1])
    stats = bench.map_statistics(probs, labels, burn_out=1)
    np.testing.assert_allclose(stats["aum"], [(0.4 + 0.8) / 2, (-0.6 - 0.2) / 2, (-0.2 + 0.4) / 2], atol=1e-6)
    np.testing.assert_allclose(stats["early_aum"], [0.4, -0.6, -0.2], atol=1e-6)
    assert stats["forgetting"].tolist() == [0, 0, 0] and stats["correctness"].tolist() == [1.0, 0.0, 0.5]


def test_epochs_of_puts_each_rows_kth_pass_in_epoch_k_and_checks_every_row_was_seen():
    seen = [(np.array([1, 0]), np.array([[0.1, 0.9], [0.8, 0.2]])), (np.array([0, 1]), np.array([[0.7, 0.3],
                                                                                                [0.4, 0.6]]))]
    probs = bench.epochs_of(seen, 2, 2, 2)
    assert probs[0, 1].tolist() == [0.1, 0.9] and probs[1, 0].tolist() == [0.7, 0.3]
    with pytest.raises(AssertionError, match="every row once an epoch"):
        bench.epochs_of(seen[:1], 2, 2, 2)


def test_scoring_precision_at_the_noisy_count_and_average_precision():
    score = np.array([0.9, 0.1, 0.8, 0.2, np.nan])  # rows 0 and 2 ranked first; row 4 never observed
    out = bench.scored(score, [0, 3], passes=7)
    assert out["precision_at_k"] == 0.5 and out["extra_passes"] == 7
    assert out["average_precision"] == pytest.approx((1 / 1 + 2 / 3) / 2)  # hits at ranks 1 and 3 (0, 2, 3, 1)
