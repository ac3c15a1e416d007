"""GEKOTrainer / GEKOCallback inside the stock Trainer: epochs really shrink, the loss is the stock loss,
the schedule and progress tell the truth, and both ways in behave identically (issue 3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hf_helpers import ForwardCounter, LRRecorder, make_args, tiny_gpt2, toy_lm_dataset
from transformers import DataCollatorForLanguageModeling, Trainer
from transformers.trainer_callback import ProgressCallback

from geko_hf import FREEZE, GEKOCallback, GEKOConfig, GEKOTrainer
from geko_hf.training.ids import ID_COLUMN
from geko_hf.training.stats import sample_stats

pytestmark = pytest.mark.usefixtures("one_thread")


def _train(tmp_path, path="trainer", model=None, ds=None, callbacks=(), config=None, **kw):
    model = model or tiny_gpt2()
    ds = ds if ds is not None else toy_lm_dataset()
    args = make_args(tmp_path, **kw)
    if path == "trainer":
        trainer = GEKOTrainer(model=model, args=args, train_dataset=ds, callbacks=list(callbacks), geko_config=config)
    else:
        trainer = Trainer(model=model, args=args, train_dataset=ds,
                          callbacks=[*callbacks, GEKOCallback(config=config)])
    trainer.train()
    return trainer


def test_learnable_half_freezes_and_forward_calls_drop(tmp_path):
    model = tiny_gpt2()
    counter = ForwardCounter(model)
    # every LIGHT sample every epoch: the freeze path itself is under test (subsampled LIGHT samples are
    # observed less often, so they freeze later; tests/test_importance.py covers that mode)
    trainer = _train(tmp_path, model=model, callbacks=[counter], config=GEKOConfig(light_sample_rate=1.0))
    rep = trainer.get_efficiency_report()
    state = trainer.geko.tracker.state
    learnable = np.arange(64) % 2 == 0
    assert (state.bucket[learnable] == FREEZE).mean() >= 0.75, "trivially learnable samples reach FREEZE"
    assert not (state.bucket[~learnable] == FREEZE).any(), "random samples never freeze"
    # forward calls counted by a hook drop with the frozen share, and equal the report's own counts
    assert counter.per_epoch[0] == 8 and counter.per_epoch[-1] < counter.per_epoch[0]
    assert counter.per_epoch == [row["batches"] for row in rep["history"]]
    assert counter.calls == rep["model_forward_calls"]
    assert rep["forward_sample_passes"] == sum(row["sample_passes"] for row in rep["history"])
    assert rep["forward_sample_passes"] == 8 * counter.calls  # batch 8, every batch full
    assert rep["sample_passes_saved"] > 0.1


@pytest.mark.parametrize("ga", [1, 4])
def test_loss_is_bitwise_the_stock_loss(tmp_path, ga):
    ds = toy_lm_dataset(n=32)
    args = make_args(tmp_path, gradient_accumulation_steps=ga, per_device_train_batch_size=4)
    geko = GEKOTrainer(model=tiny_gpt2(), args=args, train_dataset=ds)
    stock = Trainer(model=tiny_gpt2(), args=args, train_dataset=ds)
    geko.callback_handler.on_train_begin  # (no training loop needed: same batches through training_step)
    loader = geko.get_train_dataloader()
    batches = [b for _, b in zip(range(ga), loader)]
    num_items = geko._get_num_items_in_batch(batches, torch.device("cpu"))
    for batch in batches:
        assert ID_COLUMN in batch
        stock_batch = {k: v.clone() for k, v in batch.items() if k != ID_COLUMN}
        geko_batch = {k: v.clone() for k, v in batch.items()}
        l_geko = geko.training_step(geko.model, geko_batch, num_items)
        l_stock = stock.training_step(stock.model, stock_batch, num_items)
        assert torch.equal(l_geko, l_stock)
    for (n, p), (_, q) in zip(geko.model.named_parameters(), stock.model.named_parameters()):
        assert torch.equal(p.grad, q.grad), n  # same gradients too: stats are computed outside autograd
    assert geko.geko.buffer.batches == ga


def test_stats_do_not_depend_on_batch_neighbours():
    model = tiny_gpt2().eval()
    a = [1, 2, 3, 4, 5]
    b = [9, 8, 7, 6, 5, 4, 3, 2, 1, 11, 12]

    def stats_for(rows):
        width = max(map(len, rows))
        ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        labels = ids.masked_fill(mask == 0, -100)
        with torch.no_grad():
            out = model(input_ids=ids, attention_mask=mask)
        return sample_stats(out, {"input_ids": ids, "attention_mask": mask, "labels": labels})

    alone = stats_for([a])
    padded = stats_for([a, b])
    swapped = stats_for([b, a])
    for s, i in ((padded, 0), (swapped, 1)):
        torch.testing.assert_close(s.loss[i], alone.loss[0], rtol=0, atol=1e-5)
        torch.testing.assert_close(s.confidence[i], alone.confidence[0], rtol=0, atol=1e-5)
        assert bool(s.correct[i]) == bool(alone.correct[0])
        assert int(s.tokens[i]) == len(a) - 1


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_schedule_and_progress_follow_shrinking_epochs(tmp_path, schedule):
    recorder = LRRecorder()
    ds = toy_lm_dataset(n=64, random_every=4)  # 3/4 learnable: epochs shrink a lot but never empty
    model = tiny_gpt2()
    args = make_args(tmp_path, lr_scheduler_type=schedule, num_train_epochs=6, disable_tqdm=False, warmup_steps=3)
    trainer = GEKOTrainer(model=model, args=args, train_dataset=ds, callbacks=[recorder])
    bar_totals = []

    class BarSpy(LRRecorder):
        def on_step_end(self, args, state, control, **kw):
            bars = [c.training_bar for c in trainer.callback_handler.callbacks if isinstance(c, ProgressCallback)]
            bar_totals.append(bars[0].total)

    trainer.add_callback(BarSpy())
    trainer.train()
    hist = trainer.get_efficiency_report()["history"]
    assert hist[-1]["sample_passes"] <= hist[0]["sample_passes"] / 2, "epochs must shrink by at least half"
    steps = trainer.state.global_step
    assert steps < 6 * 8  # fewer optimizer steps than full data
    assert recorder.lrs[-1] == 0.0  # the schedule's end value at the last optimizer step
    assert max(recorder.lrs) == pytest.approx(args.learning_rate)  # warmup still reached the peak
    assert recorder.lrs[2] == pytest.approx(args.learning_rate)  # ... after exactly warmup_steps
    assert all(lr > 0 for lr in recorder.lrs[:-1])  # and nothing ended early
    assert trainer.state.max_steps == steps
    assert bar_totals[-1] == steps


def test_stock_lr_convention_is_zero_after_last_step(tmp_path):
    """Pin HF's convention the test above relies on: on full data, get_last_lr() after the last step is 0."""
    recorder = LRRecorder()
    trainer = Trainer(model=tiny_gpt2(), args=make_args(tmp_path, num_train_epochs=2), train_dataset=toy_lm_dataset(),
                      callbacks=[recorder])
    trainer.train()
    assert recorder.lrs[-1] == 0.0 and len(recorder.lrs) == 16


def test_callback_path_equals_trainer_path(tmp_path):
    a = _train(tmp_path / "a", path="trainer")
    b = _train(tmp_path / "b", path="callback")
    assert type(b).__name__ == "GEKOTrainer" or isinstance(b, Trainer)
    ta, tb = a.geko.tracker, b.geko.tracker
    assert ta.history == tb.history
    for name, arr in ta.state.state_dict().items():
        np.testing.assert_array_equal(arr, tb.state.state_dict()[name], err_msg=name)
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)


def test_ids_survive_collators_and_column_removal(tmp_path):
    from transformers import PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"[PAD]": 0, "a": 1}, unk_token="[PAD]")),
                                  pad_token="[PAD]")
    ds = toy_lm_dataset(n=16).add_column("unused_text", ["x"] * 16)
    trainer = GEKOTrainer(model=tiny_gpt2(), args=make_args(tmp_path), train_dataset=ds,
                          data_collator=DataCollatorForLanguageModeling(tok, mlm=False))
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch[ID_COLUMN].dtype == torch.long and len(batch[ID_COLUMN]) == 8
    assert "unused_text" not in batch
    plan = trainer.geko.tracker.plan(0)
    assert batch[ID_COLUMN].tolist() == plan[:8].tolist()  # ids come with the rows, in the sampler's order


def test_everything_frozen_ends_training_early(tmp_path, capsys):
    ds = toy_lm_dataset(n=32, learnable_every=1)
    cfg = GEKOConfig(freeze_confidence=0.5, focus_confidence=0.3, freeze_quality=-10.0)
    trainer = _train(tmp_path, ds=ds, config=cfg, num_train_epochs=30, learning_rate=5e-2)
    out = capsys.readouterr().out
    assert "Nothing left to train" in out
    assert len(trainer.get_efficiency_report()["history"]) < 30


def test_unsupported_sampling_strategy_errors_at_train_start(tmp_path):
    trainer = Trainer(model=tiny_gpt2(), args=make_args(tmp_path, train_sampling_strategy="group_by_length"),
                      train_dataset=toy_lm_dataset(), callbacks=[GEKOCallback()])
    with pytest.raises(ValueError, match="train_sampling_strategy"):
        trainer.train()
