"""What `geko-hf train` and `geko-hf sft` print while they run: the banner, a quiet progress bar with one line
per epoch (ConsoleCallback, put in the stock bar's place by `install_console`), and the closing summary.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from ..report.banner import freeze_rule  # noqa: F401  (named here in 0.3)
from ..report.text import BAR, why_negative
from .device import bf16_supported


class ConsoleCallback(ProgressCallback):
    """HF's progress bar, quieter: loss and GEKO phase in the bar, one line per epoch for held-out metrics.

    It replaces ProgressCallback (a subclass, so GEKO still finds the bar to stretch it when epochs shrink).
    The per-step log dicts go to log_history and report_to as usual; only the console is spared them.
    """

    def __init__(self, geko_callback, bar: bool = True):
        super().__init__()
        self.geko = geko_callback
        self.bar = bar  # False (--disable_tqdm): the same lines, no bars
        self.epoch_losses: dict = {}

    def on_train_begin(self, args, state, control, **kwargs):
        if self.bar:
            super().on_train_begin(args, state, control, **kwargs)

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        if self.bar:
            super().on_prediction_step(args, state, control, eval_dataloader=eval_dataloader, **kwargs)

    def on_step_end(self, args, state, control, **kwargs):
        if self.training_bar is not None:
            super().on_step_end(args, state, control, **kwargs)

    def on_train_end(self, args, state, control, **kwargs):
        if self.training_bar is not None:
            super().on_train_end(args, state, control, **kwargs)

    def on_epoch_begin(self, args, state, control, **kwargs):
        tracker = self.geko.tracker
        if self.training_bar is not None and tracker is not None:
            self.training_bar.set_description(f"Epoch {tracker.epoch + 1}/{tracker.num_epochs}")

    def on_epoch_end(self, args, state, control, **kwargs):
        # Runs just before GEKO prints its partition line (we sit at the stock bar's index, ahead of GEKO's
        # callback): end the bar's line so that the print starts on its own line, and leave this epoch's
        # bar on screen as its record, as in gekolib's output.
        if state.is_world_process_zero and self.training_bar is not None:
            self.training_bar.refresh()
            self.training_bar.fp.write("\n")
            self.training_bar.fp.flush()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or logs is None:
            return
        tracker = self.geko.tracker
        if "loss" in logs:
            epoch = tracker.epoch + 1 if tracker is not None else math.ceil(state.epoch or 1)
            self.epoch_losses.setdefault(epoch, []).append(float(logs["loss"]))
            phase = tracker.phase_and_weights(tracker.epoch)[0] if tracker is not None else "-"
            if self.training_bar is not None:
                self.training_bar.set_postfix_str(f"loss={logs['loss']:.4f}, phase={phase}", refresh=True)
        elif "eval_loss" in logs:
            epoch = tracker.epoch if tracker is not None else round(state.epoch or 0)
            losses = self.epoch_losses.get(epoch)
            parts = [f"Average Loss: {np.mean(losses):.4f}"] if losses else []
            parts.append(f"held-out loss: {logs['eval_loss']:.4f}")
            if "eval_accuracy" in logs:
                parts.append(f"held-out accuracy: {100 * logs['eval_accuracy']:.1f}%")
            self._write(f"[Epoch {epoch}] " + " | ".join(parts))
        elif "train_runtime" in logs:
            self._write(f"[GEKO] Training took {duration(logs['train_runtime'])} "
                        f"({logs.get('train_steps_per_second', 0):.2f} optimizer steps/s)")

    def _write(self, text):
        if self.training_bar is not None:
            self.training_bar.write(text)
        else:
            print(text, flush=True)


def install_console(trainer, bar: bool = True) -> None:
    """ConsoleCallback in the stock bar's (or printer's) place: it must close the bar before GEKO's report."""
    trainer.geko.banner = False  # the command prints its own banner and summary
    cbs = trainer.callback_handler.callbacks
    i = next((i for i, cb in enumerate(cbs) if type(cb) in (ProgressCallback, PrinterCallback)), None)
    if i is not None:
        cbs[i] = ConsoleCallback(trainer.geko.callback, bar=bar)


@contextlib.contextmanager
def quiet_library_bars():
    """No datasets `Map` or transformers `Writing model shards` bars: only the training bar speaks."""
    import datasets
    from transformers.utils import logging as hf_logging

    ds_on, hf_on = datasets.is_progress_bar_enabled(), hf_logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if ds_on:
            datasets.enable_progress_bars()
        if hf_on:
            hf_logging.enable_progress_bar()


def banner(sa, args, data, model, model_desc, n_train, n_eval) -> str:
    """`geko-hf train`'s settings before the run: model, data, schedule, device, precision, GEKO, output."""
    cfg = args.geko_config
    params = sum(p.numel() for p in model.parameters())
    device = str(args.device).upper()
    if device.startswith("CPU"):
        import torch

        device = f"CPU ({torch.get_num_threads()} threads)"
    rows = [
        ("Model", f"{model_desc}, {params / 1e6:.1f} M params"),
        ("Dataset", data.description),
        ("Samples", f"{n_train:,} train / {n_eval:,} held-out, max {sa.max_length} tokens"),
        ("Epochs", f"{args.num_train_epochs:g}" if args.max_steps <= 0 else f"as many as max_steps={args.max_steps}"),
        ("Batch size", f"{args.per_device_train_batch_size} x {args.gradient_accumulation_steps} accum"
                       f" x {args.world_size} process(es)"),
        ("Learning rate", f"{args.learning_rate:g}, warmup {args.warmup_steps:g} steps"),
        ("Device", device),
        ("Precision", precision(args)),
        ("GEKO", f"preset {args.geko_preset or 'default'}, curriculum {'ON' if cfg.use_curriculum else 'OFF'}, "
                 f"{freeze_rule(cfg)}"),
        ("Output", args.output_dir),
    ]
    return "\n".join([BAR, "  GEKO Training (geko-hf train)", BAR]
                     + [f"  {k:<17}: {v}" for k, v in rows] + [BAR])


def precision(args) -> str:
    """The precision the run trains in, and why (CPU bf16 is a default only where the CPU has it natively)."""
    if args.bf16:
        if str(args.device).startswith("cpu"):
            return ("BF16 autocast (this CPU has AVX512-BF16/AMX: about 2x faster here than fp32; "
                    "--bf16 false for fp32)")
        return "BF16"
    if args.fp16:
        return "FP16"
    if str(args.device).startswith("cpu") and not bf16_supported():
        return "FP32 (this CPU lacks AVX512-BF16/AMX, where bf16 would be emulated and slower)"
    return "FP32"


def summary(out, report_path, plot_path, output_dir) -> str:
    """The closing box of a run, from the JSON report `out` it wrote: time, held-out metrics, compute saved."""
    eff = out["efficiency"]
    full = eff["full_data"]["forward_sample_passes"]
    rows = [("Wall time", f"{duration(out['wall_time_s'])} (training {duration(out['train_runtime_s'])})")]
    if "eval_accuracy" in out["eval"]:
        rows.append(("Held-out accuracy", f"{100 * out['eval']['eval_accuracy']:.1f}% on {out['num_eval']:,} samples"))
    if "eval_loss" in out["eval"]:
        rows.append(("Held-out loss", f"{out['eval']['eval_loss']:.4f}"))
    rows += [
        ("Sample passes", f"{eff['forward_sample_passes']:,} of {full:,} "
                          f"({100 * eff['sample_passes_saved']:.1f}% saved vs full data)"),
        *([("Saved < 0", why_negative(eff))] if why_negative(eff) else []),
        ("Report", report_path),
        ("Plot", plot_path or "(not drawn: pip install 'geko_hf[plot]')"),
        ("Next", f"geko-hf report {output_dir}"),
    ]
    return "\n".join([BAR, "  Training Complete", BAR] + [f"  {k:<17}: {v}" for k, v in rows] + [BAR])


def duration(seconds) -> str:
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {seconds % 60:04.1f} s"
