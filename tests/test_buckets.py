"""Bucket rules (`buckets.classify`) at every boundary of the seed's table, on 16-element arrays.

Reference: gekolib 0.3.0's public description (its PyPI page) and code: FREEZE needs confidence > 0.85, quality > 0.80 and q >= 0.80; a wrong sample at exactly 0.60 is FOCUS.
"""

import numpy as np
import pytest

from geko_hf.core.buckets import BUCKET_NAMES, FOCUS, FREEZE, HARD, LIGHT, classify, counts

N = 16
THRESHOLDS = dict(freeze_confidence=0.85, freeze_quality=0.80, focus_confidence=0.60, min_q_for_freeze=0.80)


def _classify(correct=True, confidence=0.95, quality=0.95, q=0.95, **thresholds):
    """classify() on N identical samples (scalars broadcast to arrays of N), seed thresholds by default."""
    kw = {**THRESHOLDS, **thresholds}
    arr = lambda x, dt: np.full(N, x, dtype=dt)  # noqa: E731
    return classify(
        arr(correct, bool), arr(confidence, np.float32), arr(quality, np.float32), arr(q, np.float32), **kw
    )


def test_codes_and_names():
    assert (FREEZE, LIGHT, FOCUS, HARD) == (0, 1, 2, 3)
    assert BUCKET_NAMES == ("FREEZE", "LIGHT", "FOCUS", "HARD")


def test_output_dtype_and_shape():
    out = _classify()
    assert out.dtype == np.uint8
    assert out.shape == (N,)


def test_all_gates_passed_is_freeze():
    assert (_classify() == FREEZE).all()


# -- confidence must EXCEED freeze_confidence ---------------------------------------------------------------
def test_confidence_exactly_085_is_light():
    assert (_classify(confidence=0.85) == LIGHT).all()


def test_confidence_just_above_085_is_freeze():
    assert (_classify(confidence=0.851) == FREEZE).all()


def test_confidence_gate_uses_keyword_threshold():
    assert (_classify(confidence=0.88, freeze_confidence=0.90) == LIGHT).all()
    assert (_classify(confidence=0.88, freeze_confidence=0.80) == FREEZE).all()


# -- Q must REACH min_q_for_freeze --------------------------------------------------------------------------
def test_q_exactly_080_is_freeze():
    assert (_classify(q=0.80, min_q_for_freeze=0.80) == FREEZE).all()


def test_q_exactly_080_float32_is_freeze():
    # q is stored as float32 in SampleState, thresholds are Python floats (compared in float32 under NEP 50).
    q = np.full(N, 0.8, dtype=np.float32)
    out = classify(np.ones(N, bool), np.full(N, 0.95), np.full(N, 0.95), q, **THRESHOLDS)
    assert (out == FREEZE).all()


def test_q_just_below_080_is_light():
    assert (_classify(q=0.799) == LIGHT).all()


# -- quality must EXCEED freeze_quality ---------------------------------------------------------------------
def test_quality_exactly_freeze_quality_is_light():
    assert (_classify(quality=0.80) == LIGHT).all()


def test_quality_exactly_freeze_quality_float64_is_light():
    out = classify(
        np.ones(N, bool), np.full(N, 0.95), np.full(N, 0.80, dtype=np.float64), np.full(N, 0.95), **THRESHOLDS
    )
    assert (out == LIGHT).all()


def test_quality_just_above_is_freeze():
    assert (_classify(quality=0.801) == FREEZE).all()


# -- wrong samples: FOCUS at <= focus_confidence, HARD above ------------------------------------------------
def test_wrong_at_exactly_060_is_focus():
    assert (_classify(correct=False, confidence=0.60) == FOCUS).all()


def test_wrong_at_061_is_hard():
    assert (_classify(correct=False, confidence=0.61) == HARD).all()


def test_wrong_never_freezes_even_if_confident_and_stable():
    # confidence 0.99 > freeze_confidence and perfect Q/quality: still HARD, because the sample is wrong.
    assert (_classify(correct=False, confidence=0.99, quality=1.0, q=1.0) == HARD).all()


def test_wrong_low_confidence_is_focus():
    assert (_classify(correct=False, confidence=0.0) == FOCUS).all()


def test_correct_low_confidence_is_light():
    # correct is LIGHT whatever the confidence (no FOCUS/HARD split for correct samples).
    assert (_classify(correct=True, confidence=0.10) == LIGHT).all()
    assert (_classify(correct=True, confidence=0.61) == LIGHT).all()


def test_mixed_array_elementwise():
    correct = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1], dtype=bool)
    conf = np.array([.95, .85, .95, .95, .95, .60, .61, .99, .10, .86, .95, .95, .605, .6001, .5, .95])
    qual = np.array([.95, .95, .80, .95, .81, .95, .95, .95, .95, .95, .95, .95, .1, .1, .9, 1.0])
    q = np.array([.95, .95, .95, .80, .79, .95, .95, .95, .95, .80, .90, .81, .0, .0, .9, .80])
    expected = [FREEZE, LIGHT, LIGHT, FREEZE, LIGHT, FOCUS, HARD, HARD, FOCUS, FREEZE, FREEZE, FREEZE,
                HARD, HARD, LIGHT, FREEZE]
    out = classify(correct, conf, qual, q, **THRESHOLDS)
    np.testing.assert_array_equal(out, np.array(expected, dtype=np.uint8))


def test_thresholds_are_keyword_only():
    with pytest.raises(TypeError):
        classify(np.ones(N, bool), np.ones(N), np.ones(N), np.ones(N), 0.85, 0.80, 0.60, 0.80)


# -- counts -------------------------------------------------------------------------------------------------
def test_counts_all_buckets_and_zero_entries():
    b = np.array([FREEZE] * 3 + [LIGHT] * 5 + [HARD] * 8, dtype=np.uint8)
    assert counts(b) == {"FREEZE": 3, "LIGHT": 5, "FOCUS": 0, "HARD": 8}


def test_counts_with_mask():
    b = np.array([FREEZE, LIGHT, FOCUS, HARD] * 4, dtype=np.uint8)
    mask = np.zeros(N, bool)
    mask[:6] = True  # FREEZE LIGHT FOCUS HARD FREEZE LIGHT
    assert counts(b, mask) == {"FREEZE": 2, "LIGHT": 2, "FOCUS": 1, "HARD": 1}


def test_counts_empty_mask_and_types():
    b = np.full(N, FOCUS, dtype=np.uint8)
    c = counts(b, np.zeros(N, bool))
    assert c == {"FREEZE": 0, "LIGHT": 0, "FOCUS": 0, "HARD": 0}
    assert list(c) == list(BUCKET_NAMES)
    assert all(type(v) is int for v in counts(b).values())
    assert counts(b)["FOCUS"] == N
