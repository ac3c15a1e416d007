"""Per-sample data map: training dynamics streamed from the training forward pass's own per-sample statistics.

Statistics kept for every training sample, as in
- Dataset Cartography (Swayamdipta et al., EMNLP 2020, https://aclanthology.org/2020.emnlp-main.746; code:
  https://github.com/allenai/cartography): confidence = mean gold probability, variability = its population std,
  correctness = share of correct observations, and the regions easy-to-learn / ambiguous / hard-to-learn;
- AUM, Area Under the Margin (Pleiss et al., NeurIPS 2020, https://arxiv.org/abs/2001.10528): the mean margin
  p(label) - max other p, low or negative for mislabelled samples;
- forgetting events (Toneva et al., ICLR 2019, https://arxiv.org/abs/1812.05159): correct -> wrong transitions.

Cartography stores the logits of every epoch and aggregates afterwards; here memory must not grow with epochs, so
every statistic is a streaming moment kept in one per-sample array: Welford's update (mean, M2) for the gold
probability, running means for loss and margin, counters, and the last value. Bytes per sample:
`DataMap.memory_bytes_per_sample()` (48 without burn_out, 72 with it).

Pure numpy on purpose (no torch, no other geko_hf module): a reader can load a saved map anywhere.
"""

from __future__ import annotations

import numpy as np

REGIONS = ("easy-to-learn", "ambiguous", "hard-to-learn")
STATE_VERSION = 1

# regions(): rank-based cut-offs, see region_thresholds().
AMBIGUOUS_VARIABILITY_QUANTILE = 2.0 / 3.0
HARD_CONFIDENCE = 0.5  # mean gold probability below it: the model mostly does not give the label

# name -> dtype of every per-sample array of the state; the early_* ones only exist with burn_out > 0.
_FIELDS = {
    "n_obs": np.int32, "mean_p": np.float64, "m2_p": np.float64, "n_correct": np.int32,
    "mean_margin": np.float32, "mean_loss": np.float32, "last_loss": np.float32,
    "forgetting": np.int32, "learned_epoch": np.int32, "last_epoch": np.int32,
}
_EARLY_FIELDS = {"early_n": np.int32, "early_mean_p": np.float64, "early_m2_p": np.float64,
                 "early_mean_margin": np.float32}
_NEGATIVE_LOSS_TOLERANCE = 1e-4  # float32 log-softmax can give a loss a hair below 0


def region_thresholds(stats: dict | None = None) -> dict:
    """The rule of `DataMap.regions`, and with `stats` (a `statistics()` dict) also the cut-off values it yields.

    Cartography's map (its Fig. 1) has ambiguous samples at high variability, hard-to-learn ones at low confidence
    and low variability, easy-to-learn ones at high confidence and low variability; its selection code
    (cartography/selection/train_dy_filtering.py) never uses absolute cut-offs, it sorts by one metric and keeps a
    fraction, and the paper trains on 33% subsets. Hence a rank rule that works at any N and any number of epochs:
    1. ambiguous: variability strictly above its 2/3 quantile over the observed samples (about the top third,
       the paper's 33% "most ambiguous"); strict, so samples tied at the cut-off (e.g. all 0 after one epoch)
       are not called ambiguous;
    2. the others by an absolute confidence: below 0.5 (on average the model gives the gold label less than even
       odds) hard-to-learn, else easy-to-learn. Absolute, not a quantile: in a data set of mostly noise a median
       split would call half of the noise "easy", and in a clean one half of the easy samples "hard".
    Ambiguity is relative to the samples observed (the top third), difficulty is not. Quantiles are numpy's default
    (linear interpolation).
    """
    out = {"ambiguous_variability_quantile": AMBIGUOUS_VARIABILITY_QUANTILE,
           "ambiguous_if": "variability > quantile(variability of observed samples)",
           "hard_confidence": HARD_CONFIDENCE,
           "hard_if": f"not ambiguous and confidence < {HARD_CONFIDENCE}",
           "easy_if": "not ambiguous and not hard", "quantile_method": "linear"}
    if stats is not None:
        seen = np.asarray(stats["observations"]) > 0
        out["variability_cutoff"], out["confidence_cutoff"] = _cutoffs(
            np.asarray(stats["confidence"])[seen], np.asarray(stats["variability"])[seen])
    return out


def regions_of(stats: dict) -> np.ndarray:
    """The region of every sample from a statistics() dict (see DataMap.regions)."""
    seen = np.asarray(stats["observations"]) > 0
    conf = np.asarray(stats["confidence"], dtype=np.float64)[seen]
    var = np.asarray(stats["variability"], dtype=np.float64)[seen]
    out = np.full(seen.size, "", dtype=object)
    if conf.size == 0:
        return out
    v_cut, c_cut = _cutoffs(conf, var)
    names = np.where(var > v_cut, REGIONS[1], np.where(conf < c_cut, REGIONS[2], REGIONS[0]))
    out[seen] = names.astype(object)
    return out


def _cutoffs(confidence: np.ndarray, variability: np.ndarray) -> tuple[float, float]:
    """(variability cut-off, confidence cut-off) of the rule in region_thresholds(); NaN with no samples."""
    if confidence.size == 0:
        return float("nan"), float("nan")
    v_cut = float(np.quantile(variability, AMBIGUOUS_VARIABILITY_QUANTILE))
    return v_cut, HARD_CONFIDENCE


def _rounds(ids: np.ndarray) -> list[np.ndarray]:
    """Positions into `ids`, split into rounds: the first occurrence of every id, then the second, ...

    Within a round the ids are unique (so fancy-indexed updates are exact); across rounds an id's occurrences keep
    the call's order (stable sort), so a sample seen 3 times gets its 3 observations in order. Cost: one sort plus
    one vectorised pass per round, i.e. per the largest multiplicity of an id in the call.
    """
    if ids.size == 0:
        return []
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    first = np.ones(ids.size, dtype=bool)
    first[1:] = sorted_ids[1:] != sorted_ids[:-1]
    if first.all():
        return [np.arange(ids.size)]
    starts = np.flatnonzero(first)
    rank = np.arange(ids.size) - np.repeat(starts, np.diff(np.append(starts, ids.size)))
    grouped = order[np.argsort(rank, kind="stable")]
    return np.split(grouped, np.cumsum(np.bincount(rank))[:-1])


def _welford(n: np.ndarray, mean: np.ndarray, m2: np.ndarray, i: np.ndarray, x: np.ndarray) -> None:
    """Welford's update (Welford 1962) of count, mean and M2 = sum of squared deviations at unique indices i."""
    count = n[i].astype(np.int64) + 1
    old = mean[i]
    delta = x - old
    new = old + delta / count
    m2[i] += delta * (x - new)
    mean[i] = new
    n[i] = count


def _running_mean(mean: np.ndarray, i: np.ndarray, x: np.ndarray, count: np.ndarray) -> None:
    """mean += (x - mean) / count at unique indices i, computed in float64 and stored in mean's dtype."""
    old = mean[i].astype(np.float64)
    mean[i] = old + (x - old) / count


class DataMap:
    """Streaming per-sample training dynamics (see the module docstring); memory is fixed at construction.

    burn_out > 0 also keeps the statistics of the observations made in epochs < burn_out (Cartography's
    `--burn_out`): rankings from the early epochs, before the model memorises flipped labels and their confidence,
    margin and correctness catch up with those of clean samples.
    """

    def __init__(self, num_samples: int, burn_out: int = 0):
        if int(num_samples) < 0 or int(burn_out) < 0:
            raise ValueError(f"DataMap: num_samples={num_samples} and burn_out={burn_out} must be >= 0")
        self.num_samples = int(num_samples)
        self.burn_out = int(burn_out)
        self._arrays = {name: np.zeros(self.num_samples, dtype=dt) for name, dt in self._field_dtypes().items()}
        self._arrays["learned_epoch"][:] = -1
        self._arrays["last_epoch"][:] = -1

    def _field_dtypes(self) -> dict:
        return {**_FIELDS, **(_EARLY_FIELDS if self.burn_out > 0 else {})}

    def update(self, ids, epoch: int, loss, correct, margin) -> None:
        """Record one observation per entry: a training pass of sample ids[k] in 0-based epoch `epoch`.

        loss: the sample's NLL. Its gold probability is exp(-loss): for classification exactly p(label); for
        token heads, where loss is the mean NLL over the sample's supervised tokens, it is the GEOMETRIC mean of
        the tokens' gold probabilities. correct: whether the prediction was right. margin: p(label) - max other p
        (AUM's margin on probabilities, computed by the caller). Repeated ids are applied in call order.
        Entries whose loss or margin is not finite are ignored (not counted). Nothing changes if an id is out of
        range (IndexError) or a loss is negative (ValueError).
        """
        ids, loss, correct, margin = self._check(ids, epoch, loss, correct, margin)
        keep = np.isfinite(loss) & np.isfinite(margin)
        ids, loss, correct, margin = ids[keep], loss[keep], correct[keep], margin[keep]
        p = np.minimum(np.exp(-loss), 1.0)
        for pos in _rounds(ids):
            self._observe(ids[pos], int(epoch), p[pos], loss[pos], correct[pos], margin[pos])

    def _check(self, ids, epoch, loss, correct, margin):
        """Flat arrays of equal length, or a clear error before anything is changed."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and ids.dtype.kind not in "iu":
            raise TypeError(f"DataMap.update: ids must be integers, got dtype {ids.dtype}")
        ids = ids.astype(np.int64)
        loss = np.asarray(loss, dtype=np.float64).reshape(-1)
        margin = np.asarray(margin, dtype=np.float64).reshape(-1)
        correct = np.asarray(correct).reshape(-1).astype(bool)
        if not (ids.size == loss.size == correct.size == margin.size):
            raise ValueError(f"DataMap.update: ids, loss, correct, margin have lengths {ids.size}, {loss.size}, "
                             f"{correct.size}, {margin.size}; pass one entry per observation")
        bad = (ids < 0) | (ids >= self.num_samples)
        if bad.any():
            raise IndexError(f"DataMap.update: sample id {int(ids[bad][0])} is outside [0, {self.num_samples}); "
                             f"ids are dataset indices of the DataMap's num_samples={self.num_samples}")
        if int(epoch) < 0:
            raise ValueError(f"DataMap.update: epoch={epoch}; epochs are 0-based, pass a value >= 0")
        if np.any(loss < -_NEGATIVE_LOSS_TOLERANCE):  # NaN compares False: it is ignored later, not an error
            raise ValueError(f"DataMap.update: loss {float(loss[loss < -_NEGATIVE_LOSS_TOLERANCE][0])} < 0; "
                             "pass the per-sample NLL (no label smoothing), whose exp(-loss) is a probability")
        return ids, loss, correct, margin

    def _observe(self, i, epoch, p, loss, correct, margin) -> None:
        """One observation at each of the unique sample ids i."""
        a = self._arrays
        _welford(a["n_obs"], a["mean_p"], a["m2_p"], i, p)
        count = a["n_obs"][i]
        _running_mean(a["mean_margin"], i, margin, count)
        _running_mean(a["mean_loss"], i, loss, count)
        a["last_loss"][i] = loss
        a["n_correct"][i] += correct
        # learned_epoch >= 0 <=> the previous observation was correct, so it doubles as the "was correct" flag.
        was_correct = a["learned_epoch"][i] >= 0
        a["forgetting"][i] += was_correct & ~correct
        a["learned_epoch"][i] = np.where(correct, np.where(was_correct, a["learned_epoch"][i], epoch), -1)
        a["last_epoch"][i] = epoch
        if epoch < self.burn_out:
            _welford(a["early_n"], a["early_mean_p"], a["early_m2_p"], i, p)
            _running_mean(a["early_mean_margin"], i, margin, a["early_n"][i])

    def statistics(self) -> dict[str, np.ndarray]:
        """Per-sample arrays (length num_samples); never observed: NaN for float statistics, 0 counts, -1 epochs.

        observations, confidence (mean gold probability), variability (population std of it, numpy's np.std with
        ddof 0 as in Cartography: 0.0 with one observation), correctness (share correct), aum (mean margin),
        mean_loss, last_loss, forgetting (correct -> wrong transitions between consecutive observations; unlike
        Cartography's 1000 for never-learned samples, those have 0 here and correctness 0), learned_epoch (epoch
        of the first observation of the final run of correct ones; -1 if the last was wrong or none), last_epoch
        (epoch of the last observation, -1 if none: how fresh the statistics are). With burn_out > 0 also
        early_observations, early_confidence, early_variability, early_aum over epochs < burn_out.
        """
        a = self._arrays
        out = {"observations": a["n_obs"].astype(np.int64)}
        out.update(_moments(a["n_obs"], a["mean_p"], a["m2_p"]))
        out["correctness"] = _masked(a["n_obs"], a["n_correct"] / np.maximum(a["n_obs"], 1))
        out["aum"] = _masked(a["n_obs"], a["mean_margin"])
        out["mean_loss"] = _masked(a["n_obs"], a["mean_loss"])
        out["last_loss"] = _masked(a["n_obs"], a["last_loss"])
        for name in ("forgetting", "learned_epoch", "last_epoch"):
            out[name] = a[name].astype(np.int64)
        if self.burn_out > 0:
            out["early_observations"] = a["early_n"].astype(np.int64)
            early = _moments(a["early_n"], a["early_mean_p"], a["early_m2_p"])
            out["early_confidence"], out["early_variability"] = early["confidence"], early["variability"]
            out["early_aum"] = _masked(a["early_n"], a["early_mean_margin"])
        return out

    def regions(self, stats=None) -> np.ndarray:
        """Cartography region of every sample (a REGIONS name), "" if never observed; rule: region_thresholds().

        stats: a statistics() dict (default: the current one); any dict with observations, confidence and
        variability works, e.g. the early_* statistics renamed.
        """
        return regions_of(self.statistics() if stats is None else stats)

    def state_dict(self) -> dict:
        """version, num_samples, burn_out and copies of the per-sample arrays; survives np.savez / np.load."""
        state = {"version": STATE_VERSION, "num_samples": self.num_samples, "burn_out": self.burn_out}
        state.update({name: arr.copy() for name, arr in self._arrays.items()})
        return state

    def load_state_dict(self, d: dict) -> None:
        """Restore a state_dict (or the np.load of its np.savez); checks everything before changing anything."""
        fixes = {"version": "re-create the map with the geko_hf that wrote it, or start a new one",
                 "num_samples": "build DataMap(num_samples=<the state's>) for it, or load the map of this data set",
                 "burn_out": "build DataMap(..., burn_out=<the state's>) for it"}
        for key, mine in (("version", STATE_VERSION), ("num_samples", self.num_samples),
                          ("burn_out", self.burn_out)):
            if key not in d:
                raise ValueError(f"DataMap.load_state_dict: field {key!r} is missing; pass a DataMap.state_dict()")
            theirs = int(np.asarray(d[key]))
            if theirs != mine:
                raise ValueError(f"DataMap.load_state_dict: {key}={theirs} in the state but {key}={mine} here; "
                                 + fixes[key].replace("<the state's>", str(theirs)))
        loaded = {}
        for name, dt in self._field_dtypes().items():
            if name not in d:
                raise ValueError(f"DataMap.load_state_dict: array {name!r} is missing; pass a DataMap.state_dict()")
            arr = np.asarray(d[name])
            if arr.shape != (self.num_samples,):
                raise ValueError(f"DataMap.load_state_dict: array {name!r} has shape {arr.shape}, expected "
                                 f"({self.num_samples},); the state is damaged or from another DataMap")
            loaded[name] = arr.astype(dt, copy=True)
        self._arrays = loaded

    def memory_bytes_per_sample(self) -> int:
        """Bytes of state per sample; constant in the number of epochs (48, or 72 with burn_out > 0)."""
        return int(sum(np.dtype(dt).itemsize for dt in self._field_dtypes().values()))


def _masked(n: np.ndarray, values: np.ndarray) -> np.ndarray:
    """values as float64, NaN where a sample has no observation."""
    return np.where(n > 0, values.astype(np.float64), np.nan)


def _moments(n: np.ndarray, mean: np.ndarray, m2: np.ndarray) -> dict:
    """Cartography's confidence and variability (population std, ddof 0) from Welford's (n, mean, M2)."""
    var = np.maximum(m2, 0.0) / np.maximum(n, 1)
    return {"confidence": _masked(n, mean), "variability": _masked(n, np.sqrt(var))}
