"""Large datasets stay on the vectorised path: no Python call or object per row when ids are attached or checked,
per-epoch bookkeeping and iteration in bounded memory (benchmarks/scale.py measures 1M and 10M rows)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pyarrow as pa
import pytest

from geko_hf import GEKOConfig
from geko_hf.training.ids import ID_COLUMN, with_ids
from geko_hf.training.sampler import GEKOSampler
from geko_hf import state as state_module
from geko_hf.core.state import SampleState, _occurrence_rounds
from geko_hf.core.tracker import GEKOTracker

datasets = pytest.importorskip("datasets")

ROWS = 200_000


def _tiny(n):
    tokens = pa.array(np.arange(4 * n, dtype=np.int32) % 1000)
    return datasets.Dataset(pa.table({"input_ids": pa.FixedSizeListArray.from_arrays(tokens, 4),
                                      "label": pa.array(np.arange(n) % 2)}))


@pytest.fixture
def no_row_reads(monkeypatch):
    """Records every read of the dataset one row at a time (dataset[int], iterating it, reading through an indices
    mapping)."""
    calls = []
    original = datasets.Dataset.__getitem__

    def getitem(self, key):
        if isinstance(key, (int, np.integer)):
            calls.append(key)
        return original(self, key)

    monkeypatch.setattr(datasets.Dataset, "__getitem__", getitem)
    iterate = datasets.Dataset.__iter__

    def rows(self):  # how numpy reads a lazy Column (dataset[column] since datasets 4): row by row
        calls.append("iteration")
        return iterate(self)

    monkeypatch.setattr(datasets.Dataset, "__iter__", rows)
    # datasets reads through a shuffle's or select's indices mapping with one `as_py()` (and, in flatten_indices's
    # map, a one-row Arrow slice) per row: 17 s for 200k rows
    formatting = pytest.importorskip("datasets.formatting.formatting")
    mapped = formatting._query_table_with_indices_mapping

    def through_mapping(table, key, indices):
        calls.append(("indices mapping", key))
        return mapped(table, key, indices)

    monkeypatch.setattr(formatting, "_query_table_with_indices_mapping", through_mapping)
    return calls


def _ids(ds):
    return ds.with_format("numpy", columns=[ID_COLUMN])[:][ID_COLUMN]


def test_with_ids_on_a_large_dataset_is_an_int64_arrow_column(no_row_reads):
    ds = with_ids(_tiny(ROWS))
    assert ds.data.column(ID_COLUMN).type == pa.int64()
    np.testing.assert_array_equal(_ids(ds), np.arange(ROWS))
    assert no_row_reads == []


def test_ids_already_there_are_checked_without_reading_rows(no_row_reads):
    """The check of an existing id column read it through a lazy `Column`, which numpy walks row by row: 28 s per
    100k rows, 7.5 min for 1M (GEKOTrainer calls with_ids on a dataset the user already passed through it)."""
    ds = with_ids(_tiny(ROWS))
    assert with_ids(ds) is ds
    assert no_row_reads == []


def test_shuffled_and_stale_datasets_get_ids_without_reading_rows(no_row_reads):
    """A shuffled dataset (with stale ids from an earlier run, or none) is flattened by one Arrow take, not by
    datasets' flatten_indices, which gathers one row at a time."""
    plain = _tiny(ROWS)
    ds = with_ids(plain)
    for shuffled in (ds.shuffle(seed=0), ds.select(range(1, ROWS)), plain.shuffle(seed=1)):
        expected = shuffled.data.table.take(shuffled._indices.column(0)) \
            if shuffled._indices is not None else shuffled.data.table
        no_row_reads.clear()
        fresh = with_ids(shuffled)
        assert no_row_reads == []
        np.testing.assert_array_equal(_ids(fresh), np.arange(len(shuffled)))
        assert fresh.data.table.select(["input_ids", "label"]).equals(expected.select(["input_ids", "label"]))
    kept = ds.select(range(ROWS // 2))  # a prefix: ids still equal the row index, so the column is trusted
    assert with_ids(kept) is kept
    reindexed = ds.select(np.arange(ROWS))  # an indices mapping that happens to be the identity: trusted too
    assert with_ids(reindexed) is reindexed
    assert no_row_reads == []


def test_sampler_does_not_hold_the_whole_epoch_as_python_ints():
    """iter(plan.tolist()) held one int object per draw for the whole epoch (~36 MB per million samples)."""
    tracker = GEKOTracker(1_000_000, GEKOConfig(), seed=0, num_epochs=3, unit=32, batch_size=32)
    plan = tracker.plan(0)
    sampler = GEKOSampler(tracker, epoch=None)
    tracemalloc.start()
    try:
        it = iter(sampler)
        first = [next(it) for _ in range(100)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, f"{peak / 2**20:.1f} MiB to start iterating a 1M-sample epoch"
    assert first == plan[:100].tolist() and all(type(i) is int for i in first)
    assert list(sampler) == plan.tolist()  # the same sequence, whole


def test_sampler_iterates_short_and_empty_plans():
    tracker = GEKOTracker(5, GEKOConfig(), seed=0, num_epochs=1, unit=1, batch_size=1)
    assert list(GEKOSampler(tracker)) == tracker.plan(0).tolist()
    tracker._plans[0] = np.zeros(0, dtype=np.int64)
    assert list(GEKOSampler(tracker)) == []


def test_whole_epoch_update_skips_the_sort_and_matches_batched_updates(monkeypatch):
    """A whole epoch of records (every id once) is checked for repeats with a bincount, not a 10M-entry argsort, and
    applied a chunk of ids at a time; the result is the same as recording it batch by batch, and so is the quality
    rebuilt (chunk by chunk) on load."""
    monkeypatch.setattr(state_module, "_CHUNK", 4096)
    n = 50_000
    rng = np.random.default_rng(0)
    ids = rng.permutation(n)
    assert _occurrence_rounds(ids, n) is None
    with_repeats = np.concatenate([ids, ids[:7], ids[:3]])
    rounds = _occurrence_rounds(with_repeats, n)
    assert [len(r) for r in rounds] == [n, 7, 3]
    assert [r.tolist() for r in rounds[1:]] == [list(range(n, n + 7)), list(range(n + 7, n + 10))]
    loss, conf = rng.exponential(1.0, len(with_repeats)), rng.random(len(with_repeats))
    correct = rng.random(len(with_repeats)) < 0.5
    whole, batched = SampleState(n), SampleState(n)
    whole.update(with_repeats, loss, correct, conf)
    for start in range(0, len(with_repeats), 32):
        sl = slice(start, start + 32)
        batched.update(with_repeats[sl], loss[sl], correct[sl], conf[sl])
    for name in ("loss", "q", "loss_history", "times_seen", "confidence", "correct"):
        np.testing.assert_array_equal(getattr(whole, name), getattr(batched, name))
    np.testing.assert_array_equal(whole.quality(), batched.quality())
    loaded = SampleState(n)
    loaded.load_state_dict(whole.state_dict())
    np.testing.assert_array_equal(loaded.quality(), whole.quality())
