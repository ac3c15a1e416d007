"""Per-sample loss, correctness and confidence from the training forward pass's own outputs (no 2nd forward).

Default definitions (documented in the README):
- causal LM: over the sample's supervised tokens (shifted labels != -100): loss = mean token NLL;
  correct = every supervised token is the model's argmax; confidence = mean top-1 probability.
- sequence classification: loss = cross-entropy; correct = argmax == label; confidence = top-1 probability.
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


def _token_rows(logits, labels):
    """Per supervised token: its sample index, NLL, top-1 probability and argmax-correctness, in chunks.

    Only supervised positions are gathered and upcast, CHUNK_ROWS at a time, so no full-vocabulary float32
    copy of the [B, T, V] logits is made (bf16 logits of a 50k vocab would double in size).
    """
    shift_logits, shift_labels = logits[:, :-1], labels[:, 1:]
    mask = shift_labels != IGNORE_INDEX
    rows, cols = mask.nonzero(as_tuple=True)  # a host sync on GPU: the price of per-sample statistics
    targets = shift_labels[rows, cols]
    nll = torch.empty(len(rows), dtype=torch.float32, device=logits.device)
    top1 = torch.empty_like(nll)
    hit = torch.empty(len(rows), dtype=torch.bool, device=logits.device)
    for s in range(0, len(rows), CHUNK_ROWS):
        e = s + CHUNK_ROWS
        chunk = shift_logits[rows[s:e], cols[s:e]].float()
        lse = torch.logsumexp(chunk, dim=-1)
        best, arg = chunk.max(dim=-1)
        nll[s:e] = lse - chunk.gather(1, targets[s:e, None])[:, 0]
        top1[s:e] = torch.exp(best - lse)
        hit[s:e] = arg == targets[s:e]
    return rows, nll, top1, hit


def _per_sample(index, nll, top1, hit, num_samples: int, device) -> SampleStats:
    """Aggregate per-token records into per-sample statistics (index = the token's sample)."""
    zeros = torch.zeros(num_samples, dtype=torch.float32, device=device)
    count = zeros.index_add(0, index, torch.ones_like(nll))
    n = count.clamp(min=1)
    loss = zeros.index_add(0, index, nll) / n
    loss = torch.where(count > 0, loss, torch.full_like(loss, float("nan")))  # nothing supervised: no evidence
    hits = zeros.index_add(0, index, hit.float())
    return SampleStats(
        loss=loss,
        correct=(hits == count) & (count > 0),
        confidence=zeros.index_add(0, index, top1) / n,
        tokens=count.long(),
    )


def segment_index(inputs: dict, num_samples: int) -> torch.Tensor:
    """Sample index of every position of a batch whose rows hold several samples (padding-free), shape [B, T].

    A sequence starts where `position_ids` is 0 (TRL's padding-free collator and transformers'
    DataCollatorWithFlattening). Trailing pad positions (pad_to_multiple_of) also read 0; they carry no labels.
    """
    position_ids = inputs.get("position_ids")
    if position_ids is None:
        raise ValueError(
            f"The batch has fewer rows than its {num_samples} sample ids and no `position_ids`, so GEKO cannot tell "
            "which tokens belong to which sample. Packed rows (several documents in one row) are not supported: use "
            "padding-free batches (one sequence per sample, told apart by `position_ids`) or ordinary padding."
        )
    starts = (position_ids == 0).reshape(-1)
    return (torch.cumsum(starts.long(), 0) - 1).reshape(position_ids.shape)


def _sample_of(rows, cols, segments, num_samples):
    """Map supervised (row, shifted col) positions to sample indices; drop what lies past the last sample."""
    if segments is None:
        return rows, None
    index = segments[rows, cols + 1]  # the label's position decides the sample
    keep = (index >= 0) & (index < num_samples)
    return index[keep], keep


def causal_lm_stats(logits: torch.Tensor, labels: torch.Tensor, segments: torch.Tensor | None = None,
                    num_samples: int | None = None) -> SampleStats:
    """Per-sample statistics from [B, T, V] logits; `segments` ([B, T] sample index, padding-free) else rows."""
    rows, nll, top1, hit = _token_rows(logits, labels)
    if segments is None:
        return _per_sample(rows, nll, top1, hit, logits.shape[0], logits.device)
    cols = (labels[:, 1:] != IGNORE_INDEX).nonzero(as_tuple=True)[1]
    index, keep = _sample_of(rows, cols, segments, num_samples)
    return _per_sample(index, nll[keep], top1[keep], hit[keep], num_samples, logits.device)


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
    if segments is not None and segments.shape[1] != mask.shape[1] + 1:
        raise ValueError(
            f"The fused LM head returned {mask.shape[1]} positions per row for a batch of {segments.shape[1]} "
            "positions (prompt-learning PEFT adds virtual tokens): GEKO cannot split such a padding-free batch per "
            "sample. Use padding_free=False."
        )
    index, keep = _sample_of(rows, cols, segments, num_samples)
    if keep is not None:
        nll, top1, hit = nll[keep], top1[keep], hit[keep]
    return _per_sample(index, nll, top1, hit, mask.shape[0] if segments is None else num_samples, mask.device)


def classification_stats(logits: torch.Tensor, labels: torch.Tensor) -> SampleStats:
    logp = torch.log_softmax(logits.float(), dim=-1)
    best, arg = logp.max(dim=-1)
    labels = labels.long().view(-1)
    return SampleStats(
        loss=-logp.gather(1, labels[:, None])[:, 0],
        correct=arg == labels,
        confidence=best.exp(),
        tokens=torch.ones_like(labels),
    )


def default_labels(inputs: dict) -> torch.Tensor | None:
    """Labels as the model saw them; a causal LM without labels learns its input_ids (padding ignored)."""
    labels = inputs.get("labels")
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


def sample_stats(outputs, inputs: dict, compute_correctness=None, compute_confidence=None,
                 num_samples: int | None = None) -> SampleStats:
    """Dispatch on the output shape; user functions (the seed's API) override correctness/confidence.

    `num_samples` is the number of sample ids in the batch; when it differs from the number of rows (padding-free
    batches), causal-LM statistics are split per sequence (see `segment_index`).
    """
    logits = output_field(outputs, "logits")
    fused = logits is None and getattr(outputs, "log_probs", None) is not None \
        and getattr(outputs, "label_mask", None) is not None
    labels = default_labels(inputs)
    per_token = outputs.label_mask if fused else logits
    segments = None
    if num_samples is not None and per_token is not None and num_samples != per_token.shape[0]:
        segments = segment_index(inputs, num_samples)
    if fused:
        stats = fused_lm_stats(outputs, segments, num_samples)
        device = outputs.label_mask.device
    elif logits is None or labels is None:
        raise ValueError(
            "GEKO needs per-sample statistics but the model returned no `logits` or the batch has no `labels`/"
            "`input_ids`. Pass compute_correctness= and compute_confidence= to the GEKO trainer or callback."
        )
    elif logits.dim() == 3 and labels.dim() == 2:
        stats = causal_lm_stats(logits, labels, segments, num_samples)
        device = logits.device
    elif logits.dim() == 2 and labels.dim() == 1 and not labels.is_floating_point() and segments is None:
        stats = classification_stats(logits, labels)
        device = logits.device
    else:
        raise ValueError(
            f"GEKO has no default per-sample statistics for logits of shape {tuple(logits.shape)} with labels of "
            f"shape {tuple(labels.shape)} (supported: causal LM [B,T,V]/[B,T], classification [B,C]/[B]). "
            "Pass compute_correctness= and compute_confidence= to the GEKO trainer or callback."
        )
    if compute_correctness is not None:
        stats.correct = torch.as_tensor(compute_correctness(outputs, inputs), device=device).bool().view(-1)
    if compute_confidence is not None:
        stats.confidence = torch.as_tensor(compute_confidence(outputs, inputs), device=device).float().view(-1)
    return stats
