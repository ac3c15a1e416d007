"""The seed's start banner and end summary for runs started from Python (`trainer.train()`), printed once on the
main process; `geko-hf train` / `sft` print their own, richer ones (console.py). Silenced with log_bucket_stats=False.

Every figure is read from what the run really uses (TrainingArguments, the model, the tracker) or counted (the
efficiency report), never from defaults.
"""

from __future__ import annotations

from .text import BAR, why_negative


def run_banner(args, model, tracker) -> str:
    cfg = tracker.config
    rows = [
        ("Samples", f"{tracker.num_samples:,}"),
        ("Epochs", f"{args.num_train_epochs:g}" if args.max_steps <= 0 else f"max_steps {args.max_steps}"),
        ("Batch", f"{args.per_device_train_batch_size} per device x {args.gradient_accumulation_steps} accumulation "
                  f"x {args.world_size} process(es) = {tracker.unit} per optimizer step"),
        ("Device", str(args.device)),
        ("Precision", _precision(args)),
        ("Grad checkpointing", "on" if _checkpointing(model, args) else "off"),
        ("torch.compile", f"on ({args.torch_compile_backend or 'inductor'})" if args.torch_compile else "off"),
        ("Optimizer", _optim(args)),
        ("Data workers", f"{args.dataloader_num_workers}"
                         + (f", persistent, prefetch {args.dataloader_prefetch_factor}"
                            if args.dataloader_num_workers and args.dataloader_persistent_workers else "")),
        ("Warmup", f"{args.warmup_steps:g} of the steps (ratio)" if 0 < args.warmup_steps < 1
                   else f"{args.warmup_steps:g} steps"),
        ("Curriculum", "ON (mountain)" if cfg.use_curriculum else "OFF"),
        ("GEKO", "observe only: trains as the stock Trainer, records the data map" if cfg.policy == "observe"
                 else freeze_rule(cfg) + _spend(cfg)),
    ]
    return "\n".join([BAR, "  GEKO training", BAR] + [f"  {k:<19}: {v}" for k, v in rows] + [BAR])


def freeze_rule(cfg) -> str:
    """When a sample freezes, in the words of the config's mastery rule."""
    rule = f"margin > {cfg.freeze_margin:g}" if cfg.mastery == "margin" else f"conf > {cfg.freeze_confidence:g}"
    streak = f", {cfg.mastery_streak} correct in a row" if cfg.mastery_streak > 1 else ""
    stuck = f", stuck after {cfg.stuck_after} wrong" if cfg.stuck_after else ""
    return f"freeze at {rule}{streak}{stuck}"


def _precision(args) -> str:
    """What the arguments ask for (the command line's console also says why; the library probes no device)."""
    return "BF16" if args.bf16 else "FP16" if args.fp16 else "FP32"


def _spend(cfg) -> str:
    if cfg.target_budget is not None:  # LIGHT thinning is off under a target
        return f", budget {100 * cfg.target_budget:g}% of the full-data passes an epoch"
    return f", LIGHT rate {cfg.light_sample_rate:g}" if cfg.light_sample_rate < 1 else ""


def _optim(args) -> str:
    name = str(getattr(args.optim, "value", args.optim))  # an OptimizerNames enum
    return name + (" (8-bit optimizer states)" if "8bit" in name else "")


def _checkpointing(model, args) -> bool:
    """transformers 5.25 renamed gradient to activation checkpointing; the old `model.is_gradient_checkpointing`
    warns (FutureWarning, "removed in v6"). The new names first; the old ones only where a version lacks them."""
    on = getattr(args, "activation_checkpointing", None)
    on = args.gradient_checkpointing if on is None else on
    model_attr = "is_activation_checkpointing" if hasattr(type(model), "is_activation_checkpointing") \
        else "is_gradient_checkpointing"
    return bool(on or getattr(model, model_attr, False))


def run_summary(report: dict, log_history: list) -> str:
    """Mastered, compute saved (counted), the last held-out accuracy and the average training loss, if logged."""
    full = report["full_data"]["forward_sample_passes"]
    rows = [("Mastered (FREEZE)", f"{report['buckets']['FREEZE']:,} of {report['num_samples']:,} samples"),
            ("Compute saved", f"{100 * report['sample_passes_saved']:.1f}% of the sample passes "
                              f"({report['forward_sample_passes']:,} of {full:,} on full data)")]
    if why_negative(report):
        rows.append(("Saved < 0", why_negative(report)))
    evals = [e for e in log_history if any(k.startswith("eval_") and "accuracy" in k for k in e)]
    if evals:
        key = next(k for k in evals[-1] if k.startswith("eval_") and "accuracy" in k)
        rows.append(("Final accuracy", f"{100 * evals[-1][key]:.2f}% ({key}, held out)"))
    losses = [e["train_loss"] for e in log_history if "train_loss" in e]
    if losses:
        rows.append(("Average loss", f"{losses[-1]:.4f} (train_loss)"))
    return "\n".join([BAR, "  GEKO training complete", BAR] + [f"  {k:<19}: {v}" for k, v in rows] + [BAR])
