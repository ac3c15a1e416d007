"""light_sample_rate: LIGHT samples are subsampled per epoch and their gradients weighted 1/rate.

The weighting is a backward hook on the model output, so it must give exactly the gradient of the weighted sum of
per-sample losses: G(w) = sum_k w_k * G(only sample k supervised), with the same `num_items_in_batch`. Checked on
every output layout GEKO supports: padded causal LM (logits), TRL padded and padding-free (fused log_probs, and
full logits).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hf_helpers import ForwardCounter, make_args, tiny_gpt2, toy_lm_dataset
from transformers import Trainer

from geko_hf import LIGHT, GEKOConfig, GEKOTrainer
from geko_hf.training.ids import ID_COLUMN
from geko_hf.core.selection import plan_epoch, planned_length
from geko_hf.training.stats import segment_index
from geko_hf.core.tracker import GEKOTracker

pytestmark = pytest.mark.usefixtures("one_thread")
WEIGHTS = np.array([0.5, 2.0, 1.0, 3.0, 0.0, 1.5, 4.0, 0.25], dtype=np.float32)


# -- selection ------------------------------------------------------------------------------------------
def test_light_rate_thins_only_light_samples():
    n = 20_000
    buckets = np.random.default_rng(0).integers(0, 4, n).astype(np.uint8)
    z, t = np.zeros(n, bool), np.zeros(n, np.uint16)
    plan = plan_epoch(buckets, z, t, (1, 1, 1), 50, seed=0, epoch=1, light_rate=0.25)
    seen = np.bincount(plan, minlength=n) > 0
    for code in (2, 3):  # FOCUS, HARD: all of them
        assert seen[buckets == code].all()
    assert not seen[buckets == 0].any()  # FREEZE: none
    share = seen[buckets == LIGHT].mean()
    assert abs(share - 0.25) < 0.02
    expected = planned_length(buckets, z, t, (1, 1, 1), 50, light_rate=0.25)
    assert abs(len(plan) - expected) < 0.02 * n
    again = plan_epoch(buckets, z, t, (1, 1, 1), 50, seed=0, epoch=1, light_rate=0.25)
    other = plan_epoch(buckets, z, t, (1, 1, 1), 50, seed=0, epoch=2, light_rate=0.25)
    assert np.array_equal(plan, again) and not np.array_equal(plan, other)  # deterministic, fresh per epoch


def test_light_rate_one_is_the_unthinned_plan():
    n = 500
    buckets = np.random.default_rng(1).integers(0, 4, n).astype(np.uint8)
    z, t = np.zeros(n, bool), np.zeros(n, np.uint16)
    a = plan_epoch(buckets, z, t, (3, 1, 1), 50, seed=3, epoch=0)
    b = plan_epoch(buckets, z, t, (3, 1, 1), 50, seed=3, epoch=0, light_rate=1.0)
    assert np.array_equal(a, b)


def test_tracker_weights_light_by_inverse_rate():
    tracker = GEKOTracker(6, GEKOConfig(light_sample_rate=0.25), seed=0, num_epochs=2, unit=1, batch_size=2)
    tracker.state.bucket[:] = [0, 1, 2, 3, 1, 2]
    assert np.array_equal(tracker.loss_weights([1, 2, 4, 3]), [4.0, 1.0, 4.0, 1.0])
    assert tracker.loss_weights([0, 2, 3]) is None  # no LIGHT sample in the batch: nothing to weight
    plain = GEKOTracker(6, GEKOConfig(light_sample_rate=1.0), seed=0, num_epochs=2, unit=1, batch_size=2)
    plain.state.bucket[:] = LIGHT
    assert plain.loss_weights([0, 1]) is None


@pytest.mark.parametrize("rate", [0.0, -0.5, 1.5, float("nan")])
def test_light_rate_validation_names_field_and_range(rate):
    with pytest.raises(ValueError, match=r"light_sample_rate.*\(0.0, 1.0\]"):
        GEKOConfig(light_sample_rate=rate)


# -- the gradient hook is exactly the weighted loss ------------------------------------------------------
def _copy(batch, drop=()):
    return {k: v.clone() if torch.is_tensor(v) else v for k, v in batch.items() if k not in drop}


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _weighted_step(geko, batch, num_items, weights):
    cb = geko.geko.callback
    table = np.ones(cb.tracker.num_samples, dtype=np.float32)
    table[batch[ID_COLUMN].numpy()] = weights[: len(batch[ID_COLUMN])]
    cb.tracker.weight_table = lambda: table
    cb._weights = None  # the per-epoch device copy is rebuilt from the table above
    geko.model.zero_grad()
    geko.training_step(geko.model, _copy(batch), num_items)
    return _grads(geko.model)


def _reference(stock, batch, num_items, weights, owner):
    """sum_k w_k * (gradient with only sample k's labels kept), through the stock trainer."""
    total = None
    for k, w in enumerate(weights):
        only_k = _copy(batch, drop=(ID_COLUMN,))
        only_k["labels"] = only_k["labels"].masked_fill(owner != k, -100)
        stock.model.zero_grad()
        stock.training_step(stock.model, only_k, num_items)
        g = _grads(stock.model)
        total = {n: w * v for n, v in g.items()} if total is None else {n: total[n] + w * g[n] for n in total}
    return total


def _assert_close(got, want):
    assert got.keys() == want.keys() and got
    for name in got:
        assert torch.allclose(got[name], want[name], rtol=1e-4, atol=1e-6), name


class _TwoForwards(Trainer):
    """A compute_loss with two gradient-carrying forwards of the same batch (R-Drop-style consistency training):
    the loss is their mean."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        first, _ = super().compute_loss(model, dict(inputs), return_outputs=True, num_items_in_batch=num_items_in_batch)
        second, out = super().compute_loss(model, dict(inputs), return_outputs=True,
                                           num_items_in_batch=num_items_in_batch)
        loss = (first + second) / 2
        return (loss, out) if return_outputs else loss


def _geko_causal(args, ds, two_forwards):
    config = GEKOConfig(light_sample_rate=0.5)
    if two_forwards:
        from geko_hf import GEKOCallback

        return _TwoForwards(model=tiny_gpt2(), args=args, train_dataset=ds, callbacks=[GEKOCallback(config)])
    return GEKOTrainer(model=tiny_gpt2(), args=args, train_dataset=ds, geko_config=config)


# two_forwards: before, only the last gradient-carrying forward was weighted, so a LIGHT sample drawn at rate 0.5
# trained with weight (1 + 2) / 2 = 1.5 instead of 2 (and a weight-0 sample kept half its gradient), silently.
@pytest.mark.parametrize("two_forwards", [False, True], ids=["one_forward", "two_forwards"])
def test_hook_equals_weighted_loss_causal_lm_padded(tmp_path, two_forwards):
    ds = toy_lm_dataset(n=16)
    args = make_args(tmp_path, per_device_train_batch_size=8)
    geko = _geko_causal(args, ds, two_forwards)
    stock = Trainer(model=tiny_gpt2(), args=args, train_dataset=ds)
    batch = next(iter(geko.get_train_dataloader()))
    num_items = (batch["labels"][:, 1:] != -100).sum()
    for t in (geko, stock):
        t.current_gradient_accumulation_steps = 1
    owner = torch.arange(8)[:, None].expand_as(batch["labels"])
    _assert_close(_weighted_step(geko, batch, num_items, WEIGHTS), _reference(stock, batch, num_items, WEIGHTS, owner))


@pytest.mark.parametrize("padding_free", [False, True], ids=["padded", "padding_free"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused_head", "logits"])
def test_hook_equals_weighted_loss_sft(tmp_path, padding_free, fused):
    pytest.importorskip("trl")
    from test_sft import make_tokenizer, messages_ds, sft_args, sums, tiny_llama
    from trl import SFTConfig, SFTTrainer

    from geko_hf.hf.sft import GEKOSFTTrainer

    tok = make_tokenizer()
    data = messages_ds(sums(8))
    kw = dict(padding_free=padding_free, assistant_only_loss=True)
    stock = SFTTrainer(tiny_llama(tok), args=sft_args(tmp_path / "s", SFTConfig, **kw), train_dataset=data,
                       processing_class=tok)
    geko = GEKOSFTTrainer(tiny_llama(tok), args=sft_args(tmp_path / "g", **kw), train_dataset=data,
                          processing_class=tok, geko_config=GEKOConfig(light_sample_rate=0.5))
    if not fused:  # a compute_loss_func makes TRL take the full-logits path
        for t in (stock, geko):
            t.compute_loss_func = _plain_causal_loss
    batch = next(iter(geko.get_train_dataloader()))
    n = len(batch[ID_COLUMN])
    num_items = (batch["labels"][..., 1:] != -100).sum()
    for t in (geko, stock):
        t.current_gradient_accumulation_steps = 1
    if padding_free:
        owner = segment_index(batch, n)
    else:
        owner = torch.arange(n)[:, None].expand_as(batch["labels"])
    w = WEIGHTS[:n]
    _assert_close(_weighted_step(geko, batch, num_items, w), _reference(stock, batch, num_items, w, owner))


def _plain_causal_loss(outputs, labels, num_items_in_batch=None):
    logits, labels = outputs.logits[:, :-1].float(), labels[:, 1:]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                             ignore_index=-100, reduction="sum")
    return loss / num_items_in_batch


# -- end to end ------------------------------------------------------------------------------------------
def test_light_rate_saves_more_passes_and_report_counts_them(tmp_path):
    def run(rate, sub):
        model = tiny_gpt2()
        counter = ForwardCounter(model)
        trainer = GEKOTrainer(model=model, args=make_args(tmp_path / sub), train_dataset=toy_lm_dataset(),
                              geko_config=GEKOConfig(light_sample_rate=rate, freeze_confidence=0.999),
                              callbacks=[counter])
        trainer.train()
        rep = trainer.get_efficiency_report()
        assert rep["model_forward_calls"] == counter.calls
        assert np.isfinite(trainer.state.log_history[-1]["train_loss"])
        return rep

    full, thinned = run(1.0, "a"), run(0.25, "b")
    assert thinned["forward_sample_passes"] < 0.8 * full["forward_sample_passes"]
