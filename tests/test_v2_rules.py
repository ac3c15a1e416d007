"""GEKO v2 rules on small arrays: margins for every head, margin mastery (class-count free), the streak, stuck
(persistent-wrong) samples, frozen re-checks, the final full-data phase, stratified draws, version-1 states."""

import numpy as np
import pytest
import torch

from geko_hf.core.buckets import FOCUS, FREEZE, HARD, LIGHT
from geko_hf.core.config import GEKO_V2, GEKOConfig, get_preset
from geko_hf.core.selection import draw, plan_epoch, planned_length
from geko_hf.core.state import STATE_VERSION, SampleState, fallback_margin
from geko_hf.training.stats import classification_stats, token_stats
from geko_hf.core.tracker import GEKOTracker

MARGIN = GEKOConfig(mastery="margin", freeze_margin=0.5, hard_margin=0.2, mastery_streak=1)


def _logits_with_margins(p_label, p_other, classes):
    """[B, classes] logits whose softmax gives the label (class 0) p_label, the runner-up (class 1) p_other and
    the other classes the remainder, shared equally."""
    p_label, p_other = torch.tensor(p_label), torch.tensor(p_other)
    probs = torch.zeros(len(p_label), classes)
    probs[:, 0], probs[:, 1] = p_label, p_other
    if classes > 2:
        probs[:, 2:] = ((1.0 - p_label - p_other) / (classes - 2))[:, None]
    return probs.clamp_min(1e-12).log()


def _observe(st, ids, correct, margin, loss=0.05, confidence=0.9):
    ids = np.asarray(ids)
    n = len(ids)
    st.update(ids, np.full(n, loss), np.full(n, correct), np.full(n, confidence), margin=np.full(n, margin))


# -- margins --------------------------------------------------------------------------------------------------
def test_classification_margin_is_p_label_minus_best_other():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0]])
    st = classification_stats(logits, torch.tensor([0, 0]))
    p = logits.softmax(-1)
    torch.testing.assert_close(st.margin, torch.stack([p[0, 0] - p[0, 1], p[1, 0] - p[1, 1]]))
    assert st.correct.tolist() == [True, False]


def test_token_margin_is_the_weakest_supervised_token():
    torch.manual_seed(0)
    logits, labels = torch.randn(2, 6, 11), torch.randint(0, 11, (2, 6))
    labels[0, :2] = -100
    st = token_stats(logits, labels, shift=True)
    p = logits.softmax(-1)
    for b in range(2):
        ms = []
        for t in range(5):
            y = labels[b, t + 1]
            if y == -100:
                continue
            other = p[b, t].clone()
            other[y] = -1
            ms.append(p[b, t, y] - other.max())
        assert st.margin[b].item() == pytest.approx(min(ms).item(), abs=1e-6)
        assert bool(st.correct[b]) == (min(ms).item() > 0)


def test_same_margins_same_buckets_for_2_and_16_classes():
    margins = [0.8, 0.4, 0.2, -0.1, -0.8]  # (0.2, not 0.1: LIGHT needs a margin above light_margin = 0.1)
    p16 = [0.85, 0.5, 0.35, 0.25, 0.05]  # 16 classes: p(label); the runner-up p(label) - margin; 14 others share the rest
    cases = {2: ([(1 + m) / 2 for m in margins], [(1 - m) / 2 for m in margins]),
             16: (p16, [p - m for p, m in zip(p16, margins)])}
    buckets = []
    for classes, (p_label, p_other) in cases.items():
        stats = classification_stats(_logits_with_margins(p_label, p_other, classes), torch.zeros(5, dtype=torch.long))
        np.testing.assert_allclose(stats.margin.numpy(), margins, atol=1e-5)
        st = SampleState(5, MARGIN)
        st.update(np.arange(5), stats.loss.numpy(), stats.correct.numpy(), stats.confidence.numpy(),
                  margin=stats.margin.numpy())
        buckets.append(st.repartition().copy())
    np.testing.assert_array_equal(buckets[0], buckets[1])
    assert buckets[0].tolist() == [FREEZE, LIGHT, LIGHT, FOCUS, HARD]


def test_seed_confidence_rule_depends_on_the_class_count():
    """The reason for mastery='margin': the seed's rule freezes the 2-class sample, not the 16-class one."""
    out = []
    for classes, pl, po in ((2, 0.9, 0.1), (16, 0.6, 0.1)):  # margin 0.8 and 0.5
        stats = classification_stats(_logits_with_margins([pl], [po], classes), torch.zeros(1, dtype=torch.long))
        st = SampleState(1, GEKOConfig())
        st.update([0], stats.loss.numpy(), stats.correct.numpy(), stats.confidence.numpy())
        out.append(int(st.repartition()[0]))
    assert out == [FREEZE, LIGHT]


@pytest.mark.parametrize("correct, conf, expected", [(True, 0.9, 0.8), (True, 0.3, 0.0), (False, 0.9, -0.8),
                                                     (False, 0.3, 0.0)])
def test_fallback_margin_is_the_two_class_margin(correct, conf, expected):
    assert fallback_margin(np.array([correct]), np.array([conf]))[0] == pytest.approx(expected)


def test_missing_margins_are_derived_nan_and_none():
    st = SampleState(2, MARGIN)
    st.update([0, 1], [0.1, 0.1], [True, False], [0.9, 0.9], margin=[np.nan, 0.3])
    assert st.margin.tolist() == pytest.approx([0.8, 0.3])


# -- the streak -------------------------------------------------------------------------------------------------
def test_streak_counts_correct_and_wrong_runs():
    st = SampleState(1, MARGIN)
    seq = [(True, 0.6), (True, 0.7), (False, -0.3), (False, -0.2), (True, 0.1)]
    got = []
    for correct, m in seq:
        _observe(st, [0], correct, m)
        got.append(int(st.streak[0]))
    assert got == [1, 2, -1, -2, 1]
    assert st.streak_margin[0] == pytest.approx(-0.3)  # where the last wrong streak began
    assert st.margin_sum[0] == pytest.approx(sum(m for _, m in seq))


@pytest.mark.parametrize("mastery", ["margin", "confidence"])
def test_correct_once_is_not_frozen_with_streak_2(mastery):
    st = SampleState(1, MARGIN.replace(mastery=mastery, mastery_streak=2, freeze_quality=-1.0))
    _observe(st, [0], True, 0.9, confidence=0.99)
    assert st.repartition()[0] == LIGHT
    _observe(st, [0], True, 0.9, confidence=0.99)
    assert st.repartition()[0] == FREEZE
    _observe(st, [0], False, -0.5, confidence=0.99)  # forgotten: the streak restarts
    _observe(st, [0], True, 0.9, confidence=0.99)
    assert st.repartition()[0] == LIGHT


# -- stuck samples ----------------------------------------------------------------------------------------------
def test_stuck_after_k_wrong_without_gain_but_not_when_improving():
    cfg = MARGIN.replace(stuck_after=2, stuck_min_gain=0.05)
    st = SampleState(3, cfg)
    _observe(st, [0, 1, 2], False, -0.6)
    st.repartition()
    assert not st.stuck.any()  # one wrong observation is not persistence
    st.update([0, 1, 2], [1.0] * 3, [False] * 3, [0.8] * 3, margin=[-0.6, -0.2, -0.58])  # 1 improves by 0.4
    st.repartition()
    assert st.stuck.tolist() == [True, False, True]
    _observe(st, [0], True, 0.1)  # learnt after all: no longer stuck
    st.repartition()
    assert not st.stuck[0]


def _stuck_tracker(n, rate, epochs=6):
    cfg = MARGIN.replace(stuck_after=2, stuck_sample_rate=rate, light_sample_rate=1.0)
    return GEKOTracker(n, cfg, seed=0, num_epochs=epochs, unit=1, batch_size=1)


def test_a_persistent_wrong_samples_draw_rate_falls():
    """Stuck samples go from every epoch to a share stuck_sample_rate, and are never up-weighted."""
    n = 2000
    t = _stuck_tracker(n, rate=0.1)
    per_epoch = []
    for epoch in range(4):
        plan = t.plan(epoch)
        per_epoch.append(len(plan))
        t.record(plan, np.ones(len(plan)), np.zeros(len(plan), bool), np.full(len(plan), 0.9),
                 np.ones(len(plan), int), 1, margin=np.full(len(plan), -0.7))
        t.end_epoch(epoch, len(plan), 1, len(plan))
    assert per_epoch[:2] == [n, n]  # wrong once, wrong twice: still trained
    assert t.state.stuck.all()
    for share in per_epoch[2:]:
        assert abs(share - 0.1 * n) < 4 * np.sqrt(n * 0.1 * 0.9)  # Bernoulli(0.1) draws
    assert t.weight_table() is None  # weight 1: no 1/rate


def test_stuck_rate_zero_drops_them():
    t = _stuck_tracker(50, rate=0.0)
    t.state.stuck[:10] = True
    t.state.bucket[:] = FOCUS
    plan = t.make_plan(1)
    assert not np.isin(plan, np.arange(10)).any() and len(plan) == 40


# -- frozen re-checks -------------------------------------------------------------------------------------------
def test_frozen_samples_are_drawn_again_at_the_set_rate():
    n, rate = 4000, 0.1
    buckets = np.full(n, FREEZE, dtype=np.uint8)
    buckets[:1000] = FOCUS
    pruned, seen = np.zeros(n, bool), np.zeros(n, np.uint16)
    drawn = []
    for epoch in range(20):
        plan = plan_epoch(buckets, pruned, seen, (1, 1, 1), 50, seed=3, epoch=epoch, recheck_rate=rate)
        assert np.isin(np.arange(1000), plan).all()
        drawn.append(int((plan >= 1000).sum()))
    assert np.mean(drawn) == pytest.approx(rate * 3000, rel=0.05)
    assert len(set(map(tuple, [plan_epoch(buckets, pruned, seen, (1, 1, 1), 50, seed=3, epoch=e,
                                          recheck_rate=rate)[:5] for e in (0, 1)]))) == 2  # fresh draw each epoch
    assert planned_length(buckets, pruned, seen, (1, 1, 1), 50, recheck_rate=rate) == 1300


def test_pruned_frozen_samples_are_not_rechecked():
    n = 100
    buckets = np.full(n, FREEZE, dtype=np.uint8)
    pruned = np.ones(n, bool)
    plan = plan_epoch(buckets, pruned, np.zeros(n, np.uint16), (1, 1, 1), 50, seed=0, epoch=1, recheck_rate=1.0)
    assert len(plan) == 0


def test_no_probe_rates_give_the_same_plan_as_before():
    """The probes use their own generator: a config without them plans exactly as geko_hf 0.3 did."""
    rng = np.random.default_rng(0)
    buckets = rng.integers(0, 4, 500).astype(np.uint8)
    args = (buckets, np.zeros(500, bool), np.zeros(500, np.uint16), (1, 1, 1), 50)
    a = plan_epoch(*args, seed=1, epoch=2, light_rate=0.5)
    b = plan_epoch(*args, seed=1, epoch=2, light_rate=0.5, stuck=np.zeros(500, bool), stuck_rate=0.1)
    np.testing.assert_array_equal(a, b)


# -- the final full-data phase ---------------------------------------------------------------------------------
def test_final_full_phase_trains_every_live_sample_once_unweighted():
    cfg = MARGIN.replace(final_full_share=0.125, light_sample_rate=0.5, stuck_after=1, freeze_recheck_rate=0.1)
    t = GEKOTracker(64, cfg, seed=0, num_epochs=8, unit=1, batch_size=1)
    assert [t.full_data_epoch(e) for e in range(8)] == [False] * 7 + [True]
    t.state.bucket[:] = np.resize([FREEZE, LIGHT, FOCUS, HARD], 64)
    t.state.stuck[:8] = True
    t.state.pruned[60:] = True
    t.epoch = 7
    plan = t.plan(7)
    assert sorted(plan.tolist()) == list(range(60))
    assert t.weight_table() is None
    assert t.projected_length(7) == 60
    assert t.phase_and_weights(7)[0] == "full data" and t.phase_and_weights(6)[0] == "fixed"
    assert not GEKOTracker(64, cfg, seed=0, num_epochs=3, unit=1, batch_size=1).full_data_epoch(2)  # 3 x 0.875


# -- stratified draws --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.73])
def test_stratified_draws_keep_every_labels_share_within_one_sample(rate):
    rng = np.random.default_rng(1)
    groups = rng.choice(5, size=3000, p=[0.6, 0.25, 0.1, 0.04, 0.01])
    mask = rng.random(3000) < 0.7
    for seed in range(5):
        chosen = draw(mask, rate, np.random.default_rng(seed), groups)
        assert not (chosen & ~mask).any()
        for g in range(5):
            target = rate * np.count_nonzero(mask & (groups == g))
            assert abs(np.count_nonzero(chosen & (groups == g)) - target) < 1


def test_tracker_groups_are_validated_and_used():
    t = GEKOTracker(10, MARGIN.replace(light_sample_rate=0.5), seed=0, num_epochs=2, unit=1, batch_size=1)
    with pytest.raises(ValueError, match="one integer per training sample"):
        t.set_groups(np.zeros(9, int))
    t.set_groups(np.array([0] * 5 + [1] * 5))
    t.state.bucket[:] = LIGHT
    plan = t.make_plan(1)
    assert np.count_nonzero(plan < 5) in (2, 3) and np.count_nonzero(plan >= 5) in (2, 3)


# -- config and persistence ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("field, value, match", [
    ("mastery", "top1", "mastery"), ("stuck_after", -1, "stuck_after"), ("mastery_streak", 0, "mastery_streak"),
    ("stuck_sample_rate", 1.5, "stuck_sample_rate"), ("freeze_recheck_rate", -0.1, "freeze_recheck_rate"),
    ("final_full_share", 1.0, "final_full_share"), ("hard_margin", -0.1, "hard_margin")])
def test_v2_fields_validated(field, value, match):
    with pytest.raises(ValueError, match=match):
        GEKOConfig(**{field: value})


def test_v2_preset():
    cfg = get_preset("v2")
    assert cfg == GEKO_V2 and cfg is not GEKO_V2
    assert (cfg.mastery, cfg.mastery_streak, cfg.stuck_after) == ("margin", 2, 2)


def test_version_1_state_loads_with_defaults():
    st = SampleState(3, MARGIN)
    st.update([0, 1], [0.1, 2.0], [True, False], [0.9, 0.8])
    d = st.state_dict()
    for name in ("margin", "margin_sum", "streak", "streak_margin", "stuck"):
        del d[name]
    d["state_version"] = 1
    new = SampleState(3, MARGIN)
    new.load_state_dict(d)
    assert new.streak.tolist() == [1, -1, 0]
    assert new.margin.tolist() == pytest.approx([0.8, -0.6, 0.0])
    assert STATE_VERSION == 2 and not new.stuck.any()

