"""GEKO's overhead when it saves nothing: GEKOTrainer vs the stock Trainer on the same samples, one epoch
(epoch 1 trains every sample once), nothing frozen. Target: time per sample at most 3% above stock.

    python benchmarks/overhead.py            # writes benchmarks/results/overhead.{json,md}

Two measures: the steady-state time per step (median interval between consecutive optimizer steps, which
includes data loading, collation, the forward with GEKO's statistics, backward and the optimizer step), and
the whole train() call per sample (adds one-off costs: building the tracker, the epoch-end repartition).
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
from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments

sys.path.insert(0, os.path.dirname(__file__))
from savings import BF16, smollm_setup  # noqa: E402

from geko_hf import GEKOConfig, GEKOTrainer  # noqa: E402

REPEATS = {"minilm": 5, "smollm": 3}  # timed runs per arm (after one burn-in each)
MINILM_SAMPLES = 512  # MiniLM: 16 steps of 32
SMOLLM_SAMPLES = 96  # SmolLM2: 6 steps of 16
RESULTS = os.path.join(os.path.dirname(__file__), "results")


def minilm_data():
    from geko_hf.cli.assets import default_classifier, load_rotten_tomatoes

    train, _ = load_rotten_tomatoes(MINILM_SAMPLES, 0, seed=0)
    model, tok = default_classifier()
    train = train.map(lambda b: tok(b["text"], truncation=True, max_length=64), batched=True)
    return model, train, DataCollatorWithPadding(tok), 32


def smollm_data():
    import savings

    savings.SMOLLM.update(n_per_level=SMOLLM_SAMPLES // 3, n_eval_per_level=1)
    model, train, _, collate, _, _ = smollm_setup(0)
    return model, train, collate, 16


class StepTimer(TrainerCallback):
    """Wall time between consecutive optimizer steps (the first step, with its warm-up, is not counted)."""

    def __init__(self):
        self.last, self.intervals = None, []

    def on_step_end(self, args, state, control, **kw):
        now = time.perf_counter()
        if self.last is not None:
            self.intervals.append(now - self.last)
        self.last = now


def time_one(arm, model, train, collator, batch):
    args = TrainingArguments(output_dir="/tmp/geko_overhead", per_device_train_batch_size=batch, num_train_epochs=1,
                             learning_rate=1e-5, bf16=BF16, use_cpu=True, report_to=[], save_strategy="no",
                             logging_strategy="no", disable_tqdm=True, seed=0)
    timer = StepTimer()
    kw = dict(model=model, args=args, train_dataset=train, data_collator=collator, callbacks=[timer])
    trainer = Trainer(**kw) if arm == "stock" else GEKOTrainer(geko_config=GEKOConfig(log_bucket_stats=False), **kw)
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    return seconds / (trainer.state.global_step * batch), statistics.median(timer.intervals) / batch


def main():
    torch.set_num_threads(os.cpu_count() or 1)
    os.makedirs(RESULTS, exist_ok=True)
    results = {}
    for name, make in (("minilm", minilm_data), ("smollm", smollm_data)):
        model, train, collator, batch = make()
        times = {"stock": [], "geko": []}
        steps = {"stock": [], "geko": []}
        for arm in ("stock", "geko"):  # burn-in
            time_one(arm, model, train, collator, batch)
        for _ in range(REPEATS[name]):
            for arm in ("stock", "geko"):
                whole, step = time_one(arm, model, train, collator, batch)
                times[arm].append(whole)
                steps[arm].append(step)
        med = {arm: statistics.median(v) for arm, v in times.items()}
        med_step = {arm: statistics.median(v) for arm, v in steps.items()}
        results[name] = {"seconds_per_sample": times, "median": med, "ratio": med["geko"] / med["stock"],
                         "step_seconds_per_sample": steps, "median_step": med_step,
                         "step_ratio": med_step["geko"] / med_step["stock"], "samples": len(train)}
        print(f"[overhead] {name}: geko/stock per sample: steady-state steps {results[name]['step_ratio']:.3f} "
              f"({med_step['geko'] * 1e3:.1f} vs {med_step['stock'] * 1e3:.1f} ms), whole train() "
              f"{results[name]['ratio']:.3f} ({med['geko'] * 1e3:.1f} vs {med['stock'] * 1e3:.1f} ms)", flush=True)
    meta = {"machine": f"{platform.machine()} {os.cpu_count()} cores", "bf16": BF16, "repeats": REPEATS,
            "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
    with open(os.path.join(RESULTS, "overhead.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    with open(os.path.join(RESULTS, "overhead.md"), "w") as f:
        f.write(f"{meta['machine']}, bf16 autocast {BF16}, median of {REPEATS} alternating runs per workload after a burn-in. "
                "Steady state: median interval between optimizer steps; whole run: train() wall time.\n\n"
                "| workload | samples | stock ms/sample (steps) | GEKO ms/sample (steps) | GEKO / stock (steps) "
                "| GEKO / stock (whole train()) |\n|---|---|---|---|---|---|\n")
        for name, r in results.items():
            f.write(f"| {name} | {r['samples']} | {r['median_step']['stock'] * 1e3:.2f} | "
                    f"{r['median_step']['geko'] * 1e3:.2f} | {r['step_ratio']:.3f} | {r['ratio']:.3f} |\n")


if __name__ == "__main__":
    main()
