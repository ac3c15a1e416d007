"""The data map as one table: a row per training sample with its statistics, its region and its label-issue rank,
and the filter that drops chosen samples before the next run. Pure numpy (columns in, columns out); the HF layer
turns the columns into a `datasets.Dataset` and adds each row's own text and label.
"""

from __future__ import annotations

import numpy as np

from .buckets import BUCKET_NAMES
from .data_map import REGIONS
from .label_issues import label_issue_ranking

STAT_COLUMNS = ("observations", "confidence", "variability", "correctness", "aum", "forgetting", "learned_epoch",
                "mean_loss", "last_loss", "last_epoch")


def data_map_columns(tracker) -> dict[str, np.ndarray]:
    """Every sample's statistics (DataMap.statistics), region, GEKO bucket, and label-issue score and rank.

    label_issue_rank: 1 = the most likely mislabelled; 0 for samples never observed (nothing to rank them on)."""
    dm = tracker.data_map
    stats = dm.statistics()
    n = dm.num_samples
    columns = {"sample_id": np.arange(n, dtype=np.int64)}
    columns.update({k: stats[k] for k in STAT_COLUMNS})
    columns.update({k: v for k, v in stats.items() if k.startswith("early_")})
    columns["region"] = np.asarray(dm.regions(stats), dtype=object)
    names = np.asarray(BUCKET_NAMES, dtype=object)
    columns["bucket"] = np.where(tracker.state.pruned, "pruned", names[tracker.state.bucket])
    score, ranking = label_issue_ranking(stats)  # (= label_issues.tracker_ranking: one ranking everywhere)
    rank = np.zeros(n, dtype=np.int64)
    rank[ranking] = np.arange(1, len(ranking) + 1)
    columns["label_issue_score"] = score
    columns["label_issue_rank"] = rank
    return columns


def rows_to_drop(columns: dict, regions=None, top_k_label_issues: int | None = None, where=None) -> np.ndarray:
    """Sample ids chosen by any of: a region name (or several), the top-k label issues, a boolean mask over the
    samples (e.g. `columns["correctness"] < 0.2`). Sorted, unique."""
    n = len(columns["sample_id"])
    drop = np.zeros(n, dtype=bool)
    if regions is not None:
        regions = [regions] if isinstance(regions, str) else list(regions)
        unknown = sorted(set(regions) - set(REGIONS))
        if unknown:
            raise ValueError(f"regions={unknown} is not a data-map region; choose from {list(REGIONS)}.")
        drop |= np.isin(columns["region"], regions)
    if top_k_label_issues is not None:
        k = int(top_k_label_issues)
        if k < 0:
            raise ValueError(f"top_k_label_issues must be >= 0, got {top_k_label_issues!r}.")
        rank = columns["label_issue_rank"]
        drop |= (rank > 0) & (rank <= k)
    if where is not None:
        where = np.asarray(where, dtype=bool)
        if where.shape != (n,):
            raise ValueError(f"where= must be one boolean per training sample ({n}), got shape {where.shape}.")
        drop |= where
    return np.flatnonzero(drop)
