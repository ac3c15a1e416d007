"""One PNG of a GEKO run: bucket shares per epoch, loss and held-out accuracy, compute vs full data.

Inputs are plain data, so the same function draws a live run (`geko-hf train`) and any saved folder
(`geko-hf report`): the tracker's history rows (one per epoch: FREEZE/LIGHT/FOCUS/HARD counts,
sample_passes, pruned) and, optionally, HF's `log_history` (trainer_state.json) for loss and accuracy.
matplotlib is imported lazily (a bare Figure rendered by Agg: no display, no pyplot state), so that geko_hf
itself does not depend on it.
"""

from __future__ import annotations

import math

from ..core.buckets import BUCKET_NAMES

# FREEZE = skipped (calm blue), LIGHT = mastered, low weight (green), FOCUS = learning (amber), HARD = red.
BUCKET_COLORS = {"FREEZE": "#4c78a8", "LIGHT": "#59a14f", "FOCUS": "#f2a93b", "HARD": "#d6404e"}


def _figure(**kwargs):
    """A matplotlib Figure outside pyplot: no display needed, no global backend switched (a notebook's stays)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ModuleNotFoundError(
            "Plotting GEKO runs needs matplotlib, which is not installed: pip install 'geko_hf[plot]'"
        ) from e
    return Figure(**kwargs)


def _epoch_logs(log_history, key):
    """(epochs, values) of every log_history entry that has `key` and an epoch."""
    pts = [(float(e["epoch"]), float(e[key])) for e in log_history or [] if key in e and "epoch" in e
           and isinstance(e[key], (int, float)) and math.isfinite(float(e[key]))]
    return [p[0] for p in pts], [p[1] for p in pts]


def accuracy_key(log_history) -> str | None:
    """The held-out accuracy key in log_history ('eval_accuracy', or the first eval_*accuracy* key)."""
    keys = {k for e in log_history or [] for k in e}
    if "eval_accuracy" in keys:
        return "eval_accuracy"
    return next((k for k in sorted(keys) if k.startswith("eval_") and "acc" in k), None)


def plot_run(history, path, *, num_samples: int, log_history=None, title: str | None = None) -> str:
    """Draw the run into `path` (PNG); returns the path.

    history: the tracker's rows (`efficiency_report()["history"]`); num_samples: the training set size
    (the full-data reference is num_samples passes per epoch); log_history: `trainer.state.log_history`.
    Panels: bucket shares per partition | cumulative sample passes vs full data | loss | held-out accuracy.
    """
    fig = _figure(figsize=(13, 9), layout="constrained")
    (ax_b, ax_c), (ax_l, ax_a) = fig.subplots(2, 2)
    _bucket_panel(ax_b, history, num_samples)
    _compute_panel(ax_c, history, num_samples)
    n_epochs = _loss_panel(ax_l, history, log_history)
    _accuracy_panel(ax_a, log_history, n_epochs)
    fig.suptitle(title or "GEKO run", fontsize=14, fontweight="bold")
    fig.savefig(path, dpi=100)  # Agg, chosen by the .png extension
    return str(path)


def _bucket_panel(ax, history, num_samples):
    # Bar 0 is the start: every sample begins in FOCUS. Bar k is the partition after epoch k (it plans k+1).
    labels = ["start"] + [f"after epoch {r['epoch']}" for r in history]
    rows = [{"FREEZE": 0, "LIGHT": 0, "FOCUS": num_samples, "HARD": 0, "pruned": 0}] + list(history)
    x = list(range(len(rows)))
    bottom = [0.0] * len(rows)
    for name in BUCKET_NAMES:
        shares = [100.0 * r[name] / max(num_samples, 1) for r in rows]
        ax.bar(x, shares, bottom=bottom, color=BUCKET_COLORS[name], label=name, width=0.7, edgecolor="white")
        for i, sh in enumerate(shares):
            if sh >= 5:
                ax.text(x[i], bottom[i] + sh / 2, f"{sh:.0f}%", ha="center", va="center", fontsize=10,
                        color="white", fontweight="bold")
        bottom = [b + sh for b, sh in zip(bottom, shares)]
    pruned = [100.0 * r.get("pruned", 0) / max(num_samples, 1) for r in rows]
    if any(pruned):
        ax.bar(x, pruned, bottom=bottom, color="#bbbbbb", label="pruned", width=0.7, edgecolor="white")
    ax.set_xticks(x, labels)
    ax.set_ylabel("share of training samples (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Buckets (FREEZE: skipped; HARD: confidently wrong)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=5, fontsize=10, frameon=False)


def _compute_panel(ax, history, num_samples):
    epochs = [0] + [r["epoch"] for r in history]
    geko, full = [0], [0]
    for r in history:
        geko.append(geko[-1] + r["sample_passes"])
        full.append(full[-1] + num_samples)
    ax.plot(epochs, full, "o--", color="#888888", lw=1.5, label="full data (stock Trainer)")
    ax.plot(epochs, geko, "o-", color="#4c78a8", lw=2.2, label="GEKO")
    ax.fill_between(epochs, geko, full, color="#4c78a8", alpha=0.12)
    for e, g, f in zip(epochs[1:], geko[1:], full[1:]):
        ax.annotate(f"{g:,}", (e, g), textcoords="offset points", xytext=(0, -16), ha="center", fontsize=9,
                    color="#4c78a8")
    if history and full[-1]:
        saved = 1 - geko[-1] / full[-1]
        ax.text(0.03, 0.80, f"{100 * saved:.1f}% fewer sample passes\nthan {len(history)} full epochs",
                transform=ax.transAxes, fontsize=11, color="#4c78a8", fontweight="bold", va="top")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cumulative sample passes (forward + backward)")
    ax.set_xticks(epochs)
    ax.set_ylim(0, max(full[-1], geko[-1], 1) * 1.08)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=10)
    ax.set_title("Compute: samples trained vs full data")


def _loss_panel(ax, history, log_history) -> int:
    ep, loss = _epoch_logs(log_history, "loss")
    eep, eloss = _epoch_logs(log_history, "eval_loss")
    if ep:
        ax.plot(ep, loss, color="#555555", lw=1.2, alpha=0.85, label="training loss (logged steps)")
    if eep:
        ax.plot(eep, eloss, "o--", color="#1f77b4", lw=1.8, label="held-out loss (end of epoch)")
    n_epochs = max([r["epoch"] for r in history] + [math.ceil(max(ep + eep, default=0)), 1])
    _epoch_axis(ax, n_epochs)
    ax.set_ylabel("loss")
    ax.set_title("Loss")
    if ep or eep:
        ax.legend(loc="best", fontsize=10)
    else:
        _empty(ax, "no loss logged\n(no trainer_state.json here)")
    return n_epochs


def _accuracy_panel(ax, log_history, n_epochs):
    key = accuracy_key(log_history)
    aep, acc = _epoch_logs(log_history, key) if key else ([], [])
    _epoch_axis(ax, n_epochs)
    ax.set_title("Held-out accuracy")
    if not aep:
        _empty(ax, "no held-out accuracy logged")
        return
    pct = [100 * a for a in acc]
    ax.plot(aep, pct, "s-", color="#d6404e", lw=2.2, ms=7)
    for x, y in zip(aep, pct):
        ax.annotate(f"{y:.1f}%", (x, y), textcoords="offset points", xytext=(0, 9), ha="center", fontsize=10,
                    color="#d6404e", fontweight="bold")
    lo, hi = min(pct), max(pct)
    pad = max(8.0, (hi - lo) * 0.35)  # a span of 16+ points: small changes do not look dramatic
    ax.set_ylim(max(0.0, lo - pad), min(100.0, hi + pad))
    ax.set_ylabel(f"{key.removeprefix('eval_')} (%)")


def _epoch_axis(ax, n_epochs):
    ax.set_xlabel("epoch")
    ax.set_xlim(0, n_epochs + 0.2)  # room for the last point's label
    ax.set_xticks(range(0, n_epochs + 1))
    ax.grid(alpha=0.3)


def _empty(ax, text):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#888888", fontsize=11)
