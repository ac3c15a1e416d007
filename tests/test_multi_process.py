"""Two real processes (torchrun, gloo, CPU): every rank plans the same global order, accelerate deals the
batches out once (no double sharding), and the gathered per-sample state is identical on both ranks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.multi_process

_SCRIPT = r"""
import json, os, sys, hashlib
sys.path.insert(0, {tests!r})
import torch
from hf_helpers import make_args, tiny_gpt2, toy_lm_dataset
from geko_hf import GEKOTrainer
from geko_hf.ids import ID_COLUMN
torch.set_num_threads(1)
out = {out!r}
args = make_args(__import__("pathlib").Path(out), num_train_epochs=6, per_device_train_batch_size=4)
trainer = GEKOTrainer(model=tiny_gpt2(), args=args, train_dataset=toy_lm_dataset(n=64, random_every=4))
seen = []
orig = trainer.compute_loss
def spy(model, inputs, *a, **k):
    if ID_COLUMN in inputs and model.training:
        seen.append(inputs[ID_COLUMN].tolist())
    return orig(model, inputs, *a, **k)
trainer.compute_loss = spy
trainer.train()
tracker = trainer._geko_callback.tracker
rank = int(os.environ["RANK"])
state = tracker.state.state_dict()
digest = hashlib.sha1(b"".join(state[k].tobytes() for k in sorted(state) if hasattr(state[k], "tobytes"))).hexdigest()
with open(os.path.join(out, f"rank{{rank}}.json"), "w") as f:
    json.dump({{"history": tracker.history, "digest": digest, "seen": seen,
               "plans_len": [row["sample_passes"] for row in tracker.history]}}, f)
"""


def _torchrun(source: str, tmp_path, port: int) -> None:
    """Run `source` (formatted with tests= and out=) on 2 processes (torchrun, gloo, CPU); stderr on failure."""
    script = tmp_path / "run.py"
    script.write_text(source.format(tests=str(Path(__file__).parent), out=str(tmp_path)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "ACCELERATE_USE_CPU": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           str(port), str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]


def test_two_processes_share_one_plan_and_one_state(tmp_path):
    _torchrun(_SCRIPT, tmp_path, port=29517)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["digest"] == r1["digest"] and r0["history"] == r1["history"], "ranks diverged"
    # each rank trains its own half of the one global plan (sharded once, not twice), nothing is dropped
    seen0 = [i for b in r0["seen"] for i in b]
    seen1 = [i for b in r1["seen"] for i in b]
    assert len(seen0) == len(seen1)
    assert len(seen0) + len(seen1) == sum(r0["plans_len"]), "the gathered pass count is the sum over ranks"
    assert r0["history"][-1]["FREEZE"] > 0 and r0["plans_len"][-1] < r0["plans_len"][0]


_REPORT_SCRIPT = r"""
import json, os, sys
sys.path.insert(0, {tests!r})
import torch
from hf_helpers import make_args, tiny_gpt2, toy_lm_dataset
from geko_hf import GEKOConfig, GEKOTrainer
torch.set_num_threads(1)
out = {out!r}
args = make_args(__import__("pathlib").Path(out), num_train_epochs=2, per_device_train_batch_size=4)
# every row random tokens, every LIGHT sample trained: nothing can be skipped in 2 epochs (the Q-value needs more
# epochs to reach FREEZE), so GEKO trains exactly the stock Trainer's batches
trainer = GEKOTrainer(model=tiny_gpt2(), args=args, train_dataset=toy_lm_dataset(n=32, random_every=1),
                      geko_config=GEKOConfig(light_sample_rate=1.0))
trainer.train()
if trainer.is_world_process_zero():
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump({{"report": trainer.get_efficiency_report(), "global_step": trainer.state.global_step}}, f)
"""


def test_two_processes_count_each_global_batch_once(tmp_path):
    """On N ranks a forward call is one global micro-batch (every rank runs one step): the report counts the same unit
    as its full-data reference, so a run that skips nothing saves nothing (not -100%)."""
    _torchrun(_REPORT_SCRIPT, tmp_path, port=29518)
    out = json.loads((tmp_path / "report.json").read_text())
    rep = out["report"]
    assert rep["model_forward_calls"] == rep["full_data"]["model_forward_calls"]
    assert rep["model_forward_calls_saved"] == 0
    assert [row["sample_passes"] for row in rep["history"]] == [32, 32], "nothing is skipped in 2 epochs"
    # 32 samples / (2 ranks x 4) = 4 global batches an epoch, each one optimizer step
    assert [row["batches"] for row in rep["history"]] == [4, 4] and out["global_step"] == 8
    assert rep["model_forward_calls"] == 8
    assert rep["forward_sample_passes"] == rep["full_data"]["forward_sample_passes"] == 64
    assert rep["sample_passes_saved"] == 0
