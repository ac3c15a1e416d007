"""GEKO's overhead when it saves nothing: GEKOTrainer vs the stock Trainer on the same samples, one epoch
(epoch 1 trains every sample once), nothing frozen. Target: time per sample at most 3% above stock.

    python benchmarks/overhead.py            # writes benchmarks/results/overhead.{json,md}

Arms alternate (stock, geko, stock, geko, ...) after a burn-in, so machine stalls hit both; medians are quoted.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time

import torch
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

sys.path.insert(0, os.path.dirname(__file__))
from savings import BF16, smollm_setup  # noqa: E402

from geko_hf import GEKOConfig, GEKOTrainer  # noqa: E402

REPEATS = 5  # timed runs per arm (after one burn-in each)
MINILM_SAMPLES = 512  # MiniLM: 16 steps of 32
SMOLLM_SAMPLES = 48  # SmolLM2: 3 steps of 16
RESULTS = os.path.join(os.path.dirname(__file__), "results")


def minilm_data():
    from geko_hf.assets import default_classifier, load_rotten_tomatoes

    train, _ = load_rotten_tomatoes(MINILM_SAMPLES, 0, seed=0)
    model, tok = default_classifier()
    train = train.map(lambda b: tok(b["text"], truncation=True, max_length=64), batched=True)
    return model, train, DataCollatorWithPadding(tok), 32


def smollm_data():
    import savings

    savings.SMOLLM.update(n_per_level=SMOLLM_SAMPLES // 3, n_eval_per_level=1)
    model, train, _, collate, _, _ = smollm_setup(0)
    return model, train, collate, 16


def time_one(arm, model, train, collator, batch):
    args = TrainingArguments(output_dir="/tmp/geko_overhead", per_device_train_batch_size=batch, num_train_epochs=1,
                             learning_rate=1e-5, bf16=BF16, use_cpu=True, report_to=[], save_strategy="no",
                             logging_strategy="no", disable_tqdm=True, seed=0)
    kw = dict(model=model, args=args, train_dataset=train, data_collator=collator)
    trainer = Trainer(**kw) if arm == "stock" else GEKOTrainer(geko_config=GEKOConfig(log_bucket_stats=False), **kw)
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    return seconds / (trainer.state.global_step * batch)


def main():
    torch.set_num_threads(os.cpu_count() or 1)
    os.makedirs(RESULTS, exist_ok=True)
    results = {}
    for name, make in (("minilm", minilm_data), ("smollm", smollm_data)):
        model, train, collator, batch = make()
        times = {"stock": [], "geko": []}
        for arm in ("stock", "geko"):  # burn-in
            time_one(arm, model, train, collator, batch)
        for _ in range(REPEATS):
            for arm in ("stock", "geko"):
                times[arm].append(time_one(arm, model, train, collator, batch))
        med = {arm: statistics.median(v) for arm, v in times.items()}
        results[name] = {"seconds_per_sample": times, "median": med, "ratio": med["geko"] / med["stock"]}
        print(f"[overhead] {name}: geko/stock time per sample = {results[name]['ratio']:.3f} "
              f"({med['geko'] * 1e3:.1f} ms vs {med['stock'] * 1e3:.1f} ms)", flush=True)
    meta = {"machine": f"{platform.machine()} {os.cpu_count()} cores", "bf16": BF16, "repeats": REPEATS,
            "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
    with open(os.path.join(RESULTS, "overhead.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    with open(os.path.join(RESULTS, "overhead.md"), "w") as f:
        f.write(f"{meta['machine']}, bf16 autocast {BF16}, median of {REPEATS} alternating runs after a burn-in.\n\n"
                "| workload | stock ms/sample | GEKO ms/sample | GEKO / stock |\n|---|---|---|---|\n")
        for name, r in results.items():
            f.write(f"| {name} | {r['median']['stock'] * 1e3:.2f} | {r['median']['geko'] * 1e3:.2f} | "
                    f"{r['ratio']:.3f} |\n")


if __name__ == "__main__":
    main()
