"""Faults: a SIGKILL inside the GEKO state write (deterministic), failed loads that must leave files alone, and
property tests of the state store and the planner under hostile inputs."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from geko_hf.core.buckets import FOCUS, FREEZE, HARD, LIGHT
from geko_hf.core.checkpoint import (
    STATE_FILE,
    is_complete_checkpoint,
    load_geko_state,
    newest_complete_checkpoint,
    save_geko_state,
)
from geko_hf.core.config import GEKOConfig
from geko_hf.core.selection import plan_epoch, planned_length
from geko_hf.core.state import SampleState

TESTS = str(Path(__file__).parent)
TMP_PREFIX = f".{STATE_FILE}.tmp-"


# =====================================================================================================
# 1. A deterministic SIGKILL in the middle of writing geko_state.npz, then resume
# =====================================================================================================
SAVE_STEPS = 2
KILL_AT_SAVE = 6  # the 6th GEKO state write: checkpoint-12, after the first repartition

_FAULT_SCRIPT = """
import io, json, os, signal, sys
sys.path.insert(0, {tests!r})
from pathlib import Path
import torch
torch.set_num_threads(1)
import geko_hf.core.checkpoint as ck
from hf_helpers import make_args, tiny_gpt2, toy_lm_dataset
from geko_hf import GEKOTrainer

kill_at = int(os.environ.get("GEKO_TEST_KILL_AT_SAVE", "0"))
if kill_at:
    real_savez = ck.np.savez  # checkpoint.py calls np.savez(f, ...) on the open temporary file
    calls = [0]

    def savez(file, *args, **kwds):
        name = os.path.abspath(getattr(file, "name", str(file)))
        if not os.path.basename(name).startswith({tmp_prefix!r}):
            return real_savez(file, *args, **kwds)
        calls[0] += 1
        if calls[0] < kill_at:
            return real_savez(file, *args, **kwds)
        buf = io.BytesIO()
        real_savez(buf, *args, **kwds)
        data = buf.getvalue()
        file.write(data[: len(data) // 2])  # part of the file, then the process dies mid-write
        file.flush()
        os.fsync(file.fileno())
        print("KILLED_IN", os.path.dirname(name), len(data), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    ck.np.savez = savez

out = Path({out!r})
args = make_args(out, num_train_epochs=4, save_strategy="steps", save_steps={save_steps})
args.output_dir = str(out)
t = GEKOTrainer(model=tiny_gpt2(), args=args, train_dataset=toy_lm_dataset(random_every=4))
t.train(resume_from_checkpoint=True if os.environ.get("GEKO_TEST_RESUME") else None)
tr = t.geko.tracker
result = {{"global_step": t.state.global_step, "history": tr.history, "totals": tr.totals,
          "state": {{k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in tr.state.state_dict().items()}}}}
print("RESULT", json.dumps(result, default=lambda o: o.item()), flush=True)
"""


def _env(**extra):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "1"}
    env.pop("GEKO_TEST_KILL_AT_SAVE", None)
    env.pop("GEKO_TEST_RESUME", None)
    env.update(extra)
    return env


def _start(out: Path, **extra_env) -> subprocess.Popen:
    script = _FAULT_SCRIPT.format(tests=TESTS, out=str(out), tmp_prefix=TMP_PREFIX, save_steps=SAVE_STEPS)
    return subprocess.Popen([sys.executable, "-c", script], env=_env(**extra_env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, timeout=180):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"subprocess timed out; stderr tail:\n{err[-3000:]}")
    return proc.returncode, out, err


def _result(stdout: str) -> dict:
    lines = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")]
    assert len(lines) == 1, stdout[-3000:]
    return json.loads(lines[0][len("RESULT "):])


def test_sigkill_inside_geko_state_write_then_resume_matches_uninterrupted_run(tmp_path):
    straight_dir, faulty_dir = tmp_path / "straight", tmp_path / "faulty"
    # the uninterrupted reference runs alongside the run that gets killed and its resume (start-up dominates)
    straight = _start(straight_dir)
    try:
        rc_k, out_k, err_k = _finish(_start(faulty_dir, GEKO_TEST_KILL_AT_SAVE=str(KILL_AT_SAVE)))
        _check_killed_run(faulty_dir, rc_k, out_k, err_k)
        rc_r, out_r, err_r = _finish(_start(faulty_dir, GEKO_TEST_RESUME="1"))
    except BaseException:
        straight.kill()
        straight.communicate()
        raise
    rc_s, out_s, err_s = _finish(straight)
    assert rc_s == 0, err_s[-3000:]
    reference = _result(out_s)
    assert reference["global_step"] > KILL_AT_SAVE * SAVE_STEPS, "the run must outlive the save that is killed"

    # resume=True skipped the half-saved folder and ended exactly where the uninterrupted run ended
    assert rc_r == 0, err_r[-3000:]
    resumed = _result(out_r)
    assert resumed["global_step"] == reference["global_step"]
    assert resumed["history"] == reference["history"]
    assert resumed["totals"] == reference["totals"]
    for name in reference["state"]:
        assert resumed["state"][name] == reference["state"][name], name
    # the re-save of the killed step completed the folder properly
    killed_folder = faulty_dir / f"checkpoint-{KILL_AT_SAVE * SAVE_STEPS}"
    assert is_complete_checkpoint(str(killed_folder))
    load_geko_state(str(killed_folder))


def _check_killed_run(faulty_dir: Path, rc_k: int, out_k: str, err_k: str) -> None:
    # the kill happened, by SIGKILL, inside the K-th GEKO state write
    assert rc_k == -signal.SIGKILL, (rc_k, err_k[-3000:])
    assert "RESULT" not in out_k
    marks = [ln.split() for ln in out_k.splitlines() if ln.startswith("KILLED_IN ")]
    assert len(marks) == 1, out_k[-3000:]
    killed_folder = Path(marks[0][1])
    step = KILL_AT_SAVE * SAVE_STEPS
    assert killed_folder == faulty_dir / f"checkpoint-{step}"

    # the folder being saved is incomplete: no state file, no trainer_state.json, only the partial temporary
    names = set(os.listdir(killed_folder))
    assert "trainer_state.json" not in names
    assert STATE_FILE not in names
    leftovers = [n for n in names if "geko_state" in n]
    assert all(n.startswith(TMP_PREFIX) for n in leftovers), leftovers
    assert len(leftovers) <= 1
    assert not is_complete_checkpoint(str(killed_folder))
    # nothing after it was written, and every earlier checkpoint is complete and loadable
    numbers = sorted(int(p.name.split("-")[1]) for p in faulty_dir.glob("checkpoint-*"))
    assert numbers == list(range(SAVE_STEPS, step + 1, SAVE_STEPS))
    for n in numbers[:-1]:
        folder = faulty_dir / f"checkpoint-{n}"
        assert is_complete_checkpoint(str(folder)), folder
        load_geko_state(str(folder))
    previous = faulty_dir / f"checkpoint-{step - SAVE_STEPS}"
    assert newest_complete_checkpoint(str(faulty_dir)) == str(previous)


# =====================================================================================================
# 2. Failed loads leave the checkpoint files untouched
# =====================================================================================================
@pytest.fixture(scope="module")
def epoch_checkpoints(tmp_path_factory):
    """A short GEKOTrainer run with a checkpoint per epoch."""
    import torch
    from hf_helpers import make_args, tiny_gpt2, toy_lm_dataset

    from geko_hf import GEKOTrainer

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("epoch_ckpts")
        args = make_args(out, num_train_epochs=2, save_strategy="epoch")
        args.output_dir = str(out)
        GEKOTrainer(model=tiny_gpt2(), args=args, train_dataset=toy_lm_dataset(random_every=4)).train()
    finally:
        torch.set_num_threads(before)
    ckpts = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert len(ckpts) == 2 and all((c / STATE_FILE).is_file() for c in ckpts)
    return out


def _tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fraction", [0.5, 0.1, 0.9])
def test_truncated_state_file_is_damaged_and_left_as_is(epoch_checkpoints, tmp_path, fraction):
    src = next(epoch_checkpoints.glob("checkpoint-*")) / STATE_FILE
    load_geko_state(str(src))  # the intact file loads
    data = src.read_bytes()
    path = tmp_path / STATE_FILE
    path.write_bytes(data[: int(len(data) * fraction)])
    before = path.read_bytes()
    with pytest.raises(ValueError, match="damaged"):
        load_geko_state(str(tmp_path))
    with pytest.raises(ValueError, match="damaged"):
        load_geko_state(str(path))  # the .npz path itself, too
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == [STATE_FILE]  # no side files either


@pytest.mark.parametrize("resume", ["path", "true_same_output_dir"])
def test_resume_on_different_dataset_refused_and_checkpoint_untouched(epoch_checkpoints, tmp_path, resume):
    import torch
    from hf_helpers import make_args, tiny_gpt2, toy_lm_dataset

    from geko_hf import GEKOTrainer

    out = tmp_path / "out"
    shutil.copytree(epoch_checkpoints, out)
    ckpt = newest_complete_checkpoint(str(out))
    assert ckpt is not None
    before = _tree_hashes(out)
    other = toy_lm_dataset(n=64, random_every=4, seed=7)  # same length, different rows
    args = make_args(tmp_path, num_train_epochs=2, save_strategy="epoch")
    args.output_dir = str(out if resume == "true_same_output_dir" else tmp_path / "elsewhere")
    trainer = GEKOTrainer(model=tiny_gpt2(), args=args, train_dataset=other)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.raises(ValueError, match=r"different training dataset.*rows_sha1.*rows_sha1"):
            trainer.train(resume_from_checkpoint=True if resume == "true_same_output_dir" else ckpt)
    finally:
        torch.set_num_threads(threads)
    assert _tree_hashes(out) == before


@pytest.mark.parametrize("meta", [{"geko_hf_version": "0.1"}, {}, ["format", 1], "format", 1, None])
def test_state_without_format_stamp_is_refused(tmp_path, meta):
    path = tmp_path / STATE_FILE
    with open(path, "wb") as f:
        np.savez(f, meta=np.array(json.dumps(meta)))
    before = path.read_bytes()
    with pytest.raises(ValueError, match="no GEKO state format stamp"):
        load_geko_state(str(tmp_path))
    assert path.read_bytes() == before


def test_state_without_meta_or_with_bad_json_is_damaged(tmp_path):
    for i, arrays in enumerate([{"a0": np.arange(3)}, {"meta": np.array("{not json")},
                                {"meta": np.array(json.dumps({"format": 1, "x": {"__array__": "a7"}}))}]):
        folder = tmp_path / str(i)
        folder.mkdir()
        with open(folder / STATE_FILE, "wb") as f:
            np.savez(f, **arrays)
        with pytest.raises(ValueError, match="damaged"):
            load_geko_state(str(folder))


def test_save_roundtrip_small_payload(tmp_path):
    path = save_geko_state(str(tmp_path), {"x": np.arange(5, dtype=np.int16), "y": {"z": [1, 2.5, "s"]}})
    assert path == str(tmp_path / STATE_FILE)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(TMP_PREFIX)]
    got = load_geko_state(str(tmp_path))
    np.testing.assert_array_equal(got["x"], np.arange(5, dtype=np.int16))
    assert got["x"].dtype == np.int16 and got["y"] == {"z": [1, 2.5, "s"]} and got["format"] == 1


# =====================================================================================================
# 3. Property tests: SampleState under hostile updates, then the planner on the resulting state
# =====================================================================================================
PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_hostile_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([np.nan, np.inf, -np.inf, 1e39, -1e39, 3.4028235e38, -3.4028235e38, 3.4028234e38, 1e30,
                     -1e30, 7e4, -7e4, 6e4, -1.0, -0.0, 0.0, 1e-45, 0.5, 1.0, 2.0, 10.0]),
    st.floats(-20.0, 20.0),
)
_confidences = st.one_of(
    st.floats(0.0, 1.0),
    st.sampled_from([np.nan, np.inf, -np.inf, -0.5, -1e39, 1.5, 1e39, 0.85, 0.86, 0.6, 0.61, 1.0, -0.0]),
    st.floats(allow_nan=True, allow_infinity=True),
)


@st.composite
def _configs(draw):
    freeze_conf = draw(st.sampled_from([0.5, 0.7, 0.85, 0.99]))
    return GEKOConfig(
        q_value_mode=draw(st.sampled_from(["auto", "seed"])),
        freeze_after_observations=draw(st.integers(1, 4)),
        prune_frozen_after=draw(st.integers(0, 3)),
        freeze_confidence=freeze_conf,
        focus_confidence=draw(st.sampled_from([x for x in (0.1, 0.3, 0.6) if x < freeze_conf])),
        freeze_quality=draw(st.sampled_from([-5.0, 0.0, 0.8, 1.0])),
        min_q_for_freeze=draw(st.sampled_from([0.01, 0.5, 0.8, 1.0])),
        quality_window=draw(st.integers(1, 5)),
        q_value_init=draw(st.sampled_from([0.0, 0.5, 1.0])),
        q_value_lr=draw(st.sampled_from([1e-3, 0.1, 1.0])),
    )


@st.composite
def _update_op(draw, n):
    m = draw(st.integers(0, 24))
    ids = draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))
    if m and draw(st.booleans()):  # heavy repeats of a few ids
        ids = [ids[i % min(3, m)] for i in range(m)]
    tokens = draw(st.one_of(st.none(), st.lists(st.integers(-10, 2**33), min_size=m, max_size=m)))
    return ("update", np.array(ids, np.int64),
            np.array(draw(st.lists(_hostile_floats, min_size=m, max_size=m)), np.float64),
            np.array(draw(st.lists(st.booleans(), min_size=m, max_size=m)), bool),
            np.array(draw(st.lists(_confidences, min_size=m, max_size=m)), np.float64),
            None if tokens is None else np.array(tokens, np.int64))


@st.composite
def _scenarios(draw):
    n = draw(st.integers(1, 64))
    cfg = draw(_configs())
    ops = draw(st.lists(st.one_of(_update_op(n), st.just(("repartition",)),
                                  st.tuples(st.just("near_saturation"), st.integers(0, n - 1),
                                            st.integers(65530, 65535))),
                        min_size=1, max_size=16))
    weights = draw(st.tuples(*[st.one_of(st.floats(0.0, 1e6), st.sampled_from([0.0, 1.0, 1e-300, 1e308]))] * 3)
                   .filter(lambda w: max(w) > 0))
    return dict(n=n, cfg=cfg, ops=ops, weights=weights,
                max_times_seen=draw(st.one_of(st.integers(1, 12), st.integers(65530, 65535))),
                seed=draw(st.integers(0, 2**32 - 1)), epoch=draw(st.integers(0, 1000)),
                unit=draw(st.integers(1, 16)),
                light_rate=draw(st.one_of(st.floats(0.0, 1.0, exclude_min=True), st.just(1.0))))


def _check_state(s: SampleState, seen_before: np.ndarray, pruned_before: np.ndarray) -> None:
    for name in ("loss", "confidence", "q", "loss_history"):
        assert np.isfinite(getattr(s, name)).all(), name
    assert ((s.q >= 0) & (s.q <= 1)).all(), s.q
    assert ((s.confidence >= 0) & (s.confidence <= 1)).all(), s.confidence
    assert (s.times_seen.astype(np.int64) <= 65535).all()
    assert (s.times_seen.astype(np.int64) >= seen_before).all(), "times_seen decreased"
    assert np.isin(s.bucket, [FREEZE, LIGHT, FOCUS, HARD]).all(), s.bucket
    assert not (pruned_before & ~s.pruned).any(), "a pruned sample came back"


@PROPS
@given(_scenarios())
def test_state_invariants_under_hostile_updates_and_plan_is_valid(sc):
    n, s = sc["n"], SampleState(sc["n"], sc["cfg"])
    _check_state(s, np.zeros(n, np.int64), np.zeros(n, bool))
    for op in sc["ops"]:
        seen_before, pruned_before = s.times_seen.astype(np.int64).copy(), s.pruned.copy()
        if op[0] == "update":
            _, ids, losses, correct, conf, tokens = op
            s.update(ids, losses, correct, conf, tokens)
        elif op[0] == "repartition":
            s.repartition()
        else:  # a sample seen (almost) uint16-many times already: the counter must saturate, not wrap
            _, i, value = op
            s.times_seen[i] = max(int(s.times_seen[i]), value)
            seen_before = s.times_seen.astype(np.int64).copy()
        _check_state(s, seen_before, pruned_before)

    mts = sc["max_times_seen"]
    plan = plan_epoch(s.bucket, s.pruned, s.times_seen, sc["weights"], mts, seed=sc["seed"], epoch=sc["epoch"],
                      unit=sc["unit"], light_rate=sc["light_rate"])
    _check_plan(plan, s, mts, sc["unit"])


def _check_plan(plan, s: SampleState, mts: int, unit: int) -> None:
    n = s.num_samples
    assert plan.ndim == 1
    assert len(plan) % unit == 0
    if len(plan):
        assert plan.min() >= 0 and plan.max() < n
        assert not (s.bucket[plan] == FREEZE).any()
        assert not s.pruned[plan].any()
        assert (s.times_seen[plan].astype(np.int64) < mts).all()
    remaining = np.maximum(mts - s.times_seen.astype(np.int64), 0)
    assert (np.bincount(plan, minlength=n) <= remaining).all()


_huge_or_tiny_weight = st.one_of(st.floats(0.0, 1e308), st.sampled_from([0.0, 1e-300, 0.5, 1.0, 1e300, 1e308]))


@PROPS
@given(st.lists(st.sampled_from([FREEZE, LIGHT, FOCUS, HARD]), min_size=1, max_size=64),
       st.tuples(_huge_or_tiny_weight, _huge_or_tiny_weight, _huge_or_tiny_weight).filter(lambda w: max(w) > 0),
       st.integers(1, 16), st.integers(0, 2**32 - 1))
@example([FOCUS], (0.0, 0.5, 1e308), 1, 0)  # 0 LIGHT samples x an infinite LIGHT cost ratio = NaN
@example([HARD, HARD], (1e308, 1.0, 1.0), 1, 0)  # 2 x 1e308 overflows the cost sum
def test_weighted_budget_plans_with_any_finite_weights(buckets, weights, unit, seed):
    """GEKOConfig accepts any finite non-negative bucket_weights with epoch_budget='weighted'; planning must too."""
    GEKOConfig(bucket_weights=list(weights), epoch_budget="weighted")  # valid configuration
    n = len(buckets)
    s = SampleState(n)
    s.bucket[:] = buckets
    plan = plan_epoch(s.bucket, s.pruned, s.times_seen, weights, 50, seed=seed, epoch=0, unit=unit,
                      budget_mode="weighted")
    _check_plan(plan, s, 50, unit)
    trainable = int((s.bucket != FREEZE).sum())
    assert len(plan) <= -(-trainable // unit) * unit  # 'weighted' never plans more than 'active'
    length = planned_length(s.bucket, s.pruned, s.times_seen, weights, 50, unit=unit, budget_mode="weighted")
    assert 0 <= length <= -(-trainable // unit) * unit


@PROPS
@given(st.integers(1, 64), st.integers(1, 8), st.integers(1, 6), st.data())
def test_times_seen_saturates_at_uint16_max(n, rounds, gap, data):
    """Repeats of one id push times_seen past 65535 only if the counter wraps; it must stick at 65535."""
    s = SampleState(n)
    i = data.draw(st.integers(0, n - 1))
    s.times_seen[i] = 65535 - gap
    for _ in range(rounds):
        before = int(s.times_seen[i])
        s.update([i] * 4, [0.1] * 4, [True] * 4, [0.9] * 4)
        assert int(s.times_seen[i]) == min(before + 4, 65535)
        assert np.isfinite(s.loss_history[i]).all()
