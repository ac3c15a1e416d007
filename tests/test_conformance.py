"""Every built-in selection policy and every preset through the same life: 3 epochs, a checkpoint after the first,
resume, and the same run bit for bit (parameters, GEKO state, data map, plans). Composer's
tests/algorithms/algorithm_settings.py in spirit: a new policy or preset is covered by being registered."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geko_hf import GEKOConfig, GEKOTrainer, get_preset
from geko_hf.core.config import PRESETS
from geko_hf.core.policies import POLICIES, BudgetPolicy
from hf_helpers import make_args, tiny_gpt2, toy_lm_dataset

BUILT_IN = sorted(name for name, cls in POLICIES.items() if cls.__module__ == "geko_hf.core.policies")
CASES = [("policy", name) for name in BUILT_IN] + [("preset", name) for name in sorted(PRESETS)]
N, BATCH, SAVE_AT = 40, 4, 13  # 10 steps in a full epoch: step 13 is past the first epoch, where policies differ


def _config(kind: str, name: str) -> GEKOConfig:
    if kind == "preset":
        return get_preset(name).replace(log_bucket_stats=False)
    budget = 0.6 if issubclass(POLICIES[name], BudgetPolicy) else None  # a budget policy spends a target
    return GEKOConfig(policy=name, target_budget=budget, log_bucket_stats=False)


def _run(folder, config, resume=None, save=True):
    args = make_args(folder, num_train_epochs=3, per_device_train_batch_size=BATCH,
                     save_strategy="steps" if save else "no", save_steps=SAVE_AT)
    trainer = GEKOTrainer(model=tiny_gpt2(0), args=args, train_dataset=toy_lm_dataset(n=N), geko_config=config)
    trainer.train(resume_from_checkpoint=resume)
    return trainer


def _flat(d, prefix=""):
    for key, value in d.items():
        if isinstance(value, dict):
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def test_every_built_in_policy_and_preset_is_covered():
    assert {"geko", "geko_v2", "observe", "random", "infobatch", "full"} <= set(BUILT_IN)
    assert {"default", "observe", "v2", "seed"} <= set(PRESETS)


@pytest.mark.parametrize("kind, name", CASES, ids=[f"{k}-{n}" for k, n in CASES])
def test_three_epochs_save_resume_bit_for_bit(tmp_path, kind, name):
    config = _config(kind, name)
    straight = _run(tmp_path / "a", config)
    checkpoint = tmp_path / "a" / "out" / f"checkpoint-{SAVE_AT}"
    if not checkpoint.exists():
        pytest.skip(f"{kind} {name} ran {straight.state.global_step} steps: no checkpoint at step {SAVE_AT}")
    resumed = _run(tmp_path / "b", config, resume=str(checkpoint), save=False)
    for (key, p), (_, q) in zip(straight.model.named_parameters(), resumed.model.named_parameters()):
        assert torch.equal(p, q), key
    a, b = dict(_flat(straight.geko.tracker.state_dict())), dict(_flat(resumed.geko.tracker.state_dict()))
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            assert a[key] == b[key], key
    assert straight.geko.tracker.data_map.statistics()["observations"].sum() > 0
