"""LoRA the seed's way (`apply_lora`, `lora_config=`, the printed counts) and the optional extras (peft, trl)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.utils.data import Dataset
from transformers import LlamaConfig, LlamaForCausalLM

import geko_hf
from geko_hf import GEKOTrainer, GEKOTrainingArguments

VOCAB = 64


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_llama(seed=0):
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                        tie_word_embeddings=False))


def lora_config():
    peft = pytest.importorskip("peft")
    return peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)


class Sequences(Dataset):
    """Fixed-length token sequences (a causal LM learns them; no collator subtleties)."""

    def __init__(self, n=16, length=12):
        g = torch.Generator().manual_seed(0)
        self.rows = torch.randint(0, VOCAB, (n, length), generator=g)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return {"input_ids": self.rows[i], "labels": self.rows[i]}


SUMMARY = re.compile(
    r"\[GEKO\] LoRA applied\n"
    r"  Trainable params : (?P<trainable>[\d,]+) \((?P<share>\d+\.\d\d)%\)\n"
    r"  Total params     : (?P<total>[\d,]+)\n"
    r"  Frozen params    : (?P<frozen>[\d,]+)\n"
)


def _numbers(out):
    match = SUMMARY.search(out)
    assert match, out
    return {k: (float(v) if k == "share" else int(v.replace(",", ""))) for k, v in match.groupdict().items()}


def test_is_peft_available():
    pytest.importorskip("peft")
    assert geko_hf.is_peft_available() is True


def test_apply_lora_prints_the_seed_block_and_freezes_the_base(capsys):
    config = lora_config()
    base = tiny_llama()
    total_before = sum(p.numel() for p in base.parameters())
    model = geko_hf.apply_lora(base, config)
    numbers = _numbers(capsys.readouterr().out)
    adapters = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    assert numbers["trainable"] == adapters == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert numbers["total"] == total_before + adapters
    assert numbers["frozen"] == numbers["total"] - numbers["trainable"]
    assert numbers["share"] == round(100 * adapters / numbers["total"], 2)
    assert all(("lora_" in n) == p.requires_grad for n, p in model.named_parameters())


def test_apply_lora_rejects_wrong_inputs():
    config = lora_config()
    with pytest.raises(TypeError, match="LoraConfig"):
        geko_hf.apply_lora(tiny_llama(), {"r": 4})
    model = geko_hf.apply_lora(tiny_llama(), config)
    with pytest.raises(ValueError, match="already carries a PEFT adapter"):
        geko_hf.apply_lora(model, lora_config())


def test_geko_trainer_lora_config_trains_only_adapters(tmp_path, capsys):
    config = lora_config()
    args = GEKOTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", save_strategy="no",
                                 disable_tqdm=True, per_device_train_batch_size=4, num_train_epochs=2,
                                 learning_rate=1e-2, seed=0)
    trainer = GEKOTrainer(tiny_llama(), args=args, train_dataset=Sequences(), lora_config=config)
    assert "[GEKO] LoRA applied" in capsys.readouterr().out
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert changed and all("lora_" in n for n in changed)
    assert len(trainer.get_efficiency_report()["history"]) == 2


def test_import_without_trl_and_peft_names_the_extras():
    """`import geko_hf` works with neither installed; each feature that needs one says how to install it."""
    script = textwrap.dedent("""
        import sys

        sys.modules["trl"] = sys.modules["peft"] = None  # as if not installed: imports fail, find_spec is None
        import geko_hf
        assert geko_hf.GEKOTrainer and geko_hf.GEKOConfig
        for name in ("GEKOSFTTrainer", "GEKOSFTConfig"):
            try:
                getattr(geko_hf, name)
            except ImportError as e:
                assert "pip install geko_hf[trl]" in str(e), e
            else:
                raise AssertionError(name + " imported without trl")
        try:
            from geko_hf import GEKOSFTTrainer  # noqa: F401
        except ImportError as e:
            assert "pip install geko_hf[trl]" in str(e), e
        else:
            raise AssertionError("from-import without trl")
        assert geko_hf.is_peft_available() is False
        try:
            geko_hf.apply_lora(None, None)
        except ImportError as e:
            assert "pip install geko_hf[peft]" in str(e), e
        else:
            raise AssertionError("apply_lora without peft")
        print("OK")
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), proc.stderr[-3000:]
