"""The benchmark's baseline policies (benchmarks/baselines.py) run through GEKO's machinery: a budgeted baseline must
stretch the LR schedule onto its own real length, or its arm differs from the others in its LR, not its data."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))

from baselines import RandomPolicy, StockOrderPolicy, with_budget  # noqa: E402

from geko_hf import GEKOConfig  # noqa: E402
from geko_hf.core.tracker import GEKOTracker  # noqa: E402


def test_a_budgeted_baseline_projects_its_own_epoch_lengths():
    budget = [1216, 1000, 640]
    tracker = GEKOTracker(2000, GEKOConfig(), seed=0, num_epochs=3, unit=32, batch_size=32,
                          policy=with_budget(RandomPolicy, budget))
    assert [tracker.projected_length(e) for e in range(3)] == [1216, 992, 640]  # whole optimizer steps
    assert [len(tracker.plan(e)) for e in range(3)] == [1216, 992, 640]


def test_the_stock_order_control_trains_every_sample_once_before_any_twice():
    """stock_order_b60 must be the stock Trainer's stream (permutation after permutation) cut into the budget's
    epochs, or it controls for nothing."""
    n, budget = 100, [64, 64, 64]  # 1.92 passes over the data: the 2nd permutation starts inside epoch 1
    tracker = GEKOTracker(n, GEKOConfig(), seed=3, num_epochs=3, unit=8, batch_size=8,
                          policy=with_budget(StockOrderPolicy, budget))
    stream = np.concatenate([tracker.plan(e) for e in range(3)])
    assert sorted(stream[:n]) == list(range(n))  # the first lap: every sample exactly once
    assert len(set(stream[n:])) == len(stream) - n  # the second lap: no repeats within it
    assert [len(tracker.plan(e)) for e in range(3)] == budget


def test_a_runs_revision_ignores_results_files_but_not_code(tmp_path):
    """Every benchmark run rewrites benchmarks/results/: counting those files marked every run "+modified"."""
    import subprocess

    import tradeoff

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    (tmp_path / "src").mkdir()
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    for name in ("src/a.py", "benchmarks/b.py", "benchmarks/results/r.json"):
        (tmp_path / name).write_text("0")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "x")
    folder = str(tmp_path / "benchmarks")
    clean = tradeoff.code_revision(folder)
    assert clean and "+" not in clean
    (tmp_path / "benchmarks/results/r.json").write_text("1")
    assert tradeoff.code_revision(folder) == clean
    (tmp_path / "src/a.py").write_text("1")
    assert tradeoff.code_revision(folder) == clean + "+modified"


def test_an_ablation_is_paired_with_its_base_on_the_seeds_both_ran():
    """`geko_v2:stuck_after=0` against `geko_v2`, seed by seed: pairing by position would compare different seeds."""
    import tradeoff

    runs = [{"arm": arm, "seed": seed, "metric": metric, "sample_passes": passes, "forward_calls": passes,
             "tokens": passes, "train_seconds": 1.0}
            for arm, seed, metric, passes in [
                ("curve_1.0", 0, 0.70, 100), ("curve_1.0", 1, 0.72, 100), ("curve_1.0", 2, 0.74, 100),
                ("geko_v2", 0, 0.60, 80), ("geko_v2", 1, 0.65, 80), ("geko_v2", 2, 0.70, 80),
                ("geko_v2:stuck_after=0", 2, 0.73, 90), ("geko_v2:stuck_after=0", 0, 0.62, 90)]]
    summary, _ = tradeoff.summarise(runs)
    [(arm, base, seeds, d_metric, d_passes)] = tradeoff.ablations(summary)
    assert (arm, base, seeds) == ("geko_v2:stuck_after=0", "geko_v2", [2, 0])
    assert np.allclose(d_metric, [0.03, 0.02]) and np.allclose(d_passes, [0.1, 0.1])
    assert "| stuck_after=0 | geko_v2 | 2, 0 | +2.50 [" in "\n".join(tradeoff.ablation_table(summary, "accuracy"))


@pytest.mark.parametrize("epochs, inert", [(3, False), (8, False)])
def test_the_ablation_skips_final_full_share_only_where_the_tracker_plans_no_full_data_epoch(epochs, inert):
    """The ablation is skipped only where the tracker plans no full data. Issue 33: the phase starts at (1 - share)
    of the run, within an epoch, so a 3-epoch run at 12.5% trains the last 3/8 of its last epoch on full data (this
    test asserted it trained none, the old whole-epoch rounding)."""
    import tradeoff
    from savings import config_for

    from geko_hf.core.tracker import GEKOTracker

    tracker = GEKOTracker(16, config_for("geko_v2"), seed=0, num_epochs=epochs, unit=1, batch_size=1)
    assert (not any(tracker.full_data_share(e) > 0 for e in range(epochs))) == inert
    assert (tradeoff.inert_changes({"epochs": epochs}) == ["final_full_share=0"]) == inert
    table = "\n".join(tradeoff.ablation_table(_one_ablation(), "accuracy", tradeoff.inert_changes({"epochs": epochs})))
    assert ("Not run, no effect by construction at this length: final_full_share=0" in table) == inert


def _one_ablation():
    import tradeoff

    runs = [{"arm": arm, "seed": 0, "metric": 0.7, "sample_passes": 90, "forward_calls": 90, "tokens": 90,
             "train_seconds": 1.0} for arm in ("curve_1.0", "geko_v2", "geko_v2:stuck_after=0")]
    return tradeoff.summarise(runs)[0]
