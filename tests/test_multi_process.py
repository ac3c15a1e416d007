"""Two real processes (torchrun, gloo, CPU): one truth across ranks. Every rank plans the same global order (checked
at each epoch start), accelerate deals the batches out once (no double sharding), the gathered records reach the
state in training order, so the state equals a 1-process run's with the same global batch; a mid-epoch resume
continues exactly, on 2 processes or on 1 with the same global batch; a user's save on rank 0 alone does not hang.

The statistics are `RowStatistics` (tests/mp_worker.py): a pure function of the row and the epoch, so states can
be compared bit for bit across process counts whatever the model's float arithmetic does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import mp_worker  # noqa: E402

pytestmark = pytest.mark.multi_process

WORKER = Path(__file__).parent / "mp_worker.py"


def _launch(out, options: dict, port: int, processes: int = 2, timeout: int = 300) -> subprocess.CompletedProcess:
    """tests/mp_worker.py on `processes` processes (torchrun, gloo, CPU). The workers inherit the captured stderr,
    so a failing rank's traceback is in the result (and in the assertion message of `_ok`)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "ACCELERATE_USE_CPU": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                           "--master_port", str(port), str(WORKER), str(out), json.dumps(options)],
                          env=env, capture_output=True, text=True, timeout=timeout)


def _ok(proc) -> None:
    assert proc.returncode == 0, proc.stderr[-6000:]


def _ranks(out, n: int = 2) -> list[dict]:
    return [json.loads((Path(out) / f"rank{r}.json").read_text()) for r in range(n)]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """6 epochs on 2 processes x 4 (global batch 8), a checkpoint every 2 steps, and at step 5 (mid-epoch) a
    save_model() called by rank 0 alone."""
    out = tmp_path_factory.mktemp("two_ranks")
    _ok(_launch(out, {"batch": 4, "save_steps": 2, "rank0_save_step": 5}, port=29521))
    return out, _ranks(out)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, one_thread):
    return mp_worker.train(tmp_path_factory.mktemp("one_process"), batch=8)


def _interleave(r0: dict, r1: dict) -> list[int]:
    """The global training sequence: accelerate deals micro-batch k to rank k % 2."""
    out = []
    for (_, a), (_, b) in zip(r0["seen"], r1["seen"]):
        out += a + b
    return out


def test_two_ranks_train_each_planned_pass_once_and_match_one_process(two_ranks, one_process):
    _, (r0, r1) = two_ranks
    assert r0["digest"] == r1["digest"] and r0["history"] == r1["history"], "ranks diverged"
    assert r0["plans"] == r1["plans"] == one_process["plans"]
    plans = [r0["plans"][str(e)] for e in range(len(r0["history"]))]
    # every epoch has repeats (HARD weight 2.5) and samples freeze, so the order of records matters
    assert all(len(set(p)) < len(p) for p in plans[1:]) and r0["history"][-1]["FREEZE"] > 0
    # plans are whole optimizer steps, so accelerate never pads the last batch with duplicates: the ranks together
    # train exactly the planned passes, in the planned order
    assert all(len(p) % 8 == 0 for p in plans)
    assert _interleave(r0, r1) == [i for p in plans for i in p]
    # the tracker applies them in that order on both ranks (not rank 0's epoch, then rank 1's) ...
    assert r0["records"] == r1["records"] == plans
    # ... so the state is the 1-process run's with the same global batch, bit for bit
    assert r0["digest"] == one_process["digest"] and r0["history"] == one_process["history"]


def test_the_data_map_on_two_processes_is_the_one_process_map(two_ranks, one_process):
    """Every observation of both ranks reaches the map in global order: the 2-process map equals the 1-process one."""
    _, (r0, r1) = two_ranks
    assert r0["map_observations"] == sum(row["sample_passes"] for row in r0["history"]) > 0
    assert r0["map_digest"] == r1["map_digest"] == one_process["map_digest"]


def test_save_model_on_rank_zero_alone_does_not_hang(two_ranks):
    """The stock Trainer lets a user call save_model() on the main process only under DDP; GEKO's save must not wait
    in a collective the other rank never joins (the fixture's run would time out)."""
    from geko_hf.core.checkpoint import load_geko_state

    out, (r0, _) = two_ranks
    payload = load_geko_state(str(out / "rank0_save"))
    assert payload["in_epoch"] and payload["tracker"]["epoch"] == 0  # step 5 of the first epoch's 8
    assert r0["global_step"] == sum(row["batches"] for row in r0["history"])


def _mid_epoch_checkpoint(out, history) -> tuple[str, int]:
    """A checkpoint strictly inside an epoch that is shorter than the first (samples already frozen)."""
    from geko_hf.core.checkpoint import load_geko_state

    start = 0
    for row in history:
        if row["batches"] < history[0]["batches"]:
            for step in range(start + 1, start + row["batches"]):
                path = out / f"checkpoint-{step}"
                if path.exists() and load_geko_state(str(path))["in_epoch"]:
                    return str(path), step
        start += row["batches"]
    raise AssertionError("no mid-epoch checkpoint in a shrunk epoch")


def _hf_resumes_multi_process_cpu() -> bool:
    """Older transformers (5.3 among them) load the optimizer onto `args.device`, 'cpu:0' on a multi-process CPU
    run, which torch cannot restore: the stock Trainer itself cannot resume such a run there."""
    import inspect

    from transformers import Trainer

    return 'device.type != "cpu"' in inspect.getsource(Trainer._load_optimizer_and_scheduler)


@pytest.mark.skipif(not _hf_resumes_multi_process_cpu(),
                    reason="this transformers cannot resume any multi-process CPU run (optimizer map_location 'cpu:0')")
def test_two_rank_resume_mid_epoch_continues_the_same_run(two_ranks, tmp_path):
    out, (r0, r1) = two_ranks
    ckpt, step = _mid_epoch_checkpoint(out, r0["history"])
    _ok(_launch(tmp_path, {"batch": 4, "resume": ckpt}, port=29522))
    s0, s1 = _ranks(tmp_path)
    for full, resumed in ((r0, s0), (r1, s1)):
        assert resumed["seen"] == [x for x in full["seen"] if x[0] >= step], "the resumed order differs"
        assert resumed["digest"] == full["digest"] and resumed["history"] == full["history"]


def test_split_batches_trains_the_one_process_run(tmp_path, one_process):
    """accelerate's split_batches=True slices each batch of per_device_train_batch_size over the ranks: 2 ranks x 8
    split is the 1-process run with batch 8. GEKO took the global batch for 16, so its epochs counted half their real
    steps and HF's max_steps ended the run early (5 of 6 epochs, 30 of 34 steps)."""
    _ok(_launch(tmp_path, {"batch": 8, "args": {"accelerator_config": {"split_batches": True}}}, port=29524))
    r0, r1 = _ranks(tmp_path)
    assert r0["global_step"] == r1["global_step"] == one_process["global_step"]
    assert r0["history"] == r1["history"] == one_process["history"]
    assert r0["digest"] == r1["digest"] == one_process["digest"] and r0["plans"] == one_process["plans"]
    # each rank trained its half of every global batch: the halves put together are the 1-process batches
    assert [a + b for (_, a), (_, b) in zip(r0["seen"], r1["seen"])] == [ids for _, ids in one_process["seen"]]


def test_resume_on_another_world_size(two_ranks, tmp_path, one_thread):
    """Documented behaviour: a checkpoint resumes on another number of processes when the global batch (per-device
    batch x processes x accumulation) is the same (the plan and HF's step count then mean the same samples);
    otherwise it is refused with both step sizes named."""
    out, (r0, _) = two_ranks
    ckpt, _ = _mid_epoch_checkpoint(out, r0["history"])
    same_global_batch = mp_worker.train(tmp_path / "b8", batch=8, resume=ckpt)
    assert same_global_batch["digest"] == r0["digest"] and same_global_batch["history"] == r0["history"]
    with pytest.raises(ValueError, match="8 samples per optimizer step .* this run uses 4"):
        mp_worker.train(tmp_path / "b4", batch=4, resume=ckpt)


def test_ranks_that_plan_apart_fail_on_every_rank_with_the_ranks_named(tmp_path):
    """A rank whose plan differs (another numpy build, data or config on one rank) would train other samples or
    hang in the gather: both ranks stop at the first epoch with one message, and the worker's error reaches the
    test output."""
    proc = _launch(tmp_path, {"batch": 4, "reverse_plan_rank": 1}, port=29523, timeout=240)
    assert proc.returncode != 0
    assert "GEKO's plan for epoch 1 differs across processes: rank(s) [1]" in proc.stderr, proc.stderr[-4000:]
    assert not (tmp_path / "rank0.json").exists() and not (tmp_path / "rank1.json").exists()


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


def _torchrun(source: str, tmp_path, port: int) -> None:
    script = tmp_path / "run.py"
    script.write_text(source.format(tests=str(Path(__file__).parent), out=str(tmp_path)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "ACCELERATE_USE_CPU": "1"}
    _ok(subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                        str(port), str(script)], env=env, capture_output=True, text=True, timeout=600))


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
