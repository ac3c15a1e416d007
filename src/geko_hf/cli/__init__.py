"""The `geko-hf` command: one module per command, each with `make_parser()` and `main(argv)` (as TRL's
trl/scripts/sft.py): `train`, `sft`, `report`; plus what a command prints (console), its data (data), the packaged
offline assets (assets), device defaults (device) and run files (run_files). This module only dispatches.
"""

from __future__ import annotations

import importlib
import os
import sys

COMMANDS = ("train", "sft", "report")


def main(argv=None) -> int:
    """`geko-hf COMMAND ...` (the entry point): the command's module runs it; it loads only when it runs."""
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
    if command in COMMANDS:
        return importlib.import_module(f".{command}", __name__).main(rest)
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
        "                                      table, history, plot, the top HARD (confidently wrong) samples;\n"
        "           [--data-map]               the data map's regions and label issues with their text, its\n"
        "                                      picture and its page (geko_data_map.png, .html).\n"
    )
