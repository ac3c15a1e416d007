"""The mountain curriculum: phase boundaries, per-phase weights, epoch midpoints, fixed weights when off."""

import math

import pytest

from geko_hf.core.curriculum import PHASE_STARTS, PHASE_WEIGHTS, PHASES, bucket_weights, epoch_progress, phase_at


def test_phase_table_is_the_seeds():
    assert PHASES == ("warmup", "ascent", "peak", "descent", "consolidate")
    assert PHASE_STARTS == (0.0, 0.15, 0.35, 0.65, 0.85)


@pytest.mark.parametrize(
    "phase, weights",
    [
        ("warmup", (1.0, 2.0, 3.0)),
        ("ascent", (2.0, 3.0, 1.0)),
        ("peak", (5.0, 2.0, 0.0)),
        ("descent", (2.0, 3.0, 1.0)),
        ("consolidate", (1.0, 2.0, 3.0)),
    ],
)
def test_per_phase_weights(phase, weights):
    assert PHASE_WEIGHTS[phase] == weights
    assert len(PHASE_WEIGHTS[phase]) == 3  # (HARD, FOCUS, LIGHT): FREEZE has no entry, it is always 0


def test_weights_cover_every_phase():
    assert set(PHASE_WEIGHTS) == set(PHASES)


@pytest.mark.parametrize(
    "progress, phase",
    [
        (0.0, "warmup"),
        (0.10, "warmup"),
        (0.15, "ascent"),  # an exact boundary belongs to the next phase
        (0.20, "ascent"),
        (0.35, "peak"),
        (0.50, "peak"),
        (0.65, "descent"),
        (0.80, "descent"),
        (0.85, "consolidate"),
        (0.95, "consolidate"),
        (1.0, "consolidate"),
    ],
)
def test_phase_at_boundaries(progress, phase):
    assert phase_at(progress) == phase


@pytest.mark.parametrize("start, before, after", [(0.15, "warmup", "ascent"), (0.35, "ascent", "peak"),
                                                  (0.65, "peak", "descent"), (0.85, "descent", "consolidate")])
def test_phase_at_just_below_and_at_boundary(start, before, after):
    assert phase_at(math.nextafter(start, 0.0)) == before
    assert phase_at(start) == after


@pytest.mark.parametrize("progress, phase", [(-0.5, "warmup"), (-1e9, "warmup"), (1.5, "consolidate"),
                                             (1e9, "consolidate"), (math.inf, "consolidate"),
                                             (-math.inf, "warmup")])
def test_phase_at_clamps_outside_unit_interval(progress, phase):
    assert phase_at(progress) == phase


def test_phase_at_accepts_ints():
    assert phase_at(0) == "warmup"
    assert phase_at(1) == "consolidate"


def test_epoch_progress_is_midpoint():
    assert epoch_progress(0, 3) == pytest.approx(1 / 6)
    assert epoch_progress(1, 3) == pytest.approx(0.5)
    assert epoch_progress(2, 3) == pytest.approx(5 / 6)
    assert epoch_progress(0, 1) == pytest.approx(0.5)
    assert epoch_progress(0, 0) == pytest.approx(0.5)  # num_epochs 0 does not divide by zero


def test_three_epochs_walk_ascent_peak_descent():
    # gekolib uses the epoch's start (0, .33, .67) and never reaches PEAK in a 3-epoch run.
    phases = [bucket_weights(e, 3, True)[0] for e in range(3)]
    assert phases == ["ascent", "peak", "descent"]
    assert bucket_weights(1, 3, True)[1] == (5.0, 2.0, 0.0)


def test_ten_epochs_visit_every_phase():
    phases = [bucket_weights(e, 10, True)[0] for e in range(10)]
    assert phases == ["warmup", "ascent", "ascent", "peak", "peak", "peak", "descent", "descent",
                      "consolidate", "consolidate"]


def test_one_epoch_is_peak():
    assert bucket_weights(0, 1, True) == ("peak", (5.0, 2.0, 0.0))


@pytest.mark.parametrize("epoch", [0, 1, 2, 7])
def test_curriculum_off_returns_fixed_weights(epoch):
    name, w = bucket_weights(epoch, 8, False)
    assert name == "fixed"
    assert w == (3.0, 1.0, 0.0)
    name, w = bucket_weights(epoch, 8, False, fixed=[5, 2, 1])
    assert name == "fixed"
    assert w == (5.0, 2.0, 1.0)
    assert all(type(x) is float for x in w)


def test_curriculum_on_ignores_fixed():
    assert bucket_weights(1, 3, True, fixed=(9, 9, 9)) == ("peak", (5.0, 2.0, 0.0))
