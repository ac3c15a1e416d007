"""The files a `geko-hf train` / `geko-hf sft` run leaves in its output_dir besides HF's own, and how `geko-hf report`
reads a run folder back.

    geko_report.json        the run's JSON report: efficiency, held-out metrics, history, HARD samples, settings
    geko_buckets.png        bucket shares per epoch, loss and accuracy, sample passes vs full data
    geko_train_texts.jsonl  one {"id", ...} line per training sample, id = GEKO's sample id (its row in the
                            training set): text and label (train) or prompt and answer (sft), so that a HARD
                            sample is shown as text

A checkpoint-N folder holds only HF's files and GEKO's state: these are looked up in its parent too.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

REPORT_FILE = "geko_report.json"
PLOT_FILE = "geko_buckets.png"
TEXTS_FILE = "geko_train_texts.jsonl"


def resume_target(value):
    """`--resume_from_checkpoint` as Trainer.train takes it: "true"/"last" (HfArgumentParser gives strings) mean
    the newest complete checkpoint in output_dir, as in `trl sft`; a path or None passes through."""
    return True if isinstance(value, str) and value.lower() in ("true", "last") else value


# -- writing -----------------------------------------------------------------------------------------------
def write_texts(path, ds, label_names) -> None:
    """One JSON line per training sample: id (= GEKO sample id = row), text, label (name when known)."""
    with open(path, "w") as f:
        for i, (text, label) in enumerate(zip(ds["text"], ds["label"])):
            name = label_names[label] if label_names and 0 <= label < len(label_names) else label
            f.write(json.dumps({"id": i, "text": text, "label": name}, ensure_ascii=False) + "\n")


def write_report(out: dict, output_dir) -> str:
    """`out` as output_dir/geko_report.json (numpy values as plain JSON); returns the path."""
    report_path = os.path.join(output_dir, REPORT_FILE)
    with open(report_path, "w") as f:
        json.dump(out, f, indent=2, default=_json_default)
    return report_path


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def try_plot(history, path, num_samples, log_history, title):
    from ..report.plot import plot_run

    try:
        return plot_run(history, path, num_samples=num_samples, log_history=log_history, title=title)
    except ModuleNotFoundError as e:  # matplotlib missing: the run itself succeeded, say how to get the plot
        print(f"[GEKO] No plot: {e}", file=sys.stderr)
        return None


def plot_title(model_desc, dataset_desc, detail) -> str:
    """'GEKO: all-MiniLM-L6-v2 on Rotten Tomatoes reviews (2,000 samples)' from the long descriptions."""
    if not model_desc:
        return f"GEKO: {detail}"
    model = model_desc.split(" (")[0].split(" +")[0]
    data = (dataset_desc or "").split(" (")[0]
    return f"GEKO: {model}" + (f" on {data}" if data else "") + f" ({detail})"


# -- reading back ------------------------------------------------------------------------------------------
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


def with_texts(hard: list, texts_path) -> list:
    """HARD-sample rows with what the texts file at `texts_path` (may be None) says of each sample."""
    texts = {int(r["id"]): r for r in read_texts(texts_path, [h["id"] for h in hard])}
    return [{**h, **_text_fields(texts.get(h["id"]))} for h in hard]


def _text_fields(row) -> dict:
    """What a texts file says of a sample: text and label (train), or prompt and answer (sft)."""
    return {} if row is None else {k: v for k, v in row.items() if k != "id"}


def load_tracker_state(folder) -> dict:
    """The tracker state_dict saved in `folder` (checkpoint.py's geko_state.npz); FileNotFoundError with a hint."""
    from ..core.checkpoint import load_geko_state

    try:
        payload = load_geko_state(folder)
    except FileNotFoundError as e:
        ckpts = sorted((d for d in os.listdir(folder) if d.startswith("checkpoint-")),
                       key=lambda d: int(d.split("-")[-1]) if d.split("-")[-1].isdigit() else -1)
        hint = f" Checkpoints here: {', '.join(ckpts)}; pass one of them." if ckpts else ""
        raise FileNotFoundError(f"{e}{hint}") from None
    return payload["tracker"]


def read_log_history(folder) -> list:
    """HF's log_history of a run folder: its trainer_state.json, else the newest complete checkpoint's (TRL's sft.py
    saves the model and GEKO's state at the end, but no trainer_state.json: only Trainer.save_state writes one at
    the top, and the example scripts of transformers call it, TRL's do not)."""
    path = os.path.join(folder, "trainer_state.json")
    if not os.path.exists(path):
        from ..core.checkpoint import newest_complete_checkpoint

        checkpoint = newest_complete_checkpoint(folder, need_geko=False)
        if checkpoint is None:
            return []
        path = os.path.join(checkpoint, "trainer_state.json")
        print(f"(No trainer_state.json in {folder}: the loss and eval history is {path}'s, up to that checkpoint.)")
    with open(path) as f:
        return json.load(f).get("log_history", [])


def read_json(path) -> dict:
    if not path:
        return {}
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def find_up(folder, name):
    """`name` in folder or its parent (a checkpoint's output_dir)."""
    for d in (folder, os.path.dirname(os.path.abspath(folder))):
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    return None


def run_outcome(trainer, result, eval_metrics: dict, t0: float, top_k: int, output_dir: str) -> dict:
    """The part of geko_report.json every command shares, read off a finished GEKO run: times, held-out metrics,
    the efficiency report and its per-epoch history, the top-k HARD samples and label issues with their texts."""
    from ..core.label_issues import tracker_label_issues
    from ..report.text import enrich_history, hard_samples

    rep = trainer.get_efficiency_report()
    tracker = trainer.geko.tracker
    texts = os.path.join(output_dir, TEXTS_FILE)
    return {
        "wall_time_s": round(time.time() - t0, 1),
        "train_runtime_s": round(float(result.metrics.get("train_runtime", 0.0)), 1),
        "eval": {k: v for k, v in eval_metrics.items() if isinstance(v, (int, float))},
        "efficiency": {k: v for k, v in rep.items() if k != "history"},
        "history": enrich_history(rep["history"], trainer.state.log_history),
        "hard_samples": with_texts(hard_samples(tracker.state.state_dict(), top_k), texts),
        "label_issues": with_texts(tracker_label_issues(tracker, top_k), texts),
        "geko_config": tracker.config.to_dict(),
    }


def print_samples(out: dict, top_k: int) -> None:
    """The HARD samples and the likely label errors of a run_outcome, with their texts."""
    from ..report.text import format_hard, format_suspects

    if top_k > 0:
        print(format_hard(out["hard_samples"], top_k))
        print(format_suspects(out["label_issues"]))
