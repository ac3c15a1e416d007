"""Sample ids travel inside the batch: a dataset column in, a LongTensor out, popped before model(**inputs).

Never inferred from loader order: accelerate reads one batch ahead and Trainer prefetches whole
accumulation groups, so any side channel is off by one batch (InfoBatch's bug).
"""

from __future__ import annotations

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
        if not isinstance(row, dict):
            raise TypeError(
                f"GEKO needs dataset rows that are dicts (got {type(row).__name__} at index {i}): "
                "return e.g. {'input_ids': ..., 'labels': ...} from __getitem__."
            )
        return {**row, ID_COLUMN: i}

    def __getattr__(self, name):  # behave like the wrapped dataset (column_names, features, ...)
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


def with_ids(dataset):
    """The dataset with an id column: a datasets.Dataset gets a real column, anything else a wrapper."""
    if hasattr(dataset, "column_names") and hasattr(dataset, "add_column"):
        if ID_COLUMN in dataset.column_names:
            return dataset
        return dataset.add_column(ID_COLUMN, list(range(len(dataset))))
    if isinstance(dataset, IndexedDataset):
        return dataset
    return IndexedDataset(dataset)


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
        batch = self.collator([{k: v for k, v in f.items() if k != ID_COLUMN} for f in features])
        batch[ID_COLUMN] = torch.as_tensor(ids, dtype=torch.long)
        return batch

    def __getattr__(self, name):  # keep attributes such as `tokenizer` reachable
        if name == "collator":
            raise AttributeError(name)
        return getattr(self.collator, name)
