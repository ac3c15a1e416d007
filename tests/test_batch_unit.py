"""The batch GEKO plans with is the batch the Trainer really trains with: auto_find_batch_size shrinks it after an
OOM and restarts the loop (GEKO must follow, not keep the first batch), and ranks that share a batch (tensor,
context or sequence parallelism) are refused up front."""

from __future__ import annotations

import pytest
from accelerate.utils.memory import should_reduce_batch_size
from hf_helpers import make_args, tiny_gpt2, toy_lm_dataset
from transformers import Trainer

from geko_hf import GEKOConfig, GEKOTrainer

pytestmark = pytest.mark.usefixtures("one_thread")

_OOM = "CUDA out of memory."
_FITS = 8  # the largest batch that "fits": auto_find_batch_size goes 16 -> 14 -> 12 -> 10 -> 9 -> 8


class _OOMAboveEight:
    """compute_loss raises the OOM accelerate recognises whenever a training batch has more than _FITS rows."""

    def compute_loss(self, model, inputs, *args, **kwargs):
        if model.training and inputs["input_ids"].shape[0] > _FITS:
            raise RuntimeError(_OOM)
        return super().compute_loss(model, inputs, *args, **kwargs)


class _OOMTrainer(_OOMAboveEight, Trainer):
    pass


class _OOMGEKOTrainer(_OOMAboveEight, GEKOTrainer):
    pass


def test_auto_find_batch_size_trains_the_reduced_batch_for_every_epoch(tmp_path):
    assert should_reduce_batch_size(RuntimeError(_OOM)), "accelerate retries with a smaller batch on this message"
    kw = dict(per_device_train_batch_size=16, num_train_epochs=2, auto_find_batch_size=True)
    stock = _OOMTrainer(model=tiny_gpt2(), args=make_args(tmp_path / "stock", **kw),
                        train_dataset=toy_lm_dataset(n=32))
    stock.train()
    assert stock._train_batch_size == _FITS and stock.state.global_step == 2 * 32 // _FITS  # the reference: 8 steps

    # light_sample_rate=1.0 and 2 epochs: nothing can reach FREEZE at the end of epoch 1 (the Q-value starts at 0.5
    # and moves by at most q_value_lr=0.1 per epoch, FREEZE needs 0.8), so epoch 2 trains all 32 again
    geko = _OOMGEKOTrainer(model=tiny_gpt2(), args=make_args(tmp_path / "geko", **kw),
                           train_dataset=toy_lm_dataset(n=32), geko_config=GEKOConfig(light_sample_rate=1.0))
    geko.train()
    tracker = geko.geko.tracker
    rep = geko.get_efficiency_report()
    assert geko._train_batch_size == _FITS
    assert geko.state.global_step == stock.state.global_step, "the same optimizer steps as the stock Trainer"
    assert len(tracker.history) == 2 and geko.state.epoch == 2, "both epochs are trained"
    assert tracker.unit == _FITS and tracker.batch_size == _FITS, "the plans' unit is the batch actually trained"
    assert [row["sample_passes"] for row in tracker.history] == [32, 32]
    assert [row["batches"] for row in tracker.history] == [32 // _FITS] * 2
    assert rep["forward_sample_passes"] == rep["full_data"]["forward_sample_passes"] == 64
    assert rep["model_forward_calls"] == rep["full_data"]["model_forward_calls"] == stock.state.global_step
    assert rep["sample_passes_saved"] == 0 and rep["model_forward_calls_saved"] == 0


@pytest.mark.parametrize("name", ["tp", "cp", "sp"])
def test_ranks_sharing_a_batch_are_refused_before_any_step(tmp_path, monkeypatch, name):
    # Trainer.get_tp_size reads the model's _tp_size, DeepSpeed's autotp_size or accelerate's parallelism_config;
    # get_cp_size / get_sp_size read the parallelism_config. The getters themselves are replaced (they are what GEKO
    # asks): a fake parallelism_config would also reach accelerate's own checks in prepare() wherever GEKO lets the
    # run go on.
    trainer = GEKOTrainer(model=tiny_gpt2(), args=make_args(tmp_path, num_train_epochs=1),
                          train_dataset=toy_lm_dataset(n=16))
    monkeypatch.setattr(trainer, f"get_{name}_size", lambda: 2)
    with pytest.raises(ValueError, match=f"GEKO.*{name}_size=2"):
        trainer.train()
    assert trainer.state.global_step == 0
    assert trainer.geko.buffer.batches == 0, "no batch was trained"


@pytest.mark.parametrize("split", [False, True])
def test_the_global_micro_batch_follows_split_batches(tmp_path, monkeypatch, split):
    # accelerate's split_batches=True deals each batch of per_device_train_batch_size out in slices (one per
    # process): the global micro-batch is per_device_train_batch_size, not times the processes. GEKO took it as
    # 8 x 2 = 16: epochs of half the real steps, so HF's max_steps (set by GEKO per epoch) stopped the run halfway.
    args = make_args(tmp_path, per_device_train_batch_size=8, gradient_accumulation_steps=3,
                     accelerator_config={"split_batches": split})
    trainer = GEKOTrainer(model=tiny_gpt2(), args=args, train_dataset=toy_lm_dataset(n=16))
    assert trainer.accelerator.split_batches is split
    monkeypatch.setattr(type(trainer.args), "world_size", property(lambda self: 2))  # two processes, as HF sees them
    from geko_hf.hf.preflight import data_parallel_batch

    batch = 8 if split else 16
    assert data_parallel_batch(trainer) == (batch * 3, batch)
