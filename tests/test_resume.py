"""GEKO state in HF checkpoints; resume continues exactly where training stopped (issue 4)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hf_helpers import make_args, tiny_gpt2, toy_lm_dataset
from transformers import Trainer

from geko_hf import GEKOConfig, GEKOTrainer
from geko_hf.core.checkpoint import STATE_FILE, load_geko_state, newest_complete_checkpoint, save_geko_state

EPOCHS = 6

pytestmark = pytest.mark.usefixtures("one_thread")


def _trainer(out_dir, ds=None, geko_config=None, model=None, **kw):
    args = make_args(Path(out_dir), **{"num_train_epochs": EPOCHS, **kw})
    args.output_dir = str(out_dir)
    return GEKOTrainer(model=model or tiny_gpt2(), args=args, train_dataset=ds if ds is not None else toy_lm_dataset(
        random_every=4), geko_config=geko_config)


def _gpt2_with_dropout():
    """tiny_gpt2 with dropout: a resume that does not restore the checkpoint's RNG state trains other masks."""
    model = tiny_gpt2()
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.1
    return model


def _assert_same_run(a, b):
    sa, sb = a.geko.tracker.state.state_dict(), b.geko.tracker.state.state_dict()
    for name in sa:
        np.testing.assert_array_equal(sa[name], sb[name], err_msg=name)
    assert a.geko.tracker.history == b.geko.tracker.history
    for (n, p), (_, q) in zip(a.model.named_parameters(), b.model.named_parameters()):
        assert torch.equal(p, q), f"{n} differs after resume"
    assert a.state.global_step == b.state.global_step


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    trainer = _trainer(out, save_strategy="steps", save_steps=1)
    trainer.train()
    return trainer, out


def _step_inside(history, epoch_index, unit_steps=1):
    """A global step strictly inside epoch `epoch_index` (0-based), from the per-epoch batch counts."""
    start = sum(row["batches"] for row in history[:epoch_index])
    assert history[epoch_index]["batches"] >= 2
    return start + unit_steps


@pytest.mark.parametrize("when", ["before_any_freeze", "after_epochs_shrank"])
def test_resume_mid_epoch_is_bit_identical(straight_run, tmp_path, when):
    a, out = straight_run
    hist = a.geko.tracker.history
    if when == "before_any_freeze":
        step = _step_inside(hist, 0, 3)
    else:
        shrunk = next(i for i, row in enumerate(hist) if row["batches"] < hist[0]["batches"])
        step = _step_inside(hist, shrunk, 1)
    ckpt = out / f"checkpoint-{step}"
    payload = load_geko_state(str(ckpt))
    assert payload["in_epoch"] and payload["geko_hf_version"] and payload["fingerprint"]["num_samples"] == 64
    b = _trainer(tmp_path / "resumed", save_strategy="no")
    b.train(resume_from_checkpoint=str(ckpt))
    _assert_same_run(a, b)


def test_resume_mid_epoch_with_ignore_data_skip_is_bit_identical(straight_run, tmp_path):
    """ignore_data_skip=True: HF would restart the epoch's data and train its first part twice; GEKO's sampler starts
    at the saved position instead, so the run is the uninterrupted one (without a fast-forward)."""
    a, out = straight_run
    hist = a.geko.tracker.history
    shrunk = next(i for i, row in enumerate(hist) if row["batches"] < hist[0]["batches"])
    b = _trainer(tmp_path / "resumed", save_strategy="no", ignore_data_skip=True)
    b.train(resume_from_checkpoint=str(out / f"checkpoint-{_step_inside(hist, shrunk, 1)}"))
    _assert_same_run(a, b)


@pytest.mark.parametrize("ignore_data_skip", [False, True])
def test_resume_from_an_epochs_last_step_is_bit_identical(tmp_path, ignore_data_skip):
    # HF saves the checkpoint of an epoch's last step before on_epoch_end, so GEKO's epoch is still open in it.
    # Before: the resume re-entered that finished epoch with no batch left, so HF never restored the RNG state
    # (other dropout masks from there on), and under ignore_data_skip it ended the run after that epoch.
    kw = dict(num_train_epochs=3, ds=toy_lm_dataset(n=32, random_every=4))
    a = _trainer(tmp_path / "a", model=_gpt2_with_dropout(), save_strategy="steps", save_steps=1, **kw)
    a.train()
    ckpt = tmp_path / "a" / f"checkpoint-{a.geko.tracker.history[0]['batches']}"
    assert load_geko_state(str(ckpt))["in_epoch"]
    b = _trainer(tmp_path / "b", model=_gpt2_with_dropout(), ignore_data_skip=ignore_data_skip, **kw)
    b.train(resume_from_checkpoint=str(ckpt))
    _assert_same_run(a, b)
    rows = [[(log["epoch"], log["geko/epoch_sample_passes"]) for log in t.state.log_history
             if "geko/epoch_sample_passes" in log] for t in (a, b)]
    assert rows[0] == rows[1]  # the closed epoch's row is logged by the resumed run


def test_changed_max_steps_is_refused_even_at_the_same_epoch_count(tmp_path):
    # max_steps 10 and 12 both need 2 full-data epochs of 8 steps. Before: the resume was accepted and kept the
    # saved schedule's length, so steps 11 and 12 trained at LR 0.
    _trainer(tmp_path / "a", max_steps=10, save_strategy="steps", save_steps=3).train()
    b = _trainer(tmp_path / "b", max_steps=12)
    with pytest.raises(ValueError, match=r"saved with max_steps=10 \(now max_steps=12\)"):
        b.train(resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-3"))


def test_resume_true_picks_newest_complete_checkpoint(tmp_path):
    a = _trainer(tmp_path, save_strategy="steps", save_steps=5)
    a.train()
    last = newest_complete_checkpoint(str(tmp_path))
    os.remove(os.path.join(last, "trainer_state.json"))  # as if a save was killed half-way
    assert newest_complete_checkpoint(str(tmp_path)) != last
    b = _trainer(tmp_path, save_strategy="no")
    b.train(resume_from_checkpoint=True)
    _assert_same_run(a, b)


def test_different_dataset_is_refused_with_both_fingerprints(straight_run, tmp_path):
    _, out = straight_run
    other = toy_lm_dataset(n=64, random_every=4, seed=7)
    b = _trainer(tmp_path, ds=other)
    with pytest.raises(ValueError, match=r"different training dataset.*rows_sha1.*rows_sha1"):
        b.train(resume_from_checkpoint=str(out / "checkpoint-3"))


def test_a_random_augmentation_transform_resumes(tmp_path):
    # Before: the fingerprint hashed rows through set_transform, so a random augmentation gave a new hash on every
    # read and the resume was refused as "a different training dataset".
    rng = np.random.default_rng(0)

    def token_dropout(batch):
        return {**batch, "input_ids": [[t if rng.random() > 0.2 else 0 for t in row] for row in batch["input_ids"]]}

    ds = toy_lm_dataset(n=32, random_every=4)
    ds.set_transform(token_dropout)
    _trainer(tmp_path / "a", ds=ds, num_train_epochs=2, save_strategy="steps", save_steps=3).train()
    b = _trainer(tmp_path / "b", ds=ds, num_train_epochs=2)
    b.train(resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-3"))
    assert b.state.global_step > 3


@pytest.mark.parametrize("change", [dict(per_device_train_batch_size=4), dict(gradient_accumulation_steps=2)])
def test_changed_step_size_is_refused(straight_run, tmp_path, change):
    """0.3.0 replayed the saved plan (rounded to 8 samples a step) under the new step and skipped the wrong batches."""
    _, out = straight_run
    b = _trainer(tmp_path, **change)
    with pytest.raises(ValueError, match=r"saved with 8 samples per optimizer step .* this run uses (4|16) "):
        b.train(resume_from_checkpoint=str(out / "checkpoint-3"))


@pytest.mark.parametrize("change, field", [
    (dict(geko_config=GEKOConfig(light_sample_rate=0.25)), "light_sample_rate"),
    (dict(seed=1), "seed"),
    (dict(num_train_epochs=EPOCHS + 2), "num_train_epochs"),
    (dict(max_steps=30), "max_steps"),
], ids=["config", "seed", "more_epochs", "max_steps"])
def test_changed_run_settings_are_refused_naming_the_setting(straight_run, tmp_path, change, field):
    """Before: the saved plan (drawn under the old settings) trained under the new ones: a LIGHT sample drawn at
    rate 0.5 weighted 1/0.25, added epochs at the schedule's end value (LR 0), another seed's draws."""
    _, out = straight_run
    b = _trainer(tmp_path, **change)
    with pytest.raises(ValueError, match=rf"Checkpoint .* was saved with .*{field}.*start a new run"):
        b.train(resume_from_checkpoint=str(out / "checkpoint-3"))
    assert b.state.global_step == 0


def test_a_logging_only_change_resumes(straight_run, tmp_path):
    _, out = straight_run
    b = _trainer(tmp_path, geko_config=GEKOConfig(log_bucket_stats=False))
    b.train(resume_from_checkpoint=str(out / "checkpoint-3"))
    assert b.state.global_step == straight_run[0].state.global_step


def test_model_only_checkpoint_is_refused(tmp_path):
    """save_only_model=True: before, the run resumed with a fresh optimizer and a schedule restarted from warmup."""
    a = _trainer(tmp_path / "a", save_strategy="steps", save_steps=2, save_only_model=True, num_train_epochs=1)
    a.train()
    b = _trainer(tmp_path / "b", num_train_epochs=1)
    with pytest.raises(ValueError, match=r"no optimizer or LR-scheduler state \(it was saved with save_only_model"):
        b.train(resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-2"))
    assert b.state.global_step == 0


def test_stock_trainer_checkpoint_warns_and_starts_fresh(tmp_path, caplog):
    args = make_args(tmp_path, num_train_epochs=1, save_strategy="steps", save_steps=4)
    Trainer(model=tiny_gpt2(), args=args, train_dataset=toy_lm_dataset(random_every=4)).train()
    b = _trainer(tmp_path / "geko")
    with caplog.at_level(logging.WARNING, logger="geko_hf"):
        b.train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-4"))
    assert "has no GEKO state" in caplog.text and "fresh state" in caplog.text
    assert b.state.global_step > 4 and b.geko.tracker.history


def test_stock_trainer_checkpoint_mid_run_continues_at_its_epoch(tmp_path):
    # A stock checkpoint at step 12 of 8-step epochs: HF continues half-way through epoch 2. Before: GEKO's counter
    # restarted at epoch 0, so the logged epochs went back (1.5, then 0.25 ...), the run ended at state.epoch 2.0 of 4
    # with state.max_steps past the last step, and the stretched LR never reached 0.
    from hf_helpers import LRRecorder

    args = make_args(tmp_path, num_train_epochs=4, save_strategy="steps", save_steps=12)
    Trainer(model=tiny_gpt2(), args=args, train_dataset=toy_lm_dataset(random_every=4)).train()
    lrs = LRRecorder()
    b = _trainer(tmp_path / "geko", num_train_epochs=4)
    b.add_callback(lrs)
    b.train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-12"))
    assert b.state.epoch == pytest.approx(4.0)
    assert b.state.max_steps == b.state.global_step
    assert lrs.lrs[-1] == pytest.approx(0.0, abs=1e-12)
    epochs = [(log["step"], log["epoch"]) for log in b.state.log_history if "loss" in log]  # the stock run's first
    assert [e for _, e in epochs] == sorted(e for _, e in epochs)
    assert min(e for step, e in epochs if step > 12) > 1.5


def test_state_from_newer_geko_hf_asks_to_upgrade(tmp_path):
    save_geko_state(str(tmp_path), {"geko_hf_version": "99.0.0"})
    path = tmp_path / STATE_FILE
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
    meta["format"] = 99
    with open(path, "wb") as f:
        np.savez(f, meta=np.array(json.dumps(meta)))
    with pytest.raises(ValueError, match="newer geko_hf.*upgrade geko_hf"):
        load_geko_state(str(tmp_path))


def test_damaged_state_file_is_reported_not_loaded(tmp_path):
    (tmp_path / STATE_FILE).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="damaged"):
        load_geko_state(str(tmp_path))


_KILL_SCRIPT = """
import sys; sys.path.insert(0, {tests!r})
from pathlib import Path
from hf_helpers import make_args, tiny_gpt2, toy_lm_dataset
from geko_hf import GEKOTrainer
out = Path({out!r})
args = make_args(out, num_train_epochs=6, save_strategy="steps", save_steps=1)
args.output_dir = str(out)
t = GEKOTrainer(model=tiny_gpt2(), args=args, train_dataset=toy_lm_dataset(random_every=4))
t.train(resume_from_checkpoint={resume})
print("FINISHED", t.state.global_step, flush=True)
"""


def _script(out, resume):
    return _KILL_SCRIPT.format(tests=str(Path(__file__).parent), out=str(out), resume=resume)


def test_sigkill_during_saves_then_resume(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    for kill_after in (3, 9):  # two kills, the second one in a resumed run
        resume = "True" if newest_complete_checkpoint(str(tmp_path)) else "None"
        proc = subprocess.Popen([sys.executable, "-c", _script(tmp_path, resume)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if len(list(tmp_path.glob("checkpoint-*"))) >= kill_after:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    for folder in tmp_path.glob("checkpoint-*"):
        if (folder / "trainer_state.json").exists():  # complete checkpoints always hold a loadable state
            load_geko_state(str(folder))
        elif (folder / STATE_FILE).exists():  # an incomplete one may hold ours, but never half of it
            load_geko_state(str(folder))
    done = subprocess.run([sys.executable, "-c", _script(tmp_path, "True")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "FINISHED" in done.stdout


def test_sampler_start_at_offsets_only_its_epoch():
    from geko_hf import GEKOConfig
    from geko_hf.training.sampler import GEKOSampler
    from geko_hf.core.tracker import GEKOTracker

    tracker = GEKOTracker(40, GEKOConfig(), seed=0, num_epochs=3, unit=4, batch_size=4)
    sampler = GEKOSampler(tracker, epoch=0)
    full = list(sampler)
    sampler.start_at(0, 12)
    assert list(sampler) == full[12:] and len(sampler) == 28
    sampler.set_epoch(1)
    assert list(sampler) == tracker.plan(1).tolist()  # the next epoch starts at its beginning
