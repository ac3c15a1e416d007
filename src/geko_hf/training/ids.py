"""Sample ids travel inside the batch: a dataset column in, a LongTensor out, popped before model(**inputs).

Never inferred from loader order: accelerate reads one batch ahead and Trainer prefetches whole
accumulation groups, so any side channel is off by one batch (InfoBatch's bug).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping

import numpy as np
import torch
from torch.utils.data import Dataset

ID_COLUMN = "geko_sample_id"


class IndexedDataset(Dataset):
    """A map-style dataset whose rows (dicts) also carry their own index under ID_COLUMN."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        row = self.dataset[i]
        if not isinstance(row, Mapping):  # dicts, and BatchEncoding (a UserDict), as HF collators accept
            raise TypeError(
                f"GEKO needs dataset rows that are mappings of model inputs, but row {i} is a {type(row).__name__}: "
                "return e.g. {'input_ids': ..., 'labels': ...} from your dataset's __getitem__."
            )
        return {**row, ID_COLUMN: i}

    def __getitems__(self, indices):
        # Defined here because torch's fetcher prefers a dataset's __getitems__, and __getattr__ below would hand it
        # the wrapped dataset's batch fetch, whose rows carry no ids.
        return [self[i] for i in indices]

    def __getattr__(self, name):  # behave like the wrapped dataset (column_names, features, ...)
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


def with_ids(dataset):
    """The dataset with ids that are its row indices: a datasets.Dataset gets a real column, anything else (and a
    datasets.Dataset with a format transform, whose output keeps only the keys the transform returns) a wrapper.

    An id column that is already there is trusted only if it IS the row index: a dataset that went through an
    earlier GEKO run and was then shuffled, selected or concatenated carries stale ids that point at other rows.
    """
    if isinstance(dataset, IndexedDataset):
        return dataset
    if not (hasattr(dataset, "column_names") and hasattr(dataset, "add_column")):
        return IndexedDataset(dataset)
    if ID_COLUMN in dataset.column_names:
        if _is_row_index(dataset):
            return dataset
        dataset = dataset.remove_columns(ID_COLUMN)
    if getattr(dataset, "format", {}).get("type") == "custom":  # set_transform / with_transform
        return IndexedDataset(dataset)
    dataset = _flatten_indices(dataset)
    # The fingerprint (datasets' cache key) named, not derived: datasets would hash the whole id column for it.
    return dataset.add_column(ID_COLUMN, np.arange(len(dataset), dtype=np.int64),
                              new_fingerprint=_derived_fingerprint(dataset, "add_ids"))


# Large datasets: no Python object per row. datasets reads a dataset through a shuffle's or select's indices mapping
# one row at a time (`as_py()` and a one-row Arrow slice per row), and `Dataset[column]` is a lazy Column that numpy
# reads row by row. So the id column is read, and an indices mapping flattened, with whole-column Arrow operations.
_CHECK_ROWS = 1 << 20  # ids compared a chunk at a time: bounded memory, and stale ids usually differ at once


def _arrow_rows(dataset):
    """(the dataset's Arrow table, its indices mapping as an Arrow array or None) for a datasets.Dataset; None for
    anything else (then only public, slower paths are taken)."""
    datasets = sys.modules.get("datasets")
    if datasets is None or not isinstance(dataset, datasets.Dataset):
        return None
    table, indices = getattr(dataset, "data", None), getattr(dataset, "_indices", None)
    if table is None or not hasattr(table, "column"):
        return None
    return table, None if indices is None else indices.column(0)


def _is_row_index(dataset) -> bool:
    """Whether the id column holds exactly 0..len-1 in the dataset's row order."""
    n = len(dataset)
    arrow = _arrow_rows(dataset)
    if arrow is not None:
        import pyarrow as pa

        column = arrow[0].column(ID_COLUMN)
        if pa.types.is_integer(column.type) and column.null_count == 0:
            for start in range(0, n, _CHECK_ROWS):
                stop = min(start + _CHECK_ROWS, n)
                part = column.slice(start, stop - start) if arrow[1] is None else \
                    column.take(arrow[1].slice(start, stop - start))
                if not np.array_equal(part.to_numpy(), np.arange(start, stop)):
                    return False
            return True
    # Other id types (floats, strings, lists: numpy's view of them decides) and other dataset classes: the public
    # numpy format, a small first chunk so that stale ids are caught before a slow full read.
    ids = dataset.with_format("numpy", columns=[ID_COLUMN])
    start, size = 0, 1024
    while start < n:
        column = np.asarray(ids[start:start + size][ID_COLUMN])
        if len(column) == 0 or not np.array_equal(column, np.arange(start, start + len(column))):
            return False
        start, size = start + len(column), _CHECK_ROWS
    return True


def _flatten_indices(dataset):
    """The dataset without its indices mapping (add_column needs none): datasets' own flatten_indices runs a map that
    gathers one row at a time (17 s for 200k rows). In memory: one Arrow take. Backed by cache files: that map over
    Arrow batches (12x faster), which keeps the flattened rows in a cache file, not in memory. Datasets with a
    format (torch, numpy, chosen columns) are left to add_column, which keeps their format."""
    arrow = _arrow_rows(dataset)
    if arrow is None or arrow[1] is None:
        return dataset
    fmt = dataset.format
    if fmt.get("type") is not None or fmt.get("output_all_columns") or fmt.get("columns") != dataset.column_names:
        return dataset
    if not dataset.cache_files:
        import datasets

        # a named fingerprint: without one, Dataset() hashes the whole table (1.4 s and 0.9 GB at 10 M tiny rows)
        return datasets.Dataset(arrow[0].table.take(arrow[1]), info=dataset.info.copy(), split=dataset.split,
                                fingerprint=_derived_fingerprint(dataset, "flatten_indices"))
    return dataset.with_format("arrow").flatten_indices().with_format(None)


def _derived_fingerprint(dataset, step: str) -> str | None:
    """A datasets fingerprint for `step` applied to `dataset`, from its own (None: let datasets compute one). GEKO's
    steps depend on nothing but the dataset, so this is as good a cache key as datasets' hash of the arguments."""
    parent = getattr(dataset, "_fingerprint", None)
    if not isinstance(parent, str):
        return None
    return hashlib.sha1(f"{parent}:geko_hf.ids.{step}".encode()).hexdigest()[:16]


def missing_ids_error(batch) -> ValueError:
    keys = sorted(batch) if hasattr(batch, "keys") else type(batch).__name__
    return ValueError(
        f"A training batch reached compute_loss without `{ID_COLUMN}` (its keys: {keys}), so GEKO cannot tell which "
        "samples it holds. Something between the dataset and the model dropped the ids: a data collator that keeps "
        f"only known keys (wrap it in geko_hf.ids.IdCollator), or a compute_loss override that removes `{ID_COLUMN}` "
        "before calling GEKO's."
    )


def _in_flattened_order(features, ids, batch) -> list:
    """The ids in the order of the sequences a flattening collator kept. transformers' DataCollatorWithFlattening
    drops rows with empty input_ids, so the k-th sequence of the flat row is the k-th NON-empty row: the empty rows'
    ids go last, where no sequence claims them (they count as passes with no supervised token)."""
    input_ids = batch.get("input_ids") if hasattr(batch, "get") else None
    if "position_ids" not in batch or input_ids is None or len(input_ids) >= len(features):
        return ids  # not flattened: one row per sample
    empty = [len(f.get("input_ids", ())) == 0 for f in features]
    return [i for i, e in zip(ids, empty) if not e] + [i for i, e in zip(ids, empty) if e]


class IdCollator:
    """Wraps any collator: takes the ids off the rows, collates the rest, re-attaches the ids as a LongTensor.

    Most collators (DataCollatorWithPadding, TRL's) drop or choke on unknown keys, hence the detour.
    """

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, features):
        if not features or not isinstance(features[0], dict) or ID_COLUMN not in features[0]:
            return self.collator(features)  # eval batches carry no ids
        ids = [f[ID_COLUMN] for f in features]
        keys = set(features[0])
        for f in features[1:]:
            if set(f) != keys:  # a collator would fail with a bare KeyError, or silently pad a missing field
                missing = sorted(keys ^ set(f))
                raise ValueError(
                    f"Training rows {features[0][ID_COLUMN]} and {f[ID_COLUMN]} have different fields (differing: "
                    f"{missing}): every row of the train_dataset needs the same keys. Check how row {f[ID_COLUMN]} "
                    "is built (e.g. a tokenizer call that was skipped for some rows)."
                )
        batch = self.collator([{k: v for k, v in f.items() if k != ID_COLUMN} for f in features])
        batch[ID_COLUMN] = torch.as_tensor(_in_flattened_order(features, ids, batch), dtype=torch.long)
        return batch

    def __getattr__(self, name):  # keep attributes such as `tokenizer` reachable
        if name == "collator":
            raise AttributeError(name)
        return getattr(self.collator, name)
