"""`geko-hf train` / `geko-hf report` in-process, on a tiny BERT from a config (seconds) and the packaged data.

The real default (MiniLM, ~2,000 reviews, minutes) runs in test_cli_slow.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import os

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("pandas")

from geko_hf import GEKOConfig  # noqa: E402
import geko_hf.cli as geko_hf_cli  # noqa: E402
from geko_hf.cli import run_files  # noqa: E402
from geko_hf.cli import train as cli  # noqa: E402
from geko_hf.cli.assets import LABEL_NAMES, load_rotten_tomatoes, rotten_tomatoes_frame  # noqa: E402
from geko_hf.core.buckets import FREEZE, HARD, LIGHT  # noqa: E402
from geko_hf.core.checkpoint import STATE_FILE, save_geko_state  # noqa: E402
from geko_hf.core.tracker import GEKOTracker  # noqa: E402
from geko_hf.report.text import hard_samples  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = ["--tiny_model", "--n_train", "64", "--n_eval", "32", "--num_train_epochs", "2",
        "--per_device_train_batch_size", "8", "--learning_rate", "1e-3", "--disable_tqdm", "true"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny `geko-hf train` run shared by the tests below: (output_dir, its stdout)."""
    out = tmp_path_factory.mktemp("cli") / "run"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):  # (capsys is function-scoped)
        assert geko_hf_cli.main(["train", *TINY, "--output_dir", str(out)]) == 0
    return out, buf.getvalue()


def _is_png(path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == PNG_MAGIC and os.path.getsize(path) > 20_000  # a drawn figure, not an empty canvas


# -- packaged data -----------------------------------------------------------------------------------------
def test_rotten_tomatoes_is_deduplicated_binary_and_seeded():
    df = rotten_tomatoes_frame()
    assert len(df) == 12_808 - 56 and not df["text"].duplicated().any()
    assert set(df["label"]) == {0, 1}
    train, held = load_rotten_tomatoes(200, 50, seed=3)
    assert (len(train), len(held)) == (200, 50)
    assert train.features["label"].names == list(LABEL_NAMES)
    assert not set(train["text"]) & set(held["text"])
    again, _ = load_rotten_tomatoes(200, 50, seed=3)
    other, _ = load_rotten_tomatoes(200, 50, seed=4)
    assert again["text"] == train["text"] and other["text"] != train["text"]
    with pytest.raises(ValueError, match="n_train"):
        load_rotten_tomatoes(20_000, 10)


# -- argument parsing --------------------------------------------------------------------------------------
def test_train_defaults_and_flags_pass_through(tmp_path):
    sa, args = cli.parse_train_args([])
    assert (args.output_dir, args.eval_strategy, args.save_strategy, args.num_train_epochs) == (
        "geko_output", "epoch", "epoch", 3)
    assert (args.per_device_train_batch_size, args.learning_rate, args.warmup_steps) == (32, 5e-5, 20)
    assert args.bf16 == cli.bf16_supported() and args.report_to == []
    assert sa.model_name_or_path is None and sa.dataset_name is None and sa.max_length == 64
    sa, args = cli.parse_train_args(["--output_dir", str(tmp_path), "--geko_preset", "balanced",
                                     "--geko_freeze_confidence", "0.9", "--seed", "7", "--bf16", "false",
                                     "--n_train", "100"])
    assert args.geko_config == GEKOConfig(freeze_confidence=0.9, freeze_quality=0.80, bucket_weights=[3, 2, 1],
                                          use_curriculum=False)
    assert (args.seed, args.bf16, sa.n_train) == (7, False, 100)


def test_train_args_from_json_file(tmp_path):
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"output_dir": str(tmp_path / "o"), "num_train_epochs": 1, "top_k": 3,
                                "geko_prune_frozen_after": 2}))
    sa, args = cli.parse_train_args([str(path)])
    assert (args.num_train_epochs, sa.top_k, args.geko_config.prune_frozen_after) == (1, 3, 2)
    assert args.eval_strategy == "epoch"  # our defaults still apply under a file


def test_usage_and_unknown_command(capsys):
    assert geko_hf_cli.main([]) == 0 and "geko-hf train" in capsys.readouterr().out
    assert geko_hf_cli.main(["fly"]) == 2 and "unknown command" in capsys.readouterr().err


# -- geko-hf train -----------------------------------------------------------------------------------------
def test_train_writes_report_plot_texts_and_state(tiny_run):
    out, stdout = tiny_run
    assert "GEKO Training" in stdout and "[GEKO] Epoch 1 Partition:" in stdout
    assert "GEKO efficiency report" in stdout and "Training Complete" in stdout
    rep = json.loads((out / run_files.REPORT_FILE).read_text())
    assert rep["num_train"] == 64 and rep["num_eval"] == 32
    assert 0.0 <= rep["eval"]["eval_accuracy"] <= 1.0
    assert [r["epoch"] for r in rep["history"]] == [1, 2]
    for row in rep["history"]:
        assert row["train_loss"] > 0 and row["eval_loss"] > 0 and row["eval_accuracy"] is not None
        assert sum(row[n] for n in ("FREEZE", "LIGHT", "FOCUS", "HARD")) == 64
    assert rep["efficiency"]["full_data"]["forward_sample_passes"] == 128
    assert _is_png(out / run_files.PLOT_FILE)
    texts = [json.loads(line) for line in (out / run_files.TEXTS_FILE).read_text().splitlines()]
    assert [t["id"] for t in texts] == list(range(64)) and {t["label"] for t in texts} <= set(LABEL_NAMES)
    assert (out / STATE_FILE).exists()
    # the data map by default: the table (with each review's text and label name), the picture, the page
    import datasets

    data_map = datasets.Dataset.from_parquet(str(out / "geko_data_map.parquet"))
    assert len(data_map) == 64 and {"text", "label", "region", "label_issue_rank"} <= set(data_map.column_names)
    assert _is_png(out / "geko_data_map.png") and (out / "geko_data_map.html").exists()
    # the top label issues, printed with their text and saved in the report, in the data map's order (issue 32)
    issues = rep["label_issues"]
    top = data_map.sort("label_issue_rank").filter(lambda r: r > 0, input_columns="label_issue_rank")
    assert [r["id"] for r in issues] == top["sample_id"][:len(issues)] and len(issues) == 10
    assert "likely label errors" in stdout and issues[0]["text"][:30] in " ".join(stdout.split())
    steps = sorted(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*"))  # one per epoch; epoch 2 may
    assert len(steps) == 2 and steps[0] == 8 and steps[1] <= 16  # be shorter (frozen samples are skipped)


# -- geko-hf report ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("sub,epochs", [("", 2), ("checkpoint-8", 1)])
def test_report_on_output_and_checkpoint(tiny_run, tmp_path, capsys, sub, epochs):
    folder = tiny_run[0] / sub if sub else tiny_run[0]
    plot = tmp_path / "p.png"
    assert geko_hf_cli.main(["report", str(folder), "--plot", str(plot)]) == 0
    text = capsys.readouterr().out
    assert f"{epochs} of 2 epochs done" in text
    assert "GEKO efficiency report" in text and "Buckets now" in text and "History" in text
    for name in ("FREEZE", "LIGHT", "FOCUS", "HARD"):
        assert f"  {name}" in text
    history = text[text.index("History"):]
    assert len([ln for ln in history.splitlines() if ln.strip()[:1].isdigit()]) == epochs
    assert _is_png(plot)


def test_report_default_plot_goes_into_the_folder(tiny_run, capsys):
    folder = tiny_run[0] / "checkpoint-8"
    (folder / run_files.PLOT_FILE).unlink(missing_ok=True)
    assert geko_hf_cli.main(["report", str(folder), "--top_k", "2"]) == 0
    assert _is_png(folder / run_files.PLOT_FILE)


def test_report_without_state_names_the_checkpoints(tmp_path, capsys):
    (tmp_path / "checkpoint-5").mkdir()
    assert geko_hf_cli.main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "No GEKO state" in err and "checkpoint-5" in err
    assert geko_hf_cli.main(["report", str(tmp_path / "nope")]) == 2


def test_report_on_a_damaged_state_file_is_one_sentence(tmp_path, capsys):
    (tmp_path / STATE_FILE).write_bytes(b"not a zip")  # before: a traceback
    assert geko_hf_cli.main(["report", str(tmp_path)]) == 2
    assert "is damaged" in capsys.readouterr().err


def test_report_lists_hard_samples_with_text(tmp_path, capsys):
    """A hand-made state: HARD ids 3 (conf 0.7) and 1 (conf 0.95) come out most confident first, with text."""
    tracker = GEKOTracker(6, GEKOConfig(), seed=0, num_epochs=3, unit=2, batch_size=2)
    s = tracker.state
    s.bucket[:] = [LIGHT, HARD, FREEZE, HARD, LIGHT, LIGHT]
    s.confidence[:] = [0.9, 0.95, 0.99, 0.7, 0.6, 0.8]
    s.loss[:] = [0.1, 3.0, 0.01, 1.2, 0.5, 0.2]
    s.times_seen[:] = 1
    tracker.totals = {"sample_passes": 6, "batches": 3, "tokens": 6}
    tracker.history = [{"epoch": 1, "phase": "warmup", "sample_passes": 6, "batches": 3, "tokens": 6,
                        "FREEZE": 1, "LIGHT": 3, "FOCUS": 0, "HARD": 2, "pruned": 0}]
    tracker.epoch = 1
    run = tmp_path / "run"
    save_geko_state(str(run / "checkpoint-3"), {"tracker": tracker.state_dict()})
    with open(run / run_files.TEXTS_FILE, "w") as f:  # in the parent: where `geko-hf train` leaves it
        for i in range(6):
            f.write(json.dumps({"id": i, "text": f"review number {i}", "label": LABEL_NAMES[i % 2]}) + "\n")

    assert geko_hf_cli.main(["report", str(run / "checkpoint-3"), "--no_plot"]) == 0
    text = capsys.readouterr().out
    hard = text[text.index("Top 2 HARD"):]
    assert hard.index("#1 ") < hard.index("#3 ")
    assert "review number 1" in hard and "label: fresh" in hard and "review number 3" in hard
    assert "review number 0" not in hard
    assert not (run / "checkpoint-3" / run_files.PLOT_FILE).exists()

    rows = hard_samples(tracker.state.state_dict(), k=1)
    assert rows == [{"id": 1, "confidence": 0.95, "loss": 3.0, "times_seen": 1}]
    s.pruned[1] = True  # pruned samples are out of the run: not listed
    assert [r["id"] for r in hard_samples(tracker.state.state_dict(), k=5)] == [3]


# -- a user's own model and data ---------------------------------------------------------------------------
def test_train_on_a_local_csv_and_model_folder(tiny_run, tmp_path, capsys):
    """--model_name_or_path (the tiny run's saved model) + --dataset_name a CSV with string labels and
    other column names; no held-out split in the file, so n_eval rows are carved from it."""
    rng = np.random.default_rng(0)
    words = ["good", "bad", "fine", "awful", "great", "dull"]
    lines = ["review,sentiment"] + [f"{' '.join(rng.choice(words, 5))},{['neg', 'pos', 'meh'][i % 3]}"
                                    for i in range(60)]
    csv = tmp_path / "mine.csv"
    csv.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    model_dir = tiny_run[0]
    argv = ["train", "--model_name_or_path", str(model_dir), "--dataset_name", str(csv), "--text_column",
            "review", "--label_column", "sentiment", "--n_eval", "12", "--num_train_epochs", "1",
            "--per_device_train_batch_size", "8", "--disable_tqdm", "true", "--save_strategy", "no",
            "--output_dir", str(out)]
    with pytest.raises(Exception, match="ignore_mismatched_sizes"):
        geko_hf_cli.main(argv)  # the saved head has 2 labels, the CSV 3: HF refuses unless asked
    assert geko_hf_cli.main([*argv, "--ignore_mismatched_sizes", "true"]) == 0
    rep = json.loads((out / run_files.REPORT_FILE).read_text())
    assert (rep["num_train"], rep["num_eval"]) == (48, 12)
    texts = [json.loads(line) for line in (out / run_files.TEXTS_FILE).read_text().splitlines()]
    assert {t["label"] for t in texts} == {"neg", "pos", "meh"}
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(out).id2label == {0: "meh", 1: "neg", 2: "pos"}


def test_history_finds_the_metrics_of_a_fractional_last_epoch():
    # num_train_epochs=2.5: HF logs the last epoch's loss and eval at epoch 2.5; the row is epoch 3 (before: None)
    from geko_hf.report.text import enrich_history

    rows = [{"epoch": 1, "epoch_share": 1.0}, {"epoch": 2, "epoch_share": 1.0}, {"epoch": 3, "epoch_share": 0.5}]
    logs = [{"loss": 2.0, "epoch": 1.0}, {"eval_loss": 1.5, "eval_accuracy": 0.6, "epoch": 1.0},
            {"loss": 1.0, "epoch": 2.0}, {"eval_loss": 1.2, "eval_accuracy": 0.7, "epoch": 2.0},
            {"loss": 0.5, "epoch": 2.5}, {"eval_loss": 1.1, "eval_accuracy": 0.8, "epoch": 2.5}]
    got = [(r["train_loss"], r["eval_loss"], r["eval_accuracy"]) for r in enrich_history(rows, logs)]
    assert got == [(2.0, 1.5, 0.6), (1.0, 1.2, 0.7), (0.5, 1.1, 0.8)]


@pytest.mark.parametrize("argv, want", [(["--geko_use_curriculum"], True), (["--geko_use_curriculum", "false"], False),
                                        ([], None)])
def test_a_bare_geko_bool_flag_means_true(argv, want):
    # before: "--geko_use_curriculum: expected one argument" (a bare --bf16 works: HF's bools take no value)
    sa, args = cli.build_train_parser().parse_args_into_dataclasses(args=argv)
    assert args.geko_use_curriculum is want


def test_report_metrics_are_the_saved_models_with_load_best_model_at_end(tmp_path):
    # the tiny model's held-out loss rises after epoch 1, so the model kept is an earlier epoch's; before,
    # geko_report.json quoted the last epoch's eval for it
    out = tmp_path / "best"
    with contextlib.redirect_stdout(io.StringIO()):
        assert geko_hf_cli.main(["train", *TINY, "--num_train_epochs", "3", "--output_dir", str(out), "--eval_strategy",
                         "epoch", "--save_strategy", "epoch", "--load_best_model_at_end", "true",
                         "--metric_for_best_model", "loss"]) == 0
    state = json.loads((out / "trainer_state.json").read_text())
    evals = {e["step"]: e for e in state["log_history"] if "eval_loss" in e}
    best = evals[state["best_global_step"]]
    assert state["best_global_step"] != max(evals)  # the kept model is not the last one (else nothing is tested)
    report = json.loads((out / "geko_report.json").read_text())
    assert report["eval"]["eval_loss"] == pytest.approx(best["eval_loss"], rel=1e-5)


def test_banner_shows_max_steps_instead_of_epochs():
    # before: "Epochs : 3" (num_train_epochs' default) on a run that max_steps ends
    from types import SimpleNamespace

    import torch

    from geko_hf.cli.console import banner

    args = cli.build_train_parser().parse_args_into_dataclasses(args=["--max_steps", "40", "--output_dir", "o"])[1]
    text = banner(SimpleNamespace(max_length=64), args, SimpleNamespace(description="d"), torch.nn.Linear(2, 2), "m",
                  10, 2)
    assert "as many as max_steps=40" in text
