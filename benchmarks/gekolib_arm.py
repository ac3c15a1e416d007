"""Benchmark arm: the ORIGINAL gekolib 0.3.1 (`pip install gekolib==0.3.1`, import `geko`), counted like our arms.

    from gekolib_arm import run_gekolib
    out = run_gekolib(savings.minilm_setup(seed), seed, bf16=savings.BF16, output_dir="/tmp/geko_bench/gekolib")

Trains the workload's model with gekolib's own `geko.GEKOTrainer` and gekolib's DEFAULT `GEKOConfig()` on the
same model, data, epochs, batch size and learning rate as the arms in savings.py, counts its real compute with a
forward pre-hook (as savings.Meter does), and evaluates the held-out metric with the workload's own metric.

What had to be adapted (thin wrappers only; gekolib's sampler, bucketing, curriculum and loop are untouched):
- gekolib's DataLoader has no collate argument and uses torch's default collate, which cannot batch
  variable-length token lists (nor the raw `text` column). We subclass GEKOTrainer only to set
  `collate_fn` on the DataLoader gekolib built (same dataset, same WeightedRandomSampler, same batch
  size): it pads with the workload's collator and passes gekolib's `sample_id` strings through.
- The train set is handed over with only the model's input columns (+ label), like HF Trainer's
  remove_unused_columns; gekolib's own GEKODataset then wraps it (an HF Dataset row is already a dict).
- No eval_dataset is given to gekolib: its built-in eval only averages loss every `eval_steps` optimizer
  steps, with the default collate (it would crash on variable-length rows). We evaluate ourselves.
- gekolib has no callbacks. For a per-epoch curve we hook `partition_samples`, which gekolib calls at the
  start of every epoch (repartition_every=1 by default): at the start of epoch e>0 we evaluate the model
  after epoch e-1 (model.eval(), no_grad, then back to train mode; no RNG is consumed), and once more
  after train(). That evaluation time is subtracted from train_seconds.

Differences from our arms' hyperparameters (HF TrainingArguments in savings.run_arm), all gekolib's own:
- LR schedule: gekolib has linear warmup over `warmup` optimizer steps (we pass c["warmup"]), then constant
  at the base LR times the curriculum phase multiplier (ASCENT 0.8, PEAK 1.0, DESCENT 0.8, CONSOLIDATE
  0.3; the WARMUP-phase 0.5 is never applied because it only applies on a phase change). HF arms:
  linear warmup then linear decay to 0.
- weight_decay 0.01 (gekolib default; HF default 0.0). Grad clipping 1.0 in both. torch AdamW, same defaults.
- Sampling: WeightedRandomSampler(replacement=True, num_samples=len(train)) every epoch (gekolib's design)
  instead of a shuffled pass; per-batch (batch-mean) loss with HF models, so its default correctness is
  batch-level (`batch loss < 0.5`) - gekolib's default behaviour, kept as is.
- Non-algorithmic GEKOTrainingArgs we set: dataloader_num_workers=0 (as our arms; gekolib's -1 would fork
  min(4, cpus) workers), save_at_end=False and a huge save_steps (no checkpoint writes in the timed
  region), use_rich_ui=False (plain prints), seed=seed (gekolib calls torch.manual_seed(seed) in train()),
  fp16=False, bf16=bf16 (gekolib uses torch.autocast(bfloat16) on CPU, as HF's bf16 does).
- GEKOConfig is gekolib's default (prune_frozen_after=0: its Quick Start's prune_frozen_after=2 crashes).
"""

from __future__ import annotations

import inspect
import time
import traceback

import numpy as np
import torch
from torch.utils.data import DataLoader
from transformers import EvalPrediction

EVAL_BATCH = 64  # savings.run_arm uses per_device_eval_batch_size=64
LABEL_COLUMNS = ("label", "labels", "label_ids")


def _model_columns(model, dataset):
    """The columns HF Trainer would keep (remove_unused_columns): forward() arguments and the label."""
    params = set(inspect.signature(model.forward).parameters) | set(LABEL_COLUMNS)
    return [c for c in dataset.column_names if c in params]


def _argmax_logits(logits):
    """As savings.argmax_logits: argmax token ids, shifted (position t predicts token t+1)."""
    return (logits[0] if isinstance(logits, tuple) else logits).argmax(-1)[:, :-1]


def _pad_cat(arrays, pad=-100):
    """Concatenate [B, T_i] arrays along rows, padding T with `pad` (as HF's nested_concat does)."""
    width = max(a.shape[1] for a in arrays)
    return np.concatenate([np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=pad) for a in arrays])


def evaluate(model, held, collator, metric, bf16=False, batch_size=EVAL_BATCH):
    """Held-out metric: batches of the collator, model.eval(), no_grad; causal LM -> shifted argmax ids."""
    held = held.select_columns(_model_columns(model, held))
    loader = DataLoader(held, batch_size=batch_size, shuffle=False, collate_fn=collator)
    was_training = model.training
    model.eval()
    preds, labels = [], []
    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for batch in loader:
                batch = {k: v.to(model.device) if torch.is_tensor(v) else v for k, v in dict(batch).items()}
                logits = model(**batch).logits
                lab = batch["labels"]
                if logits.dim() == 3:  # causal LM: [B, T, V] -> [B, T-1] token ids
                    preds.append(_argmax_logits(logits).cpu().numpy())
                else:
                    preds.append(logits.float().cpu().numpy())
                labels.append(lab.cpu().numpy())
    finally:
        model.train(was_training)
    if preds[0].ndim == 2 and labels[0].ndim == 2:  # token-level: pad across batches
        p, y = _pad_cat(preds), _pad_cat(labels)
    else:
        p, y = np.concatenate(preds), np.concatenate(labels)
    return float(metric(EvalPrediction(predictions=p, label_ids=y))["metric"])


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.generic,)):
        return x.item()
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def run_gekolib(setup, seed: int, bf16: bool, output_dir: str) -> dict:
    """Train `setup`'s model with gekolib 0.3.1's GEKOTrainer (default GEKOConfig); count and evaluate it.

    Returns savings.run_arm's keys ("arm", "seed", "metric", "curve", "forward_calls", "sample_passes",
    "tokens", "train_seconds") plus "gekolib_report" (gekolib's own claims) and, if gekolib raised,
    "error" (the traceback); the metric is then that of the model as gekolib left it.
    """
    import geko
    from geko import GEKOConfig, GEKOTrainer, GEKOTrainingArgs

    model, train, held, collator, metric, c = setup
    from savings import Meter  # forward calls, sample rows and tokens while module.training, as every arm

    meter = Meter(model)
    curve: list[tuple[int, float]] = []
    eval_seconds = [0.0]

    def eval_point():
        t = time.perf_counter()
        m = evaluate(model, held, collator, metric, bf16=bf16)
        eval_seconds[0] += time.perf_counter() - t
        if not curve or curve[-1][0] != meter.rows:
            curve.append((meter.rows, m))
        return m

    def collate(features):  # the workload's collator, plus gekolib's sample ids passed through
        ids = [f.pop("sample_id") for f in features]
        batch = dict(collator(features))
        batch["sample_id"] = ids
        return batch

    class CountedGEKOTrainer(GEKOTrainer):
        def _create_dataloader(self, weighted: bool = True):
            loader = super()._create_dataloader(weighted)  # gekolib's dataset, sampler, batch size
            loader.collate_fn = collate
            return loader

        def partition_samples(self):
            if self.current_epoch > 0:  # start of epoch e>0: the model after epoch e-1
                eval_point()
            return super().partition_samples()

    args = GEKOTrainingArgs(
        output_dir=output_dir, num_epochs=c["epochs"], batch_size=c["batch"], learning_rate=c["lr"],
        warmup_steps=c.get("warmup", 0), seed=seed, bf16=bf16, fp16=False,
        dataloader_num_workers=0, save_at_end=False, save_steps=10**12, use_rich_ui=False,
    )
    config = GEKOConfig()  # gekolib's defaults
    out = {"arm": "gekolib", "seed": seed, "gekolib_version": getattr(geko, "__version__", None)}
    report: dict = {}
    trainer = None
    t0 = time.perf_counter()
    try:
        trainer = CountedGEKOTrainer(model=model, train_dataset=train.select_columns(_model_columns(model, train)),
                                     config=config, args=args)
        result = trainer.train()
        report = {"samples_trained": result.get("samples_trained"), "avg_train_loss": result.get("total_loss"),
                  "efficiency": result.get("efficiency")}
    except Exception as e:  # keep gekolib's crash in the results instead of losing the run
        out["error"] = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
    wall = time.perf_counter() - t0 - eval_seconds[0]
    if trainer is not None:
        try:
            report.setdefault("efficiency", trainer.get_efficiency_report())
            report["partition_history"] = [p.to_dict() for p in trainer.partition_history]
            report["pruned"] = trainer.get_pruned_count()
            report["global_steps"] = trainer.global_step
        except Exception as e:
            report["report_error"] = f"{type(e).__name__}: {e}"
    meter.handle.remove()
    final = eval_point() if not curve or curve[-1][0] != meter.rows else curve[-1][1]
    out.update({"metric": final, "curve": curve, "forward_calls": meter.calls, "sample_passes": meter.rows,
                "tokens": meter.tokens, "train_seconds": wall, "gekolib_report": _jsonable(report)})
    saved = (report.get("efficiency") or {}).get("compute_saved_percent")
    print(f"[bench] gekolib seed {seed}: metric {final:.4f} passes {meter.rows} train {wall:.1f}s "
          f"(gekolib claims compute saved {saved}){' ERROR' if 'error' in out else ''}", flush=True)
    return out
