"""A GEKO run as text: the efficiency report (passes and tokens actually trained vs the same epochs on full data),
the bucket table, the per-epoch history and the HARD samples; what `geko-hf train`, `sft` and `report` print.

Plain data in, strings out (numpy only, no torch or transformers), so a saved run folder reads back anywhere.
"""

from __future__ import annotations

import textwrap

import numpy as np

from ..core.buckets import BUCKET_NAMES, HARD
from .plot import accuracy_key

BAR = "=" * 64  # the frame of the command line's tables (the efficiency report has its own, wider)


def format_report(report: dict) -> str:
    full = report["full_data"]
    rows = [
        ("forward sample passes", report["forward_sample_passes"], full["forward_sample_passes"]),
        ("backward sample passes", report["backward_sample_passes"], full["backward_sample_passes"]),
        ("model forward calls", report["model_forward_calls"], full["model_forward_calls"]),
        ("supervised tokens", report["supervised_tokens"], full["supervised_tokens"]),
    ]
    bar = "=" * 72
    lines = [bar, "  GEKO efficiency report (counted, not estimated)", bar,
             f"  {'':26}{'GEKO':>12}{'full data':>12}{'saved':>10}"]
    for name, used, ref in rows:
        saved = 100.0 * (1 - used / ref) if ref else 0.0
        lines.append(f"  {name:26}{used:>12,}{ref:>12,}{saved:>9.1f}%")
    note = why_negative(report)
    if note:
        lines += textwrap.wrap(f"saved < 0: {note}", width=70, initial_indent="  ", subsequent_indent="    ")
    lines.append(f"  samples: {report['num_samples']:,}   epochs: {report['epochs']:g}   pruned: {report['pruned']:,}")
    skipped = report.get("observations_skipped", {})
    if any(skipped.values()):
        lines.append(f"  passes without an observation: {skipped['no_supervised_token']:,} with no supervised token, "
                     f"{skipped['non_finite']:,} with a non-finite loss (trained, not recorded)")
    lines.append("")
    lines.append(f"  {'epoch':>5} {'phase':>12} {'passes':>8} " + " ".join(f"{n:>7}" for n in BUCKET_NAMES))
    for r in report["history"]:
        lines.append(f"  {r['epoch']:>5} {r['phase']:>12} {r['sample_passes']:>8} "
                     + " ".join(f"{r[n]:>7}" for n in BUCKET_NAMES))
    lines.append("  (bucket counts are the partition at the END of each epoch, which plans the next one)")
    lines.append(bar)
    return "\n".join(lines)


def why_negative(report: dict) -> str:
    """Why a 'saved' figure is negative (GEKO trained more than the stock run), or '' when none is. Issue 34: run_clm
    showed "-0.8% saved" with no word: nothing froze, and each epoch's plan was topped up to whole steps."""
    if min(report.get(k, 0.0) for k in ("sample_passes_saved", "model_forward_calls_saved", "tokens_saved")) >= 0:
        return ""
    unit = report.get("samples_per_optimizer_step")
    steps = f"whole optimizer steps of {unit:,} samples" if unit else "whole optimizer steps"
    return (f"GEKO trained more than the full-data run. Its epochs end on {steps} (a plan is topped up with extra "
            "passes where the stock run's last step is partial or dropped), HARD samples may get several passes "
            "and passes differ in tokens; the saving comes from samples that FREEZE (now "
            f"{report['buckets']['FREEZE']:,}) and thinned LIGHT ones.")


# -- HARD samples: confidently wrong, often mislabelled ----------------------------------------------------
def hard_samples(state: dict, k: int) -> list:
    """Top-k live HARD samples (wrong, confidence above focus_confidence), most confident first.

    A confidently wrong sample after several epochs is often a mislabelled one: worth a look.
    """
    bucket = np.asarray(state["bucket"])
    live = ~np.asarray(state["pruned"], dtype=bool)
    ids = np.flatnonzero((bucket == HARD) & live)
    conf = np.asarray(state["confidence"], dtype=np.float64)
    ids = ids[np.argsort(-conf[ids], kind="stable")][: max(k, 0)]
    loss, seen = np.asarray(state["loss"]), np.asarray(state["times_seen"])
    return [{"id": int(i), "confidence": round(float(conf[i]), 4), "loss": round(float(loss[i]), 4),
             "times_seen": int(seen[i])} for i in ids]


def format_hard(rows, k, texts_hint=None) -> str:
    if not rows:
        lines = ["  HARD samples: none (no sample is wrong with confidence above focus_confidence)"]
    else:
        lines = [f"  Top {len(rows)} HARD samples (confidently wrong now, most confident first; for likely label "
                 "errors see --label-issues)"]
    for r in rows:
        head = f"  #{r['id']:<6} conf {r['confidence']:.3f}  loss {r['loss']:.3f}  seen {r['times_seen']}x"
        lines += _with_text(head, r)
    if rows and not ({"text", "prompt"} & set(rows[0])) and texts_hint:
        lines.append(f"  ({texts_hint})")
    return "\n".join([BAR] + lines + [BAR])


def format_suspects(rows) -> str:
    """Likely label errors (label_issues.suspect_samples): lowest margin averaged over training first."""
    if not rows:
        return "\n".join([BAR, "  Likely label errors: none (no sample was observed)", BAR])
    lines = [f"  Top {len(rows)} likely label errors (lowest mean margin p(label) - max other p first: the "
             "ranking benchmarks/label_issues.py measures)"]
    for r in rows:
        wrong = f"  wrong {r['wrong_streak']}x in a row" if r["wrong_streak"] else "  right now"
        head = (f"  #{r['id']:<6} mean margin {r['mean_margin']:+.3f}{wrong}"
                f"{'  stuck' if r['stuck'] else ''}  seen {r['times_seen']}x")
        lines += _with_text(head, r)
    return "\n".join([BAR] + lines + [BAR])


def _with_text(head: str, r: dict) -> list:
    """A sample's line, its label and a 150-character excerpt of its text (or prompt and answer)."""
    if "label" in r:
        head += f"  label: {r['label']}"
    lines = [head]
    for key in ("text", "prompt", "answer"):
        if key in r:
            text = " ".join(str(r[key]).split())
            tag = "" if key == "text" else f"{key}: "
            lines.append(f"          {tag}{text[:150] + ('...' if len(text) > 150 else '')}")
    return lines


# -- where the samples are now -----------------------------------------------------------------------------
def format_bucket_table(state: dict, config) -> str:
    """Where the samples are now: count, share and mean statistics per bucket."""
    bucket = np.asarray(state["bucket"])
    pruned = np.asarray(state["pruned"], dtype=bool)
    conf, loss = np.asarray(state["confidence"], np.float64), np.asarray(state["loss"], np.float64)
    q, seen = np.asarray(state["q"], np.float64), np.asarray(state["times_seen"], np.int64)
    n = len(bucket)
    meaning = {"FREEZE": "mastered, skipped", "LIGHT": "correct, low weight",
               "FOCUS": "wrong, unsure: learning", "HARD": "wrong, confident"}
    lines = [f"  {'bucket':<7}{'samples':>9}{'share':>8}{'mean conf':>11}{'mean loss':>11}{'mean Q':>8}"
             f"{'passes':>8}  meaning"]
    for code, name in enumerate(BUCKET_NAMES):
        m = (bucket == code) & ~pruned
        c = int(m.sum())
        stat = (lambda a: f"{a[m].mean():.3f}" if c else "-")  # noqa: E731
        lines.append(f"  {name:<7}{c:>9,}{100 * c / n:>7.1f}%{stat(conf):>11}{stat(loss):>11}{stat(q):>8}"
                     f"{(f'{seen[m].mean():.1f}' if c else '-'):>8}  {meaning[name]}")
    if pruned.any():
        lines.append(f"  {'pruned':<7}{int(pruned.sum()):>9,}{100 * pruned.mean():>7.1f}%")
    return "\n".join([BAR, "  Buckets now (these plan the next epoch)", BAR] + lines + [BAR])


# -- how the epochs went: GEKO's rows joined with HF's log_history -----------------------------------------
def format_history(history) -> str:
    lines = [f"  {'epoch':>5} {'passes':>8} {'train loss':>11} {'held-out loss':>14} {'accuracy':>9}"]
    for r in history:
        f = lambda v, p=4: "-" if v is None else f"{v:.{p}f}"  # noqa: E731
        acc = "-" if r.get("eval_accuracy") is None else f"{100 * r['eval_accuracy']:.1f}%"
        lines.append(f"  {r['epoch']:>5} {r['sample_passes']:>8,} {f(r.get('train_loss')):>11} "
                     f"{f(r.get('eval_loss')):>14} {acc:>9}")
    return "\n".join(["  History (loss and accuracy from trainer_state.json)"] + lines + [BAR])


def enrich_history(rows, log_history) -> list:
    """GEKO's per-epoch rows + the epoch's mean logged training loss and its held-out loss/accuracy."""
    acc_key = accuracy_key(log_history)
    out = []
    for r in rows:
        start = r["epoch"] - 1
        e = start + r.get("epoch_share", 1.0)  # where HF's epoch counter ended it: 2.5 for a half last epoch
        losses = [x["loss"] for x in log_history if "loss" in x and "epoch" in x and start < x["epoch"] <= e + 1e-6]
        evals = [x for x in log_history if "eval_loss" in x and abs(x.get("epoch", -1) - e) < 1e-3]
        row = dict(r)
        row["train_loss"] = float(np.mean(losses)) if losses else None
        row["eval_loss"] = float(evals[-1]["eval_loss"]) if evals else None
        row["eval_accuracy"] = float(evals[-1][acc_key]) if evals and acc_key in evals[-1] else None
        out.append(row)
    return out


def last_eval(state, args=None) -> dict:
    """The eval metrics of the model the run ends with, if logged: the final step's, or under load_best_model_at_end
    the best checkpoint's (the model HF loads back and saves). {}: evaluate it."""
    step = state.global_step
    if args is not None and args.load_best_model_at_end:
        step = getattr(state, "best_global_step", None)
    for entry in reversed(state.log_history):
        if any(k.startswith("eval_") for k in entry) and entry.get("step") == step:
            return dict(entry)
    return {}


# -- the data map ------------------------------------------------------------------------------------------
# how each region's examples are ordered: the most typical first
REGION_ORDER = {"easy-to-learn": ("confidence", True), "ambiguous": ("variability", True),
                "hard-to-learn": ("confidence", False)}


def region_shares(data_map) -> dict:
    """Each region's share of the samples observed so far (names with '-' as '_': metric keys)."""
    regions = data_map.regions()
    seen = max(int((regions != "").sum()), 1)
    return {name.replace("-", "_"): float((regions == name).sum()) / seen for name in REGION_ORDER}


def data_map_line(epoch: int, shares: dict) -> str:
    """The per-epoch line of an observe-only run: `[GEKO] Epoch 1 data map: easy-to-learn 38% | ambiguous ...`."""
    parts = [f"{name} {100 * shares[name.replace('-', '_')]:.0f}%" for name in REGION_ORDER]
    return f"[GEKO] Epoch {epoch} data map: " + " | ".join(parts)


def data_map_examples(columns: dict, k: int) -> dict:
    """The top-k samples of each region (easy: most confident; ambiguous: most variable; hard: least confident) and
    the top-k label issues, as rows {"id", "confidence", "variability", "correctness", "aum", ...}."""
    out = {}
    for region, (key, descending) in REGION_ORDER.items():
        ids = np.flatnonzero(columns["region"] == region)
        order = np.argsort(-columns[key][ids] if descending else columns[key][ids], kind="stable")
        out[region] = [_map_row(columns, i) for i in ids[order][:k]]
    ranked = np.flatnonzero(columns["label_issue_rank"] > 0)
    ranked = ranked[np.argsort(columns["label_issue_rank"][ranked])][:k]
    out["label issues"] = [_map_row(columns, i) for i in ranked]
    return out


def _map_row(columns: dict, i: int) -> dict:
    keys = ("confidence", "variability", "correctness", "aum", "forgetting", "observations")
    return {"id": int(i), **{key: float(columns[key][i]) for key in keys}}


def format_data_map(examples: dict, counts: dict) -> str:
    """Each region's share and its first examples with their text; the label issues likewise."""
    total = max(sum(counts.values()), 1)
    lines = ["  Data map (Swayamdipta et al., EMNLP 2020): " + ", ".join(
        f"{name} {counts[name]:,} ({100 * counts[name] / total:.0f}%)" for name in REGION_ORDER)]
    for name, rows in examples.items():
        lines.append(f"  -- {name}" + (" (lowest mean margin first)" if name == "label issues" else ""))
        for r in rows:
            head = (f"  #{r['id']:<6} conf {r['confidence']:.2f}  var {r['variability']:.2f}  correct "
                    f"{r['correctness']:.2f}  aum {r['aum']:+.2f}  forgot {int(r['forgetting'])}x")
            lines += _with_text(head, r)
    return "\n".join([BAR] + lines + [BAR])
