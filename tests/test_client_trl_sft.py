"""Client suite: TRL's official `trl/scripts/sft.py`, the file shipped inside the installed `trl` package (each stack
runs the version it pins), stock and with GEKO, on a tiny local Llama and a local chat dataset (issue 34).

    1. stock:      python <trl>/scripts/sft.py FLAGS
    2. GEKO:       the one-line change `trl.SFTTrainer = GEKOSFTTrainer`, then the same script with the same FLAGS
                   (sft.py imports SFTTrainer from `trl` inside main(), so a patch made before it runs is seen)
    3. geko-hf sft FLAGS                  (`trl sft`'s flags, parsed by TRL's own TrlParser)
    4. resume:     geko-hf sft stopped at a checkpoint inside an epoch GEKO shortened, then FLAGS
                   --resume_from_checkpoint true: bit-exact with the uninterrupted run (and, marked slow, the
                   patched script resumed from that checkpoint's path, as sft.py hands the flag to train())

Each run is a subprocess, as a user runs it. The script is run from where pip put it, never copied. It writes no
train_results.json / all_results.json (it calls no save_metrics): its metrics are the log_history of the
trainer_state.json HF writes into each checkpoint-N, the last one at the final step.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("trl")
sft_module = pytest.importorskip("trl.scripts.sft")

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from test_sft import make_tokenizer, sums, tiny_llama  # noqa: E402  (the SFT tests' tiny chat Llama and tokenizer)

from geko_hf.cli import main  # noqa: E402
from geko_hf.core.checkpoint import STATE_FILE, load_geko_state  # noqa: E402

SFT_SCRIPT = sft_module.__file__
EPOCHS, BATCH, LR = 5, 4, 2e-2
EASY, HARD = 16, 8  # "hello i" -> "ok" rows are mastered within a few epochs (GEKO skips them), sums are not
N = EASY + HARD
STOCK_STEPS = EPOCHS * math.ceil(N / BATCH)

# One command line for every client. The flags whose default `geko-hf sft` changes (cli/sft.py's SFT_DEFAULTS:
# warmup_steps=2, batch size 16, learning rate 5e-5, max_length 128, ...) are given, so all runs train the same.
FLAGS = ["--num_train_epochs", str(EPOCHS), "--per_device_train_batch_size", str(BATCH), "--learning_rate", str(LR),
         "--lr_scheduler_type", "linear", "--warmup_steps", "0", "--max_length", "1024", "--assistant_only_loss",
         "true", "--save_strategy", "steps", "--save_steps", "1", "--logging_steps", "1", "--eval_strategy", "no",
         "--report_to", "none", "--use_cpu", "true", "--bf16", "false", "--gradient_checkpointing", "false",
         "--seed", "0", "--disable_tqdm", "true"]

# The user's one-line change, then the unmodified script as `python sft.py ...` would run it.
DRIVER = """\
import runpy, sys
import trl
from geko_hf import GEKOSFTTrainer
trl.SFTTrainer = GEKOSFTTrainer
script = sys.argv[1]
sys.argv = [script, *sys.argv[2:]]
runpy.run_path(script, run_name="__main__")
"""

GEKO_EXTRA = {STATE_FILE, "geko_data_map.parquet", "geko_data_map.png", "geko_data_map.html"}


# -- assets and runs -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("trl_sft_client")
    tok = make_tokenizer()  # character-level, ChatML-like template with {% generation %} (assistant-only loss)
    tiny_llama(tok).save_pretrained(root / "model")
    tok.save_pretrained(root / "model")  # TRL loads the tokenizer and its chat template from the model folder
    (root / "data").mkdir()
    rows = [(f"hello {i}", "ok") for i in range(EASY)] + sums(HARD)
    with open(root / "data" / "train.jsonl", "w") as f:  # load_dataset(<folder>): one "train" split
        for q, a in rows:
            f.write(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]})
                    + "\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "HF_DATASETS_CACHE": str(root / "datasets_cache"), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"}
    (root / "geko_driver.py").write_text(DRIVER)
    return {"root": root, "env": env, "data_args": ["--model_name_or_path", str(root / "model"), "--dataset_name",
                                                     str(root / "data")]}


def _run(assets, client, out, extra=()):
    """One client run as a subprocess; (stdout+stderr, seconds). A failure shows the run's last output."""
    argv = [*assets["data_args"], *FLAGS, "--output_dir", str(out), *extra]
    if client == "stock":
        cmd = [sys.executable, SFT_SCRIPT, *argv]
    elif client == "geko_script":
        cmd = [sys.executable, str(assets["root"] / "geko_driver.py"), SFT_SCRIPT, *argv]
    else:  # the `geko-hf` console script next to this interpreter (python -m geko_hf.cli is the same entry point)
        exe = Path(sys.executable).with_name("geko-hf")
        cmd = [str(exe), "sft", *argv] if exe.exists() else [sys.executable, "-m", "geko_hf.cli", "sft", *argv]
    t0 = time.time()
    done = subprocess.run(cmd, env=assets["env"], capture_output=True, text=True, timeout=300)
    seconds = time.time() - t0
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{client} failed ({done.returncode}):\n{output[-6000:]}"
    print(f"{client} run: {seconds:.1f} s")
    return output, seconds


@pytest.fixture(scope="module")
def stock_run(assets):
    out = assets["root"] / "stock"
    return out, _run(assets, "stock", out)[0]


@pytest.fixture(scope="module")
def geko_script_run(assets):
    out = assets["root"] / "geko_script"
    return out, _run(assets, "geko_script", out)[0]


@pytest.fixture(scope="module")
def geko_cli_run(assets):
    out = assets["root"] / "geko_cli"
    return out, _run(assets, "geko_cli", out)[0]


# -- what every run is checked for ---------------------------------------------------------------------------
def _final_checkpoint(out) -> Path:
    steps = sorted(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*"))
    return out / f"checkpoint-{steps[-1]}"


def _trainer_state(out) -> dict:
    with open(_final_checkpoint(out) / "trainer_state.json") as f:
        return json.load(f)


def _assert_ends_on_plan_with_lr_at_its_end(out, planned_steps):
    """The last checkpoint is the planned final step, HF's max_steps says so too, and the linear schedule ran out."""
    state = _trainer_state(out)
    assert _final_checkpoint(out).name == f"checkpoint-{planned_steps}"
    assert state["global_step"] == state["max_steps"] == planned_steps
    lrs = [row["learning_rate"] for row in state["log_history"] if "learning_rate" in row]
    assert len(lrs) == planned_steps and lrs[0] == pytest.approx(LR)
    assert all(a >= b for a, b in zip(lrs, lrs[1:])), lrs  # linear decay, continuous when GEKO epochs shrink
    scheduler = torch.load(_final_checkpoint(out) / "scheduler.pt", weights_only=True)
    assert scheduler["last_epoch"] == planned_steps
    assert scheduler["_last_lr"] == [0.0] * len(scheduler["_last_lr"])  # the schedule's end value, reached


def _assert_metrics_where_the_script_writes_them(out, planned_steps):
    history = _trainer_state(out)["log_history"]
    losses = [row for row in history if "loss" in row]
    assert [row["step"] for row in losses] == list(range(1, planned_steps + 1))
    assert all(math.isfinite(row["loss"]) and "mean_token_accuracy" in row for row in losses)
    assert not any(out.rglob("train_results.json")) and not any(out.rglob("all_results.json"))  # sft.py writes none
    assert (out / "model.safetensors").is_file()  # trainer.save_model(output_dir)


def _geko_plan(out) -> tuple[dict, int]:
    """GEKO's state at the end of the run and the number of optimizer steps its per-epoch plans add up to."""
    payload = load_geko_state(str(out))
    tracker = payload["tracker"]
    history = tracker["history"]
    assert [row["epoch"] for row in history] == list(range(1, EPOCHS + 1))
    assert all(row["batches"] == math.ceil(row["sample_passes"] / BATCH) for row in history), history
    planned = sum(row["batches"] for row in history)
    assert planned == tracker["totals"]["batches"]
    return payload, planned


def _weights(out):
    return load_file(str(out / "model.safetensors"))


def _assert_same_training(a, b):
    """Final weights bit for bit, GEKO's per-sample state and per-epoch history equal."""
    wa, wb = _weights(a), _weights(b)
    assert sorted(wa) == sorted(wb)
    for name in wa:
        assert torch.equal(wa[name], wb[name]), f"{name} differs"
    sa, sb = load_geko_state(str(a))["tracker"], load_geko_state(str(b))["tracker"]
    for name, value in sa["state"].items():
        np.testing.assert_array_equal(value, sb["state"][name], err_msg=name)
    assert sa["history"] == sb["history"] and sa["totals"] == sb["totals"]


def _top_files(out) -> set:
    return {p.name for p in out.iterdir() if not p.name.startswith("checkpoint-")}


# -- 1. stock --------------------------------------------------------------------------------------------------
def test_stock_sft_script_ends_on_plan_and_its_schedule(stock_run):
    out, _ = stock_run
    _assert_ends_on_plan_with_lr_at_its_end(out, STOCK_STEPS)
    _assert_metrics_where_the_script_writes_them(out, STOCK_STEPS)
    assert not (out / STATE_FILE).exists()


# -- 2. the script with the one-line change ------------------------------------------------------------------
def test_sft_script_with_geko_sft_trainer_patched_in(geko_script_run, stock_run, capsys):
    out, output = geko_script_run
    payload, planned = _geko_plan(out)
    efficiency_passes = sum(row["sample_passes"] for row in payload["tracker"]["history"])
    assert efficiency_passes < EPOCHS * N and planned < STOCK_STEPS  # GEKO routed: mastered samples were skipped
    _assert_ends_on_plan_with_lr_at_its_end(out, planned)
    _assert_metrics_where_the_script_writes_them(out, planned)
    logged = [row["geko/sample_passes"] for row in _trainer_state(out)["log_history"] if "geko/sample_passes" in row]
    # GEKO's per-epoch metrics land in the same log; the last epoch's line is logged after the final step's
    # checkpoint, like HF's train summary (sft.py saves no state at the end): stdout and geko_state.npz have it
    cumulative = np.cumsum([row["sample_passes"] for row in payload["tracker"]["history"]]).tolist()
    assert logged == cumulative[:EPOCHS - 1]
    assert "GEKO efficiency report" in output and f"{efficiency_passes}" in output  # the report, printed at train end
    assert (_final_checkpoint(out) / STATE_FILE).is_file()  # GEKO's state rides in every checkpoint
    # GEKO adds its own files and changes nothing the script writes
    stock_files = _top_files(stock_run[0])
    assert _top_files(out) == stock_files | GEKO_EXTRA
    # `geko-hf report` reads the script's folder (no trainer_state.json at its top: the last checkpoint's is used)
    assert main(["report", str(out), "--no_plot"]) == 0
    shown = capsys.readouterr().out
    assert f"{EPOCHS} of {EPOCHS} epochs done" in shown and "train loss" in shown


# -- 3. geko-hf sft with the same flags ----------------------------------------------------------------------
def test_geko_hf_sft_with_the_same_flags_trains_the_same_run(geko_cli_run, geko_script_run):
    out, output = geko_cli_run
    payload, planned = _geko_plan(out)
    _assert_ends_on_plan_with_lr_at_its_end(out, planned)
    with open(out / "geko_report.json") as f:
        report = json.load(f)
    history = payload["tracker"]["history"]
    efficiency = report["efficiency"]
    assert efficiency["forward_sample_passes"] == sum(row["sample_passes"] for row in history)
    assert efficiency["full_data"]["forward_sample_passes"] == EPOCHS * N
    assert [row["batches"] for row in report["history"]] == [row["batches"] for row in history]
    assert efficiency["model_forward_calls"] == planned
    with open(out / "trainer_state.json") as f:  # geko-hf sft also saves the state at the top
        top = json.load(f)
    assert top["global_step"] == planned and "train_loss" in top["log_history"][-1]
    for name in ("geko_buckets.png", "geko_train_texts.jsonl", STATE_FILE, "model.safetensors"):
        assert (out / name).is_file(), name
    assert "Training Complete" in output
    _assert_same_training(out, geko_script_run[0])  # the same flags: the same run as sft.py + GEKOSFTTrainer


# -- 4. resume from a checkpoint inside an epoch GEKO shortened ----------------------------------------------
def _stopped_mid_shrunk_epoch(assets, straight, name):
    """A copy of the straight run's output_dir as if it had been killed just after the first step of the first
    epoch GEKO planned shorter than full data; (that folder, the checkpoint's step)."""
    history = load_geko_state(str(straight))["tracker"]["history"]
    shrunk = next(i for i, row in enumerate(history) if 2 <= row["batches"] < math.ceil(N / BATCH))
    step = sum(row["batches"] for row in history[:shrunk]) + 1  # strictly inside that epoch
    stopped = assets["root"] / name
    stopped.mkdir()  # its newest (and only) checkpoint is the mid-epoch one
    shutil.copytree(straight / f"checkpoint-{step}", stopped / f"checkpoint-{step}")
    state = load_geko_state(str(stopped / f"checkpoint-{step}"))
    assert state["in_epoch"] and state["tracker"]["epoch"] == shrunk  # really mid-epoch, after GEKO routed
    return stopped, step


def _assert_resumed_run_is_the_straight_run(resumed, straight, step):
    _, planned = _geko_plan(resumed)
    _assert_ends_on_plan_with_lr_at_its_end(resumed, planned)
    _assert_same_training(resumed, straight)
    losses = lambda out: [(r["step"], r["loss"]) for r in _trainer_state(out)["log_history"]  # noqa: E731
                          if "loss" in r and r["step"] > step]
    assert losses(resumed) == losses(straight)  # every step after the resume logged the same loss


def test_geko_hf_sft_resume_mid_epoch_is_bit_exact(assets, geko_cli_run):
    straight, _ = geko_cli_run
    stopped, step = _stopped_mid_shrunk_epoch(assets, straight, "geko_cli_resumed")
    _run(assets, "geko_cli", stopped, ["--resume_from_checkpoint", "true"])  # `trl sft`'s "the newest one"
    _assert_resumed_run_is_the_straight_run(stopped, straight, step)
    assert (stopped / "geko_report.json").is_file()


@pytest.mark.slow
def test_sft_script_with_geko_resumes_mid_epoch_bit_exact(assets, geko_script_run):
    # The script hands --resume_from_checkpoint to trainer.train() as given: a checkpoint path
    straight, _ = geko_script_run
    stopped, step = _stopped_mid_shrunk_epoch(assets, straight, "geko_script_resumed")
    _run(assets, "geko_script", stopped, ["--resume_from_checkpoint", str(stopped / f"checkpoint-{step}")])
    _assert_resumed_run_is_the_straight_run(stopped, straight, step)
