"""Malformed datasets, hooks and batches (issue 16): correct behaviour or one clear error naming what is wrong, and
never a NaN in the per-sample state. (Checkpoint faults and property tests: test_faults.py; configuration:
test_config.py.)"""

from __future__ import annotations

import logging

import datasets
import numpy as np
import pytest
import torch
from hf_helpers import make_args, tiny_gpt2, toy_lm_dataset
from torch.utils.data import Dataset, IterableDataset
from transformers import BatchEncoding, Trainer

from geko_hf import GEKOCallback, GEKOConfig, GEKOTrainer

pytestmark = pytest.mark.usefixtures("one_thread")


class Rows(Dataset):
    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def _lm_rows(n=16, wrap=dict):
    base = toy_lm_dataset(n=n)
    return [wrap({k: base[i][k] for k in ("input_ids", "attention_mask", "labels")}) for i in range(n)]


def _state_is_finite(trainer):
    st = trainer.geko.tracker.state
    for name in ("loss", "confidence", "q", "loss_history"):
        assert np.isfinite(getattr(st, name).astype(np.float64)).all(), name


# -- dataset rows ----------------------------------------------------------------------------------------
def test_rows_that_are_not_mappings_are_an_error_naming_the_row(tmp_path):
    rows = [(r["input_ids"], r["labels"]) for r in _lm_rows()]
    trainer = GEKOTrainer(model=tiny_gpt2(), args=make_args(tmp_path), train_dataset=Rows(rows))
    with pytest.raises(TypeError, match=r"row \d+ is a tuple.*__getitem__"):
        trainer.train()


def test_batch_encoding_rows_are_accepted(tmp_path):
    rows = _lm_rows(wrap=lambda d: BatchEncoding(d))
    trainer = GEKOTrainer(model=tiny_gpt2(), args=make_args(tmp_path, num_train_epochs=1),
                          train_dataset=Rows(rows), geko_config=GEKOConfig(light_sample_rate=1.0))
    trainer.train()
    assert trainer.get_efficiency_report()["forward_sample_passes"] == 16


def test_an_empty_dataset_is_refused_at_init(tmp_path):
    with pytest.raises(ValueError, match=r"train_dataset is empty \(0 rows\)"):
        GEKOTrainer(model=tiny_gpt2(), args=make_args(tmp_path), train_dataset=toy_lm_dataset(n=16).select([]))


class Streamed(IterableDataset):
    def __iter__(self):
        yield from _lm_rows()


@pytest.mark.parametrize("path", ["geko_trainer", "callback", "hf_iterable"])
def test_iterable_datasets_are_refused_at_init(tmp_path, path):
    data = toy_lm_dataset(n=16).to_iterable_dataset() if path == "hf_iterable" else Streamed()
    args = make_args(tmp_path, max_steps=4)
    with pytest.raises(ValueError, match="map-style train_dataset"):
        if path == "callback":
            Trainer(model=tiny_gpt2(), args=args, train_dataset=data, callbacks=[GEKOCallback()])
        else:
            GEKOTrainer(model=tiny_gpt2(), args=args, train_dataset=data)


@pytest.mark.parametrize("data, message", [("hf_iterable", "map-style train_dataset"),
                                           ("torch_iterable", "map-style train_dataset"),
                                           ("empty", "train_dataset is empty"),
                                           ("none", "training requires a train_dataset")])
def test_a_train_dataset_set_after_init_is_checked_at_train(tmp_path, data, message):
    # trainer.train_dataset = ... between train() calls skips the init check: it failed deep inside GEKO instead
    # ("object of type 'IterableDataset' has no len()", "`num_samples` must be >= 1", "'NoneType' has no len()").
    trainer = GEKOTrainer(model=tiny_gpt2(), args=make_args(tmp_path, max_steps=2), train_dataset=toy_lm_dataset(n=16))
    trainer.train_dataset = {"hf_iterable": lambda: toy_lm_dataset(n=16).to_iterable_dataset(),
                             "torch_iterable": Streamed, "empty": lambda: toy_lm_dataset(n=16).select([]),
                             "none": lambda: None}[data]()
    with pytest.raises(ValueError, match=message):
        trainer.train()
    assert trainer.state.global_step == 0

def test_iterable_dataset_is_refused_for_sft(tmp_path):
    pytest.importorskip("trl")
    from test_sft import make_tokenizer, messages_ds, sft_args, sums, tiny_llama

    from geko_hf.hf.sft import GEKOSFTTrainer

    tok = make_tokenizer()
    with pytest.raises(ValueError, match="map-style train_dataset"):
        GEKOSFTTrainer(tiny_llama(tok), args=sft_args(tmp_path, max_steps=2), processing_class=tok,
                       train_dataset=messages_ds(sums(4)).to_iterable_dataset())


class Shrinking(Rows):
    """A dataset that loses rows after the first epoch (a bug in user code we must not paper over)."""

    def __init__(self, rows):
        super().__init__(rows)
        self.calls = 0

    def __len__(self):
        self.calls += 1
        return len(self.rows) if self.calls < 6 else len(self.rows) - 4


def test_a_dataset_that_changes_length_is_an_error_at_the_next_epoch(tmp_path):
    ds = Shrinking(_lm_rows())
    trainer = GEKOTrainer(model=tiny_gpt2(), args=make_args(tmp_path, num_train_epochs=3), train_dataset=ds)
    with pytest.raises(ValueError, match="changed length during training, from 16 to 12"):
        trainer.train()


# -- samples without evidence ------------------------------------------------------------------------------
def test_samples_with_no_supervised_token_are_counted_not_recorded(tmp_path):
    rows = _lm_rows()
    for i in (0, 5, 9):
        rows[i]["labels"] = [-100] * len(rows[i]["labels"])
    _assert_rows_counted_not_recorded(tiny_gpt2(), Rows(rows), tmp_path, unsupervised=[0, 5, 9])


def _assert_rows_counted_not_recorded(model, dataset, tmp_path, unsupervised):
    """Two epochs of every sample: the rows with no supervised token are counted as skipped observations, never
    recorded; every other row is recorded once an epoch."""
    trainer = GEKOTrainer(model=model, args=make_args(tmp_path, num_train_epochs=2), train_dataset=dataset,
                          geko_config=GEKOConfig(light_sample_rate=1.0))
    trainer.train()
    rep = trainer.get_efficiency_report()
    assert rep["observations_skipped"] == {"no_supervised_token": 2 * len(unsupervised), "non_finite": 0}
    _state_is_finite(trainer)
    st = trainer.geko.tracker.state
    assert st.times_seen[unsupervised].tolist() == [0] * len(unsupervised)
    assert (st.times_seen[np.setdiff1d(np.arange(len(dataset)), unsupervised)] == 2).all()


def test_classification_rows_labelled_ignore_index_are_counted_not_recorded(tmp_path):
    # CrossEntropyLoss skips label -100 (its ignore_index), so such rows train nothing; GEKO gathered p(label -100):
    # an IndexError on CPU (a device-side assert on CUDA) at the first batch.
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
        max_position_embeddings=16, num_labels=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 16)
    labels[[0, 5, 9]] = -100
    ds = datasets.Dataset.from_dict({"input_ids": rng.integers(1, 32, (16, 6)).tolist(),
                                     "attention_mask": [[1] * 6] * 16, "labels": labels.tolist()})
    _assert_rows_counted_not_recorded(model, ds, tmp_path, unsupervised=[0, 5, 9])


def test_non_finite_losses_are_skipped_and_counted(tmp_path):
    trainer = GEKOTrainer(model=tiny_gpt2(), args=make_args(tmp_path, num_train_epochs=2),
                          train_dataset=toy_lm_dataset(n=16), geko_config=GEKOConfig(light_sample_rate=1.0))
    buffer = trainer.geko.buffer
    add = buffer.add

    def overflowing(ids, stats):  # as an fp16 overflow would leave them: inf for samples 2 and 7
        stats.loss = torch.where((ids == 2) | (ids == 7), torch.tensor(float("inf")), stats.loss)
        return add(ids, stats)

    buffer.add = overflowing
    trainer.train()
    rep = trainer.get_efficiency_report()
    assert rep["observations_skipped"] == {"no_supervised_token": 0, "non_finite": 4}
    _state_is_finite(trainer)


def test_batches_without_labels_warn_once_and_score_input_ids(tmp_path, caplog):
    class OwnLoss(torch.nn.Module):  # a causal LM that computes its loss from input_ids itself
        def __init__(self):
            super().__init__()
            self.lm = tiny_gpt2()
            self.config = self.lm.config

        def forward(self, input_ids, attention_mask=None):
            return self.lm(input_ids=input_ids, attention_mask=attention_mask, labels=input_ids)

        def _get_name(self):
            return "OwnLossForCausalLM"

    ds = toy_lm_dataset(n=16).remove_columns("labels")
    trainer = GEKOTrainer(model=OwnLoss(), args=make_args(tmp_path, num_train_epochs=2, remove_unused_columns=False),
                          train_dataset=ds)
    with caplog.at_level(logging.WARNING, logger="geko_hf"):
        trainer.train()
    assert caplog.text.count("has no `labels`") == 1
    assert trainer.geko.tracker.state.times_seen.sum() > 0
    _state_is_finite(trainer)


# -- user hooks that return the wrong thing ------------------------------------------------------------------
def _first_batch_with(tmp_path, **hooks):
    trainer = GEKOTrainer(model=tiny_gpt2(), args=make_args(tmp_path), train_dataset=toy_lm_dataset(n=16), **hooks)
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.train()
    return trainer, batch


@pytest.mark.parametrize("hook, value, message", [
    ("compute_correctness", lambda o, b: torch.ones(3, dtype=torch.bool), r"compute_correctness.*shape \[8\]"),
    ("compute_correctness", lambda o, b: torch.full((8,), 0.3), r"compute_correctness must return booleans"),
    ("compute_confidence", lambda o, b: torch.full((8,), float("nan")), r"compute_confidence returned a non-finite"),
    ("compute_confidence", lambda o, b: torch.full((8,), 1.5), r"compute_confidence must return probabilities"),
    ("compute_confidence", lambda o, b: "high", r"compute_confidence must return one number per sample"),
    ("compute_sample_loss", lambda o, b: torch.ones(8, 2), r"compute_sample_loss.*shape \[8\]; got shape \(8, 2\)"),
    ("compute_sample_loss", lambda o, b: torch.full((8,), float("inf")), r"compute_sample_loss returned a non-finite"),
])
def test_a_hook_returning_the_wrong_thing_is_named(tmp_path, hook, value, message):
    trainer, batch = _first_batch_with(tmp_path, **{hook: value})
    with pytest.raises(ValueError, match=message):
        trainer.compute_loss(trainer.model, batch)
    assert trainer.geko.buffer.batches == 0  # nothing reached the records


def test_hook_results_on_another_device_or_dtype_are_converted(tmp_path):
    trainer, batch = _first_batch_with(
        tmp_path, compute_correctness=lambda o, b: np.ones(8, dtype=np.int64),
        compute_confidence=lambda o, b: [0.5] * 8)
    trainer.compute_loss(trainer.model, batch)
    ids, loss, correct, conf, tokens, _ = trainer.geko.buffer.parts[-1]
    assert correct.dtype == torch.bool and correct.all() and conf.dtype == torch.float32


def test_a_row_missing_a_field_is_named(tmp_path):
    rows = _lm_rows()
    del rows[5]["input_ids"]
    trainer = GEKOTrainer(model=tiny_gpt2(), args=make_args(tmp_path, per_device_train_batch_size=16),
                          train_dataset=Rows(rows))
    with pytest.raises(ValueError, match=r"rows (\d+ and 5|5 and \d+) have different fields \(differing: \['input_ids'\]\)"):
        trainer.train()


def test_rows_without_model_inputs_reach_the_models_own_error(tmp_path):
    """Untokenized text (no input_ids in any row): the model says what is missing, before GEKO reads anything."""
    ds = datasets.Dataset.from_dict({"text": ["a b", "c d"] * 4, "labels": [[1, 2], [3, 4]] * 4})
    trainer = GEKOTrainer(model=tiny_gpt2(), args=make_args(tmp_path), train_dataset=ds)
    with pytest.raises(ValueError, match="input_ids"):
        trainer.train()
    assert trainer.geko.buffer.batches == 0
