"""Per-sample loss, correctness and confidence from the training forward pass's own outputs (no 2nd forward).

Default definitions (documented in the README):
- token heads: over the sample's supervised tokens (labels != -100): loss = mean token NLL; correct = every
  supervised token is the model's argmax; confidence = the smallest top-1 probability over them (the weakest
  token: a chat template's `<|im_end|>` and newline are near 1.0 after one epoch, so a mean would call an answer
  right by chance "mastered"; issue 34, fault 1). A causal LM's logit at
  position t predicts label t + 1 (labels shifted by one); an encoder-decoder's, a masked LM's and a token
  classifier's predict label t. The trainer decides which from the model (see alignment.py).
- sequence classification: loss = cross-entropy; correct = argmax == label; confidence = top-1 probability.
- margin (every head): p(label) - the largest other probability, the class-count-free "how sure and right" of
  cleanlab's normalized margin and AUM (Pleiss et al., NeurIPS 2020, on logits); for token heads the smallest
  margin over the sample's supervised tokens, so margin > 0 exactly when every token is correct.
Confidence is the probability of the model's OWN prediction, not of the target: HARD means "confidently
wrong", which a target probability can never express (a target above 0.5 is always the argmax).

TRL's fused LM head (SFTTrainer) returns no logits, only per-token `log_probs`, `is_top1`, `entropy` and
`label_mask` (zero where the label is -100): loss and correctness come from those exactly. The top-1
probability is exact where the label is the argmax (it is exp(log_prob)); elsewhere it is not returned, and the
token's confidence is the lower bound max(p(label), exp(-entropy)) (both are <= the top-1 probability). A sample
that is entirely correct, the only kind that can FREEZE, therefore gets its exact confidence.

Padding-free batches (one row, sequences told apart by `position_ids` restarting at 0) are split per sequence:
the sample of a supervised token is the sequence its label belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IGNORE_INDEX = -100
CHUNK_ROWS = 2048  # supervised positions per float32 chunk: bounds the extra memory to CHUNK_ROWS x vocab


@dataclass
class SampleStats:
    loss: torch.Tensor  # float32 [B]
    correct: torch.Tensor  # bool [B]
    confidence: torch.Tensor  # float32 [B]
    tokens: torch.Tensor  # int64 [B], supervised tokens trained on
    margin: torch.Tensor | None = None  # float32 [B], p(label) - max other p (None: derived from the two above)


def _aligned(logits, labels, shift: bool):
    """(logits, labels) with position t of one matching position t of the other."""
    return (logits[:, :-1], labels[:, 1:]) if shift else (logits, labels)


def _token_rows(logits, labels, shift: bool = True):
    """Per supervised token: its sample index, NLL, top-1 probability and argmax-correctness, in chunks.

    Only supervised positions are gathered and upcast, CHUNK_ROWS at a time, so no full-vocabulary float32
    copy of the [B, T, V] logits is made (bf16 logits of a 50k vocab would double in size).
    """
    shift_logits, shift_labels = _aligned(logits, labels, shift)
    mask = shift_labels != IGNORE_INDEX
    rows, cols = mask.nonzero(as_tuple=True)  # a host sync on GPU: the price of per-sample statistics
    targets = shift_labels[rows, cols]
    nll = torch.empty(len(rows), dtype=torch.float32, device=logits.device)
    top1 = torch.empty_like(nll)
    hit = torch.empty(len(rows), dtype=torch.bool, device=logits.device)
    margin = torch.empty_like(nll)
    for s in range(0, len(rows), CHUNK_ROWS):
        e = s + CHUNK_ROWS
        chunk = shift_logits[rows[s:e], cols[s:e]].float()
        lse = torch.logsumexp(chunk, dim=-1)
        target_logit = chunk.gather(1, targets[s:e, None])[:, 0]
        nll[s:e] = lse - target_logit
        top1[s:e], hit[s:e], margin[s:e] = _top1_hit_margin(chunk, lse, targets[s:e], target_logit)
    return rows, nll, top1, hit, margin


def _top1_hit_margin(logits, lse, targets, target_logit):
    """Per row: top-1 probability, argmax == target, and p(target) - max other p (a vocabulary of one: 1)."""
    if logits.shape[-1] < 2:
        ones = torch.ones_like(lse)
        return ones, torch.ones_like(lse, dtype=torch.bool), ones
    top2, arg = logits.topk(2, dim=-1)
    best, second = top2[:, 0], top2[:, 1]
    hit = arg[:, 0] == targets
    p_target = torch.exp(target_logit - lse)
    p_best, p_second = torch.exp(best - lse), torch.exp(second - lse)
    return p_best, hit, torch.where(hit, p_target - p_second, p_target - p_best)


def _per_sample(index, nll, top1, hit, margin, num_samples: int, device) -> SampleStats:
    """Aggregate per-token records into per-sample statistics (index = the token's sample); a sample's confidence
    and margin are its weakest token's (a sample without supervised tokens: confidence 0, margin NaN)."""
    zeros = torch.zeros(num_samples, dtype=torch.float32, device=device)
    count = zeros.index_add(0, index, torch.ones_like(nll))
    n = count.clamp(min=1)
    loss = zeros.index_add(0, index, nll) / n
    loss = torch.where(count > 0, loss, torch.full_like(loss, float("nan")))  # nothing supervised: no evidence
    hits = zeros.index_add(0, index, hit.float())
    return SampleStats(
        loss=loss,
        correct=(hits == count) & (count > 0),
        confidence=zeros.scatter_reduce(0, index, top1, "amin", include_self=False),
        tokens=count.long(),
        margin=torch.full_like(zeros, float("nan")).scatter_reduce(0, index, margin, "amin", include_self=False),
    )


def segment_index(inputs: dict, num_samples: int) -> torch.Tensor:
    """Sample index of every position of a batch whose rows hold several samples (padding-free), shape [B, T].

    A sequence starts at each row's first position and wherever `position_ids` does not continue the one before:
    TRL's padding-free collator restarts at 0, transformers' DataCollatorWithFlattening at `position_ids_start` (2
    for RoBERTa-like models). Trailing pad positions (pad_to_multiple_of) read 0; they carry no labels.
    """
    position_ids = inputs.get("position_ids")
    if position_ids is None:
        raise ValueError(
            f"The batch has fewer rows than its {num_samples} sample ids and no `position_ids`, so GEKO cannot tell "
            "which tokens belong to which sample. Packed rows (several documents in one row) are not supported: use "
            "padding-free batches (one sequence per sample, told apart by `position_ids`) or ordinary padding."
        )
    rows = position_ids.reshape(-1, position_ids.shape[-1])  # [B, T] (a bare [T] as one row)
    starts = torch.ones_like(rows, dtype=torch.bool)
    starts[:, 1:] = rows[:, 1:] != rows[:, :-1] + 1
    return (torch.cumsum(starts.reshape(-1).long(), 0) - 1).reshape(position_ids.shape)


def check_one_sample_per_sequence(inputs: dict, num_samples: int, label_name: str = "labels") -> None:
    """A padding-free batch holds one sample per sequence. A supervised token in a sequence past the batch's sample
    count means its rows hold several documents each (pre-packed data), whose tokens would be dropped and whose
    sequences would take other samples' ids: refused. One host sync: the mixin checks a run's first batch."""
    labels = inputs.get(label_name)
    if not torch.is_tensor(labels) or labels.dim() < 2 or labels.shape[0] == num_samples \
            or inputs.get("position_ids") is None:
        return
    supervised = segment_index(inputs, num_samples).reshape(labels.shape)[labels != -100]
    if supervised.numel() and int(supervised.max()) >= num_samples:
        raise ValueError(
            f"The batch's position_ids mark {int(supervised.max()) + 1} sequences with supervised tokens but it has "
            f"{num_samples} sample ids: its rows hold several documents each (pre-packed data), so GEKO cannot tell "
            "which sample a sequence is. Use one sample per row (padding-free batches or ordinary padding)."
        )


def _sample_of(rows, cols, segments, num_samples):
    """Map supervised (row, shifted col) positions to sample indices; drop what lies past the last sample (none
    does: check_one_sample_per_sequence)."""
    if segments is None:
        return rows, None
    index = segments[rows, cols + 1]  # the label's position decides the sample
    keep = (index >= 0) & (index < num_samples)
    return index[keep], keep


def token_stats(logits: torch.Tensor, labels: torch.Tensor, segments: torch.Tensor | None = None,
                num_samples: int | None = None, shift: bool = True) -> SampleStats:
    """Per-sample statistics from [B, T, V] logits; `segments` ([B, T] sample index, padding-free) else rows.
    `shift`: the logit at t predicts label t + 1 (causal LM), else label t."""
    if labels.shape[1] != logits.shape[1]:
        raise ValueError(
            f"GEKO got logits for {logits.shape[1]} positions and labels for {labels.shape[1]}: it cannot tell which "
            "logit scores which label. Pass compute_sample_loss=, compute_correctness= and compute_confidence=."
        )
    rows, nll, top1, hit, margin = _token_rows(logits, labels, shift)
    if segments is None:
        return _per_sample(rows, nll, top1, hit, margin, logits.shape[0], logits.device)
    if not shift:
        raise ValueError("Padding-free batches (several samples per row) are supported for causal LMs only.")
    cols = (labels[:, 1:] != IGNORE_INDEX).nonzero(as_tuple=True)[1]
    index, keep = _sample_of(rows, cols, segments, num_samples)
    return _per_sample(index, nll[keep], top1[keep], hit[keep], margin[keep], num_samples, logits.device)


def fused_lm_stats(outputs, segments: torch.Tensor | None = None, num_samples: int | None = None) -> SampleStats:
    """Per-sample statistics from TRL's fused LM head outputs (per-token `log_probs`, `is_top1`, `entropy`)."""
    mask = outputs.label_mask
    if outputs.is_top1 is None:
        raise ValueError(
            "The fused LM head was built without `is_top1`, so GEKO cannot tell which tokens are correct. Pass "
            "compute_correctness= and compute_confidence= to the GEKO trainer, or build the head with "
            "outputs=(\"log_probs\", \"entropy\", \"is_top1\") as TRL's SFTTrainer does."
        )
    rows, cols = mask.nonzero(as_tuple=True)  # a host sync on GPU, as in the logits path
    nll = -outputs.log_probs[rows, cols].float()
    hit = outputs.is_top1[rows, cols].bool()
    p_label = torch.exp(-nll)
    top1 = p_label
    if outputs.entropy is not None:  # where the label is not the argmax: a lower bound on the top-1 probability
        top1 = torch.where(hit, p_label, torch.maximum(p_label, torch.exp(-outputs.entropy[rows, cols].float())))
    # No second-best probability is returned. A correct token's runner-up is at most 1 - p, so 2p - 1 is a LOWER
    # bound of its margin (a sample is never taken as more mastered than it is); a wrong one gets p - top-1 bound.
    margin = torch.where(hit, 2 * p_label - 1, p_label - top1)
    if segments is not None and segments.shape[1] != mask.shape[1] + 1:
        raise ValueError(
            f"The fused LM head returned {mask.shape[1]} positions per row for a batch of {segments.shape[1]} "
            "positions (prompt-learning PEFT adds virtual tokens): GEKO cannot split such a padding-free batch per "
            "sample. Use padding_free=False."
        )
    index, keep = _sample_of(rows, cols, segments, num_samples)
    if keep is not None:
        nll, top1, hit, margin = nll[keep], top1[keep], hit[keep], margin[keep]
    return _per_sample(index, nll, top1, hit, margin, mask.shape[0] if segments is None else num_samples,
                       mask.device)


def classification_stats(logits: torch.Tensor, labels: torch.Tensor) -> SampleStats:
    """Per row; a row labelled -100 (CrossEntropyLoss's ignore_index: it trains nothing) is a sample with no
    supervised token, as in the token heads: no loss, margin or correctness (it must not be gathered either: an
    index of -100 is out of bounds, a device-side assert on CUDA)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    best, arg = logp.max(dim=-1)
    labels = labels.long().view(-1)
    supervised = labels != IGNORE_INDEX
    labels = torch.where(supervised, labels, torch.zeros_like(labels))
    p = logp.exp()
    p_label = p.gather(1, labels[:, None])[:, 0]
    nan = torch.full_like(p_label, float("nan"))
    return SampleStats(
        loss=torch.where(supervised, -logp.gather(1, labels[:, None])[:, 0], nan),
        correct=(arg == labels) & supervised,
        confidence=torch.where(supervised, best.exp(), torch.zeros_like(p_label)),
        tokens=supervised.long(),
        margin=torch.where(supervised, p_label - p.scatter(1, labels[:, None], -1.0).max(dim=-1).values,
                           nan),  # p(label) - max other p
    )


def default_labels(inputs: dict, label_name: str = "labels") -> torch.Tensor | None:
    """Labels as the model saw them (under `label_name`: the Trainer's label_names may name another input); a causal
    LM without labels learns its input_ids (padding ignored)."""
    labels = inputs.get(label_name)
    if labels is None:
        labels = inputs.get("label")
    if labels is None and "input_ids" in inputs:
        labels = inputs["input_ids"]
        if "attention_mask" in inputs:
            labels = labels.masked_fill(inputs["attention_mask"] == 0, IGNORE_INDEX)
    return labels


def output_field(outputs, name: str):
    """`outputs.<name>` for a ModelOutput or any object, `outputs[name]` for a plain dict; None if absent."""
    value = getattr(outputs, name, None)
    if value is None and isinstance(outputs, dict):
        value = outputs.get(name)
    return value


HOOKS = ("compute_sample_loss", "compute_correctness", "compute_confidence")


def sample_stats(outputs, inputs: dict, hooks: dict | None = None, num_samples: int | None = None,
                 shift_labels: bool | None = True, label_name: str = "labels") -> SampleStats:
    """Per-sample statistics of one training batch.

    `hooks` maps names in HOOKS to the user's functions `(outputs, batch) -> Tensor[B]` (the seed's API plus
    `compute_sample_loss`); each given hook replaces that statistic. With all three, any head works: the defaults
    are not computed at all. `num_samples` is the number of sample ids in the batch; when it differs from the
    number of rows (padding-free batches), token statistics are split per sequence (see `segment_index`).
    `shift_labels`: whether the model's logit at t predicts label t + 1 (causal LM); None when unknown.
    `label_name`: the batch key of the labels (the Trainer's single label name).
    """
    hooks = {k: v for k, v in (hooks or {}).items() if v is not None}
    if len(hooks) == len(HOOKS):
        first = hooks["compute_sample_loss"](outputs, inputs)
        n = num_samples if num_samples is not None else len(first)
        device = first.device if isinstance(first, torch.Tensor) else None
        ones = torch.ones(n, dtype=torch.long, device=device)
        stats = SampleStats(loss=ones.float(), correct=ones.bool(), confidence=ones.float(), tokens=ones)
        return _apply_hooks(stats, hooks, outputs, inputs, precomputed_loss=first)
    return _apply_hooks(default_stats(outputs, inputs, num_samples, shift_labels, given=hooks, label_name=label_name),
                        hooks, outputs, inputs)


def _missing_hooks_hint(given: dict) -> str:
    missing = [name for name in HOOKS if name not in given]
    return "Pass " + ", ".join(f"{name}=" for name in missing) + " to the GEKO trainer or callback (each maps " \
        "(outputs, batch) to one value per sample)."


def default_stats(outputs, inputs: dict, num_samples: int | None, shift_labels: bool | None,
                  given: dict | None = None, label_name: str = "labels") -> SampleStats:
    """GEKO's own statistics for causal LM, aligned token heads, TRL's fused head and classification."""
    hint = _missing_hooks_hint(given or {})
    logits = output_field(outputs, "logits")
    fused = logits is None and getattr(outputs, "log_probs", None) is not None \
        and getattr(outputs, "label_mask", None) is not None
    labels = default_labels(inputs, label_name)
    per_token = outputs.label_mask if fused else logits
    segments = None
    if num_samples is not None and per_token is not None and num_samples != per_token.shape[0]:
        segments = segment_index(inputs, num_samples)
    if fused:
        return fused_lm_stats(outputs, segments, num_samples)
    if logits is None or labels is None:
        raise ValueError(
            "GEKO needs per-sample statistics but the model returned no `logits` or the batch has no `labels`/"
            f"`input_ids`. {hint}"
        )
    if not torch.is_tensor(labels):  # object detection's per-image dicts of boxes and classes, ...
        raise ValueError(
            f"GEKO has no default per-sample statistics when the batch's `{label_name}` is a "
            f"{type(labels).__name__}, not a tensor (e.g. object detection's per-image targets). {hint}"
        )
    if logits.dim() == 3 and labels.dim() == 2 and not labels.is_floating_point():
        if shift_labels is None:
            raise ValueError(
                "GEKO cannot tell whether this model's logit at position t predicts label t + 1 (a causal LM) or "
                f"label t (masked LM, token classification, encoder-decoder), so it would misread every token. {hint}"
            )
        return token_stats(logits, labels, segments, num_samples, shift=shift_labels)
    if logits.dim() == 2 and labels.dim() == 1 and not labels.is_floating_point() and segments is None \
            and logits.shape[-1] > 1:
        return classification_stats(logits, labels)
    raise ValueError(
        f"GEKO has no default per-sample statistics for logits of shape {tuple(logits.shape)} with labels of "
        f"shape {tuple(labels.shape)} and dtype {labels.dtype} (supported: token heads [B,T,V]/[B,T], "
        f"classification [B,C]/[B] with C > 1). {hint}"
    )


def _apply_hooks(stats: SampleStats, hooks: dict, outputs, inputs, precomputed_loss=None) -> SampleStats:
    n, device = len(stats.loss), stats.loss.device
    if {"compute_correctness", "compute_confidence"} & set(hooks):
        stats.margin = None  # the logits' margin would contradict the user's correctness: derive it from theirs
    for name, field, dtype in (("compute_sample_loss", "loss", torch.float32),
                               ("compute_correctness", "correct", torch.bool),
                               ("compute_confidence", "confidence", torch.float32)):
        if name not in hooks:
            continue
        value = precomputed_loss if (name == "compute_sample_loss" and precomputed_loss is not None) \
            else hooks[name](outputs, inputs)
        setattr(stats, field, _hook_value(name, value, n, device, dtype))
    return stats


def _hook_value(name: str, value, n: int, device, dtype) -> torch.Tensor:
    """The hook's result as a [n] tensor of `dtype` on `device`, or an error naming the hook and what it returned."""
    try:
        t = torch.as_tensor(value, device=device).detach()
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"{name} must return one number per sample (a tensor of shape [{n}]), got "
                         f"{type(value).__name__}: {e}") from e
    if t.numel() != n:
        raise ValueError(f"{name} must return one value per sample of the batch, shape [{n}]; got shape "
                         f"{tuple(t.shape)}.")
    t = t.reshape(n)
    if t.is_complex():
        raise ValueError(f"{name} must return real numbers, got dtype {t.dtype}.")
    if dtype == torch.bool:
        if t.dtype != torch.bool and not bool(((t == 0) | (t == 1)).all()):
            raise ValueError(f"{name} must return booleans (or 0/1) per sample, got dtype {t.dtype} with values "
                             f"{t[:8].tolist()}.")
        return t.bool()
    t = t.to(dtype)
    if not bool(torch.isfinite(t).all()):  # a host sync, only for user hooks: their NaN must not reach the state
        raise ValueError(f"{name} returned a non-finite value (NaN or inf) for some samples: {t[:8].tolist()}. "
                         "Return finite numbers; GEKO drops its own non-finite losses, but not a hook's.")
    if name == "compute_confidence" and not bool(((t >= 0) & (t <= 1)).all()):
        raise ValueError(f"compute_confidence must return probabilities in [0, 1], got {t[:8].tolist()}.")
    return t
