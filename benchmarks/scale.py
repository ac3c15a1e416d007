"""Scale on one machine: preparing, planning and checkpointing a 1M- and a 10M-sample `datasets.Dataset`, CPU only.

Each step runs in a fresh subprocess (its inputs built there first, untimed), so its peak memory is its own: the
peak RSS above the RSS just before the step (Linux VmHWM, reset through /proc/self/clear_refs, once glibc and Arrow
gave freed memory back), next to its wall and CPU time. The rows are tiny (`input_ids`: 4 int32, `label`: int64),
built from numpy arrays, so the dataset itself is 24 bytes a row and what is measured is GEKO's own cost.

    python benchmarks/scale.py            # about 7 minutes on 2 cores; writes benchmarks/results/scale.{json,md}
    python benchmarks/scale.py --quick    # 10k and 100k samples, 1 process a step: an end-to-end check (scale_quick.*)

Steps (GEKOLoop is what GEKOCallback and a plain loop both drive; batch 32, 3 epochs, default GEKOConfig):
  with_ids            geko_hf.training.ids.with_ids(ds): attach the `geko_sample_id` column
  with_ids_again      with_ids on a dataset that already carries its ids (checked, kept), as when a user's with_ids(ds)
                      reaches GEKOTrainer, which calls it again
  with_ids_shuffled   with_ids on a shuffled dataset (ds.shuffle(), the usual training set): its indices mapping is
                      flattened (one Arrow take) before the column is added
  with_ids_stale      with_ids on a shuffled copy of a dataset with ids: they are stale, so the column is replaced
  plan                GEKOLoop(N, ...) (the tracker and its state arrays) + planning epoch 0
  sampler_pass        iterating the epoch-0 sampler to its end, as the DataLoader does (one Python int per draw is
                      the torch Sampler protocol; the point is that it never holds all of them at once)
  epoch               one simulated epoch: the records the loop would hold at epoch end (ids of the plan, float32
                      loss and confidence, bool correct, int64 tokens), loop.end_epoch() (record, repartition,
                      history row) and planning epoch 1
  state_payload       loop.state_payload() after that epoch (what a checkpoint holds: state arrays + epoch 1's plan)
  save                checkpoint.save_geko_state(dir, payload) (npz, fsync'd, atomic rename); file bytes per sample
  load                checkpoint.load_geko_state(dir)
  restore             GEKOLoop(N, ...).load(payload): the loaded payload back into a fresh loop
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = (1_000_000, 10_000_000)  # samples (dataset rows)
ROW_LEN = 4  # int32 tokens per row's input_ids
BATCH_SIZE = 32  # micro-batch; the plan is a multiple of it
NUM_EPOCHS = 3
SEED = 0  # data and plan seed
STEPS = ("with_ids", "with_ids_again", "with_ids_shuffled", "with_ids_stale", "plan", "sampler_pass", "epoch",
         "state_payload", "save", "load", "restore")
REPEATS = 2  # fresh processes per step; the one with the least wall time is reported (others' load on the cores)
STEP_TIMEOUT_S = 600  # per subprocess
QUICK_SIZES = (10_000, 100_000)  # --quick: every step end to end in about a minute
CHILD_ENV = {"TOKENIZERS_PARALLELISM": "false", "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
OUT_DIR = Path(__file__).resolve().parent / "results"


# -- measuring inside a child --------------------------------------------------------------------------------
def rss_kb():
    """(VmRSS, VmHWM) of this process in KiB."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                out[key] = int(value.split()[0])
    return out["VmRSS"], out["VmHWM"]


def _release_freed_memory():
    """Freed heap back to the OS first (glibc's and Arrow's pool), or the step could reuse it unseen by the RSS peak."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
    if "pyarrow" in sys.modules:
        sys.modules["pyarrow"].default_memory_pool().release_unused()


def measure(fn):
    """Run fn once: wall s, CPU s, peak RSS above the RSS before it (MiB), RSS left after it (MiB); and fn's result."""
    import gc

    gc.collect()
    _release_freed_memory()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM (the peak) to the current RSS
    before, _ = rss_kb()
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    after, peak = rss_kb()
    return dict(wall_s=wall, cpu_s=cpu, peak_rss_delta_mb=(peak - before) / 1024,
                rss_retained_mb=(after - before) / 1024, rss_before_mb=before / 1024), result


def make_dataset(n):
    """A datasets.Dataset of n tiny rows, from numpy arrays (no Python object per row)."""
    import datasets
    import pyarrow as pa

    rng = np.random.default_rng(SEED)
    tokens = pa.array(rng.integers(0, 30_000, n * ROW_LEN, dtype=np.int32))
    table = pa.table({"input_ids": pa.FixedSizeListArray.from_arrays(tokens, ROW_LEN),
                      "label": pa.array(rng.integers(0, 2, n, dtype=np.int64))})
    return datasets.Dataset(table)


def make_loop(n):
    from geko_hf import GEKOConfig, GEKOLoop

    return GEKOLoop(n, GEKOConfig(), num_epochs=NUM_EPOCHS, batch_size=BATCH_SIZE, seed=SEED)


def epoch_records(plan, rng):
    """What loop.end_epoch concatenates after an epoch that trained `plan`: one record per pass, the dtypes
    StatsBuffer.drain returns."""
    n = len(plan)
    loss = rng.exponential(1.0, n).astype(np.float32)  # mostly small losses, a tail of hard samples
    correct = rng.random(n) < 0.7
    confidence = rng.random(n, dtype=np.float32)
    tokens = np.full(n, ROW_LEN, dtype=np.int64)
    margin = np.where(correct, confidence, -confidence).astype(np.float32)
    return plan.copy(), loss, correct, confidence, tokens, margin


def after_one_epoch(n):
    loop = make_loop(n)
    loop.pending = [(*epoch_records(loop.plan(), np.random.default_rng(SEED)), len(loop.plan()) // BATCH_SIZE)]
    loop.end_epoch()
    loop.plan()
    return loop


def child(step, n):
    """Build the step's inputs (untimed), measure the step, print one JSON line."""
    import datasets

    from geko_hf.core.checkpoint import STATE_FILE, load_geko_state, save_geko_state
    from geko_hf.training.ids import ID_COLUMN, with_ids
    from geko_hf.training.sampler import GEKOSampler

    datasets.disable_progress_bars()
    info = {}
    if step.startswith("with_ids"):
        ds = make_dataset(n)
        if step in ("with_ids_again", "with_ids_stale"):
            ds = with_ids(ds)
        if step in ("with_ids_shuffled", "with_ids_stale"):
            ds = ds.shuffle(seed=SEED)
        m, out = measure(lambda: with_ids(ds))
        column = out.data.column(ID_COLUMN)
        info = dict(id_type=str(column.type), ids_are_row_index=bool(np.array_equal(
            out.with_format("numpy", columns=[ID_COLUMN])[:][ID_COLUMN], np.arange(n))), kept=out is ds)
    elif step == "plan":
        def build_and_plan():
            loop = make_loop(n)
            loop.plan()
            return loop

        m, loop = measure(build_and_plan)
        info = dict(plan_len=int(len(loop.plan())), state_bytes_per_sample=loop.tracker.state.bytes_per_sample(),
                    data_map_bytes_per_sample=loop.tracker.data_map.memory_bytes_per_sample())
    elif step == "sampler_pass":
        loop = make_loop(n)
        sampler = GEKOSampler(loop.tracker, epoch=None)
        loop.plan()

        def drain():
            count = 0
            for _ in sampler:
                count += 1
            return count

        m, count = measure(drain)
        info = dict(draws=count)
    elif step == "epoch":
        loop = make_loop(n)
        records = epoch_records(loop.plan(), np.random.default_rng(SEED))
        batches = len(records[0]) // BATCH_SIZE

        def run_epoch():
            loop.pending = [(*records, batches)]
            row = loop.end_epoch()
            loop.plan()
            return row

        m, row = measure(run_epoch)
        info = dict(row={k: v for k, v in row.items() if k != "phase"}, next_plan_len=int(len(loop.plan())))
    else:
        loop = after_one_epoch(n)
        with tempfile.TemporaryDirectory() as folder:
            if step == "state_payload":
                m, _ = measure(loop.state_payload)
            elif step == "save":
                payload = loop.state_payload()
                m, path = measure(lambda: save_geko_state(folder, payload))
                size = os.path.getsize(path)
                tracker = payload["tracker"]
                saved_state = sum(v.nbytes for v in tracker["state"].values() if isinstance(v, np.ndarray))
                saved_map = sum(v.nbytes for v in tracker.get("data_map", {}).values() if isinstance(v, np.ndarray))
                counters = sum(v.nbytes for v in tracker.values() if isinstance(v, np.ndarray))  # passes, tokens
                info = dict(file_bytes=size, file_bytes_per_sample=size / n,
                            saved_state_bytes_per_sample=saved_state / n, saved_data_map_bytes_per_sample=saved_map / n,
                            saved_counter_bytes_per_sample=counters / n,
                            plan_bytes_per_sample=8 * len(loop.plan()) / n, planned_share=len(loop.plan()) / n)
            else:
                save_geko_state(folder, loop.state_payload())
                if step == "load":
                    m, payload = measure(lambda: load_geko_state(folder))
                    info = dict(arrays=len([1 for v in payload["tracker"]["state"].values() if hasattr(v, "shape")]))
                else:  # restore
                    payload = load_geko_state(os.path.join(folder, STATE_FILE))
                    fresh = make_loop(n)
                    m, _ = measure(lambda: fresh.load(payload))
                    same = all(np.array_equal(getattr(fresh.tracker.state, k), getattr(loop.tracker.state, k))
                               for k in ("q", "bucket", "loss_history", "times_seen"))
                    info = dict(same_state=same, same_plan=bool(np.array_equal(fresh.plan(), loop.plan())))
    print(json.dumps({"step": step, "num_samples": n, **m, **info}))


# -- the parent: one subprocess per (size, step) ------------------------------------------------------------
def run_child(step, n):
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, __file__, "--child", step, str(n)], capture_output=True, text=True,
                              timeout=STEP_TIMEOUT_S, env={**os.environ, **CHILD_ENV})
    except subprocess.TimeoutExpired:
        return {"step": step, "num_samples": n, "error": f"timed out after {STEP_TIMEOUT_S} s"}
    if proc.returncode != 0:
        return {"step": step, "num_samples": n, "error": proc.stderr.strip().splitlines()[-1:]}
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["process_s"] = time.perf_counter() - t0  # with imports and the untimed inputs
    return row


def main():
    global SIZES, REPEATS
    from geko_hf import __version__

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, 1 process a step (results in scale_quick.*)")
    quick = p.parse_args().quick
    if quick:
        SIZES, REPEATS = QUICK_SIZES, 1
    stem = "scale_quick" if quick else "scale"  # --quick never overwrites the real results
    rows = []
    for n in SIZES:
        for step in STEPS:
            runs = [run_child(step, n)]
            while len(runs) < REPEATS and "wall_s" in runs[-1]:
                runs.append(run_child(step, n))
            row = min(runs, key=lambda r: r.get("wall_s", float("inf")))  # the least disturbed run
            if "wall_s" in row:
                row["wall_runs_s"] = [r["wall_s"] for r in runs]
            rows.append(row)
            shown = (f"{row['wall_s']:.3f}s wall, {row['cpu_s']:.3f}s CPU, peak +{row['peak_rss_delta_mb']:.0f} MiB"
                     if "wall_s" in row else row["error"])
            print(f"{n:>10,} {step:<15} {shown}", flush=True)

    import datasets
    import pyarrow

    machine = dict(
        platform=platform.platform(), processor=platform.processor() or platform.machine(), cpu_count=os.cpu_count(),
        python=platform.python_version(), numpy=np.__version__, datasets=datasets.__version__,
        pyarrow=pyarrow.__version__, geko_hf=__version__,
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        loadavg_after=list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    )
    by = {(r["num_samples"], r["step"]): r for r in rows}
    summary = {}
    for n in SIZES:
        save = by.get((n, "save"), {})
        summary[n] = dict(file_bytes_per_sample=save.get("file_bytes_per_sample"),
                          saved_state_bytes_per_sample=save.get("saved_state_bytes_per_sample"),
                          saved_data_map_bytes_per_sample=save.get("saved_data_map_bytes_per_sample"),
                          saved_counter_bytes_per_sample=save.get("saved_counter_bytes_per_sample"),
                          plan_bytes_per_sample=save.get("plan_bytes_per_sample"),
                          planned_share=save.get("planned_share"),
                          memory_state_bytes_per_sample=by.get((n, "plan"), {}).get("state_bytes_per_sample"),
                          memory_data_map_bytes_per_sample=by.get((n, "plan"), {}).get("data_map_bytes_per_sample"))
    result = dict(machine=machine, settings=dict(sizes=SIZES, row_len=ROW_LEN, batch_size=BATCH_SIZE,
                                                 num_epochs=NUM_EPOCHS, seed=SEED, quick=quick),
                  summary={str(n): s for n, s in summary.items()}, rows=rows)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")

    def cell(n, step):
        r = by.get((n, step), {})
        if "wall_s" not in r:
            return f"{r.get('error', 'n/a')} |"
        return f"{r['wall_s']:.3f} ({r['cpu_s']:.3f}) | {r['peak_rss_delta_mb']:.0f} |"

    md = [
        f"# Scale benchmark (`python benchmarks/scale.py{' --quick' if quick else ''}`)",
        "",
        f"Machine: {machine['platform']}, {machine['processor']}, {machine['cpu_count']} CPUs, Python "
        f"{machine['python']}, numpy {machine['numpy']}, datasets {machine['datasets']}, pyarrow {machine['pyarrow']}, "
        f"geko_hf {machine['geko_hf']}, {machine['date']}"
        + (f"; load average after: {', '.join(f'{x:.2f}' for x in machine['loadavg_after'])}"
           if machine["loadavg_after"] else "") + ".",
        f"A `datasets.Dataset` of N tiny rows ({ROW_LEN} int32 input_ids + an int64 label); GEKOLoop with batch "
        f"{BATCH_SIZE}, {NUM_EPOCHS} epochs, default GEKOConfig. Each step in {REPEATS} fresh processes, the one with "
        "the least wall time shown: wall seconds (that process's CPU seconds), and peak RSS above the RSS before the "
        "step (MiB). Wall times inflate when other processes share the cores.",
        "",
        "| step | " + " | ".join(f"{n:,}: s (CPU s) | {n:,}: peak MiB" for n in SIZES) + " |",
        "|---|" + "---:|---:|" * len(SIZES),
    ]
    for step in STEPS:
        md.append(f"| {step} | " + " ".join(cell(n, step) for n in SIZES))
    md += [""]
    for n in SIZES:
        s = summary[n]
        if s["file_bytes_per_sample"] is not None:
            md.append(f"- {n:,} samples: the checkpoint file (`geko_state.npz` at the end of epoch 1) holds "
                      f"**{s['file_bytes_per_sample']:.1f} bytes per sample**: {s['saved_state_bytes_per_sample']:.0f} "
                      f"of state arrays, {s['saved_data_map_bytes_per_sample']:.0f} of the data map, "
                      f"{s['saved_counter_bytes_per_sample']:.0f} of per-sample pass and token counters "
                      f"and {s['plan_bytes_per_sample']:.1f} of the next epoch's plan (int64 ids; "
                      f"{100 * s['planned_share']:.0f}% of the samples planned). In memory the state is "
                      f"{s['memory_state_bytes_per_sample']:.0f} B/sample (a float32 quality cache, rebuilt on load) "
                      f"and the data map {s['memory_data_map_bytes_per_sample']} B/sample.")
    md.append("- A checkpoint taken mid-epoch also holds that epoch's records so far: 29 bytes per trained pass "
              "(int64 id and tokens, float32 loss, confidence and margin, bool correct).")
    md += ["", "Steps: see the docstring of `benchmarks/scale.py`."]
    (OUT_DIR / f"{stem}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]))
    else:
        main()
