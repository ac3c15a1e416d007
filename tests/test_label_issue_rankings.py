"""Every label-issue ranking of geko_hf.core.label_issues on a data map with known answers (issue 32, item 2 of the
acceptance), and the estimate of the number of label issues that clean-and-retrain uses as k."""

import numpy as np
import pytest

from geko_hf.core.data_map import DataMap
from geko_hf.core.label_issues import (DEFAULT_RANKING, RANKINGS, estimate_issue_count, label_issue_ranking,
                                       label_issue_scores)

# Binary task, 3 epochs; the gold probability of each sample in each epoch (margin = 2p - 1, correct = p > 0.5).
P = {0: [0.90, 0.95, 0.99],  # clean and easy
     1: [0.10, 0.20, 0.90],  # flipped, memorised in the last epoch
     2: [0.30, 0.30, 0.30],  # never learned
     3: [0.60, 0.40, 0.60]}  # learned, forgotten once, relearned
# sample 4 is never observed


def data_map(burn_out=2):
    dm = DataMap(5, burn_out=burn_out)
    ids = np.array(sorted(P))
    for epoch in range(3):
        p = np.array([P[i][epoch] for i in ids])
        dm.update(ids, epoch, -np.log(p), p > 0.5, 2 * p - 1)
    return dm.statistics()


# Worked out by hand from P (mean margin, mean and last loss, forgetting, epochs 0-1 margin):
EXPECTED = {
    "aum": [2, 1, 3, 0],  # mean margins -0.4, -0.2, 0.067, 0.893
    "confidence": [2, 1, 3, 0],  # mean p 0.3, 0.4, 0.533, 0.947 (binary: the same order as AUM)
    "mean_loss": [1, 2, 3, 0],  # 1.339, 1.204, 0.646, 0.056: the memorised flip has the highest mean loss
    "last_loss": [2, 3, 1, 0],  # 1.204, 0.511, 0.105, 0.010: memorised by the end, the flip ranks third
    "early_aum": [1, 2, 3, 0],  # epochs 0-1: -0.7, -0.4, 0.0, 0.85: before memorising, the flip is first
    "early_confidence": [1, 2, 3, 0],
    "forgetting": [2, 3, 1, 0],  # never learned first, then 1 event; 1 and 0 tie at 0 (last loss breaks it)
}


@pytest.mark.parametrize("method", sorted(RANKINGS))
def test_each_ranking_orders_the_samples_as_worked_out_by_hand(method):
    score, order = label_issue_ranking(data_map(), method)
    assert order.tolist() == EXPECTED[method]
    assert np.isnan(score[4]) and 4 not in order  # never observed: no score, not ranked


def test_every_ranking_is_covered_by_the_hand_worked_answers():
    assert set(EXPECTED) == set(RANKINGS)
    assert DEFAULT_RANKING in RANKINGS


def test_default_is_aum_and_higher_score_means_more_likely_wrong():
    stats = data_map()
    score = label_issue_scores(stats)
    np.testing.assert_allclose(score[:4], -stats["aum"][:4])
    assert label_issue_ranking(stats)[1].tolist() == EXPECTED[DEFAULT_RANKING]


def test_estimate_counts_the_samples_with_negative_mean_margin_over_the_run():
    stats = data_map()
    assert estimate_issue_count(stats) == 2  # samples 1 and 2; the unobserved one is not counted
    stats["aum"][0] = -0.01
    assert estimate_issue_count(stats) == 3


def test_unknown_ranking_and_missing_burn_out_say_what_to_do():
    with pytest.raises(ValueError, match="'nope' is unknown; choose one of"):
        label_issue_scores(data_map(), "nope")
    with pytest.raises(ValueError, match="burn_out > 0"):
        label_issue_scores(data_map(burn_out=0), "early_aum")


def test_data_map_burn_out_is_a_config_field_the_tracker_honours():
    from geko_hf import GEKOConfig
    from geko_hf.core.data_map_table import data_map_columns
    from geko_hf.core.tracker import GEKOTracker

    tracker = GEKOTracker(4, GEKOConfig(policy="observe", data_map_burn_out=1), seed=0, num_epochs=2, unit=1,
                          batch_size=4)
    for epoch, correct in enumerate(([False, True, True, True], [True, True, True, True])):
        tracker.record(np.arange(4), [0.5] * 4, correct, [0.6] * 4, np.ones(4, int), 4,
                       margin=[0.2 if c else -0.2 for c in correct])
        tracker.end_epoch(epoch, 4, 4, 4)
    columns = data_map_columns(tracker)
    assert columns["early_aum"].tolist() == pytest.approx([-0.2, 0.2, 0.2, 0.2])  # epoch 0 only
    assert columns["aum"][0] == pytest.approx(0.0, abs=1e-6)  # (-0.2 + 0.2) / 2, stored in float32
    assert "early_aum" not in data_map_columns(GEKOTracker(4, GEKOConfig(), seed=0, num_epochs=1, unit=1,
                                                           batch_size=4))
    with pytest.raises(ValueError, match="data_map_burn_out"):
        GEKOConfig(data_map_burn_out=-1)
