"""The golden run (TRL's tests/invariant in spirit): one tiny seeded GEKO run whose plans, report and loss history
are committed in tests/golden/golden_run.json, so plans and accounting cannot drift silently.

Per-sample statistics come from `RowStatistics` (a pure function of the row and the epoch), so the plans, buckets
and counts are exact on every supported stack. The training loss depends on the model (transformers releases
initialise the tiny GPT-2 differently): it is kept per transformers release and compared within a tolerance where
the installed release has one. After an intended change of behaviour, regenerate on each stack and review the diff:
    GEKO_REGENERATE_GOLDEN=1 python -m pytest tests/test_golden.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from geko_hf import GEKOConfig, GEKOTrainer
from hf_helpers import RowStatistics, make_args, tiny_gpt2, toy_lm_dataset

GOLDEN = Path(__file__).parent / "golden" / "golden_run.json"
CONFIG = dict(bucket_weights=[2.5, 1, 1], light_sample_rate=0.5, freeze_recheck_rate=0.2)  # repeats, thinning, probes


def _run(tmp_path) -> dict:
    rows = RowStatistics()
    trainer = GEKOTrainer(model=tiny_gpt2(0), args=make_args(tmp_path, num_train_epochs=5, per_device_train_batch_size=4),
                          train_dataset=toy_lm_dataset(n=40, random_every=4), callbacks=[rows],
                          geko_config=GEKOConfig(**CONFIG, log_bucket_stats=False), **rows.hooks())
    plans = {}
    original = trainer.geko.tracker_class.plan

    def spy(tracker, epoch):
        plan = original(tracker, epoch)
        plans.setdefault(epoch, plan.tolist())
        return plan

    trainer.geko.tracker_class = type("Spy", (trainer.geko.tracker_class,), {"plan": spy})
    # the model's own mean loss: transformers releases differ in how the Trainer normalises a summed loss
    trainer.model_accepts_loss_kwargs = False
    trainer.train()
    report = trainer.geko.report()
    return {"plans": {str(e): p for e, p in sorted(plans.items())},
            "report": {k: v for k, v in report.items() if k != "history"}, "history": report["history"],
            "global_step": trainer.state.global_step,
            "losses": [round(e["loss"], 6) for e in trainer.state.log_history if "loss" in e]}


def test_the_golden_run_has_not_drifted(tmp_path):
    import transformers

    got = json.loads(json.dumps(_run(tmp_path)))  # the JSON types the file holds
    release = transformers.__version__
    if os.environ.get("GEKO_REGENERATE_GOLDEN"):
        old = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
        losses = {**old.get("losses", {}), release: got["losses"]}
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps({**got, "losses": losses}, indent=1) + "\n")
        pytest.skip(f"regenerated {GOLDEN} (losses of transformers {release})")
    want = json.loads(GOLDEN.read_text())
    assert got["plans"] == want["plans"], "an epoch plan changed"
    assert got["history"] == want["history"], "a bucket count or pass count changed"
    assert got["report"] == want["report"], "the accounting changed"
    assert got["global_step"] == want["global_step"]
    if release in want["losses"]:
        assert got["losses"] == pytest.approx(want["losses"][release], rel=1e-3, abs=1e-4), "the loss history changed"


def test_the_golden_run_is_not_trivial():
    """The committed run exercises what the golden is for: shrinking epochs, repeats, FREEZE, re-checks."""
    want = json.loads(GOLDEN.read_text())
    lengths = [len(p) for p in want["plans"].values()]
    assert len(set(lengths)) > 1 and want["report"]["sample_passes_saved"] > 0
    assert any(len(set(p)) < len(p) for p in want["plans"].values())  # a HARD sample trained twice in an epoch
    assert any(row["FREEZE"] > 0 for row in want["history"])
