"""Is GEKO above the stock Trainer's compute/quality curve? Benchmarks v2 (issue 12), one workload per call.

    python benchmarks/tradeoff.py --workload minilm            # every arm, 3 seeds (about an hour on 2 cores)
    python benchmarks/tradeoff.py --workload minilm_noisy --quick   # every arm, 1 seed, tiny data (minutes)
    python benchmarks/tradeoff.py --workload minilm --report-only   # rewrite .md/.png from the .json

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
  infobatch               InfoBatch at its own design point (baselines.InfoBatchPaperTracker): prune half of the
                          below-mean-loss samples, weight the kept ones 2x, full data in epoch 1 and in the last
                          12.5% of training; no budget
  infobatch_budget        InfoBatch forced to GEKO's per-epoch budget (baselines.InfoBatchTracker)
  gekolib                 the original gekolib 0.3.1, its own trainer (`pip install --no-deps gekolib==0.3.1`;
                          skipped with a note when it is not installed)
  geko_seed               GEKOTrainer with gekolib's constants (preset "seed")
  geko_v2                 GEKOTrainer, preset "v2" (margin mastery with a streak, stuck samples drawn at 0.1,
                          frozen ones re-checked at 0.1, InfoBatch's full-data final phase)
  random_v2               a fresh random subset each epoch, of geko_v2's per-epoch size
  geko_b60, random_b60    GEKO with target_budget=0.6 (exactly 60% of the passes every epoch: compare with
                          curve_0.6), and a random subset of the same size; not in the default arms (--arms)
  geko_b60_nohard         geko_b60 with bucket weights 0 1 1: confidently wrong samples are not trained
  stock_order_b60         the stock Trainer's sample stream (permutation after permutation) in geko_b60's epochs,
                          through GEKO's machinery: a control for random_b60 (order) and for curve_0.6 (machinery)
  *_idorder               (results only) runs of an arm made before GEKO's fractional rounding drew its subsets in a
                          random order (it used id order: a fixed id pattern); each run records its code's `rev`
The non-stock arms train through savings.run_arm (GEKO's sampler; its LR schedule is stretched so that it too
decays fully at the run's real end).

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

TODO smollm_pool (not implemented yet: the three MiniLM workloads came first). What it needs:
- the pool: SmolLM2-135M-Instruct (savings.load_smollm2) SFT on >= 3 reasoning-gym families with short exact
  answers, chosen by MEASURING the base model's teacher-forced exact match on each candidate (unmeasured
  candidates: chain_sum with 1-digit terms or word_sequence_reversal as "known", leg_counting, letter_counting
  or gcd as "to learn"), encoded as
  savings.smollm_setup does (chat template, loss on the answer only) and passed to run_arm as `setup=`;
- ~20% of the training answers corrupted (another problem's answer of the same family), ids drawn from
  NOISE_SEED and stored like the noise ids; >= 400 clean held-out problems;
- a per-family metric: a metric function returning {"metric": all, "<family>": ...} and an `extra` hook
  reading the last evaluation from trainer.state.log_history into the run's result;
- sizing: ~0.34 s per sample pass on 2 cores in bf16 (savings_smollm), more in fp32: 300 problems x 3
  epochs is ~5-10 min per full run, 1-2 hours per seed for every arm.

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
from baselines import InfoBatchPaperTracker, InfoBatchTracker, RandomTracker, StockOrderTracker, with_budget  # noqa: E402
from savings import BF16, MINILM, RESULTS, minilm_setup, run_arm  # noqa: E402

from geko_hf.suspects import precision_at_k, suspect_ranking  # noqa: E402

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
BUDGET_FROM = {"random": "geko", "infobatch_budget": "geko", "random_v2": "geko_v2",  # arm -> whose per-epoch passes
               "random_b60": "geko_b60", "stock_order_b60": "geko_b60"}
ARMS = {"minilm": SHORT_ARMS, "minilm_noisy": SHORT_ARMS,
        "minilm_long": ["geko", "random", "infobatch", "infobatch_budget", "geko_v2", "random_v2"]}
SEEDS = [0, 1, 2]  # head init and data order
EVAL_EACH_EPOCH = False  # only the final metric is compared: one evaluation per run
LEVEL = 0.95  # of the paired-seed t-interval


def curve_name(f):
    return f"curve_{f:.1f}"


def is_curve(arm):
    return arm.startswith("curve_")


def fraction(arm):
    return float(arm.split("_", 1)[1])


FULL = curve_name(1.0)


# -- data ----------------------------------------------------------------------------------------------------
def noise_ids(c, path):
    """The flipped training rows: drawn from NOISE_SEED; a stored file for the same data wins (same ids later)."""
    if not c.get("noise"):
        return []
    ids = sorted(np.random.default_rng(NOISE_SEED).choice(c["n_train"], round(c["noise"] * c["n_train"]),
                                                          replace=False).tolist())
    record = {"noise_seed": NOISE_SEED, "fraction": c["noise"], "n_train": c["n_train"], "n_eval": c["n_eval"],
              "rows": "training rows of geko_hf.assets.load_rotten_tomatoes(n_train, n_eval, seed=0)", "ids": ids}
    if os.path.exists(path):
        saved = json.load(open(path))
        if saved["n_train"] == c["n_train"] and saved["fraction"] == c["noise"]:
            if saved["ids"] != ids:
                print(f"[tradeoff] note: using the stored noise ids of {path} (this numpy draws others)", flush=True)
            return saved["ids"]
    with open(path, "w") as f:
        json.dump(record, f)
    return ids


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
        cb = getattr(trainer, "_geko_callback", None)
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


# -- one arm -------------------------------------------------------------------------------------------------
def run_one(workload, c, arm, seed, noisy, budget):
    kw = dict(setup=make_setup(c, seed, noisy), eval_epochs=EVAL_EACH_EPOCH, extra=noisy_share(noisy))
    if is_curve(arm):
        kw.update(stock=True, epochs=fraction(arm) * c["epochs"])
    elif arm == "infobatch":
        kw.update(tracker=InfoBatchPaperTracker)
    elif arm == "infobatch_budget":
        kw.update(tracker=with_budget(InfoBatchTracker, budget))
    elif arm in ("random_v2", "random_b60"):
        kw.update(tracker=with_budget(RandomTracker, budget))
    elif arm == "stock_order_b60":
        kw.update(tracker=with_budget(StockOrderTracker, budget))
    t0, cpu0 = time.perf_counter(), time.process_time()
    out = run_arm(workload, arm, seed, budget=budget, **kw)  # random: savings' RandomTracker at `budget`
    out["wall_seconds"] = time.perf_counter() - t0  # set-up, training and evaluation
    out["cpu_seconds"] = time.process_time() - cpu0  # the same, CPU time of all threads (for estimates)
    out["rev"] = code_revision()  # results of different algorithm versions must not be mixed up unnoticed
    return out


def code_revision():
    """The git commit the run's code is at ("+modified" when src/ or benchmarks/ differ from it); None outside git."""
    import subprocess

    def git(*args):
        return subprocess.run(["git", *args], cwd=os.path.dirname(os.path.abspath(__file__)), capture_output=True,
                              text=True).stdout.strip()
    try:
        rev = git("rev-parse", "--short=10", "HEAD")
        return (rev + "+modified" if git("status", "--porcelain", "--", "../src", ".") else rev) or None
    except OSError:
        return None


def warm_up(workload, c):
    """A few untimed steps first: a process's first run pays one-off costs that would inflate its time ratios."""
    run_one(workload, dict(c, n_train=4 * c["batch"], n_eval=c["batch"], epochs=1), FULL, 0, [], None)


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
    rows, points = {}, {}  # points: seed -> (passes, metric) of its curve runs
    for r in runs:
        if r["seed"] not in full:
            continue
        d = rows.setdefault(r["arm"], {"seeds": [], "metric": [], **{k: [] for k in ratio_keys}, "noisy": []})
        d["seeds"].append(r["seed"])
        d["metric"].append(r["metric"])
        for k, key in ratio_keys.items():
            d[k].append(r[key] / full[r["seed"]][key])
        if "noisy_pass_share" in r:
            d["noisy"].append(r["noisy_pass_share"])
        if is_curve(r["arm"]):
            points.setdefault(r["seed"], []).append((d["passes"][-1], r["metric"]))
    seed_curves = {s: monotone(p) for s, p in points.items()}
    on_curve = sorted((a for a in rows if is_curve(a)), key=fraction)
    mean_curve = monotone([(np.mean(rows[a]["passes"]), np.mean(rows[a]["metric"])) for a in on_curve])
    out = {}
    order = on_curve + [a for a in SHORT_ARMS if a in rows] + [a for a in rows if a not in on_curve + SHORT_ARMS]
    for arm in order:
        d = rows[arm]
        s = {k: (float(np.mean(v)), float(np.std(v))) for k, v in d.items() if k not in ("seeds", "noisy")}
        s |= {"n": len(d["metric"]), "seeds": d["seeds"]}
        if d["noisy"]:
            s["noisy_pass_share"] = (float(np.mean(d["noisy"])), float(np.std(d["noisy"])))
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


def markdown(summary, meta):
    c = meta["config"]
    noisy = bool(meta.get("noise_ids"))
    lines = [f"Workload `{meta['workload']}`{' (--quick)' if meta['quick'] else ''}: MiniLM-L6 on Rotten Tomatoes, "
             f"{c['n_train']} training reviews, {c['n_eval']} held out, {c['epochs']} epochs, batch {c['batch']}, "
             f"lr {c['lr']}, warmup {c['warmup']} steps"
             + (f"; {len(meta['noise_ids'])} training labels flipped ({c['noise']:.0%}, noise seed "
                f"{meta['noise_seed']}, ids in the JSON); held-out labels clean" if noisy else "") + ".",
             f"Seeds {meta['seeds']}; {meta['machine']}; bf16 autocast: {meta['bf16']}; {meta['date']}.",
             "Ratios are to the full stock run (curve_1.0) of the same seed; mean ± std over seeds. Every trained "
             "sample pass is one forward and one backward (fwd = bwd).",
             *([f"**Train times are not valid here**: {meta['timing_note']}"] if meta.get("timing_note") else []), "",
             "Stock tradeoff curve (transformers.Trainer, full data, LR decayed to 0 within each budget):", "",
             "| run | n | epochs | sample passes | held-out accuracy | train time |", "|---|---|---|---|---|---|"]
    for arm, s in summary.items():
        if is_curve(arm):
            lines.append(f"| {arm} | {s['n']} | {fraction(arm) * c['epochs']:g} | {s['passes'][0]:.3f} | "
                         f"{s['metric'][0]:.4f} ± {s['metric'][1]:.4f} | {s['time'][0]:.3f} |")
    head = ["arm", "n", "held-out accuracy", "sample passes", "forward calls", "tokens", "train time",
            "speed-up at equal quality", "gain at equal compute, points [95% CI]", "per-seed speed-up"]
    if noisy:
        head.append("passes on flipped labels")
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
    lines += ["", "Speed-up: the curve's passes at the arm's mean accuracy / the arm's mean passes (mean curve). Gain: "
              "per seed, the arm's accuracy minus that seed's curve at the arm's passes; mean and "
              f"{LEVEL:.0%} t-interval over the seeds.", ""]
    lines += [f"- {arm}: {position(s)}" for arm, s in summary.items() if not is_curve(arm)]
    if noisy:
        lines += ["", f"Flipped labels are {c['noise']:.0%} of the training rows, so a stock run spends that share of "
                      "its passes on them; the last column is each arm's share (GEKO machinery arms only)."]
    return "\n".join(lines) + "\n"


def plot(summary, mean_curve, path, meta):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5.5))
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
                    color=plt.get_cmap("tab10")(i % 10), label=f"{arm}: {s['speedup_text']}, gain {gain_text(s)}")
        ax.annotate(arm, (s["passes"][0], s["metric"][0]), xytext=(4, 4 + 9 * (i % 3)), textcoords="offset points",
                    fontsize=7, color=plt.get_cmap("tab10")(i % 10))
    ax.set(xlabel="sample passes / full stock run (same seed)", ylabel="held-out accuracy",
           title=f"{meta['workload']}{' (quick)' if meta['quick'] else ''}: held-out accuracy vs compute, "
                 f"seeds {meta['seeds']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    p.add_argument("--quick", action="store_true", help="every arm on one seed, shrunken data (minutes)")
    p.add_argument("--resume", action="store_true", help="keep the (arm, seed) runs already in the results file")
    p.add_argument("--report-only", action="store_true", help="rewrite the .md/.png from the .json; train nothing")
    p.add_argument("--shared-machine", default=None, metavar="WHY",
                   help="record that other jobs shared the cores (the train-time column is then marked invalid)")
    a = p.parse_args()
    tag = "_quick" if a.quick else ""
    base = os.path.join(RESULTS, f"tradeoff_{a.workload}{tag}")
    if a.report_only:
        saved = json.load(open(base + ".json"))
        if a.shared_machine:
            saved["meta"]["timing_note"] = a.shared_machine
        print(summary_line(a.workload, write_results(base, saved["runs"], saved["meta"])))
        return
    c = dict(WORKLOADS[a.workload], **(QUICK if a.quick else {}))
    seeds = a.seeds or (SEEDS[:1] if a.quick else SEEDS)
    arms = a.arms or [curve_name(f) for f in CURVES.get(a.workload, CURVE)] + ARMS[a.workload]
    if FULL not in arms:
        arms = [FULL, *arms]  # every ratio is to it
    if "gekolib" in arms and importlib.util.find_spec("geko") is None:
        print("[tradeoff] note: skipping the gekolib arm: gekolib is not installed "
              "(`pip install --no-deps gekolib==0.3.1`, it needs only torch and tqdm)", flush=True)
        arms.remove("gekolib")
    torch.set_num_threads(int(os.environ.get("GEKO_BENCH_THREADS", os.cpu_count() or 1)))
    os.makedirs(RESULTS, exist_ok=True)
    noisy = noise_ids(c, os.path.join(RESULTS, f"noise_ids_{a.workload}{tag}.json"))
    meta = {"workload": a.workload, "quick": a.quick, "seeds": seeds, "arms": arms, "config": c,
            "noise_seed": NOISE_SEED, "noise_ids": noisy, "bf16": BF16, "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}",
            **({"timing_note": a.shared_machine} if a.shared_machine else {})}
    runs = []
    if a.resume and os.path.exists(base + ".json"):
        saved = json.load(open(base + ".json"))
        runs = saved["runs"]
        meta["seeds"] = sorted(set(saved["meta"]["seeds"]) | set(seeds))
        meta["arms"] = saved["meta"]["arms"] + [x for x in arms if x not in saved["meta"]["arms"]]
    meta["curve_fractions"] = sorted(fraction(x) for x in meta["arms"] if is_curve(x))
    done = {(r["arm"], r["seed"]) for r in runs}
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
            budget = next((r["per_epoch_passes"] for r in runs
                           if r["arm"] == BUDGET_FROM.get(arm) and r["seed"] == seed), None)
            runs.append(run_one(a.workload, c, arm, seed, noisy, budget))
            write_results(base, runs, meta)  # after every run: a cut-short benchmark still leaves its numbers
    print(summary_line(a.workload, write_results(base, runs, meta)), flush=True)


if __name__ == "__main__":
    main()
