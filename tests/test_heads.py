"""Per-sample statistics for heads whose logits are ALIGNED with their labels (no causal shift).

Encoder-decoders (BART, T5 through Seq2SeqTrainer), masked LM and token classification return [B, T, V] logits
whose position t predicts labels[:, t]; only a causal LM predicts labels[:, t + 1]. GEKO must decide from the model
whether to shift, as Trainer.compute_loss does for label smoothing. For aligned heads the per-sample statistics are,
over the positions with label != -100 (unshifted): loss = mean token NLL, correct = every such token is the argmax,
confidence = mean top-1 probability, tokens = the number of such positions.

Heads with no default statistics (regression) take user hooks: compute_sample_loss, compute_correctness and
compute_confidence (outputs, batch) -> Tensor[B]; without compute_sample_loss they fail at the first batch.

Tiny models from config (dropout 0, so a train-mode forward equals an eval-mode one), no hub, no tokenizer.
"""

from __future__ import annotations

import datasets
import pytest
import torch
from hf_helpers import make_args
from transformers import (
    BartConfig,
    BartForConditionalGeneration,
    BertConfig,
    BertForMaskedLM,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    T5Config,
    T5ForConditionalGeneration,
    Trainer,
    TrainerCallback,
)

from geko_hf import GEKOCallback, GEKOTrainer
from geko_hf.training.ids import ID_COLUMN

pytestmark = pytest.mark.usefixtures("one_thread")

VOCAB = 48
IGNORE = -100
BATCH = 4


# -- tiny models (no dropout anywhere) ------------------------------------------------------------------
def tiny_bart(seed: int = 0) -> BartForConditionalGeneration:
    torch.manual_seed(seed)
    cfg = BartConfig(vocab_size=VOCAB, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                     decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=32,
                     dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, classifier_dropout=0.0,
                     encoder_layerdrop=0.0, decoder_layerdrop=0.0, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                     decoder_start_token_id=2, forced_eos_token_id=None)
    return BartForConditionalGeneration(cfg)


def tiny_t5(seed: int = 0) -> T5ForConditionalGeneration:
    torch.manual_seed(seed)
    cfg = T5Config(vocab_size=VOCAB, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2,
                   dropout_rate=0.0, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    return T5ForConditionalGeneration(cfg)


def _bert_config(**kw) -> BertConfig:
    return BertConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=32, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0, classifier_dropout=0.0, pad_token_id=0, **kw)


def tiny_bert_mlm(seed: int = 0) -> BertForMaskedLM:
    torch.manual_seed(seed)
    return BertForMaskedLM(_bert_config())


def tiny_bert_tokcls(seed: int = 0, num_labels: int = 5) -> BertForTokenClassification:
    torch.manual_seed(seed)
    return BertForTokenClassification(_bert_config(num_labels=num_labels))


def tiny_bert_regression(seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    return BertForSequenceClassification(_bert_config(num_labels=1, problem_type="regression"))


# -- toy data: every row the same length, so the default collator stacks it -----------------------------
SRC_LEN, TGT_LEN = 7, 5  # decoder targets shorter than the encoder inputs


def seq2seq_dataset(pad_id: int, n: int = 8) -> datasets.Dataset:
    """Encoder inputs of SRC_LEN (some padded), decoder targets of TGT_LEN with a varying number of -100 at the end."""
    g = torch.Generator().manual_seed(1)
    rows = []
    for i in range(n):
        src_n = SRC_LEN - i % 3
        src = torch.randint(3, VOCAB, (src_n,), generator=g).tolist()
        tgt_n = TGT_LEN - i % 4  # 5, 4, 3, 2 supervised target tokens
        tgt = torch.randint(3, VOCAB, (tgt_n,), generator=g).tolist()
        rows.append({"input_ids": src + [pad_id] * (SRC_LEN - src_n),
                     "attention_mask": [1] * src_n + [0] * (SRC_LEN - src_n),
                     "labels": tgt + [IGNORE] * (TGT_LEN - tgt_n)})
    return datasets.Dataset.from_list(rows)


MLM_LEN, MASK_ID = 8, 4


def mlm_dataset(n: int = 8) -> datasets.Dataset:
    """Labels -100 except at the masked positions (input there = MASK_ID); position 0 is masked in some rows."""
    g = torch.Generator().manual_seed(2)
    rows = []
    for i in range(n):
        ids = torch.randint(5, VOCAB, (MLM_LEN,), generator=g)
        masked = [0] if i % 2 == 0 else []  # position 0 masked in even rows: a shift would drop it
        masked += [(i + 2 * k) % (MLM_LEN - 1) + 1 for k in range(1 + i % 3)]  # and 1-3 more positions
        labels = torch.full_like(ids, IGNORE)
        labels[masked] = ids[masked]
        ids[masked] = MASK_ID
        rows.append({"input_ids": ids.tolist(), "attention_mask": [1] * MLM_LEN, "labels": labels.tolist()})
    return datasets.Dataset.from_list(rows)


def tokcls_dataset(n: int = 8, num_labels: int = 5) -> datasets.Dataset:
    """Per-token tags; padding (and in odd rows the first token) is -100."""
    g = torch.Generator().manual_seed(3)
    rows = []
    for i in range(n):
        real = MLM_LEN - i % 3
        ids = torch.randint(5, VOCAB, (real,), generator=g).tolist() + [0] * (MLM_LEN - real)
        tags = torch.randint(0, num_labels, (real,), generator=g).tolist() + [IGNORE] * (MLM_LEN - real)
        if i % 2:
            tags[0] = IGNORE
        rows.append({"input_ids": ids, "attention_mask": [1] * real + [0] * (MLM_LEN - real), "labels": tags})
    return datasets.Dataset.from_list(rows)


# -- helpers --------------------------------------------------------------------------------------------
def seq2seq_args(tmp_path, **kw) -> Seq2SeqTrainingArguments:
    defaults = dict(output_dir=str(tmp_path / "out"), per_device_train_batch_size=BATCH, num_train_epochs=1,
                    report_to=[], use_cpu=True, save_strategy="no", disable_tqdm=True, seed=0)
    defaults.update(kw)
    return Seq2SeqTrainingArguments(**defaults)


def make_trainer(path: str, model, ds, tmp_path):
    if path == "seq2seq_callback":  # the stock Seq2SeqTrainer with GEKO as a callback
        return Seq2SeqTrainer(model=model, args=seq2seq_args(tmp_path), train_dataset=ds, callbacks=[GEKOCallback()])
    if path == "trainer_callback":
        return Trainer(model=model, args=make_args(tmp_path, per_device_train_batch_size=BATCH), train_dataset=ds,
                       callbacks=[GEKOCallback()])
    assert path == "geko_trainer"
    return GEKOTrainer(model=model, args=make_args(tmp_path, per_device_train_batch_size=BATCH), train_dataset=ds)


def recorded_for_first_batch(trainer):
    """Run GEKO's compute_loss (train mode) on the first training batch; return (model inputs, the batch's record)."""
    batch = next(iter(trainer.get_train_dataloader()))
    assert ID_COLUMN in batch and batch[ID_COLUMN].dtype == torch.long
    inputs = {k: v.clone() for k, v in batch.items() if k != ID_COLUMN}
    trainer.model.train()
    trainer.compute_loss(trainer.model, {k: v.clone() for k, v in batch.items()})
    ids, loss, correct, confidence, tokens, _ = trainer.geko.buffer.parts[-1]
    assert torch.equal(ids.cpu(), batch[ID_COLUMN].cpu()), "one record per row, in batch order"
    return inputs, dict(loss=loss, correct=correct, confidence=confidence, tokens=tokens)


def aligned_reference(logits: torch.Tensor, labels: torch.Tensor) -> dict:
    """The expected per-sample statistics of an aligned head, computed row by row with UNSHIFTED labels."""
    out = {"loss": [], "correct": [], "confidence": [], "tokens": []}
    for lg, lb in zip(logits.float(), labels):
        keep = lb != IGNORE
        lg, lb = lg[keep], lb[keep]
        logp = torch.log_softmax(lg, dim=-1)
        out["loss"].append(-logp.gather(1, lb[:, None]).mean())
        out["correct"].append(bool((lg.argmax(-1) == lb).all()))
        out["confidence"].append(logp.max(-1).values.exp().min())  # the weakest token (issue 34, fault 1)
        out["tokens"].append(int(keep.sum()))
    return {"loss": torch.stack(out["loss"]), "correct": torch.tensor(out["correct"]),
            "confidence": torch.stack(out["confidence"]), "tokens": torch.tensor(out["tokens"])}


def reference_from_model(model, inputs: dict) -> dict:
    model.eval()  # dropout is 0 in every config: the same logits as the training forward
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape[:2] == inputs["labels"].shape, "logits are aligned with the labels"
    return aligned_reference(logits, inputs["labels"])


def assert_matches(got: dict, want: dict) -> None:
    assert got["tokens"].cpu().tolist() == want["tokens"].tolist(), "tokens = supervised positions, unshifted"
    torch.testing.assert_close(got["loss"].cpu(), want["loss"], rtol=1e-5, atol=1e-5, msg=lambda m: "loss: " + m)
    torch.testing.assert_close(got["confidence"].cpu(), want["confidence"], rtol=1e-5, atol=1e-5,
                               msg=lambda m: "confidence: " + m)
    assert got["correct"].cpu().tolist() == want["correct"].tolist(), "correct: every supervised token is the argmax"


# -- 1. aligned heads: GEKO's records equal the unshifted statistics of the same logits -------------------
@pytest.mark.parametrize("path", ["seq2seq_callback", "geko_trainer"])
def test_bart_records_unshifted_decoder_stats(tmp_path, path):
    # BART's decoder logits [B, T_dec, V] are aligned with `labels` (the model shifts labels right itself to build
    # decoder_input_ids): GEKO must NOT shift again. Compares the records of one training batch, through
    # Seq2SeqTrainer + GEKOCallback and through GEKOTrainer, with the unshifted statistics of the same logits.
    model = tiny_bart()
    trainer = make_trainer(path, model, seq2seq_dataset(pad_id=model.config.pad_token_id), tmp_path)
    inputs, got = recorded_for_first_batch(trainer)
    assert inputs["labels"].shape[1] != inputs["input_ids"].shape[1]  # targets of another length than the inputs
    assert_matches(got, reference_from_model(trainer.model, inputs))


def test_t5_records_unshifted_decoder_stats(tmp_path):
    # T5 through Seq2SeqTrainer + GEKOCallback: decoder logits aligned with `labels`, so the records must be the
    # unshifted statistics (T5 shifts labels right internally, like BART).
    model = tiny_t5()
    trainer = make_trainer("seq2seq_callback", model, seq2seq_dataset(pad_id=model.config.pad_token_id), tmp_path)
    inputs, got = recorded_for_first_batch(trainer)
    assert_matches(got, reference_from_model(trainer.model, inputs))


@pytest.mark.parametrize("path", ["geko_trainer", "trainer_callback"])
def test_masked_lm_records_unshifted_stats(tmp_path, path):
    # BertForMaskedLM: logits at position t predict labels[:, t] (the masked token there); labels are -100 except at
    # masked positions, position 0 included in some rows. Records must count exactly the masked positions and take
    # NLL/argmax/top-1 at those positions, not one position earlier.
    trainer = make_trainer(path, tiny_bert_mlm(), mlm_dataset(), tmp_path)
    inputs, got = recorded_for_first_batch(trainer)
    assert_matches(got, reference_from_model(trainer.model, inputs))


def _tiny_xlm():
    from transformers import XLMConfig, XLMWithLMHeadModel

    torch.manual_seed(0)
    return XLMWithLMHeadModel(XLMConfig(vocab_size=VOCAB, emb_dim=16, n_layers=1, n_heads=2, dropout=0.0,
                                        attention_dropout=0.0, max_position_embeddings=32))


def _tiny_xlnet():
    from transformers import XLNetConfig, XLNetLMHeadModel

    torch.manual_seed(0)
    return XLNetLMHeadModel(XLNetConfig(vocab_size=VOCAB, d_model=16, n_layer=1, n_head=2, d_inner=32, dropout=0.0))


@pytest.mark.parametrize("build", [_tiny_xlm, _tiny_xlnet], ids=["xlm", "xlnet"])
def test_causal_mapped_heads_that_do_not_shift_record_unshifted_stats(tmp_path, build):
    # XLMWithLMHeadModel and XLNetLMHeadModel sit in transformers' causal-LM auto-mapping, yet their own loss is
    # taken at the label's own position (modeling_xlm.XLMPredLayer, modeling_xlnet.XLNetLMHeadModel.forward).
    # Before: GEKO shifted them as causal LMs, scoring every token against its neighbour's label.
    trainer = make_trainer("geko_trainer", build(), mlm_dataset(), tmp_path)
    inputs, got = recorded_for_first_batch(trainer)
    want = reference_from_model(trainer.model, inputs)
    with torch.no_grad():  # the fact relied on: the model's own loss is the unshifted mean token NLL
        out = trainer.model(**inputs)
    unshifted = torch.nn.functional.cross_entropy(out.logits.flatten(0, 1), inputs["labels"].flatten())
    torch.testing.assert_close(out.loss, unshifted, rtol=1e-5, atol=1e-5)
    assert_matches(got, want)


def test_token_classification_records_unshifted_stats(tmp_path):
    # BertForTokenClassification: [B, T, C] logits, one tag per token, aligned with labels (-100 on padding and,
    # in odd rows, on the first token). Records must be the unshifted per-token statistics averaged per row.
    trainer = make_trainer("geko_trainer", tiny_bert_tokcls(), tokcls_dataset(), tmp_path)
    inputs, got = recorded_for_first_batch(trainer)
    assert_matches(got, reference_from_model(trainer.model, inputs))


# -- 2. a perfect seq2seq model is recorded as correct ----------------------------------------------------
def test_perfect_bart_is_recorded_all_correct(tmp_path):
    # A tiny BART trained (plain torch loop) until argmax(logits) == labels on every target token of a 4-sample
    # copy task: GEKO must record all 4 samples correct, with all target tokens counted and a high confidence.
    # (A shifted comparison checks the prediction for token t against token t+1, which differs here: all wrong.)
    model = tiny_bart(seed=0)
    pad = model.config.pad_token_id
    rows = []
    for i in range(BATCH):
        tgt = [3 + (5 * i + 3 * k) % (VOCAB - 3) for k in range(TGT_LEN)]  # no token repeats its neighbour
        rows.append({"input_ids": tgt + [pad] * (SRC_LEN - TGT_LEN),
                     "attention_mask": [1] * TGT_LEN + [0] * (SRC_LEN - TGT_LEN), "labels": tgt})
    ds = datasets.Dataset.from_list(rows)
    full = {k: torch.tensor(ds[k]) for k in ("input_ids", "attention_mask", "labels")}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(300):
        opt.zero_grad()
        loss = model(**full).loss
        loss.backward()
        opt.step()
        if loss.item() < 0.05:
            model.eval()
            with torch.no_grad():
                if torch.equal(model(**full).logits.argmax(-1), full["labels"]):
                    break
            model.train()
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(**full).logits.argmax(-1), full["labels"]), "the copy task was not learnt"

    trainer = make_trainer("seq2seq_callback", model, ds, tmp_path)
    inputs, got = recorded_for_first_batch(trainer)
    assert got["correct"].cpu().tolist() == [True] * BATCH, "a model that predicts every target token is correct"
    assert got["tokens"].cpu().tolist() == [TGT_LEN] * BATCH
    assert bool((got["confidence"] > 0.5).all()) and bool((got["loss"] < 0.7).all())
    assert_matches(got, reference_from_model(trainer.model, inputs))


# -- 3. custom heads: user hooks, and a clear error without compute_sample_loss ----------------------------
def regression_dataset(n: int = 16) -> datasets.Dataset:
    g = torch.Generator().manual_seed(4)
    rows = []
    for i in range(n):
        ids = torch.randint(5, VOCAB, (6,), generator=g).tolist()
        rows.append({"input_ids": ids, "attention_mask": [1] * 6, "labels": float(i % 4) / 4})
    return datasets.Dataset.from_list(rows)


def sq_err(outputs, batch):
    return (outputs.logits.float().view(-1) - batch["labels"].float().view(-1)) ** 2


def close_enough(outputs, batch):
    return sq_err(outputs, batch) < 0.01


def closeness(outputs, batch):
    return torch.exp(-sq_err(outputs, batch))


class RecordSpy(TrainerCallback):
    """The newest GEKO record after every optimizer step (gradient_accumulation_steps=1: one batch per step)."""

    def __init__(self):
        self.trainer = None
        self.records: list[tuple] = []

    def on_step_end(self, args, state, control, **kw):
        self.records.append(tuple(t.clone() for t in self.trainer.geko.buffer.parts[-1]))


def test_regression_head_with_sample_loss_hook_trains(tmp_path):
    # A regression head ([B, 1] logits, float labels) has no default statistics; with the NEW compute_sample_loss
    # hook (plus compute_correctness/compute_confidence) GEKOTrainer trains 2 epochs, and every recorded
    # loss/correct/confidence is exactly what the hooks returned for that batch.
    returned = {"loss": [], "correct": [], "confidence": []}

    def record(name, fn):
        def hook(outputs, batch):
            value = fn(outputs, batch)
            returned[name].append(value.detach().clone())
            return value
        return hook

    spy = RecordSpy()
    trainer = GEKOTrainer(model=tiny_bert_regression(), train_dataset=regression_dataset(),
                          args=make_args(tmp_path, per_device_train_batch_size=BATCH, num_train_epochs=2,
                                         learning_rate=1e-3),
                          compute_sample_loss=record("loss", sq_err),
                          compute_correctness=record("correct", close_enough),
                          compute_confidence=record("confidence", closeness),
                          callbacks=[spy])
    spy.trainer = trainer
    trainer.train()
    assert trainer.state.global_step == len(spy.records) > 0
    assert len(returned["loss"]) == len(returned["correct"]) == len(returned["confidence"]) == len(spy.records)
    for (_, loss, correct, confidence, _, margin), want_loss, want_correct, want_conf in zip(
            spy.records, returned["loss"], returned["correct"], returned["confidence"]):
        torch.testing.assert_close(loss.cpu(), want_loss.float().cpu())
        assert correct.cpu().tolist() == want_correct.cpu().tolist()
        torch.testing.assert_close(confidence.cpu(), want_conf.float().cpu())
        assert margin.isnan().all()  # user hooks decide correctness: the state derives the margin from theirs
    assert trainer.get_efficiency_report()["history"], "GEKO ran its epochs"


@pytest.mark.parametrize("hooks", ["none", "correctness_and_confidence_only"])
def test_regression_head_without_sample_loss_hook_raises(tmp_path, hooks):
    # Without compute_sample_loss GEKO has no per-sample loss for a regression head: trainer.train() must stop at
    # the first training batch (no optimizer step) with a ValueError that names `compute_sample_loss`, whether no
    # hook is given or only compute_correctness and compute_confidence are.
    kw = {} if hooks == "none" else dict(compute_correctness=close_enough, compute_confidence=closeness)
    trainer = GEKOTrainer(model=tiny_bert_regression(), train_dataset=regression_dataset(),
                          args=make_args(tmp_path, per_device_train_batch_size=BATCH, num_train_epochs=2), **kw)
    with pytest.raises(ValueError, match="compute_sample_loss"):
        trainer.train()
    assert trainer.state.global_step == 0


def test_labels_that_are_not_a_tensor_ask_for_the_hooks():
    # Object detection (DETR, YOLOS) passes `labels` as one dict of boxes and classes per image: before, GEKO
    # failed with "AttributeError: 'list' object has no attribute 'dim'" instead of naming the hooks.
    from transformers.modeling_outputs import ModelOutput

    from geko_hf.training.stats import default_stats

    outputs = ModelOutput(logits=torch.zeros(2, 5, 3))  # [images, queries, classes]
    labels = [{"class_labels": torch.tensor([1]), "boxes": torch.rand(1, 4)} for _ in range(2)]
    with pytest.raises(ValueError, match=r"`labels` is a list.*compute_sample_loss="):
        default_stats(outputs, {"labels": labels}, num_samples=2, shift_labels=None)


# -- 4. labels under other names: TrainingArguments.label_names (the Trainer's own list of label inputs) -----------
class TagsForTokenClassification(BertForTokenClassification):
    """A token classifier whose labels input is `tags` (label_names=["tags"] tells the Trainer)."""

    def forward(self, input_ids=None, attention_mask=None, tags=None, **kw):
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, labels=tags, **kw)


def test_a_single_custom_label_name_is_where_the_labels_are_read(tmp_path):
    torch.manual_seed(0)
    model = TagsForTokenClassification(_bert_config(num_labels=5))
    trainer = GEKOTrainer(model=model, train_dataset=tokcls_dataset().rename_column("labels", "tags"),
                          args=make_args(tmp_path, per_device_train_batch_size=BATCH, label_names=["tags"]))
    inputs, got = recorded_for_first_batch(trainer)
    with torch.no_grad():
        logits = model.eval()(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
    # before: GEKO read the input_ids as labels (every unpadded position, the token ids as classes)
    assert_matches(got, aligned_reference(logits, inputs["tags"]))


def tiny_bert_qa(seed: int = 0) -> BertForQuestionAnswering:
    torch.manual_seed(seed)
    return BertForQuestionAnswering(_bert_config())


def qa_dataset(n: int = 8) -> datasets.Dataset:
    return datasets.Dataset.from_dict({"input_ids": [[5, 6, 7, 8, 9, 10]] * n, "attention_mask": [[1] * 6] * n,
                                       "start_positions": [1] * n, "end_positions": [3] * n})


def test_several_label_tensors_without_hooks_are_refused_naming_label_names(tmp_path):
    trainer = GEKOTrainer(model=tiny_bert_qa(), train_dataset=qa_dataset(),
                          args=make_args(tmp_path, per_device_train_batch_size=BATCH))
    assert trainer.label_names == ["start_positions", "end_positions"]
    with pytest.raises(ValueError, match=r"label_names=\['start_positions', 'end_positions'\].*compute_sample_loss="):
        trainer.train()
    assert trainer.state.global_step == 0


def test_several_label_tensors_with_hooks_train(tmp_path):
    def qa_loss(outputs, batch):
        ce = torch.nn.functional.cross_entropy
        return (ce(outputs.start_logits, batch["start_positions"], reduction="none")
                + ce(outputs.end_logits, batch["end_positions"], reduction="none")) / 2

    def qa_correct(outputs, batch):
        return (outputs.start_logits.argmax(-1) == batch["start_positions"]) & \
            (outputs.end_logits.argmax(-1) == batch["end_positions"])

    def qa_confidence(outputs, batch):
        return outputs.start_logits.softmax(-1).max(-1).values

    trainer = GEKOTrainer(model=tiny_bert_qa(), train_dataset=qa_dataset(),
                          args=make_args(tmp_path, per_device_train_batch_size=BATCH, num_train_epochs=2),
                          compute_sample_loss=qa_loss, compute_correctness=qa_correct,
                          compute_confidence=qa_confidence)
    trainer.train()
    assert trainer.get_efficiency_report()["forward_sample_passes"] == 16


def test_a_causal_lm_with_a_custom_label_name_scores_its_labels_not_its_input_ids(tmp_path):
    from hf_helpers import tiny_gpt2
    from transformers import GPT2LMHeadModel

    class TargetsForCausalLM(GPT2LMHeadModel):
        def forward(self, input_ids=None, attention_mask=None, targets=None, **kw):
            return super().forward(input_ids=input_ids, attention_mask=attention_mask, labels=targets, **kw)

    rows = [{"input_ids": list(range(1 + i, 8 + i)), "attention_mask": [1] * 7,
             "targets": [IGNORE] * 4 + list(range(5 + i, 8 + i))} for i in range(8)]  # a 4-token prompt, 3 answers
    trainer = GEKOTrainer(model=TargetsForCausalLM(tiny_gpt2().config), train_dataset=datasets.Dataset.from_list(rows),
                          args=make_args(tmp_path, per_device_train_batch_size=BATCH, label_names=["targets"]))
    _, got = recorded_for_first_batch(trainer)
    assert got["tokens"].tolist() == [3] * BATCH  # before: 6, the prompt scored too (input_ids as labels)
