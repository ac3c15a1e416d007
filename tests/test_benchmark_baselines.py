"""The benchmark's baseline policies (benchmarks/baselines.py) run through GEKO's machinery. A baseline at GEKO's budget
replays the paired GEKO run: exactly its passes in every epoch and its learning rate at every optimizer step, or its
arm differs from GEKO's in its length or its LR, not only in its data (issue 33)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))

from baselines import (InfoBatchBudgetPolicy, PairedRandomPolicy, RandomPolicy, StockOrderPolicy,  # noqa: E402
                       with_budget)

from geko_hf import GEKOConfig  # noqa: E402
from geko_hf.core.tracker import GEKOTracker  # noqa: E402


def test_a_budgeted_baseline_projects_its_own_epoch_lengths():
    budget = [1216, 1000, 640]
    tracker = GEKOTracker(2000, GEKOConfig(), seed=0, num_epochs=3, unit=32, batch_size=32,
                          policy=with_budget(RandomPolicy, budget))
    assert [tracker.projected_length(e) for e in range(3)] == [1216, 992, 640]  # whole optimizer steps
    assert [len(tracker.plan(e)) for e in range(3)] == [1216, 992, 640]


def test_a_paired_random_baseline_trains_exactly_the_paired_runs_passes():
    """GEKO rounds a full epoch UP to whole optimizer steps (2,000 samples at batch 32: 2,016 passes); RandomPolicy cut
    it to 1,984 (issue 33). The paired baseline tops up with a second permutation, and projects its epochs exactly."""
    budget = [2016, 1216, 640]
    tracker = GEKOTracker(2000, GEKOConfig(), seed=0, num_epochs=3, unit=32, batch_size=32,
                          policy=with_budget(PairedRandomPolicy, budget))
    assert [tracker.projected_length(e) for e in range(3)] == budget
    plans = [tracker.plan(e) for e in range(3)]
    assert [len(p) for p in plans] == budget
    assert sorted(set(plans[0])) == list(range(2000))  # every sample once, 16 of them twice
    assert len(set(plans[1])) == 1216  # within the data: distinct samples ...
    plain = GEKOTracker(2000, GEKOConfig(), seed=0, num_epochs=3, unit=32, batch_size=32,
                        policy=with_budget(RandomPolicy, budget))
    assert np.array_equal(plans[1], plain.plan(1))  # ... RandomPolicy's very draw


def test_infobatch_at_a_budget_leaves_out_exactly_what_the_budget_needs():
    """InfoBatch draws each below-mean sample with probability r, a random epoch length; at a paired budget exactly
    n - budget are left out (kept ones weigh 1/(1-r)), widened to the lowest losses where r would pass MAX_PRUNE."""
    n, budget = 100, [104, 60, 20]
    tracker = GEKOTracker(n, GEKOConfig(), seed=1, num_epochs=3, unit=4, batch_size=4,
                          policy=with_budget(InfoBatchBudgetPolicy, budget))
    first = tracker.plan(0)  # nothing seen yet: every sample, topped up to the budget
    assert len(first) == 104 and sorted(set(first)) == list(range(n))
    tracker.state.times_seen[:] = 1
    tracker.state.loss[:] = np.arange(n, dtype=np.float32)  # 0..49 are below the mean
    policy = tracker.policy
    second = tracker.plan(1)
    assert len(second) == 60 and len(set(second)) == 60 and set(range(50, n)) <= set(second)
    assert np.allclose(policy.weight_table()[np.intersect1d(second, np.arange(50))], 1 / (1 - 40 / 50))
    third = tracker.plan(2)  # 80 to leave out: the 85 lowest losses, r = 80/85
    assert len(third) == 20 and set(range(85, n)) <= set(third)
    assert np.allclose(policy.weight_table()[np.intersect1d(third, np.arange(85))], 1 / (1 - 80 / 85))


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


def _runs(rows, rev="abc"):
    return [{"arm": arm, "seed": seed, "metric": metric, "sample_passes": passes, "forward_calls": passes,
             "tokens": passes, "train_seconds": 1.0, "rev": rev} for arm, seed, metric, passes in rows]


def test_an_ablation_is_paired_with_its_base_on_the_seeds_both_ran():
    """`geko_v2:stuck_after=0` against `geko_v2`, seed by seed: pairing by position would compare different seeds."""
    import tradeoff

    runs = _runs([
                ("curve_1.0", 0, 0.70, 100), ("curve_1.0", 1, 0.72, 100), ("curve_1.0", 2, 0.74, 100),
                ("geko_v2", 0, 0.60, 80), ("geko_v2", 1, 0.65, 80), ("geko_v2", 2, 0.70, 80),
                ("geko_v2:stuck_after=0", 2, 0.73, 90), ("geko_v2:stuck_after=0", 0, 0.62, 90)])
    summary, _ = tradeoff.summarise(runs)
    [(arm, base, seeds, d_metric, d_passes, revs)] = tradeoff.ablations(summary)
    assert (arm, base, seeds, revs) == ("geko_v2:stuck_after=0", "geko_v2", [2, 0], [("abc", "abc")] * 2)
    assert np.allclose(d_metric, [0.03, 0.02]) and np.allclose(d_passes, [0.1, 0.1])
    table = "\n".join(tradeoff.ablation_table(summary, "accuracy"))
    assert "| stuck_after=0 | geko_v2 | 2, 0 | +2.50 [" in table and "| same (abc) |" in table
    assert "**differ**" not in table and "--rerun BASE BASE:CHANGE" not in table


def test_an_ablation_made_at_another_code_revision_than_its_base_says_so():
    """Issue 33, item 9: minilm_long seed 0's base had no recorded revision and its changes ran at another, and the
    table showed the pair like any other: whether the config or the code made the difference could not be told."""
    import tradeoff

    base = [("curve_1.0", 0, 0.70, 100), ("curve_1.0", 1, 0.72, 100), ("geko_v2", 0, 0.60, 80)]
    runs = (_runs(base[:2], "aaa") + _runs([base[2]], None) + _runs([("geko_v2", 1, 0.61, 80)], "aaa")
            + _runs([("geko_v2:stuck_after=0", 0, 0.62, 90), ("geko_v2:stuck_after=0", 1, 0.63, 90)], "bbb"))
    table = "\n".join(tradeoff.ablation_table(tradeoff.summarise(runs)[0], "accuracy"))
    assert "| **differ**: base None, aaa / change bbb |" in table
    assert "--rerun BASE BASE:CHANGE" in table


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


# -- the replay of a paired GEKO run, through the benchmarks' own code (savings.run_arm, tradeoff.run_one) ------------
N_TINY = 60  # not a multiple of the batch: GEKO's first epoch rounds up past the data (64 passes)


def tiny_setup(seed=0):
    """run_arm's (model, train, held, collator, metric, config) for a GPT-2 of 2 layers on 60 toy rows, 4 epochs."""
    from hf_helpers import tiny_gpt2, toy_lm_dataset
    from transformers import default_data_collator

    config = dict(batch=8, epochs=4, lr=3e-2, warmup=2)
    return (tiny_gpt2(seed), toy_lm_dataset(N_TINY), toy_lm_dataset(8, seed=1), default_data_collator,
            lambda p: {"metric": 0.0}, config)


@pytest.fixture(scope="module")
def geko_row(one_thread, tmp_path_factory):
    from savings import run_arm

    return run_arm("tiny", "geko", 0, setup=tiny_setup(), eval_epochs=False,
                   output_root=str(tmp_path_factory.mktemp("bench")))


def test_the_lr_trace_is_the_learning_rate_each_step_trained_with(one_thread, tmp_path):
    """LRTrace reads each param group's LR just before each optimizer step, then once at the end: the scheduler's
    LR after every step (LRRecorder) is the trace from its second entry on."""
    from baselines import LRTrace
    from hf_helpers import LRRecorder, make_args, tiny_gpt2, toy_lm_dataset

    from geko_hf import GEKOTrainer

    trace, recorder = LRTrace(), LRRecorder()
    trainer = GEKOTrainer(model=tiny_gpt2(), args=make_args(tmp_path, num_train_epochs=3), callbacks=[trace, recorder],
                          train_dataset=toy_lm_dataset(N_TINY), geko_config=GEKOConfig(log_bucket_stats=False))
    trainer.train()
    assert len(trace.lrs) == trainer.state.global_step + 1
    assert [step[0] for step in trace.lrs[1:]] == recorder.lrs
    assert trace.lrs[0][0] == 0.0 and trace.lrs[2][0] == 3e-2  # the warmup's 2 steps, then the peak


@pytest.mark.parametrize("script, arm", [("tradeoff", "random"), ("tradeoff", "random_v2"),
                                         ("tradeoff", "infobatch_budget"), ("tradeoff", "random_b60"),
                                         ("tradeoff", "stock_order_b60"), ("savings", "random"),
                                         ("savings", "infobatch_r02")])
def test_a_baseline_at_gekos_budget_replays_the_paired_runs_passes_and_learning_rates(geko_row, script, arm,
                                                                                       tmp_path):
    """Issue 33: the arms at GEKO's budget got a schedule fitted to their own known budget while GEKO stretched its
    own onto a projection of later epochs (here GEKO's mean LR factor 0.538, the fitted one 0.500), and random cut
    GEKO's rounded-up first epoch (64 passes) to 56. Each must now train GEKO's passes at GEKO's LR, step by step."""
    import savings
    import tradeoff

    assert geko_row["per_epoch_passes"][0] > N_TINY  # the round-up past the data is exercised
    assert len(geko_row["lr_steps"]) == sum(geko_row["per_epoch_passes"]) // 8 + 1
    kw = dict(setup=tiny_setup(), output_root=str(tmp_path))
    if script == "tradeoff":
        row = tradeoff.run_one("tiny", kw["setup"][5], arm, 0, [], paired=geko_row, **kw)
    else:
        row = savings.run_arm("tiny", arm, 0, paired=geko_row, eval_epochs=False, **kw)
    assert row["per_epoch_passes"] == geko_row["per_epoch_passes"]
    assert row["lr_steps"] == geko_row["lr_steps"]  # every param group, every step: the same floats
    assert row["paired"] == {"arm": "geko", "seed": 0, "rev": geko_row["rev"]}
    assert row["rev"] and row["command"].startswith("python ")


def test_a_baseline_refuses_a_paired_row_without_learning_rates():
    """Rows saved before issue 33 have per-epoch passes but no learning rates: the baseline says to run them again."""
    from savings import paired_schedule

    with pytest.raises(ValueError, match="--rerun geko"):
        paired_schedule({"arm": "geko", "seed": 1, "rev": "abc", "per_epoch_passes": [64, 48]})


def test_rerunning_a_geko_arm_reruns_the_baselines_that_replay_it():
    from savings import drop_for_rerun
    from tradeoff import BUDGET_FROM

    runs = [{"arm": arm, "seed": seed} for seed in (0, 1) for arm in ("curve_1.0", "geko", "random", "random_v2")]
    kept, again = drop_for_rerun(runs, ["geko"], [0], BUDGET_FROM)
    assert again == ["geko", "random"]
    assert [(r["arm"], r["seed"]) for r in kept] == [("curve_1.0", 0), ("random_v2", 0), ("curve_1.0", 1),
                                                       ("geko", 1), ("random", 1), ("random_v2", 1)]


# -- precision: one per results file ---------------------------------------------------------------------------
def test_bench_precision_is_the_cpus_unless_pinned(tmp_path):
    from savings import bf16_autocast

    cpu = tmp_path / "cpuinfo"
    cpu.write_text("flags : avx512f avx512_bf16\n")
    assert bf16_autocast({}, str(cpu)) is True
    assert bf16_autocast({"GEKO_BENCH_BF16": "0"}, str(cpu)) is False
    assert bf16_autocast({"GEKO_BENCH_BF16": "1"}, str(tmp_path / "none")) is True
    with pytest.raises(ValueError, match="GEKO_BENCH_BF16='yes'"):
        bf16_autocast({"GEKO_BENCH_BF16": "yes"}, str(cpu))


def test_resume_refuses_to_add_runs_of_another_precision(tmp_path, monkeypatch, capsys):
    """A machine with avx512_bf16 turned bf16 autocast on, and --resume added bf16 arms to a file whose stock curve
    trained in fp32: every comparison with the curve then mixed precisions, silently (the meta kept one flag)."""
    import tradeoff

    (tmp_path / "tradeoff_minilm.json").write_text(json.dumps({"meta": {"bf16": False, "seeds": [0], "arms": []},
                                                               "runs": []}))
    monkeypatch.setattr(tradeoff, "RESULTS", str(tmp_path))
    monkeypatch.setattr(tradeoff, "BF16", True)
    monkeypatch.setattr(sys, "argv", ["tradeoff.py", "--workload", "minilm", "--resume", "--arms", "geko"])
    with pytest.raises(SystemExit):
        tradeoff.main()
    assert "the saved runs trained in fp32, this process would train in bf16 autocast" in capsys.readouterr().err
    assert "GEKO_BENCH_BF16=0" in tradeoff.precision_mismatch(False, True)


def test_resume_keeps_what_the_file_says_of_its_rows(tmp_path, monkeypatch):
    """--resume rewrote meta from this invocation: the notes on kept arms (e.g. one made before a fix) and the record
    of a row re-run to check it reproduces were lost with the next run added to the file."""
    import tradeoff

    row = {"arm": "curve_1.0", "seed": 0, "metric": 0.8, "sample_passes": 100, "forward_calls": 4, "tokens": 100,
           "train_seconds": 1.0, "curve": [[100, 0.8]]}
    notes = {"arm_notes": {"curve_1.0": "a note"}, "reproduced": [{"arm": "curve_1.0", "seed": 0, "metric": 0.8}]}
    (tmp_path / "tradeoff_minilm.json").write_text(json.dumps(
        {"meta": {"bf16": tradeoff.BF16, "seeds": [0], "arms": ["curve_1.0"], **notes}, "runs": [row]}))
    monkeypatch.setattr(tradeoff, "RESULTS", str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["tradeoff.py", "--workload", "minilm", "--resume", "--seeds", "0",
                                      "--arms", "curve_1.0"])
    tradeoff.main()  # nothing to train: every (arm, seed) is saved; the file is written again
    meta = json.loads((tmp_path / "tradeoff_minilm.json").read_text())["meta"]
    assert {k: meta.get(k) for k in notes} == notes
