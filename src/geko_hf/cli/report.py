"""`geko-hf report PATH`: read any GEKO run folder or checkpoint back: the efficiency report, the bucket table, the
history, the plot, the hardest samples and likely label errors with their text, and (`--data-map`) the data map's
regions, its picture and its page. Runs anywhere numpy and the saved files are: no model is loaded.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..core.data_map_table import data_map_columns
from ..core.label_issues import tracker_label_issues
from ..core.tracker import GEKOTracker
from ..report.data_map_page import DATA_MAP_PAGE, write_data_map_page
from ..report.data_map_plot import plot_data_map
from ..report.text import (REGION_ORDER, data_map_examples, enrich_history, format_bucket_table, format_data_map,
                           format_hard, format_history, format_report, format_suspects, hard_samples)
from ..training.data_map import DATA_MAP_PLOT
from .run_files import (PLOT_FILE, REPORT_FILE, TEXTS_FILE, find_up, load_tracker_state, plot_title, read_json,
                        read_log_history, read_texts, try_plot, with_texts)


def main(argv=None) -> int:
    """The command: 0, or 2 with one sentence when the folder holds no readable GEKO state."""
    from ..core.checkpoint import StateFileError

    try:
        run(list(sys.argv[1:] if argv is None else argv))
    except (FileNotFoundError, StateFileError) as e:
        print(f"geko-hf report: {e}", file=sys.stderr)
        return 2
    return 0


def make_parser():
    p = argparse.ArgumentParser(prog="geko-hf report",
                                description="Read the GEKO state of an output or checkpoint folder.")
    p.add_argument("path", help="An output_dir of a GEKO run, or one of its checkpoint-N folders.")
    p.add_argument("--top_k", type=int, default=10, help="HARD samples to list (default 10).")
    p.add_argument("--plot", default=None, help=f"Where to draw the plot (default PATH/{PLOT_FILE}).")
    p.add_argument("--no_plot", action="store_true", help="Do not draw the plot.")
    p.add_argument("--texts", default=None, help=f"A {TEXTS_FILE}-style file with the training texts "
                                                 "(default: found in PATH or its parent).")
    p.add_argument("--label-issues", "--label_issues", dest="label_issues", action="store_true",
                   help="Also list the top_k likely label errors (the data map's label-issue ranking, every observed "
                        "sample scored).")
    p.add_argument("--suspects", action="store_true", help=argparse.SUPPRESS)  # deprecated 0.4: --label-issues
    p.add_argument("--data-map", "--data_map", dest="data_map", action="store_true",
                   help=f"Print each data-map region's top_k examples and the top_k label issues with their text, "
                        f"and draw {DATA_MAP_PLOT} into PATH.")
    return p


def run(argv) -> dict:
    """`geko-hf report PATH`: prints the report and the HARD samples, draws the plot; returns what it read."""
    opts = make_parser().parse_args(argv)
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
        print("geko-hf report: --suspects is deprecated and will be removed in geko_hf 0.5; use --label-issues "
              "(the same list).", file=sys.stderr)
    if opts.suspects or opts.label_issues:
        rows = tracker_label_issues(tracker, opts.top_k)
        suspects = with_texts(rows, opts.texts or find_up(folder, TEXTS_FILE))
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
