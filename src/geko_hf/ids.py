"""Sample ids travel inside the batch: a dataset column in, a LongTensor out, popped before model(**inputs).

Never inferred from loader order: accelerate reads one batch ahead and Trainer prefetches whole
accumulation groups, so any side channel is off by one batch (InfoBatch's bug).
"""

from __future__ import annotations

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
    return dataset.add_column(ID_COLUMN, np.arange(len(dataset), dtype=np.int64))


def _is_row_index(dataset) -> bool:
    column = dataset.with_format("numpy")[ID_COLUMN]  # one array; no Python int per row
    return bool(np.array_equal(np.asarray(column), np.arange(len(dataset))))


def missing_ids_error(batch) -> ValueError:
    keys = sorted(batch) if hasattr(batch, "keys") else type(batch).__name__
    return ValueError(
        f"A training batch reached compute_loss without `{ID_COLUMN}` (its keys: {keys}), so GEKO cannot tell which "
        "samples it holds. Something between the dataset and the model dropped the ids: a data collator that keeps "
        f"only known keys (wrap it in geko_hf.ids.IdCollator), or a compute_loss override that removes `{ID_COLUMN}` "
        "before calling GEKO's."
    )


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
        batch[ID_COLUMN] = torch.as_tensor(ids, dtype=torch.long)
        return batch

    def __getattr__(self, name):  # keep attributes such as `tokenizer` reachable
        if name == "collator":
            raise AttributeError(name)
        return getattr(self.collator, name)
