"""State-store benchmark: SampleState.update / repartition and plan_epoch at 1M and 10M samples, CPU only.

Targets (from the issue): repartition + plan_epoch at 10M samples under 1 s on a 2-core CPU, and at most 64 bytes of
state per sample (gekolib keeps ~1,074). Writes benchmarks/results/state_store.{json,md} and prints one summary line.

    python benchmarks/state_store.py
    python benchmarks/state_store.py --quick   # 10k and 100k samples, 1 repeat: a check (state_store_quick.*)
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from geko_hf.core.config import GEKOConfig
from geko_hf.core.curriculum import bucket_weights
from geko_hf.core.selection import plan_epoch
from geko_hf.core.state import SampleState

SIZES = (1_000_000, 10_000_000)  # samples in the state store
REPEATS = 3  # timed repeats per stage; the median is reported
BURN_IN = 1  # untimed runs first (page faults of fresh arrays, lazy imports)
UNIT = 32  # batch size x grad accumulation x world size: plan length is a multiple of it
NUM_EPOCHS = 3  # curriculum length; epoch 1 of 3 is PEAK, weights (5, 2, 0)
EPOCH = 1
SEED = 0  # data generation and plan seed
TARGET_S = 1.0  # repartition + plan_epoch at 10M samples
TARGET_BYTES = 64  # state bytes per sample
QUICK_SIZES = (10_000, 100_000)  # --quick: the whole script in seconds; the time target is then not checked
OUT_DIR = Path(__file__).resolve().parent / "results"

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--quick", action="store_true", help="small sizes, 1 repeat (results in state_store_quick.*)")
QUICK = parser.parse_args().quick
# --quick never overwrites the real results
SIZES, REPEATS, STEM = (QUICK_SIZES, 1, "state_store_quick") if QUICK else (SIZES, REPEATS, "state_store")


def timed(fn, repeats=REPEATS, burn_in=BURN_IN):
    """(median wall s, wall runs, median CPU s). CPU time (this process) is reported too because wall time on a
    shared 2-core VM inflates with other tenants' load; numpy runs these ops on one thread, so CPU ~ work."""
    for _ in range(burn_in):
        fn()
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), walls, statistics.median(cpus)


def cpu_busy_share(seconds=1.0):
    """Share of the machine's CPU time busy (all processes) over `seconds`, from /proc/stat; None off Linux."""
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait
    try:
        t0, i0 = read()
        time.sleep(seconds)
        t1, i1 = read()
    except OSError:
        return None
    return 1.0 - (i1 - i0) / max(t1 - t0, 1)


def observations(n, rng):
    """One epoch of observations: every id once, in random order (what a full epoch reports)."""
    ids = rng.permutation(n)
    losses = rng.exponential(1.0, n)  # mostly small losses, a tail of hard samples
    correct = rng.random(n) < 0.7
    confidence = rng.random(n)
    return ids, losses, correct, confidence


busy_before = cpu_busy_share()  # other load on the machine before we start (0 = idle)
rows = []
for n in SIZES:
    rng = np.random.default_rng(SEED)
    cfg = GEKOConfig()  # the defaults (the LIGHT draw at light_sample_rate is part of the plan's cost)
    state = SampleState(n, cfg)
    obs = observations(n, rng)
    t_update, t_update_all, c_update = timed(lambda: state.update(*obs))
    t_repart, t_repart_all, c_repart = timed(state.repartition)
    phase, weights = bucket_weights(EPOCH, NUM_EPOCHS, cfg.use_curriculum, cfg.bucket_weights)
    plan_fn = lambda: plan_epoch(  # noqa: E731
        state.bucket, state.pruned, state.times_seen, weights, cfg.max_times_seen, seed=SEED, epoch=EPOCH, unit=UNIT,
        budget_mode=cfg.epoch_budget, light_rate=cfg.light_sample_rate,
    )
    t_plan, t_plan_all, c_plan = timed(plan_fn)
    plan = plan_fn()
    buckets = np.bincount(state.bucket, minlength=4)
    rows.append(dict(
        num_samples=n,
        update_s=t_update, repartition_s=t_repart, plan_epoch_s=t_plan, repartition_plus_plan_s=t_repart + t_plan,
        update_runs_s=t_update_all, repartition_runs_s=t_repart_all, plan_epoch_runs_s=t_plan_all,
        update_cpu_s=c_update, repartition_cpu_s=c_repart, plan_epoch_cpu_s=c_plan,
        repartition_plus_plan_cpu_s=c_repart + c_plan,
        bytes_per_sample=state.bytes_per_sample(), state_mb=state.nbytes() / 2**20,
        plan_len=int(len(plan)), phase=phase, weights=list(weights),
        buckets=dict(zip(("FREEZE", "LIGHT", "FOCUS", "HARD"), map(int, buckets))),
    ))
    del state, obs, plan  # free ~1 GB before the next size

big = rows[-1]
time_ok = big["repartition_plus_plan_s"] < TARGET_S if big["num_samples"] >= 10_000_000 else None  # a 10M target
bytes_ok = all(r["bytes_per_sample"] <= TARGET_BYTES for r in rows)
machine = dict(
    platform=platform.platform(), processor=platform.processor() or platform.machine(), cpu_count=os.cpu_count(),
    python=platform.python_version(), numpy=np.__version__,
    date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    cpu_busy_before=busy_before, loadavg_after=list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
)
result = dict(
    machine=machine,
    settings=dict(repeats=REPEATS, burn_in=BURN_IN, unit=UNIT, num_epochs=NUM_EPOCHS, epoch=EPOCH, seed=SEED,
                  quick=QUICK),
    targets=dict(repartition_plus_plan_s_at_10M=TARGET_S, bytes_per_sample=TARGET_BYTES,
                 time_met=time_ok, bytes_met=bytes_ok),
    rows=rows,
)
OUT_DIR.mkdir(parents=True, exist_ok=True)
(OUT_DIR / f"{STEM}.json").write_text(json.dumps(result, indent=2) + "\n")

time_word = {True: "met", False: "MISSED", None: "not checked (no 10M size)"}[time_ok]
md = [
    f"# State store benchmark (`python benchmarks/state_store.py{' --quick' if QUICK else ''}`)",
    "",
    f"Machine: {machine['platform']}, {machine['processor']}, {machine['cpu_count']} CPUs, "
    f"Python {machine['python']}, numpy {machine['numpy']}, {machine['date']}.",
    f"Median of {REPEATS} runs after {BURN_IN} burn-in; plan_epoch with curriculum weights "
    f"({big['phase']}: {big['weights']}) and unit={UNIT}. Wall seconds, with this process's CPU seconds in "
    "parentheses.",
    "Machine CPU busy before the run: "
    + (f"{100 * busy_before:.0f}%" if busy_before is not None else "n/a")
    + (f"; load average after: {', '.join(f'{x:.2f}' for x in machine['loadavg_after'])}"
       if machine["loadavg_after"] else "")
    + " (wall times inflate when other processes share the 2 cores).",
    "",
    "| samples | update (1 epoch) s | repartition s | plan_epoch s | repartition + plan s | bytes/sample | state MB |",
    "|---:|---:|---:|---:|---:|---:|---:|",
]
for r in rows:
    md.append(f"| {r['num_samples']:,} | {r['update_s']:.3f} ({r['update_cpu_s']:.3f}) | "
              f"{r['repartition_s']:.3f} ({r['repartition_cpu_s']:.3f}) | {r['plan_epoch_s']:.3f} "
              f"({r['plan_epoch_cpu_s']:.3f}) | {r['repartition_plus_plan_s']:.3f} "
              f"({r['repartition_plus_plan_cpu_s']:.3f}) | {r['bytes_per_sample']:.0f} | {r['state_mb']:.0f} |")
md += [
    "",
    f"Targets: repartition + plan at 10M < {TARGET_S:g} s: **{time_word}** "
    f"({big['num_samples']:,}: {big['repartition_plus_plan_s']:.3f} s wall, "
    f"{big['repartition_plus_plan_cpu_s']:.3f} s CPU); "
    f"<= {TARGET_BYTES} bytes/sample: "
    f"**{'met' if bytes_ok else 'MISSED'}** ({big['bytes_per_sample']:.0f}).",
]
(OUT_DIR / f"{STEM}.md").write_text("\n".join(md) + "\n")

print(f"state_store: {big['num_samples']:,} repartition {big['repartition_s']:.3f}s + plan "
      f"{big['plan_epoch_s']:.3f}s = "
      f"{big['repartition_plus_plan_s']:.3f}s wall ({big['repartition_plus_plan_cpu_s']:.3f}s CPU; "
      f"target <{TARGET_S:g}s at 10M: {time_word}), "
      f"update {big['update_s']:.3f}s, {big['bytes_per_sample']:.0f} B/sample "
      f"(target <={TARGET_BYTES}: {'met' if bytes_ok else 'MISSED'})")
