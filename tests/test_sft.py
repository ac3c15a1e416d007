"""GEKO through TRL's SFTTrainer: one class name changed, the same loss, statistics of trained tokens only.

Everything runs on a tiny Llama built from a config and a character-level tokenizer with a chat template (with
`{% generation %}` markers, for assistant-only loss) built here: no files, no hub.
"""

from __future__ import annotations

import string

import datasets
import numpy as np
import pytest
import torch

pytest.importorskip("trl")

from datasets import Dataset  # noqa: E402
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast  # noqa: E402
from trl import SFTConfig, SFTTrainer  # noqa: E402

import geko_hf  # noqa: E402
from geko_hf import GEKOCallback, GEKOConfig  # noqa: E402
from geko_hf.training.ids import ID_COLUMN  # noqa: E402
from geko_hf.hf.sft import GEKOSFTConfig, GEKOSFTTrainer  # noqa: E402
from geko_hf.training.stats import token_stats  # noqa: E402

CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'assistant' %}"
    "<|im_start|>assistant\n{% generation %}{{ m['content'] }}<|im_end|>{% endgeneration %}\n"
    "{% else %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


pytestmark = pytest.mark.usefixtures("one_thread")


# -- tiny assets --------------------------------------------------------------------------------------
def make_tokenizer():
    """Character-level fast tokenizer (offsets work, so assistant masks work) with a ChatML-like template."""
    specials = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>"]
    chars = string.ascii_letters + string.digits + string.punctuation + " \n"
    vocab = {t: i for i, t in enumerate([*specials, *chars])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")  # one token per character
    backend.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>",
                                  eos_token="<|im_end|>", additional_special_tokens=["<|im_start|>"])
    tok.chat_template = CHAT_TEMPLATE
    return tok


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


def tiny_llama(tokenizer, seed=0, context_free=False):
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=None, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    if context_free:
        # Attention contributes nothing: each position's prediction depends on its own token only, so two samples
        # that differ only in their prompt predict their (identical) completions identically.
        with torch.no_grad():
            for layer in model.model.layers:
                layer.self_attn.o_proj.weight.zero_()
    return model


def sums(n=8, start=0):
    """Chat arithmetic: (prompt text, answer text) pairs."""
    return [(f"{a}+{b}=?", str(a + b)) for a, b in ((i % 5, (3 * i) % 7) for i in range(start, start + n))]


def messages_ds(pairs):
    return Dataset.from_list([{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
                              for q, a in pairs])


def prompt_completion_ds(pairs):
    return Dataset.from_list([{"prompt": [{"role": "user", "content": q}],
                               "completion": [{"role": "assistant", "content": a}]} for q, a in pairs])


COMMON = dict(bf16=False, use_cpu=True, report_to="none", gradient_checkpointing=False, save_strategy="no",
              disable_tqdm=True, seed=0, per_device_train_batch_size=4, num_train_epochs=1, learning_rate=1e-3,
              logging_steps=1000)


def sft_args(tmp_path, cls=GEKOSFTConfig, **kw):
    values = {**COMMON, **kw}
    if values.get("padding_free"):
        values.setdefault("max_length", None)  # TRL: padding-free without packing does not truncate
    return cls(output_dir=str(tmp_path), **values)


def first_geko_batch(trainer):
    return next(iter(trainer.get_train_dataloader()))


def stock_batch_for(trainer, ids):
    return trainer.data_collator([trainer.train_dataset[int(i)] for i in ids])


def count_forwards(model):
    calls = []
    handle = model.register_forward_hook(lambda *_: calls.append(1))
    return calls, handle


# -- acceptance 1: the same loss as SFTTrainer, bit for bit -------------------------------------------
@pytest.mark.parametrize("padding_free", [False, True], ids=["padded", "padding_free"])
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_loss_and_grads_equal_sfttrainer_bitwise(tokenizer, tmp_path, padding_free, lora):
    kw = {}
    if lora:
        peft = pytest.importorskip("peft")
        kw["peft_config"] = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    data = messages_ds(sums(8))
    stock = SFTTrainer(tiny_llama(tokenizer), args=sft_args(tmp_path / "s", SFTConfig, padding_free=padding_free,
                                                            assistant_only_loss=True),
                       train_dataset=data, processing_class=tokenizer, **kw)
    geko = GEKOSFTTrainer(tiny_llama(tokenizer), args=sft_args(tmp_path / "g", padding_free=padding_free,
                                                               assistant_only_loss=True),
                          train_dataset=data, processing_class=tokenizer, **kw)

    batch = first_geko_batch(geko)  # through GEKO's real data path: sampler, ids column, id collator
    ids = batch[ID_COLUMN]
    assert len(ids) == 4 and len(set(ids.tolist())) == 4
    ref = stock_batch_for(stock, ids)
    if padding_free:
        assert batch["input_ids"].shape[0] == 1 and "position_ids" in batch
    for key, value in ref.items():
        assert torch.equal(batch[key], value) if torch.is_tensor(value) else batch[key] == value, key

    num_items = (ref["labels"][..., 1:] != -100).sum()  # as Trainer passes it
    for trainer in (stock, geko):
        trainer.current_gradient_accumulation_steps = 1  # set by the training loop
    calls, handle = count_forwards(geko.model)
    loss_g = geko.training_step(geko.model, batch, num_items)
    handle.remove()
    loss_s = stock.training_step(stock.model, ref, num_items)
    assert calls == [1], "GEKO must not run a second forward pass"
    assert torch.equal(loss_g, loss_s)
    grads_s = {n: p.grad for n, p in stock.model.named_parameters() if p.requires_grad}
    grads_g = {n: p.grad for n, p in geko.model.named_parameters() if p.requires_grad}
    assert grads_s.keys() == grads_g.keys() and grads_s
    for name in grads_s:
        assert torch.equal(grads_s[name], grads_g[name]), name
    if lora:
        assert all("lora_" in n for n in grads_g)
    # ... and GEKO recorded one statistic per sample of the batch, from that same forward
    parts = geko.geko.buffer.parts
    assert len(parts) == 1 and torch.equal(parts[0][0], ids)
    assert (parts[0][4] > 0).all()


# -- acceptance 2: statistics count only the trained tokens -------------------------------------------
# Pairs that differ ONLY in the prompt (same answer). With a context-free model (see tiny_llama) the answer tokens
# are predicted identically, so the two samples' statistics must agree, unless prompt tokens leak into them.
PROMPT_PAIRS = [("2+3=?", "5"), ("4+1=?", "5"), ("what is 7 minus 1?", "6"), ("3+3", "6")]


def _stats_of_one_batch(trainer):
    """Per-sample (ids, loss, correct, confidence, tokens, margin) GEKO recorded for one training batch of every
    sample."""
    batch = first_geko_batch(trainer)
    trainer.model.train()
    with torch.no_grad():
        trainer.compute_loss(trainer.model, dict(batch))
    ids, loss, correct, conf, tokens, margin = trainer.geko.buffer.parts[-1]
    order = torch.argsort(ids)
    return batch, {"loss": loss[order], "correct": correct[order], "confidence": conf[order], "tokens": tokens[order],
                   "margin": margin[order]}


def _same(stats, i, j):
    return all(torch.allclose(v[i].float(), v[j].float(), atol=1e-6, rtol=0) for v in stats.values())


@pytest.mark.parametrize("padding_free", [False, True], ids=["padded", "padding_free"])
@pytest.mark.parametrize("masking", ["completion_only", "assistant_only", "none"])
def test_stats_ignore_prompt_tokens(tokenizer, tmp_path, masking, padding_free):
    if masking == "completion_only":
        data, kw = prompt_completion_ds(PROMPT_PAIRS), {"completion_only_loss": True}
    elif masking == "assistant_only":
        data, kw = messages_ds(PROMPT_PAIRS), {"assistant_only_loss": True}
    else:  # control: the whole conversation is trained on, so the prompts must make a difference
        data, kw = messages_ds(PROMPT_PAIRS), {}
    trainer = GEKOSFTTrainer(tiny_llama(tokenizer, context_free=True),
                             args=sft_args(tmp_path, padding_free=padding_free, **kw),
                             train_dataset=data, processing_class=tokenizer)
    _, stats = _stats_of_one_batch(trainer)
    answer_tokens = [len(a) + 1 for _, a in PROMPT_PAIRS]  # answer characters + <|im_end|>
    if masking == "none":
        assert not _same(stats, 0, 1) and not _same(stats, 2, 3)
        assert all(t > a for t, a in zip(stats["tokens"].tolist(), answer_tokens))
    else:
        assert stats["tokens"].tolist() == answer_tokens
        assert _same(stats, 0, 1) and _same(stats, 2, 3)
        assert not _same(stats, 0, 2)  # different answers do differ


@pytest.mark.parametrize("padding_free", [False, True], ids=["padded", "padding_free"])
def test_fused_head_stats_match_full_logits(tokenizer, tmp_path, padding_free):
    """TRL's fused head returns no logits: loss/correct/tokens from it equal those from the full logits."""
    trainer = GEKOSFTTrainer(tiny_llama(tokenizer, seed=1), args=sft_args(tmp_path, padding_free=padding_free,
                                                                          assistant_only_loss=True),
                             train_dataset=messages_ds(sums(4)), processing_class=tokenizer)
    batch, stats = _stats_of_one_batch(trainer)
    ids = batch[ID_COLUMN]
    rows = [trainer.train_dataset[int(i)] for i in ids]
    with torch.no_grad():  # reference: each sample alone, full logits, GEKO's logits-path statistics
        ref = [token_stats(trainer.model(input_ids=torch.tensor([r["input_ids"]])).logits,
                               torch.tensor([r["labels"]])) for r in rows]
    order = torch.argsort(ids)
    for name in ("loss", "correct", "tokens"):
        expected = torch.cat([getattr(r, name) for r in ref])[order]
        assert torch.allclose(stats[name].float(), expected.float(), atol=1e-5), name
    full_conf = torch.cat([r.confidence for r in ref])[order]
    correct = stats["correct"]
    assert torch.allclose(stats["confidence"][correct], full_conf[correct], atol=1e-5)  # exact where correct
    assert (stats["confidence"] <= full_conf + 1e-6).all()  # a lower bound elsewhere
    # the fused head has no runner-up: a correct sample's margin is a lower bound (2p - 1), a wrong one's <= 0
    full_margin = torch.cat([r.margin for r in ref])[order]
    assert (stats["margin"][correct] <= full_margin[correct] + 1e-6).all()
    assert (stats["margin"][~correct] <= 1e-6).all() and (full_margin[~correct] <= 1e-6).all()
    assert ((full_margin > 0) == correct).all()


def test_fused_head_confidence_exact_when_correct(tokenizer, tmp_path):
    """Where every trained token is the argmax (the samples that may FREEZE) the fused confidence is exact."""
    from geko_hf.training.stats import fused_lm_stats

    trainer = GEKOSFTTrainer(tiny_llama(tokenizer, seed=2), args=sft_args(tmp_path, assistant_only_loss=True),
                             train_dataset=messages_ds(sums(4)), processing_class=tokenizer)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    model = trainer.model.eval()
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        labels = batch["labels"].clone()
        supervised = labels[:, 1:] != -100
        labels[:, 1:][supervised] = logits[:, :-1].argmax(-1)[supervised]  # the model is right everywhere
        fused = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels,
                      fused_lm_head=True)
        got, want = fused_lm_stats(fused), token_stats(logits, labels)
    assert got.correct.all() and want.correct.all()
    for name in ("loss", "confidence"):
        assert torch.allclose(getattr(got, name), getattr(want, name), atol=1e-5), name
    assert torch.equal(got.tokens, want.tokens)


# -- acceptance 3: a chat model trains with GEKO through the SFT path --------------------------------
def test_tiny_chat_llama_trains_samples_freeze_forwards_drop(tokenizer, tmp_path):
    # 12 easy samples (always answer "ok") and 4 sums: the easy ones are mastered early and must be skipped.
    data = messages_ds([(f"hello {i}", "ok") for i in range(12)] + sums(4))
    epochs, batch = 12, 4
    trainer = GEKOSFTTrainer(tiny_llama(tokenizer),
                             args=sft_args(tmp_path, assistant_only_loss=True, num_train_epochs=epochs,
                                           per_device_train_batch_size=batch, learning_rate=2e-2,
                                           lr_scheduler_type="constant"),
                             train_dataset=data, eval_dataset=messages_ds(sums(4, start=20)),
                             processing_class=tokenizer)
    calls, handle = count_forwards(trainer.model)
    result = trainer.train()
    handle.remove()
    report = trainer.get_efficiency_report()
    history = report["history"]
    assert len(history) == epochs
    assert max(row["FREEZE"] for row in history) > 0, history
    assert min(row["sample_passes"] for row in history) < len(data), history
    full = report["full_data"]["model_forward_calls"]
    assert full == epochs * len(data) // batch
    assert len(calls) == report["model_forward_calls"] < full  # the forward passes really dropped
    assert report["model_forward_calls_saved"] > 0.1
    assert torch.isfinite(torch.tensor(result.training_loss))
    assert "eval_loss" in trainer.evaluate()  # evaluation is TRL's, untouched


# -- packing, arguments, LoRA, the callback path ------------------------------------------------------
@pytest.mark.parametrize("cls", [GEKOSFTConfig, SFTConfig])
def test_packing_is_refused_at_init_naming_the_alternative(tokenizer, tmp_path, cls):
    with pytest.raises(ValueError, match="padding_free=True"):
        GEKOSFTTrainer(tiny_llama(tokenizer), args=sft_args(tmp_path, cls, packing=True, max_length=64),
                       train_dataset=messages_ds(sums(4)), processing_class=tokenizer)


@pytest.mark.parametrize("path", ["callback", "attach"])
@pytest.mark.parametrize("strategy", ["bfd", "wrapped"])
def test_packing_is_refused_on_the_callback_path_too(tokenizer, tmp_path, path, strategy):
    # Packed rows hold several samples: GEKO tracked each packed row as one sample, and with bfd (padding-free) it
    # gave the k-th document of the flattened batch the k-th row's id. Both trained silently before this check.
    kw = dict(packing=True, max_length=64, packing_strategy=strategy)
    if strategy == "wrapped":
        kw["padding_free"] = False
    callbacks = [GEKOCallback()] if path == "callback" else []
    build = lambda: SFTTrainer(tiny_llama(tokenizer), args=sft_args(tmp_path, SFTConfig, **kw),  # noqa: E731
                               train_dataset=messages_ds(sums(8)), processing_class=tokenizer, callbacks=callbacks)
    if path == "callback":
        with pytest.raises(ValueError, match="packing=True.*padding_free=True"):
            build()
    else:
        with pytest.raises(ValueError, match="packing=True.*padding_free=True"):
            GEKOCallback().attach(build())


def _pre_packed(tokenizer, n):
    """Rows of two documents each with their `seq_lengths`, as trl.pack_dataset makes (TRL keeps the column and
    restarts position_ids at each document under padding_free)."""
    docs = [tokenizer(f"{q}{a}<|im_end|>")["input_ids"] for q, a in sums(n)]
    return datasets.Dataset.from_list([{"input_ids": docs[i] + docs[i + 1],
                                        "seq_lengths": [len(docs[i]), len(docs[i + 1])]} for i in range(0, n, 2)])


@pytest.mark.parametrize("path", ["GEKOSFTTrainer", "callback"])
def test_pre_packed_rows_are_refused(tokenizer, tmp_path, path):
    # Before: each row's documents counted as samples, so the k-th document of the batch got the k-th row's id,
    # the documents past the batch's row count were dropped, and their gradient weights went to the last id.
    kw = dict(args=sft_args(tmp_path, SFTConfig, padding_free=True), train_dataset=_pre_packed(tokenizer, 16),
              processing_class=tokenizer)
    with pytest.raises(ValueError, match="seq_lengths.*pre-packed.*one sample per row"):
        if path == "GEKOSFTTrainer":
            GEKOSFTTrainer(tiny_llama(tokenizer), **kw).train()
        else:
            SFTTrainer(tiny_llama(tokenizer), callbacks=[GEKOCallback()], **kw).train()


def test_more_sequences_than_ids_in_a_batch_is_an_error():
    # The backstop under any collator: a supervised token in a sequence past the batch's sample count was dropped.
    from geko_hf.training.stats import check_one_sample_per_sequence

    batch = {"labels": torch.tensor([[1, 2, 3, 1, 2, 3]]), "position_ids": torch.tensor([[0, 1, 0, 1, 0, 1]])}
    check_one_sample_per_sequence(batch, 3)  # three sequences, three ids
    with pytest.raises(ValueError, match="3 sequences.*2 sample ids"):
        check_one_sample_per_sequence(batch, 2)
    batch["labels"][0, 4:] = -100  # a third sequence without supervised tokens (trailing padding) is fine
    check_one_sample_per_sequence(batch, 2)


def test_geko_sft_config_cli_and_validation(tmp_path):
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(GEKOSFTConfig).parse_args_into_dataclasses(args=[
        "--output_dir", str(tmp_path), "--use_cpu", "true", "--report_to", "none", "--bf16", "false",
        "--assistant_only_loss", "true", "--geko_preset", "aggressive", "--geko_focus_confidence", "0.5"])
    assert isinstance(args, SFTConfig) and args.assistant_only_loss
    assert args.geko_config == geko_hf.get_preset("aggressive").replace(focus_confidence=0.5)
    with pytest.raises(ValueError, match="geko_freeze_confidence"):
        sft_args(tmp_path, geko_freeze_confidence=1.5)


def test_geko_fields_reach_the_tracker_and_foreign_args_are_converted(tokenizer, tmp_path):
    data = messages_ds(sums(4))
    trainer = GEKOSFTTrainer(tiny_llama(tokenizer), args=sft_args(tmp_path, geko_preset="conservative"),
                             train_dataset=data, processing_class=tokenizer)
    trainer.get_train_dataloader()
    assert trainer.geko.config == geko_hf.get_preset("conservative")
    # GEKOTrainingArguments (TrainingArguments + geko_ fields) become a GEKOSFTConfig, geko_ fields kept
    plain = geko_hf.GEKOTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none",
                                          geko_freeze_confidence=0.9)
    trainer = GEKOSFTTrainer(tiny_llama(tokenizer), args=plain, train_dataset=data, processing_class=tokenizer)
    assert isinstance(trainer.args, GEKOSFTConfig) and trainer.args.geko_config.freeze_confidence == 0.9
    explicit = GEKOConfig(freeze_confidence=0.95)
    trainer = GEKOSFTTrainer(tiny_llama(tokenizer), args=sft_args(tmp_path), geko_config=explicit,
                             train_dataset=data, processing_class=tokenizer)
    trainer.get_train_dataloader()
    assert trainer.geko.config is explicit


def test_lora_config_prints_counts_and_trains_only_adapters(tokenizer, tmp_path, capsys):
    peft = pytest.importorskip("peft")
    lora = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    trainer = GEKOSFTTrainer(tiny_llama(tokenizer), args=sft_args(tmp_path, num_train_epochs=2, learning_rate=1e-2),
                             train_dataset=messages_ds(sums(8)), processing_class=tokenizer, lora_config=lora)
    out = capsys.readouterr().out
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in trainer.model.parameters())
    assert "[GEKO] LoRA applied" in out
    assert f"Trainable params : {trainable:,} ({100 * trainable / total:.2f}%)" in out
    assert f"Frozen params    : {total - trainable:,}" in out
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert changed and all("lora_" in n for n in changed)
    assert trainer.get_efficiency_report()["history"]
    with pytest.raises(ValueError, match="lora_config.*peft_config"):
        GEKOSFTTrainer(tiny_llama(tokenizer), args=sft_args(tmp_path), train_dataset=messages_ds(sums(4)),
                       processing_class=tokenizer, lora_config=lora, peft_config=lora)


def test_callback_only_path_on_sfttrainer(tokenizer, tmp_path):
    """SFTTrainer(..., callbacks=[GEKOCallback()]) runs the same code: still one forward per step."""
    trainer = SFTTrainer(tiny_llama(tokenizer), args=sft_args(tmp_path, SFTConfig, num_train_epochs=2),
                         train_dataset=messages_ds(sums(8)), processing_class=tokenizer, callbacks=[GEKOCallback()])
    calls, handle = count_forwards(trainer.model)
    trainer.train()
    handle.remove()
    report = trainer.get_efficiency_report()
    assert len(report["history"]) == 2 and len(calls) == report["model_forward_calls"]


def test_streaming_dataset_is_refused(tokenizer, tmp_path):
    stream = messages_ds(sums(4)).to_iterable_dataset()
    with pytest.raises(ValueError, match="map-style"):
        GEKOSFTTrainer(tiny_llama(tokenizer), args=sft_args(tmp_path, max_steps=2), train_dataset=stream,
                       processing_class=tokenizer)


# -- the data map of an SFT run -----------------------------------------------------------------------------
def test_sft_data_map_per_sample_with_a_group_column(tokenizer, tmp_path):
    """GEKOSFTTrainer in observe-only mode: one row per conversation, the task-family column carried along, and the
    statistics of the completion tokens only (the prompt is masked): the map's last loss is the state's."""
    pairs = sums(12)
    train = prompt_completion_ds(pairs).add_column("family", ["small" if int(a) < 5 else "large" for _, a in pairs])
    trainer = GEKOSFTTrainer(model=tiny_llama(tokenizer), args=sft_args(tmp_path, num_train_epochs=2),
                             train_dataset=train, processing_class=tokenizer, observe_only=True)
    trainer.train()
    frame = trainer.geko.data_map().to_pandas()
    assert len(frame) == len(pairs) and (frame["observations"] == 2).all()
    assert frame["family"].tolist() == train["family"]  # the group column, row for row
    state = trainer.geko.state
    np.testing.assert_allclose(frame["last_loss"], state.loss, rtol=1e-6)
    assert set(frame["region"]) <= {"easy-to-learn", "ambiguous", "hard-to-learn"}


def test_observe_only_trains_exactly_as_sfttrainer(tokenizer, tmp_path):
    """The observe-only data map on TRL's trainer: SFTTrainer's run, bit for bit (its sampler, order, schedule and
    steps; 10 samples in batches of 4, so the short last batch is kept), with every sample observed each epoch.
    The docs' "trains exactly what the stock trainer trains" was pinned for transformers.Trainer only."""
    data = messages_ds(sums(10))
    kw = dict(num_train_epochs=2, learning_rate=1e-2, lr_scheduler_type="linear", warmup_steps=1)
    stock = SFTTrainer(tiny_llama(tokenizer), args=sft_args(tmp_path / "stock", cls=SFTConfig, **kw),
                       train_dataset=data, processing_class=tokenizer)
    geko = GEKOSFTTrainer(tiny_llama(tokenizer), args=sft_args(tmp_path / "geko", **kw), train_dataset=data,
                          processing_class=tokenizer, observe_only=True)
    stock.train()
    geko.train()
    assert geko.state.global_step == stock.state.global_step == 6
    for (name, a), (_, b) in zip(stock.model.named_parameters(), geko.model.named_parameters()):
        assert torch.equal(a, b), name
    assert (geko.geko.tracker.data_map.statistics()["observations"] == 2).all()
    assert geko.geko.report()["sample_passes_saved"] == 0.0
