"""Trainer settings that used to give silently wrong numbers (issue 13): each either works correctly now or stops
with one sentence. Every test here failed on geko_hf 0.2.0.

Heads (seq2seq, masked LM, token classification, custom heads with hooks) are in test_heads.py, TRL trainers in
test_trl_trainers.py, the batch actually used (auto_find_batch_size, tensor parallelism) in test_batch_unit.py
and the forward-call count on two processes in test_multi_process.py.
"""

from __future__ import annotations

import inspect
import math

import datasets
import numpy as np
import pytest
import torch
from hf_helpers import VOCAB, make_args, tiny_gpt2, toy_lm_dataset
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainerCallback
from transformers.modeling_outputs import SequenceClassifierOutput

from geko_hf import GEKOCallback, GEKOConfig, GEKOTrainer
from geko_hf.training.loop import StatsBuffer
from geko_hf.training.ids import ID_COLUMN
from geko_hf.training.importance import weight_sample_gradients
from geko_hf.training.stats import SampleStats

pytestmark = pytest.mark.usefixtures("one_thread")

NO_LIGHT_THINNING = GEKOConfig(light_sample_rate=1.0)


class Steps(TrainerCallback):
    def __init__(self):
        self.steps = 0

    def on_step_end(self, args, state, control, **kw):
        self.steps += 1


class IdSpy(TrainerCallback):
    """Records (ids, input_ids) of every training batch through a compute_loss wrapper."""

    def __init__(self, trainer):
        self.batches = []
        inner = trainer.compute_loss

        def spy(model, inputs, *a, **k):
            if model.training:
                self.batches.append((inputs[ID_COLUMN].tolist(), inputs["input_ids"].tolist()))
            return inner(model, inputs, *a, **k)

        trainer.compute_loss = spy


def _recorded(trainer):
    ids, loss, correct, conf, tokens, _ = (c.cpu() for c in trainer.geko.buffer.parts[-1])
    return ids, loss, correct, conf, tokens


def _one_batch(trainer):
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.train()
    trainer.compute_loss(trainer.model, dict(batch))
    return batch


# -- case 2: label smoothing / compute_loss_func pop the labels before GEKO reads them ----------------
def tiny_bert_classifier(num_labels=3):
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                     max_position_embeddings=16, num_labels=num_labels, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0)
    return BertForSequenceClassification(cfg)


def classification_ds(n=16):
    rng = np.random.default_rng(0)
    return datasets.Dataset.from_dict({"input_ids": rng.integers(1, 32, (n, 6)).tolist(),
                                       "attention_mask": [[1] * 6] * n, "labels": rng.integers(0, 3, n).tolist()})


def test_label_smoothing_classification_records_unsmoothed_stats(tmp_path):
    trainer = GEKOTrainer(model=tiny_bert_classifier(), train_dataset=classification_ds(),
                          args=make_args(tmp_path, label_smoothing_factor=0.1))
    batch = _one_batch(trainer)  # 0.2.0: ValueError "the model returned no logits or the batch has no labels"
    ids, loss, correct, conf, tokens = _recorded(trainer)
    with torch.no_grad():
        logits = trainer.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logp = torch.log_softmax(logits, -1)
    torch.testing.assert_close(loss, -logp.gather(1, batch["labels"][:, None])[:, 0], rtol=1e-5, atol=1e-5)
    assert correct.tolist() == (logits.argmax(-1) == batch["labels"]).tolist()


def _masked_prompt_ds(n=8, prompt=4, answer=3):
    rng = np.random.default_rng(1)
    rows = []
    for _ in range(n):
        ids = rng.integers(1, 32, prompt + answer).tolist()
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": [-100] * prompt + ids[prompt:]})
    return datasets.Dataset.from_list(rows)


def _plain_causal_loss(outputs, labels, num_items_in_batch=None):
    logits = outputs.logits[:, :-1].flatten(0, 1)
    return torch.nn.functional.cross_entropy(logits, labels[:, 1:].flatten(), ignore_index=-100)


@pytest.mark.parametrize("setting", ["label_smoothing", "compute_loss_func"])
def test_masked_prompt_is_not_counted_when_the_parent_pops_labels(tmp_path, setting):
    kw = {"label_smoothing_factor": 0.1} if setting == "label_smoothing" else {}
    trainer = GEKOTrainer(model=tiny_gpt2(), train_dataset=_masked_prompt_ds(), args=make_args(tmp_path, **kw),
                          compute_loss_func=_plain_causal_loss if setting == "compute_loss_func" else None)
    _one_batch(trainer)
    tokens = _recorded(trainer)[4]
    assert tokens.tolist() == [3] * 8  # the 3 answer tokens; 0.2.0 counted the prompt too (6 = 7 - 1)


# -- case 3: a transform that returns only model keys -------------------------------------------------
def _transformed_ds(n=32):
    base = toy_lm_dataset(n=n)

    def transform(batch):  # returns only the model's keys, as most user transforms do
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "labels": batch["labels"]}

    return base.with_transform(transform)


def test_ids_survive_a_with_transform_dataset(tmp_path):
    trainer = GEKOTrainer(model=tiny_gpt2(), train_dataset=_transformed_ds(), geko_config=NO_LIGHT_THINNING,
                          args=make_args(tmp_path, num_train_epochs=2, remove_unused_columns=False))
    trainer.train()
    rep = trainer.get_efficiency_report()
    assert rep["forward_sample_passes"] == 64  # 0.2.0: 0 passes and "100% saved"; GEKO was silently off
    assert rep["sample_passes_saved"] == 0.0


def test_a_training_batch_without_ids_is_an_error(tmp_path):
    trainer = GEKOTrainer(model=tiny_gpt2(), train_dataset=toy_lm_dataset(n=16), args=make_args(tmp_path))
    batch = next(iter(trainer.get_train_dataloader()))
    del batch[ID_COLUMN]
    trainer.model.train()
    with pytest.raises(ValueError, match=f"without `{ID_COLUMN}`"):
        trainer.compute_loss(trainer.model, batch)


class _NoKwargsClassifier(torch.nn.Module):
    """A user model whose forward takes no **kwargs (HF models swallow unknown keys; this one cannot)."""

    def __init__(self):
        super().__init__()
        self.bag = torch.nn.EmbeddingBag(VOCAB, 2)

    def forward(self, input_ids, attention_mask=None, labels=None):
        logits = self.bag(input_ids)
        loss = None if labels is None else torch.nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


@pytest.mark.parametrize("remove_unused_columns", [False, True])
def test_predicting_on_the_trained_dataset_without_labels_drops_the_ids(tmp_path, remove_unused_columns):
    rows = [{"input_ids": [1 + i % 7, 2, 3, 4], "attention_mask": [1] * 4, "labels": i % 2} for i in range(16)]
    trainer = GEKOTrainer(model=_NoKwargsClassifier(), train_dataset=datasets.Dataset.from_list(rows),
                          args=make_args(tmp_path, num_train_epochs=1, remove_unused_columns=remove_unused_columns))
    trainer.train()
    unlabelled = trainer.train_dataset.remove_columns("labels")  # carries GEKO's id column since train()
    assert ID_COLUMN in unlabelled.column_names
    # Before: the batch reached model(**inputs) with the ids (TypeError: unexpected keyword 'geko_sample_id').
    out = trainer.predict(unlabelled)
    assert out.predictions.shape == (16, 2)


# -- case 6: fractional epochs and max_steps -----------------------------------------------------------
def test_fractional_epochs_train_what_the_stock_trainer_trains(tmp_path):
    ds = toy_lm_dataset(n=64, learnable_every=1000)  # random rows: nothing freezes, so GEKO = full data
    stock_steps, geko_steps = Steps(), Steps()
    Trainer(model=tiny_gpt2(), args=make_args(tmp_path / "s", num_train_epochs=1.5), train_dataset=ds,
            callbacks=[stock_steps]).train()
    geko = GEKOTrainer(model=tiny_gpt2(), args=make_args(tmp_path / "g", num_train_epochs=1.5), train_dataset=ds,
                       callbacks=[geko_steps], geko_config=NO_LIGHT_THINNING)
    geko.train()
    assert stock_steps.steps == math.ceil(1.5 * 8) == 12
    assert geko_steps.steps == 12  # 0.2.0: 16 (two whole epochs)
    rep = geko.get_efficiency_report()
    assert rep["forward_sample_passes"] == rep["full_data"]["forward_sample_passes"] == 96
    assert geko.state.epoch == pytest.approx(1.5)


def test_max_steps_is_honoured_when_epochs_shrink(tmp_path):
    ds = toy_lm_dataset(n=64, random_every=4)  # 3/4 learnable: epochs shrink
    steps = Steps()
    trainer = GEKOTrainer(model=tiny_gpt2(), args=make_args(tmp_path, max_steps=40, num_train_epochs=1),
                          train_dataset=ds, callbacks=[steps], geko_config=NO_LIGHT_THINNING)
    trainer.train()
    rep = trainer.get_efficiency_report()
    assert steps.steps == trainer.state.global_step == 40  # 0.2.0: ended at 31 of 40
    assert len(rep["history"]) > 5, "shrinking epochs: more than the 5 a full-data run needs"
    # max_steps fixes the compute: no saving is claimed against the stock run of 40 steps
    assert rep["model_forward_calls"] == rep["full_data"]["model_forward_calls"] == 40


def _stock_and_geko(tmp_path, n, **kw):
    """(stock forward calls, stock sample passes, stock state.epoch, GEKO's trainer) for the same arguments on n rows
    of random tokens (nothing freezes); the stock side counted by a forward hook, not from GEKO's report."""
    from hf_helpers import ForwardCounter

    ds = toy_lm_dataset(n=n, learnable_every=1000)
    model = tiny_gpt2()
    calls, sizes = ForwardCounter(model), []
    model.register_forward_hook(lambda m, a, kw_, out: sizes.append(kw_["input_ids"].shape[0]) if m.training else None,
                                with_kwargs=True)
    stock = Trainer(model=model, args=make_args(tmp_path / "s", **kw), train_dataset=ds, callbacks=[calls])
    stock.train()
    geko = GEKOTrainer(model=tiny_gpt2(), args=make_args(tmp_path / "g", **kw), train_dataset=ds,
                       geko_config=NO_LIGHT_THINNING)
    geko.train()
    return calls.calls, sum(sizes), stock.state.epoch, geko


@pytest.mark.parametrize("n, kw, stock_counts", [
    (37, dict(per_device_train_batch_size=4, gradient_accumulation_steps=3, max_steps=9), (23, 86)),
    (9, dict(per_device_train_batch_size=4, gradient_accumulation_steps=4, max_steps=10), (30, 90)),
    (37, dict(per_device_train_batch_size=4, gradient_accumulation_steps=3, num_train_epochs=2.5), (26, 98)),
], ids=["max_steps_short_last_step", "max_steps_epoch_under_one_step", "fractional_epochs_short_last_step"])
def test_full_data_reference_is_the_stock_run_when_accumulation_leaves_a_short_step(tmp_path, n, kw, stock_counts):
    # The stock Trainer ends each epoch on a short optimizer step when its micro-batches do not divide by
    # gradient_accumulation_steps (37 rows, batch 4, accumulation 3: 10 micro-batches in 4 steps, the last of 1);
    # GEKO's plans are whole steps. Before: the reference assumed GEKO's micro-batches per step (27 calls and 100
    # passes for the stock run's 23 and 86), so the report understated what GEKO spends over the stock run.
    calls, passes, _, geko = _stock_and_geko(tmp_path, n, **kw)
    assert (calls, passes) == stock_counts  # pins HF: the epoch's last step is short, not dropped
    full = geko.get_efficiency_report()["full_data"]
    assert (full["model_forward_calls"], full["forward_sample_passes"]) == stock_counts


def test_max_steps_reached_mid_epoch_ends_state_epoch_at_its_fraction(tmp_path):
    # 37 rows, batch 4, accumulation 3: GEKO's epochs are 4 steps of 12 passes (48: the plan rounds up to whole
    # steps). max_steps=9 stops a quarter into the third epoch. Before: state.epoch 3.0, as if it were whole.
    _, _, stock_epoch, geko = _stock_and_geko(tmp_path, 37, per_device_train_batch_size=4,
                                              gradient_accumulation_steps=3, max_steps=9)
    assert stock_epoch == pytest.approx(2.3)  # the stock run's own fraction: 3 of its 10 micro-batches
    assert geko.state.epoch == pytest.approx(2.25)
    assert [r["epoch_share"] for r in geko.get_efficiency_report()["history"]] == [1.0, 1.0, 0.25]


class EpochAtStepEnd(TrainerCallback):
    def __init__(self):
        self.epochs = []

    def on_step_end(self, args, state, control, **kw):
        self.epochs.append(state.epoch)


@pytest.mark.parametrize("path", ["GEKOTrainer", "callback_after_the_users"])
def test_user_callbacks_see_the_corrected_epoch(tmp_path, path):
    # Epochs shrink, so HF's own counter (steps / the first epoch's length) ends them short of a whole number;
    # GEKO's callback corrects it on each step end. Before: it ran after the user's callbacks, which saw HF's.
    ds = toy_lm_dataset(n=64, random_every=4)
    spy = EpochAtStepEnd()
    args = make_args(tmp_path, num_train_epochs=4)
    if path == "GEKOTrainer":
        trainer = GEKOTrainer(model=tiny_gpt2(), args=args, train_dataset=ds, callbacks=[spy])
    else:
        trainer = Trainer(model=tiny_gpt2(), args=args, train_dataset=ds, callbacks=[spy, GEKOCallback()])
    trainer.train()
    batches = [row["batches"] for row in trainer.get_efficiency_report()["history"]]
    assert batches[-1] < batches[0]  # epochs shrank
    last_steps = np.cumsum(batches) - 1
    assert [spy.epochs[i] for i in last_steps] == [1.0, 2.0, 3.0, 4.0]


class StopAtStep(TrainerCallback):
    """Stops training at a given step, as EarlyStoppingCallback does when an eval mid-epoch stops improving."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kw):
        if state.global_step == self.step:
            control.should_training_stop = True


def test_a_run_stopped_mid_epoch_is_compared_with_a_stock_run_stopped_at_the_same_point(tmp_path):
    # 64 rows, batch 8: 8 steps an epoch. Stopped at step 10 (epoch 2, a quarter in), nothing frozen: the
    # stock Trainer stopped there trains the same 80 passes, so nothing is saved. HF still calls on_epoch_end.
    ds = toy_lm_dataset(n=64, learnable_every=1000)
    trainer = GEKOTrainer(model=tiny_gpt2(), args=make_args(tmp_path, num_train_epochs=3), train_dataset=ds,
                          callbacks=[StopAtStep(10)], geko_config=NO_LIGHT_THINNING)
    trainer.train()
    rep = trainer.get_efficiency_report()
    assert trainer.state.global_step == 10
    assert rep["forward_sample_passes"] == rep["full_data"]["forward_sample_passes"] == 80  # before: 128 (37.5% "saved")
    assert rep["sample_passes_saved"] == 0
    assert trainer.state.epoch == pytest.approx(1.25)  # before: 2.0


@pytest.mark.parametrize("start", [0, 2], ids=["positions_from_0", "positions_from_2"])
def test_flattening_collator_keeps_each_sample_on_its_own_tokens(tmp_path, start):
    # transformers' DataCollatorWithFlattening drops empty rows (ids then shifted onto the next sample's tokens)
    # and restarts position_ids at position_ids_start (2 for RoBERTa-like models: no sequence was found at all).
    from transformers import DataCollatorWithFlattening

    lengths = [4, 0, 5, 3, 0, 6, 2, 0]  # one batch, in the plan's random order: empty rows among the others
    rows = [{"input_ids": list(range(1, n + 1)), "labels": list(range(1, n + 1))} for n in lengths]
    if start and "position_ids_start" not in inspect.signature(DataCollatorWithFlattening).parameters:
        pytest.skip("this transformers' DataCollatorWithFlattening always starts positions at 0")
    kw = {"position_ids_start": start} if start else {}
    probe = DataCollatorWithFlattening(**kw)([{"input_ids": [1, 2], "labels": [1, 2]}, {"input_ids": [], "labels": []}])
    if probe["labels"].shape != probe["input_ids"].shape:
        pytest.skip("this transformers' DataCollatorWithFlattening keeps empty rows' labels: the model itself fails")
    trainer = GEKOTrainer(model=tiny_gpt2(), train_dataset=datasets.Dataset.from_list(rows),
                          args=make_args(tmp_path, per_device_train_batch_size=8),
                          data_collator=DataCollatorWithFlattening(**kw))
    _one_batch(trainer)
    ids, _, _, _, tokens = _recorded(trainer)
    # the collator masks each sequence's first label; the causal shift leaves n - 1 scored tokens
    assert dict(zip(ids.tolist(), tokens.tolist())) == {i: max(n - 1, 0) for i, n in enumerate(lengths)}


class Evals(TrainerCallback):
    def __init__(self):
        self.steps = []

    def on_evaluate(self, args, state, control, **kw):
        self.steps.append(state.global_step)


def test_fractional_eval_and_save_steps_are_shares_of_the_shortened_run(tmp_path):
    # eval_steps=0.25 means every quarter of training. HF turns it into steps once, from the full-data step count;
    # GEKO shortens the run, so they were a quarter of a run that never happens.
    ds = toy_lm_dataset(n=64, random_every=4)  # 3/4 learnable: epochs shrink
    evals = Evals()
    trainer = GEKOTrainer(model=tiny_gpt2(), train_dataset=ds, eval_dataset=ds.select(range(8)), callbacks=[evals],
                          geko_config=NO_LIGHT_THINNING,
                          args=make_args(tmp_path, eval_strategy="steps", eval_steps=0.25, save_strategy="steps",
                                         save_steps=0.5, logging_steps=0.1))
    trainer.train()
    total = trainer.state.global_step
    assert total < 64  # the run shrank (8 epochs of 8 steps on full data)
    for kind, share in (("eval", 0.25), ("save", 0.5), ("logging", 0.1)):
        assert getattr(trainer.state, f"{kind}_steps") == math.ceil(total * share), kind
    # (how many evaluations happen is not pinned: the intervals follow the projection made at each epoch start,
    # full-length until samples freeze, and the count depends on where their multiples fall)
    assert evals.steps, "evaluated during training"


# -- case 7: the remainder of an epoch is trained, not reported as saved -------------------------------
def test_remainder_that_does_not_divide_is_trained(tmp_path):
    ds = toy_lm_dataset(n=60, learnable_every=1000)
    trainer = GEKOTrainer(model=tiny_gpt2(), train_dataset=ds, geko_config=NO_LIGHT_THINNING,
                          args=make_args(tmp_path, num_train_epochs=1, gradient_accumulation_steps=2))
    spy = IdSpy(trainer)
    trainer.train()
    seen = {i for ids, _ in spy.batches for i in ids}
    assert seen == set(range(60))  # 0.2.0: 12 samples never trained
    rep = trainer.get_efficiency_report()
    assert rep["sample_passes_saved"] <= 0  # 0.2.0: "20% saved" with nothing frozen
    assert trainer.state.global_step == 4  # as the stock Trainer: 8 batches, accumulation 2


def test_drop_last_full_data_reference_is_what_the_stock_trainer_trains(tmp_path):
    # dataloader_drop_last: the stock Trainer drops each epoch's last partial batch (60 rows, batch 8: 7 batches,
    # 56 passes); GEKO's plans are whole batches, so it drops nothing, and its report must compare with the 56.
    ds = toy_lm_dataset(n=60, learnable_every=1000)
    stock = Steps()
    Trainer(model=tiny_gpt2(), args=make_args(tmp_path / "s", num_train_epochs=2, dataloader_drop_last=True),
            train_dataset=ds, callbacks=[stock]).train()
    trainer = GEKOTrainer(model=tiny_gpt2(), train_dataset=ds, geko_config=NO_LIGHT_THINNING,
                          args=make_args(tmp_path / "g", num_train_epochs=2, dataloader_drop_last=True))
    spy = IdSpy(trainer)
    trainer.train()
    rep = trainer.get_efficiency_report()
    assert stock.steps == 14
    assert rep["forward_sample_passes"] == sum(len(ids) for ids, _ in spy.batches) == 128  # full batches only
    # before: a reference of 16 batches and 120 passes (the stock run without drop_last): the saving overstated
    assert rep["full_data"]["model_forward_calls"] == stock.steps
    assert rep["full_data"]["forward_sample_passes"] == 112
    assert rep["full_data"]["supervised_tokens"] == 112 * 7
    assert rep["sample_passes_saved"] == pytest.approx(1 - 128 / 112)


def test_drop_last_fixed_steps_reference_counts_whole_batches():
    from geko_hf.core.tracker import GEKOTracker

    tracker = GEKOTracker(60, GEKOConfig(), seed=0, num_epochs=1, unit=8, batch_size=8, fixed_steps=True,
                          drop_last=True)
    tracker.totals["batches"] = 14  # max_steps=14: two stock epochs of 7 whole batches
    assert tracker.reference_epochs() == 2 and tracker.full_data_reference()["sample_passes"] == 112
    assert GEKOTracker.from_state_dict(tracker.state_dict()).drop_last


# -- case 8: a stale id column -------------------------------------------------------------------------
def test_stale_id_column_is_replaced_by_the_row_index(tmp_path):
    first = GEKOTrainer(model=tiny_gpt2(), train_dataset=toy_lm_dataset(n=48), args=make_args(tmp_path / "a"))
    first.get_train_dataloader()
    stale = first.train_dataset.shuffle(seed=3).select(range(40))  # ids now point at other rows (and past the end)
    assert ID_COLUMN in stale.column_names and stale[0][ID_COLUMN] != 0
    trainer = GEKOTrainer(model=tiny_gpt2(), train_dataset=stale, args=make_args(tmp_path / "b", num_train_epochs=1))
    spy = IdSpy(trainer)
    trainer.train()  # 0.2.0: IndexError (ids >= 40), or silent misalignment when the sizes match
    for ids, rows in spy.batches:
        for i, row in zip(ids, rows):
            assert stale[i]["input_ids"] == row


# -- case 10: one callback reused in a second Trainer ---------------------------------------------------
def test_reusing_a_callback_in_a_second_trainer_is_refused(tmp_path):
    cb = GEKOCallback()
    first = Trainer(model=tiny_gpt2(), args=make_args(tmp_path / "a", num_train_epochs=1),
                    train_dataset=toy_lm_dataset(n=16), callbacks=[cb])
    with pytest.raises(ValueError, match=r"Pass a new GEKOCallback\(\) to each Trainer"):
        Trainer(model=tiny_gpt2(), args=make_args(tmp_path / "b"), train_dataset=toy_lm_dataset(n=16), callbacks=[cb])
    first.train()  # the first trainer is untouched
    assert first.state.global_step == 2


# -- case 12: the quiet details ------------------------------------------------------------------------
def test_train_samples_per_second_counts_the_samples_trained(tmp_path):
    trainer = GEKOTrainer(model=tiny_gpt2(), train_dataset=toy_lm_dataset(n=64, random_every=4),
                          geko_config=NO_LIGHT_THINNING, args=make_args(tmp_path, num_train_epochs=6))
    metrics = trainer.train().metrics
    passes = trainer.get_efficiency_report()["forward_sample_passes"]
    assert passes < 6 * 64
    assert metrics["train_samples_per_second"] == pytest.approx(passes / metrics["train_runtime"], rel=1e-2)


def test_gradient_weight_is_applied_in_float32_under_bf16():
    torch.manual_seed(0)
    logits = torch.randn(4, 5, 7, dtype=torch.bfloat16, requires_grad=True)
    upstream = torch.randn(4, 5, 7, dtype=torch.bfloat16)
    weights = torch.tensor([1 / 0.3, 1.0, 1 / 0.3, 1.0])
    out = logits * 1  # a non-leaf, as a model's logits are
    weight_sample_gradients(type("O", (), {"logits": out})(), {}, weights, num_samples=4)
    out.backward(upstream)
    want = (upstream.float() * weights.view(4, 1, 1)).to(torch.bfloat16)  # one rounding, of the exact product
    assert torch.equal(logits.grad, want)  # 0.2.0: the weight itself was rounded to bf16 (3.328) first


def test_stats_buffer_holds_few_tensors_over_a_long_epoch():
    buf = StatsBuffer()
    for step in range(1000):
        ids = torch.arange(4) + 4 * step
        buf.add(ids, SampleStats(loss=ids.float(), correct=ids % 2 == 0, confidence=ids.float() / 4000,
                                 tokens=torch.ones(4, dtype=torch.long)))
        assert len(buf.parts) <= StatsBuffer.consolidate_every + 1  # 0.2.0: one part per step, 1000 of them
    (ids, loss, correct, conf, tokens, _), batches = buf.drain()
    assert batches == 1000 and ids.tolist() == list(range(4000)) and loss.tolist() == list(range(4000))
    assert correct.tolist() == [i % 2 == 0 for i in range(4000)]


def test_weights_are_looked_up_on_the_device_once_per_epoch(tmp_path, monkeypatch):
    from geko_hf.core.tracker import GEKOTracker

    calls = []
    inner = GEKOTracker.weight_table
    monkeypatch.setattr(GEKOTracker, "weight_table", lambda self: calls.append(self.epoch) or inner(self),
                        raising=False)
    trainer = GEKOTrainer(model=tiny_gpt2(), train_dataset=toy_lm_dataset(n=32),
                          geko_config=GEKOConfig(light_sample_rate=0.5), args=make_args(tmp_path, num_train_epochs=3))
    trainer.train()
    assert calls == [0, 1, 2]  # once per epoch; 0.2.0 copied the ids to the host at every step


@pytest.mark.parametrize("own_scheduler", [True, False])
def test_a_scheduler_geko_cannot_stretch_is_named_in_a_warning(tmp_path, caplog, own_scheduler):
    """A StepLR (not a LambdaLR) keeps its full-data length: the user is told what happens to the LR. The stock
    linear schedule is stretched: no warning (the control)."""
    model = tiny_gpt2()
    optimizers = (None, None)
    if own_scheduler:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        optimizers = (opt, torch.optim.lr_scheduler.StepLR(opt, step_size=4))
    trainer = GEKOTrainer(model=model, args=make_args(tmp_path, num_train_epochs=1), train_dataset=toy_lm_dataset(n=16),
                          optimizers=optimizers)
    with caplog.at_level("WARNING", logger="geko_hf"):
        trainer.train()
    warned = [r.getMessage() for r in caplog.records if "cannot stretch" in r.getMessage()]
    assert bool(warned) == own_scheduler
    if own_scheduler:
        assert "StepLR" in warned[0]
