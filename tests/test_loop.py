"""GEKO in your own training loop (`GEKOLoop`): the same plans, state and report as GEKOTrainer on the same data,
model and seed; and its checkpoint is the Trainer's format."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hf_helpers import make_args, tiny_gpt2, toy_lm_dataset
from torch.utils.data import DataLoader
from transformers import default_data_collator

from geko_hf import GEKOConfig, GEKOLoop, GEKOTrainer, IdCollator, sample_stats, weight_sample_gradients, with_ids
from geko_hf.core.checkpoint import load_geko_state
from geko_hf.training.ids import ID_COLUMN

pytestmark = pytest.mark.usefixtures("one_thread")

EPOCHS, BATCH, LR = 5, 8, 3e-2
# LIGHT thinning on (the loop applies the same gradient weights); a lower FREEZE bar and no LIGHT margin floor, so
# that buckets move within 5 epochs on every supported transformers (the tiny GPT-2 learns at different speeds across
# releases)
CONFIG = GEKOConfig(light_sample_rate=0.5, freeze_confidence=0.7, light_margin=-1.0)


def _data():
    return toy_lm_dataset(n=48, random_every=4)


def _trainer_run(tmp_path):
    args = make_args(tmp_path, num_train_epochs=EPOCHS, per_device_train_batch_size=BATCH, learning_rate=LR,
                     lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0)
    trainer = GEKOTrainer(model=tiny_gpt2(), args=args, train_dataset=_data(), geko_config=CONFIG)
    # the model's own mean loss, as the plain loop uses it (HF otherwise divides a summed loss by its own token
    # count, which for this tiny GPT-2 counts the unshifted labels: a different, if harmless, scale)
    trainer.model_accepts_loss_kwargs = False
    trainer.train()
    return trainer.geko.tracker


def _plain_loop():
    """What a user writes: a DataLoader over the loop's sampler, a forward, record, weights, backward."""
    model = tiny_gpt2()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0, fused=True)  # HF's default optim
    data = with_ids(_data())
    loop = GEKOLoop(len(data), CONFIG, num_epochs=EPOCHS, batch_size=BATCH, seed=0)
    loader = DataLoader(data, batch_size=BATCH, sampler=loop.sampler(), collate_fn=IdCollator(default_data_collator))
    plans = []
    while not loop.done:
        plans.append(loop.plan().copy())
        for batch in loader:
            ids = batch.pop(ID_COLUMN)
            out = model(**batch)
            with torch.no_grad():
                loop.record(ids, sample_stats(out, batch))
            weights = loop.weights(ids)
            if weights is not None:
                weight_sample_gradients(out, batch, weights, num_samples=len(ids))
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
        loop.end_epoch()
    return loop, plans


def test_plain_loop_gives_the_trainer_plans_and_state(tmp_path):
    tracker = _trainer_run(tmp_path)
    loop, plans = _plain_loop()
    assert len(plans) == len(tracker.history) == EPOCHS
    assert [row["sample_passes"] for row in tracker.history] == [len(p) for p in plans]
    assert loop.tracker.history == tracker.history  # same buckets every epoch, hence the same plans
    ours, theirs = loop.tracker.state.state_dict(), tracker.state.state_dict()
    for name in ("bucket", "times_seen", "correct", "pruned", "frozen_epochs", "tokens"):
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)
    for name in ("loss", "confidence", "q"):
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-4, atol=1e-5, err_msg=name)
    assert loop.report()["sample_passes_saved"] == tracker.efficiency_report()["sample_passes_saved"]
    ours_map, theirs_map = loop.data_map(_data()).to_pandas(), tracker.data_map.statistics()  # the same data map
    assert ours_map["observations"].tolist() == theirs_map["observations"].tolist()
    np.testing.assert_allclose(ours_map["confidence"], theirs_map["confidence"], rtol=1e-4, atol=1e-5)
    assert "input_ids" not in ours_map  # token ids are not a readable field
    # not vacuous: in some epoch GEKO's plan is not "every sample once" (LIGHT thinning or FREEZE acted)
    assert any(np.bincount(p, minlength=len(_data())).tolist() != [1] * len(_data()) for p in plans)


def test_loop_checkpoint_round_trip_uses_the_trainer_format(tmp_path):
    loop = GEKOLoop(16, num_epochs=3, batch_size=4, seed=1)
    ids = torch.as_tensor(loop.plan()[:4])
    loop.record(ids, loss=torch.full((4,), 0.01), correct=torch.ones(4, dtype=torch.bool),
                confidence=torch.full((4,), 0.99))
    loop.save(str(tmp_path))  # mid-epoch: the records are kept as pending, applied at the epoch's end
    payload = load_geko_state(str(tmp_path))
    assert set(payload) >= {"geko_hf_version", "format", "tracker", "pending"}
    again = GEKOLoop(16, num_epochs=3, batch_size=4, seed=1)
    again.load(str(tmp_path))
    np.testing.assert_array_equal(again.plan(), loop.plan())
    assert again.end_epoch() == loop.end_epoch()


def test_record_checks_lengths():
    loop = GEKOLoop(8, batch_size=4)
    with pytest.raises(ValueError, match="4 sample ids but statistics for 3"):
        loop.record(torch.arange(4), loss=torch.ones(3), correct=torch.ones(3), confidence=torch.ones(3))


class _TwoRankGather:
    """accelerate's gather on 2 ranks, seen from rank 0: this rank's column, then rank 1's (rank-major)."""

    num_processes = 2

    def __init__(self, other_buffer):
        sizes = torch.tensor(other_buffer.sizes)
        self.other = [torch.cat(c) for c in zip(*other_buffer.parts)] + [
            torch.repeat_interleave(torch.arange(len(sizes)), sizes)]  # its records' micro-batch indices

    def gather(self, column):
        theirs = self.other.pop(0)
        return torch.cat([column, theirs.to(column.dtype)])


def test_records_from_two_ranks_come_back_in_global_step_order():
    """A sample repeated within an epoch (a HARD weight > 1) is observed on both ranks; its observations must reach
    the state in training order, as one process with the same global batch would apply them."""
    from geko_hf.training.loop import StatsBuffer
    from geko_hf.training.stats import SampleStats

    sequence = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3])  # the global plan, repeats included
    batch = 2
    buffers = [StatsBuffer(), StatsBuffer()]
    for k, start in enumerate(range(0, len(sequence), batch)):  # global batch k goes to rank k % 2
        ids = torch.as_tensor(sequence[start:start + batch])
        position = torch.arange(start, start + batch, dtype=torch.float32)  # the loss carries the position
        stats = SampleStats(loss=position, correct=torch.ones(batch, dtype=torch.bool), confidence=position / 16,
                            tokens=torch.ones(batch, dtype=torch.long), margin=None)
        buffers[k % 2].add(ids, stats)
    (ids, loss, *_), batches = buffers[0].drain(_TwoRankGather(buffers[1]))
    np.testing.assert_array_equal(ids, sequence)
    np.testing.assert_array_equal(loss, np.arange(len(sequence)))
    assert batches == 4  # this rank's micro-batches (every rank runs as many)
