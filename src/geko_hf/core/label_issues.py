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


def _forgetting_score(stats: dict) -> np.ndarray:
    """Forgetting events, never-learned samples first (Toneva et al. rank those as forgotten infinitely often)."""
    events = np.asarray(stats["forgetting"], dtype=np.float64)
    never = np.asarray(stats["correctness"], dtype=np.float64) == 0
    return np.where(never, np.nanmax(events, initial=0.0) + 1.0, events)


def _early(name: str):
    def score(stats: dict) -> np.ndarray:
        if f"early_{name}" not in stats:
            raise ValueError(f"label-issue ranking 'early_{name}' needs the early-epoch statistics of a data map "
                             "built with burn_out > 0 (GEKOConfig(data_map_burn_out=2), or DataMap(n, burn_out=2))")
        return -np.asarray(stats[f"early_{name}"], dtype=np.float64)
    return score


# name -> score (higher = more likely mislabelled) from a data map's statistics(); the benchmark
# benchmarks/label_issues.py measures every one of them against cleanlab.
RANKINGS = {
    "aum": lambda s: -np.asarray(s["aum"], dtype=np.float64),  # mean margin p(label) - max other p (Pleiss et al.)
    "mean_loss": lambda s: np.asarray(s["mean_loss"], dtype=np.float64),  # the free floor of any logged run
    "confidence": lambda s: -np.asarray(s["confidence"], dtype=np.float64),  # Cartography's hard-to-learn
    "last_loss": lambda s: np.asarray(s["last_loss"], dtype=np.float64),  # the last observation's loss
    "forgetting": _forgetting_score,  # Toneva et al.
    "early_aum": _early("aum"),  # AUM over the epochs < burn_out only (before flipped labels are memorised)
    "early_confidence": _early("confidence"),
}
DEFAULT_RANKING = "aum"


def label_issue_scores(stats: dict, method: str = DEFAULT_RANKING) -> np.ndarray:
    """A score for every sample (higher = more likely mislabelled; NaN if never observed) by ranking `method`."""
    if method not in RANKINGS:
        raise ValueError(f"label-issue ranking {method!r} is unknown; choose one of {sorted(RANKINGS)}")
    score = RANKINGS[method](stats)
    return np.where(np.asarray(stats["observations"]) > 0, score, np.nan)


def label_issue_ranking(stats: dict, method: str = DEFAULT_RANKING) -> tuple[np.ndarray, np.ndarray]:
    """(score per sample, observed ids most likely mislabelled first) from a data map's statistics.

    The score is `label_issue_scores(stats, method)` (default: minus the mean margin over every observation, AUM on
    probabilities); ties broken by the higher last loss. NaN score for samples never observed; they are not ranked."""
    score = label_issue_scores(stats, method)
    observed = np.flatnonzero(np.asarray(stats["observations"]) > 0)
    last_loss = np.nan_to_num(np.asarray(stats["last_loss"], np.float64)[observed])
    order = np.lexsort((-last_loss, -np.nan_to_num(score[observed], nan=-np.inf)))
    return score, observed[order]


def estimate_issue_count(stats: dict) -> int:
    """How many labels look wrong, estimated from the run alone (never the true count, which nobody has): the
    samples whose mean margin over the run is below 0, i.e. the model on average gave another class more probability
    than the label. An underestimate once the model memorises flipped labels (their margin turns positive): measured
    in benchmarks/label_issues.py, 543 of 800 flips at 16 classes, 76 of 800 under feature-dependent noise. The same
    count over the first two epochs only overestimated (1,036 of 800) and its clean-and-retrain lost a point."""
    aum = np.asarray(stats["aum"], dtype=np.float64)
    return int(np.sum(aum[~np.isnan(aum)] < 0))


def tracker_ranking(tracker) -> np.ndarray:
    """The one label-issue ranking a run serves (data map's label_issue_rank, trainer.geko.label_issues(),
    get_label_issues(), geko-hf report --label-issues): its data map's, by `label_issue_ranking`."""
    return label_issue_ranking(tracker.data_map.statistics())[1]


def tracker_label_issues(tracker, k: int) -> list[dict]:
    """The top-k of the run's one ranking (`tracker_ranking`) as `suspect_samples` rows: what the trainer, the
    report command and the training commands list."""
    return suspect_samples(tracker.state.arrays(), k, tracker_ranking(tracker))
