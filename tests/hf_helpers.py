"""Tiny models and toy data for the HF-integration tests (built from config: seconds, no downloads)."""

from __future__ import annotations

import datasets
import numpy as np
import torch
from transformers import GPT2Config, GPT2LMHeadModel, TrainerCallback

from geko_hf import GEKOTrainingArguments

VOCAB = 32
LEARNABLE = [1, 2, 3, 4, 5, 6, 7, 8]  # one fixed sequence: trivially learnable, reaches FREEZE quickly


def tiny_gpt2(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=2, n_head=2,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)  # no dropout: runs compare bit for bit
    return GPT2LMHeadModel(cfg)


def toy_lm_dataset(n: int = 64, learnable_every: int = 2, seed: int = 0, length: int = 8,
                   random_every: int | None = None) -> datasets.Dataset:
    """Every `learnable_every`-th row is LEARNABLE, the others random tokens (never learnable); with
    `random_every`, it is the other way round: every `random_every`-th row is random, the rest learnable."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        learnable = i % random_every != 0 if random_every else i % learnable_every == 0
        ids = LEARNABLE[:length] if learnable else rng.integers(10, VOCAB, size=length).tolist()
        rows.append({"input_ids": ids, "labels": ids, "attention_mask": [1] * length})
    return datasets.Dataset.from_list(rows)


def make_args(tmp_path, **kw) -> GEKOTrainingArguments:
    defaults = dict(output_dir=str(tmp_path / "out"), per_device_train_batch_size=8, num_train_epochs=8,
                    learning_rate=3e-2, report_to=[], use_cpu=True, logging_steps=1, save_strategy="no",
                    disable_tqdm=True, lr_scheduler_type="linear", warmup_steps=2, seed=0)
    defaults.update(kw)
    return GEKOTrainingArguments(**defaults)


class ForwardCounter(TrainerCallback):
    """Counts model forward calls with a hook (not from GEKO's report), per epoch, during training only."""

    def __init__(self, model):
        self.calls = 0
        self.per_epoch: list[int] = []
        self._start = 0
        model.register_forward_hook(self._hook)

    def _hook(self, module, args, output):
        if module.training:
            self.calls += 1

    def on_epoch_begin(self, args, state, control, **kw):
        self._start = self.calls

    def on_epoch_end(self, args, state, control, **kw):
        self.per_epoch.append(self.calls - self._start)


class LRRecorder(TrainerCallback):
    """The LR after each optimizer step and the progress-bar total at the last step."""

    def __init__(self):
        self.lrs: list[float] = []
        self.bar_total = None
        self.trainer = None

    def on_step_end(self, args, state, control, lr_scheduler=None, **kw):
        self.lrs.append(lr_scheduler.get_last_lr()[0])
        self.max_steps = state.max_steps


class RowStatistics(TrainerCallback):
    """Per-sample statistics that are a pure function of the row and the epoch (GEKO's hooks, not the model's
    outputs): a run's GEKO state then depends only on which passes it records, and in which order, so runs on
    different numbers of processes can be compared bit for bit. LEARNABLE rows are correct with a falling loss
    (they reach FREEZE), random rows confidently wrong (HARD: repeated within an epoch). Pass as a callback too:
    it follows the epoch."""

    def __init__(self):
        self.epoch = 0

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.epoch = int(state.epoch or 0)

    def learnable(self, batch):
        rows = batch["input_ids"]
        return (rows[:, : len(LEARNABLE)] == torch.tensor(LEARNABLE, device=rows.device)).all(dim=1)

    def loss(self, outputs, batch):
        spread = (batch["input_ids"].float().sum(dim=1) % 97) / 97  # distinct per random row
        return torch.where(self.learnable(batch), 1.0 / (1 + self.epoch), 2.0 + spread)

    def correct(self, outputs, batch):
        return self.learnable(batch)

    def confidence(self, outputs, batch):  # learnable rows: LIGHT for two epochs, then sure enough to FREEZE
        return torch.where(self.learnable(batch), min(0.6 + 0.15 * self.epoch, 0.95), 0.9)

    def hooks(self) -> dict:
        return {"compute_sample_loss": self.loss, "compute_correctness": self.correct,
                "compute_confidence": self.confidence}
