"""The data map of a Trainer run as a `datasets.Dataset`: one row per training sample, its own readable fields
(text, label, a task-family column) next to its training dynamics, region and label-issue rank; the file it is
written to; and the filter that hands the next `Trainer` the dataset without the samples chosen.
"""

from __future__ import annotations

import os

import numpy as np

from ..core.data_map_table import data_map_columns, rows_to_drop
from .ids import ID_COLUMN

DATA_MAP_FILE = "geko_data_map.parquet"
DATA_MAP_PLOT = "geko_data_map.png"


def readable_columns(dataset) -> dict[str, list]:
    """The dataset's scalar columns (strings, numbers, booleans: text, label, family), not token ids."""
    features = getattr(dataset, "features", None)
    if features is None:
        return {}
    keep = [name for name, f in features.items()
            if name != ID_COLUMN and getattr(f, "dtype", None) is not None and type(f).__name__ in ("Value", "ClassLabel")]
    if not keep:
        return {}
    table = dataset.select_columns(keep).to_dict()
    for name in keep:  # a ClassLabel's names read better than its integers
        names = getattr(features[name], "names", None)
        if names:
            table[f"{name}_name"] = [names[i] if 0 <= i < len(names) else None for i in table[name]]
    return table


def data_map_dataset(tracker, dataset=None, id2label: dict | None = None):
    """The map as a `datasets.Dataset` (`.to_pandas()` for a DataFrame), rows in sample-id order (the row order
    of the training dataset), with the dataset's readable fields when it is given and has as many rows."""
    import datasets

    columns = {k: (v.tolist() if v.dtype == object else v) for k, v in data_map_columns(tracker).items()}
    if dataset is not None and len(dataset) == tracker.num_samples:
        fields = readable_columns(dataset)
        if id2label and "label" in fields and "label_name" not in fields:
            fields["label_name"] = [id2label.get(int(v), None) if isinstance(v, (int, np.integer)) else None
                                    for v in fields["label"]]
        columns = {"sample_id": columns.pop("sample_id"), **{k: v for k, v in fields.items() if k not in columns},
                   **columns}
    return datasets.Dataset.from_dict(columns)


def write_data_map(table, folder: str) -> str:
    """Write the map to folder/geko_data_map.parquet atomically (a reader never sees half a file)."""
    os.makedirs(folder, exist_ok=True)
    final = os.path.join(folder, DATA_MAP_FILE)
    tmp = os.path.join(folder, f".{DATA_MAP_FILE}.tmp-{os.getpid()}")
    import pyarrow.parquet as pq  # (datasets' own to_parquet draws a progress bar for a one-batch write)

    pq.write_table(table.data.table, tmp)
    os.replace(tmp, final)
    return final


def filter_dataset(dataset, tracker, regions=None, top_k_label_issues=None, where=None):
    """`dataset` (the training set, same rows in the same order) without the samples chosen; see rows_to_drop."""
    if len(dataset) != tracker.num_samples:
        raise ValueError(f"filter() needs the training dataset the map was made on ({tracker.num_samples} rows), got "
                         f"{len(dataset)} rows. Pass the dataset given to the Trainer as train_dataset.")
    drop = rows_to_drop(data_map_columns(tracker), regions, top_k_label_issues, where)
    keep = np.setdiff1d(np.arange(len(dataset)), drop)
    return dataset.select(keep)
