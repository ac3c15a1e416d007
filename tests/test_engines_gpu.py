"""FSDP and DeepSpeed through accelerate: the data path is DDP's (accelerate deals the global plan's batches out the
same way), so GEKO's state must equal a 1-process run's with the same global batch, bit for bit (RowStatistics:
see tests/mp_worker.py). accelerate enables FSDP and DeepSpeed only on accelerators (on CPU it keeps
DistributedType.MULTI_CPU and trains plain DDP even with `fsdp=` set), so these tests are `gpu`-marked: they run
on 1 or 2 CUDA devices, one process each, and skip elsewhere."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import mp_worker  # noqa: E402
from test_multi_process import _launch, _ok, _ranks  # noqa: E402

pytestmark = [pytest.mark.gpu, pytest.mark.multi_process,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

PROCESSES = min(torch.cuda.device_count(), 2) if torch.cuda.is_available() else 0
BATCH = 4


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The 1-process CPU run with the same global batch."""
    return mp_worker.train(tmp_path_factory.mktemp("reference"), batch=BATCH * PROCESSES)


def _check(out, reference, engine_type: str) -> list[dict]:
    ranks = _ranks(out, PROCESSES)
    for r in ranks:
        assert engine_type in r["distributed_type"], r["distributed_type"]
        assert r["digest"] == reference["digest"] and r["history"] == reference["history"]
        assert r["records"] == [reference["plans"][str(e)] for e in range(len(r["history"]))]
    return ranks


@pytest.mark.parametrize("version", [1, 2])
def test_fsdp_state_matches_one_process(tmp_path, reference, version):
    fsdp = {"fsdp": "full_shard", "use_cpu": False,
            "fsdp_config": {"fsdp_version": version, "transformer_layer_cls_to_wrap": ["GPT2Block"]}}
    _ok(_launch(tmp_path, {"batch": BATCH, "save_steps": 3, "args": fsdp}, port=29531 + version,
                processes=PROCESSES))
    _check(tmp_path, reference, "FSDP")
    assert (tmp_path / "checkpoint-3" / "geko_state.npz").exists()


def _deepspeed(scheduler: bool) -> dict:
    config = {"train_micro_batch_size_per_gpu": "auto", "train_batch_size": "auto",
              "gradient_accumulation_steps": "auto", "zero_optimization": {"stage": 2},
              "optimizer": {"type": "AdamW", "params": {"lr": "auto", "weight_decay": "auto"}}}
    if scheduler:  # a scheduler DeepSpeed builds: GEKO cannot stretch it, and says so
        config["scheduler"] = {"type": "WarmupLR", "params": {"warmup_num_steps": 2}}
    return {"deepspeed": config, "use_cpu": False}


@pytest.mark.parametrize("scheduler", [False, True])
def test_deepspeed_state_matches_one_process(tmp_path, reference, scheduler):
    pytest.importorskip("deepspeed")
    proc = _launch(tmp_path, {"batch": BATCH, "args": _deepspeed(scheduler)}, port=29535 + scheduler,
                   processes=PROCESSES)
    _ok(proc)
    _check(tmp_path, reference, "DEEPSPEED")
    assert ("GEKO cannot stretch this learning-rate scheduler" in proc.stderr) == scheduler, proc.stderr[-3000:]

