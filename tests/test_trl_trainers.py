"""TRL trainers other than SFTTrainer are refused by name, at construction, not deep inside train().

GEKO's per-sample scheme (one id per dataset row, its own sampler, an id-adding collator, one statistic per row of
the batch) does not fit these trainers:
  * DPOTrainer / RewardTrainer put each sample's chosen AND rejected sequences into the batch (2 rows per id), so
    train() used to stop at the first step with "The batch has fewer rows than its 4 sample ids ...".
  * GRPOTrainer needs its RepeatSampler (each prompt num_generations times, in groups); GEKO's sampler replaces it,
    destroying the groups, and GRPO's identity collator returns a list, so GEKO's IdCollator then crashed with
    "TypeError: list indices must be integers or slices, not str".
Now GEKOCallback (passed at construction, or attach()ed later) raises a ValueError naming the trainer class.
SFTTrainer stays allowed (trained with GEKO in test_sft.py; only construction is checked here).

Everything is tiny and offline: Llama models built from a config, a character-level tokenizer built in code.
"""

from __future__ import annotations

import string

import pytest
import torch

pytest.importorskip("trl")

import trl  # noqa: E402
from datasets import Dataset  # noqa: E402
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers  # noqa: E402
from transformers import (  # noqa: E402
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForSequenceClassification,
    PreTrainedTokenizerFast,
)

from geko_hf import GEKOCallback  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


# -- tiny assets --------------------------------------------------------------------------------------
def make_tokenizer():
    """One token per character; pad and eos are distinct special tokens (TRL appends eos to completions)."""
    specials = ["<pad>", "<unk>", "<eos>"]
    chars = string.ascii_letters + string.digits + string.punctuation + " \n"
    vocab = {t: i for i, t in enumerate([*specials, *chars])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>",
                                   eos_token="<eos>")


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


def tiny_config(tokenizer) -> LlamaConfig:
    return LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                       pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                       bos_token_id=None, tie_word_embeddings=False, num_labels=1)


def tiny_lm(tokenizer):
    torch.manual_seed(0)
    return LlamaForCausalLM(tiny_config(tokenizer))


COMMON = dict(bf16=False, use_cpu=True, report_to=[], save_strategy="no", disable_tqdm=True, seed=0,
              per_device_train_batch_size=4, max_steps=1, logging_steps=1000)


# -- one builder per refused trainer (each constructs in well under a second on CPU) -------------------
def build_dpo(tokenizer, tmp_path, callbacks=None):
    data = Dataset.from_list([{"prompt": f"{i}+1=", "chosen": str(i + 1), "rejected": str(i + 2)}
                              for i in range(8)])
    # ref_model explicitly: a policy built from a config has no hub name to load a reference model from
    return trl.DPOTrainer(tiny_lm(tokenizer), ref_model=tiny_lm(tokenizer),
                          args=trl.DPOConfig(output_dir=str(tmp_path), max_length=32, **COMMON),
                          train_dataset=data, processing_class=tokenizer, callbacks=callbacks)


def build_reward(tokenizer, tmp_path, callbacks=None):
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(tiny_config(tokenizer))  # num_labels=1: one scalar reward
    data = Dataset.from_list([{"chosen": f"{i}+1={i + 1}", "rejected": f"{i}+1={i + 2}"} for i in range(8)])
    return trl.RewardTrainer(model, args=trl.RewardConfig(output_dir=str(tmp_path), max_length=32, **COMMON),
                             train_dataset=data, processing_class=tokenizer, callbacks=callbacks)


def length_reward(completions, **kwargs):
    return [float(len(c)) for c in completions]


def build_grpo(tokenizer, tmp_path, callbacks=None):
    data = Dataset.from_list([{"prompt": f"{i}+1="} for i in range(8)])
    return trl.GRPOTrainer(tiny_lm(tokenizer), reward_funcs=length_reward,
                           args=trl.GRPOConfig(output_dir=str(tmp_path), num_generations=2, max_completion_length=4,
                                               **COMMON),
                           train_dataset=data, processing_class=tokenizer, callbacks=callbacks)


REFUSED = pytest.mark.parametrize("name, build", [
    ("DPOTrainer", build_dpo),
    ("RewardTrainer", build_reward),
    ("GRPOTrainer", build_grpo),
], ids=["dpo", "reward", "grpo"])


def assert_names_trainer(excinfo, name):
    message = str(excinfo.value)
    assert name in message, message
    assert "GEKO" in message, message


# -- the refusal ---------------------------------------------------------------------------------------
@REFUSED
def test_builders_construct_without_geko(tokenizer, tmp_path, name, build):
    """Control: the stock trainer builds offline from these assets, so the refusal below is GEKO's."""
    trainer = build(tokenizer, tmp_path)
    assert type(trainer) is getattr(trl, name)


@REFUSED
def test_callback_at_construction_is_refused_naming_the_trainer(tokenizer, tmp_path, name, build):
    with pytest.raises(ValueError) as excinfo:
        build(tokenizer, tmp_path, callbacks=[GEKOCallback()])
    assert_names_trainer(excinfo, name)  # raised by the constructor itself, not later from train()


@REFUSED
def test_attach_to_constructed_trainer_is_refused_naming_the_trainer(tokenizer, tmp_path, name, build):
    trainer = build(tokenizer, tmp_path)
    with pytest.raises(ValueError) as excinfo:
        GEKOCallback().attach(trainer)
    assert_names_trainer(excinfo, name)


# -- SFTTrainer stays allowed --------------------------------------------------------------------------
def _sft_trainer(tokenizer, tmp_path, callbacks=None):
    data = Dataset.from_list([{"prompt": f"{i}+1=", "completion": str(i + 1)} for i in range(8)])
    return trl.SFTTrainer(tiny_lm(tokenizer), args=trl.SFTConfig(output_dir=str(tmp_path), max_length=32,
                                                                 gradient_checkpointing=False, **COMMON),
                          train_dataset=data, processing_class=tokenizer, callbacks=callbacks)


def test_sfttrainer_with_callback_still_constructs(tokenizer, tmp_path):
    callback = GEKOCallback()
    trainer = _sft_trainer(tokenizer, tmp_path, callbacks=[callback])
    assert isinstance(trainer, trl.SFTTrainer)
    assert trainer.geko.callback is callback and callback.trainer is trainer


def test_attach_to_sfttrainer_still_works(tokenizer, tmp_path):
    trainer = _sft_trainer(tokenizer, tmp_path)
    callback = GEKOCallback()
    callback.attach(trainer)
    assert isinstance(trainer, trl.SFTTrainer)
    assert trainer.geko.callback is callback and callback.trainer is trainer
