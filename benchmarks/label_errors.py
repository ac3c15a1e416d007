"""Likely label errors on `minilm_noisy`: GEKO's suspect ranking next to cleanlab's (issue 14, item 7).

    pip install -e ".[bench]"                          # cleanlab (or: bash scripts/setup.sh dev,bench)
    python benchmarks/label_errors.py --seeds 0 1 2    # about 6 min a seed on 2 cores
    python benchmarks/label_errors.py --report-only    # rewrite the .md from the .json

The data is tradeoff.py's `minilm_noisy` (2,000 Rotten Tomatoes reviews, 30% of the training labels flipped: the
stored ids of results/noise_ids_minilm_noisy.json). Both methods are scored by precision at k = the number of
flipped labels (600): the share of flipped ids among the k samples ranked most likely wrong.

- cleanlab (Northcutt et al., "Confident Learning", JAIR 2021) needs OUT-OF-SAMPLE predicted probabilities: here
  2-fold cross-validation with the workload's own recipe (MiniLM-L6, 3 epochs, batch 32, lr 5e-5, the stock
  Trainer), each fold's model predicting the other half. Reported: `find_label_issues` (its default filter) as a
  flagged set (its size and precision), and its self-confidence ranking (p(given label), lowest first) at k.
  Two folds, not cleanlab's suggested five: each model sees 1,000 reviews, so its probabilities are weaker than
  a 5-fold run's (a cost of 2 trainings instead of 5 per seed).
- GEKO: `trainer.get_suspect_samples()`'s ranking (geko_hf.core.label_issues: wrong now, lowest mean margin first), read
  from the GEKO arms of results/tradeoff_minilm_noisy.json (`suspect_precision`: in-sample, a by-product of the
  training run itself, no extra compute).

Writes benchmarks/results/label_errors.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from savings import RESULTS  # noqa: E402
from tradeoff import WORKLOADS, make_setup, noise_ids  # noqa: E402

from geko_hf.core.label_issues import precision_at_k  # noqa: E402

WORKLOAD = "minilm_noisy"
FOLDS = 2
BASE = os.path.join(RESULTS, "label_errors")


def out_of_sample_probs(c, seed, noisy):
    """Each training row's class probabilities from the fold model that did not train on it."""
    from transformers import Trainer, TrainingArguments

    _, train, _, collator, _, c = make_setup(c, seed, noisy)
    order = np.random.default_rng(seed).permutation(len(train))
    probs = np.zeros((len(train), 2))
    for fold in range(FOLDS):
        held = np.sort(order[fold::FOLDS])
        fit = np.setdiff1d(np.arange(len(train)), held)
        model, *_ = make_setup(c, seed, [])  # a fresh model (same head init as the seed's arms)
        args = TrainingArguments(output_dir=f"/tmp/geko_bench/label_errors/{seed}_{fold}", report_to=[],
                                 per_device_train_batch_size=c["batch"], per_device_eval_batch_size=64,
                                 num_train_epochs=c["epochs"], learning_rate=c["lr"], warmup_steps=c["warmup"],
                                 save_strategy="no", logging_strategy="no", seed=seed, use_cpu=True,
                                 disable_tqdm=True)
        trainer = Trainer(model=model, args=args, train_dataset=train.select(fit), data_collator=collator)
        trainer.train()
        logits = trainer.predict(train.select(held)).predictions
        probs[held] = torch.softmax(torch.as_tensor(logits, dtype=torch.float64), dim=-1).numpy()
    return np.asarray(train["label"]), probs


def run_seed(c, seed, noisy):
    from cleanlab.filter import find_label_issues

    t0 = time.perf_counter()
    labels, probs = out_of_sample_probs(c, seed, noisy)
    flagged = find_label_issues(labels, probs, return_indices_ranked_by="self_confidence")
    by_confidence = np.argsort(probs[np.arange(len(labels)), labels], kind="stable")  # p(given label), lowest first
    return {"seed": seed, "k": len(noisy), "flagged": int(len(flagged)),
            "flagged_precision": float(np.isin(flagged, noisy).mean()) if len(flagged) else None,
            "self_confidence_precision_at_k": precision_at_k(by_confidence, noisy),
            "oos_accuracy_vs_given": float((probs.argmax(1) == labels).mean()),
            "seconds": time.perf_counter() - t0}


def geko_rows():
    """Suspect precision of every GEKO arm of the tradeoff benchmark that recorded one, per seed."""
    path = os.path.join(RESULTS, f"tradeoff_{WORKLOAD}.json")
    if not os.path.exists(path):
        return {}
    out = {}
    for r in json.load(open(path))["runs"]:
        if r.get("suspect_precision") is not None:
            out.setdefault(r["arm"], {})[r["seed"]] = r["suspect_precision"]
    return out


def write(runs, meta):
    json.dump({"meta": meta, "cleanlab": runs, "geko": geko_rows()}, open(BASE + ".json", "w"), indent=1)
    seeds = sorted(r["seed"] for r in runs)

    def cell(values):
        v = [x for x in values if x is not None]
        return f"{np.mean(v):.3f} ({', '.join(f'{x:.3f}' for x in v)})" if v else "-"

    lines = [f"# Likely label errors on {WORKLOAD} (`python benchmarks/label_errors.py`)", "",
             f"Precision at k = {runs[0]['k'] if runs else 600} (the flipped training labels), mean (per seed); "
             f"seeds {seeds}. {meta['note']}", "",
             "| method | precision at k | flagged set |", "|---|---|---|",
             f"| cleanlab `find_label_issues`, {FOLDS}-fold out-of-sample probabilities | "
             f"{cell([r['self_confidence_precision_at_k'] for r in runs])} (self-confidence ranking) | "
             f"{cell([r['flagged_precision'] for r in runs])} precision, "
             f"{np.mean([r['flagged'] for r in runs]):.0f} flagged |"]
    for arm, by_seed in geko_rows().items():
        lines.append(f"| GEKO's suspect ranking from the `{arm}` run's records (in-sample, no extra compute) | "
                     f"{cell([by_seed.get(s) for s in seeds] or list(by_seed.values()))} | - |")
    lines += ["", f"Chance: {0.3:.2f} (30% of the labels flipped). cleanlab's fold models reach "
              f"{cell([r['oos_accuracy_vs_given'] for r in runs])} agreement with the given (noisy) labels "
              "out of sample."]
    open(BASE + ".md", "w").write("\n".join(lines) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--report-only", action="store_true")
    a = p.parse_args()
    saved = json.load(open(BASE + ".json")) if os.path.exists(BASE + ".json") else {"cleanlab": [], "meta": None}
    runs = saved["cleanlab"]
    meta = saved["meta"] or {"workload": WORKLOAD, "folds": FOLDS, "torch": torch.__version__,
                             "note": "cleanlab 2.x, default filter; GEKO from tradeoff_minilm_noisy.json."}
    if not a.report_only:
        c = WORKLOADS[WORKLOAD]
        noisy = noise_ids(c, os.path.join(RESULTS, f"noise_ids_{WORKLOAD}.json"))
        for seed in a.seeds:
            if any(r["seed"] == seed for r in runs):
                continue
            runs.append(run_seed(c, seed, noisy))
            print(f"[label_errors] seed {seed}: {runs[-1]}", flush=True)
            write(runs, meta)
    write(runs, meta)
    print(open(BASE + ".md").read())


if __name__ == "__main__":
    main()
