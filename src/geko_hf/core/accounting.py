"""Compute accounting: what a run trained against what the stock Trainer would have trained for the same run
(every sample once an epoch, HF's own step rounding, a fractional last epoch, max_steps, drop_last), counted from
the tracker's totals, never estimated from bucket shares. Pure numpy; functions of a `GEKOTracker`.
"""

from __future__ import annotations

import math

import numpy as np

from .buckets import counts


def reference_batches_per_epoch(tracker) -> int:
    """Micro-batches of one full-data epoch of the stock Trainer: the last one partial, or dropped (drop_last)."""
    if tracker.drop_last:
        return max(tracker.num_samples // tracker.batch_size, 1)
    return max(math.ceil(tracker.num_samples / tracker.batch_size), 1)


def stock_steps(tracker) -> tuple[int, int, int]:
    """(micro-batches per optimizer step, micro-batches per epoch, optimizer steps per epoch) of the stock
    Trainer: an epoch whose micro-batches do not divide by the accumulation ends on a short step (HF's
    num_update_steps_per_epoch rounds up), where GEKO's plans are whole steps."""
    accumulation = max(tracker.unit // tracker.batch_size, 1)
    batches = reference_batches_per_epoch(tracker)
    return accumulation, batches, -(-batches // accumulation)


def stock_epochs(tracker) -> list[int]:
    """Micro-batches of each epoch the stock Trainer runs for the same run: with fixed steps (max_steps), as
    many optimizer steps as GEKO trained; otherwise each epoch GEKO completed, a partial one (a fractional
    last epoch, a run stopped mid-epoch) at the same share of its optimizer steps, rounded up as HF rounds
    num_train_epochs=2.5 into max_steps."""
    accumulation, batches, steps_per_epoch = stock_steps(tracker)
    if tracker.fixed_steps:
        whole, rest = divmod(-(-tracker.totals["batches"] // accumulation), steps_per_epoch)
        return [batches] * whole + ([min(rest * accumulation, batches)] if rest else [])
    # rows from a checkpoint of geko_hf <= 0.3.0 have no epoch_share: their epochs were whole
    shares = [r.get("epoch_share", tracker.epoch_share(e)) for e, r in enumerate(tracker.history)] or [1.0]
    return [batches if s >= 1.0 else min(math.ceil(s * steps_per_epoch - 1e-9) * accumulation, batches)
            for s in shares]


def reference_epochs(tracker) -> float:
    """Epochs of full data the stock Trainer would have trained for the same run, as its state.epoch counts
    them (micro-batches / micro-batches per epoch): 2.6 for num_train_epochs=2.5 when the last epoch's steps
    round up to 6 of 10 micro-batches."""
    return sum(stock_epochs(tracker)) / reference_batches_per_epoch(tracker)


def full_data_reference(tracker) -> dict:
    """What the same run would have cost on full data with the stock Trainer (every sample once an epoch, or
    under drop_last the samples of its whole batches: the tokens then at the mean sample's count)."""
    per_epoch = reference_batches_per_epoch(tracker)
    passes_per_epoch = min(per_epoch * tracker.batch_size, tracker.num_samples)
    epochs = stock_epochs(tracker)
    passes = sum(min(b * tracker.batch_size, passes_per_epoch) for b in epochs)
    return {
        "epochs": sum(epochs) / per_epoch,
        "sample_passes": passes,
        "batches": sum(epochs),
        "tokens": int(round(tokens_per_epoch(tracker) * passes / tracker.num_samples)),
    }


def tokens_per_epoch(tracker) -> float:
    """Supervised tokens of one full-data epoch: each trained sample at its mean over ALL its passes (a pass with
    no supervised token counts 0: an MLM line that drew no mask, a prompt cut off), an untrained one at the mean
    of the trained. So a run that trained every sample equally often has exactly its own token count as reference
    (issue 34: 6.1% "saved" with 0 passes skipped, when empty passes were left out and their samples costed at
    the mean sample's tokens)."""
    trained = tracker.pass_count > 0
    if not trained.any():
        return 0.0
    mean = tracker.pass_tokens[trained].astype(np.float64) / tracker.pass_count[trained]
    return float(mean.sum()) + float(mean.mean()) * float(np.count_nonzero(~trained))


def efficiency_report(tracker) -> dict:
    """Passes, model calls and tokens trained, against full_data_reference, with the buckets and the history."""
    full = full_data_reference(tracker)
    t = tracker.totals

    def saved(key):
        return 1.0 - t[key] / full[key] if full[key] else 0.0

    return {
        "num_samples": tracker.num_samples,
        "samples_per_optimizer_step": tracker.unit,
        "epochs": full["epochs"],
        "forward_sample_passes": t["sample_passes"],
        "backward_sample_passes": t["sample_passes"],  # every trained sample gets exactly one backward
        "model_forward_calls": t["batches"],
        "supervised_tokens": t["tokens"],
        "full_data": {
            "forward_sample_passes": full["sample_passes"],
            "backward_sample_passes": full["sample_passes"],
            "model_forward_calls": full["batches"],
            "supervised_tokens": full["tokens"],
        },
        "sample_passes_saved": saved("sample_passes"),
        "model_forward_calls_saved": saved("batches"),
        "tokens_saved": saved("tokens"),
        "observations_skipped": dict(tracker.skipped),
        "buckets": counts(tracker.state.bucket, ~tracker.state.pruned),
        "pruned": int(tracker.state.pruned.sum()),
        "history": list(tracker.history),
    }
