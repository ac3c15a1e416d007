"""The selection step: buckets + weights -> an epoch plan (which samples, how many times, in what order).

Budget: an epoch plans as many passes as there are trainable samples (not FREEZE, not pruned, under
max_times_seen). So FREEZE and pruned samples really leave the epoch, which is where compute is saved; the
bucket weights only decide how the remaining passes are spread (HARD up to 5x, LIGHT possibly 0).
"""

from __future__ import annotations

import numpy as np

from .buckets import FOCUS, FREEZE, HARD, LIGHT


def _weight_table(weights, scaled: bool = False) -> np.ndarray:
    """(HARD, FOCUS, LIGHT) -> a per-bucket-code table (FREEZE 0); `scaled` to max 1, so that huge finite
    weights cannot overflow a sum."""
    table = np.zeros(4, dtype=np.float64)
    table[HARD], table[FOCUS], table[LIGHT] = weights
    return table / table.max() if scaled and table.max() > 0 else table


def sample_weights(buckets, pruned, times_seen, weights, max_times_seen) -> np.ndarray:
    """Per-sample weight from the (HARD, FOCUS, LIGHT) table; 0 for FREEZE, pruned and exhausted samples."""
    w = _weight_table(weights)[buckets]
    w[pruned | (times_seen >= max_times_seen)] = 0.0
    return w


def plan_epoch(buckets, pruned, times_seen, weights, max_times_seen, *, seed: int, epoch: int,
               unit: int = 1, budget_mode: str = "active", light_rate: float = 1.0, stuck=None,
               stuck_rate: float = 0.0, recheck_rate: float = 0.0, groups=None, target=None) -> np.ndarray:
    """Sample ids to train on this epoch, in order; its length is a multiple of `unit`.

    Deterministic in (seed, epoch, state): a private generator seeded by (seed, epoch), no global RNG.
    `unit` = batch size x gradient accumulation x world size, so every epoch ends on an optimizer step.
    `light_rate` < 1: each LIGHT sample takes part in this epoch with that probability (a fresh draw per
    epoch); the trainer weights the drawn ones' loss by 1 / light_rate (see GEKOTracker.weight_table). The plan is
    empty only when no sample is left to train: an epoch whose draws all come out empty trains one step (one_step).
    `stuck` (bool per sample): taken out of the weighted draw; a share `stuck_rate` of them, and a share
    `recheck_rate` of the FREEZE samples, get one pass each ("probes", gradient weight 1).
    `groups` (int per sample, e.g. the label): every rate-based draw is stratified by it, so each group keeps
    its share within one sample (a Bernoulli draw can starve a small class).
    `target` (passes): the epoch's length is set, not derived from the buckets (see `fill_target`; LIGHT thinning
    is then off, whatever light_rate; probes count inside it; its draws are stratified by `groups` too).
    """
    buckets = np.asarray(buckets)
    pruned = np.asarray(pruned, dtype=bool)
    remaining = np.maximum(int(max_times_seen) - np.asarray(times_seen).astype(np.int32), 0)
    trainable = _trainable(buckets, pruned, remaining)
    probes = _probes(buckets, pruned, remaining, stuck, trainable, stuck_rate, recheck_rate, groups, seed, epoch)
    drawable = _drawable(buckets, trainable, stuck, light_rate, stuck_rate)  # before the draws thin them
    if stuck is not None:
        trainable &= ~np.asarray(stuck, dtype=bool)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch)])
    if light_rate < 1.0 and target is None:  # a target sets every rate itself: no thinning
        light = trainable & (buckets == LIGHT)
        if light.any():  # no draw without LIGHT samples: epoch 0's plan is the same at any rate
            trainable &= ~light | draw(light, light_rate, rng, groups)
    if target is not None:
        target = -(-int(target) // unit) * unit  # whole optimizer steps: only a target out of reach is topped up
        counts = fill_target(target, buckets, trainable, pruned, remaining, probes, weights, rng, groups, stuck)
        trainable = counts > 0  # out of reach, every live sample is in the plan: the top-up is then deterministic
    else:
        w = _weight_table(weights, scaled=True).astype(np.float32)[buckets]
        w *= trainable
        if trainable.any() and w.sum() == 0:
            w = trainable.astype(np.float64)  # e.g. only LIGHT left at PEAK (weight 0): keep training, uniformly
        budget = _budget(budget_mode, np.bincount(buckets[trainable], minlength=4), weights)
        if budget == 0 and not probes.any():  # every random draw came out empty, or nothing is left to train
            return one_step(drawable, remaining, unit, rng) if drawable.any() else np.zeros(0, dtype=np.int64)
        counts = _systematic_counts(w, budget, rng) if budget else np.zeros(len(buckets), dtype=np.int32)
        counts = np.minimum(counts + probes, remaining)
    trainable |= probes > 0
    plan = np.repeat(np.arange(len(buckets), dtype=np.int32), counts)
    rng.shuffle(plan)  # int32: the shuffle's random accesses touch half the memory
    plan = plan.astype(np.int64)
    return _fit_to_unit(plan, trainable, remaining, counts, unit, rng)


def _drawable(buckets, trainable, stuck, light_rate, stuck_rate) -> np.ndarray:
    """The trainable samples a random draw of this epoch may leave out: LIGHT ones under thinning, stuck ones."""
    out = trainable & (buckets == LIGHT) if light_rate < 1.0 else np.zeros(len(buckets), dtype=bool)
    if stuck is not None and stuck_rate > 0:
        out |= trainable & np.asarray(stuck, dtype=bool)
    return out


def one_step(pool, remaining, unit, rng) -> np.ndarray:
    """The plan of an epoch whose random draws (LIGHT thinning, stuck samples) all came out empty although `pool`
    samples are left to train: one optimizer step of them, min(unit, len(pool)) distinct ones drawn uniformly and
    topped up as any plan (at their usual gradient weight, 1 / light_sample_rate for LIGHT ones). An empty plan would
    end the run (callback.nothing_left) with steps of its LR schedule left, though samples remain (issue 34: one
    LIGHT sample left, rate 0.5, the run stopped at step 83 of 90). Conditioning on a non-empty epoch biases the
    draw slightly in these rare epochs; ending the run was the worse choice."""
    members = np.flatnonzero(pool)
    ids = rng.choice(members, size=min(int(unit), len(members)), replace=False).astype(np.int64)
    counts = np.zeros(len(pool), dtype=np.int32)
    counts[ids] = 1
    return _fit_to_unit(ids, pool, remaining, counts, unit, rng)


def _pass_caps(weights) -> np.ndarray:
    """Most passes a sample may get in a target-budget epoch, per bucket code: ceil(its weight / FOCUS's) (HARD at
    2.5x FOCUS: 3; FOCUS and LIGHT at or under FOCUS's weight: 1; a zero weight and FREEZE 0: fill_target gives those
    one pass each only after the weighted buckets are full)."""
    table = _weight_table(weights)
    ref = table[FOCUS] if table[FOCUS] > 0 else table.max()
    # clipped: a ratio of 1e300 would overflow int64 (max_times_seen <= 65535 caps a sample's passes anyway)
    return np.ceil(np.minimum(table / ref, 65535.0) if ref > 0 else table).astype(np.int64)


def fill_target(target: int, buckets, trainable, pruned, remaining, probes, weights, rng, groups=None,
                stuck=None) -> np.ndarray:
    """Per-sample passes summing to `target` (GEKOConfig.target_budget), or, when out of reach, to every live sample
    at its capacity (see _target_length). In order: the probes (re-checks, stuck samples), a stratified share of them
    if they alone exceed the target (issue 33: a target caps every pass); the trainable samples with a positive
    weight, by weight, each at most ceil(its weight / FOCUS's) passes and its remaining max_times_seen; then one pass
    each, drawn stratified by `groups`, for the live samples left: zero-weight buckets first (not yet mastered; issue
    33: gekolib's 3 1 0 planned 0.15 of a 0.6 target), then FREEZE re-checks, then stuck samples (likely label
    errors)."""
    counts = np.zeros(len(buckets), dtype=np.int32)
    counts[choose(probes > 0, target, rng, groups)] = 1
    cap = np.where(trainable, np.minimum(_pass_caps(weights)[buckets], remaining), 0)
    per_pass = np.where(cap > 0, _weight_table(weights)[buckets], 0.0)
    left = target - int(counts.sum())
    if left > 0 and per_pass.sum() > 0:
        total = min(left, int(cap.sum()))
        strata = None if groups is None else np.asarray(groups, dtype=np.int64) * 4 + buckets  # (group, bucket)
        drawn = _systematic_counts(_water_fill(per_pass, cap, total), total, rng, strata)
        counts += np.minimum(drawn, cap).astype(np.int32)
    live = ~pruned & (remaining > 0)
    stuck = np.zeros(len(buckets), dtype=bool) if stuck is None else np.asarray(stuck, dtype=bool)
    # (cap > 0 first: a pass the cap clipped off a float-rounded expectation goes back to the weighted samples)
    for pool in (cap > 0, trainable & (cap == 0), buckets == FREEZE, stuck):
        left = target - int(counts.sum())
        if left <= 0:
            break
        counts[choose(live & pool & (counts < np.maximum(cap, 1)), left, rng, groups)] += 1
    return counts


def _target_length(buckets, trainable, live, remaining, weights, target: int, unit: int) -> int:
    """plan_epoch's length under a target: the target in whole optimizer steps, or, out of reach, every live sample at
    its capacity (fill_target: a trainable one at max(its pass cap, 1), any other live one at 1, none past
    max_times_seen), topped up to a whole step from their remaining passes where they have enough (_fit_to_unit)."""
    target = -(-target // unit) * unit
    per_sample = np.where(trainable, np.maximum(_pass_caps(weights)[buckets], 1), 1)
    capacity = int(np.minimum(per_sample, remaining)[live].sum())
    if capacity >= target:
        return target
    short = -capacity % unit
    return capacity + short if int(remaining[live].sum()) - capacity >= short else capacity - capacity % unit


def _water_fill(weights, cap, total: int) -> np.ndarray:
    """Expected passes proportional to `weights`, none above its `cap`, summing to `total` (<= cap.sum()): the
    scale s with sum(min(s w, cap)) = total, found over the breakpoints cap / w (few distinct: one per bucket)."""
    active = weights > 0
    ratio = np.full(len(weights), np.inf)
    ratio[active] = cap[active] / weights[active]
    for s_break in np.unique(ratio[active]):  # increasing: the first breakpoint that reaches the total
        if np.minimum(s_break * weights, cap).sum() >= total:
            break
    clipped = active & (ratio < s_break)  # at their cap below this breakpoint
    free = active & ~clipped
    rest = total - cap[clipped].sum()
    scale = rest / weights[free].sum() if free.any() else 0.0
    return np.where(clipped, cap, np.where(free, np.minimum(scale * weights, cap), 0.0)).astype(np.float64)


def draw(mask, rate: float, rng, groups=None) -> np.ndarray:
    """A share `rate` of the samples in `mask`: Bernoulli per sample, or with `groups` exactly floor/ceil of
    rate x size in every group (the rounding drawn at random), so no group is starved or favoured."""
    mask = np.asarray(mask, dtype=bool)
    if groups is None:
        return mask & (rng.random(len(mask), dtype=np.float32) < rate)
    out = np.zeros(len(mask), dtype=bool)
    members = np.flatnonzero(mask)
    group_of = np.asarray(groups)[members]
    for g in np.unique(group_of):
        ids = members[group_of == g]
        k = int(np.floor(rate * len(ids) + rng.random()))
        out[rng.choice(ids, size=min(k, len(ids)), replace=False)] = True
    return out


def choose(mask, k: int, rng, groups=None) -> np.ndarray:
    """Exactly min(k, mask.sum()) distinct ids from `mask`, uniformly; with `groups` each group gets floor or ceil of
    its share of k (systematic sampling over the ids ordered by group, randomly within one: any run of consecutive
    ids gets its share within one)."""
    ids = np.flatnonzero(mask)
    if k >= len(ids) or k <= 0:
        return ids if k > 0 else ids[:0]
    if groups is None:
        return rng.choice(ids, size=k, replace=False)
    ids = rng.permutation(ids)
    ids = ids[np.argsort(np.asarray(groups)[ids], kind="stable")]
    return ids[((np.arange(k) + rng.random()) * (len(ids) / k)).astype(np.int64)]  # steps of n / k >= 1: distinct


def _probes(buckets, pruned, remaining, stuck, trainable, stuck_rate, recheck_rate, groups, seed, epoch):
    """One pass each for a share of the stuck and of the FREEZE samples (their own generator: a plan without
    probes is the same as before they existed)."""
    probes = np.zeros(len(buckets), dtype=np.int32)
    if not (recheck_rate > 0 or (stuck is not None and stuck_rate > 0)):
        return probes
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch), 1])
    live = ~pruned & (remaining > 0)
    if recheck_rate > 0:
        probes += draw(live & (buckets == FREEZE), recheck_rate, rng, groups)
    if stuck is not None and stuck_rate > 0:
        probes += draw(trainable & np.asarray(stuck, dtype=bool), stuck_rate, rng, groups)
    return probes


def _trainable(buckets, pruned, remaining):
    return (buckets != FREEZE) & ~pruned & (remaining > 0)


def planned_length(buckets, pruned, times_seen, weights, max_times_seen, *, unit: int = 1,
                   budget_mode: str = "active", light_rate: float = 1.0, stuck=None, stuck_rate: float = 0.0,
                   recheck_rate: float = 0.0, target=None) -> int:
    """How long plan_epoch's plan would be for this state and these weights (without drawing it): exact under a
    target; otherwise, with rates < 1, its expectation (those draws are random)."""
    buckets = np.asarray(buckets)
    pruned = np.asarray(pruned, bool)
    remaining = np.maximum(int(max_times_seen) - np.asarray(times_seen, dtype=np.int64), 0)
    trainable = _trainable(buckets, pruned, remaining)
    probes = recheck_rate * np.count_nonzero(~pruned & (remaining > 0) & (buckets == FREEZE))
    if stuck is not None:
        stuck = trainable & np.asarray(stuck, dtype=bool)
        probes += stuck_rate * np.count_nonzero(stuck)
        trainable &= ~stuck
    per_bucket = np.bincount(buckets[trainable], minlength=4).astype(np.float64)
    if target is not None:  # exact: probes count inside the target, and LIGHT thinning is off
        return _target_length(buckets, trainable, ~pruned & (remaining > 0), remaining, weights, int(target), unit)
    drawable = per_bucket.sum() > 0 or (stuck is not None and stuck_rate > 0 and stuck.any())
    per_bucket[LIGHT] *= light_rate
    budget = _budget(budget_mode, per_bucket, weights) + int(round(probes))
    budget = max(budget, 1) if drawable else budget  # an empty draw still plans one step (see one_step)
    return -(-budget // unit) * unit  # plans are rounded UP to whole optimizer steps (see _fit_to_unit)


def _budget(mode, per_bucket, weights) -> int:
    """Passes this epoch, from the number of trainable samples per bucket code.

    'active': one per trainable sample (only FREEZE, pruned and exhausted samples save compute; weights move
    passes between buckets). 'weighted': each trainable sample costs its weight relative to FOCUS (FOCUS 1 pass,
    LIGHT at weight 1 vs FOCUS 3 a third of one), capped at 'active', so LIGHT samples really get little and the
    saving grows with them."""
    n_trainable = int(round(float(np.sum(per_bucket))))
    if mode == "active" or n_trainable == 0:
        return n_trainable
    hard, focus, light = (float(x) for x in weights)
    ref = focus if focus > 0 else max(hard, focus, light)
    # A sample never costs more than the whole cap: huge finite weights (1e308 / 0.5 = inf) would otherwise give
    # inf, or NaN for an empty bucket (0 x inf), before the cap applies.
    cost_of = np.zeros(4)
    cost_of[HARD], cost_of[FOCUS], cost_of[LIGHT] = (min(w / ref, n_trainable) for w in (hard, focus, light))
    cost = float(np.asarray(per_bucket, dtype=np.float64) @ cost_of)
    return int(min(n_trainable, max(round(cost), 1)))


def _systematic_counts(weights: np.ndarray, budget: int, rng, strata=None) -> np.ndarray:
    """Integer counts, each floor or ceil of its expectation (unbiased), summing EXACTLY to the budget.

    Systematic sampling (one random offset) over a random order of the samples: independent rounding would make
    the epoch length itself random. The order must be random: in id order the rounding is a fixed id pattern
    (equal weights at rate 1/2: all even or all odd ids, whichever the offset picks), so an epoch could draw only
    a handful of subsets and neighbours never together (Tillé, "Sampling Algorithms", 2006, ch. 7: systematic
    sampling is unbiased for each unit but its joint inclusions depend on the list order).
    `strata` (int per sample): each stratum is one run of the order (random within it), so its total is also floor or
    ceil of its expectation: stratified sampling at no extra cost.
    """
    u = rng.random()
    live = weights > 0
    n_live = int(np.count_nonzero(live))
    w_live = weights[live]
    if n_live and budget % n_live == 0 and w_live.min() == w_live.max():  # equal shares, whole: nothing to round
        return live.astype(np.int32) * np.int32(budget // n_live)  # (the default: every trainable sample once)
    order = np.arange(len(weights), dtype=np.int32)  # int32: half the memory of the gathers below
    rng.shuffle(order)
    if strata is not None:
        order = order[np.argsort(strata[order], kind="stable")]
    cum = np.cumsum(weights[order], dtype=np.float64)  # float64: exact enough over 10 M entries
    cum *= budget / cum[-1]  # expected counts, accumulated
    cum[-1] = budget  # exact, whatever the float rounding of the sum
    cum += u
    np.floor(cum, out=cum)
    drawn = np.empty(len(cum), dtype=np.int32)
    drawn[0] = cum[0]  # floor(u) = 0 below the first edge
    np.subtract(cum[1:], cum[:-1], out=drawn[1:], casting="unsafe")
    counts = np.empty_like(drawn)
    counts[order] = drawn
    return counts


def _fit_to_unit(plan, trainable, remaining, counts, unit, rng):
    """Round the plan UP to a multiple of unit with extra passes of trainable samples (never past max_times_seen).

    HF ends an epoch's last accumulation group without an optimizer step when it is short (its step count is fixed
    at train start), so a plan must fill whole steps. Cutting it instead would leave samples untrained and report
    them as saved; the stock Trainer trains them in a last, partial step. Only if too few passes are left to fill
    the step (max_times_seen) is the plan cut, and those passes are GEKO's choice to skip."""
    short = -len(plan) % unit
    if unit <= 1 or short == 0:
        return plan
    spare = np.where(trainable, remaining - counts, 0)
    candidates = np.flatnonzero(spare > 0)
    if len(candidates) >= short:  # distinct samples, none past max_times_seen
        extra = rng.choice(candidates, size=short, replace=False)
    else:  # a few samples left: repeat them as far as their remaining passes allow
        pool = np.repeat(candidates, np.minimum(spare[candidates], short))
        if len(pool) < short:
            return plan[: len(plan) - len(plan) % unit]
        extra = rng.choice(pool, size=short, replace=False)
    return np.concatenate([plan, extra.astype(np.int64)])
