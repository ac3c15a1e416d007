"""Per-sample loss, correctness and confidence from the training forward pass's own outputs (no 2nd forward).

Default definitions (documented in the README):
- causal LM: over the sample's supervised tokens (shifted labels != -100): loss = mean token NLL;
  correct = every supervised token is the model's argmax; confidence = mean top-1 probability.
- sequence classification: loss = cross-entropy; correct = argmax == label; confidence = top-1 probability.
Confidence is the probability of the model's OWN prediction, not of the target: HARD means "confidently
wrong", which a target probability can never express (a target above 0.5 is always the argmax).
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


def causal_lm_stats(logits: torch.Tensor, labels: torch.Tensor) -> SampleStats:
    batch = logits.shape[0]
    rows, nll, top1, hit = _token_rows(logits, labels)
    zeros = torch.zeros(batch, dtype=torch.float32, device=logits.device)
    count = zeros.index_add(0, rows, torch.ones_like(nll))
    n = count.clamp(min=1)
    loss = zeros.index_add(0, rows, nll) / n
    loss = torch.where(count > 0, loss, torch.full_like(loss, float("nan")))  # nothing supervised: no evidence
    hits = zeros.index_add(0, rows, hit.float())
    return SampleStats(
        loss=loss,
        correct=(hits == count) & (count > 0),
        confidence=zeros.index_add(0, rows, top1) / n,
        tokens=count.long(),
    )


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


def sample_stats(outputs, inputs: dict, compute_correctness=None, compute_confidence=None) -> SampleStats:
    """Dispatch on the output shape; user functions (the seed's API) override correctness/confidence."""
    logits = getattr(outputs, "logits", None)
    if logits is None and isinstance(outputs, dict):
        logits = outputs.get("logits")
    labels = default_labels(inputs)
    if logits is None or labels is None:
        raise ValueError(
            "GEKO needs per-sample statistics but the model returned no `logits` or the batch has no `labels`/"
            "`input_ids`. Pass compute_correctness= and compute_confidence= to the GEKO trainer or callback."
        )
    if logits.dim() == 3 and labels.dim() == 2:
        stats = causal_lm_stats(logits, labels)
    elif logits.dim() == 2 and labels.dim() == 1 and not labels.is_floating_point():
        stats = classification_stats(logits, labels)
    else:
        raise ValueError(
            f"GEKO has no default per-sample statistics for logits of shape {tuple(logits.shape)} with labels of "
            f"shape {tuple(labels.shape)} (supported: causal LM [B,T,V]/[B,T], classification [B,C]/[B]). "
            "Pass compute_correctness= and compute_confidence= to the GEKO trainer or callback."
        )
    if compute_correctness is not None:
        stats.correct = torch.as_tensor(compute_correctness(outputs, inputs), device=logits.device).bool().view(-1)
    if compute_confidence is not None:
        stats.confidence = torch.as_tensor(compute_confidence(outputs, inputs), device=logits.device).float().view(-1)
    return stats
