"""Likely label errors on `minilm_noisy`: GEKO's suspect ranking and the data map's label-issue ranking next to
cleanlab's (issue 14, item 7).

    pip install -e ".[bench]"                          # cleanlab (or: bash scripts/setup.sh dev,bench)
    python benchmarks/label_errors.py --seeds 0 1 2    # about 6 min a seed for cleanlab, 5 for the data map, 2 cores
    python benchmarks/label_errors.py --report-only    # rewrite the .md from the .json
    python benchmarks/label_errors.py --quick          # 256 reviews, seed 0: an end-to-end check (label_errors_quick.*)

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
- The data map: one run of the workload's recipe through GEKOTrainer(..., observe_only=True) (it trains as the stock
  Trainer does and records the map), per seed; scored are `trainer.geko.label_issues()`'s order (`label_issue_rank`:
  lowest mean margin over every observation first, AUM on probabilities), the map's lowest mean confidence
  (Cartography's hard-to-learn corner) and, from the same run's state, the suspect ranking above. In-sample, no
  extra compute over the stock training run.

cleanlab is optional: without it (`ModuleNotFoundError`) its part is skipped with a one-line note.
Writes benchmarks/results/label_errors.{json,md} (--quick: label_errors_quick.{json,md}).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from savings import RESULTS  # noqa: E402
from tradeoff import QUICK, WORKLOADS, make_setup, noise_ids  # noqa: E402

from geko_hf.core.label_issues import label_issue_ranking, precision_at_k, suspect_ranking  # noqa: E402

WORKLOAD = "minilm_noisy"
FOLDS = 2
SEEDS = [0, 1, 2]
BASE = os.path.join(RESULTS, "label_errors")
QUICK_BASE = os.path.join(RESULTS, "label_errors_quick")  # --quick: tradeoff.py's QUICK data (256 reviews), seed 0
HAS_CLEANLAB = importlib.util.find_spec("cleanlab") is not None


def training_args(c, seed, name):
    """The workload's recipe (as tradeoff.py's arms: batch, lr, warmup, epochs), the stock Trainer's defaults else."""
    from transformers import TrainingArguments

    return TrainingArguments(output_dir=f"/tmp/geko_bench/label_errors/{seed}_{name}", report_to=[],
                             per_device_train_batch_size=c["batch"], per_device_eval_batch_size=64,
                             num_train_epochs=c["epochs"], learning_rate=c["lr"], warmup_steps=c["warmup"],
                             save_strategy="no", logging_strategy="no", seed=seed, use_cpu=True, disable_tqdm=True)


def out_of_sample_probs(c, seed, noisy):
    """Each training row's class probabilities from the fold model that did not train on it."""
    from transformers import Trainer

    _, train, _, collator, _, c = make_setup(c, seed, noisy)
    order = np.random.default_rng(seed).permutation(len(train))
    probs = np.zeros((len(train), 2))
    for fold in range(FOLDS):
        held = np.sort(order[fold::FOLDS])
        fit = np.setdiff1d(np.arange(len(train)), held)
        model, *_ = make_setup(c, seed, [])  # a fresh model (same head init as the seed's arms)
        trainer = Trainer(model=model, args=training_args(c, seed, fold), train_dataset=train.select(fit),
                          data_collator=collator)
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


def data_map_seed(c, seed, noisy):
    """One observe-only run (the stock Trainer's training, the data map recorded) and its rankings' precision at k."""
    from geko_hf import GEKOTrainer

    t0 = time.perf_counter()
    model, train, _, collator, _, c = make_setup(c, seed, noisy)
    trainer = GEKOTrainer(model=model, args=training_args(c, seed, "observe"), train_dataset=train,
                          data_collator=collator, observe_only=True)
    trainer.train()
    issues = trainer.geko.label_issues()  # the data map's rows, label_issue_rank 1, 2, ...
    ranking = np.asarray(issues["sample_id"], dtype=np.int64)
    tracker = trainer.geko.tracker
    _, expected = label_issue_ranking(tracker.data_map.statistics())
    assert np.array_equal(ranking, expected), "label_issues() must be core.label_issues.label_issue_ranking's order"
    table = trainer.geko.data_map()
    confidence = np.asarray(table["confidence"], dtype=np.float64)
    observed = np.flatnonzero(~np.isnan(confidence))
    by_confidence = observed[np.argsort(confidence[observed], kind="stable")]  # lowest mean p(label) first
    state = tracker.state.state_dict()
    hard = np.flatnonzero(np.asarray(table["region"]) == "hard-to-learn")  # Cartography's corner, as a flagged set
    return {"seed": seed, "k": len(noisy), "ranked": int(len(ranking)),
            "label_issue_rank_precision_at_k": precision_at_k(ranking, noisy),
            "confidence_precision_at_k": precision_at_k(by_confidence, noisy),
            "suspect_precision_at_k": precision_at_k(suspect_ranking(state), noisy) if state["margin_sum"].any()
            else None,
            "hard_to_learn": int(len(hard)),
            "hard_to_learn_precision": float(np.isin(hard, noisy).mean()) if len(hard) else None,
            "seconds": time.perf_counter() - t0}


def geko_rows(workload_file=f"tradeoff_{WORKLOAD}.json"):
    """Suspect precision of every GEKO arm of the tradeoff benchmark that recorded one, per seed."""
    path = os.path.join(RESULTS, workload_file)
    if not os.path.exists(path):
        return {}
    out = {}
    for r in json.load(open(path))["runs"]:
        if r.get("suspect_precision") is not None:
            out.setdefault(r["arm"], {})[r["seed"]] = r["suspect_precision"]
    return out


def write(base, runs, maps, meta, tradeoff_file):
    geko = geko_rows(tradeoff_file)
    json.dump({"meta": meta, "cleanlab": runs, "data_map": maps, "geko": geko}, open(base + ".json", "w"), indent=1)
    seeds = sorted({r["seed"] for r in runs} | {r["seed"] for r in maps})
    k = (runs or maps)[0]["k"] if runs or maps else 600

    def cell(values):
        v = [x for x in values if x is not None]
        return f"{np.mean(v):.3f} ({', '.join(f'{x:.3f}' for x in v)})" if v else "-"

    command = f"python benchmarks/label_errors.py{' --quick' if meta.get('quick') else ''}"
    lines = [f"# Likely label errors on {WORKLOAD} (`{command}`)", "",
             f"Precision at k = {k} (the flipped training labels), mean (per seed); seeds {seeds}. {meta['note']}", "",
             "| method | precision at k | flagged set |", "|---|---|---|"]
    if runs:
        lines.append(f"| cleanlab `find_label_issues`, {FOLDS}-fold out-of-sample probabilities | "
                     f"{cell([r['self_confidence_precision_at_k'] for r in runs])} (self-confidence ranking) | "
                     f"{cell([r['flagged_precision'] for r in runs])} precision, "
                     f"{np.mean([r['flagged'] for r in runs]):.0f} flagged |")
    else:
        lines.append("| cleanlab | not run (cleanlab not installed) | - |")
    if maps:
        lines += [f"| data map `label_issue_rank` (`trainer.geko.label_issues()`), observe-only run (in-sample, no "
                  f"extra compute) | {cell([r['label_issue_rank_precision_at_k'] for r in maps])} | - |",
                  f"| data map, lowest mean confidence (Cartography), same run | "
                  f"{cell([r['confidence_precision_at_k'] for r in maps])} | "
                  f"{cell([r['hard_to_learn_precision'] for r in maps])} precision, "
                  f"{np.mean([r['hard_to_learn'] for r in maps]):.0f} in the hard-to-learn region |",
                  f"| GEKO's suspect ranking from the same observe-only run's state | "
                  f"{cell([r['suspect_precision_at_k'] for r in maps])} | - |"]
    for arm, by_seed in geko.items():
        lines.append(f"| GEKO's suspect ranking from the `{arm}` run's records (in-sample, no extra compute) | "
                     f"{cell([by_seed.get(s) for s in seeds] or list(by_seed.values()))} | - |")
    noise = WORKLOADS[WORKLOAD]["noise"]
    lines += ["", f"Chance: {noise:.2f} ({noise:.0%} of the labels flipped)."
              + (f" cleanlab's fold models reach {cell([r['oos_accuracy_vs_given'] for r in runs])} agreement with "
                 "the given (noisy) labels out of sample." if runs else "")]
    open(base + ".md", "w").write("\n".join(lines) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=None, help=f"default {SEEDS} ({SEEDS[:1]} with --quick)")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--quick", action="store_true", help="tradeoff.py's --quick data (256 reviews), seed 0: an "
                   "end-to-end check (results in label_errors_quick.*)")
    a = p.parse_args()
    seeds = a.seeds or (SEEDS[:1] if a.quick else SEEDS)
    base, tag = (QUICK_BASE, "_quick") if a.quick else (BASE, "")
    saved = json.load(open(base + ".json")) if os.path.exists(base + ".json") else {"cleanlab": [], "meta": None}
    runs, maps = saved["cleanlab"], saved.get("data_map", [])
    meta = saved["meta"] or {"workload": WORKLOAD, "folds": FOLDS, "torch": torch.__version__, "quick": a.quick,
                             "note": f"cleanlab 2.x, default filter; GEKO from tradeoff_{WORKLOAD}{tag}.json."}
    if not a.report_only:
        c = dict(WORKLOADS[WORKLOAD], **(QUICK if a.quick else {}))
        noisy = noise_ids(c, os.path.join(RESULTS, f"noise_ids_{WORKLOAD}{tag}.json"))  # tradeoff.py's flipped rows
        if not HAS_CLEANLAB:
            print("[label_errors] cleanlab is not installed (pip install cleanlab): its ranking is skipped", flush=True)
        for seed in seeds:
            if HAS_CLEANLAB and not any(r["seed"] == seed for r in runs):
                runs.append(run_seed(c, seed, noisy))
                print(f"[label_errors] seed {seed} cleanlab: {runs[-1]}", flush=True)
                write(base, runs, maps, meta, f"tradeoff_{WORKLOAD}{tag}.json")
            if not any(r["seed"] == seed for r in maps):
                maps.append(data_map_seed(c, seed, noisy))
                print(f"[label_errors] seed {seed} data map: {maps[-1]}", flush=True)
                write(base, runs, maps, meta, f"tradeoff_{WORKLOAD}{tag}.json")
    write(base, runs, maps, meta, f"tradeoff_{WORKLOAD}{tag}.json")
    print(open(base + ".md").read())
    last = [r["label_issue_rank_precision_at_k"] for r in maps]
    clean = [r["self_confidence_precision_at_k"] for r in runs]
    print(f"[label_errors] precision at k: data map label_issue_rank "
          f"{np.mean(last) if last else float('nan'):.3f}, cleanlab "
          + (f"{np.mean(clean):.3f}" if clean else "not run") + f" ({len(set(r['seed'] for r in maps))} seeds)")


if __name__ == "__main__":
    main()
