"""Slow: a packaged pretrained model on a real dataset (MiniLM-L6 on Rotten Tomatoes): samples reach FREEZE
and the counted forward passes drop (issue 3, acceptance 6)."""

from __future__ import annotations

import pytest
import torch
from hf_helpers import ForwardCounter
from transformers import DataCollatorWithPadding, TrainingArguments

from geko_hf import GEKOTrainer

pytestmark = pytest.mark.slow


def test_minilm_rotten_tomatoes_freezes_and_saves_passes(tmp_path):
    from geko_hf.cli.assets import default_classifier, load_rotten_tomatoes

    train, held = load_rotten_tomatoes(n_train=1024, n_eval=256, seed=0)
    torch.manual_seed(0)
    model, tok = default_classifier()
    enc = lambda b: tok(b["text"], truncation=True, max_length=64)  # noqa: E731
    train, held = train.map(enc, batched=True), held.map(enc, batched=True)
    counter = ForwardCounter(model)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=32, num_train_epochs=4,
                             learning_rate=1e-4, warmup_steps=5, use_cpu=True, report_to=[], save_strategy="no",
                             disable_tqdm=True, seed=0)
    trainer = GEKOTrainer(model=model, args=args, train_dataset=train, eval_dataset=held,
                          data_collator=DataCollatorWithPadding(tok), callbacks=[counter],
                          compute_metrics=lambda p: {"acc": float((p.predictions.argmax(-1) == p.label_ids).mean())})
    trainer.train()
    rep = trainer.get_efficiency_report()
    hist = rep["history"]
    assert hist[-2]["FREEZE"] > 0.02 * 1024, "real reviews get mastered and frozen"
    assert counter.per_epoch[-1] < counter.per_epoch[0], "forward calls per epoch drop"
    assert counter.calls == rep["model_forward_calls"] and rep["sample_passes_saved"] > 0.02
    assert trainer.evaluate()["eval_acc"] > 0.7  # and the model still learned the task
