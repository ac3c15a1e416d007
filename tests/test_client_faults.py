"""Issue 34, faults 2-5 as a client met them: an empty LIGHT draw ending the run with a false message, samples at
chance counted as nearly mastered, token savings that did not happen, and the smaller ones (why nothing freezes on
long token heads, negative savings without a word, FutureWarnings GEKO adds, `geko-hf report` on a folder with
checkpoints only). Each test failed before its fix; the failing assertion is named in its comment."""

from __future__ import annotations

import json
import logging
import warnings

import numpy as np
import pytest
import torch

from geko_hf.core.buckets import FOCUS, FREEZE, LIGHT, counts
from geko_hf.core.config import GEKO_SEED, GEKOConfig
from geko_hf.core.selection import plan_epoch, planned_length
from geko_hf.core.state import SampleState
from geko_hf.core.tracker import GEKOTracker
from geko_hf.training.loop import GEKOLoop


# -- 2. an empty LIGHT draw ends training, with a false message ---------------------------------------------
def test_an_empty_light_draw_still_plans_one_optimizer_step():
    # one LIGHT sample left among FREEZE ones: at rate 0.5 half the epochs' draws are empty. Before: the plan was
    # empty (`assert len(plan) == 8` failed at epoch 1) and the run ended as if nothing were left to train.
    buckets = np.full(16, FREEZE, dtype=np.uint8)
    buckets[5] = LIGHT
    for epoch in range(20):
        plan = plan_epoch(buckets, np.zeros(16, bool), np.zeros(16, np.uint16), (1.0, 1.0, 1.0), 50, seed=0,
                          epoch=epoch, unit=8, light_rate=0.5)
        assert len(plan) == 8 and set(plan.tolist()) == {5}, epoch
    # the projection of a future epoch says so too (it feeds the LR schedule's length)
    assert planned_length(buckets, np.zeros(16, bool), np.zeros(16, np.uint16), (1.0, 1.0, 1.0), 50, unit=8,
                          light_rate=0.5) == 8


def test_an_empty_stratified_draw_still_plans_one_step_of_the_light_samples():
    # stratified: floor(0.5 x 1 + u) is 0 in half the draws, in every group at once
    buckets = np.full(32, FREEZE, dtype=np.uint8)
    buckets[[3, 20]] = LIGHT
    groups = np.arange(32) % 2
    for epoch in range(20):
        plan = plan_epoch(buckets, np.zeros(32, bool), np.zeros(32, np.uint16), (1.0, 1.0, 1.0), 50, seed=1,
                          epoch=epoch, unit=4, light_rate=0.5, groups=groups)
        assert len(plan) == 4 and set(plan.tolist()) <= {3, 20}, epoch


def _one_light_sample_hooks():
    """Row 0 is correct at confidence 0.7 forever (LIGHT), every other row correct at 0.95 with a tiny loss
    (FREEZE after its first observations)."""
    def first(batch):
        return batch["input_ids"][:, 0]

    return {"compute_sample_loss": lambda out, b: torch.full(first(b).shape, 0.01),
            "compute_correctness": lambda out, b: torch.ones_like(first(b), dtype=torch.bool),
            "compute_confidence": lambda out, b: torch.where(first(b) == 10, 0.7, 0.95)}


@pytest.mark.parametrize("fixed_steps", [False, True])
def test_run_with_one_light_sample_left_trains_every_epoch_or_step(tmp_path, capsys, fixed_steps):
    # Before: the first epoch whose draw of the one LIGHT sample came out empty ended the run (after epoch 1, step 2,
    # in both runs): `assert "Nothing left to train" not in out` failed on "[GEKO] Nothing left to train after epoch
    # 1: every sample is FREEZE, pruned or at max_times_seen", printed under a partition line with LIGHT: 1.
    import datasets
    from hf_helpers import make_args, tiny_gpt2

    from geko_hf import GEKOTrainer

    rows = [{"input_ids": [10 + i, 1, 2, 3], "labels": [10 + i, 1, 2, 3], "attention_mask": [1] * 4}
            for i in range(16)]
    kw = dict(max_steps=12) if fixed_steps else dict(num_train_epochs=10)
    trainer = GEKOTrainer(model=tiny_gpt2(), train_dataset=datasets.Dataset.from_list(rows),
                          args=make_args(tmp_path, **kw), geko_config=GEKOConfig(light_sample_rate=0.5, max_times_seen=1000),
                          **_one_light_sample_hooks())
    trainer.train()
    out = capsys.readouterr().out
    assert "Nothing left to train" not in out
    assert "LIGHT:    1" in out
    if fixed_steps:
        assert trainer.state.global_step == 12
    else:
        assert trainer.geko.tracker.epoch == 10 and trainer.state.global_step == 2 + 9  # then one step an epoch


def test_early_end_message_is_true_when_trainable_samples_cannot_fill_a_step():
    # 3 FOCUS samples with one pass left each cannot fill a step of 8: the plan is empty and the run ends, but not
    # because "every sample is FREEZE, pruned or at max_times_seen", the one sentence printed before (the test failed
    # on its import: there was no function that could say anything else).
    from geko_hf.hf.callback import early_end_reason, nothing_left

    tracker = GEKOTracker(16, GEKOConfig(max_times_seen=3), seed=0, num_epochs=5, unit=8, batch_size=8)
    s = tracker.state
    s.bucket[:] = FREEZE
    s.bucket[:3] = FOCUS
    s.times_seen[:] = 2
    assert nothing_left(tracker)
    reason = early_end_reason(tracker)
    assert "3 samples" in reason and "max_times_seen=3" in reason and "FREEZE, pruned" not in reason
    s.bucket[:3] = FREEZE
    tracker._plans.clear()
    assert "every sample is FREEZE, pruned or at max_times_seen" in early_end_reason(tracker)


# -- 3. a sample at chance is not "nearly mastered" ---------------------------------------------------------
@pytest.mark.parametrize("mastery", ["confidence", "margin"])
def test_samples_at_chance_stay_focus_not_light(mastery):
    # A balanced binary task and a model that answers class 0 for everybody at p = 0.51: half the samples are
    # "correct" with margin 0.02. Before: they were LIGHT (`counts(...)["LIGHT"] == 0` failed: 8) and half of them
    # were skipped each epoch.
    n = 16
    s = SampleState(n, GEKOConfig(mastery=mastery))
    label = np.arange(n) % 2
    correct = label == 0
    s.update(np.arange(n), np.full(n, 0.67), correct, np.full(n, 0.51), margin=np.where(correct, 0.02, -0.02))
    s.repartition()
    assert counts(s.bucket)["LIGHT"] == 0 and (s.bucket[correct] == FOCUS).all()
    # what the hooks give (no margin: derived from correct and confidence, 2c - 1 = 0.02) is at chance too
    s2 = SampleState(n, GEKOConfig(mastery=mastery))
    s2.update(np.arange(n), np.full(n, 0.67), correct, np.full(n, 0.51))
    assert counts(s2.repartition())["LIGHT"] == 0
    # a sample clearly above chance is LIGHT, as before
    s.update(np.arange(n), np.full(n, 0.3), correct, np.full(n, 0.75), margin=np.where(correct, 0.5, -0.5))
    assert (s.repartition()[correct] == LIGHT).all()


def test_at_chance_samples_are_all_trained_not_thinned():
    tracker = GEKOTracker(16, GEKOConfig(light_sample_rate=0.5), seed=0, num_epochs=3, unit=1, batch_size=1)
    correct = np.arange(16) % 2 == 0
    tracker.record(np.arange(16), np.full(16, 0.67), correct, np.full(16, 0.51), np.ones(16, np.int64), 16,
                   margin=np.where(correct, 0.02, -0.02))
    tracker.end_epoch(0, passes=16, batches=16, tokens=16)
    assert sorted(tracker.plan(1).tolist()) == list(range(16))  # before: 13, three of the 8 "correct" ones drawn out
    assert tracker.weight_table() is None  # nobody is LIGHT: no 1/rate weights


def test_light_margin_floor_is_a_validated_config_field_and_the_seed_keeps_its_rule():
    assert GEKOConfig().light_margin > 0.02  # the at-chance margin above stays FOCUS by default
    with pytest.raises(ValueError, match="light_margin"):
        GEKOConfig(light_margin=1.5)
    s = SampleState(4, GEKO_SEED)  # the seed's own rule: every correct sample that does not freeze is LIGHT
    s.update(np.arange(4), np.full(4, 0.67), np.ones(4, bool), np.full(4, 0.51))
    assert (s.repartition() == LIGHT).all()


# -- 4. token savings that did not happen -------------------------------------------------------------------
def test_full_plan_with_empty_passes_saves_no_tokens():
    # MLM line_by_line: short lines often get no masked token (tokens 0, loss NaN: no observation), and the masks
    # differ every epoch. Every sample trained every epoch: nothing was saved. Before: `full_data["supervised_tokens"]
    # == supervised_tokens` failed, 126 == 76 (never-observed samples costed at the mean sample's tokens, the others
    # at their last pass's).
    n, epochs = 12, 3
    tracker = GEKOTracker(n, GEKOConfig(), seed=0, num_epochs=epochs, unit=4, batch_size=4)
    rng = np.random.default_rng(0)
    for epoch in range(epochs):
        plan = tracker.plan(epoch)
        assert sorted(plan.tolist()) == list(range(n))  # the plan is full
        tokens = rng.integers(1, 6, size=n)
        tokens[plan < 4] = 0  # samples 0-3: never a supervised token
        tokens[(plan == 7) & (epoch == 1)] = 0  # sample 7: none in one epoch
        loss = np.where(tokens > 0, 2.0, np.nan)
        tracker.record(plan, loss, np.zeros(n, bool), np.where(tokens > 0, 0.3, np.nan), tokens, batches=n // 4)
        tracker.end_epoch(epoch, passes=n, batches=n // 4, tokens=int(tokens.sum()))
    rep = tracker.efficiency_report()
    assert rep["observations_skipped"]["no_supervised_token"] == 4 * epochs + 1
    assert rep["sample_passes_saved"] == 0
    assert rep["full_data"]["supervised_tokens"] == rep["supervised_tokens"]
    assert rep["tokens_saved"] == 0
    # and it survives a checkpoint
    again = GEKOTracker.from_state_dict(tracker.state_dict()).efficiency_report()
    assert again["tokens_saved"] == 0


def test_token_reference_costs_an_untrained_sample_at_the_mean_of_the_trained():
    tracker = GEKOTracker(4, GEKOConfig(), seed=0, num_epochs=1, unit=1, batch_size=1)
    tracker.record([0, 1, 2], [1.0, 1.0, np.nan], [False] * 3, [0.3, 0.3, np.nan], [4, 8, 0], batches=3)
    tracker.end_epoch(0, passes=3, batches=3, tokens=12)
    # before: 24 (sample 2, whose one pass had no supervised token, costed as untrained at the mean of 0 and 1: 6)
    # samples 0-2 at their own (4, 8, 0), sample 3 (never trained) at their mean 4: 16 for the epoch
    assert tracker.full_data_reference()["tokens"] == 16


# -- 5a. why nothing freezes on a long token head; negative savings explained --------------------------------
def _record_epoch(loop, n, tokens, correct):
    ids = torch.as_tensor(loop.plan())
    loop.record(ids, loss=torch.full((len(ids),), 3.0), correct=torch.full((len(ids),), correct),
                confidence=torch.full((len(ids),), 0.4), tokens=torch.full((len(ids),), tokens))
    return loop.end_epoch()


def test_long_token_head_where_no_sample_is_ever_correct_says_why_nothing_freezes(caplog):
    # run_clm's 32-token blocks: a sample is correct only if all 32 tokens are top-1. Before: silence
    # (`caplog.text.count(...) == 1` failed: 0) while every epoch trained everything.
    loop = GEKOLoop(16, num_epochs=3, batch_size=4)
    with caplog.at_level(logging.WARNING, logger="geko_hf"):
        for _ in range(2):
            _record_epoch(loop, 16, tokens=32, correct=False)
    assert caplog.text.count("every supervised token") == 1  # once per run
    assert "32 supervised tokens" in caplog.text and "compute_correctness" in caplog.text


@pytest.mark.parametrize("tokens, correct", [(1, False), (32, True)])
def test_no_freeze_warning_on_classifiers_or_when_samples_are_correct(caplog, tokens, correct):
    loop = GEKOLoop(16, num_epochs=2, batch_size=4)
    with caplog.at_level(logging.WARNING, logger="geko_hf"):
        _record_epoch(loop, 16, tokens=tokens, correct=correct)
    assert "every supervised token" not in caplog.text


def test_negative_savings_are_explained_in_the_report():
    # 60 samples, 8 per optimizer step, nothing frozen: the epoch plans 64 passes (whole steps) where the stock
    # run under drop_last trains 56. Before: "-14.3%" with no word (`"whole optimizer steps of 8 samples" in text`
    # failed).
    from geko_hf.report.banner import run_summary
    from geko_hf.report.text import format_report

    tracker = GEKOTracker(60, GEKOConfig(), seed=0, num_epochs=1, unit=8, batch_size=8, drop_last=True)
    plan = tracker.plan(0)
    assert len(plan) == 64
    tracker.record(plan, np.full(64, 3.0), np.zeros(64, bool), np.full(64, 0.3), np.full(64, 5), batches=8)
    tracker.end_epoch(0, passes=64, batches=8, tokens=320)
    rep = tracker.efficiency_report()
    assert rep["sample_passes_saved"] < 0
    text = format_report(rep)
    assert "whole optimizer steps of 8 samples" in text and "FREEZE" in text
    assert "whole optimizer steps" in run_summary(rep, [])
    positive = {**rep, "sample_passes_saved": 0.1, "model_forward_calls_saved": 0.1, "tokens_saved": 0.1,
                "forward_sample_passes": 50, "backward_sample_passes": 50, "model_forward_calls": 6,
                "supervised_tokens": 250}
    assert "whole optimizer steps" not in format_report(positive)


# -- 5b. no FutureWarning GEKO adds --------------------------------------------------------------------------
def _future_warnings(record):
    return [str(w.message) for w in record if issubclass(w.category, (FutureWarning, DeprecationWarning))]


def test_banner_reads_no_deprecated_model_property(tmp_path):
    # Before: `_future_warnings(record) == []` failed on "`is_gradient_checkpointing` is deprecated and will be removed
    # in v6. Use `is_activation_checkpointing` instead." (the banner read the deprecated model property)
    from hf_helpers import make_args, tiny_gpt2

    from geko_hf.report.banner import run_banner

    args, model = make_args(tmp_path), tiny_gpt2()
    tracker = GEKOTracker(16, GEKOConfig(), seed=0, num_epochs=1, unit=8, batch_size=8)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        text = run_banner(args, model, tracker)
    assert _future_warnings(record) == []
    assert "Grad checkpointing : off" in text
    model.gradient_checkpointing_enable()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert "Grad checkpointing : on" in run_banner(args, model, tracker)
    assert _future_warnings(record) == []


def test_sft_defaults_set_no_deprecated_training_argument(tmp_path):
    # Before: SFT_DEFAULTS set `gradient_checkpointing`, which transformers 5.25 answers with a FutureWarning
    # "`gradient_checkpointing` is deprecated and will be removed in v6. Use `activation_checkpointing` instead."
    pytest.importorskip("trl")
    from geko_hf.cli.sft import parse_sft_args

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _, args, _ = parse_sft_args(["--output_dir", str(tmp_path), "--use_cpu", "true", "--report_to", "none"])
    assert [m for m in _future_warnings(record) if "checkpointing" in m] == []
    # (transformers before 5.25 has no activation_checkpointing: gradient_checkpointing is the one flag there)
    assert not getattr(args, "activation_checkpointing", args.gradient_checkpointing) and not args.gradient_checkpointing
    # TRL's own flag still works (and warns, as the stock `trl sft` does)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        _, args, _ = parse_sft_args(["--output_dir", str(tmp_path), "--use_cpu", "true",
                                     "--gradient_checkpointing", "true"])
    assert getattr(args, "activation_checkpointing", args.gradient_checkpointing) is True


# -- 5c. `geko-hf report` on a folder with checkpoints only --------------------------------------------------
def test_report_reads_the_newest_checkpoints_log_history_when_the_top_has_none(tmp_path, capsys):
    # TRL's sft.py saves the model (and GEKO's state) at the end but no trainer_state.json at the top. Before: the
    # history's losses came out empty (`out["history"][0]["train_loss"] == 2.0` failed: None).
    from geko_hf.cli.report import run as report

    loop = GEKOLoop(8, num_epochs=2, batch_size=4)
    for _ in range(2):
        _record_epoch(loop, 8, tokens=1, correct=False)
    loop.save(str(tmp_path))
    for step, loss in ((2, 9.0), (4, 1.5)):
        ckpt = tmp_path / f"checkpoint-{step}"
        ckpt.mkdir()
        log = [{"epoch": 1.0, "step": 2, "loss": 2.0}] + ([{"epoch": 2.0, "step": 4, "loss": loss}] if step == 4 else [])
        (ckpt / "trainer_state.json").write_text(json.dumps({"log_history": log}))
    out = report([str(tmp_path), "--no_plot", "--top_k", "0"])
    assert out["history"][0]["train_loss"] == 2.0 and out["history"][1]["train_loss"] == 1.5
    assert "checkpoint-4" in capsys.readouterr().out  # says where the history came from


def test_max_steps_with_epochwise_eval_or_save_warns_that_they_run_per_shorter_geko_epoch(tmp_path, caplog):
    # Issue 34's max_steps run "ran many more evaluations/checkpoints than stock": its epochs shrank to one step.
    # Before: no word (`"save_strategy='epoch'" in caplog.text` failed).
    from hf_helpers import make_args, tiny_gpt2, toy_lm_dataset

    from geko_hf import GEKOTrainer

    trainer = GEKOTrainer(model=tiny_gpt2(), train_dataset=toy_lm_dataset(16),
                          args=make_args(tmp_path, max_steps=2, save_strategy="epoch", save_only_model=True))
    with caplog.at_level(logging.WARNING, logger="geko_hf"):
        trainer.train()
    assert "save_strategy='epoch'" in caplog.text and "eval_steps / save_steps" in caplog.text


# -- fault 1: SFT "mastered" decided by the chat template's tokens ------------------------------------------------
def _answer_and_template_logits(answer_p: float):
    """One causal-LM row: 3 supervised tokens (an answer word, then the template's `<|im_end|>` and newline). The
    template tokens are the argmax at 0.99; the answer token is the argmax at probability `answer_p` (right by
    chance: the runner-up is close behind)."""
    vocab = 4
    probs = torch.full((1, 4, vocab), 0.01 / (vocab - 1))
    probs[0, :, 1] = 0.99  # positions 1-2 predict labels 2-3: the template tokens (id 1)
    probs[0, 0] = torch.tensor([answer_p, 1 - answer_p - 0.02, 0.01, 0.01])  # position 0 predicts the answer (id 0)
    labels = torch.tensor([[-100, 0, 1, 1]])
    return probs.log(), labels


def test_a_token_samples_confidence_is_its_weakest_supervised_token_not_the_templates_mean():
    from geko_hf.training.stats import token_stats

    logits, labels = _answer_and_template_logits(0.5)
    got = token_stats(logits, labels)
    assert bool(got.correct[0])  # every token is the argmax ...
    assert float(got.confidence[0]) == pytest.approx(0.5, abs=1e-5)  # ... but the answer only at 0.5 (mean: 0.83)
    cfg = GEKOConfig()
    assert float(got.confidence[0]) <= cfg.freeze_confidence  # so the default rules cannot call it mastered


def test_fused_head_gives_the_weakest_token_confidence_too():
    from types import SimpleNamespace

    from geko_hf.training.stats import fused_lm_stats

    logits, labels = _answer_and_template_logits(0.5)
    logp = torch.log_softmax(logits[:, :-1], -1)  # the fused head's per-token outputs (labels already shifted)
    target = labels[:, 1:]
    mask = target != -100
    out = SimpleNamespace(label_mask=mask, log_probs=logp.gather(-1, target.clamp(min=0)[..., None])[..., 0],
                          is_top1=logp.argmax(-1) == target, entropy=-(logp.exp() * logp).sum(-1))
    got = fused_lm_stats(out)
    assert bool(got.correct[0]) and float(got.confidence[0]) == pytest.approx(0.5, abs=1e-5)


def test_a_sample_right_by_chance_next_to_template_tokens_does_not_freeze():
    """The fault's mechanism end to end in the tracker: a sample whose 2 template tokens are certain and whose answer
    is right at 0.6 stays trainable under the default rules, epoch after epoch; one whose answer is certain freezes."""
    from geko_hf.training.stats import token_stats

    chance, _ = _answer_and_template_logits(0.6)
    known, labels = _answer_and_template_logits(0.97)
    stats = token_stats(torch.cat([chance, known]), torch.cat([labels, labels]))
    tracker = GEKOTracker(2, GEKOConfig(), seed=0, num_epochs=12, unit=1, batch_size=2)
    for epoch in range(12):
        tracker.record(np.arange(2), stats.loss.numpy(), stats.correct.numpy(), stats.confidence.numpy(),
                       stats.tokens.numpy(), 2, margin=stats.margin.numpy())
        tracker.end_epoch(epoch, 2, 2, 2)
    assert tracker.state.bucket[0] != FREEZE and tracker.state.bucket[1] == FREEZE
