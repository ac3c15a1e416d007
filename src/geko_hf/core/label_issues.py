"""Likely label errors, ranked from the training state GEKO keeps anyway (no extra forward pass).

A sample whose label the model keeps contradicting, epoch after epoch, is more often mislabelled than hard: the
margin p(label) - max other p averaged over training ranks label errors (AUM, Pleiss et al., NeurIPS 2020, on
logits), and samples wrong on every presentation are mostly label errors ("hard-to-learn" in Dataset
Cartography, Swayamdipta et al., EMNLP 2020). Pure numpy over a state dict (SampleState.state_dict()).
"""

from __future__ import annotations

import numpy as np


def mean_margin(state: dict) -> np.ndarray:
    """Each sample's margin averaged over its observations (NaN where never observed)."""
    seen = np.asarray(state["times_seen"], dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(seen > 0, np.asarray(state["margin_sum"], np.float64) / seen, np.nan)


def suspect_ranking(state: dict) -> np.ndarray:
    """Observed, unpruned sample ids, most likely mislabelled first: lowest mean margin, then lowest last margin."""
    mean = mean_margin(state)
    ids = np.flatnonzero(~np.isnan(mean) & ~np.asarray(state["pruned"], dtype=bool))
    last = np.asarray(state["margin"], np.float64)[ids]
    return ids[np.lexsort((last, mean[ids]))]


def suspect_samples(state: dict, k: int, ranking=None) -> list[dict]:
    """The top-k of a ranking (default `suspect_ranking`; a trainer passes its data map's, `tracker_ranking`), with
    what put each sample there. (geko_hf <= 0.3 kept only samples wrong now: a different ranking from the one
    measured, and on a toy state precision at 2 of 0.0 where the measured ranking has 1.0.)"""
    ranking = (suspect_ranking(state) if ranking is None else np.asarray(ranking))[: max(int(k), 0)]
    mean = mean_margin(state)
    streak = np.asarray(state["streak"])
    return [{"id": int(i), "mean_margin": round(float(mean[i]), 4), "margin": round(float(state["margin"][i]), 4),
             "wrong_streak": int(max(-streak[i], 0)), "stuck": bool(state["stuck"][i]),
             "times_seen": int(state["times_seen"][i]), "loss": round(float(state["loss"][i]), 4)}
            for i in ranking]


def precision_at_k(ranking: np.ndarray, true_ids, k: int | None = None) -> float:
    """Share of the top-k ranked ids that are in true_ids (k defaults to their number)."""
    true_ids = np.asarray(sorted(set(int(i) for i in true_ids)), dtype=np.int64)
    k = len(true_ids) if k is None else int(k)
    return float(np.isin(ranking[:k], true_ids).mean()) if k else 0.0


def label_issue_ranking(stats: dict) -> tuple[np.ndarray, np.ndarray]:
    """(score per sample, observed ids most likely mislabelled first) from a data map's statistics.

    The score is minus the mean margin over every observation (AUM on probabilities): the ranking whose precision
    the label-error benchmark measures (`suspect_ranking` on the state ranks the same samples the same way), ties
    broken by the higher last loss. NaN score for samples never observed; they are not ranked."""
    score = -np.asarray(stats["aum"], dtype=np.float64)
    observed = np.flatnonzero(np.asarray(stats["observations"]) > 0)
    last_loss = np.nan_to_num(np.asarray(stats["last_loss"], np.float64)[observed])
    order = np.lexsort((-last_loss, -score[observed]))
    return score, observed[order]


def tracker_ranking(tracker) -> np.ndarray:
    """The one label-issue ranking a run serves (data map's label_issue_rank, trainer.geko.label_issues(),
    get_suspect_samples(), geko-hf report --suspects): its data map's, by `label_issue_ranking`."""
    return label_issue_ranking(tracker.data_map.statistics())[1]
